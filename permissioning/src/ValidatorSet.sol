// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IValidatorSet} from "./IValidatorSet.sol";
import {Lifespans} from "./Lifespans.sol";
import {RegistryBase} from "./RegistryBase.sol";

/// @title ValidatorSet
/// @notice The QBFT validator set; see {IValidatorSet} for the rules.
contract ValidatorSet is RegistryBase, IValidatorSet {
    using Lifespans for Lifespans.Span[];

    /// @notice Most distinct validator addresses the set ever holds. QBFT networks run with tens of validators (the
    /// message load grows with the square of the set); 128 leaves room for years of rotation while keeping
    /// {getValidators}, which Besu calls at every block, a bounded loop.
    uint256 public constant MAX_VALIDATORS = 128;

    struct InitialValidator {
        address validator;
        address owner;
    }

    mapping(address validator => address) private _owners;
    mapping(address validator => Lifespans.Span[]) private _spans;
    address[] private _validators;

    /// @param governance_ The governance contract.
    /// @param initialValidators Validators in force from the deployment block on (for genesis); at least one, since
    /// QBFT cannot run without validators.
    constructor(address governance_, InitialValidator[] memory initialValidators) RegistryBase(governance_) {
        if (initialValidators.length == 0) revert ValidatorSetWouldBeEmpty(address(0), uint64(block.number));
        for (uint256 i = 0; i < initialValidators.length; ++i) {
            _requireMember(initialValidators[i].owner);
            _add(initialValidators[i].validator, initialValidators[i].owner, uint64(block.number));
        }
    }

    // ---------------------------------------------------------------- changes

    /// @inheritdoc IValidatorSet
    function addValidator(address validator, address owner, uint64 earliestActivation)
        external
        onlyGovernance
        returns (uint64 activationBlock)
    {
        return _add(validator, owner, earliestActivation);
    }

    /// @inheritdoc IValidatorSet
    function removeValidator(address validator, uint64 earliestDeactivation)
        external
        onlyGovernance
        returns (uint64 deactivationBlock)
    {
        Lifespans.Span[] storage spans = _spans[validator];
        if (!spans.isOpen()) revert ValidatorNotListed(validator);

        deactivationBlock = spans.close(earliestDeactivation);
        if (!_anotherOpenBy(validator, deactivationBlock)) {
            revert ValidatorSetWouldBeEmpty(validator, deactivationBlock);
        }
        _entryClosed(_owners[validator]);
        emit ValidatorRemoved(validator, deactivationBlock);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IValidatorSet
    function getValidators() external view returns (address[] memory) {
        return validatorsAt(block.number);
    }

    /// @inheritdoc IValidatorSet
    function validatorsAt(uint256 blockNumber) public view returns (address[] memory active) {
        uint256 total = _validators.length;
        uint256 count = 0;
        for (uint256 i = 0; i < total; ++i) {
            if (_spans[_validators[i]].activeAt(blockNumber)) ++count;
        }

        active = new address[](count);
        uint256 next = 0;
        for (uint256 i = 0; i < total; ++i) {
            address validator = _validators[i];
            if (_spans[validator].activeAt(blockNumber)) active[next++] = validator;
        }
    }

    /// @inheritdoc IValidatorSet
    function isValidatorAt(address validator, uint256 blockNumber) external view returns (bool) {
        return _spans[validator].activeAt(blockNumber);
    }

    /// @inheritdoc IValidatorSet
    function validatorCount() external view returns (uint256) {
        return _validators.length;
    }

    /// @inheritdoc IValidatorSet
    function getValidator(address validator) external view returns (Validator memory) {
        if (_spans[validator].length == 0) revert ValidatorUnknown(validator);
        return _validator(validator);
    }

    /// @inheritdoc IValidatorSet
    function listValidators(uint256 offset, uint256 limit) external view returns (Validator[] memory validators) {
        (uint256 start, uint256 end) = _page(_validators.length, offset, limit);
        validators = new Validator[](end - start);
        for (uint256 i = start; i < end; ++i) {
            validators[i - start] = _validator(_validators[i]);
        }
    }

    // --------------------------------------------------------------- internal

    function _add(address validator, address owner, uint64 earliestActivation)
        private
        returns (uint64 activationBlock)
    {
        if (validator == address(0)) revert ValidatorZero();
        Lifespans.Span[] storage spans = _spans[validator];
        if (spans.isOpen()) revert ValidatorAlreadyListed(validator);
        if (spans.length == 0) {
            if (_validators.length == MAX_VALIDATORS) revert ValidatorCapacityReached(MAX_VALIDATORS);
            _validators.push(validator);
        }

        _owners[validator] = owner;
        activationBlock = spans.open(earliestActivation);
        _entryOpened(owner);
        emit ValidatorAdded(validator, owner, activationBlock);
    }

    /// @dev Whether some validator other than `leaving` has an open listing in force by `blockNumber`. Open listings
    /// never end unless removed, and every removal runs this check, so the set stays non-empty at every later block.
    function _anotherOpenBy(address leaving, uint64 blockNumber) private view returns (bool) {
        uint256 total = _validators.length;
        for (uint256 i = 0; i < total; ++i) {
            address validator = _validators[i];
            if (validator == leaving) continue;
            Lifespans.Span[] storage spans = _spans[validator];
            if (spans.isOpen() && spans[spans.length - 1].activation <= blockNumber) return true;
        }
        return false;
    }

    function _validator(address validator) private view returns (Validator memory) {
        return Validator({validator: validator, owner: _owners[validator], spans: _spans[validator]});
    }
}
