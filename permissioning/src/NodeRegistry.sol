// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {INodeRegistry} from "./INodeRegistry.sol";
import {Lifespans} from "./Lifespans.sol";
import {RegistryBase} from "./RegistryBase.sol";

/// @title NodeRegistry
/// @notice The consortium's node allowlist; see {INodeRegistry} for the rules.
contract NodeRegistry is RegistryBase, INodeRegistry {
    using Lifespans for Lifespans.Span[];

    /// @notice Longest host accepted: the DNS limit for a full name (RFC 1035), which also covers any IP literal.
    uint256 public constant MAX_HOST_LENGTH = 253;

    /// @notice Longest sidecar endpoint URL accepted; generous for `https://host:port/path` while bounding storage.
    uint256 public constant MAX_ENDPOINT_LENGTH = 256;

    /// @dev Besu's two legacy answers, see {connectionAllowed}.
    bytes32 private constant LEGACY_ALLOWED = bytes32(type(uint256).max);
    bytes32 private constant LEGACY_REFUSED = bytes32(type(uint256).max >> 1);

    mapping(bytes32 nodeKey => NodeSpec) private _specs;
    mapping(bytes32 nodeKey => Lifespans.Span[]) private _spans;
    bytes32[] private _keys;

    /// @param governance_ The governance contract.
    /// @param initialNodes Nodes listed from the deployment block on (for genesis), each owned by a member.
    constructor(address governance_, NodeSpec[] memory initialNodes) RegistryBase(governance_) {
        for (uint256 i = 0; i < initialNodes.length; ++i) {
            _checkNodeSpec(initialNodes[i]);
            _requireMember(initialNodes[i].owner);
            _add(initialNodes[i], uint64(block.number));
        }
    }

    // ---------------------------------------------------------------- changes

    /// @inheritdoc INodeRegistry
    function addNode(NodeSpec calldata spec, uint64 earliestActivation)
        external
        onlyGovernance
        returns (uint64 activationBlock)
    {
        _checkNodeSpec(spec);
        return _add(spec, earliestActivation);
    }

    /// @inheritdoc INodeRegistry
    function removeNode(bytes32 idHigh, bytes32 idLow, uint64 earliestDeactivation)
        external
        onlyGovernance
        returns (uint64 deactivationBlock)
    {
        bytes32 key = _nodeKey(idHigh, idLow);
        Lifespans.Span[] storage spans = _spans[key];
        if (!spans.isOpen()) revert NodeNotListed(key);

        deactivationBlock = spans.close(earliestDeactivation);
        _entryClosed(_specs[key].owner);
        emit NodeRemoved(key, deactivationBlock);
    }

    /// @inheritdoc INodeRegistry
    function updateNodeEndpoint(bytes32 idHigh, bytes32 idLow, string calldata sidecarEndpoint, bytes32 payloadKey)
        external
    {
        bytes32 key = _nodeKey(idHigh, idLow);
        if (!_spans[key].isOpen()) revert NodeNotListed(key);
        NodeSpec storage spec = _specs[key];
        if (msg.sender != spec.owner || !_isMember(msg.sender)) {
            revert NodeNotOwner(key, msg.sender);
        }
        if (bytes(sidecarEndpoint).length > MAX_ENDPOINT_LENGTH) {
            revert NodeEndpointTooLong(bytes(sidecarEndpoint).length);
        }

        spec.sidecarEndpoint = sidecarEndpoint;
        spec.payloadKey = payloadKey;
        emit NodeEndpointUpdated(key, sidecarEndpoint, payloadKey);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc INodeRegistry
    function checkNodeSpec(NodeSpec calldata spec) external pure {
        _checkNodeSpec(spec);
    }

    /// @inheritdoc INodeRegistry
    function nodeKey(bytes32 idHigh, bytes32 idLow) external pure returns (bytes32) {
        return _nodeKey(idHigh, idLow);
    }

    /// @inheritdoc INodeRegistry
    function nodeAllowedAt(bytes32 idHigh, bytes32 idLow, uint256 blockNumber) public view returns (bool) {
        return _spans[_nodeKey(idHigh, idLow)].activeAt(blockNumber);
    }

    /// @inheritdoc INodeRegistry
    function connectionAllowedAt(
        bytes32 sourceIdHigh,
        bytes32 sourceIdLow,
        bytes32 destinationIdHigh,
        bytes32 destinationIdLow,
        uint256 blockNumber
    ) public view returns (bool) {
        return nodeAllowedAt(sourceIdHigh, sourceIdLow, blockNumber)
            && nodeAllowedAt(destinationIdHigh, destinationIdLow, blockNumber);
    }

    /// @inheritdoc INodeRegistry
    function connectionAllowed(
        bytes32 sourceEnodeHigh,
        bytes32 sourceEnodeLow,
        bytes16, /* sourceEnodeIp */
        uint16, /* sourceEnodePort */
        bytes32 destinationEnodeHigh,
        bytes32 destinationEnodeLow,
        bytes16, /* destinationEnodeIp */
        uint16 /* destinationEnodePort */
    ) external view returns (bytes32) {
        bool allowed = connectionAllowedAt(
            sourceEnodeHigh, sourceEnodeLow, destinationEnodeHigh, destinationEnodeLow, block.number
        );
        return allowed ? LEGACY_ALLOWED : LEGACY_REFUSED;
    }

    /// @inheritdoc INodeRegistry
    function nodeCount() external view returns (uint256) {
        return _keys.length;
    }

    /// @inheritdoc INodeRegistry
    function getNode(bytes32 idHigh, bytes32 idLow) external view returns (Node memory) {
        bytes32 key = _nodeKey(idHigh, idLow);
        if (_spans[key].length == 0) revert NodeUnknown(key);
        return _node(key);
    }

    /// @inheritdoc INodeRegistry
    function listNodes(uint256 offset, uint256 limit) external view returns (Node[] memory nodes) {
        (uint256 start, uint256 end) = _page(_keys.length, offset, limit);
        nodes = new Node[](end - start);
        for (uint256 i = start; i < end; ++i) {
            nodes[i - start] = _node(_keys[i]);
        }
    }

    // --------------------------------------------------------------- internal

    function _add(NodeSpec memory spec, uint64 earliestActivation) private returns (uint64 activationBlock) {
        bytes32 key = _nodeKey(spec.idHigh, spec.idLow);
        Lifespans.Span[] storage spans = _spans[key];
        if (spans.isOpen()) revert NodeAlreadyListed(key);
        if (spans.length == 0) _keys.push(key);

        _specs[key] = spec;
        activationBlock = spans.open(earliestActivation);
        _entryOpened(spec.owner);
        emit NodeAdded(key, spec.owner, spec, activationBlock);
    }

    function _node(bytes32 key) private view returns (Node memory) {
        return Node({nodeKey: key, spec: _specs[key], spans: _spans[key]});
    }

    function _checkNodeSpec(NodeSpec memory spec) private pure {
        if (spec.idHigh == bytes32(0) && spec.idLow == bytes32(0)) revert NodeIdZero();
        uint256 hostLength = bytes(spec.host).length;
        if (hostLength == 0 || hostLength > MAX_HOST_LENGTH) revert NodeHostInvalid(hostLength);
        if (spec.port == 0) revert NodePortZero();
        if (bytes(spec.sidecarEndpoint).length > MAX_ENDPOINT_LENGTH) {
            revert NodeEndpointTooLong(bytes(spec.sidecarEndpoint).length);
        }
    }

    function _nodeKey(bytes32 idHigh, bytes32 idLow) private pure returns (bytes32) {
        return keccak256(abi.encodePacked(idHigh, idLow));
    }
}
