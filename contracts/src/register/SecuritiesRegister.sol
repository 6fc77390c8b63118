// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {AccessManaged} from "@openzeppelin/contracts/access/manager/AccessManaged.sol";
import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Time} from "@openzeppelin/contracts/utils/types/Time.sol";

import {IInvestorRegistry} from "./IInvestorRegistry.sol";
import {Isin} from "./Isin.sol";
import {ISecuritiesRegister} from "./ISecuritiesRegister.sol";
import {ISecurityToken} from "./ISecurityToken.sol";
import {SecurityToken} from "./SecurityToken.sol";

/// @title SecuritiesRegister
/// @notice See {ISecuritiesRegister}.
/// @dev Every balance change goes through {_move} (check, then book) or, for instructed transfers whose failures must
/// not revert, through {_check} and {_book} directly. {_check} is the one place that knows the movement rules.
contract SecuritiesRegister is AccessManaged, ISecuritiesRegister {
    using SafeCast for uint256;

    /// @notice Most restrictions, and separately most pledges, on one holding. Eight keeps the free-balance loop on
    /// every transfer bounded (eight storage reads at worst) while leaving room for several concurrent orders.
    uint256 public constant MAX_ENCUMBRANCES = 8;

    /// @dev One storage slot per holding. 104 bits hold 2e31 units, far beyond any issue volume.
    struct Holding {
        uint104 balance;
        uint104 encumbered;
        uint8 restrictionCount;
        uint8 pledgeCount;
        uint16 pendingInstructions;
        bool frozen;
    }

    IInvestorRegistry private immutable _registry;
    address private immutable _tokenImplementation;

    bool private _paused;
    uint64 private _entryCount;
    uint64 private _restrictionCount;
    uint64 private _pledgeCount;

    mapping(bytes12 isin => Security) private _securities;
    mapping(bytes12 isin => mapping(address holder => Holding)) private _holdings;
    mapping(bytes12 isin => mapping(address holder => uint256[])) private _restrictionIds;
    mapping(bytes12 isin => mapping(address holder => uint256[])) private _pledgeIds;
    mapping(uint256 restrictionId => Restriction) private _restrictions;
    mapping(uint256 pledgeId => Pledge) private _pledges;
    mapping(uint256 entryId => bytes32) private _entryHashes;
    mapping(uint256 entryId => uint256 reversalId) private _reversedBy;
    mapping(address issuer => mapping(bytes32 digest => bool)) private _consents;

    /// @param authority The platform's {EcropAccessManager}.
    /// @param registry The {InvestorRegistry} consulted on every movement.
    constructor(address authority, address registry) AccessManaged(authority) {
        if (registry == address(0)) revert RegisterZeroAddress();
        _registry = IInvestorRegistry(registry);
        _tokenImplementation = address(new SecurityToken());
    }

    // ------------------------------------------------------------------ issuer

    /// @inheritdoc ISecuritiesRegister
    function consent(bytes32 digest) external restricted {
        _consents[msg.sender][digest] = true;
        emit IssuerConsentGiven(msg.sender, digest);
    }

    /// @inheritdoc ISecuritiesRegister
    function revokeConsent(bytes32 digest) external restricted {
        if (!_consents[msg.sender][digest]) revert RegisterConsentMissing(msg.sender, digest);
        delete _consents[msg.sender][digest];
        emit IssuerConsentRevoked(msg.sender, digest);
    }

    // --------------------------------------------------------- register keeper

    /// @inheritdoc ISecuritiesRegister
    function createSecurity(SecurityParams calldata params) external restricted returns (address token) {
        bytes12 isin = params.isin;
        if (!Isin.isValid(isin)) revert RegisterInvalidIsin(isin);
        if (_securities[isin].status != SecurityStatus.None) revert RegisterSecurityExists(isin);
        if (params.issuer == address(0)) revert RegisterZeroAddress();
        _checkCurrency(params.currency);
        if (params.issueVolume == 0 || params.issueVolume > type(uint104).max) {
            revert RegisterIssueVolumeInvalid(isin, 0, params.issueVolume);
        }
        _useConsent(params.issuer);

        token = Clones.cloneDeterministicWithImmutableArgs(_tokenImplementation, abi.encodePacked(isin), bytes32(isin));
        Security storage entry = _securities[isin];
        entry.token = token;
        entry.kind = params.kind;
        entry.status = SecurityStatus.Active;
        entry.currency = params.currency;
        entry.issuer = params.issuer;
        entry.nominalPerUnit = params.nominalPerUnit;
        entry.issueVolume = params.issueVolume;
        entry.termsHash = params.termsHash;
        entry.termsUri = params.termsUri;
        emit SecurityCreated(
            isin,
            params.issuer,
            token,
            params.kind,
            params.currency,
            params.nominalPerUnit,
            params.issueVolume,
            params.termsHash,
            params.termsUri
        );
    }

    /// @inheritdoc ISecuritiesRegister
    function amendTerms(bytes12 isin, bytes32 termsHash, string calldata termsUri) external restricted {
        Security storage entry = _known(isin);
        _useConsent(entry.issuer);

        entry.termsHash = termsHash;
        entry.termsUri = termsUri;
        emit SecurityTermsAmended(isin, termsHash, termsUri);
    }

    /// @inheritdoc ISecuritiesRegister
    function setSecurityStatus(bytes12 isin, SecurityStatus status) external restricted {
        Security storage entry = _known(isin);
        SecurityStatus current = entry.status;
        bool allowed = (current == SecurityStatus.Active && status == SecurityStatus.Suspended)
            || (current == SecurityStatus.Suspended && status == SecurityStatus.Active)
            || (current != SecurityStatus.Closed && status == SecurityStatus.Closed);
        if (!allowed) revert RegisterStatusTransitionInvalid(isin, current, status);
        if (status == SecurityStatus.Closed && entry.totalSupply != 0) {
            revert RegisterSupplyOutstanding(isin, entry.totalSupply);
        }
        _useConsent(entry.issuer);

        entry.status = status;
        emit SecurityStatusChanged(isin, current, status);
    }

    /// @inheritdoc ISecuritiesRegister
    function increaseIssueVolume(bytes12 isin, uint256 issueVolume) external restricted {
        Security storage entry = _known(isin);
        uint256 current = entry.issueVolume;
        if (issueVolume <= current || issueVolume > type(uint104).max) {
            revert RegisterIssueVolumeInvalid(isin, current, issueVolume);
        }
        _useConsent(entry.issuer);

        // casting to 'uint128' is safe because issueVolume fits 104 bits, checked above
        // forge-lint: disable-next-line(unsafe-typecast)
        entry.issueVolume = uint128(issueVolume);
        emit IssueVolumeIncreased(isin, current, issueVolume);
    }

    /// @inheritdoc ISecuritiesRegister
    function issue(bytes12 isin, address to, uint256 amount) external restricted returns (uint256 entryId) {
        Security storage entry = _known(isin);
        if (amount == 0) revert RegisterZeroAmount();
        _useConsent(entry.issuer);

        entryId = _move(Entry(isin, EntryKind.Issue, address(0), to, amount), 0, ActionReason.None, bytes32(0));
        _notifyToken(isin, address(0), to, amount);
    }

    /// @inheritdoc ISecuritiesRegister
    function redeem(bytes12 isin, address from, uint256 amount) external restricted returns (uint256 entryId) {
        Security storage entry = _known(isin);
        if (amount == 0) revert RegisterZeroAmount();
        _useConsent(entry.issuer);

        entryId = _move(Entry(isin, EntryKind.Redemption, from, address(0), amount), 0, ActionReason.None, bytes32(0));
        _notifyToken(isin, from, address(0), amount);
    }

    /// @inheritdoc ISecuritiesRegister
    function restrict(bytes12 isin, address holder, uint256 amount, uint16 reasonCode, bytes32 authority, uint48 expiry)
        external
        restricted
        returns (uint256 restrictionId)
    {
        _known(isin);
        if (amount == 0) revert RegisterZeroAmount();
        if (expiry != 0 && expiry <= Time.timestamp()) revert RegisterRestrictionExpiryInPast(expiry);
        Holding storage position = _holdings[isin][holder];
        if (position.restrictionCount >= MAX_ENCUMBRANCES) {
            revert RegisterTooManyEncumbrances(isin, holder, MAX_ENCUMBRANCES);
        }
        uint256 free = _free(isin, holder, position);
        if (free < amount) revert RegisterFreeBalanceTooLow(isin, holder, free, amount);

        restrictionId = ++_restrictionCount;
        _restrictions[restrictionId] = Restriction({
            isin: isin,
            holder: holder,
            amount: amount.toUint104(),
            expiry: expiry,
            reasonCode: reasonCode,
            active: true,
            authority: authority
        });
        _restrictionIds[isin][holder].push(restrictionId);
        ++position.restrictionCount;
        emit RestrictionPlaced(restrictionId, isin, holder, amount, reasonCode, authority, expiry);
    }

    /// @inheritdoc ISecuritiesRegister
    function releaseRestriction(uint256 restrictionId) external restricted {
        Restriction storage entry = _restrictions[restrictionId];
        if (!entry.active) revert RegisterRestrictionInactive(restrictionId);
        bytes12 isin = entry.isin;
        address holder = entry.holder;

        entry.active = false;
        _removeId(_restrictionIds[isin][holder], restrictionId);
        --_holdings[isin][holder].restrictionCount;
        emit RestrictionReleased(restrictionId, isin, holder);
    }

    /// @inheritdoc ISecuritiesRegister
    function pledge(bytes12 isin, address holder, uint256 amount, address beneficiary, PledgeKind kind)
        external
        restricted
        returns (uint256 pledgeId)
    {
        _known(isin);
        if (amount == 0) revert RegisterZeroAmount();
        if (beneficiary == address(0)) revert RegisterZeroAddress();
        Holding storage position = _holdings[isin][holder];
        if (position.pledgeCount >= MAX_ENCUMBRANCES) {
            revert RegisterTooManyEncumbrances(isin, holder, MAX_ENCUMBRANCES);
        }
        uint256 free = _free(isin, holder, position);
        if (free < amount) revert RegisterFreeBalanceTooLow(isin, holder, free, amount);

        pledgeId = ++_pledgeCount;
        uint104 amount104 = amount.toUint104();
        _pledges[pledgeId] =
            Pledge({isin: isin, holder: holder, amount: amount104, kind: kind, active: true, beneficiary: beneficiary});
        _pledgeIds[isin][holder].push(pledgeId);
        ++position.pledgeCount;
        position.encumbered += amount104;
        emit PledgeCreated(pledgeId, isin, holder, beneficiary, amount, kind);
    }

    /// @inheritdoc ISecuritiesRegister
    function releasePledge(uint256 pledgeId) external restricted {
        Pledge storage entry = _pledges[pledgeId];
        if (!entry.active) revert RegisterPledgeInactive(pledgeId);
        bytes12 isin = entry.isin;
        address holder = entry.holder;

        entry.active = false;
        _removeId(_pledgeIds[isin][holder], pledgeId);
        Holding storage position = _holdings[isin][holder];
        --position.pledgeCount;
        position.encumbered -= entry.amount;
        emit PledgeReleased(pledgeId, isin, holder);
    }

    /// @inheritdoc ISecuritiesRegister
    function forcedTransfer(
        bytes12 isin,
        address from,
        address to,
        uint256 amount,
        ActionReason reason,
        bytes32 documentHash
    ) external restricted returns (uint256 entryId) {
        if (amount == 0) revert RegisterZeroAmount();
        if (reason == ActionReason.None) revert RegisterReasonMissing();

        entryId = _move(Entry(isin, EntryKind.Forced, from, to, amount), 0, reason, documentHash);
        _notifyToken(isin, from, to, amount);
    }

    /// @inheritdoc ISecuritiesRegister
    function recover(bytes12 isin, address lost, address replacement, bytes32 documentHash)
        external
        restricted
        returns (uint256 entryId)
    {
        if (lost == replacement) revert RegisterRecoverySameWallet(lost);
        bytes32 holderId = _registry.holderOf(lost);
        if (holderId == bytes32(0) || holderId != _registry.holderOf(replacement)) {
            revert RegisterRecoveryNotSameInvestor(lost, replacement);
        }

        uint256 amount = _holdings[isin][lost].balance;
        entryId =
            _move(Entry(isin, EntryKind.Recovery, lost, replacement, amount), 0, ActionReason.KeyLoss, documentHash);
        _moveEncumbrances(isin, lost, replacement);
        if (amount != 0) _notifyToken(isin, lost, replacement, amount);
    }

    /// @inheritdoc ISecuritiesRegister
    function reverse(uint256 entryId, Entry calldata original, bytes32 documentHash)
        external
        restricted
        returns (uint256 reversalId)
    {
        bytes32 stored = _entryHashes[entryId];
        if (stored == bytes32(0) || stored != keccak256(abi.encode(original))) revert RegisterEntryMismatch(entryId);
        uint256 prior = _reversedBy[entryId];
        if (prior != 0) revert RegisterEntryAlreadyReversed(entryId, prior);
        if (original.kind == EntryKind.Reversal || original.kind == EntryKind.Recovery) {
            revert RegisterEntryNotReversible(entryId, original.kind);
        }

        Entry memory reversal = Entry(original.isin, EntryKind.Reversal, original.to, original.from, original.amount);
        reversalId = _move(reversal, entryId, ActionReason.WrongfulEntry, documentHash);
        _reversedBy[entryId] = reversalId;
        _notifyToken(original.isin, original.to, original.from, original.amount);
    }

    // -------------------------------------------------------------- compliance

    /// @inheritdoc ISecuritiesRegister
    function setHoldingFrozen(bytes12 isin, address holder, bool frozen) external restricted {
        _known(isin);
        _holdings[isin][holder].frozen = frozen;
        emit HoldingFreezeUpdated(isin, holder, frozen);
    }

    // ------------------------------------------------------------------- admin

    /// @inheritdoc ISecuritiesRegister
    function setPaused(bool stopped) external restricted {
        _paused = stopped;
        emit RegisterPauseUpdated(msg.sender, stopped);
    }

    // -------------------------------------------------------- instruction book

    /// @inheritdoc ISecuritiesRegister
    function noteInstruction(bytes12 isin, address holder) external restricted {
        Holding storage position = _holdings[isin][holder];
        uint16 pending = position.pendingInstructions;
        if (pending == type(uint16).max) revert RegisterPendingInstructionsInvalid(isin, holder);

        position.pendingInstructions = ++pending;
        emit InstructionNoted(isin, holder, pending);
    }

    /// @inheritdoc ISecuritiesRegister
    function executeInstruction(
        bytes12 isin,
        address from,
        address to,
        uint256 amount,
        uint256 deadline,
        uint256 instructionId
    ) external restricted returns (ReasonCode code, uint256 entryId) {
        // While paused the queue waits: reverting keeps the instruction queued instead of rejecting it.
        if (_paused) revert RegisterMovementRefused(isin, from, to, amount, ReasonCode.RegisterPaused);
        Holding storage position = _holdings[isin][from];
        if (position.pendingInstructions == 0) revert RegisterPendingInstructionsInvalid(isin, from);
        --position.pendingInstructions;

        if (block.timestamp > deadline) return (ReasonCode.InstructionExpired, 0);
        code = _check(isin, from, to, amount, EntryKind.Instructed);
        if (code != ReasonCode.Ok) return (code, 0);

        entryId = _book(Entry(isin, EntryKind.Instructed, from, to, amount), instructionId, ActionReason.None, 0);
        _notifyToken(isin, from, to, amount);
    }

    // ------------------------------------------------------------------- token

    /// @inheritdoc ISecuritiesRegister
    function transferFromToken(bytes12 isin, address from, address to, uint256 amount) external {
        if (_securities[isin].token != msg.sender) revert RegisterNotTokenOf(isin, msg.sender);
        _move(Entry(isin, EntryKind.Transfer, from, to, amount), 0, ActionReason.None, bytes32(0));
    }

    // ------------------------------------------------------------------- views

    /// @inheritdoc ISecuritiesRegister
    function checkTransfer(bytes12 isin, address from, address to, uint256 amount) external view returns (ReasonCode) {
        return _check(isin, from, to, amount, EntryKind.Transfer);
    }

    /// @inheritdoc ISecuritiesRegister
    function checkMovement(bytes12 isin, address from, address to, uint256 amount, EntryKind kind)
        external
        view
        returns (ReasonCode)
    {
        return _check(isin, from, to, amount, kind);
    }

    /// @inheritdoc ISecuritiesRegister
    function consentDigest(bytes calldata callData) external view returns (bytes32) {
        return _digest(callData);
    }

    /// @inheritdoc ISecuritiesRegister
    function hasConsent(address issuer, bytes32 digest) external view returns (bool) {
        return _consents[issuer][digest];
    }

    /// @inheritdoc ISecuritiesRegister
    function security(bytes12 isin) external view returns (Security memory) {
        return _securities[isin];
    }

    /// @inheritdoc ISecuritiesRegister
    function balanceOf(bytes12 isin, address holder) external view returns (uint256) {
        return _holdings[isin][holder].balance;
    }

    /// @inheritdoc ISecuritiesRegister
    function totalSupply(bytes12 isin) external view returns (uint256) {
        return _securities[isin].totalSupply;
    }

    /// @inheritdoc ISecuritiesRegister
    function holding(bytes12 isin, address holder) external view returns (HoldingView memory snapshot) {
        Holding storage position = _holdings[isin][holder];
        snapshot.balance = position.balance;
        snapshot.restricted = position.restrictionCount == 0 ? 0 : _restricted(isin, holder);
        snapshot.encumbered = position.encumbered;
        snapshot.free = _free(isin, holder, position);
        snapshot.frozen = position.frozen;
        snapshot.pendingInstructions = position.pendingInstructions;
        snapshot.restrictionCount = position.restrictionCount;
        snapshot.pledgeCount = position.pledgeCount;
    }

    /// @inheritdoc ISecuritiesRegister
    function restrictionIds(bytes12 isin, address holder) external view returns (uint256[] memory) {
        return _restrictionIds[isin][holder];
    }

    /// @inheritdoc ISecuritiesRegister
    function pledgeIds(bytes12 isin, address holder) external view returns (uint256[] memory) {
        return _pledgeIds[isin][holder];
    }

    /// @inheritdoc ISecuritiesRegister
    function restriction(uint256 restrictionId) external view returns (Restriction memory) {
        return _restrictions[restrictionId];
    }

    /// @inheritdoc ISecuritiesRegister
    function pledgeOf(uint256 pledgeId) external view returns (Pledge memory) {
        return _pledges[pledgeId];
    }

    /// @inheritdoc ISecuritiesRegister
    function entryCount() external view returns (uint256) {
        return _entryCount;
    }

    /// @inheritdoc ISecuritiesRegister
    function entryHash(uint256 entryId) external view returns (bytes32) {
        return _entryHashes[entryId];
    }

    /// @inheritdoc ISecuritiesRegister
    function reversedBy(uint256 entryId) external view returns (uint256) {
        return _reversedBy[entryId];
    }

    /// @inheritdoc ISecuritiesRegister
    function paused() external view returns (bool) {
        return _paused;
    }

    /// @inheritdoc ISecuritiesRegister
    function investorRegistry() external view returns (address) {
        return address(_registry);
    }

    // ---------------------------------------------------------- check and book

    /// @dev Check, then book; reverts with the reason code when the check fails.
    function _move(Entry memory entry, uint256 ref, ActionReason reason, bytes32 documentHash)
        private
        returns (uint256 entryId)
    {
        ReasonCode code = _check(entry.isin, entry.from, entry.to, entry.amount, entry.kind);
        if (code != ReasonCode.Ok) {
            revert RegisterMovementRefused(entry.isin, entry.from, entry.to, entry.amount, code);
        }
        return _book(entry, ref, reason, documentHash);
    }

    /// @dev The movement rules; see {ISecuritiesRegister-checkMovement}. Sender side first, then receiver side.
    function _check(bytes12 isin, address from, address to, uint256 amount, EntryKind kind)
        private
        view
        returns (ReasonCode)
    {
        if (_paused) return ReasonCode.RegisterPaused;
        Security storage entry = _securities[isin];
        SecurityStatus status = entry.status;
        if (status == SecurityStatus.None) return ReasonCode.SecurityUnknown;
        bool needsActive = kind == EntryKind.Transfer || kind == EntryKind.Instructed || kind == EntryKind.Issue;
        if (needsActive ? status != SecurityStatus.Active : status == SecurityStatus.Closed) {
            return ReasonCode.SecurityNotActive;
        }

        ReasonCode code;
        if (kind == EntryKind.Issue) {
            if (entry.totalSupply + amount > entry.issueVolume) return ReasonCode.IssueVolumeExceeded;
        } else if (from == address(0)) {
            // Only the reversal of a redemption books from nowhere; it stays within the issue volume too.
            if (kind != EntryKind.Reversal) return ReasonCode.SenderNotRegistered;
            if (entry.totalSupply + amount > entry.issueVolume) return ReasonCode.IssueVolumeExceeded;
        } else {
            code = _checkSender(isin, from, amount, kind);
            if (code != ReasonCode.Ok) return code;
        }

        if (kind == EntryKind.Redemption || (kind == EntryKind.Reversal && to == address(0))) return ReasonCode.Ok;
        return _checkReceiver(isin, to, entry.kind);
    }

    function _checkSender(bytes12 isin, address from, uint256 amount, EntryKind kind)
        private
        view
        returns (ReasonCode)
    {
        Holding storage position = _holdings[isin][from];
        if (kind == EntryKind.Transfer || kind == EntryKind.Instructed) {
            (bytes32 holderId, IInvestorRegistry.Investor memory investor) = _registry.walletStatus(from);
            if (holderId == bytes32(0)) return ReasonCode.SenderNotRegistered;
            if (investor.kycStatus != IInvestorRegistry.KycStatus.Approved) return ReasonCode.SenderKycNotApproved;
            if (investor.kycExpiry <= block.timestamp) return ReasonCode.SenderKycExpired;
            if (investor.frozen) return ReasonCode.SenderInvestorFrozen;
            if (position.frozen) return ReasonCode.SenderHoldingFrozen;
            if (kind == EntryKind.Transfer && position.pendingInstructions != 0) {
                return ReasonCode.InstructionsPending;
            }
        }

        uint256 balance = position.balance;
        if (balance < amount) return ReasonCode.InsufficientBalance;
        if (kind == EntryKind.Recovery) return ReasonCode.Ok;
        if (kind == EntryKind.Forced || kind == EntryKind.Reversal) {
            return balance - position.encumbered < amount ? ReasonCode.BalanceEncumbered : ReasonCode.Ok;
        }
        return _free(isin, from, position) < amount ? ReasonCode.InsufficientFreeBalance : ReasonCode.Ok;
    }

    function _checkReceiver(bytes12 isin, address to, SecurityKind securityKind) private view returns (ReasonCode) {
        if (to == address(0)) return ReasonCode.ReceiverZeroAddress;
        (bytes32 holderId, IInvestorRegistry.Investor memory investor) = _registry.walletStatus(to);
        if (holderId == bytes32(0)) return ReasonCode.ReceiverNotRegistered;
        if (investor.kycStatus != IInvestorRegistry.KycStatus.Approved) return ReasonCode.ReceiverKycNotApproved;
        if (investor.kycExpiry <= block.timestamp) return ReasonCode.ReceiverKycExpired;
        if (investor.frozen) return ReasonCode.ReceiverInvestorFrozen;
        if (_holdings[isin][to].frozen) return ReasonCode.ReceiverHoldingFrozen;
        if (securityKind == SecurityKind.Collective && !investor.collective) {
            return ReasonCode.ReceiverNotCollectiveHolder;
        }
        return ReasonCode.Ok;
    }

    /// @dev Books a checked movement: the only code that changes balances and supply. A self-transfer or a zero
    /// amount changes nothing and gets no entry.
    function _book(Entry memory entry, uint256 ref, ActionReason reason, bytes32 documentHash)
        private
        returns (uint256 entryId)
    {
        if (entry.from == entry.to || entry.amount == 0) return 0;
        uint104 amount = entry.amount.toUint104();

        if (entry.from == address(0)) _securities[entry.isin].totalSupply += amount;
        else _holdings[entry.isin][entry.from].balance -= amount;
        if (entry.to == address(0)) _securities[entry.isin].totalSupply -= amount;
        else _holdings[entry.isin][entry.to].balance += amount;

        entryId = ++_entryCount;
        _entryHashes[entryId] = keccak256(abi.encode(entry));
        emit EntryRecorded(
            entry.isin, entry.from, entry.to, entryId, entry.amount, entry.kind, ref, reason, documentHash
        );
    }

    /// @dev Carries restrictions, pledges and the freeze of a lost wallet's holding over to the replacement.
    function _moveEncumbrances(bytes12 isin, address lost, address replacement) private {
        Holding storage source = _holdings[isin][lost];
        Holding storage target = _holdings[isin][replacement];
        if (
            uint256(source.restrictionCount) + target.restrictionCount > MAX_ENCUMBRANCES
                || uint256(source.pledgeCount) + target.pledgeCount > MAX_ENCUMBRANCES
        ) revert RegisterTooManyEncumbrances(isin, replacement, MAX_ENCUMBRANCES);

        uint256[] storage ids = _restrictionIds[isin][lost];
        for (uint256 i = 0; i < ids.length; ++i) {
            _restrictions[ids[i]].holder = replacement;
            _restrictionIds[isin][replacement].push(ids[i]);
            emit RestrictionMoved(ids[i], lost, replacement);
        }
        delete _restrictionIds[isin][lost];

        ids = _pledgeIds[isin][lost];
        for (uint256 i = 0; i < ids.length; ++i) {
            _pledges[ids[i]].holder = replacement;
            _pledgeIds[isin][replacement].push(ids[i]);
            emit PledgeMoved(ids[i], lost, replacement);
        }
        delete _pledgeIds[isin][lost];

        target.restrictionCount += source.restrictionCount;
        target.pledgeCount += source.pledgeCount;
        target.encumbered += source.encumbered;
        source.restrictionCount = 0;
        source.pledgeCount = 0;
        source.encumbered = 0;
        if (source.frozen && !target.frozen) {
            target.frozen = true;
            emit HoldingFreezeUpdated(isin, replacement, true);
        }
    }

    // ---------------------------------------------------------------- helpers

    function _free(bytes12 isin, address holder, Holding storage position) private view returns (uint256) {
        uint256 balance = position.balance;
        uint256 locked = position.encumbered;
        if (position.restrictionCount != 0) locked += _restricted(isin, holder);
        return balance > locked ? balance - locked : 0;
    }

    /// @dev Sum of the unexpired restrictions on a holding.
    function _restricted(bytes12 isin, address holder) private view returns (uint256 total) {
        uint256[] storage ids = _restrictionIds[isin][holder];
        for (uint256 i = 0; i < ids.length; ++i) {
            Restriction storage entry = _restrictions[ids[i]];
            uint48 expiry = entry.expiry;
            if (expiry == 0 || expiry > block.timestamp) total += entry.amount;
        }
    }

    function _known(bytes12 isin) private view returns (Security storage entry) {
        entry = _securities[isin];
        if (entry.status == SecurityStatus.None) revert RegisterSecurityUnknown(isin);
    }

    function _useConsent(address issuer) private {
        bytes32 digest = _digest(msg.data);
        if (!_consents[issuer][digest]) revert RegisterConsentMissing(issuer, digest);
        delete _consents[issuer][digest];
        emit IssuerConsentUsed(issuer, digest);
    }

    function _digest(bytes calldata callData) private view returns (bytes32) {
        return keccak256(abi.encode(block.chainid, address(this), callData));
    }

    function _notifyToken(bytes12 isin, address from, address to, uint256 amount) private {
        ISecurityToken(_securities[isin].token).emitTransfer(from, to, amount);
    }

    function _removeId(uint256[] storage ids, uint256 id) private {
        uint256 last = ids.length - 1;
        for (uint256 i = 0; i <= last; ++i) {
            if (ids[i] == id) {
                ids[i] = ids[last];
                ids.pop();
                return;
            }
        }
    }

    function _checkCurrency(bytes3 currency) private pure {
        for (uint256 i = 0; i < 3; ++i) {
            bytes1 c = currency[i];
            if (c < 0x41 || c > 0x5A) revert RegisterInvalidCurrency(currency);
        }
    }
}
