// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title IRegistry
/// @notice What the node registry, the account allowlist and the validator set have in common: they are changed only
/// by the consortium governance contract, and every entry belongs to a consortium member.
/// @dev Each change is scheduled: it is decided in the block that executes the governance proposal and takes effect
/// at an activation (or deactivation) block that is at least the governance's activation delay later. Every view that
/// decides something takes the block number it answers for, so its answer depends on that block alone and not on the
/// block at which the question is asked.
interface IRegistry {
    /// @notice `caller` is not the governance contract, the only account allowed to add and remove entries.
    error RegistryNotGovernance(address caller);

    /// @notice `owner` is not a member of the consortium, so it cannot own an entry.
    error RegistryOwnerNotMember(address owner);

    /// @notice A paged list was asked for `limit` entries, above the per-call cap `max`.
    error RegistryPageTooLarge(uint256 limit, uint256 max);

    /// @notice The governance contract, fixed at deployment.
    function governance() external view returns (address);

    /// @notice How many entries `owner` holds that are listed and have no removal scheduled.
    /// @dev Governance refuses to remove a member while this is non-zero for any registry.
    function openEntriesOf(address owner) external view returns (uint256);
}
