// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {ISecuritiesRegister} from "./ISecuritiesRegister.sol";

/// @title IInstructionBook
/// @notice Queue of holder instructions (Weisungen) signed off-chain with EIP-712 and submitted by the register keeper.
///
/// Receipt: {submit} checks the signature, the deadline and the holder's next nonce, stamps the receipt time and
/// appends the instruction to one global first-in-first-out queue. Nonces are sequential per holder, so a replayed
/// instruction (used nonce) and a reordered one (nonce ahead of the next) are refused at receipt.
///
/// Execution: {executeNext} takes instructions strictly from the head of the queue, in the order received. The caller
/// passes the queued data back (only their hash is stored); each is checked by the register like a holder transfer.
/// A failed check or a passed deadline does not revert: the instruction is closed as rejected with its reason code so
/// one bad instruction cannot block the others.
///
/// While a holder has queued instructions, direct ERC-20 transfers from that holding are refused
/// (`InstructionsPending`), so a later direct instruction cannot overtake an earlier signed one.
///
/// Signed data (EIP-712, domain name "ecrop instruction book", version "1", this contract and chain id):
/// `Instruction(bytes12 isin,address from,address to,uint256 amount,uint256 nonce,uint256 deadline)`. `from` signs;
/// ERC-1271 contract wallets are accepted.
interface IInstructionBook {
    /// @notice A transfer instruction as signed by the holder.
    struct Instruction {
        bytes12 isin;
        address from;
        address to;
        uint256 amount;
        uint256 nonce;
        uint256 deadline;
    }

    /// @notice A queued instruction with its receipt time, as passed back to {executeNext}.
    struct Queued {
        Instruction instruction;
        uint48 receivedAt;
    }

    /// @notice The instruction got queue position `instructionId` at `receivedAt`.
    event InstructionReceived(
        uint256 indexed instructionId,
        bytes12 indexed isin,
        address indexed from,
        address to,
        uint256 amount,
        uint256 nonce,
        uint256 deadline,
        uint48 receivedAt
    );
    /// @notice The instruction was booked as register entry `entryId`.
    event InstructionExecuted(uint256 indexed instructionId, uint256 entryId);
    /// @notice The instruction failed the register's checks (or its deadline) with `reason` and is closed.
    event InstructionRejected(uint256 indexed instructionId, ISecuritiesRegister.ReasonCode reason);

    /// @notice The instruction's deadline `deadline` passed before receipt (`now`).
    error BookInstructionExpired(uint256 deadline, uint256 now);
    /// @notice The signature does not belong to `from`.
    error BookInvalidSignature(address from);
    /// @notice The data given for queue position `instructionId` differ from what was queued.
    error BookInstructionMismatch(uint256 instructionId);
    /// @notice More instructions were passed than are queued (`queued`).
    error BookQueueTooShort(uint256 queued, uint256 requested);

    /// @notice Queues a signed instruction; returns its queue position.
    function submit(Instruction calldata instruction, bytes calldata signature) external returns (uint256 instructionId);

    /// @notice Executes the next `batch.length` queued instructions, which must be given in queue order.
    function executeNext(Queued[] calldata batch) external;

    /// @notice EIP-712 digest the holder signs for `instruction`.
    function instructionDigest(Instruction calldata instruction) external view returns (bytes32);

    /// @notice Next nonce expected from `holder`.
    function nonces(address holder) external view returns (uint256);

    /// @notice Queue position of the next instruction to execute, and one past the last received.
    function queueBounds() external view returns (uint256 head, uint256 tail);

    /// @notice Stored hash of a queued instruction, zero once executed or rejected.
    function queuedHash(uint256 instructionId) external view returns (bytes32);

    /// @notice The register the book executes in.
    function register() external view returns (address);
}
