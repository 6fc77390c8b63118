// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {AccessManager} from "@openzeppelin/contracts/access/manager/AccessManager.sol";
import {IAccessManager} from "@openzeppelin/contracts/access/manager/IAccessManager.sol";
import {IAccessManaged} from "@openzeppelin/contracts/access/manager/IAccessManaged.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {Time} from "@openzeppelin/contracts/utils/types/Time.sol";

import {IEcropAccessManager} from "./IEcropAccessManager.sol";
import {Roles} from "./Roles.sol";

/// @title EcropAccessManager
/// @notice The platform's single access manager; see {IEcropAccessManager} for the rules.
/// @dev Every administrative entry point of OpenZeppelin's `AccessManager` is overridden so that it is gated by the
/// matrix entry (this contract, selector) and by the four-eyes rule instead of by `ADMIN_ROLE`, which only this
/// contract holds. Account admins with an execution delay are refused on these functions rather than scheduled.
contract EcropAccessManager is AccessManager, IEcropAccessManager {
    /// @notice How long a proposal waits for its second admin: one week, long enough to reach a colleague across
    /// a holiday, short enough that stale proposals do not linger.
    uint48 public constant PROPOSAL_LIFETIME = 7 days;

    mapping(uint64 roleId => mapping(address account => uint48)) private _expiries;
    mapping(uint64 roleId => bool) private _sensitive;
    mapping(uint256 proposalId => Proposal) private _proposals;
    uint256 private _proposalCount;
    uint256 private _platformAdmins;
    bool private _bootstrapping;
    bool private _executingProposal;

    /// @param bootstrapAdmin First platform admin; may wire the matrix alone until {finishBootstrap}.
    constructor(address bootstrapAdmin) AccessManager(address(this)) {
        _bootstrapping = true;
        _sensitive[Roles.PLATFORM_ADMIN] = true;
        emit RoleSensitivitySet(Roles.PLATFORM_ADMIN, true);

        bytes4[] memory selectors = new bytes4[](16);
        selectors[0] = IAccessManager.labelRole.selector;
        selectors[1] = IAccessManager.grantRole.selector;
        selectors[2] = IAccessManager.revokeRole.selector;
        selectors[3] = IAccessManager.setRoleAdmin.selector;
        selectors[4] = IAccessManager.setRoleGuardian.selector;
        selectors[5] = IAccessManager.setGrantDelay.selector;
        selectors[6] = IAccessManager.setTargetFunctionRole.selector;
        selectors[7] = IAccessManager.setTargetAdminDelay.selector;
        selectors[8] = IAccessManager.setTargetClosed.selector;
        selectors[9] = IAccessManager.updateAuthority.selector;
        selectors[10] = IEcropAccessManager.grantRoleWithExpiry.selector;
        selectors[11] = IEcropAccessManager.setRoleSensitive.selector;
        selectors[12] = IEcropAccessManager.propose.selector;
        selectors[13] = IEcropAccessManager.approve.selector;
        selectors[14] = IEcropAccessManager.cancelProposal.selector;
        selectors[15] = IEcropAccessManager.finishBootstrap.selector;
        for (uint256 i = 0; i < selectors.length; ++i) {
            _setTargetFunctionRole(address(this), selectors[i], Roles.PLATFORM_ADMIN);
        }

        _grantRole(Roles.PLATFORM_ADMIN, bootstrapAdmin, 0, 0);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IAccessManager
    /// @dev A grant past its expiry answers `false`, which every `canCall` path consults.
    function hasRole(uint64 roleId, address account)
        public
        view
        override(AccessManager, IAccessManager)
        returns (bool isMember, uint32 executionDelay)
    {
        (isMember, executionDelay) = super.hasRole(roleId, account);
        if (isMember) {
            uint48 expiry = _expiries[roleId][account];
            if (expiry != 0 && expiry <= Time.timestamp()) return (false, 0);
        }
    }

    /// @inheritdoc IEcropAccessManager
    function getRoleExpiry(uint64 roleId, address account) external view returns (uint48) {
        return _expiries[roleId][account];
    }

    /// @inheritdoc IEcropAccessManager
    function isRoleSensitive(uint64 roleId) public view returns (bool) {
        return _sensitive[roleId];
    }

    /// @inheritdoc IEcropAccessManager
    function bootstrapping() external view returns (bool) {
        return _bootstrapping;
    }

    /// @inheritdoc IEcropAccessManager
    function platformAdminCount() external view returns (uint256) {
        return _platformAdmins;
    }

    /// @inheritdoc IEcropAccessManager
    function getProposal(uint256 proposalId) external view returns (Proposal memory) {
        return _proposals[proposalId];
    }

    /// @inheritdoc IEcropAccessManager
    function proposalLifetime() external pure returns (uint48) {
        return PROPOSAL_LIFETIME;
    }

    // ------------------------------------------------------------ four eyes

    /// @inheritdoc IEcropAccessManager
    function propose(bytes calldata data) external returns (uint256 proposalId) {
        _authorizeHuman();
        bytes4 selector = data.length < 4 ? bytes4(0) : bytes4(data[0:4]);
        if (!_isProposable(selector)) revert AccessManagerProposalSelectorNotAllowed(selector);

        proposalId = ++_proposalCount;
        _proposals[proposalId] = Proposal({
            proposer: msg.sender, createdAt: Time.timestamp(), status: ProposalStatus.Pending, dataHash: keccak256(data)
        });
        emit ProposalCreated(proposalId, msg.sender, data);
    }

    /// @inheritdoc IEcropAccessManager
    function approve(uint256 proposalId, bytes calldata data) external {
        _authorizeHuman();
        Proposal storage proposal = _proposals[proposalId];
        if (proposal.status != ProposalStatus.Pending) revert AccessManagerProposalNotPending(proposalId);
        if (proposal.proposer == msg.sender) revert AccessManagerSelfApproval(proposalId, msg.sender);
        bytes32 given = keccak256(data);
        if (given != proposal.dataHash) revert AccessManagerProposalDataMismatch(proposalId, proposal.dataHash, given);
        if (proposal.createdAt + PROPOSAL_LIFETIME <= Time.timestamp()) {
            revert AccessManagerProposalExpired(proposalId, proposal.createdAt);
        }

        proposal.status = ProposalStatus.Executed;
        emit ProposalExecuted(proposalId, msg.sender);

        // The self-call runs the administrative function with this contract as caller; the flag tells
        // {_authorizeAdmin} that both admins have already been checked.
        _executingProposal = true;
        // The administrative functions return nothing; only success matters, and failures bubble up.
        // slither-disable-next-line unused-return
        Address.functionCall(address(this), data);
        _executingProposal = false;
    }

    /// @inheritdoc IEcropAccessManager
    function cancelProposal(uint256 proposalId) external {
        _authorizeHuman();
        Proposal storage proposal = _proposals[proposalId];
        if (proposal.status != ProposalStatus.Pending) revert AccessManagerProposalNotPending(proposalId);

        proposal.status = ProposalStatus.Cancelled;
        emit ProposalCancelled(proposalId, msg.sender);
    }

    /// @inheritdoc IEcropAccessManager
    function finishBootstrap() external {
        _authorizeHuman();
        if (!_bootstrapping) revert AccessManagerBootstrapOver();
        if (_platformAdmins < 2) revert AccessManagerTooFewAdmins(_platformAdmins);

        _bootstrapping = false;
        emit BootstrapFinished(msg.sender, _platformAdmins);
    }

    // ------------------------------------------------------- grants, roles

    /// @inheritdoc IEcropAccessManager
    function grantRoleWithExpiry(uint64 roleId, address account, uint32 executionDelay, uint48 expiry) external {
        _authorizeAdmin(_sensitive[roleId]);
        _grantWithExpiry(roleId, account, executionDelay, expiry);
    }

    /// @inheritdoc IAccessManager
    /// @dev A grant without expiry; four eyes when `roleId` is sensitive.
    function grantRole(uint64 roleId, address account, uint32 executionDelay)
        public
        override(AccessManager, IAccessManager)
    {
        _authorizeAdmin(_sensitive[roleId]);
        _grantWithExpiry(roleId, account, executionDelay, 0);
    }

    /// @inheritdoc IAccessManager
    /// @dev A single admin may revoke: taking access away must be fast.
    function revokeRole(uint64 roleId, address account) public override(AccessManager, IAccessManager) {
        _authorizeAdmin(false);
        if (roleId == ADMIN_ROLE) revert AccessManagerLockedRole(roleId);
        _revokeRole(roleId, account);
    }

    /// @inheritdoc IAccessManager
    function labelRole(uint64 roleId, string calldata label) public override(AccessManager, IAccessManager) {
        _authorizeAdmin(false);
        if (roleId == ADMIN_ROLE || roleId == PUBLIC_ROLE) revert AccessManagerLockedRole(roleId);
        emit RoleLabel(roleId, label);
    }

    /// @inheritdoc IEcropAccessManager
    function setRoleSensitive(uint64 roleId, bool sensitive) external {
        _authorizeAdmin(true);
        if (roleId == Roles.PLATFORM_ADMIN && !sensitive) revert AccessManagerRoleAlwaysSensitive(roleId);
        _sensitive[roleId] = sensitive;
        emit RoleSensitivitySet(roleId, sensitive);
    }

    /// @inheritdoc IAccessManager
    function setRoleAdmin(uint64 roleId, uint64 admin) public override(AccessManager, IAccessManager) {
        _authorizeAdmin(true);
        _setRoleAdmin(roleId, admin);
    }

    /// @inheritdoc IAccessManager
    function setRoleGuardian(uint64 roleId, uint64 guardian) public override(AccessManager, IAccessManager) {
        _authorizeAdmin(true);
        _setRoleGuardian(roleId, guardian);
    }

    /// @inheritdoc IAccessManager
    function setGrantDelay(uint64 roleId, uint32 newDelay) public override(AccessManager, IAccessManager) {
        _authorizeAdmin(true);
        _setGrantDelay(roleId, newDelay);
    }

    // ------------------------------------------------------------- targets

    /// @inheritdoc IAccessManager
    function setTargetFunctionRole(address target, bytes4[] calldata selectors, uint64 roleId)
        public
        override(AccessManager, IAccessManager)
    {
        _authorizeAdmin(true);
        for (uint256 i = 0; i < selectors.length; ++i) {
            _setTargetFunctionRole(target, selectors[i], roleId);
        }
    }

    /// @inheritdoc IAccessManager
    function setTargetAdminDelay(address target, uint32 newDelay) public override(AccessManager, IAccessManager) {
        _authorizeAdmin(true);
        _setTargetAdminDelay(target, newDelay);
    }

    /// @inheritdoc IAccessManager
    /// @dev Closing is an emergency brake for a single admin; reopening needs four eyes.
    function setTargetClosed(address target, bool closed) public override(AccessManager, IAccessManager) {
        _authorizeAdmin(!closed);
        _setTargetClosed(target, closed);
    }

    /// @inheritdoc IAccessManager
    function updateAuthority(address target, address newAuthority) public override(AccessManager, IAccessManager) {
        _authorizeAdmin(true);
        IAccessManaged(target).setAuthority(newAuthority);
    }

    // ------------------------------------------------------------ internal

    /// @dev Counts platform admins so that four eyes stay possible.
    function _grantRole(uint64 roleId, address account, uint32 grantDelay, uint32 executionDelay)
        internal
        override
        returns (bool newMember)
    {
        newMember = super._grantRole(roleId, account, grantDelay, executionDelay);
        if (newMember && roleId == Roles.PLATFORM_ADMIN) ++_platformAdmins;
    }

    /// @dev Clears the expiry with the grant; refuses to leave fewer than two platform admins after bootstrap (this
    /// path also serves `renounceRole`).
    function _revokeRole(uint64 roleId, address account) internal override returns (bool wasMember) {
        wasMember = super._revokeRole(roleId, account);
        if (!wasMember) return false;

        if (_expiries[roleId][account] != 0) {
            delete _expiries[roleId][account];
            emit RoleExpirySet(roleId, account, 0);
        }
        if (roleId == Roles.PLATFORM_ADMIN) {
            uint256 remaining = --_platformAdmins;
            if (!_bootstrapping && remaining < 2) revert AccessManagerTooFewAdmins(remaining);
        }
    }

    function _grantWithExpiry(uint64 roleId, address account, uint32 executionDelay, uint48 expiry) private {
        if (roleId == ADMIN_ROLE) revert AccessManagerLockedRole(roleId);
        uint48 now_ = Time.timestamp();
        if (expiry != 0 && expiry <= now_) revert AccessManagerGrantExpiryInPast(expiry, now_);

        _grantRole(roleId, account, getRoleGrantDelay(roleId), executionDelay);
        _expiries[roleId][account] = expiry;
        emit RoleExpirySet(roleId, account, expiry);
    }

    /// @dev Passes proposal executions; otherwise the caller needs the matrix role of (this, msg.sig) without delay,
    /// and four-eyes actions outside bootstrap are refused.
    function _authorizeAdmin(bool fourEyes) private view {
        if (msg.sender == address(this) && _executingProposal) return;
        _authorizeHuman();
        if (fourEyes && !_bootstrapping) revert AccessManagerFourEyesRequired(msg.sig);
    }

    /// @dev The caller holds the matrix role of (this, msg.sig), unexpired and without execution delay.
    function _authorizeHuman() private view {
        uint64 required = getTargetFunctionRole(address(this), msg.sig);
        (bool isMember, uint32 delay) = hasRole(required, msg.sender);
        if (!isMember || delay != 0) revert AccessManagerUnauthorizedAccount(msg.sender, required);
    }

    function _isProposable(bytes4 selector) private pure returns (bool) {
        return selector == this.grantRole.selector || selector == this.grantRoleWithExpiry.selector
            || selector == this.revokeRole.selector || selector == this.labelRole.selector
            || selector == this.setRoleAdmin.selector || selector == this.setRoleGuardian.selector
            || selector == this.setGrantDelay.selector || selector == this.setTargetFunctionRole.selector
            || selector == this.setTargetAdminDelay.selector || selector == this.setTargetClosed.selector
            || selector == this.updateAuthority.selector || selector == this.setRoleSensitive.selector;
    }
}
