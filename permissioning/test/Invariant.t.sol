// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {AccountAllowlist} from "../src/AccountAllowlist.sol";
import {ConsortiumGovernance} from "../src/ConsortiumGovernance.sol";
import {IConsortiumGovernance} from "../src/IConsortiumGovernance.sol";
import {INodeRegistry} from "../src/INodeRegistry.sol";
import {Lifespans} from "../src/Lifespans.sol";
import {NodeRegistry} from "../src/NodeRegistry.sol";
import {ValidatorSet} from "../src/ValidatorSet.sol";
import {Base} from "./utils/Base.sol";
import {Fixture} from "./utils/Fixture.sol";

/// @notice Drives random proposal sequences through governance and keeps its own model of every registry: the spans
/// each entry should have, computed from the documented rules, independently of the contracts' code.
contract PermissioningHandler is Base {
    uint64 private constant OPEN = type(uint64).max;
    uint256 internal constant POOL = 4;

    struct Span {
        uint64 activation;
        uint64 deactivation;
        uint256 targetsChoice;
    }

    ConsortiumGovernance internal immutable gov;
    NodeRegistry internal immutable nodes;
    AccountAllowlist internal immutable accounts;
    ValidatorSet internal immutable validators;
    uint64 internal immutable delay;
    address[3] internal members;
    address internal immutable newcomer;

    mapping(uint256 => Span[]) internal nodeSpans;
    mapping(uint256 => Span[]) internal accountSpans;
    mapping(uint256 => Span[]) internal validatorSpans;
    bool internal newcomerIsMember;
    uint256 public executed;
    uint256 public refused;

    constructor(
        ConsortiumGovernance gov_,
        NodeRegistry nodes_,
        AccountAllowlist accounts_,
        ValidatorSet validators_,
        address[3] memory members_,
        address newcomer_,
        uint64 genesisBlock
    ) {
        gov = gov_;
        nodes = nodes_;
        accounts = accounts_;
        validators = validators_;
        delay = gov_.activationDelay();
        members = members_;
        newcomer = newcomer_;
        // Fixture genesis: node seed 1 is pool node 0; validator pool 0 is the genesis validator.
        nodeSpans[0].push(Span(genesisBlock, OPEN, 0));
        validatorSpans[0].push(Span(genesisBlock, OPEN, 0));
    }

    // ------------------------------------------------------------------ pools

    function nodeSpec(uint256 i) public view returns (INodeRegistry.NodeSpec memory) {
        return INodeRegistry.NodeSpec({
            idHigh: keccak256(abi.encode("high", i + 1)),
            idLow: keccak256(abi.encode("low", i + 1)),
            host: "10.0.0.1",
            port: 30303,
            discPort: 30303,
            owner: members[i % 3],
            sidecarEndpoint: "https://sidecar.example:8600",
            payloadKey: bytes32(i)
        });
    }

    function account(uint256 i) public pure returns (address) {
        return address(uint160(0xACC000 + i));
    }

    function validator(uint256 i) public pure returns (address) {
        return i == 0 ? address(0x7A11) : address(uint160(0x7A1100 + i));
    }

    function targets(uint256 choice) public pure returns (address[] memory list) {
        if (choice == 0) return new address[](0);
        list = new address[](choice == 3 ? 2 : 1);
        list[0] = choice == 2 ? address(0) : address(0x5E6);
        if (choice == 3) list[1] = address(0xC057);
    }

    // ---------------------------------------------------------------- actions

    function advance(uint256 blocks) external {
        vm.roll(block.number + bound(blocks, 1, 6));
    }

    function addNode(uint256 seed, uint256 lead) external {
        uint256 i = bound(seed, 0, POOL - 1);
        uint64 requested = _requested(lead);
        vm.prank(members[0]);
        uint256 id = gov.proposeAddNode(nodeSpec(i), requested);
        _settleAdd(nodeSpans[i], id, requested, 0);
    }

    function removeNode(uint256 seed, uint256 lead) external {
        uint256 i = bound(seed, 0, POOL - 1);
        INodeRegistry.NodeSpec memory spec = nodeSpec(i);
        uint64 requested = _requested(lead);
        vm.prank(members[1]);
        uint256 id = gov.proposeRemoveNode(spec.idHigh, spec.idLow, requested);
        _settleRemove(nodeSpans[i], id, requested, true);
    }

    function addAccount(uint256 seed, uint256 choice, uint256 lead) external {
        uint256 i = bound(seed, 0, POOL - 1);
        choice = bound(choice, 0, 3);
        uint64 requested = _requested(lead);
        vm.prank(members[2]);
        uint256 id = gov.proposeAddAccount(account(i), members[i % 3], targets(choice), requested);
        _settleAdd(accountSpans[i], id, requested, choice);
    }

    function removeAccount(uint256 seed, uint256 lead) external {
        uint256 i = bound(seed, 0, POOL - 1);
        uint64 requested = _requested(lead);
        vm.prank(members[0]);
        uint256 id = gov.proposeRemoveAccount(account(i), requested);
        _settleRemove(accountSpans[i], id, requested, true);
    }

    function addValidator(uint256 seed, uint256 lead) external {
        uint256 i = bound(seed, 0, POOL - 1);
        uint64 requested = _requested(lead);
        vm.prank(members[1]);
        uint256 id = gov.proposeAddValidator(validator(i), members[i % 3], requested);
        _settleAdd(validatorSpans[i], id, requested, 0);
    }

    function removeValidator(uint256 seed, uint256 lead) external {
        uint256 i = bound(seed, 0, POOL - 1);
        uint64 requested = _requested(lead);
        Span[] storage spans = validatorSpans[i];
        bool allowed = true;
        if (_isOpen(spans)) {
            uint64 d = _closeAt(spans, _earliest(requested));
            allowed = false;
            for (uint256 j = 0; j < POOL; ++j) {
                Span[] storage other = validatorSpans[j];
                if (j != i && _isOpen(other) && other[other.length - 1].activation <= d) allowed = true;
            }
        }
        vm.prank(members[2]);
        uint256 id = gov.proposeRemoveValidator(validator(i), requested);
        _settleRemove(spans, id, requested, allowed);
    }

    /// @dev Membership churn: admits or removes a fourth member that owns nothing, moving the threshold.
    function toggleNewcomer() external {
        uint256 id;
        vm.prank(members[0]);
        if (newcomerIsMember) id = gov.proposeRemoveMember(newcomer);
        else id = gov.proposeAddMember(newcomer, "newcomer");
        // With four members the threshold is three; approve with the other two founders.
        vm.prank(members[1]);
        gov.approve(id);
        if (gov.proposalState(id) != IConsortiumGovernance.ProposalState.Executed) {
            vm.prank(members[2]);
            gov.approve(id);
        }
        newcomerIsMember = !newcomerIsMember;
    }

    // ----------------------------------------------------------------- checks

    function checkAll() external view {
        for (uint256 i = 0; i < POOL; ++i) {
            INodeRegistry.NodeSpec memory spec = nodeSpec(i);
            uint256[] memory probes = _probes(nodeSpans[i]);
            for (uint256 p = 0; p < probes.length; ++p) {
                vm.assertEq(
                    nodes.nodeAllowedAt(spec.idHigh, spec.idLow, probes[p]),
                    _activeAt(nodeSpans[i], probes[p]) != type(uint256).max,
                    "node view differs from model"
                );
            }
            _checkStoredSpans(_nodeSpans(spec), nodeSpans[i]);

            probes = _probes(accountSpans[i]);
            for (uint256 p = 0; p < probes.length; ++p) {
                uint256 index = _activeAt(accountSpans[i], probes[p]);
                for (uint256 t = 0; t < 3; ++t) {
                    address target = t == 0 ? address(0x5E6) : t == 1 ? address(0) : address(0xBAD);
                    bool expected = index != type(uint256).max && _targetAllowed(accountSpans[i][index], target);
                    vm.assertEq(
                        accounts.transactionAllowedAt(account(i), target, probes[p]),
                        expected,
                        "account view differs from model"
                    );
                }
            }

            probes = _probes(validatorSpans[i]);
            for (uint256 p = 0; p < probes.length; ++p) {
                _checkValidatorsAt(probes[p]);
            }
        }
        vm.assertEq(gov.memberCount(), newcomerIsMember ? 4 : 3, "member count");
        vm.assertEq(gov.threshold(), newcomerIsMember ? 3 : 2, "threshold");
    }

    // --------------------------------------------------------------- internal

    function _requested(uint256 lead) private view returns (uint64) {
        lead = bound(lead, 0, 30);
        return lead == 0 ? 0 : uint64(block.number + lead);
    }

    function _earliest(uint64 requested) private view returns (uint64) {
        uint64 floor = uint64(block.number) + delay;
        return requested > floor ? requested : floor;
    }

    function _isOpen(Span[] storage spans) private view returns (bool) {
        return spans.length != 0 && spans[spans.length - 1].deactivation == OPEN;
    }

    function _closeAt(Span[] storage spans, uint64 earliest) private view returns (uint64) {
        uint64 start = spans[spans.length - 1].activation;
        return earliest < start ? start : earliest;
    }

    /// @dev Approves with the second founder (threshold 2 without the newcomer, 3 with it) and checks the outcome
    /// against the model's prediction.
    function _settleAdd(Span[] storage spans, uint256 id, uint64 requested, uint256 choice) private {
        bool expectSuccess = !_isOpen(spans);
        bool ok = _approveToThreshold(id);
        vm.assertEq(ok, expectSuccess, "add outcome differs from model");
        if (!ok) return;
        uint64 activation = _earliest(requested);
        if (spans.length != 0 && spans[spans.length - 1].deactivation > activation) {
            activation = spans[spans.length - 1].deactivation;
        }
        spans.push(Span(activation, OPEN, choice));
    }

    function _settleRemove(Span[] storage spans, uint256 id, uint64 requested, bool allowed) private {
        bool expectSuccess = _isOpen(spans) && allowed;
        bool ok = _approveToThreshold(id);
        vm.assertEq(ok, expectSuccess, "remove outcome differs from model");
        if (!ok) return;
        spans[spans.length - 1].deactivation = _closeAt(spans, _earliest(requested));
    }

    function _approveToThreshold(uint256 id) private returns (bool ok) {
        address proposer = gov.getProposal(id).proposer;
        uint256 approvals = 1;
        for (uint256 m = 0; m < 3 && approvals < gov.threshold(); ++m) {
            if (members[m] == proposer) continue;
            vm.prank(members[m]);
            try gov.approve(id) {
                ++approvals;
            } catch {
                refused++;
                vm.prank(proposer);
                gov.cancel(id);
                return false;
            }
        }
        executed++;
        return true;
    }

    function _activeAt(Span[] storage spans, uint256 blockNumber) private view returns (uint256) {
        for (uint256 s = 0; s < spans.length; ++s) {
            if (spans[s].activation <= blockNumber && blockNumber < spans[s].deactivation) return s;
        }
        return type(uint256).max;
    }

    function _targetAllowed(Span storage span, address target) private view returns (bool) {
        address[] memory list = targets(span.targetsChoice);
        if (list.length == 0) return true;
        for (uint256 k = 0; k < list.length; ++k) {
            if (list[k] == target) return true;
        }
        return false;
    }

    function _probes(Span[] storage spans) private view returns (uint256[] memory probes) {
        probes = new uint256[](spans.length * 4 + 2);
        for (uint256 s = 0; s < spans.length; ++s) {
            uint64 a = spans[s].activation;
            uint64 d = spans[s].deactivation == OPEN ? a + 1000 : spans[s].deactivation;
            probes[s * 4] = a - 1;
            probes[s * 4 + 1] = a;
            probes[s * 4 + 2] = d - 1;
            probes[s * 4 + 3] = d;
        }
        probes[spans.length * 4] = block.number;
        probes[spans.length * 4 + 1] = block.number + delay;
    }

    function _nodeSpans(INodeRegistry.NodeSpec memory spec) private view returns (Lifespans.Span[] memory) {
        try nodes.getNode(spec.idHigh, spec.idLow) returns (INodeRegistry.Node memory node) {
            return node.spans;
        } catch {
            return new Lifespans.Span[](0);
        }
    }

    function _checkStoredSpans(Lifespans.Span[] memory stored, Span[] storage model) private view {
        vm.assertEq(stored.length, model.length, "span count differs from model");
        for (uint256 s = 0; s < stored.length; ++s) {
            vm.assertEq(stored[s].activation, model[s].activation, "activation differs from model");
            vm.assertEq(stored[s].deactivation, model[s].deactivation, "deactivation differs from model");
        }
    }

    function _checkValidatorsAt(uint256 blockNumber) private view {
        address[] memory actual = validators.validatorsAt(blockNumber);
        uint256 expectedCount = 0;
        for (uint256 j = 0; j < POOL; ++j) {
            if (_activeAt(validatorSpans[j], blockNumber) != type(uint256).max) {
                ++expectedCount;
                bool found = false;
                for (uint256 k = 0; k < actual.length; ++k) {
                    if (actual[k] == validator(j)) found = true;
                }
                vm.assertEq(found, true, "validator missing from set");
            }
        }
        vm.assertEq(actual.length, expectedCount, "validator set size differs from model");
        if (blockNumber >= 1000) vm.assertEq(actual.length > 0, true, "validator set empty");
    }
}

contract PermissioningInvariantTest is Fixture {
    PermissioningHandler private handler;

    function setUp() public override {
        super.setUp();
        handler =
            new PermissioningHandler(gov, nodes, accounts, validators, [alice, bob, carol], dave, uint64(START_BLOCK));
        targetContract(address(handler));
        bytes4[] memory selectors = new bytes4[](8);
        selectors[0] = PermissioningHandler.advance.selector;
        selectors[1] = PermissioningHandler.addNode.selector;
        selectors[2] = PermissioningHandler.removeNode.selector;
        selectors[3] = PermissioningHandler.addAccount.selector;
        selectors[4] = PermissioningHandler.removeAccount.selector;
        selectors[5] = PermissioningHandler.addValidator.selector;
        selectors[6] = PermissioningHandler.removeValidator.selector;
        selectors[7] = PermissioningHandler.toggleNewcomer.selector;
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
    }

    /// @dev Every view (node, account with targets, validator set, stored spans, threshold) equals the model at
    /// every block boundary the model knows of, after any sequence of proposals.
    function invariant_viewsMatchModel() public view {
        handler.checkAll();
    }
}
