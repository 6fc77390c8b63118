// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IConsortiumGovernance} from "./IConsortiumGovernance.sol";
import {IRegistry} from "./IRegistry.sol";

/// @title RegistryBase
/// @notice Shared plumbing of the three registries: the governance gate, the owner check, the per-owner count of
/// open entries and the page bounds of the list views.
abstract contract RegistryBase is IRegistry {
    /// @notice Most entries one list call returns: enough to read a consortium's registry in a handful of calls while
    /// keeping each `eth_call` far below a node's default call gas cap.
    uint256 public constant MAX_PAGE = 100;

    address private immutable _governance;
    mapping(address owner => uint256) private _openEntries;

    /// @param governance_ The governance contract; it must be deployed first, as initial entries check membership.
    constructor(address governance_) {
        _governance = governance_;
    }

    modifier onlyGovernance() {
        if (msg.sender != _governance) revert RegistryNotGovernance(msg.sender);
        _;
    }

    /// @inheritdoc IRegistry
    function governance() external view returns (address) {
        return _governance;
    }

    /// @inheritdoc IRegistry
    function openEntriesOf(address owner) external view returns (uint256) {
        return _openEntries[owner];
    }

    /// @dev Governance checks membership itself; this covers the entries given to the constructor.
    function _requireMember(address owner) internal view {
        if (!_isMember(owner)) revert RegistryOwnerNotMember(owner);
    }

    function _isMember(address account) internal view returns (bool) {
        return IConsortiumGovernance(_governance).isMember(account);
    }

    function _entryOpened(address owner) internal {
        ++_openEntries[owner];
    }

    /// @dev Only called for an entry counted by {_entryOpened}, so the count is at least one.
    function _entryClosed(address owner) internal {
        --_openEntries[owner];
    }

    /// @dev The `[start, end)` slice of a list of `total` entries that a page request covers.
    function _page(uint256 total, uint256 offset, uint256 limit) internal pure returns (uint256 start, uint256 end) {
        if (limit > MAX_PAGE) revert RegistryPageTooLarge(limit, MAX_PAGE);
        start = offset < total ? offset : total;
        end = total - start < limit ? total : start + limit;
    }
}
