// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

/// @title ICustody
/// @notice Crypto custody (Kryptoverwahrung): segregated client accounts inside one contract, holding ERC-20 assets and
/// register securities (whose {ISecurityToken} facade is an ERC-20 too).
///
/// Accounts and balances:
/// - A client account is opened under a client id (`bytes32`, e.g. the investor registry's holder id) and holds, per
///   asset, a balance and the part of it reserved for pending withdrawals. Available = balance − reserved.
/// - Per asset, the sum of all client balances is {allocated}. What the contract holds beyond that is {unallocated}:
///   tokens that arrived without {deposit}, e.g. a plain `transfer` to this contract or a register entry booked to it.
///   The sum invariant is `allocated(asset) + unallocated(asset) == balanceOf(this)`, with `unallocated` never
///   negative; only a movement outside this contract's control (a register keeper's forced transfer out of the
///   custodian's holding, a rebasing token) can break it, and {shortfall} then shows by how much.
/// - Unallocated tokens belong to nobody until an {proposeAllocation} is approved by a custody approver other than the
///   proposer; they then leave only through an ordinary withdrawal. This is also the collective-entry path
///   (Sammeleintragung): the register books the units to this contract, which the investor registry lists as a
///   wallet of the custodian (a collective-entry holder), and approved allocations keep the per-client split.
/// - Every change of a client balance passes one internal booking function, which enforces pause and freeze and
///   emits {ClientBalanceChanged} with the resulting balance and reservation; a client statement as of any block is the
///   sequence of these events up to that block.
///
/// Withdrawals:
/// - A custody officer requests a withdrawal to a destination in the client's address book, with the hash of its
///   travel-rule data (originator and beneficiary; computed off-chain, never in clear on-chain). The amount is
///   reserved at once.
/// - `approvals` distinct custody approvers (the asset policy's M, fixed at request time) approve. The requester can
///   never approve, even when holding the approver role. An approval by an expired role grant fails in the access
///   manager. N is the number of approver grants in the access manager; the contract cannot count them, so keeping
///   M ≤ N is the platform admin's duty.
/// - With the last approval, a withdrawal whose amount is above the asset's time-lock threshold gets an unlock time
///   `now + timelockDelay` (the delay fixed at request time); at or after that second it may be executed. Until
///   execution a compliance officer can cancel any open withdrawal, and the requester can retract their own.
/// - Execution (by a custody officer) is checked by {checkExecution} and counts against the asset's daily limit.
///   The window is the UTC calendar day: second `t` belongs to day `t / 86400`, and each day starts from zero. Two
///   adjacent days can therefore together carry up to twice the limit around midnight; that is accepted for the
///   predictability of calendar days.
///
/// Address book: adding or removing a destination is a change proposed by a custody officer and applied by the
/// approval of a custody approver other than the proposer.
///
/// Controls: a frozen client account takes no credit, reservation or debit (cancelling and retracting, which only
/// release a reservation, stay possible). Pause stops the same movements for everybody, and also new requests,
/// approvals and changes.
///
/// Access: every state-changing function is `restricted` by the platform's access manager; which role calls which
/// function is the permission matrix's business. The intended wiring is noted at each function.
interface ICustody {
    /// @notice Lifecycle of a withdrawal. `Approved` means all approvals are in (it may still be time-locked).
    enum WithdrawalStatus {
        None,
        Pending,
        Approved,
        Executed,
        Cancelled
    }

    /// @notice Why a withdrawal can or cannot be executed right now; see {checkExecution}.
    enum ExecutionCheck {
        Ok,
        WithdrawalUnknown,
        AwaitingApprovals,
        AlreadyClosed,
        Paused,
        ClientFrozen,
        TimeLocked,
        DestinationNotAllowed,
        DailyLimitExceeded
    }

    /// @notice What a proposed change does.
    enum ChangeKind {
        AddDestination,
        RemoveDestination,
        Allocate
    }

    /// @notice Lifecycle of a proposed change.
    enum ChangeStatus {
        None,
        Pending,
        Applied,
        Cancelled
    }

    /// @notice The kinds of client balance changes, as shown on a statement.
    enum EntryKind {
        Deposit,
        Allocation,
        Reservation,
        Release,
        Withdrawal
    }

    /// @notice Withdrawal rules for one asset.
    /// @param enabled Deposits, allocations and new requests are accepted.
    /// @param approvals M: distinct custody approvers a withdrawal needs.
    /// @param timelockDelay Seconds between the last approval and the earliest execution, for amounts above
    /// `timelockThreshold`.
    /// @param dailyLimit Most that may be withdrawn per UTC day, over all clients.
    /// @param timelockThreshold Amounts strictly above this are time-locked.
    struct AssetPolicy {
        bool enabled;
        uint8 approvals;
        uint32 timelockDelay;
        uint128 dailyLimit;
        uint128 timelockThreshold;
    }

    /// @notice A client account's state flags.
    struct Account {
        bool open;
        bool frozen;
    }

    /// @notice A client's holding of one asset.
    struct Position {
        uint128 balance;
        uint128 reserved;
    }

    /// @notice A withdrawal request and its progress.
    struct Withdrawal {
        bytes32 clientId;
        address asset;
        uint48 requestedAt;
        uint48 unlockAt;
        address destination;
        uint8 approvalsRequired;
        uint8 approvals;
        WithdrawalStatus status;
        uint32 timelockDelay;
        address requester;
        uint128 amount;
        bytes32 travelRuleHash;
    }

    /// @notice A proposed address-book change or allocation.
    /// @param account The destination for address-book changes, the asset for allocations.
    /// @param amount The amount for allocations, zero otherwise.
    struct Change {
        ChangeKind kind;
        ChangeStatus status;
        address proposer;
        uint48 proposedAt;
        bytes32 clientId;
        address account;
        uint128 amount;
    }

    // ---------------------------------------------------------------- events

    /// @notice `officer` opened the account of `clientId`.
    event ClientAccountOpened(bytes32 indexed clientId, address indexed officer);
    /// @notice `by` froze (`frozen`) or unfroze the account of `clientId`.
    event ClientFreezeUpdated(bytes32 indexed clientId, address indexed by, bool frozen);
    /// @notice `by` stopped (`paused`) or resumed custody movements.
    event CustodyPauseUpdated(address indexed by, bool paused);
    /// @notice `asset` got its first policy and is now listed in {assets}.
    event AssetListed(address indexed asset);
    /// @notice The withdrawal rules of `asset` were set.
    event AssetPolicySet(
        address indexed asset,
        bool enabled,
        uint8 approvals,
        uint32 timelockDelay,
        uint256 dailyLimit,
        uint256 timelockThreshold
    );
    /// @notice A client balance changed. `ref` is the withdrawal id for reservations, releases and withdrawals, the
    /// change id for allocations and zero for deposits. `balance` and `reserved` are the values after the change.
    event ClientBalanceChanged(
        bytes32 indexed clientId,
        address indexed asset,
        uint256 indexed ref,
        EntryKind kind,
        uint256 amount,
        uint256 balance,
        uint256 reserved
    );
    /// @notice `amount` of `asset` was pulled from `from` and credited to `clientId`.
    event Deposited(bytes32 indexed clientId, address indexed asset, address indexed from, uint256 amount);
    /// @notice `proposer` proposed change `changeId`; `account` and `amount` as in {Change}.
    event ChangeProposed(
        uint256 indexed changeId,
        bytes32 indexed clientId,
        address indexed proposer,
        ChangeKind kind,
        address account,
        uint256 amount
    );
    /// @notice `approver` approved change `changeId`, which was applied.
    event ChangeApplied(uint256 indexed changeId, address indexed approver);
    /// @notice `by` cancelled change `changeId`.
    event ChangeCancelled(uint256 indexed changeId, address indexed by);
    /// @notice `destination` was added to (`allowed`) or removed from the address book of `clientId`.
    event DestinationUpdated(
        bytes32 indexed clientId, address indexed destination, uint256 indexed changeId, bool allowed
    );
    /// @notice `requester` asked to send `amount` of `asset` from `clientId` to `destination`.
    event WithdrawalRequested(
        uint256 indexed withdrawalId,
        bytes32 indexed clientId,
        address indexed asset,
        address destination,
        uint256 amount,
        bytes32 travelRuleHash,
        address requester,
        uint8 approvalsRequired,
        uint32 timelockDelay
    );
    /// @notice `approver` gave approval number `approvals` of `approvalsRequired`.
    event WithdrawalApproved(
        uint256 indexed withdrawalId, address indexed approver, uint8 approvals, uint8 approvalsRequired
    );
    /// @notice All approvals are in; execution is possible from `unlockAt` on.
    event WithdrawalUnlockScheduled(uint256 indexed withdrawalId, uint48 unlockAt);
    /// @notice The withdrawal was executed by `executor`: the tokens left for `destination`.
    event WithdrawalExecuted(
        uint256 indexed withdrawalId,
        bytes32 indexed clientId,
        address indexed asset,
        address destination,
        uint256 amount,
        bytes32 travelRuleHash,
        address executor
    );
    /// @notice `by` cancelled (compliance) or retracted (requester) the withdrawal; `reason` is a hash of the note.
    event WithdrawalCancelled(uint256 indexed withdrawalId, address indexed by, bytes32 reason);

    // ---------------------------------------------------------------- errors

    /// @notice A client id must not be zero.
    error CustodyZeroClientId();
    /// @notice The account of `clientId` is already open.
    error CustodyClientExists(bytes32 clientId);
    /// @notice No account is open under `clientId`.
    error CustodyClientUnknown(bytes32 clientId);
    /// @notice The account of `clientId` is frozen.
    error CustodyClientFrozen(bytes32 clientId);
    /// @notice The account of `clientId` already is in freeze state `frozen`.
    error CustodyFreezeUnchanged(bytes32 clientId, bool frozen);
    /// @notice Custody movements are paused.
    error CustodyPaused();
    /// @notice The pause already is in state `paused`.
    error CustodyPauseUnchanged(bool paused);
    /// @notice An amount must not be zero.
    error CustodyZeroAmount();
    /// @notice `amount` exceeds what a balance can hold (`max`).
    error CustodyAmountTooLarge(uint256 amount, uint256 max);
    /// @notice `asset` cannot be a custody asset (the zero address or this contract).
    error CustodyAssetInvalid(address asset);
    /// @notice `asset` is not enabled for deposits, allocations and new requests.
    error CustodyAssetNotEnabled(address asset);
    /// @notice A policy needs between 1 and `max` approvals; `approvals` is not that.
    error CustodyApprovalsInvalid(uint8 approvals, uint8 max);
    /// @notice A time lock of `delay` seconds exceeds the longest allowed (`max`).
    error CustodyTimelockTooLong(uint32 delay, uint32 max);
    /// @notice The contract received `received` instead of `expected` (fee-on-transfer tokens are refused).
    error CustodyDepositMismatch(address asset, uint256 expected, uint256 received);
    /// @notice `clientId` has `available` of `asset` free, less than `amount`.
    error CustodyInsufficientAvailable(bytes32 clientId, address asset, uint256 available, uint256 amount);
    /// @notice Only `available` of `asset` is unallocated, less than `amount`.
    error CustodyUnallocatedTooLow(address asset, uint256 available, uint256 amount);
    /// @notice `amount` exceeds the daily limit `limit` of `asset` and could never be executed.
    error CustodyAmountAboveDailyLimit(address asset, uint256 amount, uint256 limit);
    /// @notice The destination must not be zero or this contract.
    error CustodyDestinationInvalid(address destination);
    /// @notice `destination` is not in the address book of `clientId`.
    error CustodyDestinationNotAllowed(bytes32 clientId, address destination);
    /// @notice `destination` already is (`allowed`) or is not in the address book of `clientId`.
    error CustodyDestinationUnchanged(bytes32 clientId, address destination, bool allowed);
    /// @notice A withdrawal needs the hash of its travel-rule data.
    error CustodyTravelRuleHashMissing();
    /// @notice `withdrawalId` is in `status`, which does not allow this.
    error CustodyWithdrawalStatus(uint256 withdrawalId, WithdrawalStatus status);
    /// @notice The requester of `withdrawalId` tried to approve it.
    error CustodySelfApproval(uint256 withdrawalId, address approver);
    /// @notice `approver` already approved `withdrawalId`.
    error CustodyAlreadyApproved(uint256 withdrawalId, address approver);
    /// @notice Only the requester may retract `withdrawalId`; `caller` is not.
    error CustodyNotRequester(uint256 withdrawalId, address caller);
    /// @notice `withdrawalId` cannot be executed now, for `reason`.
    error CustodyWithdrawalNotExecutable(uint256 withdrawalId, ExecutionCheck reason);
    /// @notice `changeId` is in `status`, which does not allow this.
    error CustodyChangeStatus(uint256 changeId, ChangeStatus status);
    /// @notice The proposer of `changeId` tried to approve it.
    error CustodyChangeSelfApproval(uint256 changeId, address approver);

    // ------------------------------------------------------------- accounts

    /// @notice Opens the account of `clientId`.
    /// @dev Wiring: custody officer.
    function openAccount(bytes32 clientId) external;

    /// @notice Freezes (`frozen`) or unfreezes the account of `clientId`.
    /// @dev Wiring: compliance officer.
    function setClientFrozen(bytes32 clientId, bool frozen) external;

    /// @notice Stops (`true`) or resumes custody movements.
    /// @dev Wiring: platform admin.
    function setPaused(bool paused) external;

    /// @notice Sets the withdrawal rules of `asset`; see {AssetPolicy}. Rules fixed at request time (approvals, time
    /// lock delay) keep applying to open requests; the daily limit in force at execution applies.
    /// @dev Wiring: platform admin. Raising a limit is a single-admin action here; give the admin grant an execution
    /// delay in the access manager where that is wanted.
    function setAssetPolicy(
        address asset,
        bool enabled,
        uint8 approvals,
        uint32 timelockDelay,
        uint128 dailyLimit,
        uint128 timelockThreshold
    ) external;

    /// @notice Pulls `amount` of `asset` from the caller (who approved this contract) and credits it to `clientId`.
    /// Refuses tokens that deliver less than `amount`.
    /// @dev Wiring: custody officer (the custodian's operating wallet books client money in). Tokens sent to this
    /// contract without this call stay {unallocated}.
    function deposit(bytes32 clientId, address asset, uint256 amount) external;

    // -------------------------------------------------------------- changes

    /// @notice Proposes adding (`allowed`) or removing `destination` in the address book of `clientId`.
    /// @dev Wiring: custody officer.
    function proposeDestination(bytes32 clientId, address destination, bool allowed) external returns (uint256 changeId);

    /// @notice Proposes crediting `amount` of unallocated `asset` to `clientId` (collective-entry split, deposits that
    /// arrived by plain transfer).
    /// @dev Wiring: custody officer.
    function proposeAllocation(bytes32 clientId, address asset, uint256 amount) external returns (uint256 changeId);

    /// @notice Approves and applies change `changeId`; the caller must not be its proposer.
    /// @dev Wiring: custody approver.
    function approveChange(uint256 changeId) external;

    /// @notice Cancels pending change `changeId`.
    /// @dev Wiring: custody officer.
    function cancelChange(uint256 changeId) external;

    // ---------------------------------------------------------- withdrawals

    /// @notice Requests sending `amount` of `asset` from `clientId` to `destination`, which must be in the client's
    /// address book, and reserves the amount. `travelRuleHash` is the hash of the travel-rule data.
    /// @dev Wiring: custody officer.
    function requestWithdrawal(
        bytes32 clientId,
        address asset,
        uint256 amount,
        address destination,
        bytes32 travelRuleHash
    ) external returns (uint256 withdrawalId);

    /// @notice Adds the caller's approval to pending `withdrawalId`. The last approval schedules the unlock.
    /// @dev Wiring: custody approver.
    function approveWithdrawal(uint256 withdrawalId) external;

    /// @notice Executes approved, unlocked `withdrawalId` within the daily limit: debits the client and sends.
    /// @dev Wiring: custody officer.
    function executeWithdrawal(uint256 withdrawalId) external;

    /// @notice Cancels open `withdrawalId` (pending or approved, also while time-locked) and releases the
    /// reservation; works while paused and for frozen accounts.
    /// @dev Wiring: compliance officer.
    function cancelWithdrawal(uint256 withdrawalId, bytes32 reason) external;

    /// @notice The requester takes back their open `withdrawalId`; like {cancelWithdrawal} otherwise.
    /// @dev Wiring: custody officer.
    function retractWithdrawal(uint256 withdrawalId) external;

    // ---------------------------------------------------------------- views

    /// @notice The account flags of `clientId`.
    function account(bytes32 clientId) external view returns (Account memory);

    /// @notice `clientId`'s holding of `asset`: balance, reserved and available (balance − reserved).
    function position(bytes32 clientId, address asset)
        external
        view
        returns (uint256 balance, uint256 reserved, uint256 available);

    /// @notice The address book of `clientId`.
    function destinations(bytes32 clientId) external view returns (address[] memory);

    /// @notice Whether `destination` is in the address book of `clientId`.
    function isDestination(bytes32 clientId, address destination) external view returns (bool);

    /// @notice The withdrawal rules of `asset`.
    function assetPolicy(address asset) external view returns (AssetPolicy memory);

    /// @notice Every asset that ever got a policy.
    function assets() external view returns (address[] memory);

    /// @notice Sum of all client balances in `asset`.
    function allocated(address asset) external view returns (uint256);

    /// @notice What this contract holds in `asset` beyond {allocated} (zero when it holds less).
    function unallocated(address asset) external view returns (uint256);

    /// @notice How much this contract holds less than {allocated} in `asset` (zero normally).
    function shortfall(address asset) external view returns (uint256);

    /// @notice The current UTC day index, what was withdrawn in `asset` that day, and what is left of its limit.
    function dailyUsage(address asset) external view returns (uint256 day, uint256 used, uint256 remaining);

    /// @notice Withdrawal `withdrawalId` (status `None` when unknown).
    function withdrawal(uint256 withdrawalId) external view returns (Withdrawal memory);

    /// @notice Whether `approver` approved `withdrawalId`.
    function hasApproved(uint256 withdrawalId, address approver) external view returns (bool);

    /// @notice Whether `withdrawalId` could be executed right now, and if not, why.
    function checkExecution(uint256 withdrawalId) external view returns (ExecutionCheck);

    /// @notice Number of withdrawals requested so far; ids run from 1 to this.
    function withdrawalCount() external view returns (uint256);

    /// @notice Change `changeId` (status `None` when unknown).
    function change(uint256 changeId) external view returns (Change memory);

    /// @notice Number of changes proposed so far; ids run from 1 to this.
    function changeCount() external view returns (uint256);

    /// @notice Whether custody movements are paused.
    function paused() external view returns (bool);
}
