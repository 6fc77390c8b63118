// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {IAccessManaged} from "@openzeppelin/contracts/access/manager/IAccessManaged.sol";

import {IInvestorRegistry} from "../../src/register/IInvestorRegistry.sol";
import {ISecuritiesRegister} from "../../src/register/ISecuritiesRegister.sol";
import {ISecurityToken} from "../../src/register/ISecurityToken.sol";
import {Fixture} from "../utils/Fixture.sol";

contract SecuritiesRegisterTest is Fixture {
    // ------------------------------------------------------------ securities

    function test_createSecurity_recordsMasterData() public view {
        ISecuritiesRegister.Security memory s = register.security(ISIN);
        assertEq(s.token, address(token));
        assertEq(s.issuer, issuer);
        assertTrue(s.kind == ISecuritiesRegister.SecurityKind.Single);
        assertTrue(s.status == ISecuritiesRegister.SecurityStatus.Active);
        assertEq(bytes32(s.currency), bytes32(bytes3("EUR")));
        assertEq(s.nominalPerUnit, 100_00);
        assertEq(s.issueVolume, 1_000_000);
        assertEq(s.termsHash, keccak256("terms v1"));
        assertEq(s.termsUri, "https://issuer.example/terms-v1.pdf");
        assertEq(token.isin(), ISIN);
        assertEq(token.register(), address(register));
        assertEq(token.name(), "ecrop register entry DE0007164600");
        assertEq(token.decimals(), 0);
    }

    function test_createSecurity_revertsWithoutConsent() public {
        bytes memory call_ = abi.encodeCall(
            ISecuritiesRegister.createSecurity,
            (_params(COLLECTIVE_ISIN, ISecuritiesRegister.SecurityKind.Collective, 10))
        );
        bytes32 digest = register.consentDigest(call_);
        vm.prank(keeper);
        (bool ok, bytes memory ret) = address(register).call(call_);
        assertFalse(ok);
        assertEq(ret, abi.encodeWithSelector(ISecuritiesRegister.RegisterConsentMissing.selector, issuer, digest));
    }

    function test_consent_isUsedUpByTheCall() public {
        bytes memory call_ = abi.encodeCall(ISecuritiesRegister.increaseIssueVolume, (ISIN, 2_000_000));
        bytes32 digest = register.consentDigest(call_);
        _withConsent(call_);
        assertFalse(register.hasConsent(issuer, digest));
        assertEq(register.security(ISIN).issueVolume, 2_000_000);
    }

    function test_consent_coversOnlyTheExactCall() public {
        bytes32 digest = register.consentDigest(abi.encodeCall(ISecuritiesRegister.issue, (ISIN, alice, 100)));
        vm.prank(issuer);
        register.consent(digest);
        bytes32 other = register.consentDigest(abi.encodeCall(ISecuritiesRegister.issue, (ISIN, alice, 101)));
        vm.expectRevert(abi.encodeWithSelector(ISecuritiesRegister.RegisterConsentMissing.selector, issuer, other));
        vm.prank(keeper);
        register.issue(ISIN, alice, 101);
    }

    function test_revokeConsent_blocksTheCall() public {
        bytes memory call_ = abi.encodeCall(ISecuritiesRegister.issue, (ISIN, alice, 100));
        bytes32 digest = register.consentDigest(call_);
        vm.startPrank(issuer);
        register.consent(digest);
        register.revokeConsent(digest);
        vm.stopPrank();
        vm.expectRevert(abi.encodeWithSelector(ISecuritiesRegister.RegisterConsentMissing.selector, issuer, digest));
        vm.prank(keeper);
        register.issue(ISIN, alice, 100);
    }

    function test_consent_ofAnotherIssuerAgentDoesNotCount() public {
        address otherAgent = vm.addr(0x0A6);
        bytes memory grant = abi.encodeCall(manager.grantRole, (3, otherAgent, 0));
        vm.prank(admin);
        uint256 proposal = manager.propose(grant);
        vm.prank(admin2);
        manager.approve(proposal, grant);

        bytes memory call_ = abi.encodeCall(ISecuritiesRegister.issue, (ISIN, alice, 100));
        bytes32 digest = register.consentDigest(call_);
        vm.prank(otherAgent);
        register.consent(digest);
        vm.expectRevert(abi.encodeWithSelector(ISecuritiesRegister.RegisterConsentMissing.selector, issuer, digest));
        vm.prank(keeper);
        register.issue(ISIN, alice, 100);
    }

    function test_createSecurity_revertsOnInvalidIsin() public {
        bytes12 bad = "DE0007164601";
        vm.expectRevert(abi.encodeWithSelector(ISecuritiesRegister.RegisterInvalidIsin.selector, bad));
        vm.prank(keeper);
        register.createSecurity(_params(bad, ISecuritiesRegister.SecurityKind.Single, 1));
    }

    function test_createSecurity_revertsWhenIsinTaken() public {
        vm.expectRevert(abi.encodeWithSelector(ISecuritiesRegister.RegisterSecurityExists.selector, ISIN));
        vm.prank(keeper);
        register.createSecurity(_params(ISIN, ISecuritiesRegister.SecurityKind.Single, 1));
    }

    function test_createSecurity_revertsOnBadCurrency() public {
        ISecuritiesRegister.SecurityParams memory p =
            _params(COLLECTIVE_ISIN, ISecuritiesRegister.SecurityKind.Single, 1);
        p.currency = "eur";
        vm.expectRevert(abi.encodeWithSelector(ISecuritiesRegister.RegisterInvalidCurrency.selector, bytes3("eur")));
        vm.prank(keeper);
        register.createSecurity(p);
    }

    function test_createSecurity_revertsOnZeroVolume() public {
        vm.expectRevert(
            abi.encodeWithSelector(ISecuritiesRegister.RegisterIssueVolumeInvalid.selector, COLLECTIVE_ISIN, 0, 0)
        );
        vm.prank(keeper);
        register.createSecurity(_params(COLLECTIVE_ISIN, ISecuritiesRegister.SecurityKind.Single, 0));
    }

    function test_amendTerms_replacesTermsWithConsent() public {
        _consentTo(abi.encodeCall(ISecuritiesRegister.amendTerms, (ISIN, keccak256("terms v2"), "ipfs://terms-v2")));
        vm.expectEmit(address(register));
        emit ISecuritiesRegister.SecurityTermsAmended(ISIN, keccak256("terms v2"), "ipfs://terms-v2");
        vm.prank(keeper);
        register.amendTerms(ISIN, keccak256("terms v2"), "ipfs://terms-v2");
        assertEq(register.security(ISIN).termsHash, keccak256("terms v2"));
    }

    function test_setSecurityStatus_suspendStopsTransfers() public {
        _issue(alice, 10);
        _withConsent(
            abi.encodeCall(ISecuritiesRegister.setSecurityStatus, (ISIN, ISecuritiesRegister.SecurityStatus.Suspended))
        );
        vm.expectRevert(_refused(alice, bob, 1, ISecuritiesRegister.ReasonCode.SecurityNotActive));
        vm.prank(alice);
        token.transfer(bob, 1);
        // A court order still goes through on a suspended security.
        vm.prank(keeper);
        register.forcedTransfer(ISIN, alice, bob, 1, ISecuritiesRegister.ActionReason.CourtOrder, keccak256("order"));
        assertEq(token.balanceOf(bob), 1);
    }

    function test_setSecurityStatus_closeRevertsWithSupply() public {
        _issue(alice, 10);
        _consentTo(
            abi.encodeCall(ISecuritiesRegister.setSecurityStatus, (ISIN, ISecuritiesRegister.SecurityStatus.Closed))
        );
        vm.expectRevert(abi.encodeWithSelector(ISecuritiesRegister.RegisterSupplyOutstanding.selector, ISIN, 10));
        vm.prank(keeper);
        register.setSecurityStatus(ISIN, ISecuritiesRegister.SecurityStatus.Closed);
    }

    function test_setSecurityStatus_closedIsFinal() public {
        _withConsent(
            abi.encodeCall(ISecuritiesRegister.setSecurityStatus, (ISIN, ISecuritiesRegister.SecurityStatus.Closed))
        );
        vm.expectRevert(
            abi.encodeWithSelector(
                ISecuritiesRegister.RegisterStatusTransitionInvalid.selector,
                ISIN,
                ISecuritiesRegister.SecurityStatus.Closed,
                ISecuritiesRegister.SecurityStatus.Active
            )
        );
        vm.prank(keeper);
        register.setSecurityStatus(ISIN, ISecuritiesRegister.SecurityStatus.Active);
    }

    // ---------------------------------------------------- issue and redeem

    function test_issue_booksEntryAndEmitsTransfer() public {
        _consentTo(abi.encodeCall(ISecuritiesRegister.issue, (ISIN, alice, 500)));
        vm.expectEmit(address(register));
        emit ISecuritiesRegister.EntryRecorded(
            ISIN,
            address(0),
            alice,
            1,
            500,
            ISecuritiesRegister.EntryKind.Issue,
            0,
            ISecuritiesRegister.ActionReason.None,
            bytes32(0)
        );
        vm.expectEmit(address(token));
        emit IERC20.Transfer(address(0), alice, 500);
        vm.prank(keeper);
        uint256 entryId = register.issue(ISIN, alice, 500);
        assertEq(entryId, 1);
        assertEq(
            register.entryHash(1),
            keccak256(abi.encode(_entry(ISecuritiesRegister.EntryKind.Issue, address(0), alice, 500)))
        );
        assertEq(token.totalSupply(), 500);
    }

    function test_issue_revertsBeyondIssueVolume() public {
        _issue(alice, 1_000_000);
        bytes memory call_ = abi.encodeCall(ISecuritiesRegister.issue, (ISIN, bob, 1));
        _consentTo(call_);
        vm.expectRevert(_refused(address(0), bob, 1, ISecuritiesRegister.ReasonCode.IssueVolumeExceeded));
        vm.prank(keeper);
        register.issue(ISIN, bob, 1);
    }

    function test_increaseIssueVolume_allowsFurtherIssue() public {
        _issue(alice, 1_000_000);
        _withConsent(abi.encodeCall(ISecuritiesRegister.increaseIssueVolume, (ISIN, 1_500_000)));
        _issue(bob, 500_000);
        assertEq(token.totalSupply(), 1_500_000);
    }

    function test_increaseIssueVolume_revertsWhenNotHigher() public {
        vm.expectRevert(
            abi.encodeWithSelector(ISecuritiesRegister.RegisterIssueVolumeInvalid.selector, ISIN, 1_000_000, 1_000_000)
        );
        vm.prank(keeper);
        register.increaseIssueVolume(ISIN, 1_000_000);
    }

    function test_issue_revertsForIneligibleReceiver() public {
        bytes memory call_ = abi.encodeCall(ISecuritiesRegister.issue, (ISIN, stranger, 1));
        _consentTo(call_);
        vm.expectRevert(_refused(address(0), stranger, 1, ISecuritiesRegister.ReasonCode.ReceiverNotRegistered));
        vm.prank(keeper);
        register.issue(ISIN, stranger, 1);
    }

    function test_redeem_burnsFreeUnits() public {
        _issue(alice, 100);
        _withConsent(abi.encodeCall(ISecuritiesRegister.redeem, (ISIN, alice, 30)));
        assertEq(token.balanceOf(alice), 70);
        assertEq(token.totalSupply(), 70);
    }

    function test_redeem_revertsOnPledgedUnits() public {
        _issue(alice, 100);
        vm.prank(keeper);
        register.pledge(ISIN, alice, 80, bob, ISecuritiesRegister.PledgeKind.Pledge);
        bytes memory call_ = abi.encodeCall(ISecuritiesRegister.redeem, (ISIN, alice, 30));
        _consentTo(call_);
        vm.expectRevert(_refused(alice, address(0), 30, ISecuritiesRegister.ReasonCode.InsufficientFreeBalance));
        vm.prank(keeper);
        register.redeem(ISIN, alice, 30);
    }

    // --------------------------------------------------------- transfers

    function test_transfer_movesBalanceAndRecordsEntry() public {
        _issue(alice, 100);
        vm.expectEmit(address(register));
        emit ISecuritiesRegister.EntryRecorded(
            ISIN, alice, bob, 2, 40, ISecuritiesRegister.EntryKind.Transfer, 0, ISecuritiesRegister.ActionReason.None, 0
        );
        vm.prank(alice);
        assertTrue(token.transfer(bob, 40));
        assertEq(register.balanceOf(ISIN, alice), 60);
        assertEq(register.balanceOf(ISIN, bob), 40);
    }

    function test_transfer_selfTransferChangesNothing() public {
        _issue(alice, 100);
        uint256 entries = register.entryCount();
        vm.prank(alice);
        token.transfer(alice, 60);
        assertEq(token.balanceOf(alice), 100);
        assertEq(token.totalSupply(), 100);
        assertEq(register.entryCount(), entries);
    }

    function test_transfer_selfTransferBeyondBalanceReverts() public {
        _issue(alice, 100);
        vm.expectRevert(_refused(alice, alice, 101, ISecuritiesRegister.ReasonCode.InsufficientBalance));
        vm.prank(alice);
        token.transfer(alice, 101);
    }

    function test_transfer_revertsWhenPaused() public {
        _issue(alice, 100);
        vm.prank(admin);
        register.setPaused(true);
        assertTrue(register.checkTransfer(ISIN, alice, bob, 1) == ISecuritiesRegister.ReasonCode.RegisterPaused);
        vm.expectRevert(_refused(alice, bob, 1, ISecuritiesRegister.ReasonCode.RegisterPaused));
        vm.prank(alice);
        token.transfer(bob, 1);
    }

    function test_transfer_revertsWhenSenderHoldingFrozen() public {
        _issue(alice, 100);
        vm.prank(compliance);
        register.setHoldingFrozen(ISIN, alice, true);
        vm.expectRevert(_refused(alice, bob, 1, ISecuritiesRegister.ReasonCode.SenderHoldingFrozen));
        vm.prank(alice);
        token.transfer(bob, 1);
    }

    function test_transfer_revertsWhenReceiverHoldingFrozen() public {
        _issue(alice, 100);
        vm.prank(compliance);
        register.setHoldingFrozen(ISIN, bob, true);
        vm.expectRevert(_refused(alice, bob, 1, ISecuritiesRegister.ReasonCode.ReceiverHoldingFrozen));
        vm.prank(alice);
        token.transfer(bob, 1);
    }

    function test_transfer_revertsWhenInvestorFrozen() public {
        _issue(alice, 100);
        vm.prank(compliance);
        registry.setInvestorFrozen(ALICE_ID, true);
        vm.expectRevert(_refused(alice, bob, 1, ISecuritiesRegister.ReasonCode.SenderInvestorFrozen));
        vm.prank(alice);
        token.transfer(bob, 1);
        vm.prank(compliance);
        registry.setInvestorFrozen(BOB_ID, true);
        assertTrue(register.checkTransfer(ISIN, carol, bob, 0) == ISecuritiesRegister.ReasonCode.ReceiverInvestorFrozen);
    }

    function test_transfer_revertsWhenSenderKycExpired() public {
        _issue(alice, 100);
        vm.warp(block.timestamp + KYC_VALIDITY);
        vm.expectRevert(_refused(alice, bob, 1, ISecuritiesRegister.ReasonCode.SenderKycExpired));
        vm.prank(alice);
        token.transfer(bob, 1);
    }

    function test_transfer_revertsWhenReceiverKycRevoked() public {
        _issue(alice, 100);
        vm.prank(compliance);
        registry.setKyc(BOB_ID, IInvestorRegistry.KycStatus.Revoked, 0);
        vm.expectRevert(_refused(alice, bob, 1, ISecuritiesRegister.ReasonCode.ReceiverKycNotApproved));
        vm.prank(alice);
        token.transfer(bob, 1);
    }

    function test_transfer_revertsToUnregisteredWallet() public {
        _issue(alice, 100);
        vm.expectRevert(_refused(alice, stranger, 1, ISecuritiesRegister.ReasonCode.ReceiverNotRegistered));
        vm.prank(alice);
        token.transfer(stranger, 1);
    }

    function test_transfer_revertsToZeroAddress() public {
        _issue(alice, 100);
        vm.expectRevert(_refused(alice, address(0), 1, ISecuritiesRegister.ReasonCode.ReceiverZeroAddress));
        vm.prank(alice);
        token.transfer(address(0), 1);
    }

    function test_transfer_revertsBeyondBalance() public {
        _issue(alice, 100);
        vm.expectRevert(_refused(alice, bob, 101, ISecuritiesRegister.ReasonCode.InsufficientBalance));
        vm.prank(alice);
        token.transfer(bob, 101);
    }

    function test_transfer_revertsBeyondFreeBalance() public {
        _issue(alice, 100);
        vm.startPrank(keeper);
        register.restrict(ISIN, alice, 30, 7, keccak256("Amtsgericht Frankfurt 1 K 2/26"), 0);
        register.pledge(ISIN, alice, 20, carol, ISecuritiesRegister.PledgeKind.Pledge);
        vm.stopPrank();
        assertEq(register.holding(ISIN, alice).free, 50);
        vm.expectRevert(_refused(alice, bob, 51, ISecuritiesRegister.ReasonCode.InsufficientFreeBalance));
        vm.prank(alice);
        token.transfer(bob, 51);
        vm.prank(alice);
        token.transfer(bob, 50);
        assertEq(register.holding(ISIN, alice).free, 0);
    }

    function test_transfer_restrictionLapsesAtExpiryWithoutTransaction() public {
        _issue(alice, 100);
        uint48 expiry = uint48(block.timestamp + 30 days);
        vm.prank(keeper);
        register.restrict(ISIN, alice, 100, 3, bytes32("BaFin"), expiry);
        assertTrue(
            register.checkTransfer(ISIN, alice, bob, 1) == ISecuritiesRegister.ReasonCode.InsufficientFreeBalance
        );
        vm.warp(expiry);
        assertTrue(register.checkTransfer(ISIN, alice, bob, 100) == ISecuritiesRegister.ReasonCode.Ok);
    }

    function test_transfer_collectiveSecurityNeedsCollectiveHolder() public {
        ISecurityToken collective =
            ISecurityToken(_createSecurity(COLLECTIVE_ISIN, ISecuritiesRegister.SecurityKind.Collective, 1000));
        assertTrue(
            register.checkMovement(COLLECTIVE_ISIN, address(0), alice, 1, ISecuritiesRegister.EntryKind.Issue)
                == ISecuritiesRegister.ReasonCode.ReceiverNotCollectiveHolder
        );
        _withConsent(abi.encodeCall(ISecuritiesRegister.issue, (COLLECTIVE_ISIN, custodian, 1000)));
        assertEq(collective.balanceOf(custodian), 1000);
    }

    function test_transferFrom_spendsAllowance() public {
        _issue(alice, 100);
        vm.prank(alice);
        token.approve(carol, 50);
        vm.prank(carol);
        token.transferFrom(alice, bob, 30);
        assertEq(token.allowance(alice, carol), 20);
        assertEq(token.balanceOf(bob), 30);
        vm.expectRevert(abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, carol, 20, 21));
        vm.prank(carol);
        token.transferFrom(alice, bob, 21);
    }

    function test_transferFromToken_revertsForOtherCallers() public {
        _issue(alice, 100);
        vm.expectRevert(abi.encodeWithSelector(ISecuritiesRegister.RegisterNotTokenOf.selector, ISIN, alice));
        vm.prank(alice);
        register.transferFromToken(ISIN, alice, bob, 1);
    }

    function test_emitTransfer_revertsForOthers() public {
        vm.expectRevert(abi.encodeWithSelector(ISecurityToken.SecurityTokenCallerNotRegister.selector, alice));
        vm.prank(alice);
        token.emitTransfer(alice, bob, 1);
    }

    function test_fuzz_transfer_neverExceedsFreeBalance(
        uint256 issued,
        uint256 restricted,
        uint256 pledged,
        uint256 amount
    ) public {
        issued = bound(issued, 1, 1_000_000);
        restricted = bound(restricted, 0, issued);
        pledged = bound(pledged, 0, issued - restricted);
        amount = bound(amount, 0, issued);
        _issue(alice, issued);
        vm.startPrank(keeper);
        if (restricted != 0) register.restrict(ISIN, alice, restricted, 1, bytes32("court"), 0);
        if (pledged != 0) register.pledge(ISIN, alice, pledged, carol, ISecuritiesRegister.PledgeKind.Lien);
        vm.stopPrank();

        uint256 free = issued - restricted - pledged;
        ISecuritiesRegister.ReasonCode code = register.checkTransfer(ISIN, alice, bob, amount);
        if (amount <= free) {
            assertTrue(code == ISecuritiesRegister.ReasonCode.Ok);
            vm.prank(alice);
            token.transfer(bob, amount);
            assertEq(token.balanceOf(alice), issued - amount);
        } else {
            assertTrue(code == ISecuritiesRegister.ReasonCode.InsufficientFreeBalance);
            vm.expectRevert(_refused(alice, bob, amount, code));
            vm.prank(alice);
            token.transfer(bob, amount);
        }
    }

    // --------------------------------------------- restrictions and pledges

    function test_restrict_revertsBeyondFreeBalance() public {
        _issue(alice, 100);
        vm.startPrank(keeper);
        register.pledge(ISIN, alice, 60, carol, ISecuritiesRegister.PledgeKind.Pledge);
        vm.expectRevert(
            abi.encodeWithSelector(ISecuritiesRegister.RegisterFreeBalanceTooLow.selector, ISIN, alice, 40, 41)
        );
        register.restrict(ISIN, alice, 41, 1, bytes32("court"), 0);
        vm.stopPrank();
    }

    function test_restrict_revertsWhenTooMany() public {
        _issue(alice, 100);
        vm.startPrank(keeper);
        for (uint256 i = 0; i < register.MAX_ENCUMBRANCES(); ++i) {
            register.restrict(ISIN, alice, 1, 1, bytes32("court"), 0);
        }
        vm.expectRevert(
            abi.encodeWithSelector(ISecuritiesRegister.RegisterTooManyEncumbrances.selector, ISIN, alice, 8)
        );
        register.restrict(ISIN, alice, 1, 1, bytes32("court"), 0);
        vm.stopPrank();
    }

    function test_releaseRestriction_freesUnits() public {
        _issue(alice, 100);
        vm.startPrank(keeper);
        uint256 a = register.restrict(ISIN, alice, 10, 1, bytes32("a"), 0);
        uint256 b = register.restrict(ISIN, alice, 20, 1, bytes32("b"), 0);
        register.releaseRestriction(a);
        vm.expectRevert(abi.encodeWithSelector(ISecuritiesRegister.RegisterRestrictionInactive.selector, a));
        register.releaseRestriction(a);
        vm.stopPrank();
        assertEq(register.holding(ISIN, alice).free, 80);
        uint256[] memory ids = register.restrictionIds(ISIN, alice);
        assertEq(ids.length, 1);
        assertEq(ids[0], b);
        assertFalse(register.restriction(a).active);
    }

    function test_releasePledge_freesUnits() public {
        _issue(alice, 100);
        vm.startPrank(keeper);
        uint256 id = register.pledge(ISIN, alice, 70, carol, ISecuritiesRegister.PledgeKind.Usufruct);
        assertEq(register.holding(ISIN, alice).encumbered, 70);
        register.releasePledge(id);
        vm.expectRevert(abi.encodeWithSelector(ISecuritiesRegister.RegisterPledgeInactive.selector, id));
        register.releasePledge(id);
        vm.stopPrank();
        assertEq(register.holding(ISIN, alice).encumbered, 0);
        assertEq(register.pledgeOf(id).beneficiary, carol);
    }

    // ---------------------------------------------------- forced transfer

    function test_forcedTransfer_reachesRestrictedAndFrozenUnits() public {
        _issue(alice, 100);
        vm.prank(keeper);
        register.restrict(ISIN, alice, 100, 9, bytes32("insolvency court"), 0);
        vm.prank(compliance);
        register.setHoldingFrozen(ISIN, alice, true);
        vm.expectEmit(address(register));
        emit ISecuritiesRegister.EntryRecorded(
            ISIN,
            alice,
            bob,
            2,
            100,
            ISecuritiesRegister.EntryKind.Forced,
            0,
            ISecuritiesRegister.ActionReason.Insolvency,
            keccak256("decision")
        );
        vm.prank(keeper);
        register.forcedTransfer(
            ISIN, alice, bob, 100, ISecuritiesRegister.ActionReason.Insolvency, keccak256("decision")
        );
        assertEq(token.balanceOf(bob), 100);
        assertEq(register.holding(ISIN, alice).free, 0);
    }

    function test_forcedTransfer_revertsOnPledgedUnits() public {
        _issue(alice, 100);
        vm.prank(keeper);
        register.pledge(ISIN, alice, 30, carol, ISecuritiesRegister.PledgeKind.Pledge);
        vm.expectRevert(_refused(alice, bob, 71, ISecuritiesRegister.ReasonCode.BalanceEncumbered));
        vm.prank(keeper);
        register.forcedTransfer(ISIN, alice, bob, 71, ISecuritiesRegister.ActionReason.CourtOrder, 0);
    }

    function test_forcedTransfer_revertsWithoutReason() public {
        vm.expectRevert(ISecuritiesRegister.RegisterReasonMissing.selector);
        vm.prank(keeper);
        register.forcedTransfer(ISIN, alice, bob, 1, ISecuritiesRegister.ActionReason.None, 0);
    }

    function test_forcedTransfer_revertsForNonKeeper() public {
        vm.expectRevert(abi.encodeWithSelector(IAccessManaged.AccessManagedUnauthorized.selector, compliance));
        vm.prank(compliance);
        register.forcedTransfer(ISIN, alice, bob, 1, ISecuritiesRegister.ActionReason.CourtOrder, 0);
    }

    // ------------------------------------------------------------ recovery

    function test_recover_movesHoldingWithEncumbrances() public {
        _issue(alice, 100);
        vm.startPrank(keeper);
        uint256 r = register.restrict(ISIN, alice, 10, 1, bytes32("court"), 0);
        uint256 p = register.pledge(ISIN, alice, 20, carol, ISecuritiesRegister.PledgeKind.Pledge);
        vm.stopPrank();
        vm.prank(compliance);
        register.setHoldingFrozen(ISIN, alice, true);

        vm.prank(keeper);
        uint256 entryId = register.recover(ISIN, alice, alice2, keccak256("affidavit"));

        assertEq(token.balanceOf(alice), 0);
        assertEq(token.balanceOf(alice2), 100);
        ISecuritiesRegister.HoldingView memory moved = register.holding(ISIN, alice2);
        assertEq(moved.encumbered, 20);
        assertEq(moved.restricted, 10);
        assertEq(moved.free, 70);
        assertTrue(moved.frozen);
        assertEq(register.restriction(r).holder, alice2);
        assertEq(register.pledgeOf(p).holder, alice2);
        assertEq(register.holding(ISIN, alice).encumbered, 0);
        assertEq(register.restrictionIds(ISIN, alice).length, 0);
        assertEq(
            register.entryHash(entryId),
            keccak256(abi.encode(_entry(ISecuritiesRegister.EntryKind.Recovery, alice, alice2, 100)))
        );
    }

    function test_recover_toSameWalletChangesNothing() public {
        _issue(alice, 100);
        uint256 entries = register.entryCount();
        vm.expectRevert(abi.encodeWithSelector(ISecuritiesRegister.RegisterRecoverySameWallet.selector, alice));
        vm.prank(keeper);
        register.recover(ISIN, alice, alice, 0);
        assertEq(token.balanceOf(alice), 100);
        assertEq(register.entryCount(), entries);
    }

    function test_recover_revertsToAnotherInvestor() public {
        _issue(alice, 100);
        vm.expectRevert(
            abi.encodeWithSelector(ISecuritiesRegister.RegisterRecoveryNotSameInvestor.selector, alice, bob)
        );
        vm.prank(keeper);
        register.recover(ISIN, alice, bob, 0);
    }

    // ------------------------------------------------------------ reversal

    function test_reverse_booksCounterEntryPointingToOriginal() public {
        _issue(alice, 100);
        vm.prank(alice);
        token.transfer(bob, 40);
        ISecuritiesRegister.Entry memory original = _entry(ISecuritiesRegister.EntryKind.Transfer, alice, bob, 40);

        vm.expectEmit(address(register));
        emit ISecuritiesRegister.EntryRecorded(
            ISIN,
            bob,
            alice,
            3,
            40,
            ISecuritiesRegister.EntryKind.Reversal,
            2,
            ISecuritiesRegister.ActionReason.WrongfulEntry,
            keccak256("error report")
        );
        vm.prank(keeper);
        uint256 reversal = register.reverse(2, original, keccak256("error report"));

        assertEq(reversal, 3);
        assertEq(register.reversedBy(2), 3);
        assertEq(token.balanceOf(alice), 100);
        assertEq(token.balanceOf(bob), 0);
        // The original entry is still there, unchanged.
        assertEq(register.entryHash(2), keccak256(abi.encode(original)));
    }

    function test_reverse_revertsWhenAlreadyReversed() public {
        _issue(alice, 100);
        ISecuritiesRegister.Entry memory original = _entry(ISecuritiesRegister.EntryKind.Issue, address(0), alice, 100);
        vm.startPrank(keeper);
        register.reverse(1, original, 0);
        vm.expectRevert(abi.encodeWithSelector(ISecuritiesRegister.RegisterEntryAlreadyReversed.selector, 1, 2));
        register.reverse(1, original, 0);
        vm.stopPrank();
        assertEq(token.totalSupply(), 0);
    }

    function test_reverse_revertsOnWrongData() public {
        _issue(alice, 100);
        vm.expectRevert(abi.encodeWithSelector(ISecuritiesRegister.RegisterEntryMismatch.selector, 1));
        vm.prank(keeper);
        register.reverse(1, _entry(ISecuritiesRegister.EntryKind.Issue, address(0), alice, 99), 0);
    }

    function test_reverse_revertsOnReversal() public {
        _issue(alice, 100);
        vm.startPrank(keeper);
        register.reverse(1, _entry(ISecuritiesRegister.EntryKind.Issue, address(0), alice, 100), 0);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISecuritiesRegister.RegisterEntryNotReversible.selector, 2, ISecuritiesRegister.EntryKind.Reversal
            )
        );
        register.reverse(2, _entry(ISecuritiesRegister.EntryKind.Reversal, alice, address(0), 100), 0);
        vm.stopPrank();
    }

    function test_reverse_ofRedemptionRestoresUnits() public {
        _issue(alice, 100);
        _withConsent(abi.encodeCall(ISecuritiesRegister.redeem, (ISIN, alice, 30)));
        vm.prank(keeper);
        register.reverse(2, _entry(ISecuritiesRegister.EntryKind.Redemption, alice, address(0), 30), 0);
        assertEq(token.balanceOf(alice), 100);
        assertEq(token.totalSupply(), 100);
    }

    function test_reverse_revertsWhenReceiverSpentTheUnitsUnderPledge() public {
        _issue(alice, 100);
        vm.prank(alice);
        token.transfer(bob, 40);
        vm.prank(keeper);
        register.pledge(ISIN, bob, 40, carol, ISecuritiesRegister.PledgeKind.Pledge);
        vm.expectRevert(_refused(bob, alice, 40, ISecuritiesRegister.ReasonCode.BalanceEncumbered));
        vm.prank(keeper);
        register.reverse(2, _entry(ISecuritiesRegister.EntryKind.Transfer, alice, bob, 40), 0);
    }

    // ------------------------------------------------------------- more edges

    function test_issue_revertsOnSuspendedSecurity() public {
        _withConsent(
            abi.encodeCall(ISecuritiesRegister.setSecurityStatus, (ISIN, ISecuritiesRegister.SecurityStatus.Suspended))
        );
        _consentTo(abi.encodeCall(ISecuritiesRegister.issue, (ISIN, alice, 1)));
        vm.expectRevert(_refused(address(0), alice, 1, ISecuritiesRegister.ReasonCode.SecurityNotActive));
        vm.prank(keeper);
        register.issue(ISIN, alice, 1);
    }

    function test_checkMovement_unknownSecurity() public view {
        assertTrue(
            register.checkMovement(COLLECTIVE_ISIN, alice, bob, 1, ISecuritiesRegister.EntryKind.Transfer)
                == ISecuritiesRegister.ReasonCode.SecurityUnknown
        );
    }

    function test_forcedTransfer_revertsToIneligibleReceiver() public {
        _issue(alice, 10);
        vm.expectRevert(_refused(alice, stranger, 5, ISecuritiesRegister.ReasonCode.ReceiverNotRegistered));
        vm.prank(keeper);
        register.forcedTransfer(ISIN, alice, stranger, 5, ISecuritiesRegister.ActionReason.CourtOrder, 0);
    }

    function test_recover_mergesIntoExistingHolding() public {
        _issue(alice, 100);
        _issue(alice2, 50);
        vm.startPrank(keeper);
        register.pledge(ISIN, alice, 30, carol, ISecuritiesRegister.PledgeKind.Pledge);
        register.pledge(ISIN, alice2, 10, carol, ISecuritiesRegister.PledgeKind.Lien);
        register.recover(ISIN, alice, alice2, keccak256("affidavit"));
        vm.stopPrank();
        ISecuritiesRegister.HoldingView memory merged = register.holding(ISIN, alice2);
        assertEq(merged.balance, 150);
        assertEq(merged.encumbered, 40);
        assertEq(merged.pledgeCount, 2);
    }

    function test_recover_revertsWhenEncumbrancesOverflowTarget() public {
        _issue(alice, 100);
        _issue(alice2, 100);
        vm.startPrank(keeper);
        for (uint256 i = 0; i < 5; ++i) {
            register.restrict(ISIN, alice, 1, 1, bytes32("a"), 0);
            register.restrict(ISIN, alice2, 1, 1, bytes32("b"), 0);
        }
        vm.expectRevert(
            abi.encodeWithSelector(ISecuritiesRegister.RegisterTooManyEncumbrances.selector, ISIN, alice2, 8)
        );
        register.recover(ISIN, alice, alice2, 0);
        vm.stopPrank();
    }

    function test_recover_revertsForUnlinkedWallet() public {
        _issue(alice, 100);
        vm.prank(compliance);
        registry.unlinkWallet(alice);
        vm.expectRevert(
            abi.encodeWithSelector(ISecuritiesRegister.RegisterRecoveryNotSameInvestor.selector, alice, alice2)
        );
        vm.prank(keeper);
        register.recover(ISIN, alice, alice2, 0);
    }

    function test_pause_blocksKeeperMovementsToo() public {
        _issue(alice, 100);
        vm.prank(admin);
        register.setPaused(true);
        vm.expectRevert(_refused(alice, bob, 1, ISecuritiesRegister.ReasonCode.RegisterPaused));
        vm.prank(keeper);
        register.forcedTransfer(ISIN, alice, bob, 1, ISecuritiesRegister.ActionReason.CourtOrder, 0);
    }

    function test_restrict_revertsWithPastExpiry() public {
        _issue(alice, 100);
        uint48 past = uint48(block.timestamp);
        vm.expectRevert(abi.encodeWithSelector(ISecuritiesRegister.RegisterRestrictionExpiryInPast.selector, past));
        vm.prank(keeper);
        register.restrict(ISIN, alice, 1, 1, bytes32("a"), past);
    }

    function test_createSecurity_tokenAddressIsDeterministic() public {
        address predicted = address(token);
        assertTrue(predicted.code.length > 0);
        assertEq(register.security(ISIN).token, predicted);
    }
}
