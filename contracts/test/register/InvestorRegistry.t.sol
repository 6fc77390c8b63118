// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {IInvestorRegistry} from "../../src/register/IInvestorRegistry.sol";
import {Fixture} from "../utils/Fixture.sol";

contract InvestorRegistryTest is Fixture {
    bytes32 internal constant DORA_ID = keccak256("holder:dora");
    address internal dora = vm.addr(0xD02A);

    function test_registerInvestor_storesRecord() public {
        vm.expectEmit(address(registry));
        emit IInvestorRegistry.InvestorRegistered(DORA_ID, "IT", false);
        vm.prank(compliance);
        registry.registerInvestor(DORA_ID, "IT", false);
        IInvestorRegistry.Investor memory record = registry.investor(DORA_ID);
        assertTrue(record.exists);
        assertTrue(record.kycStatus == IInvestorRegistry.KycStatus.None);
        assertEq(bytes32(record.country), bytes32(bytes2("IT")));
    }

    function test_registerInvestor_revertsWhenTaken() public {
        vm.expectRevert(abi.encodeWithSelector(IInvestorRegistry.RegistryInvestorExists.selector, ALICE_ID));
        vm.prank(compliance);
        registry.registerInvestor(ALICE_ID, "DE", false);
    }

    function test_registerInvestor_revertsOnZeroId() public {
        vm.expectRevert(IInvestorRegistry.RegistryZeroHolderId.selector);
        vm.prank(compliance);
        registry.registerInvestor(0, "DE", false);
    }

    function test_registerInvestor_revertsOnBadCountry() public {
        vm.expectRevert(abi.encodeWithSelector(IInvestorRegistry.RegistryInvalidCountry.selector, bytes2("de")));
        vm.prank(compliance);
        registry.registerInvestor(DORA_ID, "de", false);
    }

    function test_setKyc_approvedNeedsFutureExpiry() public {
        uint48 now_ = uint48(block.timestamp);
        vm.expectRevert(abi.encodeWithSelector(IInvestorRegistry.RegistryKycExpiryInvalid.selector, now_, now_));
        vm.prank(compliance);
        registry.setKyc(ALICE_ID, IInvestorRegistry.KycStatus.Approved, now_);
    }

    function test_setKyc_rejectedClearsExpiry() public {
        vm.prank(compliance);
        registry.setKyc(ALICE_ID, IInvestorRegistry.KycStatus.Rejected, 12345);
        assertEq(registry.investor(ALICE_ID).kycExpiry, 0);
    }

    function test_linkWallet_severalWalletsOneInvestor() public view {
        assertEq(registry.holderOf(alice), ALICE_ID);
        assertEq(registry.holderOf(alice2), ALICE_ID);
        assertEq(registry.investor(ALICE_ID).walletCount, 2);
    }

    function test_linkWallet_revertsWhenWalletTaken() public {
        vm.expectRevert(abi.encodeWithSelector(IInvestorRegistry.RegistryWalletTaken.selector, alice, ALICE_ID));
        vm.prank(compliance);
        registry.linkWallet(BOB_ID, alice);
    }

    function test_linkWallet_revertsForUnknownInvestor() public {
        vm.expectRevert(abi.encodeWithSelector(IInvestorRegistry.RegistryInvestorUnknown.selector, DORA_ID));
        vm.prank(compliance);
        registry.linkWallet(DORA_ID, dora);
    }

    function test_unlinkWallet_makesWalletIneligible() public {
        vm.prank(compliance);
        registry.unlinkWallet(alice2);
        (bytes32 holderId,) = registry.walletStatus(alice2);
        assertEq(holderId, bytes32(0));
        assertEq(registry.investor(ALICE_ID).walletCount, 1);
        vm.expectRevert(abi.encodeWithSelector(IInvestorRegistry.RegistryWalletUnknown.selector, alice2));
        vm.prank(compliance);
        registry.unlinkWallet(alice2);
    }

    function test_setCollective_marksCustodian() public {
        assertTrue(registry.investor(CUSTODIAN_ID).collective);
        vm.prank(compliance);
        registry.setCollective(CUSTODIAN_ID, false);
        assertFalse(registry.investor(CUSTODIAN_ID).collective);
    }

    function test_setCountry_updates() public {
        vm.prank(compliance);
        registry.setCountry(ALICE_ID, "CH");
        assertEq(bytes32(registry.investor(ALICE_ID).country), bytes32(bytes2("CH")));
    }
}
