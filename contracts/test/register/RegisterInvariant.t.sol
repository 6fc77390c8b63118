// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {InstructionBook} from "../../src/register/InstructionBook.sol";
import {IInstructionBook} from "../../src/register/IInstructionBook.sol";
import {IInvestorRegistry} from "../../src/register/IInvestorRegistry.sol";
import {ISecuritiesRegister} from "../../src/register/ISecuritiesRegister.sol";
import {ISecurityToken} from "../../src/register/ISecurityToken.sol";
import {SecuritiesRegister} from "../../src/register/SecuritiesRegister.sol";
import {Fixture} from "../utils/Fixture.sol";
import {Test, Vm} from "../utils/Test.sol";

/// @notice Drives random sequences of every register operation for the invariant run. Operations whose check would
/// fail are still attempted and must then revert without changing anything.
contract RegisterHandler is Test {
    bytes12 internal constant ISIN = "DE0007164600";

    SecuritiesRegister internal register;
    InstructionBook internal book;
    ISecurityToken internal token;
    address internal keeper;
    address internal issuer;
    address internal compliance;

    address[] public actors;
    uint256[] internal keys;
    ISecuritiesRegister.Entry[] internal entries;
    uint256[] internal entryIds;
    IInstructionBook.Queued[] internal queue;
    uint256 internal queueHead;

    /// @notice Attempts and successes per operation, for the run's summary.
    mapping(bytes32 => uint256) public calls;
    mapping(bytes32 => uint256) public successes;

    constructor(
        SecuritiesRegister register_,
        InstructionBook book_,
        address keeper_,
        address issuer_,
        address compliance_,
        address[] memory actors_,
        uint256[] memory keys_
    ) {
        register = register_;
        book = book_;
        token = ISecurityToken(register_.security(ISIN).token);
        keeper = keeper_;
        issuer = issuer_;
        compliance = compliance_;
        actors = actors_;
        keys = keys_;
    }

    function actorCount() external view returns (uint256) {
        return actors.length;
    }

    function _actor(uint256 seed) internal view returns (address) {
        return actors[seed % actors.length];
    }

    function _record(ISecuritiesRegister.Entry memory entry, uint256 entryId) internal {
        if (entryId == 0) return;
        entries.push(entry);
        entryIds.push(entryId);
    }

    function _consentAndCall(bytes memory callData) internal returns (bool ok, bytes memory ret) {
        bytes32 digest = register.consentDigest(callData);
        vm.prank(issuer);
        register.consent(digest);
        vm.prank(keeper);
        (ok, ret) = address(register).call(callData);
        if (!ok) {
            vm.prank(issuer);
            register.revokeConsent(digest);
        }
    }

    function issue(uint256 toSeed, uint256 amount) external {
        address to = _actor(toSeed);
        amount = bound(amount, 1, 50_000);
        (bool ok, bytes memory ret) = _consentAndCall(abi.encodeCall(register.issue, (ISIN, to, amount)));
        if (ok) {
            successes["issue"]++;
            _record(
                ISecuritiesRegister.Entry(ISIN, ISecuritiesRegister.EntryKind.Issue, address(0), to, amount),
                abi.decode(ret, (uint256))
            );
        }
        calls["issue"]++;
    }

    function redeem(uint256 fromSeed, uint256 amount) external {
        address from = _actor(fromSeed);
        amount = bound(amount, 1, 50_000);
        (bool ok, bytes memory ret) = _consentAndCall(abi.encodeCall(register.redeem, (ISIN, from, amount)));
        if (ok) {
            successes["redeem"]++;
            _record(
                ISecuritiesRegister.Entry(ISIN, ISecuritiesRegister.EntryKind.Redemption, from, address(0), amount),
                abi.decode(ret, (uint256))
            );
        }
        calls["redeem"]++;
    }

    function transfer(uint256 fromSeed, uint256 toSeed, uint256 amount) external {
        address from = _actor(fromSeed);
        address to = _actor(toSeed);
        amount = bound(amount, 0, 60_000);
        ISecuritiesRegister.ReasonCode code = register.checkTransfer(ISIN, from, to, amount);
        uint256 before = register.entryCount();
        vm.prank(from);
        try token.transfer(to, amount) {
            require(code == ISecuritiesRegister.ReasonCode.Ok, "transfer passed a failing pre-check");
            successes["transfer"]++;
            if (register.entryCount() != before) {
                _record(
                    ISecuritiesRegister.Entry(ISIN, ISecuritiesRegister.EntryKind.Transfer, from, to, amount),
                    before + 1
                );
            }
        } catch {
            require(code != ISecuritiesRegister.ReasonCode.Ok, "transfer failed a passing pre-check");
        }
        calls["transfer"]++;
    }

    function forcedTransfer(uint256 fromSeed, uint256 toSeed, uint256 amount) external {
        address from = _actor(fromSeed);
        address to = _actor(toSeed);
        amount = bound(amount, 1, 60_000);
        vm.prank(keeper);
        try register.forcedTransfer(
            ISIN, from, to, amount, ISecuritiesRegister.ActionReason.CourtOrder, keccak256("order")
        ) returns (
            uint256 id
        ) {
            successes["forced"]++;
            _record(ISecuritiesRegister.Entry(ISIN, ISecuritiesRegister.EntryKind.Forced, from, to, amount), id);
        } catch {}
        calls["forced"]++;
    }

    function restrict(uint256 holderSeed, uint256 amount, uint256 lifetime) external {
        address holder = _actor(holderSeed);
        amount = bound(amount, 1, 20_000);
        uint48 expiry = lifetime % 2 == 0 ? 0 : uint48(block.timestamp + bound(lifetime, 1, 30 days));
        vm.prank(keeper);
        try register.restrict(ISIN, holder, amount, 1, bytes32("court"), expiry) {} catch {}
        calls["restrict"]++;
    }

    function release(uint256 holderSeed, uint256 which) external {
        address holder = _actor(holderSeed);
        uint256[] memory ids = register.restrictionIds(ISIN, holder);
        uint256[] memory pledges = register.pledgeIds(ISIN, holder);
        vm.startPrank(keeper);
        if (ids.length != 0 && which % 2 == 0) register.releaseRestriction(ids[which % ids.length]);
        if (pledges.length != 0 && which % 2 == 1) register.releasePledge(pledges[which % pledges.length]);
        vm.stopPrank();
        calls["release"]++;
    }

    function pledge(uint256 holderSeed, uint256 beneficiarySeed, uint256 amount) external {
        address holder = _actor(holderSeed);
        amount = bound(amount, 1, 20_000);
        vm.prank(keeper);
        try register.pledge(ISIN, holder, amount, _actor(beneficiarySeed), ISecuritiesRegister.PledgeKind.Pledge) {}
            catch {}
        calls["pledge"]++;
    }

    function freeze(uint256 holderSeed, bool frozen) external {
        vm.prank(compliance);
        register.setHoldingFrozen(ISIN, _actor(holderSeed), frozen);
        calls["freeze"]++;
    }

    /// @dev Actors 0 and 1 are two wallets of the same investor.
    function recover(bool direction) external {
        (address lost, address replacement) = direction ? (actors[0], actors[1]) : (actors[1], actors[0]);
        vm.prank(keeper);
        // Recovery entries are not reversible, so they are not recorded for the reverse action.
        try register.recover(ISIN, lost, replacement, keccak256("affidavit")) {} catch {}
        calls["recover"]++;
    }

    function reverse(uint256 which) external {
        if (entries.length == 0) return;
        uint256 index = which % entries.length;
        ISecuritiesRegister.Entry memory entry = entries[index];
        vm.prank(keeper);
        try register.reverse(entryIds[index], entry, keccak256("correction")) returns (uint256 id) {
            require(register.reversedBy(entryIds[index]) == id, "reversal not linked");
            successes["reverse"]++;
        } catch {}
        calls["reverse"]++;
    }

    function submitInstruction(uint256 fromSeed, uint256 toSeed, uint256 amount) external {
        uint256 index = fromSeed % actors.length;
        address from = actors[index];
        IInstructionBook.Instruction memory instruction = IInstructionBook.Instruction({
            isin: ISIN,
            from: from,
            to: _actor(toSeed),
            amount: bound(amount, 1, 60_000),
            nonce: book.nonces(from),
            deadline: block.timestamp + 1 days
        });
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(keys[index], book.instructionDigest(instruction));
        vm.prank(keeper);
        book.submit(instruction, abi.encodePacked(r, s, v));
        queue.push(IInstructionBook.Queued({instruction: instruction, receivedAt: uint48(block.timestamp)}));
        calls["submit"]++;
    }

    function executeInstructions(uint256 count) external {
        uint256 waiting = queue.length - queueHead;
        if (waiting == 0) return;
        count = bound(count, 1, waiting);
        IInstructionBook.Queued[] memory batch = new IInstructionBook.Queued[](count);
        for (uint256 i = 0; i < count; ++i) {
            batch[i] = queue[queueHead + i];
        }
        vm.prank(keeper);
        book.executeNext(batch);
        queueHead += count;
        calls["execute"]++;
    }

    function warp(uint256 seconds_) external {
        vm.warp(block.timestamp + bound(seconds_, 1, 10 days));
        calls["warp"]++;
    }
}

contract RegisterInvariantTest is Fixture {
    RegisterHandler internal handler;

    function setUp() public override {
        super.setUp();
        address[] memory actors = new address[](4);
        actors[0] = alice;
        actors[1] = alice2;
        actors[2] = bob;
        actors[3] = carol;
        uint256[] memory keys = new uint256[](4);
        keys[0] = ALICE_KEY;
        keys[1] = 0xA11CE2;
        keys[2] = BOB_KEY;
        keys[3] = 0xCA201;
        // KYC valid for the whole run, whatever time the handler lets pass.
        uint48 expiry = uint48(block.timestamp + 100 * 365 days);
        vm.startPrank(compliance);
        registry.setKyc(ALICE_ID, IInvestorRegistry.KycStatus.Approved, expiry);
        registry.setKyc(BOB_ID, IInvestorRegistry.KycStatus.Approved, expiry);
        registry.setKyc(CAROL_ID, IInvestorRegistry.KycStatus.Approved, expiry);
        vm.stopPrank();
        handler = new RegisterHandler(register, book, keeper, issuer, compliance, actors, keys);
        targetContract(address(handler));
    }

    function invariant_sumOfHoldingsEqualsSupply() public view {
        uint256 sum;
        for (uint256 i = 0; i < handler.actorCount(); ++i) {
            sum += register.balanceOf(ISIN, handler.actors(i));
        }
        assertEq(sum, register.totalSupply(ISIN));
        assertEq(token.totalSupply(), register.totalSupply(ISIN));
    }

    function invariant_supplyWithinIssueVolume() public view {
        assertLe(register.totalSupply(ISIN), register.security(ISIN).issueVolume);
    }

    function invariant_balanceCoversPledges() public view {
        for (uint256 i = 0; i < handler.actorCount(); ++i) {
            address actor = handler.actors(i);
            ISecuritiesRegister.HoldingView memory h = register.holding(ISIN, actor);
            assertGe(h.balance, h.encumbered);
            assertLe(h.free, h.balance);
            uint256[] memory ids = register.pledgeIds(ISIN, actor);
            uint256 pledged;
            for (uint256 p = 0; p < ids.length; ++p) {
                ISecuritiesRegister.Pledge memory entry = register.pledgeOf(ids[p]);
                assertTrue(entry.active);
                assertEq(entry.holder, actor);
                pledged += entry.amount;
            }
            assertEq(pledged, h.encumbered);
            assertEq(ids.length, h.pledgeCount);
            assertEq(register.restrictionIds(ISIN, actor).length, h.restrictionCount);
        }
    }

    function invariant_pendingInstructionsMatchQueue() public view {
        uint256 pending;
        for (uint256 i = 0; i < handler.actorCount(); ++i) {
            pending += register.holding(ISIN, handler.actors(i)).pendingInstructions;
        }
        (uint256 head, uint256 tail) = book.queueBounds();
        assertEq(pending, tail - head);
    }
}

/// @notice The register can be rebuilt from its events alone: replaying every `EntryRecorded` of a random operation
/// sequence gives exactly the balances and supply the contract reports.
contract RegisterReconstructionTest is Fixture {
    function test_fuzz_eventsRebuildBalances(uint256[16] memory seeds) public {
        address[] memory actors = new address[](4);
        actors[0] = alice;
        actors[1] = alice2;
        actors[2] = bob;
        actors[3] = carol;
        uint256[] memory keys = new uint256[](4);
        keys[0] = ALICE_KEY;
        keys[1] = 0xA11CE2;
        keys[2] = BOB_KEY;
        keys[3] = 0xCA201;
        RegisterHandler handler = new RegisterHandler(register, book, keeper, issuer, compliance, actors, keys);

        vm.recordLogs();
        handler.issue(0, 40_000);
        handler.issue(2, 40_000);
        for (uint256 i = 0; i < seeds.length; ++i) {
            uint256 seed = seeds[i];
            uint256 op = seed % 9;
            if (op == 0) handler.issue(seed >> 8, seed >> 16);
            else if (op == 1) handler.transfer(seed >> 8, seed >> 12, seed >> 16);
            else if (op == 2) handler.forcedTransfer(seed >> 8, seed >> 12, seed >> 16);
            else if (op == 3) handler.redeem(seed >> 8, seed >> 16);
            else if (op == 4) handler.recover(seed % 2 == 0);
            else if (op == 5) handler.reverse(seed >> 8);
            else if (op == 6) handler.submitInstruction(seed >> 8, seed >> 12, seed >> 16);
            else if (op == 7) handler.executeInstructions(seed >> 8);
            else handler.pledge(seed >> 8, seed >> 12, seed >> 16);
        }
        Vm.Log[] memory logs = vm.getRecordedLogs();

        bytes32 topic = ISecuritiesRegister.EntryRecorded.selector;
        int256[4] memory rebuilt;
        int256 supply;
        uint256 lastId;
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].emitter != address(register) || logs[i].topics[0] != topic) continue;
            assertEq(bytes12(logs[i].topics[1]), ISIN);
            address from = address(uint160(uint256(logs[i].topics[2])));
            address to = address(uint160(uint256(logs[i].topics[3])));
            (uint256 entryId, uint256 amount) = abi.decode(logs[i].data, (uint256, uint256));
            assertEq(entryId, lastId + 1, "entry ids are consecutive");
            lastId = entryId;
            for (uint256 a = 0; a < 4; ++a) {
                if (actors[a] == from) rebuilt[a] -= int256(amount);
                if (actors[a] == to) rebuilt[a] += int256(amount);
            }
            if (from == address(0)) supply += int256(amount);
            if (to == address(0)) supply -= int256(amount);
        }

        assertEq(lastId, register.entryCount());
        assertEq(uint256(supply), register.totalSupply(ISIN));
        for (uint256 a = 0; a < 4; ++a) {
            assertEq(uint256(rebuilt[a]), register.balanceOf(ISIN, actors[a]));
        }
    }
}
