// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {AccessManaged} from "@openzeppelin/contracts/access/manager/AccessManaged.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {Time} from "@openzeppelin/contracts/utils/types/Time.sol";

import {ICustody} from "./ICustody.sol";

/// @title Custody
/// @notice See {ICustody}.
/// @dev Client balances change only in {_book}. Tokens move in only in {deposit} and out only in {executeWithdrawal};
/// both are non-reentrant and book before the token call, so a token calling back finds the books already final.
contract Custody is AccessManaged, ReentrancyGuardTransient, ICustody {
    using EnumerableSet for EnumerableSet.AddressSet;
    using SafeCast for uint256;
    using SafeERC20 for IERC20;

    /// @notice Most approvals a policy may demand: beyond sixteen distinct approvers per payment, an approval
    /// process is no longer a control but a bottleneck, and the bound keeps the count in a `uint8`.
    uint8 public constant MAX_APPROVALS = 16;

    /// @notice Longest time lock a policy may set: thirty days is longer than any compliance review of a payment
    /// should take, and a bound keeps a mistyped delay from locking client assets for years.
    uint32 public constant MAX_TIMELOCK = 30 days;

    /// @notice Length of the daily-limit window: a UTC calendar day.
    uint256 public constant WINDOW = 1 days;

    /// @dev What was withdrawn of one asset in the window `day`; a new day starts from zero.
    struct Usage {
        uint64 day;
        uint192 used;
    }

    mapping(bytes32 clientId => Account) private _accounts;
    mapping(bytes32 clientId => mapping(address asset => Position)) private _positions;
    mapping(bytes32 clientId => EnumerableSet.AddressSet) private _destinations;
    mapping(address asset => AssetPolicy) private _policies;
    EnumerableSet.AddressSet private _assets;
    mapping(address asset => uint256) private _allocated;
    mapping(address asset => Usage) private _usage;
    mapping(uint256 withdrawalId => Withdrawal) private _withdrawals;
    mapping(uint256 withdrawalId => mapping(address approver => bool)) private _approved;
    mapping(uint256 changeId => Change) private _changes;
    uint256 private _withdrawalCount;
    uint256 private _changeCount;
    bool private _paused;

    /// @param authority The platform's access manager.
    constructor(address authority) AccessManaged(authority) {}

    // ------------------------------------------------------------- accounts

    /// @inheritdoc ICustody
    function openAccount(bytes32 clientId) external restricted {
        if (clientId == bytes32(0)) revert CustodyZeroClientId();
        Account storage entry = _accounts[clientId];
        if (entry.open) revert CustodyClientExists(clientId);

        entry.open = true;
        emit ClientAccountOpened(clientId, msg.sender);
    }

    /// @inheritdoc ICustody
    function setClientFrozen(bytes32 clientId, bool frozen) external restricted {
        Account storage entry = _openAccount(clientId);
        if (entry.frozen == frozen) revert CustodyFreezeUnchanged(clientId, frozen);

        entry.frozen = frozen;
        emit ClientFreezeUpdated(clientId, msg.sender, frozen);
    }

    /// @inheritdoc ICustody
    function setPaused(bool paused_) external restricted {
        if (_paused == paused_) revert CustodyPauseUnchanged(paused_);

        _paused = paused_;
        emit CustodyPauseUpdated(msg.sender, paused_);
    }

    /// @inheritdoc ICustody
    function setAssetPolicy(
        address asset,
        bool enabled,
        uint8 approvals,
        uint32 timelockDelay,
        uint128 dailyLimit,
        uint128 timelockThreshold
    ) external restricted {
        if (asset == address(0) || asset == address(this)) revert CustodyAssetInvalid(asset);
        if (approvals == 0 || approvals > MAX_APPROVALS) revert CustodyApprovalsInvalid(approvals, MAX_APPROVALS);
        if (timelockDelay > MAX_TIMELOCK) revert CustodyTimelockTooLong(timelockDelay, MAX_TIMELOCK);

        _policies[asset] = AssetPolicy({
            enabled: enabled,
            approvals: approvals,
            timelockDelay: timelockDelay,
            dailyLimit: dailyLimit,
            timelockThreshold: timelockThreshold
        });
        if (_assets.add(asset)) emit AssetListed(asset);
        emit AssetPolicySet(asset, enabled, approvals, timelockDelay, dailyLimit, timelockThreshold);
    }

    /// @inheritdoc ICustody
    function deposit(bytes32 clientId, address asset, uint256 amount) external restricted nonReentrant {
        _requireEnabled(asset);
        if (amount == 0) revert CustodyZeroAmount();
        IERC20 token = IERC20(asset);
        uint256 before = token.balanceOf(address(this));

        _book(clientId, asset, EntryKind.Deposit, amount, 0);
        emit Deposited(clientId, asset, msg.sender, amount);

        token.safeTransferFrom(msg.sender, address(this), amount);
        uint256 received = token.balanceOf(address(this)) - before;
        if (received != amount) revert CustodyDepositMismatch(asset, amount, received);
    }

    // -------------------------------------------------------------- changes

    /// @inheritdoc ICustody
    function proposeDestination(bytes32 clientId, address destination, bool allowed)
        external
        restricted
        returns (uint256 changeId)
    {
        _whenNotPaused();
        _openAccount(clientId);
        if (destination == address(0) || destination == address(this)) revert CustodyDestinationInvalid(destination);
        if (_destinations[clientId].contains(destination) == allowed) {
            revert CustodyDestinationUnchanged(clientId, destination, allowed);
        }

        ChangeKind kind = allowed ? ChangeKind.AddDestination : ChangeKind.RemoveDestination;
        changeId = _propose(kind, clientId, destination, 0);
    }

    /// @inheritdoc ICustody
    function proposeAllocation(bytes32 clientId, address asset, uint256 amount)
        external
        restricted
        returns (uint256 changeId)
    {
        _whenNotPaused();
        _openAccount(clientId);
        _requireEnabled(asset);
        if (amount == 0) revert CustodyZeroAmount();
        if (amount > type(uint128).max) revert CustodyAmountTooLarge(amount, type(uint128).max);
        uint256 free = _unallocated(asset);
        if (free < amount) revert CustodyUnallocatedTooLow(asset, free, amount);

        changeId = _propose(ChangeKind.Allocate, clientId, asset, amount);
    }

    /// @inheritdoc ICustody
    function approveChange(uint256 changeId) external restricted {
        _whenNotPaused();
        Change storage proposal = _changes[changeId];
        if (proposal.status != ChangeStatus.Pending) revert CustodyChangeStatus(changeId, proposal.status);
        if (proposal.proposer == msg.sender) revert CustodyChangeSelfApproval(changeId, msg.sender);

        proposal.status = ChangeStatus.Applied;
        emit ChangeApplied(changeId, msg.sender);

        bytes32 clientId = proposal.clientId;
        address account_ = proposal.account;
        ChangeKind kind = proposal.kind;
        if (kind == ChangeKind.Allocate) {
            uint256 amount = proposal.amount;
            // Rechecked: a withdrawal or another allocation may have taken the surplus since the proposal.
            uint256 free = _unallocated(account_);
            if (free < amount) revert CustodyUnallocatedTooLow(account_, free, amount);
            _book(clientId, account_, EntryKind.Allocation, amount, changeId);
        } else {
            bool allowed = kind == ChangeKind.AddDestination;
            bool changed = allowed ? _destinations[clientId].add(account_) : _destinations[clientId].remove(account_);
            if (!changed) revert CustodyDestinationUnchanged(clientId, account_, allowed);
            emit DestinationUpdated(clientId, account_, changeId, allowed);
        }
    }

    /// @inheritdoc ICustody
    function cancelChange(uint256 changeId) external restricted {
        Change storage proposal = _changes[changeId];
        if (proposal.status != ChangeStatus.Pending) revert CustodyChangeStatus(changeId, proposal.status);

        proposal.status = ChangeStatus.Cancelled;
        emit ChangeCancelled(changeId, msg.sender);
    }

    // ---------------------------------------------------------- withdrawals

    /// @inheritdoc ICustody
    function requestWithdrawal(
        bytes32 clientId,
        address asset,
        uint256 amount,
        address destination,
        bytes32 travelRuleHash
    ) external restricted returns (uint256 withdrawalId) {
        _whenNotPaused();
        AssetPolicy memory policy = _requireEnabled(asset);
        if (amount == 0) revert CustodyZeroAmount();
        if (amount > policy.dailyLimit) revert CustodyAmountAboveDailyLimit(asset, amount, policy.dailyLimit);
        if (!_destinations[clientId].contains(destination)) {
            revert CustodyDestinationNotAllowed(clientId, destination);
        }
        if (travelRuleHash == bytes32(0)) revert CustodyTravelRuleHashMissing();

        withdrawalId = ++_withdrawalCount;
        uint32 delay = amount > policy.timelockThreshold ? policy.timelockDelay : 0;
        _withdrawals[withdrawalId] = Withdrawal({
            clientId: clientId,
            asset: asset,
            requestedAt: Time.timestamp(),
            unlockAt: 0,
            destination: destination,
            approvalsRequired: policy.approvals,
            approvals: 0,
            status: WithdrawalStatus.Pending,
            timelockDelay: delay,
            requester: msg.sender,
            amount: amount.toUint128(),
            travelRuleHash: travelRuleHash
        });
        emit WithdrawalRequested(
            withdrawalId, clientId, asset, destination, amount, travelRuleHash, msg.sender, policy.approvals, delay
        );

        _book(clientId, asset, EntryKind.Reservation, amount, withdrawalId);
    }

    /// @inheritdoc ICustody
    function approveWithdrawal(uint256 withdrawalId) external restricted {
        _whenNotPaused();
        Withdrawal storage request = _withdrawals[withdrawalId];
        if (request.status != WithdrawalStatus.Pending) revert CustodyWithdrawalStatus(withdrawalId, request.status);
        if (request.requester == msg.sender) revert CustodySelfApproval(withdrawalId, msg.sender);
        if (_approved[withdrawalId][msg.sender]) revert CustodyAlreadyApproved(withdrawalId, msg.sender);

        _approved[withdrawalId][msg.sender] = true;
        // Cannot overflow: approvals < approvalsRequired ≤ MAX_APPROVALS while pending.
        uint8 approvals = request.approvals + 1;
        uint8 required = request.approvalsRequired;
        request.approvals = approvals;
        emit WithdrawalApproved(withdrawalId, msg.sender, approvals, required);

        if (approvals == required) {
            uint48 unlockAt = Time.timestamp() + request.timelockDelay;
            request.status = WithdrawalStatus.Approved;
            request.unlockAt = unlockAt;
            emit WithdrawalUnlockScheduled(withdrawalId, unlockAt);
        }
    }

    /// @inheritdoc ICustody
    function executeWithdrawal(uint256 withdrawalId) external restricted nonReentrant {
        Withdrawal storage request = _withdrawals[withdrawalId];
        ExecutionCheck reason = _checkExecution(request);
        if (reason != ExecutionCheck.Ok) revert CustodyWithdrawalNotExecutable(withdrawalId, reason);

        bytes32 clientId = request.clientId;
        address asset = request.asset;
        address destination = request.destination;
        uint256 amount = request.amount;
        request.status = WithdrawalStatus.Executed;
        _countAgainstLimit(asset, amount);
        _book(clientId, asset, EntryKind.Withdrawal, amount, withdrawalId);
        emit WithdrawalExecuted(withdrawalId, clientId, asset, destination, amount, request.travelRuleHash, msg.sender);

        IERC20(asset).safeTransfer(destination, amount);
    }

    /// @inheritdoc ICustody
    function cancelWithdrawal(uint256 withdrawalId, bytes32 reason) external restricted {
        _close(withdrawalId, reason);
    }

    /// @inheritdoc ICustody
    function retractWithdrawal(uint256 withdrawalId) external restricted {
        address requester = _withdrawals[withdrawalId].requester;
        if (requester != msg.sender) revert CustodyNotRequester(withdrawalId, msg.sender);
        _close(withdrawalId, bytes32(0));
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc ICustody
    function account(bytes32 clientId) external view returns (Account memory) {
        return _accounts[clientId];
    }

    /// @inheritdoc ICustody
    function position(bytes32 clientId, address asset)
        external
        view
        returns (uint256 balance, uint256 reserved, uint256 available)
    {
        Position memory holding = _positions[clientId][asset];
        return (holding.balance, holding.reserved, holding.balance - holding.reserved);
    }

    /// @inheritdoc ICustody
    function destinations(bytes32 clientId) external view returns (address[] memory) {
        return _destinations[clientId].values();
    }

    /// @inheritdoc ICustody
    function isDestination(bytes32 clientId, address destination) external view returns (bool) {
        return _destinations[clientId].contains(destination);
    }

    /// @inheritdoc ICustody
    function assetPolicy(address asset) external view returns (AssetPolicy memory) {
        return _policies[asset];
    }

    /// @inheritdoc ICustody
    function assets() external view returns (address[] memory) {
        return _assets.values();
    }

    /// @inheritdoc ICustody
    function allocated(address asset) external view returns (uint256) {
        return _allocated[asset];
    }

    /// @inheritdoc ICustody
    function unallocated(address asset) external view returns (uint256) {
        return _unallocated(asset);
    }

    /// @inheritdoc ICustody
    function shortfall(address asset) external view returns (uint256) {
        uint256 held = IERC20(asset).balanceOf(address(this));
        uint256 owed = _allocated[asset];
        return owed > held ? owed - held : 0;
    }

    /// @inheritdoc ICustody
    function dailyUsage(address asset) external view returns (uint256 day, uint256 used, uint256 remaining) {
        day = block.timestamp / WINDOW;
        used = _usedToday(asset);
        uint256 limit = _policies[asset].dailyLimit;
        remaining = limit > used ? limit - used : 0;
    }

    /// @inheritdoc ICustody
    function withdrawal(uint256 withdrawalId) external view returns (Withdrawal memory) {
        return _withdrawals[withdrawalId];
    }

    /// @inheritdoc ICustody
    function hasApproved(uint256 withdrawalId, address approver) external view returns (bool) {
        return _approved[withdrawalId][approver];
    }

    /// @inheritdoc ICustody
    function checkExecution(uint256 withdrawalId) external view returns (ExecutionCheck) {
        return _checkExecution(_withdrawals[withdrawalId]);
    }

    /// @inheritdoc ICustody
    function withdrawalCount() external view returns (uint256) {
        return _withdrawalCount;
    }

    /// @inheritdoc ICustody
    function change(uint256 changeId) external view returns (Change memory) {
        return _changes[changeId];
    }

    /// @inheritdoc ICustody
    function changeCount() external view returns (uint256) {
        return _changeCount;
    }

    /// @inheritdoc ICustody
    function paused() external view returns (bool) {
        return _paused;
    }

    // ------------------------------------------------------------- internal

    /// @dev The only code that changes client balances, reservations and {allocated}. Credits, reservations and
    /// debits need an open, unfrozen account and no pause; releases only an open account, so that cancelling stays
    /// possible in an incident. Reservations need enough available balance; releases and debits touch only what an
    /// open withdrawal reserved, so they cannot underflow.
    function _book(bytes32 clientId, address asset, EntryKind kind, uint256 amount, uint256 ref) private {
        Account memory entry = _openAccount(clientId);
        if (kind != EntryKind.Release) {
            if (_paused) revert CustodyPaused();
            if (entry.frozen) revert CustodyClientFrozen(clientId);
        }

        Position storage holding = _positions[clientId][asset];
        uint256 balance = holding.balance;
        uint256 reserved = holding.reserved;
        if (kind == EntryKind.Deposit || kind == EntryKind.Allocation) {
            balance += amount;
            if (balance > type(uint128).max) revert CustodyAmountTooLarge(amount, type(uint128).max - holding.balance);
            _allocated[asset] += amount;
        } else if (kind == EntryKind.Reservation) {
            uint256 available = balance - reserved;
            if (available < amount) revert CustodyInsufficientAvailable(clientId, asset, available, amount);
            reserved += amount;
        } else if (kind == EntryKind.Release) {
            reserved -= amount;
        } else {
            reserved -= amount;
            balance -= amount;
            _allocated[asset] -= amount;
        }

        holding.balance = balance.toUint128();
        holding.reserved = reserved.toUint128();
        emit ClientBalanceChanged(clientId, asset, ref, kind, amount, balance, reserved);
    }

    /// @dev Cancels or retracts an open withdrawal and releases its reservation.
    function _close(uint256 withdrawalId, bytes32 reason) private {
        Withdrawal storage request = _withdrawals[withdrawalId];
        WithdrawalStatus status = request.status;
        if (status != WithdrawalStatus.Pending && status != WithdrawalStatus.Approved) {
            revert CustodyWithdrawalStatus(withdrawalId, status);
        }

        request.status = WithdrawalStatus.Cancelled;
        emit WithdrawalCancelled(withdrawalId, msg.sender, reason);

        _book(request.clientId, request.asset, EntryKind.Release, request.amount, withdrawalId);
    }

    function _propose(ChangeKind kind, bytes32 clientId, address account_, uint256 amount)
        private
        returns (uint256 changeId)
    {
        changeId = ++_changeCount;
        _changes[changeId] = Change({
            kind: kind,
            status: ChangeStatus.Pending,
            proposer: msg.sender,
            proposedAt: Time.timestamp(),
            clientId: clientId,
            account: account_,
            amount: amount.toUint128()
        });
        emit ChangeProposed(changeId, clientId, msg.sender, kind, account_, amount);
    }

    function _countAgainstLimit(address asset, uint256 amount) private {
        uint256 used = _usedToday(asset);
        Usage storage usage = _usage[asset];
        usage.day = (block.timestamp / WINDOW).toUint64();
        usage.used = (used + amount).toUint192();
    }

    function _checkExecution(Withdrawal storage request) private view returns (ExecutionCheck) {
        WithdrawalStatus status = request.status;
        if (status == WithdrawalStatus.None) return ExecutionCheck.WithdrawalUnknown;
        if (status == WithdrawalStatus.Pending) return ExecutionCheck.AwaitingApprovals;
        if (status != WithdrawalStatus.Approved) return ExecutionCheck.AlreadyClosed;
        if (_paused) return ExecutionCheck.Paused;
        bytes32 clientId = request.clientId;
        if (_accounts[clientId].frozen) return ExecutionCheck.ClientFrozen;
        if (block.timestamp < request.unlockAt) return ExecutionCheck.TimeLocked;
        if (!_destinations[clientId].contains(request.destination)) return ExecutionCheck.DestinationNotAllowed;

        address asset = request.asset;
        uint256 used = _usedToday(asset);
        if (used + request.amount > _policies[asset].dailyLimit) return ExecutionCheck.DailyLimitExceeded;
        return ExecutionCheck.Ok;
    }

    /// @dev What was withdrawn of `asset` in the current window; a record from an earlier day counts as zero (days
    /// only move forward, so an older record is the only other case).
    function _usedToday(address asset) private view returns (uint256) {
        Usage memory usage = _usage[asset];
        return usage.day < block.timestamp / WINDOW ? 0 : usage.used;
    }

    function _unallocated(address asset) private view returns (uint256) {
        uint256 held = IERC20(asset).balanceOf(address(this));
        uint256 owed = _allocated[asset];
        return held > owed ? held - owed : 0;
    }

    function _openAccount(bytes32 clientId) private view returns (Account storage entry) {
        entry = _accounts[clientId];
        if (!entry.open) revert CustodyClientUnknown(clientId);
    }

    function _requireEnabled(address asset) private view returns (AssetPolicy memory policy) {
        policy = _policies[asset];
        if (!policy.enabled) revert CustodyAssetNotEnabled(asset);
    }

    function _whenNotPaused() private view {
        if (_paused) revert CustodyPaused();
    }
}
