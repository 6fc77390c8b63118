// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {INodeRegistry} from "./INodeRegistry.sol";

/// @title IConsortiumGovernance
/// @notice The consortium's member organisations and the proposals through which they change the members, the node
/// registry, the account allowlist and the validator set.
/// @dev Rules:
///
/// - Members. A member is an organisation, identified by the account it governs with and carrying a name. Every
///   restricted function is open to current members only ({GovernanceNotMember}).
/// - Threshold. A proposal needs approvals from strictly more than `thresholdNumerator / thresholdDenominator` of the
///   current members: `floor(members * numerator / denominator) + 1`, capped at the member count. With 1/2 that is a
///   simple majority (2 of 3, 3 of 4). The threshold follows the member count as it changes; {threshold} is its
///   value now.
/// - Approvals. The proposer approves when proposing. No member approves twice. Only approvals of current members
///   count: an approval is recorded against the member's admission, so removing a member drops its approvals from
///   every open proposal, and a member removed and admitted again starts with none.
/// - Execution. The approval that reaches the threshold executes the proposal in the same transaction. When the
///   threshold falls (a member left), any member may execute a proposal that already has enough approvals
///   ({execute}). If execution reverts (say the node was added meanwhile by another proposal), the approval reverts
///   with it; such a proposal can only expire or be cancelled.
/// - Expiry. A proposal made in block `b` can be approved and executed up to block `b + proposalLifetime - 1`; from
///   block `expiresAt = b + proposalLifetime` it is expired and can no longer be approved or executed.
/// - Cancellation. The proposer, while a member, may cancel its own open proposal.
/// - Activation. Member changes take effect when executed. Registry changes are scheduled: executed in block `b`, a
///   change takes effect at `max(requestedActivation, b + activationDelay)` (`requestedActivation` zero means "as
///   soon as allowed"), and possibly later if the entry's previous listing ends later; the registry's own event
///   ({INodeRegistry-NodeAdded} and the like) carries the block that applies. `activationDelay` is at least one,
///   so a change never applies to the block that executes it.
/// - A member that still owns a listed node, account or validator (without a scheduled removal) cannot be removed
///   ({GovernanceMemberStillOwns}); remove its entries first.
interface IConsortiumGovernance {
    /// @notice What a proposal does; its payload is the ABI encoding of the matching `propose…` arguments, without
    /// the trailing `requestedActivation`.
    enum ProposalKind {
        AddMember, // (address account, string name)
        RemoveMember, // (address account)
        AddNode, // (INodeRegistry.NodeSpec spec)
        RemoveNode, // (bytes32 idHigh, bytes32 idLow)
        AddAccount, // (address account, address owner, address[] targets)
        RemoveAccount, // (address account)
        AddValidator, // (address validator, address owner)
        RemoveValidator // (address validator)
    }

    /// @notice Where a proposal stands. `Expired` is derived from the block number, never stored.
    enum ProposalState {
        Unknown,
        Open,
        Executed,
        Cancelled,
        Expired
    }

    /// @notice A member organisation.
    /// @param account The governance account the member signs proposals and approvals with; its identity here.
    /// @param name Human-readable name (1 to 64 bytes).
    /// @param admittedAt Block in which the member was admitted.
    struct Member {
        address account;
        string name;
        uint64 admittedAt;
    }

    /// @notice A proposal as stored.
    /// @param executedAt Block of execution, zero while not executed.
    struct Proposal {
        ProposalKind kind;
        address proposer;
        uint64 createdAt;
        uint64 expiresAt;
        uint64 requestedActivation;
        uint64 executedAt;
        bool cancelled;
        bytes payload;
    }

    /// @notice `account` became a member; `proposalId` is zero for the founding members.
    event MemberAdded(address indexed account, uint256 indexed proposalId, string name);

    /// @notice `account` ceased to be a member; its approvals on open proposals no longer count.
    event MemberRemoved(address indexed account, uint256 indexed proposalId);

    /// @notice The deployer bound the three registries; happens once.
    event RegistriesBound(address nodeRegistry, address accountAllowlist, address validatorSet);

    /// @notice A proposal was made; `payload` is decoded according to `kind` (see {ProposalKind}).
    event ProposalCreated(
        uint256 indexed proposalId,
        ProposalKind indexed kind,
        address indexed proposer,
        bytes payload,
        uint64 requestedActivation,
        uint64 expiresAt
    );

    /// @notice `member` approved; `approvals` counts current members' approvals, `threshold` is the threshold now.
    event ProposalApproved(uint256 indexed proposalId, address indexed member, uint256 approvals, uint256 threshold);

    /// @notice The proposal was executed. `effectiveBlock` is the block its change applies from: the execution block
    /// for member changes, the registry's activation or deactivation block otherwise.
    event ProposalExecuted(uint256 indexed proposalId, uint64 effectiveBlock);

    /// @notice The proposer cancelled the proposal.
    event ProposalCancelled(uint256 indexed proposalId);

    /// @notice `caller` is not a current member.
    error GovernanceNotMember(address caller);

    /// @notice `account` is already a member.
    error GovernanceAlreadyMember(address account);

    /// @notice The member account is the zero address.
    error GovernanceMemberZero();

    /// @notice The member name is empty or longer than 64 bytes (`length` given).
    error GovernanceMemberNameInvalid(uint256 length);

    /// @notice The consortium already has `max` members.
    error GovernanceTooManyMembers(uint256 max);

    /// @notice Removing the only member would leave nobody able to govern.
    error GovernanceLastMember(address account);

    /// @notice `account` still owns `entries` listed nodes, accounts or validators without a scheduled removal.
    error GovernanceMemberStillOwns(address account, uint256 entries);

    /// @notice No proposal has id `proposalId`.
    error GovernanceUnknownProposal(uint256 proposalId);

    /// @notice The proposal is not open (it was executed or cancelled, or it expired).
    error GovernanceProposalNotOpen(uint256 proposalId, ProposalState state);

    /// @notice `member` has already approved the proposal.
    error GovernanceAlreadyApproved(uint256 proposalId, address member);

    /// @notice {execute} was called with `approvals` below `threshold`.
    error GovernanceThresholdNotReached(uint256 proposalId, uint256 approvals, uint256 threshold);

    /// @notice Only the proposer may cancel.
    error GovernanceNotProposer(uint256 proposalId, address caller);

    /// @notice `requestedActivation` is not after the current block, or further ahead than the cap allows.
    error GovernanceActivationOutOfRange(uint64 requestedActivation, uint256 currentBlock, uint256 maxLead);

    /// @notice The threshold fraction is not below one (`numerator < denominator`, denominator non-zero).
    error GovernanceThresholdInvalid(uint256 numerator, uint256 denominator);

    /// @notice The proposal lifetime or activation delay is zero, or the delay exceeds the cap.
    error GovernanceTimingInvalid(uint64 proposalLifetime, uint64 activationDelay);

    /// @notice The founding member lists disagree in length or are empty.
    error GovernanceFoundersInvalid(uint256 accounts, uint256 names);

    /// @notice Only the deployer may bind the registries, and only once.
    error GovernanceBindingRefused(address caller);

    /// @notice `registry` does not name this contract as its governance.
    error GovernanceRegistryMismatch(address registry);

    /// @notice A registry proposal was made before the registries were bound.
    error GovernanceNotBound();

    /// @notice Proposes admitting `account` under `name`.
    /// @return proposalId The new proposal's id (ids start at one).
    function proposeAddMember(address account, string calldata name) external returns (uint256 proposalId);

    /// @notice Proposes removing the member `account`.
    function proposeRemoveMember(address account) external returns (uint256 proposalId);

    /// @notice Proposes listing a node; `spec.owner` must be a member, now and at execution.
    function proposeAddNode(INodeRegistry.NodeSpec calldata spec, uint64 requestedActivation)
        external
        returns (uint256 proposalId);

    /// @notice Proposes ending a node's listing.
    function proposeRemoveNode(bytes32 idHigh, bytes32 idLow, uint64 requestedActivation)
        external
        returns (uint256 proposalId);

    /// @notice Proposes listing an account with an owner and targets (empty: any target).
    function proposeAddAccount(address account, address owner, address[] calldata targets, uint64 requestedActivation)
        external
        returns (uint256 proposalId);

    /// @notice Proposes ending an account's listing.
    function proposeRemoveAccount(address account, uint64 requestedActivation) external returns (uint256 proposalId);

    /// @notice Proposes adding a validator owned by `owner`.
    function proposeAddValidator(address validator, address owner, uint64 requestedActivation)
        external
        returns (uint256 proposalId);

    /// @notice Proposes removing a validator.
    function proposeRemoveValidator(address validator, uint64 requestedActivation) external returns (uint256 proposalId);

    /// @notice Approves an open proposal, executing it when this approval reaches the threshold.
    function approve(uint256 proposalId) external;

    /// @notice Executes an open proposal whose approvals already reach the current threshold.
    function execute(uint256 proposalId) external;

    /// @notice Cancels an open proposal; only its proposer.
    function cancel(uint256 proposalId) external;

    /// @notice Binds the registries; only the deployer, once, and each must name this contract as governance.
    function bindRegistries(address nodeRegistry, address accountAllowlist, address validatorSet) external;

    /// @notice Whether `account` is a current member.
    function isMember(address account) external view returns (bool);

    /// @notice Number of current members.
    function memberCount() external view returns (uint256);

    /// @notice One current member; reverts with {GovernanceNotMember} otherwise.
    function getMember(address account) external view returns (Member memory);

    /// @notice Up to `limit` current members starting at `offset`. The order is stable only between membership
    /// changes (a removal moves the last member into the gap).
    function listMembers(uint256 offset, uint256 limit) external view returns (Member[] memory);

    /// @notice Approvals needed now: `min(members, floor(members * numerator / denominator) + 1)`.
    function threshold() external view returns (uint256);

    /// @notice The threshold fraction's numerator, fixed at deployment.
    function thresholdNumerator() external view returns (uint256);

    /// @notice The threshold fraction's denominator, fixed at deployment.
    function thresholdDenominator() external view returns (uint256);

    /// @notice Blocks a proposal stays open, fixed at deployment.
    function proposalLifetime() external view returns (uint64);

    /// @notice Minimum blocks between executing a registry change and its taking effect, fixed at deployment.
    function activationDelay() external view returns (uint64);

    /// @notice Number of proposals made; ids run from one to this.
    function proposalCount() external view returns (uint256);

    /// @notice A proposal as stored; reverts with {GovernanceUnknownProposal} for an unknown id.
    function getProposal(uint256 proposalId) external view returns (Proposal memory);

    /// @notice Where a proposal stands at the current block.
    function proposalState(uint256 proposalId) external view returns (ProposalState);

    /// @notice Approvals of current members on the proposal.
    function approvalCount(uint256 proposalId) external view returns (uint256);

    /// @notice Whether the current member `member` has an approval on the proposal that counts.
    function hasApproved(uint256 proposalId, address member) external view returns (bool);

    /// @notice The registries bound by {bindRegistries} (zero before).
    function registries() external view returns (address nodeRegistry, address accountAllowlist, address validatorSet);
}
