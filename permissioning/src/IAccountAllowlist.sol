// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IRegistry} from "./IRegistry.sol";
import {Lifespans} from "./Lifespans.sol";

/// @title IAccountAllowlist
/// @notice The consortium's account allowlist: which accounts may send transactions, and optionally to which targets.
/// @dev An account is listed through a governance proposal with an owning member and a target list. An empty list
/// allows any target; a non-empty list allows only the addresses in it, where `address(0)` stands for contract
/// creation (a transaction without a recipient). Each listing period keeps its own target list, so a decision for an
/// old block uses the list that was in force then; to change the targets, remove the account and add it again (the
/// new listing starts where the old one ends, leaving no gap).
///
/// Note: members vote by sending transactions to the governance contract, so with account permissioning on, each
/// member's governance account must itself be listed (with the governance contract among its targets, or none).
interface IAccountAllowlist is IRegistry {
    /// @notice One listing period of an account and the targets it allowed.
    struct AccountSpan {
        uint64 activation;
        uint64 deactivation;
        address[] targets;
    }

    /// @notice An account with its whole history, as returned by {getAccount} and {listAccounts}.
    struct Account {
        address account;
        address owner;
        AccountSpan[] spans;
    }

    /// @notice An account was listed; from `activationBlock` on it may send to `targets` (any target if empty).
    event AccountAdded(address indexed account, address indexed owner, address[] targets, uint64 activationBlock);

    /// @notice An account's removal was decided; from `deactivationBlock` on it may send nothing.
    event AccountRemoved(address indexed account, uint64 deactivationBlock);

    /// @notice The account is the zero address.
    error AccountZero();

    /// @notice The target list has `length` entries, above the cap `max`.
    error AccountTooManyTargets(uint256 length, uint256 max);

    /// @notice `target` appears twice in the target list.
    error AccountDuplicateTarget(address target);

    /// @notice The account is already listed and has no removal scheduled.
    error AccountAlreadyListed(address account);

    /// @notice The account is not listed, or its removal is already scheduled.
    error AccountNotListed(address account);

    /// @notice The account was never added.
    error AccountUnknown(address account);

    /// @notice Lists `account` from `earliestActivation`, or from the end of its previous listing if that is later.
    /// @dev Only governance. Reverts with {AccountAlreadyListed} while the account has an open listing.
    /// @return activationBlock The block from which the account may send, as emitted in {AccountAdded}.
    function addAccount(address account, address owner, address[] calldata targets, uint64 earliestActivation)
        external
        returns (uint64 activationBlock);

    /// @notice Ends an account's listing at `earliestDeactivation`, or at its activation block if that is later.
    /// @dev Only governance. Reverts with {AccountNotListed} if no listing is open.
    /// @return deactivationBlock The first block at which the account is refused, as emitted in {AccountRemoved}.
    function removeAccount(address account, uint64 earliestDeactivation) external returns (uint64 deactivationBlock);

    /// @notice Reverts with the matching error if the account or its target list is malformed.
    /// @dev Checks the form only (non-zero account, list length, no duplicates), not membership or listing state.
    function checkAccount(address account, address[] calldata targets) external pure;

    /// @notice Whether `account` is listed at `blockNumber` (to any target).
    function accountAllowedAt(address account, uint256 blockNumber) external view returns (bool);

    /// @notice Whether a transaction from `sender` to `target` (`address(0)` for contract creation) is allowed in
    /// block `blockNumber`: the sender is listed then, and its target list in force then is empty or holds `target`.
    function transactionAllowedAt(address sender, address target, uint256 blockNumber) external view returns (bool);

    /// @notice Besu's legacy onchain account permissioning call, answered for the current block.
    /// @dev Besu calls `transactionAllowed(address,address,uint256,uint256,uint256,bytes)` on the contract named by
    /// `--permissions-accounts-contract-address` at its chain head, with `target` zero for contract creation, and
    /// expects an ABI `bool`. Value, gas price, gas limit and payload are not part of the decision.
    function transactionAllowed(
        address sender,
        address target,
        uint256 value,
        uint256 gasPrice,
        uint256 gasLimit,
        bytes calldata payload
    ) external view returns (bool);

    /// @notice Number of distinct accounts ever added (listed or not); the range of {listAccounts}.
    function accountCount() external view returns (uint256);

    /// @notice One account with its history; reverts with {AccountUnknown} if it was never added.
    function getAccount(address account) external view returns (Account memory);

    /// @notice Up to `limit` accounts in the order they were first added, starting at `offset`; shorter at the end.
    function listAccounts(uint256 offset, uint256 limit) external view returns (Account[] memory);
}
