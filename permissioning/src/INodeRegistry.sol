// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IRegistry} from "./IRegistry.sol";
import {Lifespans} from "./Lifespans.sol";

/// @title INodeRegistry
/// @notice The consortium's node allowlist: every Besu node that may join the network, with the data other nodes and
/// sidecars need to reach it.
/// @dev A node is identified by its enode id, the 64-byte uncompressed secp256k1 public key without the `04` prefix,
/// passed as two 32-byte halves (`idHigh` = bytes 0..31, `idLow` = bytes 32..63) as Besu's legacy interface does.
/// Internally it is keyed by {nodeKey}, `keccak256(idHigh ‖ idLow)`, which is also the indexed topic of its events.
///
/// Connection decisions look at the enode id only. Host and port are recorded for dialling and for writing Besu's
/// local allowlists, but they are not part of the decision: the devp2p handshake authenticates the key, not the
/// address, and a node that moves to a new address must not be locked out until a proposal passes.
///
/// Nodes are added and removed only through governance proposals and take effect at the activation block stated in
/// {NodeAdded} / {NodeRemoved}. The owning member may change its node's sidecar endpoint and payload key directly
/// ({updateNodeEndpoint}); those fields route private payloads, decide nothing on chain, and take effect at once.
interface INodeRegistry is IRegistry {
    /// @notice Everything recorded about a node.
    /// @param idHigh First 32 bytes of the enode id.
    /// @param idLow Last 32 bytes of the enode id.
    /// @param host IPv4 address, IPv6 address (without brackets) or DNS name the node listens on.
    /// @param port TCP port for devp2p (RLPx).
    /// @param discPort UDP port for discovery, as the enode URL's `discport` (equal to `port` when the URL has none;
    /// `0` disables discovery).
    /// @param owner Governance account of the member that runs the node.
    /// @param sidecarEndpoint URL of the node's ecrop sidecar for private payloads; may be empty.
    /// @param payloadKey Public key (X25519) under which the node's sidecar receives private payloads; may be zero.
    struct NodeSpec {
        bytes32 idHigh;
        bytes32 idLow;
        string host;
        uint16 port;
        uint16 discPort;
        address owner;
        string sidecarEndpoint;
        bytes32 payloadKey;
    }

    /// @notice A node with its whole activation history, as returned by {getNode} and {listNodes}.
    struct Node {
        bytes32 nodeKey;
        NodeSpec spec;
        Lifespans.Span[] spans;
    }

    /// @notice A node was listed; it is allowed from `activationBlock` on. `spec` is the complete record; a node that
    /// is added again replaces its earlier record.
    event NodeAdded(bytes32 indexed nodeKey, address indexed owner, NodeSpec spec, uint64 activationBlock);

    /// @notice A node's removal was decided; it is no longer allowed from `deactivationBlock` on.
    event NodeRemoved(bytes32 indexed nodeKey, uint64 deactivationBlock);

    /// @notice The owner changed where the node's sidecar is reached and the key it receives private payloads under.
    event NodeEndpointUpdated(bytes32 indexed nodeKey, string sidecarEndpoint, bytes32 payloadKey);

    /// @notice The enode id is zero in both halves.
    error NodeIdZero();

    /// @notice The host is empty or longer than the cap (`length` bytes given).
    error NodeHostInvalid(uint256 length);

    /// @notice The devp2p port is zero.
    error NodePortZero();

    /// @notice The sidecar endpoint is longer than the cap (`length` bytes given).
    error NodeEndpointTooLong(uint256 length);

    /// @notice The node is already listed and has no removal scheduled.
    error NodeAlreadyListed(bytes32 nodeKey);

    /// @notice The node is not listed, or its removal is already scheduled.
    error NodeNotListed(bytes32 nodeKey);

    /// @notice The node was never added.
    error NodeUnknown(bytes32 nodeKey);

    /// @notice `caller` is not the governance account of the member that owns the node, or no longer a member.
    error NodeNotOwner(bytes32 nodeKey, address caller);

    /// @notice Lists a node from `earliestActivation`, or from the end of its previous listing if that is later.
    /// @dev Only governance. Reverts with {NodeAlreadyListed} while the node has an open listing.
    /// @return activationBlock The block from which the node is allowed, as emitted in {NodeAdded}.
    function addNode(NodeSpec calldata spec, uint64 earliestActivation) external returns (uint64 activationBlock);

    /// @notice Ends a node's listing at `earliestDeactivation`, or at its activation block if that is later.
    /// @dev Only governance. Reverts with {NodeNotListed} if no listing is open.
    /// @return deactivationBlock The first block at which the node is refused, as emitted in {NodeRemoved}.
    function removeNode(bytes32 idHigh, bytes32 idLow, uint64 earliestDeactivation)
        external
        returns (uint64 deactivationBlock);

    /// @notice Sets the sidecar endpoint and payload key of a listed node; only the owning member, at once.
    function updateNodeEndpoint(bytes32 idHigh, bytes32 idLow, string calldata sidecarEndpoint, bytes32 payloadKey)
        external;

    /// @notice Reverts with the matching error if `spec` is malformed; governance calls it when a proposal is made.
    /// @dev Checks the form only (non-zero id, host length, port, endpoint length), not membership or listing state.
    function checkNodeSpec(NodeSpec calldata spec) external pure;

    /// @notice The registry key of an enode id: `keccak256(abi.encodePacked(idHigh, idLow))`.
    function nodeKey(bytes32 idHigh, bytes32 idLow) external pure returns (bytes32);

    /// @notice Whether the node is allowed at `blockNumber`.
    function nodeAllowedAt(bytes32 idHigh, bytes32 idLow, uint256 blockNumber) external view returns (bool);

    /// @notice Whether a connection between two nodes is allowed at `blockNumber`: both must be allowed then.
    function connectionAllowedAt(
        bytes32 sourceIdHigh,
        bytes32 sourceIdLow,
        bytes32 destinationIdHigh,
        bytes32 destinationIdLow,
        uint256 blockNumber
    ) external view returns (bool);

    /// @notice Besu's legacy (version 1) onchain node permissioning call, answered for the current block.
    /// @dev Besu calls `connectionAllowed(bytes32,bytes32,bytes16,uint16,bytes32,bytes32,bytes16,uint16)` on the
    /// contract named by `--permissions-nodes-contract-address` at its chain head. The IP is the IPv6 address or the
    /// IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) and the port the devp2p port. Besu accepts exactly two answers:
    /// `0xff…ff` (32 bytes of ones) for allowed and `0x7fff…ff` for refused; anything else is an error on its side.
    /// IPs and ports are ignored here, as documented on this interface.
    /// @return Allowed: `bytes32(type(uint256).max)`; refused: `bytes32(type(uint256).max >> 1)`.
    function connectionAllowed(
        bytes32 sourceEnodeHigh,
        bytes32 sourceEnodeLow,
        bytes16 sourceEnodeIp,
        uint16 sourceEnodePort,
        bytes32 destinationEnodeHigh,
        bytes32 destinationEnodeLow,
        bytes16 destinationEnodeIp,
        uint16 destinationEnodePort
    ) external view returns (bytes32);

    /// @notice Number of distinct nodes ever added (listed or not); the range of {listNodes}.
    function nodeCount() external view returns (uint256);

    /// @notice One node with its history; reverts with {NodeUnknown} if it was never added.
    function getNode(bytes32 idHigh, bytes32 idLow) external view returns (Node memory);

    /// @notice Up to `limit` nodes in the order they were first added, starting at `offset`; shorter at the end.
    function listNodes(uint256 offset, uint256 limit) external view returns (Node[] memory);
}
