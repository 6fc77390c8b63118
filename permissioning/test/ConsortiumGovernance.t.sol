// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {AccountAllowlist} from "../src/AccountAllowlist.sol";
import {ConsortiumGovernance} from "../src/ConsortiumGovernance.sol";
import {IConsortiumGovernance} from "../src/IConsortiumGovernance.sol";
import {INodeRegistry} from "../src/INodeRegistry.sol";
import {IRegistry} from "../src/IRegistry.sol";
import {NodeRegistry} from "../src/NodeRegistry.sol";
import {ValidatorSet} from "../src/ValidatorSet.sol";
import {Fixture} from "./utils/Fixture.sol";

contract ConsortiumGovernanceTest is Fixture {
    // ------------------------------------------------------------ threshold

    function test_threshold_isStrictMajorityOfCurrentMembers() public {
        assertEq(gov.threshold(), 2, "3 members");
        _admitWithThree(dave);
        assertEq(gov.threshold(), 3, "4 members");

        vm.prank(alice);
        uint256 id = gov.proposeAddMember(erin, "erin");
        _approveAll(id, _two(bob, carol));
        assertEq(gov.threshold(), 3, "5 members");
    }

    function test_threshold_followsConfiguredFraction() public {
        address[] memory founders = new address[](3);
        founders[0] = alice;
        founders[1] = bob;
        founders[2] = carol;
        // More than two thirds of three members: all three.
        _deploy(founders, 2, 3);
        assertEq(gov.threshold(), 3);
        // Zero fraction: any single member.
        _deploy(founders, 0, 1);
        assertEq(gov.threshold(), 1);
    }

    function test_approve_executesExactlyAtThreshold() public {
        _admitWithThree(dave); // 4 members, threshold 3
        vm.prank(alice);
        uint256 id = gov.proposeAddValidator(address(0x7A12), alice, 0);
        vm.prank(bob);
        gov.approve(id);
        assertEq(gov.approvalCount(id), 2);
        assertEq(uint256(gov.proposalState(id)), uint256(IConsortiumGovernance.ProposalState.Open), "one below");
        assertEq(validators.validatorCount(), 1);

        vm.expectEmit(address(gov));
        emit IConsortiumGovernance.ProposalExecuted(id, uint64(block.number + DELAY));
        vm.prank(carol);
        gov.approve(id);
        assertEq(uint256(gov.proposalState(id)), uint256(IConsortiumGovernance.ProposalState.Executed), "at threshold");
        assertEq(validators.validatorCount(), 2);
    }

    function test_execute_revertsBelowThreshold() public {
        _admitWithThree(dave);
        vm.prank(alice);
        uint256 id = gov.proposeAddValidator(address(0x7A12), alice, 0);
        vm.prank(bob);
        gov.approve(id);

        vm.expectRevert(abi.encodeWithSelector(IConsortiumGovernance.GovernanceThresholdNotReached.selector, id, 2, 3));
        vm.prank(bob);
        gov.execute(id);
    }

    function test_propose_approvesForProposer() public {
        vm.prank(alice);
        uint256 id = gov.proposeAddMember(dave, "dave");
        assertTrue(gov.hasApproved(id, alice));
        assertEq(gov.approvalCount(id), 1);
    }

    function test_propose_executesAtOnceWhenThresholdIsOne() public {
        address[] memory founders = new address[](1);
        founders[0] = alice;
        _deploy(founders, 1, 2);
        vm.prank(alice);
        uint256 id = gov.proposeAddMember(bob, "bob");
        assertEq(uint256(gov.proposalState(id)), uint256(IConsortiumGovernance.ProposalState.Executed));
        assertTrue(gov.isMember(bob));
    }

    // ------------------------------------------------------ double approval

    function test_approve_revertsForProposer() public {
        vm.prank(alice);
        uint256 id = gov.proposeAddMember(dave, "dave");
        vm.expectRevert(abi.encodeWithSelector(IConsortiumGovernance.GovernanceAlreadyApproved.selector, id, alice));
        vm.prank(alice);
        gov.approve(id);
    }

    function test_approve_revertsOnSecondApproval() public {
        _admitWithThree(dave); // threshold 3
        vm.prank(alice);
        uint256 id = gov.proposeAddMember(erin, "erin");
        vm.prank(bob);
        gov.approve(id);
        vm.expectRevert(abi.encodeWithSelector(IConsortiumGovernance.GovernanceAlreadyApproved.selector, id, bob));
        vm.prank(bob);
        gov.approve(id);
    }

    function test_approve_revertsAfterExecution() public {
        vm.prank(alice);
        uint256 id = gov.proposeAddMember(dave, "dave");
        vm.prank(bob);
        gov.approve(id);
        vm.expectRevert(
            abi.encodeWithSelector(
                IConsortiumGovernance.GovernanceProposalNotOpen.selector,
                id,
                IConsortiumGovernance.ProposalState.Executed
            )
        );
        vm.prank(carol);
        gov.approve(id);
    }

    // --------------------------------------------------------------- expiry

    function test_expiry_openUntilTheBlockBeforeExpiresAt() public {
        vm.prank(alice);
        uint256 id = gov.proposeAddMember(dave, "dave");
        IConsortiumGovernance.Proposal memory proposal = gov.getProposal(id);
        assertEq(proposal.expiresAt, START_BLOCK + LIFETIME);

        vm.roll(START_BLOCK + LIFETIME - 1);
        vm.prank(bob);
        gov.approve(id);
        assertTrue(gov.isMember(dave));
    }

    function test_expiry_refusesApprovalAtExpiresAt() public {
        vm.prank(alice);
        uint256 id = gov.proposeAddMember(dave, "dave");
        vm.roll(START_BLOCK + LIFETIME);
        assertEq(uint256(gov.proposalState(id)), uint256(IConsortiumGovernance.ProposalState.Expired));
        vm.expectRevert(
            abi.encodeWithSelector(
                IConsortiumGovernance.GovernanceProposalNotOpen.selector,
                id,
                IConsortiumGovernance.ProposalState.Expired
            )
        );
        vm.prank(bob);
        gov.approve(id);
        assertFalse(gov.isMember(dave));
    }

    function test_expiry_refusesExecution() public {
        _admitWithThree(dave); // 4 members, threshold 3
        vm.prank(alice);
        uint256 id = gov.proposeAddMember(erin, "erin");
        vm.prank(bob);
        gov.approve(id);
        // Lower the threshold to two by removing dave, so the proposal could execute, then let it lapse.
        vm.prank(carol);
        uint256 removal = gov.proposeRemoveMember(dave);
        _approveAll(removal, _two(alice, bob));
        assertEq(gov.threshold(), 2);

        vm.roll(START_BLOCK + LIFETIME);
        vm.expectRevert(
            abi.encodeWithSelector(
                IConsortiumGovernance.GovernanceProposalNotOpen.selector,
                id,
                IConsortiumGovernance.ProposalState.Expired
            )
        );
        vm.prank(alice);
        gov.execute(id);
    }

    // ------------------------------------------------------------ non-members

    function test_nonMember_refusedOnEveryRestrictedFunction() public {
        vm.prank(alice);
        uint256 id = gov.proposeAddMember(dave, "dave");
        bytes memory notMember = abi.encodeWithSelector(IConsortiumGovernance.GovernanceNotMember.selector, outsider);

        vm.expectRevert(notMember);
        vm.prank(outsider);
        gov.proposeAddMember(erin, "erin");
        vm.expectRevert(notMember);
        vm.prank(outsider);
        gov.proposeRemoveMember(alice);
        vm.expectRevert(notMember);
        vm.prank(outsider);
        gov.proposeAddNode(_spec(9, alice), 0);
        vm.expectRevert(notMember);
        vm.prank(outsider);
        gov.proposeRemoveNode(bytes32(uint256(1)), bytes32(uint256(2)), 0);
        vm.expectRevert(notMember);
        vm.prank(outsider);
        gov.proposeAddAccount(address(0xACC), alice, new address[](0), 0);
        vm.expectRevert(notMember);
        vm.prank(outsider);
        gov.proposeRemoveAccount(alice, 0);
        vm.expectRevert(notMember);
        vm.prank(outsider);
        gov.proposeAddValidator(address(0x7A12), alice, 0);
        vm.expectRevert(notMember);
        vm.prank(outsider);
        gov.proposeRemoveValidator(genesisValidator, 0);
        vm.expectRevert(notMember);
        vm.prank(outsider);
        gov.approve(id);
        vm.expectRevert(notMember);
        vm.prank(outsider);
        gov.execute(id);
        vm.expectRevert(notMember);
        vm.prank(outsider);
        gov.cancel(id);
    }

    function test_nonGovernance_refusedOnEveryRegistryChange() public {
        INodeRegistry.NodeSpec memory spec = _spec(9, alice);
        bytes memory notGov = abi.encodeWithSelector(IRegistry.RegistryNotGovernance.selector, alice);

        vm.expectRevert(notGov);
        vm.prank(alice);
        nodes.addNode(spec, uint64(block.number + 5));
        vm.expectRevert(notGov);
        vm.prank(alice);
        nodes.removeNode(spec.idHigh, spec.idLow, uint64(block.number + 5));
        vm.expectRevert(notGov);
        vm.prank(alice);
        accounts.addAccount(address(0xACC), alice, new address[](0), uint64(block.number + 5));
        vm.expectRevert(notGov);
        vm.prank(alice);
        accounts.removeAccount(alice, uint64(block.number + 5));
        vm.expectRevert(notGov);
        vm.prank(alice);
        validators.addValidator(address(0x7A12), alice, uint64(block.number + 5));
        vm.expectRevert(notGov);
        vm.prank(alice);
        validators.removeValidator(genesisValidator, uint64(block.number + 5));
    }

    function test_removedMember_losesAccess() public {
        _dropAccount(carol, _one(alice));
        vm.prank(bob);
        uint256 id = gov.proposeRemoveMember(carol);
        vm.prank(alice);
        gov.approve(id);
        assertFalse(gov.isMember(carol));

        vm.expectRevert(abi.encodeWithSelector(IConsortiumGovernance.GovernanceNotMember.selector, carol));
        vm.prank(carol);
        gov.proposeAddMember(dave, "dave");
    }

    // ----------------------------------------------------- membership changes

    /// @dev Schedules the removal of `member`'s own account, proposed by carol (or bob for carol).
    function _dropAccount(address member, address[] memory approvers) private {
        vm.prank(member == carol ? bob : carol);
        uint256 id = gov.proposeRemoveAccount(member, 0);
        _approveAll(id, approvers);
    }

    function test_removeMember_dropsItsApprovals() public {
        _admitWithThree(dave);
        vm.prank(alice);
        uint256 fourth = gov.proposeAddMember(erin, "erin");
        _approveAll(fourth, _two(bob, carol)); // 5 members, threshold 3

        vm.prank(alice);
        uint256 id = gov.proposeAddValidator(address(0x7A12), alice, 0);
        vm.prank(bob);
        gov.approve(id);
        assertEq(gov.approvalCount(id), 2);

        _dropAccount(bob, _two(dave, erin));
        vm.prank(carol);
        uint256 removal = gov.proposeRemoveMember(bob);
        _approveAll(removal, _two(dave, erin)); // bob out: 4 members, threshold 3
        assertEq(gov.threshold(), 3);
        assertEq(gov.approvalCount(id), 1, "bob's approval no longer counts");
        assertFalse(gov.hasApproved(id, bob));

        vm.prank(carol);
        gov.approve(id);
        assertEq(uint256(gov.proposalState(id)), uint256(IConsortiumGovernance.ProposalState.Open), "2 of 3 needed");
        vm.prank(dave);
        gov.approve(id);
        assertEq(uint256(gov.proposalState(id)), uint256(IConsortiumGovernance.ProposalState.Executed));
    }

    function test_removeMember_loweredThresholdLetsAnyMemberExecute() public {
        _admitWithThree(dave); // threshold 3
        vm.prank(alice);
        uint256 id = gov.proposeAddValidator(address(0x7A12), alice, 0);
        vm.prank(bob);
        gov.approve(id);

        vm.prank(alice);
        uint256 removal = gov.proposeRemoveMember(dave);
        _approveAll(removal, _two(bob, carol)); // threshold back to 2
        assertEq(gov.approvalCount(id), 2);

        vm.prank(carol);
        gov.execute(id);
        assertEq(uint256(gov.proposalState(id)), uint256(IConsortiumGovernance.ProposalState.Executed));
    }

    function test_readmittedMember_startsWithoutApprovals() public {
        _admitWithThree(dave); // threshold 3
        vm.prank(alice);
        uint256 id = gov.proposeAddValidator(address(0x7A12), alice, 0);
        vm.prank(dave);
        gov.approve(id);

        vm.prank(alice);
        uint256 removal = gov.proposeRemoveMember(dave);
        _approveAll(removal, _two(bob, carol));
        vm.prank(alice);
        uint256 readmit = gov.proposeAddMember(dave, "dave again");
        vm.prank(bob);
        gov.approve(readmit);

        assertEq(gov.approvalCount(id), 1, "only alice");
        assertFalse(gov.hasApproved(id, dave));
        vm.prank(dave);
        gov.approve(id); // allowed again: the old approval belonged to the earlier admission
        assertEq(gov.approvalCount(id), 2);
    }

    function test_removeMember_refusedWhileItOwnsEntries() public {
        // Alice owns the genesis node, her own account and the genesis validator.
        vm.prank(bob);
        uint256 id = gov.proposeRemoveMember(alice);
        vm.expectRevert(abi.encodeWithSelector(IConsortiumGovernance.GovernanceMemberStillOwns.selector, alice, 3));
        vm.prank(carol);
        gov.approve(id);
    }

    function test_removeMember_allowedOnceEntriesAreScheduledForRemoval() public {
        vm.prank(bob);
        uint256 id = gov.proposeRemoveAccount(carol, 0);
        vm.prank(alice);
        gov.approve(id);
        assertEq(accounts.openEntriesOf(carol), 0);

        vm.prank(bob);
        id = gov.proposeRemoveMember(carol);
        vm.expectEmit(address(gov));
        emit IConsortiumGovernance.MemberRemoved(carol, id);
        vm.prank(alice);
        gov.approve(id);
        assertEq(gov.memberCount(), 2);
    }

    function test_removeMember_refusesTheLastMember() public {
        address[] memory founders = new address[](1);
        founders[0] = alice;
        _deploy(founders, 1, 2);
        // Alice owns entries too, but the last-member rule is checked first.
        vm.expectRevert(abi.encodeWithSelector(IConsortiumGovernance.GovernanceLastMember.selector, alice));
        vm.prank(alice);
        gov.proposeRemoveMember(alice);
    }

    function test_addMember_refusesExistingAndMalformed() public {
        vm.expectRevert(abi.encodeWithSelector(IConsortiumGovernance.GovernanceAlreadyMember.selector, bob));
        vm.prank(alice);
        gov.proposeAddMember(bob, "bob");
        vm.expectRevert(abi.encodeWithSelector(IConsortiumGovernance.GovernanceMemberZero.selector));
        vm.prank(alice);
        gov.proposeAddMember(address(0), "zero");
        vm.expectRevert(abi.encodeWithSelector(IConsortiumGovernance.GovernanceMemberNameInvalid.selector, 0));
        vm.prank(alice);
        gov.proposeAddMember(dave, "");
    }

    function test_listMembers_pagesCurrentMembers() public {
        IConsortiumGovernance.Member[] memory page = gov.listMembers(1, 5);
        assertEq(page.length, 2);
        assertEq(page[0].account, bob);
        assertEq(page[1].account, carol);
        assertEq(page[1].name, "member-C");
        assertEq(gov.listMembers(7, 5).length, 0);
    }

    // ------------------------------------------------------ proposals, misc

    function test_cancel_onlyByProposerAndClosesTheProposal() public {
        vm.prank(alice);
        uint256 id = gov.proposeAddMember(dave, "dave");
        vm.expectRevert(abi.encodeWithSelector(IConsortiumGovernance.GovernanceNotProposer.selector, id, bob));
        vm.prank(bob);
        gov.cancel(id);

        vm.prank(alice);
        gov.cancel(id);
        vm.expectRevert(
            abi.encodeWithSelector(
                IConsortiumGovernance.GovernanceProposalNotOpen.selector,
                id,
                IConsortiumGovernance.ProposalState.Cancelled
            )
        );
        vm.prank(bob);
        gov.approve(id);
    }

    function test_propose_refusesActivationOutOfRange() public {
        uint256 lead = gov.MAX_ACTIVATION_LEAD();
        vm.expectRevert(
            abi.encodeWithSelector(
                IConsortiumGovernance.GovernanceActivationOutOfRange.selector, uint64(block.number), block.number, lead
            )
        );
        vm.prank(alice);
        gov.proposeAddValidator(address(0x7A12), alice, uint64(block.number));

        uint64 tooFar = uint64(block.number + lead + 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IConsortiumGovernance.GovernanceActivationOutOfRange.selector, tooFar, block.number, lead
            )
        );
        vm.prank(alice);
        gov.proposeAddValidator(address(0x7A12), alice, tooFar);
    }

    function test_propose_refusesOwnerWhoIsNotMember() public {
        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistryOwnerNotMember.selector, outsider));
        vm.prank(alice);
        gov.proposeAddNode(_spec(9, outsider), 0);
    }

    function test_propose_refusesMalformedNode() public {
        INodeRegistry.NodeSpec memory spec = _spec(9, alice);
        spec.port = 0;
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NodePortZero.selector));
        vm.prank(alice);
        gov.proposeAddNode(spec, 0);
    }

    function test_execution_refusesOwnerRemovedMeanwhile() public {
        vm.prank(alice);
        uint256 id = gov.proposeAddNode(_spec(9, carol), 0);
        // Carol leaves first (she gives up her account).
        vm.prank(bob);
        uint256 dropAccount = gov.proposeRemoveAccount(carol, 0);
        vm.prank(alice);
        gov.approve(dropAccount);
        vm.prank(bob);
        uint256 removal = gov.proposeRemoveMember(carol);
        vm.prank(alice);
        gov.approve(removal);

        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistryOwnerNotMember.selector, carol));
        vm.prank(bob);
        gov.approve(id);
    }

    function test_getProposal_recordsPayloadByKind() public {
        address[] memory targets = _one(address(0xC0DE));
        vm.prank(alice);
        uint256 id = gov.proposeAddAccount(address(0xACC), bob, targets, uint64(block.number + 10));
        IConsortiumGovernance.Proposal memory proposal = gov.getProposal(id);
        assertEq(uint256(proposal.kind), uint256(IConsortiumGovernance.ProposalKind.AddAccount));
        assertEq(proposal.proposer, alice);
        assertEq(proposal.requestedActivation, block.number + 10);
        (address account, address owner, address[] memory decoded) =
            abi.decode(proposal.payload, (address, address, address[]));
        assertEq(account, address(0xACC));
        assertEq(owner, bob);
        assertEq(decoded, targets);
    }

    function test_getProposal_revertsForUnknownId() public {
        vm.expectRevert(abi.encodeWithSelector(IConsortiumGovernance.GovernanceUnknownProposal.selector, 7));
        gov.getProposal(7);
        vm.expectRevert(abi.encodeWithSelector(IConsortiumGovernance.GovernanceUnknownProposal.selector, 7));
        vm.prank(alice);
        gov.approve(7);
    }

    // -------------------------------------------------------- deployment

    function test_bindRegistries_onlyOnceAndOnlyByDeployer() public {
        vm.expectRevert(abi.encodeWithSelector(IConsortiumGovernance.GovernanceBindingRefused.selector, address(this)));
        gov.bindRegistries(address(nodes), address(accounts), address(validators));
    }

    function test_bindRegistries_refusesRegistryOfAnotherGovernance() public {
        address[] memory founders = _one(alice);
        string[] memory names = new string[](1);
        names[0] = "alice";
        ConsortiumGovernance fresh = new ConsortiumGovernance(founders, names, 1, 2, LIFETIME, DELAY);
        vm.expectRevert(
            abi.encodeWithSelector(IConsortiumGovernance.GovernanceRegistryMismatch.selector, address(nodes))
        );
        fresh.bindRegistries(address(nodes), address(accounts), address(validators));
    }

    function test_propose_refusedBeforeBinding() public {
        address[] memory founders = _one(alice);
        string[] memory names = new string[](1);
        names[0] = "alice";
        ConsortiumGovernance fresh = new ConsortiumGovernance(founders, names, 1, 2, LIFETIME, DELAY);
        vm.expectRevert(abi.encodeWithSelector(IConsortiumGovernance.GovernanceNotBound.selector));
        vm.prank(alice);
        fresh.proposeAddValidator(address(0x7A12), alice, 0);
    }

    function test_constructor_refusesBadParameters() public {
        address[] memory founders = _one(alice);
        string[] memory names = new string[](1);
        names[0] = "alice";
        vm.expectRevert(abi.encodeWithSelector(IConsortiumGovernance.GovernanceThresholdInvalid.selector, 2, 2));
        new ConsortiumGovernance(founders, names, 2, 2, LIFETIME, DELAY);
        vm.expectRevert(abi.encodeWithSelector(IConsortiumGovernance.GovernanceTimingInvalid.selector, LIFETIME, 0));
        new ConsortiumGovernance(founders, names, 1, 2, LIFETIME, 0);
        vm.expectRevert(abi.encodeWithSelector(IConsortiumGovernance.GovernanceFoundersInvalid.selector, 1, 0));
        new ConsortiumGovernance(founders, new string[](0), 1, 2, LIFETIME, DELAY);
    }

    function test_registryConstructors_refuseOwnersWhoAreNotMembers() public {
        INodeRegistry.NodeSpec[] memory initialNodes = new INodeRegistry.NodeSpec[](1);
        initialNodes[0] = _spec(5, outsider);
        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistryOwnerNotMember.selector, outsider));
        new NodeRegistry(address(gov), initialNodes);

        AccountAllowlist.InitialAccount[] memory initialAccounts = new AccountAllowlist.InitialAccount[](1);
        initialAccounts[0] = AccountAllowlist.InitialAccount(outsider, outsider, new address[](0));
        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistryOwnerNotMember.selector, outsider));
        new AccountAllowlist(address(gov), initialAccounts);

        ValidatorSet.InitialValidator[] memory initialValidators = new ValidatorSet.InitialValidator[](1);
        initialValidators[0] = ValidatorSet.InitialValidator(address(0x7A12), outsider);
        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistryOwnerNotMember.selector, outsider));
        new ValidatorSet(address(gov), initialValidators);
    }
}
