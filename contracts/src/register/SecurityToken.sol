// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";

import {Isin} from "./Isin.sol";
import {ISecuritiesRegister} from "./ISecuritiesRegister.sol";
import {ISecurityToken} from "./ISecurityToken.sol";

/// @title SecurityToken
/// @notice See {ISecurityToken}.
/// @dev The implementation is deployed by the register's constructor, so `register` is an immutable shared by every
/// clone; each clone carries its ISIN as immutable clone argument. Calls on the implementation itself fail in the
/// register, which knows no security whose token it is.
contract SecurityToken is ISecurityToken {
    ISecuritiesRegister private immutable _register;

    mapping(address owner => mapping(address spender => uint256)) private _allowances;

    constructor() {
        _register = ISecuritiesRegister(msg.sender);
    }

    /// @inheritdoc ISecurityToken
    function register() external view returns (address) {
        return address(_register);
    }

    /// @inheritdoc ISecurityToken
    function isin() public view returns (bytes12) {
        return bytes12(Clones.fetchCloneArgs(address(this)));
    }

    /// @inheritdoc IERC20Metadata
    function name() external view returns (string memory) {
        return string.concat("ecrop register entry ", Isin.toString(isin()));
    }

    /// @inheritdoc IERC20Metadata
    function symbol() external view returns (string memory) {
        return Isin.toString(isin());
    }

    /// @inheritdoc IERC20Metadata
    function decimals() external pure returns (uint8) {
        return 0;
    }

    /// @inheritdoc IERC20
    function totalSupply() external view returns (uint256) {
        return _register.totalSupply(isin());
    }

    /// @inheritdoc IERC20
    function balanceOf(address account) external view returns (uint256) {
        return _register.balanceOf(isin(), account);
    }

    /// @inheritdoc IERC20
    function allowance(address owner, address spender) external view returns (uint256) {
        return _allowances[owner][spender];
    }

    /// @inheritdoc IERC20
    function approve(address spender, uint256 value) external returns (bool) {
        if (spender == address(0)) revert ERC20InvalidSpender(address(0));
        _allowances[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    /// @inheritdoc IERC20
    function transfer(address to, uint256 value) external returns (bool) {
        _register.transferFromToken(isin(), msg.sender, to, value);
        emit Transfer(msg.sender, to, value);
        return true;
    }

    /// @inheritdoc IERC20
    /// @dev An allowance of `type(uint256).max` is not decreased, as in OpenZeppelin's ERC-20.
    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 current = _allowances[from][msg.sender];
        if (current != type(uint256).max) {
            if (current < value) revert ERC20InsufficientAllowance(msg.sender, current, value);
            // Cannot underflow: checked just above.
            unchecked {
                _allowances[from][msg.sender] = current - value;
            }
        }
        _register.transferFromToken(isin(), from, to, value);
        emit Transfer(from, to, value);
        return true;
    }

    /// @inheritdoc ISecurityToken
    function emitTransfer(address from, address to, uint256 amount) external {
        if (msg.sender != address(_register)) revert SecurityTokenCallerNotRegister(msg.sender);
        emit Transfer(from, to, amount);
    }
}
