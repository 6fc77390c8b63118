// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

import {IInstructionBook} from "../../src/register/IInstructionBook.sol";
import {ISecuritiesRegister} from "../../src/register/ISecuritiesRegister.sol";
import {Erc1271Wallet} from "../utils/Erc1271Wallet.sol";
import {Fixture} from "../utils/Fixture.sol";

contract InstructionBookTest is Fixture {
    function setUp() public override {
        super.setUp();
        _issue(alice, 1000);
    }

    function _instruction(address to, uint256 amount, uint256 nonce)
        internal
        view
        returns (IInstructionBook.Instruction memory)
    {
        return IInstructionBook.Instruction({
            isin: ISIN, from: alice, to: to, amount: amount, nonce: nonce, deadline: block.timestamp + 1 days
        });
    }

    function _submit(IInstructionBook.Instruction memory instruction)
        internal
        returns (IInstructionBook.Queued memory)
    {
        bytes memory signature = _signInstruction(ALICE_KEY, instruction);
        vm.prank(keeper);
        book.submit(instruction, signature);
        return IInstructionBook.Queued({instruction: instruction, receivedAt: uint48(block.timestamp)});
    }

    function _execute(IInstructionBook.Queued memory item) internal {
        IInstructionBook.Queued[] memory batch = new IInstructionBook.Queued[](1);
        batch[0] = item;
        vm.prank(keeper);
        book.executeNext(batch);
    }

    function test_submit_recordsReceiptTimeAndQueues() public {
        IInstructionBook.Instruction memory instruction = _instruction(bob, 100, 0);
        bytes memory signature = _signInstruction(ALICE_KEY, instruction);
        vm.expectEmit(address(book));
        emit IInstructionBook.InstructionReceived(
            0, ISIN, alice, bob, 100, 0, instruction.deadline, uint48(block.timestamp)
        );
        vm.prank(keeper);
        uint256 id = book.submit(instruction, signature);
        assertEq(id, 0);
        (uint256 head, uint256 tail) = book.queueBounds();
        assertEq(head, 0);
        assertEq(tail, 1);
        assertEq(book.nonces(alice), 1);
        assertEq(register.holding(ISIN, alice).pendingInstructions, 1);
    }

    function test_executeNext_booksInstructedEntry() public {
        IInstructionBook.Queued memory item = _submit(_instruction(bob, 100, 0));
        vm.warp(block.timestamp + 1 hours);
        vm.expectEmit(address(register));
        emit ISecuritiesRegister.EntryRecorded(
            ISIN,
            alice,
            bob,
            2,
            100,
            ISecuritiesRegister.EntryKind.Instructed,
            0,
            ISecuritiesRegister.ActionReason.None,
            0
        );
        vm.expectEmit(address(book));
        emit IInstructionBook.InstructionExecuted(0, 2);
        _execute(item);
        assertEq(token.balanceOf(bob), 100);
        assertEq(register.holding(ISIN, alice).pendingInstructions, 0);
        assertEq(book.queuedHash(0), bytes32(0));
    }

    function test_submit_revertsOnReplay() public {
        IInstructionBook.Instruction memory instruction = _instruction(bob, 100, 0);
        bytes memory signature = _signInstruction(ALICE_KEY, instruction);
        vm.startPrank(keeper);
        book.submit(instruction, signature);
        vm.expectRevert(abi.encodeWithSelector(Nonces.InvalidAccountNonce.selector, alice, 1));
        book.submit(instruction, signature);
        vm.stopPrank();
    }

    function test_submit_revertsWhenReordered() public {
        IInstructionBook.Instruction memory second = _instruction(bob, 100, 1);
        bytes memory signature = _signInstruction(ALICE_KEY, second);
        vm.expectRevert(abi.encodeWithSelector(Nonces.InvalidAccountNonce.selector, alice, 0));
        vm.prank(keeper);
        book.submit(second, signature);
    }

    function test_submit_revertsWhenExpired() public {
        IInstructionBook.Instruction memory instruction = _instruction(bob, 100, 0);
        bytes memory signature = _signInstruction(ALICE_KEY, instruction);
        vm.warp(instruction.deadline + 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IInstructionBook.BookInstructionExpired.selector, instruction.deadline, instruction.deadline + 1
            )
        );
        vm.prank(keeper);
        book.submit(instruction, signature);
    }

    function test_submit_revertsOnForeignSignature() public {
        IInstructionBook.Instruction memory instruction = _instruction(bob, 100, 0);
        bytes memory signature = _signInstruction(BOB_KEY, instruction);
        vm.expectRevert(abi.encodeWithSelector(IInstructionBook.BookInvalidSignature.selector, alice));
        vm.prank(keeper);
        book.submit(instruction, signature);
    }

    function test_submit_revertsOnTamperedAmount() public {
        IInstructionBook.Instruction memory instruction = _instruction(bob, 100, 0);
        bytes memory signature = _signInstruction(ALICE_KEY, instruction);
        instruction.amount = 900;
        vm.expectRevert(abi.encodeWithSelector(IInstructionBook.BookInvalidSignature.selector, alice));
        vm.prank(keeper);
        book.submit(instruction, signature);
    }

    function test_executeNext_expiredAtExecutionIsRejected() public {
        IInstructionBook.Queued memory item = _submit(_instruction(bob, 100, 0));
        vm.warp(item.instruction.deadline + 1);
        vm.expectEmit(address(book));
        emit IInstructionBook.InstructionRejected(0, ISecuritiesRegister.ReasonCode.InstructionExpired);
        _execute(item);
        assertEq(token.balanceOf(bob), 0);
        assertEq(register.holding(ISIN, alice).pendingInstructions, 0);
    }

    function test_executeNext_failedCheckDoesNotBlockQueue() public {
        IInstructionBook.Queued memory tooMuch = _submit(_instruction(bob, 5000, 0));
        IInstructionBook.Queued memory fine = _submit(_instruction(carol, 10, 1));
        IInstructionBook.Queued[] memory batch = new IInstructionBook.Queued[](2);
        batch[0] = tooMuch;
        batch[1] = fine;
        vm.expectEmit(address(book));
        emit IInstructionBook.InstructionRejected(0, ISecuritiesRegister.ReasonCode.InsufficientBalance);
        vm.expectEmit(address(book));
        emit IInstructionBook.InstructionExecuted(1, 2);
        vm.prank(keeper);
        book.executeNext(batch);
        assertEq(token.balanceOf(carol), 10);
    }

    function test_executeNext_revertsWhenOutOfOrder() public {
        _submit(_instruction(bob, 1, 0));
        IInstructionBook.Queued memory second = _submit(_instruction(carol, 2, 1));
        vm.expectRevert(abi.encodeWithSelector(IInstructionBook.BookInstructionMismatch.selector, 0));
        _execute(second);
    }

    function test_executeNext_revertsBeyondQueue() public {
        IInstructionBook.Queued memory first = _submit(_instruction(bob, 1, 0));
        IInstructionBook.Queued[] memory batch = new IInstructionBook.Queued[](2);
        batch[0] = first;
        batch[1] = first;
        vm.expectRevert(abi.encodeWithSelector(IInstructionBook.BookQueueTooShort.selector, 1, 2));
        vm.prank(keeper);
        book.executeNext(batch);
    }

    function test_executeNext_revertsOnForgedReceiptTime() public {
        IInstructionBook.Queued memory item = _submit(_instruction(bob, 1, 0));
        item.receivedAt -= 1;
        vm.expectRevert(abi.encodeWithSelector(IInstructionBook.BookInstructionMismatch.selector, 0));
        _execute(item);
    }

    function test_transfer_waitsForQueuedInstructions() public {
        IInstructionBook.Queued memory item = _submit(_instruction(bob, 100, 0));
        assertTrue(register.checkTransfer(ISIN, alice, carol, 1) == ISecuritiesRegister.ReasonCode.InstructionsPending);
        vm.expectRevert(_refused(alice, carol, 1, ISecuritiesRegister.ReasonCode.InstructionsPending));
        vm.prank(alice);
        token.transfer(carol, 1);

        _execute(item);
        vm.prank(alice);
        token.transfer(carol, 1);
        assertEq(token.balanceOf(carol), 1);
    }

    function test_executeNext_executesInOrderReceived() public {
        // Both spend the same units: the first received wins, the second is refused.
        IInstructionBook.Queued memory first = _submit(_instruction(bob, 800, 0));
        vm.warp(block.timestamp + 1);
        IInstructionBook.Queued memory second = _submit(_instruction(carol, 800, 1));
        IInstructionBook.Queued[] memory batch = new IInstructionBook.Queued[](2);
        batch[0] = first;
        batch[1] = second;
        vm.prank(keeper);
        book.executeNext(batch);
        assertEq(token.balanceOf(bob), 800);
        assertEq(token.balanceOf(carol), 0);
    }

    function test_executeInstruction_revertsWithoutQueuedInstruction() public {
        vm.expectRevert(
            abi.encodeWithSelector(ISecuritiesRegister.RegisterPendingInstructionsInvalid.selector, ISIN, alice)
        );
        vm.prank(address(book));
        register.executeInstruction(ISIN, alice, bob, 1, block.timestamp, 0);
    }

    function test_executeNext_waitsWhilePaused() public {
        IInstructionBook.Queued memory item = _submit(_instruction(bob, 100, 0));
        vm.prank(admin);
        register.setPaused(true);
        vm.expectRevert(_refused(alice, bob, 100, ISecuritiesRegister.ReasonCode.RegisterPaused));
        _execute(item);
        (uint256 head,) = book.queueBounds();
        assertEq(head, 0);

        vm.prank(admin);
        register.setPaused(false);
        _execute(item);
        assertEq(token.balanceOf(bob), 100);
    }

    function test_submit_acceptsContractWalletSignature() public {
        Erc1271Wallet wallet = new Erc1271Wallet(bob);
        vm.prank(compliance);
        registry.linkWallet(BOB_ID, address(wallet));
        _issue(address(wallet), 50);
        IInstructionBook.Instruction memory instruction = IInstructionBook.Instruction({
            isin: ISIN, from: address(wallet), to: carol, amount: 20, nonce: 0, deadline: block.timestamp + 1 hours
        });
        bytes memory signature = _signInstruction(BOB_KEY, instruction);
        vm.prank(keeper);
        book.submit(instruction, signature);
        _execute(IInstructionBook.Queued({instruction: instruction, receivedAt: uint48(block.timestamp)}));
        assertEq(token.balanceOf(carol), 20);
    }
}
