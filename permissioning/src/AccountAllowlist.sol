// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IAccountAllowlist} from "./IAccountAllowlist.sol";
import {Lifespans} from "./Lifespans.sol";
import {RegistryBase} from "./RegistryBase.sol";

/// @title AccountAllowlist
/// @notice The consortium's account allowlist; see {IAccountAllowlist} for the rules.
contract AccountAllowlist is RegistryBase, IAccountAllowlist {
    using Lifespans for Lifespans.Span[];

    /// @notice Most targets one listing may name: an account limited to a handful of contracts (register, custody,
    /// governance) needs a few; past this, leaving the list empty is the honest setting.
    uint256 public constant MAX_TARGETS = 16;

    struct InitialAccount {
        address account;
        address owner;
        address[] targets;
    }

    mapping(address account => address) private _owners;
    mapping(address account => Lifespans.Span[]) private _spans;
    mapping(address account => mapping(uint256 spanIndex => address[])) private _targets;
    address[] private _accounts;

    /// @param governance_ The governance contract.
    /// @param initialAccounts Accounts listed from the deployment block on (for genesis), each owned by a member.
    constructor(address governance_, InitialAccount[] memory initialAccounts) RegistryBase(governance_) {
        for (uint256 i = 0; i < initialAccounts.length; ++i) {
            InitialAccount memory entry = initialAccounts[i];
            _checkAccount(entry.account, entry.targets);
            _requireMember(entry.owner);
            _add(entry.account, entry.owner, entry.targets, uint64(block.number));
        }
    }

    // ---------------------------------------------------------------- changes

    /// @inheritdoc IAccountAllowlist
    function addAccount(address account, address owner, address[] calldata targets, uint64 earliestActivation)
        external
        onlyGovernance
        returns (uint64 activationBlock)
    {
        _checkAccount(account, targets);
        return _add(account, owner, targets, earliestActivation);
    }

    /// @inheritdoc IAccountAllowlist
    function removeAccount(address account, uint64 earliestDeactivation)
        external
        onlyGovernance
        returns (uint64 deactivationBlock)
    {
        Lifespans.Span[] storage spans = _spans[account];
        if (!spans.isOpen()) revert AccountNotListed(account);

        deactivationBlock = spans.close(earliestDeactivation);
        _entryClosed(_owners[account]);
        emit AccountRemoved(account, deactivationBlock);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IAccountAllowlist
    function checkAccount(address account, address[] calldata targets) external pure {
        _checkAccount(account, targets);
    }

    /// @inheritdoc IAccountAllowlist
    function accountAllowedAt(address account, uint256 blockNumber) external view returns (bool) {
        return _spans[account].activeAt(blockNumber);
    }

    /// @inheritdoc IAccountAllowlist
    function transactionAllowedAt(address sender, address target, uint256 blockNumber) public view returns (bool) {
        (bool active, uint256 index) = _spans[sender].find(blockNumber);
        if (!active) return false;

        address[] storage targets = _targets[sender][index];
        uint256 length = targets.length;
        if (length == 0) return true;
        for (uint256 i = 0; i < length; ++i) {
            if (targets[i] == target) return true;
        }
        return false;
    }

    /// @inheritdoc IAccountAllowlist
    function transactionAllowed(
        address sender,
        address target,
        uint256, /* value */
        uint256, /* gasPrice */
        uint256, /* gasLimit */
        bytes calldata /* payload */
    )
        external
        view
        returns (bool)
    {
        return transactionAllowedAt(sender, target, block.number);
    }

    /// @inheritdoc IAccountAllowlist
    function accountCount() external view returns (uint256) {
        return _accounts.length;
    }

    /// @inheritdoc IAccountAllowlist
    function getAccount(address account) external view returns (Account memory) {
        if (_spans[account].length == 0) revert AccountUnknown(account);
        return _account(account);
    }

    /// @inheritdoc IAccountAllowlist
    function listAccounts(uint256 offset, uint256 limit) external view returns (Account[] memory accounts) {
        (uint256 start, uint256 end) = _page(_accounts.length, offset, limit);
        accounts = new Account[](end - start);
        for (uint256 i = start; i < end; ++i) {
            accounts[i - start] = _account(_accounts[i]);
        }
    }

    // --------------------------------------------------------------- internal

    function _add(address account, address owner, address[] memory targets, uint64 earliestActivation)
        private
        returns (uint64 activationBlock)
    {
        Lifespans.Span[] storage spans = _spans[account];
        if (spans.isOpen()) revert AccountAlreadyListed(account);
        if (spans.length == 0) _accounts.push(account);

        _owners[account] = owner;
        _targets[account][spans.length] = targets;
        activationBlock = spans.open(earliestActivation);
        _entryOpened(owner);
        emit AccountAdded(account, owner, targets, activationBlock);
    }

    function _account(address account) private view returns (Account memory entry) {
        Lifespans.Span[] storage spans = _spans[account];
        entry.account = account;
        entry.owner = _owners[account];
        entry.spans = new AccountSpan[](spans.length);
        for (uint256 i = 0; i < spans.length; ++i) {
            entry.spans[i] = AccountSpan({
                activation: spans[i].activation, deactivation: spans[i].deactivation, targets: _targets[account][i]
            });
        }
    }

    function _checkAccount(address account, address[] memory targets) private pure {
        if (account == address(0)) revert AccountZero();
        uint256 length = targets.length;
        if (length > MAX_TARGETS) revert AccountTooManyTargets(length, MAX_TARGETS);
        for (uint256 i = 1; i < length; ++i) {
            for (uint256 j = 0; j < i; ++j) {
                if (targets[i] == targets[j]) revert AccountDuplicateTarget(targets[i]);
            }
        }
    }
}
