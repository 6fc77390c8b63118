// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IAccountAllowlist} from "../src/IAccountAllowlist.sol";
import {INodeRegistry} from "../src/INodeRegistry.sol";
import {IRegistry} from "../src/IRegistry.sol";
import {IValidatorSet} from "../src/IValidatorSet.sol";
import {Lifespans} from "../src/Lifespans.sol";
import {Fixture} from "./utils/Fixture.sol";

/// @notice Activation-block semantics of the three registries, their legacy Besu views and their list views.
contract RegistriesTest is Fixture {
    bytes32 private constant LEGACY_ALLOWED = bytes32(type(uint256).max);
    bytes32 private constant LEGACY_REFUSED = bytes32(type(uint256).max >> 1);

    // ------------------------------------------------------------------ nodes

    function test_node_inForceFromActivationBlock() public {
        INodeRegistry.NodeSpec memory spec = _spec(2, bob);
        uint256 executed = block.number;
        _passAddNode(spec, 0, _one(bob));

        assertFalse(nodes.nodeAllowedAt(spec.idHigh, spec.idLow, executed));
        assertFalse(nodes.nodeAllowedAt(spec.idHigh, spec.idLow, executed + DELAY - 1));
        assertTrue(nodes.nodeAllowedAt(spec.idHigh, spec.idLow, executed + DELAY));
        assertTrue(nodes.nodeAllowedAt(spec.idHigh, spec.idLow, executed + 10_000));
    }

    function test_node_explicitActivationLaterThanDelay() public {
        INodeRegistry.NodeSpec memory spec = _spec(2, bob);
        uint64 requested = uint64(block.number + 50);
        vm.prank(alice);
        uint256 id = gov.proposeAddNode(spec, requested);
        vm.expectEmit(address(nodes));
        emit INodeRegistry.NodeAdded(nodes.nodeKey(spec.idHigh, spec.idLow), bob, spec, requested);
        vm.prank(bob);
        gov.approve(id);

        assertFalse(nodes.nodeAllowedAt(spec.idHigh, spec.idLow, requested - 1));
        assertTrue(nodes.nodeAllowedAt(spec.idHigh, spec.idLow, requested));
    }

    function test_node_explicitActivationOvertakenByDelay() public {
        // Requested for the next block, but executed only 30 blocks later: the delay counts from execution.
        INodeRegistry.NodeSpec memory spec = _spec(2, bob);
        vm.prank(alice);
        uint256 id = gov.proposeAddNode(spec, uint64(block.number + 1));
        vm.roll(block.number + 30);
        vm.prank(bob);
        gov.approve(id);
        assertFalse(nodes.nodeAllowedAt(spec.idHigh, spec.idLow, block.number + DELAY - 1));
        assertTrue(nodes.nodeAllowedAt(spec.idHigh, spec.idLow, block.number + DELAY));
    }

    function test_node_removalKeepsHistory() public {
        INodeRegistry.NodeSpec memory spec = _spec(1, alice); // the genesis node
        uint256 executed = block.number + 5;
        vm.roll(executed);
        vm.prank(bob);
        uint256 id = gov.proposeRemoveNode(spec.idHigh, spec.idLow, 0);
        vm.expectEmit(address(nodes));
        emit INodeRegistry.NodeRemoved(nodes.nodeKey(spec.idHigh, spec.idLow), uint64(executed + DELAY));
        vm.prank(carol);
        gov.approve(id);

        assertTrue(nodes.nodeAllowedAt(spec.idHigh, spec.idLow, START_BLOCK), "before removal");
        assertTrue(nodes.nodeAllowedAt(spec.idHigh, spec.idLow, executed + DELAY - 1), "last block in force");
        assertFalse(nodes.nodeAllowedAt(spec.idHigh, spec.idLow, executed + DELAY), "deactivation block");
        assertFalse(nodes.nodeAllowedAt(spec.idHigh, spec.idLow, START_BLOCK - 1), "before genesis listing");
    }

    function test_node_readdedWhileRemovalPendingStartsWhereItEnds() public {
        INodeRegistry.NodeSpec memory spec = _spec(1, alice);
        vm.prank(bob);
        uint256 id = gov.proposeRemoveNode(spec.idHigh, spec.idLow, uint64(block.number + 40));
        vm.prank(carol);
        gov.approve(id);
        spec.host = "node1.bank-a.example";
        _passAddNode(spec, 0, _one(bob));

        INodeRegistry.Node memory node = nodes.getNode(spec.idHigh, spec.idLow);
        assertEq(node.spans.length, 2);
        assertEq(node.spans[0].deactivation, START_BLOCK + 40);
        assertEq(node.spans[1].activation, START_BLOCK + 40, "no gap, no overlap");
        assertEq(node.spans[1].deactivation, Lifespans.OPEN);
        assertEq(node.spec.host, "node1.bank-a.example");
        for (uint256 b = START_BLOCK; b < START_BLOCK + 60; ++b) {
            assertTrue(nodes.nodeAllowedAt(spec.idHigh, spec.idLow, b));
        }
    }

    function test_node_removedBeforeActivationIsNeverInForce() public {
        INodeRegistry.NodeSpec memory spec = _spec(2, bob);
        _passAddNode(spec, uint64(block.number + 50), _one(bob));
        vm.prank(alice);
        uint256 id = gov.proposeRemoveNode(spec.idHigh, spec.idLow, 0);
        vm.prank(bob);
        gov.approve(id);

        INodeRegistry.Node memory node = nodes.getNode(spec.idHigh, spec.idLow);
        assertEq(node.spans[0].activation, node.spans[0].deactivation, "empty span");
        for (uint256 b = START_BLOCK; b < START_BLOCK + 80; b += 7) {
            assertFalse(nodes.nodeAllowedAt(spec.idHigh, spec.idLow, b));
        }
    }

    function test_node_addTwiceFailsAtExecution() public {
        INodeRegistry.NodeSpec memory spec = _spec(1, alice);
        vm.prank(alice);
        uint256 id = gov.proposeAddNode(spec, 0);
        vm.expectRevert(
            abi.encodeWithSelector(INodeRegistry.NodeAlreadyListed.selector, nodes.nodeKey(spec.idHigh, spec.idLow))
        );
        vm.prank(bob);
        gov.approve(id);
    }

    function test_node_ownerUpdatesEndpointAtOnce() public {
        INodeRegistry.NodeSpec memory spec = _spec(1, alice);
        bytes32 key = nodes.nodeKey(spec.idHigh, spec.idLow);
        vm.expectEmit(address(nodes));
        emit INodeRegistry.NodeEndpointUpdated(key, "https://new.example:8600", bytes32(uint256(7)));
        vm.prank(alice);
        nodes.updateNodeEndpoint(spec.idHigh, spec.idLow, "https://new.example:8600", bytes32(uint256(7)));

        INodeRegistry.Node memory node = nodes.getNode(spec.idHigh, spec.idLow);
        assertEq(node.spec.sidecarEndpoint, "https://new.example:8600");
        assertEq(node.spec.payloadKey, bytes32(uint256(7)));

        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NodeNotOwner.selector, key, bob));
        vm.prank(bob);
        nodes.updateNodeEndpoint(spec.idHigh, spec.idLow, "https://evil.example", bytes32(0));
    }

    function test_node_malformedSpecsRefused() public {
        INodeRegistry.NodeSpec memory spec = _spec(3, alice);
        spec.idHigh = bytes32(0);
        spec.idLow = bytes32(0);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NodeIdZero.selector));
        nodes.checkNodeSpec(spec);

        spec = _spec(3, alice);
        spec.host = "";
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NodeHostInvalid.selector, 0));
        nodes.checkNodeSpec(spec);

        spec = _spec(3, alice);
        spec.sidecarEndpoint = string(new bytes(257));
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NodeEndpointTooLong.selector, 257));
        nodes.checkNodeSpec(spec);
    }

    function test_connection_needsBothEndsAtThatBlock() public {
        INodeRegistry.NodeSpec memory a = _spec(1, alice);
        INodeRegistry.NodeSpec memory b = _spec(2, bob);
        _passAddNode(b, uint64(block.number + 10), _one(bob));
        uint256 activation = START_BLOCK + 10;

        assertFalse(nodes.connectionAllowedAt(a.idHigh, a.idLow, b.idHigh, b.idLow, activation - 1));
        assertTrue(nodes.connectionAllowedAt(a.idHigh, a.idLow, b.idHigh, b.idLow, activation));
        assertTrue(nodes.connectionAllowedAt(b.idHigh, b.idLow, a.idHigh, a.idLow, activation));
    }

    function test_legacy_connectionAllowedAnswersForTheCurrentBlock() public {
        INodeRegistry.NodeSpec memory a = _spec(1, alice);
        INodeRegistry.NodeSpec memory b = _spec(2, bob);
        _passAddNode(b, uint64(block.number + 10), _one(bob));
        bytes16 ipv4 = bytes16(uint128(0xffff0a000001)); // ::ffff:10.0.0.1

        assertEq(
            nodes.connectionAllowed(a.idHigh, a.idLow, ipv4, 30303, b.idHigh, b.idLow, ipv4, 30303), LEGACY_REFUSED
        );
        vm.roll(START_BLOCK + 10);
        assertEq(
            nodes.connectionAllowed(a.idHigh, a.idLow, ipv4, 30303, b.idHigh, b.idLow, ipv4, 30303), LEGACY_ALLOWED
        );
        // IP and port play no part in the decision.
        assertEq(
            nodes.connectionAllowed(a.idHigh, a.idLow, bytes16(0), 1, b.idHigh, b.idLow, bytes16(0), 2), LEGACY_ALLOWED
        );
    }

    function test_legacy_connectionAllowedSelectorMatchesBesu() public pure {
        assertEq(
            bytes32(INodeRegistry.connectionAllowed.selector),
            bytes32(
                bytes4(keccak256("connectionAllowed(bytes32,bytes32,bytes16,uint16,bytes32,bytes32,bytes16,uint16)"))
            )
        );
        assertEq(
            bytes32(IAccountAllowlist.transactionAllowed.selector),
            bytes32(bytes4(keccak256("transactionAllowed(address,address,uint256,uint256,uint256,bytes)")))
        );
        assertEq(bytes32(IValidatorSet.getValidators.selector), bytes32(bytes4(keccak256("getValidators()"))));
    }

    // --------------------------------------------------------------- accounts

    function test_account_targetsLimitTheRecipient() public {
        address trader = address(0x7D);
        address register = address(0x5E6);
        address[] memory targets = _two(register, address(0));
        vm.prank(alice);
        uint256 id = gov.proposeAddAccount(trader, bob, targets, 0);
        vm.prank(bob);
        gov.approve(id);
        uint256 active = block.number + DELAY;

        assertTrue(accounts.transactionAllowedAt(trader, register, active));
        assertTrue(accounts.transactionAllowedAt(trader, address(0), active), "contract creation listed");
        assertFalse(accounts.transactionAllowedAt(trader, address(0xBAD), active));
        assertFalse(accounts.transactionAllowedAt(trader, register, active - 1));
        assertTrue(accounts.transactionAllowedAt(alice, address(0xBAD), active), "empty list: any target");
    }

    function test_account_oldBlocksUseTheTargetsInForceThen() public {
        address trader = address(0x7D);
        vm.prank(alice);
        uint256 id = gov.proposeAddAccount(trader, bob, _one(address(0x5E6)), 0);
        vm.prank(bob);
        gov.approve(id);

        vm.roll(START_BLOCK + 20);
        vm.prank(alice);
        id = gov.proposeRemoveAccount(trader, 0);
        vm.prank(bob);
        gov.approve(id);
        vm.prank(alice);
        id = gov.proposeAddAccount(trader, bob, _one(address(0xC057)), 0);
        vm.prank(bob);
        gov.approve(id);
        uint256 switchover = START_BLOCK + 20 + DELAY;

        assertTrue(accounts.transactionAllowedAt(trader, address(0x5E6), switchover - 1));
        assertFalse(accounts.transactionAllowedAt(trader, address(0xC057), switchover - 1));
        assertFalse(accounts.transactionAllowedAt(trader, address(0x5E6), switchover));
        assertTrue(accounts.transactionAllowedAt(trader, address(0xC057), switchover));

        IAccountAllowlist.Account memory entry = accounts.getAccount(trader);
        assertEq(entry.spans.length, 2);
        assertEq(entry.spans[0].targets, _one(address(0x5E6)));
        assertEq(entry.spans[1].targets, _one(address(0xC057)));
    }

    function test_account_malformedRefused() public {
        vm.expectRevert(abi.encodeWithSelector(IAccountAllowlist.AccountZero.selector));
        accounts.checkAccount(address(0), new address[](0));
        vm.expectRevert(abi.encodeWithSelector(IAccountAllowlist.AccountDuplicateTarget.selector, address(5)));
        accounts.checkAccount(address(1), _three(address(5), address(6), address(5)));
        vm.expectRevert(abi.encodeWithSelector(IAccountAllowlist.AccountTooManyTargets.selector, 17, 16));
        accounts.checkAccount(address(1), new address[](17));
    }

    function test_account_removeUnlistedFailsAtExecution() public {
        vm.prank(alice);
        uint256 id = gov.proposeRemoveAccount(address(0x7D), 0);
        vm.expectRevert(abi.encodeWithSelector(IAccountAllowlist.AccountNotListed.selector, address(0x7D)));
        vm.prank(bob);
        gov.approve(id);
    }

    function test_legacy_transactionAllowedAnswersForTheCurrentBlock() public {
        vm.prank(alice);
        uint256 id = gov.proposeAddAccount(address(0x7D), bob, new address[](0), 0);
        vm.prank(bob);
        gov.approve(id);

        assertFalse(accounts.transactionAllowed(address(0x7D), address(0x5E6), 0, 0, 21_000, ""));
        vm.roll(block.number + DELAY);
        assertTrue(accounts.transactionAllowed(address(0x7D), address(0x5E6), 1 ether, 7, 21_000, hex"c0ffee"));
        assertFalse(accounts.transactionAllowed(outsider, address(0x5E6), 0, 0, 21_000, ""));
    }

    // ------------------------------------------------------------- validators

    function test_validators_setChangesAtActivation() public {
        address next = address(0x7A12);
        vm.prank(alice);
        uint256 id = gov.proposeAddValidator(next, bob, uint64(block.number + 10));
        vm.prank(bob);
        gov.approve(id);

        assertEq(validators.getValidators(), _one(genesisValidator));
        vm.roll(START_BLOCK + 10);
        assertEq(validators.getValidators(), _two(genesisValidator, next));

        vm.prank(alice);
        id = gov.proposeRemoveValidator(genesisValidator, 0);
        vm.expectEmit(address(validators));
        emit IValidatorSet.ValidatorRemoved(genesisValidator, uint64(block.number + DELAY));
        vm.prank(carol);
        gov.approve(id);

        vm.roll(block.number + DELAY);
        assertEq(validators.getValidators(), _one(next));
        assertEq(validators.validatorsAt(START_BLOCK), _one(genesisValidator), "history kept");
        assertEq(validators.validatorsAt(START_BLOCK + 10), _two(genesisValidator, next));
        assertTrue(validators.isValidatorAt(genesisValidator, START_BLOCK + 11));
        assertFalse(validators.isValidatorAt(genesisValidator, block.number));
    }

    function test_validators_lastOneCannotBeRemoved() public {
        vm.prank(alice);
        uint256 id = gov.proposeRemoveValidator(genesisValidator, 0);
        vm.expectRevert(
            abi.encodeWithSelector(
                IValidatorSet.ValidatorSetWouldBeEmpty.selector, genesisValidator, uint64(block.number + DELAY)
            )
        );
        vm.prank(bob);
        gov.approve(id);
    }

    function test_validators_removalBeforeReplacementActivatesRefused() public {
        vm.prank(alice);
        uint256 id = gov.proposeAddValidator(address(0x7A12), bob, uint64(block.number + 50));
        vm.prank(bob);
        gov.approve(id);

        vm.prank(alice);
        id = gov.proposeRemoveValidator(genesisValidator, uint64(block.number + 49));
        vm.expectRevert(
            abi.encodeWithSelector(
                IValidatorSet.ValidatorSetWouldBeEmpty.selector, genesisValidator, uint64(block.number + 49)
            )
        );
        vm.prank(bob);
        gov.approve(id);

        vm.prank(alice);
        id = gov.proposeRemoveValidator(genesisValidator, uint64(block.number + 50));
        vm.prank(carol);
        gov.approve(id);
        for (uint256 b = START_BLOCK; b < START_BLOCK + 60; ++b) {
            assertEq(validators.validatorsAt(b).length, 1);
        }
    }

    function test_validators_zeroRefused() public {
        vm.expectRevert(abi.encodeWithSelector(IValidatorSet.ValidatorZero.selector));
        vm.prank(alice);
        gov.proposeAddValidator(address(0), alice, 0);
    }

    // ------------------------------------------------------------ list views

    function test_lists_pageEveryEntryWithItsHistory() public {
        for (uint256 seed = 2; seed < 7; ++seed) {
            _passAddNode(_spec(seed, bob), 0, _one(bob));
        }
        assertEq(nodes.nodeCount(), 6);
        INodeRegistry.Node[] memory page = nodes.listNodes(4, 10);
        assertEq(page.length, 2);
        INodeRegistry.NodeSpec memory last = _spec(6, bob);
        assertEq(page[1].nodeKey, nodes.nodeKey(last.idHigh, last.idLow));
        assertEq(page[1].spec.owner, bob);
        assertEq(page[1].spans[0].activation, block.number + DELAY);
        assertEq(nodes.listNodes(6, 10).length, 0);

        IAccountAllowlist.Account[] memory accountPage = accounts.listAccounts(0, 100);
        assertEq(accountPage.length, 3);
        assertEq(accountPage[2].account, carol);
        assertEq(accountPage[2].spans[0].activation, START_BLOCK);

        IValidatorSet.Validator[] memory validatorPage = validators.listValidators(0, 1);
        assertEq(validatorPage[0].validator, genesisValidator);
        assertEq(validatorPage[0].owner, alice);

        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistryPageTooLarge.selector, 101, 100));
        nodes.listNodes(0, 101);
    }

    function test_getters_revertForUnknownEntries() public {
        vm.expectRevert(
            abi.encodeWithSelector(INodeRegistry.NodeUnknown.selector, nodes.nodeKey(bytes32(0), bytes32(0)))
        );
        nodes.getNode(bytes32(0), bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(IAccountAllowlist.AccountUnknown.selector, outsider));
        accounts.getAccount(outsider);
        vm.expectRevert(abi.encodeWithSelector(IValidatorSet.ValidatorUnknown.selector, outsider));
        validators.getValidator(outsider);
    }

    // ------------------------------------------------------------------ fuzz

    /// @dev For any execution block and requested activation, the entry is refused strictly before the activation
    /// block the event states and allowed from it on, and that block respects the delay and the request.
    function test_fuzz_activationBlockIsExact(uint256 wait, uint256 lead) public {
        wait = bound(wait, 0, LIFETIME - 1);
        lead = bound(lead, 0, 500);
        address account = address(0x7D);
        uint64 requested = lead == 0 ? 0 : uint64(block.number + lead);
        vm.prank(alice);
        uint256 id = gov.proposeAddAccount(account, bob, new address[](0), requested);
        vm.roll(block.number + wait);
        vm.prank(bob);
        gov.approve(id);

        uint256 expected = block.number + DELAY;
        if (requested > expected) expected = requested;
        assertFalse(accounts.accountAllowedAt(account, expected - 1));
        assertTrue(accounts.accountAllowedAt(account, expected));
        assertEq(accounts.getAccount(account).spans[0].activation, expected);
    }
}
