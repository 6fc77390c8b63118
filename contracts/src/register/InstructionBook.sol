// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {AccessManaged} from "@openzeppelin/contracts/access/manager/AccessManaged.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {Time} from "@openzeppelin/contracts/utils/types/Time.sol";

import {IInstructionBook} from "./IInstructionBook.sol";
import {ISecuritiesRegister} from "./ISecuritiesRegister.sol";

/// @title InstructionBook
/// @notice See {IInstructionBook}.
/// @dev Stores one hash per queued instruction; the full data are in {InstructionReceived}. Holds
/// {Roles-INSTRUCTION_EXECUTOR} on the register.
contract InstructionBook is AccessManaged, EIP712, Nonces, IInstructionBook {
    /// @notice EIP-712 type hash of {IInstructionBook-Instruction}.
    bytes32 public constant INSTRUCTION_TYPEHASH =
        keccak256("Instruction(bytes12 isin,address from,address to,uint256 amount,uint256 nonce,uint256 deadline)");

    ISecuritiesRegister private immutable _register;

    uint128 private _head;
    uint128 private _tail;
    mapping(uint256 instructionId => bytes32) private _queued;

    /// @param authority The platform's {EcropAccessManager}.
    /// @param register_ The {SecuritiesRegister} the instructions are executed in.
    constructor(address authority, address register_) AccessManaged(authority) EIP712("ecrop instruction book", "1") {
        _register = ISecuritiesRegister(register_);
    }

    /// @inheritdoc IInstructionBook
    function submit(Instruction calldata instruction, bytes calldata signature)
        external
        restricted
        returns (uint256 instructionId)
    {
        if (instruction.deadline < block.timestamp) {
            revert BookInstructionExpired(instruction.deadline, block.timestamp);
        }
        if (!SignatureChecker.isValidSignatureNow(instruction.from, _digest(instruction), signature)) {
            revert BookInvalidSignature(instruction.from);
        }
        _useCheckedNonce(instruction.from, instruction.nonce);

        uint48 receivedAt = Time.timestamp();
        instructionId = _tail++;
        _queued[instructionId] = keccak256(abi.encode(instruction, receivedAt));
        emit InstructionReceived(
            instructionId,
            instruction.isin,
            instruction.from,
            instruction.to,
            instruction.amount,
            instruction.nonce,
            instruction.deadline,
            receivedAt
        );
        _register.noteInstruction(instruction.isin, instruction.from);
    }

    /// @inheritdoc IInstructionBook
    function executeNext(Queued[] calldata batch) external restricted {
        uint256 head = _head;
        uint256 queued = _tail - head;
        if (batch.length > queued) revert BookQueueTooShort(queued, batch.length);

        for (uint256 i = 0; i < batch.length; ++i) {
            Queued calldata item = batch[i];
            uint256 instructionId = head + i;
            if (_queued[instructionId] != keccak256(abi.encode(item.instruction, item.receivedAt))) {
                revert BookInstructionMismatch(instructionId);
            }
            delete _queued[instructionId];
        }
        // casting to 'uint128' is safe because head + batch.length <= tail, which is a uint128
        // forge-lint: disable-next-line(unsafe-typecast)
        _head = uint128(head + batch.length);

        for (uint256 i = 0; i < batch.length; ++i) {
            Instruction calldata instruction = batch[i].instruction;
            (ISecuritiesRegister.ReasonCode code, uint256 entryId) = _register.executeInstruction(
                instruction.isin, instruction.from, instruction.to, instruction.amount, instruction.deadline, head + i
            );
            if (code == ISecuritiesRegister.ReasonCode.Ok) emit InstructionExecuted(head + i, entryId);
            else emit InstructionRejected(head + i, code);
        }
    }

    /// @inheritdoc IInstructionBook
    function instructionDigest(Instruction calldata instruction) external view returns (bytes32) {
        return _digest(instruction);
    }

    /// @inheritdoc IInstructionBook
    function nonces(address holder) public view override(Nonces, IInstructionBook) returns (uint256) {
        return super.nonces(holder);
    }

    /// @inheritdoc IInstructionBook
    function queueBounds() external view returns (uint256 head, uint256 tail) {
        return (_head, _tail);
    }

    /// @inheritdoc IInstructionBook
    function queuedHash(uint256 instructionId) external view returns (bytes32) {
        return _queued[instructionId];
    }

    /// @inheritdoc IInstructionBook
    function register() external view returns (address) {
        return address(_register);
    }

    function _digest(Instruction calldata instruction) private view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    INSTRUCTION_TYPEHASH,
                    instruction.isin,
                    instruction.from,
                    instruction.to,
                    instruction.amount,
                    instruction.nonce,
                    instruction.deadline
                )
            )
        );
    }
}
