// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {IAccessManaged} from "@openzeppelin/contracts/access/manager/IAccessManaged.sol";
import {IAccessManager} from "@openzeppelin/contracts/access/manager/IAccessManager.sol";

import {EcropAccessManager} from "../../src/access/EcropAccessManager.sol";
import {IEcropAccessManager} from "../../src/access/IEcropAccessManager.sol";
import {Roles} from "../../src/access/Roles.sol";
import {ISecuritiesRegister} from "../../src/register/ISecuritiesRegister.sol";
import {Fixture} from "../utils/Fixture.sol";

contract EcropAccessManagerTest is Fixture {
    address internal newcomer = vm.addr(0x9E3);

    function _propose(bytes memory data) internal returns (uint256 id) {
        vm.prank(admin);
        id = manager.propose(data);
    }

    function _fourEyes(bytes memory data) internal {
        uint256 id = _propose(data);
        vm.prank(admin2);
        manager.approve(id, data);
    }

    // ----------------------------------------------------------- bootstrap

    function test_constructor_onlyManagerHoldsAdminRole() public view {
        (bool self,) = manager.hasRole(manager.ADMIN_ROLE(), address(manager));
        (bool human,) = manager.hasRole(manager.ADMIN_ROLE(), admin);
        assertTrue(self);
        assertFalse(human);
        assertEq(manager.getTargetFunctionRole(address(manager), IEcropAccessManager.propose.selector), 1);
    }

    function test_finishBootstrap_revertsWithOneAdmin() public {
        EcropAccessManager fresh = new EcropAccessManager(admin);
        vm.expectRevert(abi.encodeWithSelector(IEcropAccessManager.AccessManagerTooFewAdmins.selector, 1));
        vm.prank(admin);
        fresh.finishBootstrap();
    }

    function test_finishBootstrap_revertsTwice() public {
        vm.expectRevert(IEcropAccessManager.AccessManagerBootstrapOver.selector);
        vm.prank(admin);
        manager.finishBootstrap();
    }

    function test_bootstrap_singleAdminMayWireAlone() public {
        EcropAccessManager fresh = new EcropAccessManager(admin);
        assertTrue(fresh.bootstrapping());
        vm.prank(admin);
        fresh.grantRole(Roles.REGISTER_KEEPER, keeper, 0);
        (bool isMember,) = fresh.hasRole(Roles.REGISTER_KEEPER, keeper);
        assertTrue(isMember);
    }

    // ------------------------------------------------------------ four eyes

    function test_grantRole_revertsWithoutFourEyesForSensitiveRole() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IEcropAccessManager.AccessManagerFourEyesRequired.selector, IAccessManager.grantRole.selector
            )
        );
        vm.prank(admin);
        manager.grantRole(Roles.REGISTER_KEEPER, newcomer, 0);
    }

    function test_grantRole_singleAdminForNonSensitiveRole() public {
        vm.prank(admin);
        manager.grantRole(Roles.AUDITOR, newcomer, 0);
        (bool isMember,) = manager.hasRole(Roles.AUDITOR, newcomer);
        assertTrue(isMember);
    }

    function test_approve_grantsSensitiveRole() public {
        bytes memory data = abi.encodeCall(manager.grantRole, (Roles.REGISTER_KEEPER, newcomer, 0));
        uint256 id = _propose(data);
        (bool before,) = manager.hasRole(Roles.REGISTER_KEEPER, newcomer);
        assertFalse(before);

        vm.expectEmit(address(manager));
        emit IEcropAccessManager.ProposalExecuted(id, admin2);
        vm.prank(admin2);
        manager.approve(id, data);

        (bool afterwards,) = manager.hasRole(Roles.REGISTER_KEEPER, newcomer);
        assertTrue(afterwards);
        assertTrue(manager.getProposal(id).status == IEcropAccessManager.ProposalStatus.Executed);
    }

    function test_approve_revertsOnSelfApproval() public {
        bytes memory data = abi.encodeCall(manager.grantRole, (Roles.REGISTER_KEEPER, newcomer, 0));
        uint256 id = _propose(data);
        vm.expectRevert(abi.encodeWithSelector(IEcropAccessManager.AccessManagerSelfApproval.selector, id, admin));
        vm.prank(admin);
        manager.approve(id, data);
    }

    function test_approve_revertsOnDataMismatch() public {
        bytes memory data = abi.encodeCall(manager.grantRole, (Roles.REGISTER_KEEPER, newcomer, 0));
        bytes memory other = abi.encodeCall(manager.grantRole, (Roles.PLATFORM_ADMIN, newcomer, 0));
        uint256 id = _propose(data);
        vm.expectRevert(
            abi.encodeWithSelector(
                IEcropAccessManager.AccessManagerProposalDataMismatch.selector, id, keccak256(data), keccak256(other)
            )
        );
        vm.prank(admin2);
        manager.approve(id, other);
    }

    function test_approve_revertsWhenExpired() public {
        bytes memory data = abi.encodeCall(manager.grantRole, (Roles.REGISTER_KEEPER, newcomer, 0));
        uint256 id = _propose(data);
        uint48 createdAt = uint48(block.timestamp);
        vm.warp(block.timestamp + manager.proposalLifetime());
        vm.expectRevert(
            abi.encodeWithSelector(IEcropAccessManager.AccessManagerProposalExpired.selector, id, createdAt)
        );
        vm.prank(admin2);
        manager.approve(id, data);
    }

    function test_approve_revertsWhenCancelledOrExecuted() public {
        bytes memory data = abi.encodeCall(manager.grantRole, (Roles.REGISTER_KEEPER, newcomer, 0));
        uint256 id = _propose(data);
        vm.prank(admin2);
        manager.cancelProposal(id);
        vm.expectRevert(abi.encodeWithSelector(IEcropAccessManager.AccessManagerProposalNotPending.selector, id));
        vm.prank(admin2);
        manager.approve(id, data);
    }

    function test_approve_revertsForNonAdmin() public {
        bytes memory data = abi.encodeCall(manager.grantRole, (Roles.REGISTER_KEEPER, newcomer, 0));
        uint256 id = _propose(data);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessManager.AccessManagerUnauthorizedAccount.selector, keeper, Roles.PLATFORM_ADMIN
            )
        );
        vm.prank(keeper);
        manager.approve(id, data);
    }

    function test_propose_revertsForNonAdministrativeSelector() public {
        bytes memory data = abi.encodeCall(manager.approve, (1, ""));
        vm.expectRevert(
            abi.encodeWithSelector(
                IEcropAccessManager.AccessManagerProposalSelectorNotAllowed.selector,
                IEcropAccessManager.approve.selector
            )
        );
        vm.prank(admin);
        manager.propose(data);
    }

    function test_setTargetFunctionRole_needsFourEyes() public {
        bytes4[] memory selectors = new bytes4[](1);
        selectors[0] = ISecuritiesRegister.issue.selector;
        vm.expectRevert(
            abi.encodeWithSelector(
                IEcropAccessManager.AccessManagerFourEyesRequired.selector,
                IAccessManager.setTargetFunctionRole.selector
            )
        );
        vm.prank(admin);
        manager.setTargetFunctionRole(address(register), selectors, Roles.AUDITOR);

        _fourEyes(abi.encodeCall(manager.setTargetFunctionRole, (address(register), selectors, Roles.AUDITOR)));
        assertEq(manager.getTargetFunctionRole(address(register), ISecuritiesRegister.issue.selector), Roles.AUDITOR);
    }

    function test_execute_cannotBypassFourEyes() public {
        bytes memory data = abi.encodeCall(manager.grantRole, (Roles.REGISTER_KEEPER, newcomer, 0));
        vm.expectRevert();
        vm.prank(admin);
        manager.execute(address(manager), data);
        (bool isMember,) = manager.hasRole(Roles.REGISTER_KEEPER, newcomer);
        assertFalse(isMember);
    }

    function test_setTargetClosed_singleAdminClosesFourEyesReopen() public {
        vm.prank(admin);
        manager.setTargetClosed(address(register), true);
        vm.expectRevert(abi.encodeWithSelector(IAccessManaged.AccessManagedUnauthorized.selector, keeper));
        vm.prank(keeper);
        register.restrict(ISIN, alice, 1, 1, 0, 0);

        vm.expectRevert(
            abi.encodeWithSelector(
                IEcropAccessManager.AccessManagerFourEyesRequired.selector, IAccessManager.setTargetClosed.selector
            )
        );
        vm.prank(admin);
        manager.setTargetClosed(address(register), false);
        _fourEyes(abi.encodeCall(manager.setTargetClosed, (address(register), false)));
        assertFalse(manager.isTargetClosed(address(register)));
    }

    function test_setRoleSensitive_platformAdminStaysSensitive() public {
        bytes memory data = abi.encodeCall(manager.setRoleSensitive, (Roles.PLATFORM_ADMIN, false));
        uint256 id = _propose(data);
        vm.expectRevert(
            abi.encodeWithSelector(IEcropAccessManager.AccessManagerRoleAlwaysSensitive.selector, Roles.PLATFORM_ADMIN)
        );
        vm.prank(admin2);
        manager.approve(id, data);
    }

    function test_grantRole_revertsForAdminRole() public {
        bytes memory data = abi.encodeCall(manager.grantRole, (0, newcomer, 0));
        uint256 id = _propose(data);
        vm.expectRevert(abi.encodeWithSelector(IAccessManager.AccessManagerLockedRole.selector, 0));
        vm.prank(admin2);
        manager.approve(id, data);
    }

    // ------------------------------------------------------------- revoke

    function test_revokeRole_singleAdminTakesEffectAtOnce() public {
        vm.prank(admin);
        manager.revokeRole(Roles.REGISTER_KEEPER, keeper);
        vm.expectRevert(abi.encodeWithSelector(IAccessManaged.AccessManagedUnauthorized.selector, keeper));
        vm.prank(keeper);
        register.restrict(ISIN, alice, 1, 1, 0, 0);
    }

    function test_revokeRole_revertsWhenLeavingOneAdmin() public {
        vm.expectRevert(abi.encodeWithSelector(IEcropAccessManager.AccessManagerTooFewAdmins.selector, 1));
        vm.prank(admin);
        manager.revokeRole(Roles.PLATFORM_ADMIN, admin2);
    }

    function test_renounceRole_revertsForLastButOneAdmin() public {
        vm.expectRevert(abi.encodeWithSelector(IEcropAccessManager.AccessManagerTooFewAdmins.selector, 1));
        vm.prank(admin2);
        manager.renounceRole(Roles.PLATFORM_ADMIN, admin2);
    }

    // ------------------------------------------------------------- expiry

    function test_grantRoleWithExpiry_expiredGrantStopsWorkingWithoutTransaction() public {
        uint48 expiry = uint48(block.timestamp + 90 days);
        _fourEyes(abi.encodeCall(manager.grantRoleWithExpiry, (Roles.REGISTER_KEEPER, newcomer, 0, expiry)));
        assertEq(manager.getRoleExpiry(Roles.REGISTER_KEEPER, newcomer), expiry);

        vm.warp(expiry - 1);
        (bool immediate,) = manager.canCall(newcomer, address(register), ISecuritiesRegister.restrict.selector);
        assertTrue(immediate);

        vm.warp(expiry);
        (immediate,) = manager.canCall(newcomer, address(register), ISecuritiesRegister.restrict.selector);
        assertFalse(immediate);
        (bool isMember,) = manager.hasRole(Roles.REGISTER_KEEPER, newcomer);
        assertFalse(isMember);
        vm.expectRevert(abi.encodeWithSelector(IAccessManaged.AccessManagedUnauthorized.selector, newcomer));
        vm.prank(newcomer);
        register.restrict(ISIN, alice, 1, 1, 0, 0);
    }

    function test_grantRoleWithExpiry_recertificationExtendsGrant() public {
        uint48 expiry = uint48(block.timestamp + 30 days);
        vm.prank(admin);
        manager.grantRoleWithExpiry(Roles.AUDITOR, newcomer, 0, expiry);
        vm.warp(expiry + 1);
        (bool isMember,) = manager.hasRole(Roles.AUDITOR, newcomer);
        assertFalse(isMember);

        vm.expectEmit(address(manager));
        emit IEcropAccessManager.RoleExpirySet(Roles.AUDITOR, newcomer, expiry + 365 days);
        vm.prank(admin);
        manager.grantRoleWithExpiry(Roles.AUDITOR, newcomer, 0, expiry + 365 days);
        (isMember,) = manager.hasRole(Roles.AUDITOR, newcomer);
        assertTrue(isMember);
    }

    function test_grantRoleWithExpiry_revertsWhenExpiryInPast() public {
        uint48 now_ = uint48(block.timestamp);
        vm.expectRevert(abi.encodeWithSelector(IEcropAccessManager.AccessManagerGrantExpiryInPast.selector, now_, now_));
        vm.prank(admin);
        manager.grantRoleWithExpiry(Roles.AUDITOR, newcomer, 0, now_);
    }

    function test_expiredAdmin_cannotApprove() public {
        address admin3 = vm.addr(0xAD3);
        _fourEyes(
            abi.encodeCall(
                manager.grantRoleWithExpiry, (Roles.PLATFORM_ADMIN, admin3, 0, uint48(block.timestamp + 1 days))
            )
        );
        bytes memory data = abi.encodeCall(manager.grantRole, (Roles.REGISTER_KEEPER, newcomer, 0));
        uint256 id = _propose(data);
        vm.warp(block.timestamp + 1 days);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessManager.AccessManagerUnauthorizedAccount.selector, admin3, Roles.PLATFORM_ADMIN
            )
        );
        vm.prank(admin3);
        manager.approve(id, data);
    }

    function test_revokeRole_clearsExpiry() public {
        vm.startPrank(admin);
        manager.grantRoleWithExpiry(Roles.AUDITOR, newcomer, 0, uint48(block.timestamp + 1 days));
        manager.revokeRole(Roles.AUDITOR, newcomer);
        vm.stopPrank();
        assertEq(manager.getRoleExpiry(Roles.AUDITOR, newcomer), 0);
    }

    function test_fuzz_hasRole_followsExpiry(uint48 lifetime, uint48 elapsed) public {
        lifetime = uint48(bound(lifetime, 1, 3650 days));
        elapsed = uint48(bound(elapsed, 0, 7300 days));
        uint48 expiry = uint48(block.timestamp) + lifetime;
        vm.prank(admin);
        manager.grantRoleWithExpiry(Roles.AUDITOR, newcomer, 0, expiry);
        vm.warp(block.timestamp + elapsed);
        (bool isMember,) = manager.hasRole(Roles.AUDITOR, newcomer);
        assertEq(isMember, block.timestamp < expiry);
    }
}
