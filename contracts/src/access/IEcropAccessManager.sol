// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {IAccessManager} from "@openzeppelin/contracts/access/manager/IAccessManager.sol";

/// @title IEcropAccessManager
/// @notice The platform's permission matrix: OpenZeppelin's `AccessManager` (target contract, function selector) →
/// role, extended with grant expiry (access recertification), four-eyes approval of sensitive changes and a one-time
/// bootstrap window for the initial wiring.
///
/// Rules:
/// - OpenZeppelin's `ADMIN_ROLE` (0) is held by the manager itself and can never be granted. Every administrative
///   function of the manager is gated by the matrix entry (manager, selector), wired to {Roles-PLATFORM_ADMIN}.
/// - A grant may carry an expiry. From the expiry second on, {hasRole} answers false and every `restricted` call of the
///   account fails; no transaction is needed. Renewal is a new grant with a later expiry.
/// - Four eyes: granting a sensitive role and every matrix change (function roles, role admins, guardians, delays,
///   reopening a target, authority updates, sensitivity) go through {propose} by one admin and {approve} by another.
///   Revoking a role, closing a target and granting a non-sensitive role need a single admin: they reduce privilege
///   or carry little.
/// - Bootstrap: until {finishBootstrap}, a platform admin may perform four-eyes actions alone, so a deployer can wire
///   the matrix in one go. Finishing requires at least two platform admins.
///
/// The standard `RoleGranted`, `RoleRevoked`, `TargetFunctionRoleUpdated`, `TargetClosed`, `RoleAdminChanged`,
/// `RoleGuardianChanged`, `RoleGrantDelayChanged` and `TargetAdminDelayUpdated` events plus the events below are
/// enough to rebuild the matrix, its grants and their history at any block.
interface IEcropAccessManager is IAccessManager {
    /// @notice Lifecycle of a four-eyes proposal.
    enum ProposalStatus {
        None,
        Pending,
        Executed,
        Cancelled
    }

    /// @notice A proposed call to one of the manager's own administrative functions.
    struct Proposal {
        address proposer;
        uint48 createdAt;
        ProposalStatus status;
        bytes32 dataHash;
    }

    /// @notice `account`'s grant of `roleId` now ends at `expiry` (0: no expiry).
    event RoleExpirySet(uint64 indexed roleId, address indexed account, uint48 expiry);
    /// @notice Granting `roleId` now needs (`sensitive`) or no longer needs four eyes.
    event RoleSensitivitySet(uint64 indexed roleId, bool sensitive);
    /// @notice `proposer` proposed calling the manager with `data`.
    event ProposalCreated(uint256 indexed proposalId, address indexed proposer, bytes data);
    /// @notice `approver` approved the proposal and it was executed.
    event ProposalExecuted(uint256 indexed proposalId, address indexed approver);
    /// @notice `canceller` withdrew the proposal.
    event ProposalCancelled(uint256 indexed proposalId, address indexed canceller);
    /// @notice The bootstrap window closed; from now on four eyes apply.
    event BootstrapFinished(address indexed admin, uint256 platformAdmins);

    /// @notice `selector` changes something sensitive and must go through {propose} and {approve}.
    error AccessManagerFourEyesRequired(bytes4 selector);
    /// @notice The proposer of `proposalId` tried to approve it.
    error AccessManagerSelfApproval(uint256 proposalId, address approver);
    /// @notice `proposalId` is not pending (unknown, executed or cancelled).
    error AccessManagerProposalNotPending(uint256 proposalId);
    /// @notice The data given with the approval differs from the proposed data.
    error AccessManagerProposalDataMismatch(uint256 proposalId, bytes32 expected, bytes32 given);
    /// @notice `proposalId` was created at `createdAt` and its approval window has closed.
    error AccessManagerProposalExpired(uint256 proposalId, uint48 createdAt);
    /// @notice `selector` is not an administrative function that a proposal may call.
    error AccessManagerProposalSelectorNotAllowed(bytes4 selector);
    /// @notice Only the proposer or another platform admin may cancel `proposalId`.
    error AccessManagerProposalCancelDenied(uint256 proposalId, address caller);
    /// @notice A grant's expiry must lie in the future (`now`), or be 0 for none.
    error AccessManagerGrantExpiryInPast(uint48 expiry, uint48 now);
    /// @notice The bootstrap window is already closed.
    error AccessManagerBootstrapOver();
    /// @notice Closing bootstrap needs at least two platform admins; there are `count`.
    error AccessManagerTooFewAdmins(uint256 count);
    /// @notice Platform admins are always sensitive.
    error AccessManagerRoleAlwaysSensitive(uint64 roleId);

    /// @notice Grants `roleId` to `account` with an execution delay and an expiry (0: none). Re-granting an existing
    /// member replaces the expiry, which is how a grant is recertified.
    /// @dev Four eyes when `roleId` is sensitive (outside bootstrap).
    function grantRoleWithExpiry(uint64 roleId, address account, uint32 executionDelay, uint48 expiry) external;

    /// @notice Marks `roleId` as needing four eyes for grants, or not. Always four eyes.
    function setRoleSensitive(uint64 roleId, bool sensitive) external;

    /// @notice Proposes calling the manager's administrative function encoded in `data`; returns the proposal id.
    function propose(bytes calldata data) external returns (uint256 proposalId);

    /// @notice Approves and executes `proposalId`; the caller must be a platform admin other than the proposer and
    /// `data` must be the proposed data. Reverts bubble up from the executed call.
    function approve(uint256 proposalId, bytes calldata data) external;

    /// @notice Withdraws a pending proposal. The proposer or any other platform admin may do this.
    function cancelProposal(uint256 proposalId) external;

    /// @notice Closes the bootstrap window for good.
    function finishBootstrap() external;

    /// @notice Expiry of `account`'s grant of `roleId`; 0 when it has none.
    function getRoleExpiry(uint64 roleId, address account) external view returns (uint48);

    /// @notice Whether granting `roleId` needs four eyes.
    function isRoleSensitive(uint64 roleId) external view returns (bool);

    /// @notice Whether the bootstrap window is still open.
    function bootstrapping() external view returns (bool);

    /// @notice Number of accounts currently holding a platform admin grant (expired grants still count until
    /// revoked).
    function platformAdminCount() external view returns (uint256);

    /// @notice The proposal with id `proposalId`.
    function getProposal(uint256 proposalId) external view returns (Proposal memory);

    /// @notice Seconds after creation during which a proposal can be approved.
    function proposalLifetime() external view returns (uint48);
}
