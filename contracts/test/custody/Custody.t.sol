// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {IAccessManaged} from "@openzeppelin/contracts/access/manager/IAccessManaged.sol";
import {IAccessManager} from "@openzeppelin/contracts/access/manager/IAccessManager.sol";

import {IEcropAccessManager} from "../../src/access/IEcropAccessManager.sol";
import {Roles} from "../../src/access/Roles.sol";
import {ISecuritiesRegister} from "../../src/register/ISecuritiesRegister.sol";
import {ICustody} from "../../src/custody/ICustody.sol";
import {CustodyFixture, FeeToken} from "./CustodyFixture.sol";

/// @notice Unit and fuzz tests of the custody rules: deposits and allocations, the address book, withdrawals with
/// approvals, daily limits and time locks, freeze and pause.
contract CustodyTest is CustodyFixture {
    function _unauthorized(address caller) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IAccessManaged.AccessManagedUnauthorized.selector, caller);
    }

    // -------------------------------------------------------------- accounts

    function test_openAccount_refusesZeroAndDuplicate() public {
        vm.startPrank(custodyOfficer);
        vm.expectRevert(abi.encodeWithSelector(ICustody.CustodyZeroClientId.selector));
        custody.openAccount(bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(ICustody.CustodyClientExists.selector, CLIENT_A));
        custody.openAccount(CLIENT_A);
        vm.stopPrank();
        assertTrue(custody.account(CLIENT_A).open);
        assertFalse(custody.account(keccak256("client:none")).open);
    }

    function test_setAssetPolicy_refusesBadRules() public {
        vm.startPrank(admin);
        vm.expectRevert(abi.encodeWithSelector(ICustody.CustodyAssetInvalid.selector, address(0)));
        custody.setAssetPolicy(address(0), true, 1, 0, 1, 1);
        vm.expectRevert(abi.encodeWithSelector(ICustody.CustodyAssetInvalid.selector, address(custody)));
        custody.setAssetPolicy(address(custody), true, 1, 0, 1, 1);
        vm.expectRevert(abi.encodeWithSelector(ICustody.CustodyApprovalsInvalid.selector, 0, 16));
        custody.setAssetPolicy(address(usd), true, 0, 0, 1, 1);
        vm.expectRevert(abi.encodeWithSelector(ICustody.CustodyApprovalsInvalid.selector, 17, 16));
        custody.setAssetPolicy(address(usd), true, 17, 0, 1, 1);
        vm.expectRevert(abi.encodeWithSelector(ICustody.CustodyTimelockTooLong.selector, 30 days + 1, 30 days));
        custody.setAssetPolicy(address(usd), true, 1, 30 days + 1, 1, 1);
        vm.stopPrank();

        ICustody.AssetPolicy memory policy = custody.assetPolicy(address(usd));
        assertEq(policy.approvals, APPROVALS);
        assertEq(policy.dailyLimit, LIMIT);
        address[] memory listed = custody.assets();
        assertEq(listed.length, 2);
        assertEq(listed[0], address(usd));
        assertEq(listed[1], address(token));
    }

    // -------------------------------------------------------------- deposits

    function test_deposit_creditsNamedClient() public {
        usd.mint(custodyOfficer, 50 ether);
        vm.startPrank(custodyOfficer);
        usd.approve(address(custody), 50 ether);
        vm.expectEmit(address(custody));
        emit ICustody.ClientBalanceChanged(CLIENT_A, address(usd), 0, ICustody.EntryKind.Deposit, 50 ether, 50 ether, 0);
        vm.expectEmit(address(custody));
        emit ICustody.Deposited(CLIENT_A, address(usd), custodyOfficer, 50 ether);
        custody.deposit(CLIENT_A, address(usd), 50 ether);
        vm.stopPrank();

        (uint256 balance, uint256 reserved, uint256 available) = custody.position(CLIENT_A, address(usd));
        assertEq(balance, 50 ether);
        assertEq(reserved, 0);
        assertEq(available, 50 ether);
        assertEq(custody.allocated(address(usd)), 50 ether);
        assertEq(custody.unallocated(address(usd)), 0);
        assertEq(usd.balanceOf(address(custody)), 50 ether);
        (balance,) = _position(CLIENT_B, address(usd));
        assertEq(balance, 0);
    }

    function test_deposit_refusesUnknownClientDisabledAssetAndZero() public {
        usd.mint(custodyOfficer, 10);
        vm.startPrank(custodyOfficer);
        usd.approve(address(custody), 10);
        vm.expectRevert(abi.encodeWithSelector(ICustody.CustodyClientUnknown.selector, keccak256("x")));
        custody.deposit(keccak256("x"), address(usd), 10);
        vm.expectRevert(abi.encodeWithSelector(ICustody.CustodyZeroAmount.selector));
        custody.deposit(CLIENT_A, address(usd), 0);
        FeeToken other = new FeeToken();
        vm.expectRevert(abi.encodeWithSelector(ICustody.CustodyAssetNotEnabled.selector, address(other)));
        custody.deposit(CLIENT_A, address(other), 10);
        vm.stopPrank();
    }

    function test_deposit_refusesFeeOnTransferToken() public {
        FeeToken fee = new FeeToken();
        vm.prank(admin);
        custody.setAssetPolicy(address(fee), true, 1, 0, 1 ether, 1 ether);
        fee.mint(custodyOfficer, 100);
        vm.startPrank(custodyOfficer);
        fee.approve(address(custody), 100);
        vm.expectRevert(abi.encodeWithSelector(ICustody.CustodyDepositMismatch.selector, address(fee), 100, 99));
        custody.deposit(CLIENT_A, address(fee), 100);
        vm.stopPrank();
        assertEq(custody.allocated(address(fee)), 0);
    }

    // ---------------------------------------------- unallocated, collective

    function test_directTransfer_staysUnallocatedUntilApprovedAllocation() public {
        _deposit(CLIENT_A, 10 ether);
        usd.mint(stranger, 7 ether);
        vm.prank(stranger);
        usd.transfer(address(custody), 7 ether);
        assertEq(custody.allocated(address(usd)), 10 ether);
        assertEq(custody.unallocated(address(usd)), 7 ether);

        vm.prank(custodyOfficer);
        uint256 changeId = custody.proposeAllocation(CLIENT_B, address(usd), 7 ether);
        (uint256 balance,) = _position(CLIENT_B, address(usd));
        assertEq(balance, 0, "a proposal alone credits nothing");

        vm.prank(custodyOfficer);
        vm.expectRevert(_unauthorized(custodyOfficer));
        custody.approveChange(changeId);

        vm.expectEmit(address(custody));
        emit ICustody.ChangeApplied(changeId, custodyApprover);
        vm.expectEmit(address(custody));
        emit ICustody.ClientBalanceChanged(
            CLIENT_B, address(usd), changeId, ICustody.EntryKind.Allocation, 7 ether, 7 ether, 0
        );
        vm.prank(custodyApprover);
        custody.approveChange(changeId);

        (balance,) = _position(CLIENT_B, address(usd));
        assertEq(balance, 7 ether);
        assertEq(custody.unallocated(address(usd)), 0);
        assertEq(custody.allocated(address(usd)), usd.balanceOf(address(custody)));
    }

    function test_allocation_refusesMoreThanUnallocated() public {
        usd.mint(address(custody), 5);
        vm.startPrank(custodyOfficer);
        vm.expectRevert(abi.encodeWithSelector(ICustody.CustodyUnallocatedTooLow.selector, address(usd), 5, 6));
        custody.proposeAllocation(CLIENT_A, address(usd), 6);
        uint256 first = custody.proposeAllocation(CLIENT_A, address(usd), 5);
        uint256 second = custody.proposeAllocation(CLIENT_B, address(usd), 5);
        vm.stopPrank();

        vm.startPrank(custodyApprover);
        custody.approveChange(first);
        vm.expectRevert(abi.encodeWithSelector(ICustody.CustodyUnallocatedTooLow.selector, address(usd), 0, 5));
        custody.approveChange(second);
        vm.stopPrank();
        assertEq(custody.allocated(address(usd)), 5);
    }

    function test_allocation_proposerWithApproverRoleCannotApprove() public {
        _fourEyes(abi.encodeCall(IAccessManager.grantRole, (Roles.CUSTODY_APPROVER, custodyOfficer, 0)));
        usd.mint(address(custody), 5);
        vm.startPrank(custodyOfficer);
        uint256 changeId = custody.proposeAllocation(CLIENT_A, address(usd), 5);
        vm.expectRevert(abi.encodeWithSelector(ICustody.CustodyChangeSelfApproval.selector, changeId, custodyOfficer));
        custody.approveChange(changeId);
        vm.stopPrank();
    }

    /// @dev Sammeleintragung: the register books a collective security to the custody contract, which the investor
    /// registry lists as the custodian's wallet; the contract keeps the split and withdraws to another
    /// collective-entry holder through the register's full check path.
    function test_collectiveEntry_registerHoldsCustodianPositionContractKeepsSplit() public {
        address collective = _createSecurity(COLLECTIVE_ISIN, ISecuritiesRegister.SecurityKind.Collective, 1_000_000);
        address csd = vm.addr(0xC5D2);
        _investor(keccak256("holder:csd"), csd, "DE", true);
        vm.prank(admin);
        custody.setAssetPolicy(collective, true, APPROVALS, DELAY, SEC_LIMIT, SEC_THRESHOLD);

        _withConsent(abi.encodeCall(ISecuritiesRegister.issue, (COLLECTIVE_ISIN, address(custody), 1_000)));
        assertEq(registry.holderOf(address(custody)), CUSTODIAN_ID);
        assertEq(register.balanceOf(COLLECTIVE_ISIN, address(custody)), 1_000);
        assertEq(custody.unallocated(collective), 1_000);

        _allocate(CLIENT_A, collective, 600);
        _allocate(CLIENT_B, collective, 400);
        assertEq(custody.allocated(collective), register.balanceOf(COLLECTIVE_ISIN, address(custody)));

        _setDestination(CLIENT_A, csd, true);
        uint256 id = _request(CLIENT_A, collective, 250, csd);
        _approveAll(id);
        _execute(id);

        assertEq(register.balanceOf(COLLECTIVE_ISIN, csd), 250);
        assertEq(register.balanceOf(COLLECTIVE_ISIN, address(custody)), 750);
        (uint256 a,) = _position(CLIENT_A, collective);
        (uint256 b,) = _position(CLIENT_B, collective);
        assertEq(a, 350);
        assertEq(b, 400);
        assertEq(a + b, register.balanceOf(COLLECTIVE_ISIN, address(custody)));
    }

    /// @dev A withdrawal of a register security the register refuses (the receiver is frozen there) reverts whole.
    function test_execute_registerRefusalRevertsEverything() public {
        _withConsent(abi.encodeCall(ISecuritiesRegister.issue, (ISIN, address(custody), 100)));
        _allocate(CLIENT_A, address(token), 100);
        _setDestination(CLIENT_A, bob, true);
        uint256 id = _request(CLIENT_A, address(token), 40, bob);
        _approveAll(id);
        vm.prank(compliance);
        registry.setInvestorFrozen(BOB_ID, true);

        vm.prank(custodyOfficer);
        vm.expectRevert(_refused(address(custody), bob, 40, ISecuritiesRegister.ReasonCode.ReceiverInvestorFrozen));
        custody.executeWithdrawal(id);
        (uint256 balance, uint256 reserved) = _position(CLIENT_A, address(token));
        assertEq(balance, 100);
        assertEq(reserved, 40);
        assertEq(uint256(custody.withdrawal(id).status), uint256(ICustody.WithdrawalStatus.Approved));

        vm.prank(compliance);
        registry.setInvestorFrozen(BOB_ID, false);
        _execute(id);
        assertEq(token.balanceOf(bob), 40);
    }

    // ----------------------------------------------------------- withdrawals

    function test_withdrawal_requestApproveExecute() public {
        _funded(500 ether);
        vm.expectEmit(address(custody));
        emit ICustody.WithdrawalRequested(1, CLIENT_A, address(usd), payee, 60 ether, TRAVEL, custodyOfficer, 2, 0);
        vm.expectEmit(address(custody));
        emit ICustody.ClientBalanceChanged(
            CLIENT_A, address(usd), 1, ICustody.EntryKind.Reservation, 60 ether, 500 ether, 60 ether
        );
        uint256 id = _request(CLIENT_A, address(usd), 60 ether, payee);
        assertEq(id, 1);
        (,, uint256 available) = custody.position(CLIENT_A, address(usd));
        assertEq(available, 440 ether);
        assertEq(uint256(custody.checkExecution(id)), uint256(ICustody.ExecutionCheck.AwaitingApprovals));

        vm.prank(custodyApprover);
        custody.approveWithdrawal(id);
        vm.prank(custodyOfficer);
        vm.expectRevert(_notExecutable(id, ICustody.ExecutionCheck.AwaitingApprovals));
        custody.executeWithdrawal(id);

        vm.expectEmit(address(custody));
        emit ICustody.WithdrawalApproved(id, approver2, 2, 2);
        vm.expectEmit(address(custody));
        emit ICustody.WithdrawalUnlockScheduled(id, uint48(block.timestamp));
        vm.prank(approver2);
        custody.approveWithdrawal(id);
        assertTrue(custody.hasApproved(id, custodyApprover));
        assertTrue(custody.hasApproved(id, approver2));
        assertFalse(custody.hasApproved(id, approver3));

        vm.expectEmit(address(custody));
        emit ICustody.ClientBalanceChanged(
            CLIENT_A, address(usd), id, ICustody.EntryKind.Withdrawal, 60 ether, 440 ether, 0
        );
        vm.expectEmit(address(custody));
        emit ICustody.WithdrawalExecuted(id, CLIENT_A, address(usd), payee, 60 ether, TRAVEL, custodyOfficer);
        _execute(id);

        assertEq(usd.balanceOf(payee), 60 ether);
        assertEq(custody.allocated(address(usd)), 440 ether);
        assertEq(usd.balanceOf(address(custody)), 440 ether);
        ICustody.Withdrawal memory w = custody.withdrawal(id);
        assertEq(uint256(w.status), uint256(ICustody.WithdrawalStatus.Executed));
        assertEq(w.travelRuleHash, TRAVEL);
        (, uint256 used, uint256 remaining) = custody.dailyUsage(address(usd));
        assertEq(used, 60 ether);
        assertEq(remaining, LIMIT - 60 ether);

        vm.prank(custodyOfficer);
        vm.expectRevert(_notExecutable(id, ICustody.ExecutionCheck.AlreadyClosed));
        custody.executeWithdrawal(id);
        vm.prank(compliance);
        vm.expectRevert(
            abi.encodeWithSelector(ICustody.CustodyWithdrawalStatus.selector, id, ICustody.WithdrawalStatus.Executed)
        );
        custody.cancelWithdrawal(id, bytes32(0));
    }

    function test_request_refusals() public {
        _funded(100 ether);
        vm.startPrank(custodyOfficer);
        vm.expectRevert(abi.encodeWithSelector(ICustody.CustodyDestinationNotAllowed.selector, CLIENT_A, payee2));
        custody.requestWithdrawal(CLIENT_A, address(usd), 1 ether, payee2, TRAVEL);
        vm.expectRevert(abi.encodeWithSelector(ICustody.CustodyTravelRuleHashMissing.selector));
        custody.requestWithdrawal(CLIENT_A, address(usd), 1 ether, payee, bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(ICustody.CustodyZeroAmount.selector));
        custody.requestWithdrawal(CLIENT_A, address(usd), 0, payee, TRAVEL);
        vm.expectRevert(
            abi.encodeWithSelector(
                ICustody.CustodyInsufficientAvailable.selector, CLIENT_A, address(usd), 100 ether, 101 ether
            )
        );
        custody.requestWithdrawal(CLIENT_A, address(usd), 101 ether, payee, TRAVEL);
        custody.requestWithdrawal(CLIENT_A, address(usd), 70 ether, payee, TRAVEL);
        vm.expectRevert(
            abi.encodeWithSelector(
                ICustody.CustodyInsufficientAvailable.selector, CLIENT_A, address(usd), 30 ether, 31 ether
            )
        );
        custody.requestWithdrawal(CLIENT_A, address(usd), 31 ether, payee, TRAVEL);
        vm.expectRevert(abi.encodeWithSelector(ICustody.CustodyDestinationNotAllowed.selector, CLIENT_B, payee));
        custody.requestWithdrawal(CLIENT_B, address(usd), 1, payee, TRAVEL);
        vm.stopPrank();
    }

    function test_approve_requesterCannotApproveEvenWithApproverRole() public {
        _fourEyes(abi.encodeCall(IAccessManager.grantRole, (Roles.CUSTODY_APPROVER, custodyOfficer, 0)));
        _funded(10 ether);
        uint256 id = _request(CLIENT_A, address(usd), 1 ether, payee);

        vm.prank(custodyOfficer);
        vm.expectRevert(abi.encodeWithSelector(ICustody.CustodySelfApproval.selector, id, custodyOfficer));
        custody.approveWithdrawal(id);
        assertEq(custody.withdrawal(id).approvals, 0);
    }

    function test_approve_sameApproverCountsOnce() public {
        _funded(10 ether);
        uint256 id = _request(CLIENT_A, address(usd), 1 ether, payee);
        vm.startPrank(custodyApprover);
        custody.approveWithdrawal(id);
        vm.expectRevert(abi.encodeWithSelector(ICustody.CustodyAlreadyApproved.selector, id, custodyApprover));
        custody.approveWithdrawal(id);
        vm.stopPrank();
        assertEq(custody.withdrawal(id).approvals, 1);
        assertEq(uint256(custody.withdrawal(id).status), uint256(ICustody.WithdrawalStatus.Pending));
    }

    function test_approve_byExpiredGrantFails() public {
        uint48 expiry = uint48(block.timestamp + 1 hours);
        _fourEyes(
            abi.encodeCall(IEcropAccessManager.grantRoleWithExpiry, (Roles.CUSTODY_APPROVER, approver3, 0, expiry))
        );
        _funded(10 ether);
        uint256 first = _request(CLIENT_A, address(usd), 1 ether, payee);
        uint256 second = _request(CLIENT_A, address(usd), 1 ether, payee);

        vm.warp(expiry - 1);
        vm.prank(approver3);
        custody.approveWithdrawal(first);

        vm.warp(expiry);
        vm.prank(approver3);
        vm.expectRevert(_unauthorized(approver3));
        custody.approveWithdrawal(second);
        assertEq(custody.withdrawal(second).approvals, 0);

        // Recertification: a new grant with a later expiry restores the approver.
        _fourEyes(
            abi.encodeCall(
                IEcropAccessManager.grantRoleWithExpiry, (Roles.CUSTODY_APPROVER, approver3, 0, expiry + 30 days)
            )
        );
        vm.prank(approver3);
        custody.approveWithdrawal(second);
        assertEq(custody.withdrawal(second).approvals, 1);
    }

    function test_approve_byRevokedGrantFails() public {
        _funded(10 ether);
        uint256 id = _request(CLIENT_A, address(usd), 1 ether, payee);
        vm.prank(admin);
        manager.revokeRole(Roles.CUSTODY_APPROVER, approver2);
        vm.prank(approver2);
        vm.expectRevert(_unauthorized(approver2));
        custody.approveWithdrawal(id);
    }

    function test_approvals_fixedAtRequestTime() public {
        _funded(10 ether);
        uint256 id = _request(CLIENT_A, address(usd), 1 ether, payee);
        vm.prank(admin);
        custody.setAssetPolicy(address(usd), true, 3, DELAY, LIMIT, THRESHOLD);
        _approveAll(id);
        assertEq(uint256(custody.checkExecution(id)), uint256(ICustody.ExecutionCheck.Ok));

        uint256 later = _request(CLIENT_A, address(usd), 1 ether, payee);
        _approveAll(later);
        assertEq(uint256(custody.checkExecution(later)), uint256(ICustody.ExecutionCheck.AwaitingApprovals));
        vm.prank(approver3);
        custody.approveWithdrawal(later);
        assertEq(uint256(custody.checkExecution(later)), uint256(ICustody.ExecutionCheck.Ok));
    }

    // ------------------------------------------------------ cancel / retract

    function test_cancel_byComplianceDuringTimeLockReleasesReservation() public {
        _funded(500 ether);
        uint256 id = _request(CLIENT_A, address(usd), 200 ether, payee);
        _approveAll(id);
        assertEq(uint256(custody.checkExecution(id)), uint256(ICustody.ExecutionCheck.TimeLocked));

        vm.warp(block.timestamp + DELAY - 1);
        vm.expectEmit(address(custody));
        emit ICustody.WithdrawalCancelled(id, compliance, keccak256("note"));
        vm.expectEmit(address(custody));
        emit ICustody.ClientBalanceChanged(
            CLIENT_A, address(usd), id, ICustody.EntryKind.Release, 200 ether, 500 ether, 0
        );
        vm.prank(compliance);
        custody.cancelWithdrawal(id, keccak256("note"));

        vm.warp(block.timestamp + 1);
        vm.prank(custodyOfficer);
        vm.expectRevert(_notExecutable(id, ICustody.ExecutionCheck.AlreadyClosed));
        custody.executeWithdrawal(id);
        (, uint256 reserved, uint256 available) = custody.position(CLIENT_A, address(usd));
        assertEq(reserved, 0);
        assertEq(available, 500 ether);
        assertEq(usd.balanceOf(payee), 0);
    }

    function test_cancel_ofPendingRequest() public {
        _funded(10 ether);
        uint256 id = _request(CLIENT_A, address(usd), 1 ether, payee);
        vm.prank(compliance);
        custody.cancelWithdrawal(id, bytes32(0));
        vm.prank(custodyApprover);
        vm.expectRevert(
            abi.encodeWithSelector(ICustody.CustodyWithdrawalStatus.selector, id, ICustody.WithdrawalStatus.Cancelled)
        );
        custody.approveWithdrawal(id);
        vm.prank(compliance);
        vm.expectRevert(
            abi.encodeWithSelector(ICustody.CustodyWithdrawalStatus.selector, 99, ICustody.WithdrawalStatus.None)
        );
        custody.cancelWithdrawal(99, bytes32(0));
    }

    function test_retract_onlyByRequester() public {
        _funded(10 ether);
        uint256 id = _request(CLIENT_A, address(usd), 1 ether, payee);
        vm.prank(officer2);
        vm.expectRevert(abi.encodeWithSelector(ICustody.CustodyNotRequester.selector, id, officer2));
        custody.retractWithdrawal(id);
        vm.prank(custodyOfficer);
        custody.retractWithdrawal(id);
        assertEq(uint256(custody.withdrawal(id).status), uint256(ICustody.WithdrawalStatus.Cancelled));
        (, uint256 reserved) = _position(CLIENT_A, address(usd));
        assertEq(reserved, 0);
    }

    // ----------------------------------------------------------- daily limit

    function test_limit_exactlyAtLimitExecutesOneOverWaitsForNextDay() public {
        _funded(2_000 ether);
        _setLock(type(uint128).max);
        uint256 day = block.timestamp / 1 days;

        uint256 first = _request(CLIENT_A, address(usd), LIMIT - 1 ether, payee);
        uint256 second = _request(CLIENT_A, address(usd), 1 ether, payee);
        uint256 third = _request(CLIENT_A, address(usd), 1, payee);
        _approveAll(first);
        _approveAll(second);
        _approveAll(third);
        _execute(first);
        _execute(second);
        (, uint256 used, uint256 remaining) = custody.dailyUsage(address(usd));
        assertEq(used, LIMIT, "exactly at the limit");
        assertEq(remaining, 0);

        assertEq(uint256(custody.checkExecution(third)), uint256(ICustody.ExecutionCheck.DailyLimitExceeded));
        vm.prank(custodyOfficer);
        vm.expectRevert(_notExecutable(third, ICustody.ExecutionCheck.DailyLimitExceeded));
        custody.executeWithdrawal(third);

        // Last second of the day: still the same window.
        vm.warp((day + 1) * 1 days - 1);
        assertEq(uint256(custody.checkExecution(third)), uint256(ICustody.ExecutionCheck.DailyLimitExceeded));
        // First second of the next UTC day: a fresh window.
        vm.warp((day + 1) * 1 days);
        (uint256 newDay, uint256 usedNow,) = custody.dailyUsage(address(usd));
        assertEq(newDay, day + 1);
        assertEq(usedNow, 0);
        _execute(third);
        (, used,) = custody.dailyUsage(address(usd));
        assertEq(used, 1);
    }

    function test_limit_requestAboveLimitRefused() public {
        _funded(2_000 ether);
        vm.prank(custodyOfficer);
        vm.expectRevert(
            abi.encodeWithSelector(ICustody.CustodyAmountAboveDailyLimit.selector, address(usd), LIMIT + 1, LIMIT)
        );
        custody.requestWithdrawal(CLIENT_A, address(usd), LIMIT + 1, payee, TRAVEL);
        _setLock(type(uint128).max);
        uint256 id = _request(CLIENT_A, address(usd), LIMIT, payee);
        _approveAll(id);
        _execute(id);
        assertEq(usd.balanceOf(payee), LIMIT);
    }

    function test_limit_loweredAfterApprovalApplies() public {
        _funded(100 ether);
        uint256 id = _request(CLIENT_A, address(usd), 50 ether, payee);
        _approveAll(id);
        vm.prank(admin);
        custody.setAssetPolicy(address(usd), true, APPROVALS, DELAY, 49 ether, THRESHOLD);
        assertEq(uint256(custody.checkExecution(id)), uint256(ICustody.ExecutionCheck.DailyLimitExceeded));
    }

    // ------------------------------------------------------------- time lock

    function test_timelock_atThresholdNoLockOneAboveLocked() public {
        _funded(500 ether);
        uint256 at = _request(CLIENT_A, address(usd), THRESHOLD, payee);
        uint256 above = _request(CLIENT_A, address(usd), THRESHOLD + 1, payee);
        assertEq(custody.withdrawal(at).timelockDelay, 0);
        assertEq(custody.withdrawal(above).timelockDelay, DELAY);
        _approveAll(at);
        _approveAll(above);
        uint256 approvedAt = block.timestamp;
        assertEq(custody.withdrawal(at).unlockAt, approvedAt);
        assertEq(custody.withdrawal(above).unlockAt, approvedAt + DELAY);

        _execute(at);

        vm.warp(approvedAt + DELAY - 1);
        vm.prank(custodyOfficer);
        vm.expectRevert(_notExecutable(above, ICustody.ExecutionCheck.TimeLocked));
        custody.executeWithdrawal(above);

        vm.warp(approvedAt + DELAY);
        _execute(above);
        assertEq(usd.balanceOf(payee), 2 * THRESHOLD + 1);
    }

    function test_timelock_startsAtLastApproval() public {
        _funded(500 ether);
        uint256 id = _request(CLIENT_A, address(usd), 200 ether, payee);
        vm.prank(custodyApprover);
        custody.approveWithdrawal(id);
        vm.warp(block.timestamp + 3 days);
        vm.prank(approver2);
        custody.approveWithdrawal(id);
        assertEq(custody.withdrawal(id).unlockAt, block.timestamp + DELAY);
    }

    // ---------------------------------------------------------------- freeze

    function test_freeze_stopsCreditsRequestsAndExecutionButNotCancel() public {
        _funded(500 ether);
        uint256 approved = _request(CLIENT_A, address(usd), 10 ether, payee);
        _approveAll(approved);
        uint256 pending = _request(CLIENT_A, address(usd), 10 ether, payee);

        vm.expectEmit(address(custody));
        emit ICustody.ClientFreezeUpdated(CLIENT_A, compliance, true);
        vm.prank(compliance);
        custody.setClientFrozen(CLIENT_A, true);
        assertTrue(custody.account(CLIENT_A).frozen);

        vm.prank(compliance);
        vm.expectRevert(abi.encodeWithSelector(ICustody.CustodyFreezeUnchanged.selector, CLIENT_A, true));
        custody.setClientFrozen(CLIENT_A, true);

        vm.prank(custodyOfficer);
        vm.expectRevert(_notExecutable(approved, ICustody.ExecutionCheck.ClientFrozen));
        custody.executeWithdrawal(approved);

        vm.prank(custodyOfficer);
        vm.expectRevert(abi.encodeWithSelector(ICustody.CustodyClientFrozen.selector, CLIENT_A));
        custody.requestWithdrawal(CLIENT_A, address(usd), 1 ether, payee, TRAVEL);

        usd.mint(custodyOfficer, 1 ether);
        vm.startPrank(custodyOfficer);
        usd.approve(address(custody), 1 ether);
        vm.expectRevert(abi.encodeWithSelector(ICustody.CustodyClientFrozen.selector, CLIENT_A));
        custody.deposit(CLIENT_A, address(usd), 1 ether);
        vm.stopPrank();

        usd.mint(address(custody), 1 ether);
        vm.prank(custodyOfficer);
        uint256 changeId = custody.proposeAllocation(CLIENT_A, address(usd), 1 ether);
        vm.prank(custodyApprover);
        vm.expectRevert(abi.encodeWithSelector(ICustody.CustodyClientFrozen.selector, CLIENT_A));
        custody.approveChange(changeId);

        vm.prank(compliance);
        custody.cancelWithdrawal(pending, bytes32(0));
        (, uint256 reserved) = _position(CLIENT_A, address(usd));
        assertEq(reserved, 10 ether);

        // Other clients are unaffected.
        _deposit(CLIENT_B, 1 ether);

        vm.prank(compliance);
        custody.setClientFrozen(CLIENT_A, false);
        _execute(approved);
        assertEq(usd.balanceOf(payee), 10 ether);
    }

    // ----------------------------------------------------------------- pause

    function test_pause_stopsMovementsButNotCancel() public {
        _funded(500 ether);
        uint256 approved = _request(CLIENT_A, address(usd), 10 ether, payee);
        _approveAll(approved);
        uint256 pending = _request(CLIENT_A, address(usd), 10 ether, payee);
        uint256 toCancel = _request(CLIENT_A, address(usd), 10 ether, payee);

        vm.prank(admin);
        custody.setPaused(true);
        assertTrue(custody.paused());
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(ICustody.CustodyPauseUnchanged.selector, true));
        custody.setPaused(true);

        bytes memory paused = abi.encodeWithSelector(ICustody.CustodyPaused.selector);
        vm.prank(custodyOfficer);
        vm.expectRevert(_notExecutable(approved, ICustody.ExecutionCheck.Paused));
        custody.executeWithdrawal(approved);
        vm.prank(approver3);
        vm.expectRevert(paused);
        custody.approveWithdrawal(pending);
        vm.prank(custodyOfficer);
        vm.expectRevert(paused);
        custody.requestWithdrawal(CLIENT_A, address(usd), 1 ether, payee, TRAVEL);
        vm.prank(custodyOfficer);
        vm.expectRevert(paused);
        custody.proposeDestination(CLIENT_A, payee2, true);
        usd.mint(custodyOfficer, 1 ether);
        vm.startPrank(custodyOfficer);
        usd.approve(address(custody), 1 ether);
        vm.expectRevert(paused);
        custody.deposit(CLIENT_B, address(usd), 1 ether);
        vm.stopPrank();

        vm.prank(compliance);
        custody.cancelWithdrawal(toCancel, bytes32(0));
        vm.prank(custodyOfficer);
        custody.retractWithdrawal(pending);

        vm.prank(admin);
        custody.setPaused(false);
        _execute(approved);
        assertEq(usd.balanceOf(payee), 10 ether);
    }

    // ---------------------------------------------------------- destinations

    function test_destination_addNeedsApprovalByAnotherAccount() public {
        vm.prank(custodyOfficer);
        uint256 changeId = custody.proposeDestination(CLIENT_A, payee, true);
        assertFalse(custody.isDestination(CLIENT_A, payee), "a proposal alone changes nothing");

        _deposit(CLIENT_A, 1 ether);
        vm.prank(custodyOfficer);
        vm.expectRevert(abi.encodeWithSelector(ICustody.CustodyDestinationNotAllowed.selector, CLIENT_A, payee));
        custody.requestWithdrawal(CLIENT_A, address(usd), 1 ether, payee, TRAVEL);

        // The officer cannot approve: no approver role; with the role, still not their own proposal.
        vm.prank(custodyOfficer);
        vm.expectRevert(_unauthorized(custodyOfficer));
        custody.approveChange(changeId);
        _fourEyes(abi.encodeCall(IAccessManager.grantRole, (Roles.CUSTODY_APPROVER, custodyOfficer, 0)));
        vm.prank(custodyOfficer);
        vm.expectRevert(abi.encodeWithSelector(ICustody.CustodyChangeSelfApproval.selector, changeId, custodyOfficer));
        custody.approveChange(changeId);

        vm.expectEmit(address(custody));
        emit ICustody.DestinationUpdated(CLIENT_A, payee, changeId, true);
        vm.prank(custodyApprover);
        custody.approveChange(changeId);
        assertTrue(custody.isDestination(CLIENT_A, payee));
        assertFalse(custody.isDestination(CLIENT_B, payee), "address books are per client");
        address[] memory book_ = custody.destinations(CLIENT_A);
        assertEq(book_.length, 1);
        assertEq(book_[0], payee);

        vm.prank(custodyApprover);
        vm.expectRevert(
            abi.encodeWithSelector(ICustody.CustodyChangeStatus.selector, changeId, ICustody.ChangeStatus.Applied)
        );
        custody.approveChange(changeId);
    }

    function test_destination_removalNeedsApprovalAndStopsOpenWithdrawals() public {
        _funded(10 ether);
        uint256 id = _request(CLIENT_A, address(usd), 1 ether, payee);
        _approveAll(id);

        vm.prank(custodyOfficer);
        uint256 changeId = custody.proposeDestination(CLIENT_A, payee, false);
        assertTrue(custody.isDestination(CLIENT_A, payee), "removal waits for approval");
        vm.prank(approver2);
        custody.approveChange(changeId);
        assertFalse(custody.isDestination(CLIENT_A, payee));
        assertEq(custody.destinations(CLIENT_A).length, 0);

        vm.prank(custodyOfficer);
        vm.expectRevert(_notExecutable(id, ICustody.ExecutionCheck.DestinationNotAllowed));
        custody.executeWithdrawal(id);
    }

    function test_destination_refusalsAndCancel() public {
        vm.startPrank(custodyOfficer);
        vm.expectRevert(abi.encodeWithSelector(ICustody.CustodyDestinationInvalid.selector, address(0)));
        custody.proposeDestination(CLIENT_A, address(0), true);
        vm.expectRevert(abi.encodeWithSelector(ICustody.CustodyDestinationInvalid.selector, address(custody)));
        custody.proposeDestination(CLIENT_A, address(custody), true);
        vm.expectRevert(abi.encodeWithSelector(ICustody.CustodyDestinationUnchanged.selector, CLIENT_A, payee, false));
        custody.proposeDestination(CLIENT_A, payee, false);
        vm.expectRevert(abi.encodeWithSelector(ICustody.CustodyClientUnknown.selector, keccak256("nobody")));
        custody.proposeDestination(keccak256("nobody"), payee, true);

        uint256 first = custody.proposeDestination(CLIENT_A, payee, true);
        uint256 second = custody.proposeDestination(CLIENT_A, payee, true);
        custody.cancelChange(first);
        vm.expectEmit(address(custody));
        emit ICustody.ChangeCancelled(second, custodyOfficer);
        custody.cancelChange(second);
        vm.stopPrank();

        vm.prank(custodyApprover);
        vm.expectRevert(
            abi.encodeWithSelector(ICustody.CustodyChangeStatus.selector, first, ICustody.ChangeStatus.Cancelled)
        );
        custody.approveChange(first);
        assertFalse(custody.isDestination(CLIENT_A, payee));
        assertEq(custody.changeCount(), 2);
        assertEq(uint256(custody.change(second).status), uint256(ICustody.ChangeStatus.Cancelled));
    }

    function test_destination_duplicateProposalsSecondFailsOnApproval() public {
        vm.startPrank(custodyOfficer);
        uint256 first = custody.proposeDestination(CLIENT_A, payee, true);
        uint256 second = custody.proposeDestination(CLIENT_A, payee, true);
        vm.stopPrank();
        vm.startPrank(custodyApprover);
        custody.approveChange(first);
        vm.expectRevert(abi.encodeWithSelector(ICustody.CustodyDestinationUnchanged.selector, CLIENT_A, payee, true));
        custody.approveChange(second);
        vm.stopPrank();
    }

    // ------------------------------------------------------------- statement

    /// @dev A client statement rebuilt from `ClientBalanceChanged` alone equals the contract's view.
    function test_statement_rebuiltFromEvents() public {
        vm.recordLogs();
        _funded(300 ether);
        _deposit(CLIENT_B, 5 ether);
        uint256 a = _request(CLIENT_A, address(usd), 50 ether, payee);
        uint256 b = _request(CLIENT_A, address(usd), 150 ether, payee);
        _approveAll(a);
        _execute(a);
        vm.prank(compliance);
        custody.cancelWithdrawal(b, bytes32(0));
        usd.mint(address(custody), 9 ether);
        _allocate(CLIENT_A, address(usd), 9 ether);

        bytes32 topic = ICustody.ClientBalanceChanged.selector;
        uint256 balance;
        uint256 reserved;
        uint256 lines;
        _Log[] memory logs = _logs();
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].emitter != address(custody) || logs[i].topics[0] != topic) continue;
            if (logs[i].topics[1] != CLIENT_A) continue;
            (ICustody.EntryKind kind, uint256 amount, uint256 after_, uint256 reservedAfter) =
                abi.decode(logs[i].data, (ICustody.EntryKind, uint256, uint256, uint256));
            if (kind == ICustody.EntryKind.Deposit || kind == ICustody.EntryKind.Allocation) balance += amount;
            else if (kind == ICustody.EntryKind.Reservation) reserved += amount;
            else if (kind == ICustody.EntryKind.Release) reserved -= amount;
            else (balance, reserved) = (balance - amount, reserved - amount);
            assertEq(balance, after_);
            assertEq(reserved, reservedAfter);
            ++lines;
        }
        (uint256 viewBalance, uint256 viewReserved) = _position(CLIENT_A, address(usd));
        assertEq(balance, viewBalance);
        assertEq(reserved, viewReserved);
        assertEq(balance, 300 ether - 50 ether + 9 ether);
        assertEq(lines, 6);
    }

    // ------------------------------------------------------------------ fuzz

    function test_fuzz_lockAndLimitFollowAmount(uint256 amount, uint256 wait) public {
        amount = bound(amount, 1, LIMIT);
        wait = bound(wait, 0, 2 days);
        _funded(LIMIT);
        uint256 id = _request(CLIENT_A, address(usd), amount, payee);
        _approveAll(id);
        uint256 approvedAt = block.timestamp;
        bool locked = amount > THRESHOLD;
        assertEq(custody.withdrawal(id).unlockAt, approvedAt + (locked ? DELAY : 0));

        vm.warp(approvedAt + wait);
        ICustody.ExecutionCheck expected =
            locked && wait < DELAY ? ICustody.ExecutionCheck.TimeLocked : ICustody.ExecutionCheck.Ok;
        assertEq(uint256(custody.checkExecution(id)), uint256(expected));
        if (expected == ICustody.ExecutionCheck.Ok) {
            _execute(id);
            assertEq(usd.balanceOf(payee), amount);
            assertEq(custody.allocated(address(usd)), LIMIT - amount);
        }
    }

    function test_fuzz_requestThenCancelRestoresAvailable(uint128 deposited, uint128 requested) public {
        deposited = uint128(bound(deposited, 1, type(uint128).max));
        requested = uint128(bound(requested, 1, deposited < LIMIT ? deposited : LIMIT));
        _deposit(CLIENT_A, deposited);
        _setDestination(CLIENT_A, payee, true);
        uint256 id = _request(CLIENT_A, address(usd), requested, payee);
        (,, uint256 available) = custody.position(CLIENT_A, address(usd));
        assertEq(available, uint256(deposited) - requested);
        vm.prank(compliance);
        custody.cancelWithdrawal(id, bytes32(0));
        (uint256 balance, uint256 reserved, uint256 availableAfter) = custody.position(CLIENT_A, address(usd));
        assertEq(balance, deposited);
        assertEq(reserved, 0);
        assertEq(availableAfter, deposited);
    }

    // --------------------------------------------------------------- helpers

    struct _Log {
        bytes32[] topics;
        bytes data;
        address emitter;
    }

    function _logs() internal returns (_Log[] memory out) {
        bytes memory raw = abi.encode(vm.getRecordedLogs());
        out = abi.decode(raw, (_Log[]));
    }

    function _setLock(uint128 threshold) internal {
        vm.prank(admin);
        custody.setAssetPolicy(address(usd), true, APPROVALS, DELAY, LIMIT, threshold);
    }
}
