// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

/// @title ISecuritiesRegister
/// @notice The crypto-securities register (eWpG Kryptowertpapierregister). One contract holds every security's master
/// data and every holding; each security also gets its own ERC-20 facade ({ISecurityToken}) so wallets and explorers
/// read balances and holders can transfer with standard calls.
///
/// Holdings: a holding is (security, wallet). It carries a balance, restrictions on disposal (amount, reason code,
/// authority, optional expiry), third-party rights such as pledges (amount, beneficiary, kind), a freeze flag and the
/// number of the holder's instructions queued in the {IInstructionBook}. The free balance is the balance minus
/// unexpired restrictions minus pledges, floored at zero.
///
/// Every movement — transfer, instructed transfer, forced transfer, recovery, reversal, issue, redemption — passes the
/// same check ({checkMovement}) and the same booking code, and is recorded as a numbered entry ({EntryRecorded}) whose
/// hash is kept so it can be reversed later. Nothing is ever rewritten: a wrongful entry is undone by a reversing
/// entry that points to it.
///
/// Issuer consent: creating a security, amending its terms, changing its status or issue volume, issuing and redeeming
/// need the register keeper's call and, before it, the issuer's {consent} to exactly that call's calldata
/// ({consentDigest}). A consent is used up by the call it authorises.
interface ISecuritiesRegister {
    /// @notice Einzeleintragung (the holder is the investor) or Sammeleintragung (the holder is a custodian or CSD).
    enum SecurityKind {
        Single,
        Collective
    }

    /// @notice Lifecycle of a security. `Suspended` stops holder movements but not register keeper actions under a
    /// court order; `Closed` is final and needs a zero supply.
    enum SecurityStatus {
        None,
        Active,
        Suspended,
        Closed
    }

    /// @notice What kind of register entry a movement is; selects which checks apply (see {checkMovement}).
    enum EntryKind {
        Transfer,
        Instructed,
        Forced,
        Recovery,
        Reversal,
        Issue,
        Redemption
    }

    /// @notice Legal ground of a register keeper action without holder instruction.
    enum ActionReason {
        None,
        CourtOrder,
        Insolvency,
        Inheritance,
        AuthorityOrder,
        KeyLoss,
        WrongfulEntry
    }

    /// @notice Kind of a third-party right over part of a holding.
    enum PledgeKind {
        Pledge,
        Lien,
        Usufruct,
        Other
    }

    /// @notice Why a movement would fail. `Ok` means it would succeed. The table in `contracts/README.md` gives the
    /// ground for each code and which entry kinds check it.
    enum ReasonCode {
        Ok,
        RegisterPaused,
        SecurityUnknown,
        SecurityNotActive,
        SenderNotRegistered,
        SenderKycNotApproved,
        SenderKycExpired,
        SenderInvestorFrozen,
        SenderHoldingFrozen,
        InstructionsPending,
        InsufficientBalance,
        InsufficientFreeBalance,
        BalanceEncumbered,
        ReceiverZeroAddress,
        ReceiverNotRegistered,
        ReceiverKycNotApproved,
        ReceiverKycExpired,
        ReceiverInvestorFrozen,
        ReceiverHoldingFrozen,
        ReceiverNotCollectiveHolder,
        IssueVolumeExceeded,
        InstructionExpired
    }

    /// @notice Master data of a security as passed to {createSecurity}.
    struct SecurityParams {
        bytes12 isin;
        address issuer;
        SecurityKind kind;
        bytes3 currency;
        uint128 nominalPerUnit;
        uint128 issueVolume;
        bytes32 termsHash;
        string termsUri;
    }

    /// @notice Master data and state of a security.
    struct Security {
        address token;
        SecurityKind kind;
        SecurityStatus status;
        bytes3 currency;
        address issuer;
        uint128 nominalPerUnit;
        uint128 issueVolume;
        uint256 totalSupply;
        bytes32 termsHash;
        string termsUri;
    }

    /// @notice A restriction on disposal (Verfügungsbeschränkung).
    struct Restriction {
        bytes12 isin;
        address holder;
        uint104 amount;
        uint48 expiry;
        uint16 reasonCode;
        bool active;
        bytes32 authority;
    }

    /// @notice A third-party right (Recht Dritter) over part of a holding.
    struct Pledge {
        bytes12 isin;
        address holder;
        uint104 amount;
        PledgeKind kind;
        bool active;
        address beneficiary;
    }

    /// @notice The data of a register entry whose hash the register keeps; passed back to {reverse}.
    struct Entry {
        bytes12 isin;
        EntryKind kind;
        address from;
        address to;
        uint256 amount;
    }

    /// @notice A snapshot of one holding.
    struct HoldingView {
        uint256 balance;
        uint256 restricted;
        uint256 encumbered;
        uint256 free;
        bool frozen;
        uint256 pendingInstructions;
        uint256 restrictionCount;
        uint256 pledgeCount;
    }

    /// @notice A security was entered; `token` is its ERC-20 facade.
    event SecurityCreated(
        bytes12 indexed isin,
        address indexed issuer,
        address token,
        SecurityKind kind,
        bytes3 currency,
        uint256 nominalPerUnit,
        uint256 issueVolume,
        bytes32 termsHash,
        string termsUri
    );
    /// @notice The terms document of a security was replaced.
    event SecurityTermsAmended(bytes12 indexed isin, bytes32 termsHash, string termsUri);
    /// @notice The status of a security changed.
    event SecurityStatusChanged(bytes12 indexed isin, SecurityStatus previous, SecurityStatus status);
    /// @notice The issue volume of a security was raised.
    event IssueVolumeIncreased(bytes12 indexed isin, uint256 previous, uint256 issueVolume);
    /// @notice `issuer` consented to the call with digest `digest`.
    event IssuerConsentGiven(address indexed issuer, bytes32 indexed digest);
    /// @notice `issuer` withdrew an unused consent.
    event IssuerConsentRevoked(address indexed issuer, bytes32 indexed digest);
    /// @notice The consent was used up by the call it authorised.
    event IssuerConsentUsed(address indexed issuer, bytes32 indexed digest);
    /// @notice A register entry: `amount` units of `isin` moved `from` → `to` (zero address for issue and
    /// redemption). `ref` is the instruction id for instructed transfers and the reversed entry id for reversals.
    event EntryRecorded(
        bytes12 indexed isin,
        address indexed from,
        address indexed to,
        uint256 entryId,
        uint256 amount,
        EntryKind kind,
        uint256 ref,
        ActionReason reason,
        bytes32 documentHash
    );
    /// @notice The holding was frozen or unfrozen.
    event HoldingFreezeUpdated(bytes12 indexed isin, address indexed holder, bool frozen);
    /// @notice A restriction on disposal was placed.
    event RestrictionPlaced(
        uint256 indexed restrictionId,
        bytes12 indexed isin,
        address indexed holder,
        uint256 amount,
        uint16 reasonCode,
        bytes32 authority,
        uint48 expiry
    );
    /// @notice A restriction on disposal was lifted.
    event RestrictionReleased(uint256 indexed restrictionId, bytes12 indexed isin, address indexed holder);
    /// @notice A restriction followed its holding to a recovery wallet.
    event RestrictionMoved(uint256 indexed restrictionId, address indexed from, address indexed to);
    /// @notice A third-party right was entered.
    event PledgeCreated(
        uint256 indexed pledgeId,
        bytes12 indexed isin,
        address indexed holder,
        address beneficiary,
        uint256 amount,
        PledgeKind kind
    );
    /// @notice A third-party right was released.
    event PledgeReleased(uint256 indexed pledgeId, bytes12 indexed isin, address indexed holder);
    /// @notice A third-party right followed its holding to a recovery wallet.
    event PledgeMoved(uint256 indexed pledgeId, address indexed from, address indexed to);
    /// @notice An instruction of `holder` was queued; direct transfers wait until it is executed.
    event InstructionNoted(bytes12 indexed isin, address indexed holder, uint256 pending);
    /// @notice All movements stopped (`paused`) or resumed.
    event RegisterPauseUpdated(address indexed account, bool paused);

    /// @notice `isin` is not a well-formed ISIN with a correct check digit.
    error RegisterInvalidIsin(bytes12 isin);
    /// @notice `currency` is not three uppercase ASCII letters (ISO 4217).
    error RegisterInvalidCurrency(bytes3 currency);
    /// @notice An address argument was zero.
    error RegisterZeroAddress();
    /// @notice An amount argument was zero.
    error RegisterZeroAmount();
    /// @notice `isin` is already entered.
    error RegisterSecurityExists(bytes12 isin);
    /// @notice `isin` is not entered.
    error RegisterSecurityUnknown(bytes12 isin);
    /// @notice The call needs `issuer`'s {consent} to `digest` first.
    error RegisterConsentMissing(address issuer, bytes32 digest);
    /// @notice Only the ERC-20 facade of `isin` may call this; `caller` is not it.
    error RegisterNotTokenOf(bytes12 isin, address caller);
    /// @notice The movement fails the register's checks for `reason`; {checkMovement} gives the same answer.
    error RegisterMovementRefused(bytes12 isin, address from, address to, uint256 amount, ReasonCode reason);
    /// @notice A new issue volume must exceed the current one and fit 104 bits.
    error RegisterIssueVolumeInvalid(bytes12 isin, uint256 current, uint256 requested);
    /// @notice `isin` cannot move from status `current` to `requested`.
    error RegisterStatusTransitionInvalid(bytes12 isin, SecurityStatus current, SecurityStatus requested);
    /// @notice A security with `supply` outstanding units cannot be closed.
    error RegisterSupplyOutstanding(bytes12 isin, uint256 supply);
    /// @notice The free balance `free` of `holder` cannot carry a new restriction or pledge of `amount`.
    error RegisterFreeBalanceTooLow(bytes12 isin, address holder, uint256 free, uint256 amount);
    /// @notice A holding carries at most `max` restrictions and at most `max` pledges.
    error RegisterTooManyEncumbrances(bytes12 isin, address holder, uint256 max);
    /// @notice A restriction's expiry must lie in the future or be zero.
    error RegisterRestrictionExpiryInPast(uint48 expiry);
    /// @notice `restrictionId` is unknown or already released.
    error RegisterRestrictionInactive(uint256 restrictionId);
    /// @notice `pledgeId` is unknown or already released.
    error RegisterPledgeInactive(uint256 pledgeId);
    /// @notice Recovery goes to another wallet of the same investor; `lost` and `replacement` are not that.
    error RegisterRecoveryNotSameInvestor(address lost, address replacement);
    /// @notice Recovery to the wallet it comes from changes nothing and is refused.
    error RegisterRecoverySameWallet(address wallet);
    /// @notice The entry data given do not hash to entry `entryId`.
    error RegisterEntryMismatch(uint256 entryId);
    /// @notice Entry `entryId` was already reversed by entry `reversedBy`.
    error RegisterEntryAlreadyReversed(uint256 entryId, uint256 reversedBy);
    /// @notice Reversals and recoveries are not reversed; book a new entry instead.
    error RegisterEntryNotReversible(uint256 entryId, EntryKind kind);
    /// @notice The forced transfer needs a legal ground.
    error RegisterReasonMissing();
    /// @notice Queued-instruction counter of `holder` would overflow or underflow.
    error RegisterPendingInstructionsInvalid(bytes12 isin, address holder);

    // ------------------------------------------------------------------ issuer

    /// @notice The issuer consents to one register keeper call, identified by {consentDigest} of its calldata.
    function consent(bytes32 digest) external;

    /// @notice The issuer withdraws an unused consent.
    function revokeConsent(bytes32 digest) external;

    // --------------------------------------------------------- register keeper

    /// @notice Enters a security and deploys its ERC-20 facade. Needs the issuer's consent.
    function createSecurity(SecurityParams calldata params) external returns (address token);

    /// @notice Replaces the terms document. Needs the issuer's consent.
    function amendTerms(bytes12 isin, bytes32 termsHash, string calldata termsUri) external;

    /// @notice Changes the status: Active ↔ Suspended, or either to Closed at zero supply. Needs the issuer's
    /// consent.
    function setSecurityStatus(bytes12 isin, SecurityStatus status) external;

    /// @notice Raises the issue volume. Needs the issuer's consent.
    function increaseIssueVolume(bytes12 isin, uint256 issueVolume) external;

    /// @notice Books `amount` new units to `to` within the issue volume. Needs the issuer's consent.
    function issue(bytes12 isin, address to, uint256 amount) external returns (uint256 entryId);

    /// @notice Redeems `amount` units of `from`'s free balance. Needs the issuer's consent.
    function redeem(bytes12 isin, address from, uint256 amount) external returns (uint256 entryId);

    /// @notice Places a restriction on disposal over part of `holder`'s free balance. `expiry` 0: until released.
    function restrict(bytes12 isin, address holder, uint256 amount, uint16 reasonCode, bytes32 authority, uint48 expiry)
        external
        returns (uint256 restrictionId);

    /// @notice Lifts a restriction (also one past its expiry, which no longer binds but still occupies a place).
    function releaseRestriction(uint256 restrictionId) external;

    /// @notice Enters a third-party right over part of `holder`'s free balance.
    function pledge(bytes12 isin, address holder, uint256 amount, address beneficiary, PledgeKind kind)
        external
        returns (uint256 pledgeId);

    /// @notice Releases a third-party right.
    function releasePledge(uint256 pledgeId) external;

    /// @notice Moves units without the holder's instruction on a legal ground (court order, insolvency, ...). May
    /// reach restricted units and frozen holdings, never units under a third-party right.
    function forcedTransfer(
        bytes12 isin,
        address from,
        address to,
        uint256 amount,
        ActionReason reason,
        bytes32 documentHash
    ) external returns (uint256 entryId);

    /// @notice Moves the whole holding, its restrictions, pledges and freeze from a lost wallet to another wallet of
    /// the same investor.
    function recover(bytes12 isin, address lost, address replacement, bytes32 documentHash)
        external
        returns (uint256 entryId);

    /// @notice Books the reversing entry of entry `entryId` (whose data is `original`): the same amount back the
    /// other way. Issues are reversed by redemption and redemptions by issue. Like a forced transfer it may reach
    /// restricted units but not pledged ones.
    function reverse(uint256 entryId, Entry calldata original, bytes32 documentHash)
        external
        returns (uint256 reversalId);

    // -------------------------------------------------------------- compliance

    /// @notice Freezes or unfreezes one holding.
    function setHoldingFrozen(bytes12 isin, address holder, bool frozen) external;

    // ------------------------------------------------------------------- admin

    /// @notice Stops (`stopped` true) or resumes every movement.
    function setPaused(bool stopped) external;

    // -------------------------------------------------------- instruction book

    /// @notice Counts a newly queued instruction of `holder`. Called by the instruction book, which holds
    /// {Roles-INSTRUCTION_EXECUTOR} in the matrix.
    function noteInstruction(bytes12 isin, address holder) external;

    /// @notice Executes a queued instruction: checks it like a holder transfer and books it, or returns why not.
    /// Never reverts on a failed check, so a bad instruction cannot block the queue; the one exception is a paused
    /// register, which reverts so that queued instructions wait for the pause to end instead of being rejected.
    function executeInstruction(
        bytes12 isin,
        address from,
        address to,
        uint256 amount,
        uint256 deadline,
        uint256 instructionId
    ) external returns (ReasonCode code, uint256 entryId);

    // ------------------------------------------------------------------- token

    /// @notice Books a holder's transfer arriving through the ERC-20 facade of `isin`.
    function transferFromToken(bytes12 isin, address from, address to, uint256 amount) external;

    // ------------------------------------------------------------------- views

    /// @notice The reason code a holder transfer would get right now.
    function checkTransfer(bytes12 isin, address from, address to, uint256 amount) external view returns (ReasonCode);

    /// @notice The reason code a movement of `kind` would get right now. Checks by kind:
    /// - all: pause; security known; status (Active for Transfer, Instructed, Issue; not Closed otherwise).
    /// - Transfer, Instructed: sender registered, KYC approved and current, investor and holding not frozen, (Transfer
    ///   only) no queued instructions, balance, free balance.
    /// - Forced, Reversal: balance, balance not under a third-party right. Redemption: balance, free balance.
    /// - Issue, and Reversal of a redemption: issue volume.
    /// - all but Redemption: receiver not zero, registered, KYC approved and current, investor and holding not frozen,
    ///   collective-entry holder for a collective security.
    function checkMovement(bytes12 isin, address from, address to, uint256 amount, EntryKind kind)
        external
        view
        returns (ReasonCode);

    /// @notice Digest an issuer consents to for a register call with calldata `callData`.
    function consentDigest(bytes calldata callData) external view returns (bytes32);

    /// @notice Whether `issuer` has an unused consent to `digest`.
    function hasConsent(address issuer, bytes32 digest) external view returns (bool);

    /// @notice Master data and state of `isin`.
    function security(bytes12 isin) external view returns (Security memory);

    /// @notice Balance of `holder` in `isin`.
    function balanceOf(bytes12 isin, address holder) external view returns (uint256);

    /// @notice Units of `isin` outstanding.
    function totalSupply(bytes12 isin) external view returns (uint256);

    /// @notice Snapshot of one holding, including its free balance.
    function holding(bytes12 isin, address holder) external view returns (HoldingView memory);

    /// @notice Ids of the restrictions currently placed on a holding.
    function restrictionIds(bytes12 isin, address holder) external view returns (uint256[] memory);

    /// @notice Ids of the third-party rights currently over a holding.
    function pledgeIds(bytes12 isin, address holder) external view returns (uint256[] memory);

    /// @notice Restriction `restrictionId`.
    function restriction(uint256 restrictionId) external view returns (Restriction memory);

    /// @notice Third-party right `pledgeId`.
    function pledgeOf(uint256 pledgeId) external view returns (Pledge memory);

    /// @notice Number of entries booked so far; entry ids run from 1 to this.
    function entryCount() external view returns (uint256);

    /// @notice The stored hash of entry `entryId` (`keccak256(abi.encode(Entry))`), zero when unknown.
    function entryHash(uint256 entryId) external view returns (bytes32);

    /// @notice The id of the entry that reversed `entryId`, or zero.
    function reversedBy(uint256 entryId) external view returns (uint256);

    /// @notice Whether all movements are stopped.
    function paused() external view returns (bool);

    /// @notice The investor registry consulted on every movement.
    function investorRegistry() external view returns (address);
}
