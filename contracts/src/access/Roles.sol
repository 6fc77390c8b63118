// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

/// @title Roles
/// @notice The platform's role ids in the {EcropAccessManager} permission matrix. `matrix.json` names the same ids;
/// a test keeps the two in step.
/// @dev Id 0 is OpenZeppelin's `ADMIN_ROLE`, held only by the access manager itself, and `type(uint64).max` is its
/// `PUBLIC_ROLE`. Neither is ever granted to a person.
library Roles {
    /// @notice Operates the platform: proposes and approves grants and matrix changes, pauses the register.
    uint64 internal constant PLATFORM_ADMIN = 1;
    /// @notice The registerführende Stelle: the only role that changes register entries.
    uint64 internal constant REGISTER_KEEPER = 2;
    /// @notice Acts for an issuer: consents to changes of the issuer's securities.
    uint64 internal constant ISSUER_AGENT = 3;
    /// @notice Maintains the investor registry (KYC, wallets) and freezes holdings.
    uint64 internal constant COMPLIANCE_OFFICER = 4;
    /// @notice Operates custody client accounts: deposits, destinations, withdrawal requests and execution.
    uint64 internal constant CUSTODY_OFFICER = 5;
    /// @notice Approves custody withdrawals and address-book changes it did not request.
    uint64 internal constant CUSTODY_APPROVER = 6;
    /// @notice Reads everything, changes nothing; used by the sidecar's RPC gate, holds no on-chain selector.
    uint64 internal constant AUDITOR = 7;
    /// @notice System role of the {InstructionBook} contract: executes queued holder instructions in the register.
    uint64 internal constant INSTRUCTION_EXECUTOR = 8;
}
