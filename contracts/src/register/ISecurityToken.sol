// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";

/// @title ISecurityToken
/// @notice ERC-20 face of one security in the {ISecuritiesRegister}. Balances and supply are read from the register;
/// `transfer` and `transferFrom` are the holder's direct instruction and pass the register's full check path (a failed
/// check reverts with `RegisterMovementRefused`). Allowances live here. Register keeper movements (issue, forced
/// transfer, recovery, reversal, instructed transfer, redemption) also show up as `Transfer` events here.
/// @dev Deployed by the register as a minimal clone whose immutable argument is the ISIN. `decimals` is 0: the register
/// counts whole units.
interface ISecurityToken is IERC20Metadata, IERC20Errors {
    /// @notice Only the register may call; `caller` is not it.
    error SecurityTokenCallerNotRegister(address caller);

    /// @notice The register this facade belongs to.
    function register() external view returns (address);

    /// @notice The security this facade shows.
    function isin() external view returns (bytes12);

    /// @notice Emits `Transfer` for a movement the register booked on its own.
    function emitTransfer(address from, address to, uint256 amount) external;
}
