// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {IAccountAllowlist} from "./IAccountAllowlist.sol";
import {IConsortiumGovernance} from "./IConsortiumGovernance.sol";
import {INodeRegistry} from "./INodeRegistry.sol";
import {IRegistry} from "./IRegistry.sol";
import {IValidatorSet} from "./IValidatorSet.sol";

/// @title ConsortiumGovernance
/// @notice Member organisations and their proposals; see {IConsortiumGovernance} for the rules.
contract ConsortiumGovernance is IConsortiumGovernance {
    using EnumerableSet for EnumerableSet.AddressSet;

    /// @notice Most members: a consortium of banks counts a few dozen at most, and the threshold count loops over
    /// the members on every approval.
    uint256 public constant MAX_MEMBERS = 64;

    /// @notice Longest member name, in bytes.
    uint256 public constant MAX_NAME_LENGTH = 64;

    /// @notice Furthest a proposal may schedule its change ahead of the proposal block: 20 million blocks, about
    /// a year at 2-second blocks. It keeps activation blocks far from the `type(uint64).max` that marks an open
    /// listing.
    uint256 public constant MAX_ACTIVATION_LEAD = 20_000_000;

    /// @notice Largest activation delay accepted at deployment, by the same bound.
    uint64 public constant MAX_ACTIVATION_DELAY = 20_000_000;

    struct MemberRecord {
        string name;
        uint64 admittedAt;
        // Counts admissions across all members; an approval counts only while it carries the approver's serial.
        uint64 serial;
    }

    uint256 private immutable _thresholdNumerator;
    uint256 private immutable _thresholdDenominator;
    uint64 private immutable _proposalLifetime;
    uint64 private immutable _activationDelay;
    address private immutable _deployer;

    EnumerableSet.AddressSet private _memberSet;
    mapping(address account => MemberRecord) private _members;
    uint64 private _lastSerial;

    mapping(uint256 proposalId => Proposal) private _proposals;
    mapping(uint256 proposalId => mapping(address member => uint64 serial)) private _approvals;
    uint256 private _proposalCount;

    INodeRegistry private _nodes;
    IAccountAllowlist private _accounts;
    IValidatorSet private _validators;

    /// @param founders Governance accounts of the founding members.
    /// @param names Their names, in the same order.
    /// @param thresholdNumerator_ With `thresholdDenominator_`, the fraction of members an approval must exceed.
    /// @param thresholdDenominator_ See above; `thresholdNumerator_ < thresholdDenominator_`.
    /// @param proposalLifetime_ Blocks a proposal stays open; non-zero.
    /// @param activationDelay_ Minimum blocks from executing a registry change to its effect; at least one.
    constructor(
        address[] memory founders,
        string[] memory names,
        uint256 thresholdNumerator_,
        uint256 thresholdDenominator_,
        uint64 proposalLifetime_,
        uint64 activationDelay_
    ) {
        if (founders.length == 0 || founders.length != names.length) {
            revert GovernanceFoundersInvalid(founders.length, names.length);
        }
        if (thresholdDenominator_ == 0 || thresholdNumerator_ >= thresholdDenominator_) {
            revert GovernanceThresholdInvalid(thresholdNumerator_, thresholdDenominator_);
        }
        if (proposalLifetime_ == 0 || activationDelay_ == 0 || activationDelay_ > MAX_ACTIVATION_DELAY) {
            revert GovernanceTimingInvalid(proposalLifetime_, activationDelay_);
        }
        _thresholdNumerator = thresholdNumerator_;
        _thresholdDenominator = thresholdDenominator_;
        _proposalLifetime = proposalLifetime_;
        _activationDelay = activationDelay_;
        _deployer = msg.sender;

        for (uint256 i = 0; i < founders.length; ++i) {
            _checkMember(founders[i], names[i]);
            _admit(founders[i], names[i], 0);
        }
    }

    modifier onlyMember() {
        if (!_memberSet.contains(msg.sender)) revert GovernanceNotMember(msg.sender);
        _;
    }

    // -------------------------------------------------------------- proposals

    /// @inheritdoc IConsortiumGovernance
    function proposeAddMember(address account, string calldata name) external onlyMember returns (uint256) {
        _checkMember(account, name);
        if (_memberSet.contains(account)) revert GovernanceAlreadyMember(account);
        return _propose(ProposalKind.AddMember, abi.encode(account, name), 0);
    }

    /// @inheritdoc IConsortiumGovernance
    function proposeRemoveMember(address account) external onlyMember returns (uint256) {
        if (!_memberSet.contains(account)) revert GovernanceNotMember(account);
        return _propose(ProposalKind.RemoveMember, abi.encode(account), 0);
    }

    /// @inheritdoc IConsortiumGovernance
    function proposeAddNode(INodeRegistry.NodeSpec calldata spec, uint64 requestedActivation)
        external
        onlyMember
        returns (uint256)
    {
        _requireBound();
        _nodes.checkNodeSpec(spec);
        _requireOwner(spec.owner);
        return _propose(ProposalKind.AddNode, abi.encode(spec), requestedActivation);
    }

    /// @inheritdoc IConsortiumGovernance
    function proposeRemoveNode(bytes32 idHigh, bytes32 idLow, uint64 requestedActivation)
        external
        onlyMember
        returns (uint256)
    {
        _requireBound();
        return _propose(ProposalKind.RemoveNode, abi.encode(idHigh, idLow), requestedActivation);
    }

    /// @inheritdoc IConsortiumGovernance
    function proposeAddAccount(address account, address owner, address[] calldata targets, uint64 requestedActivation)
        external
        onlyMember
        returns (uint256)
    {
        _requireBound();
        _accounts.checkAccount(account, targets);
        _requireOwner(owner);
        return _propose(ProposalKind.AddAccount, abi.encode(account, owner, targets), requestedActivation);
    }

    /// @inheritdoc IConsortiumGovernance
    function proposeRemoveAccount(address account, uint64 requestedActivation) external onlyMember returns (uint256) {
        _requireBound();
        return _propose(ProposalKind.RemoveAccount, abi.encode(account), requestedActivation);
    }

    /// @inheritdoc IConsortiumGovernance
    function proposeAddValidator(address validator, address owner, uint64 requestedActivation)
        external
        onlyMember
        returns (uint256)
    {
        _requireBound();
        if (validator == address(0)) revert IValidatorSet.ValidatorZero();
        _requireOwner(owner);
        return _propose(ProposalKind.AddValidator, abi.encode(validator, owner), requestedActivation);
    }

    /// @inheritdoc IConsortiumGovernance
    function proposeRemoveValidator(address validator, uint64 requestedActivation)
        external
        onlyMember
        returns (uint256)
    {
        _requireBound();
        return _propose(ProposalKind.RemoveValidator, abi.encode(validator), requestedActivation);
    }

    /// @inheritdoc IConsortiumGovernance
    function approve(uint256 proposalId) external onlyMember {
        _requireOpen(proposalId);
        _approve(proposalId, msg.sender);
    }

    /// @inheritdoc IConsortiumGovernance
    function execute(uint256 proposalId) external onlyMember {
        _requireOpen(proposalId);
        uint256 approvals = _countApprovals(proposalId);
        uint256 needed = threshold();
        if (approvals < needed) revert GovernanceThresholdNotReached(proposalId, approvals, needed);
        _execute(proposalId);
    }

    /// @inheritdoc IConsortiumGovernance
    function cancel(uint256 proposalId) external onlyMember {
        _requireOpen(proposalId);
        Proposal storage proposal = _proposals[proposalId];
        if (proposal.proposer != msg.sender) revert GovernanceNotProposer(proposalId, msg.sender);

        proposal.cancelled = true;
        emit ProposalCancelled(proposalId);
    }

    /// @inheritdoc IConsortiumGovernance
    function bindRegistries(address nodeRegistry, address accountAllowlist, address validatorSet) external {
        if (msg.sender != _deployer || address(_nodes) != address(0)) revert GovernanceBindingRefused(msg.sender);
        _requireGovernedByThis(nodeRegistry);
        _requireGovernedByThis(accountAllowlist);
        _requireGovernedByThis(validatorSet);

        _nodes = INodeRegistry(nodeRegistry);
        _accounts = IAccountAllowlist(accountAllowlist);
        _validators = IValidatorSet(validatorSet);
        emit RegistriesBound(nodeRegistry, accountAllowlist, validatorSet);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IConsortiumGovernance
    function isMember(address account) external view returns (bool) {
        return _memberSet.contains(account);
    }

    /// @inheritdoc IConsortiumGovernance
    function memberCount() external view returns (uint256) {
        return _memberSet.length();
    }

    /// @inheritdoc IConsortiumGovernance
    function getMember(address account) external view returns (Member memory) {
        if (!_memberSet.contains(account)) revert GovernanceNotMember(account);
        return _member(account);
    }

    /// @inheritdoc IConsortiumGovernance
    function listMembers(uint256 offset, uint256 limit) external view returns (Member[] memory members) {
        uint256 total = _memberSet.length();
        uint256 start = Math.min(offset, total);
        uint256 end = Math.min(total, start + Math.min(limit, total - start));
        members = new Member[](end - start);
        for (uint256 i = start; i < end; ++i) {
            members[i - start] = _member(_memberSet.at(i));
        }
    }

    /// @inheritdoc IConsortiumGovernance
    function threshold() public view returns (uint256) {
        uint256 members = _memberSet.length();
        return Math.min(members, members * _thresholdNumerator / _thresholdDenominator + 1);
    }

    /// @inheritdoc IConsortiumGovernance
    function thresholdNumerator() external view returns (uint256) {
        return _thresholdNumerator;
    }

    /// @inheritdoc IConsortiumGovernance
    function thresholdDenominator() external view returns (uint256) {
        return _thresholdDenominator;
    }

    /// @inheritdoc IConsortiumGovernance
    function proposalLifetime() external view returns (uint64) {
        return _proposalLifetime;
    }

    /// @inheritdoc IConsortiumGovernance
    function activationDelay() external view returns (uint64) {
        return _activationDelay;
    }

    /// @inheritdoc IConsortiumGovernance
    function proposalCount() external view returns (uint256) {
        return _proposalCount;
    }

    /// @inheritdoc IConsortiumGovernance
    function getProposal(uint256 proposalId) external view returns (Proposal memory) {
        if (proposalId == 0 || proposalId > _proposalCount) revert GovernanceUnknownProposal(proposalId);
        return _proposals[proposalId];
    }

    /// @inheritdoc IConsortiumGovernance
    function proposalState(uint256 proposalId) public view returns (ProposalState) {
        if (proposalId == 0 || proposalId > _proposalCount) return ProposalState.Unknown;
        Proposal storage proposal = _proposals[proposalId];
        if (proposal.executedAt != 0) return ProposalState.Executed;
        if (proposal.cancelled) return ProposalState.Cancelled;
        if (block.number >= proposal.expiresAt) return ProposalState.Expired;
        return ProposalState.Open;
    }

    /// @inheritdoc IConsortiumGovernance
    function approvalCount(uint256 proposalId) external view returns (uint256) {
        return _countApprovals(proposalId);
    }

    /// @inheritdoc IConsortiumGovernance
    function hasApproved(uint256 proposalId, address member) public view returns (bool) {
        uint64 serial = _approvals[proposalId][member];
        return serial != 0 && _memberSet.contains(member) && serial == _members[member].serial;
    }

    /// @inheritdoc IConsortiumGovernance
    function registries() external view returns (address, address, address) {
        return (address(_nodes), address(_accounts), address(_validators));
    }

    // --------------------------------------------------------------- internal

    function _propose(ProposalKind kind, bytes memory payload, uint64 requestedActivation)
        private
        returns (uint256 proposalId)
    {
        if (
            requestedActivation != 0
                && (requestedActivation <= block.number || requestedActivation > block.number + MAX_ACTIVATION_LEAD)
        ) {
            revert GovernanceActivationOutOfRange(requestedActivation, block.number, MAX_ACTIVATION_LEAD);
        }

        proposalId = ++_proposalCount;
        uint64 expiresAt = SafeCast.toUint64(block.number + _proposalLifetime);
        _proposals[proposalId] = Proposal({
            kind: kind,
            proposer: msg.sender,
            createdAt: uint64(block.number),
            expiresAt: expiresAt,
            requestedActivation: requestedActivation,
            executedAt: 0,
            cancelled: false,
            payload: payload
        });
        emit ProposalCreated(proposalId, kind, msg.sender, payload, requestedActivation, expiresAt);

        _approve(proposalId, msg.sender);
    }

    function _approve(uint256 proposalId, address member) private {
        uint64 serial = _members[member].serial;
        if (_approvals[proposalId][member] == serial) revert GovernanceAlreadyApproved(proposalId, member);

        _approvals[proposalId][member] = serial;
        uint256 approvals = _countApprovals(proposalId);
        uint256 needed = threshold();
        emit ProposalApproved(proposalId, member, approvals, needed);

        if (approvals >= needed) _execute(proposalId);
    }

    function _execute(uint256 proposalId) private {
        Proposal storage proposal = _proposals[proposalId];
        proposal.executedAt = uint64(block.number);

        uint64 effectiveBlock = _apply(proposalId, proposal.kind, proposal.payload, proposal.requestedActivation);
        emit ProposalExecuted(proposalId, effectiveBlock);
    }

    /// @dev Carries out the proposal's change; returns the block it applies from.
    function _apply(uint256 proposalId, ProposalKind kind, bytes memory payload, uint64 requestedActivation)
        private
        returns (uint64)
    {
        if (kind == ProposalKind.AddMember) {
            (address account, string memory name) = abi.decode(payload, (address, string));
            if (_memberSet.contains(account)) revert GovernanceAlreadyMember(account);
            _admit(account, name, proposalId);
            return uint64(block.number);
        }
        if (kind == ProposalKind.RemoveMember) {
            _expel(abi.decode(payload, (address)), proposalId);
            return uint64(block.number);
        }

        uint64 earliest = SafeCast.toUint64(Math.max(requestedActivation, block.number + _activationDelay));
        if (kind == ProposalKind.AddNode) {
            INodeRegistry.NodeSpec memory spec = abi.decode(payload, (INodeRegistry.NodeSpec));
            _requireOwner(spec.owner);
            return _nodes.addNode(spec, earliest);
        }
        if (kind == ProposalKind.RemoveNode) {
            (bytes32 idHigh, bytes32 idLow) = abi.decode(payload, (bytes32, bytes32));
            return _nodes.removeNode(idHigh, idLow, earliest);
        }
        if (kind == ProposalKind.AddAccount) {
            (address account, address owner, address[] memory targets) =
                abi.decode(payload, (address, address, address[]));
            _requireOwner(owner);
            return _accounts.addAccount(account, owner, targets, earliest);
        }
        if (kind == ProposalKind.RemoveAccount) {
            return _accounts.removeAccount(abi.decode(payload, (address)), earliest);
        }
        if (kind == ProposalKind.AddValidator) {
            (address validator, address owner) = abi.decode(payload, (address, address));
            _requireOwner(owner);
            return _validators.addValidator(validator, owner, earliest);
        }
        // ProposalKind.RemoveValidator, the last kind.
        return _validators.removeValidator(abi.decode(payload, (address)), earliest);
    }

    function _admit(address account, string memory name, uint256 proposalId) private {
        if (_memberSet.length() == MAX_MEMBERS) revert GovernanceTooManyMembers(MAX_MEMBERS);

        _memberSet.add(account);
        _members[account] = MemberRecord({name: name, admittedAt: uint64(block.number), serial: ++_lastSerial});
        emit MemberAdded(account, proposalId, name);
    }

    function _expel(address account, uint256 proposalId) private {
        if (!_memberSet.contains(account)) revert GovernanceNotMember(account);
        if (_memberSet.length() == 1) revert GovernanceLastMember(account);
        uint256 owned = _openEntriesOf(account);
        if (owned != 0) revert GovernanceMemberStillOwns(account, owned);

        _memberSet.remove(account);
        delete _members[account];
        emit MemberRemoved(account, proposalId);
    }

    function _countApprovals(uint256 proposalId) private view returns (uint256 approvals) {
        uint256 total = _memberSet.length();
        for (uint256 i = 0; i < total; ++i) {
            address member = _memberSet.at(i);
            if (_approvals[proposalId][member] == _members[member].serial) ++approvals;
        }
    }

    function _openEntriesOf(address account) private view returns (uint256) {
        if (address(_nodes) == address(0)) return 0;
        return IRegistry(address(_nodes)).openEntriesOf(account) + IRegistry(address(_accounts)).openEntriesOf(account)
            + IRegistry(address(_validators)).openEntriesOf(account);
    }

    function _member(address account) private view returns (Member memory) {
        MemberRecord storage record = _members[account];
        return Member({account: account, name: record.name, admittedAt: record.admittedAt});
    }

    function _requireOpen(uint256 proposalId) private view {
        if (proposalId == 0 || proposalId > _proposalCount) revert GovernanceUnknownProposal(proposalId);
        ProposalState state = proposalState(proposalId);
        if (state != ProposalState.Open) revert GovernanceProposalNotOpen(proposalId, state);
    }

    function _requireOwner(address owner) private view {
        if (!_memberSet.contains(owner)) revert IRegistry.RegistryOwnerNotMember(owner);
    }

    function _requireBound() private view {
        if (address(_nodes) == address(0)) revert GovernanceNotBound();
    }

    function _requireGovernedByThis(address registry) private view {
        if (registry.code.length == 0 || IRegistry(registry).governance() != address(this)) {
            revert GovernanceRegistryMismatch(registry);
        }
    }

    function _checkMember(address account, string memory name) private pure {
        if (account == address(0)) revert GovernanceMemberZero();
        uint256 length = bytes(name).length;
        if (length == 0 || length > MAX_NAME_LENGTH) revert GovernanceMemberNameInvalid(length);
    }
}
