// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IRegistry} from "./IRegistry.sol";
import {Lifespans} from "./Lifespans.sol";

/// @title IValidatorSet
/// @notice The QBFT validator set, read by Besu's contract-based validator selection through {getValidators}.
/// @dev Configure Besu's QBFT with `validatorcontractaddress` set to this contract (from genesis or through a
/// transition). Besu calls `getValidators()` against the state of block `n` to learn who validates block `n + 1`;
/// the call runs with `block.number == n`. So a validator with activation block `a` is in the set Besu reads from
/// block `a` on and signs from block `a + 1`; one removed with deactivation block `d` signs up to block `d`.
///
/// A validator is an address (the one Besu derives from the node key) owned by a member. The set can never become
/// empty: removing a validator is refused unless another validator with an open listing is already in force by the
/// removal's deactivation block.
interface IValidatorSet is IRegistry {
    /// @notice A validator with its whole history, as returned by {getValidator} and {listValidators}.
    struct Validator {
        address validator;
        address owner;
        Lifespans.Span[] spans;
    }

    /// @notice A validator was listed; it is in the set from `activationBlock` on.
    event ValidatorAdded(address indexed validator, address indexed owner, uint64 activationBlock);

    /// @notice A validator's removal was decided; it leaves the set at `deactivationBlock`.
    event ValidatorRemoved(address indexed validator, uint64 deactivationBlock);

    /// @notice The validator is the zero address.
    error ValidatorZero();

    /// @notice The validator is already listed and has no removal scheduled.
    error ValidatorAlreadyListed(address validator);

    /// @notice The validator is not listed, or its removal is already scheduled.
    error ValidatorNotListed(address validator);

    /// @notice The validator was never added.
    error ValidatorUnknown(address validator);

    /// @notice Removing `validator` at `deactivationBlock` would leave no validator in force from then on.
    error ValidatorSetWouldBeEmpty(address validator, uint64 deactivationBlock);

    /// @notice `max` distinct validator addresses have been added; the set keeps every address it has seen so that
    /// {getValidators} stays a bounded loop.
    error ValidatorCapacityReached(uint256 max);

    /// @notice Lists `validator` from `earliestActivation`, or from the end of its previous listing if that is later.
    /// @dev Only governance.
    /// @return activationBlock As emitted in {ValidatorAdded}.
    function addValidator(address validator, address owner, uint64 earliestActivation)
        external
        returns (uint64 activationBlock);

    /// @notice Ends a validator's listing at `earliestDeactivation`, or at its activation block if that is later.
    /// @dev Only governance. Reverts with {ValidatorSetWouldBeEmpty} as described on this interface.
    /// @return deactivationBlock As emitted in {ValidatorRemoved}.
    function removeValidator(address validator, uint64 earliestDeactivation) external returns (uint64 deactivationBlock);

    /// @notice The validators in force at the current block, in the order they were first added; what QBFT reads.
    function getValidators() external view returns (address[] memory);

    /// @notice The validators in force at `blockNumber`, in the order they were first added.
    function validatorsAt(uint256 blockNumber) external view returns (address[] memory);

    /// @notice Whether `validator` is in force at `blockNumber`.
    function isValidatorAt(address validator, uint256 blockNumber) external view returns (bool);

    /// @notice Number of distinct validators ever added (listed or not); the range of {listValidators}.
    function validatorCount() external view returns (uint256);

    /// @notice One validator with its history; reverts with {ValidatorUnknown} if it was never added.
    function getValidator(address validator) external view returns (Validator memory);

    /// @notice Up to `limit` validators in the order they were first added, starting at `offset`.
    function listValidators(uint256 offset, uint256 limit) external view returns (Validator[] memory);
}
