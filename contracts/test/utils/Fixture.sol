// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {EcropAccessManager} from "../../src/access/EcropAccessManager.sol";
import {Roles} from "../../src/access/Roles.sol";
import {IInstructionBook} from "../../src/register/IInstructionBook.sol";
import {IInvestorRegistry} from "../../src/register/IInvestorRegistry.sol";
import {InstructionBook} from "../../src/register/InstructionBook.sol";
import {InvestorRegistry} from "../../src/register/InvestorRegistry.sol";
import {ISecuritiesRegister} from "../../src/register/ISecuritiesRegister.sol";
import {ISecurityToken} from "../../src/register/ISecurityToken.sol";
import {SecuritiesRegister} from "../../src/register/SecuritiesRegister.sol";

import {Test} from "./Test.sol";

/// @notice Deploys the contract set, wires the permission matrix from `matrix.json` the way the CLI will, onboards a
/// few investors and enters one security.
abstract contract Fixture is Test {
    /// @dev Field order is alphabetical: forge decodes JSON objects into tuples by sorted key.
    struct RoleSpec {
        string description;
        uint256 id;
        string name;
        bool sensitive;
    }

    struct FunctionSpec {
        string role;
        string signature;
        string target;
    }

    struct SystemGrant {
        string role;
        string target;
    }

    bytes12 internal constant ISIN = "DE0007164600";
    bytes12 internal constant COLLECTIVE_ISIN = "US0378331005";
    uint48 internal constant KYC_VALIDITY = 365 days;

    EcropAccessManager internal manager;
    InvestorRegistry internal registry;
    SecuritiesRegister internal register;
    InstructionBook internal book;
    ISecurityToken internal token;

    uint256 internal constant ALICE_KEY = 0xA11CE;
    uint256 internal constant BOB_KEY = 0xB0B;

    address internal admin = vm.addr(0xAD1);
    address internal admin2 = vm.addr(0xAD2);
    address internal keeper = vm.addr(0x4EE9);
    address internal issuer = vm.addr(0x155);
    address internal compliance = vm.addr(0xC0);
    address internal custodyOfficer = vm.addr(0xC05);
    address internal custodyApprover = vm.addr(0xC06);
    address internal auditor = vm.addr(0xA0D);
    address internal stranger = vm.addr(0x5742);

    address internal alice = vm.addr(ALICE_KEY);
    address internal alice2 = vm.addr(0xA11CE2);
    address internal bob = vm.addr(BOB_KEY);
    address internal carol = vm.addr(0xCA201);
    address internal custodian = vm.addr(0xC5D);

    bytes32 internal constant ALICE_ID = keccak256("holder:alice");
    bytes32 internal constant BOB_ID = keccak256("holder:bob");
    bytes32 internal constant CAROL_ID = keccak256("holder:carol");
    bytes32 internal constant CUSTODIAN_ID = keccak256("holder:custodian");

    function setUp() public virtual {
        vm.warp(1_750_000_000);
        _deploy();
        _wireMatrix();
        _onboard();
        token = ISecurityToken(_createSecurity(ISIN, ISecuritiesRegister.SecurityKind.Single, 1_000_000));
    }

    // ------------------------------------------------------------- deployment

    function _deploy() internal {
        manager = new EcropAccessManager(admin);
        registry = new InvestorRegistry(address(manager));
        register = new SecuritiesRegister(address(manager), address(registry));
        book = new InstructionBook(address(manager), address(register));
        vm.label(address(manager), "manager");
        vm.label(address(registry), "registry");
        vm.label(address(register), "register");
        vm.label(address(book), "book");
    }

    function _matrixJson() internal view returns (string memory) {
        return vm.readFile(string.concat(vm.projectRoot(), "/matrix.json"));
    }

    function _roles() internal view returns (RoleSpec[] memory) {
        return abi.decode(vm.parseJson(_matrixJson(), ".roles"), (RoleSpec[]));
    }

    function _functions() internal view returns (FunctionSpec[] memory) {
        return abi.decode(vm.parseJson(_matrixJson(), ".functions"), (FunctionSpec[]));
    }

    function _systemGrants() internal view returns (SystemGrant[] memory) {
        return abi.decode(vm.parseJson(_matrixJson(), ".systemGrants"), (SystemGrant[]));
    }

    function _target(string memory name) internal view returns (address) {
        bytes32 h = keccak256(bytes(name));
        if (h == keccak256("EcropAccessManager")) return address(manager);
        if (h == keccak256("InvestorRegistry")) return address(registry);
        if (h == keccak256("SecuritiesRegister")) return address(register);
        if (h == keccak256("InstructionBook")) return address(book);
        revert(string.concat("matrix.json names an unknown target: ", name));
    }

    function _roleId(string memory name) internal view returns (uint64) {
        RoleSpec[] memory roles = _roles();
        for (uint256 i = 0; i < roles.length; ++i) {
            if (keccak256(bytes(roles[i].name)) == keccak256(bytes(name))) return uint64(roles[i].id);
        }
        revert(string.concat("matrix.json names an unknown role: ", name));
    }

    /// @dev One account per role, as granted by {_wireMatrix}.
    function _memberOf(uint64 roleId) internal view returns (address) {
        if (roleId == Roles.PLATFORM_ADMIN) return admin;
        if (roleId == Roles.REGISTER_KEEPER) return keeper;
        if (roleId == Roles.ISSUER_AGENT) return issuer;
        if (roleId == Roles.COMPLIANCE_OFFICER) return compliance;
        if (roleId == Roles.CUSTODY_OFFICER) return custodyOfficer;
        if (roleId == Roles.CUSTODY_APPROVER) return custodyApprover;
        if (roleId == Roles.AUDITOR) return auditor;
        if (roleId == Roles.INSTRUCTION_EXECUTOR) return address(book);
        revert("no member for role");
    }

    /// @dev The wiring the CLI performs: labels, sensitivities, function roles, grants, then close bootstrap.
    function _wireMatrix() internal {
        RoleSpec[] memory roles = _roles();
        FunctionSpec[] memory functions = _functions();
        SystemGrant[] memory grants = _systemGrants();

        vm.startPrank(admin);
        for (uint256 i = 0; i < roles.length; ++i) {
            uint64 id = uint64(roles[i].id);
            manager.labelRole(id, roles[i].name);
            if (roles[i].sensitive != manager.isRoleSensitive(id)) manager.setRoleSensitive(id, roles[i].sensitive);
        }
        for (uint256 i = 0; i < functions.length; ++i) {
            address target = _target(functions[i].target);
            if (target == address(manager)) continue; // wired by the constructor; a test checks it agrees
            bytes4[] memory selectors = new bytes4[](1);
            selectors[0] = bytes4(keccak256(bytes(functions[i].signature)));
            manager.setTargetFunctionRole(target, selectors, _roleId(functions[i].role));
        }
        for (uint256 i = 0; i < roles.length; ++i) {
            uint64 id = uint64(roles[i].id);
            if (id == Roles.PLATFORM_ADMIN || id == Roles.INSTRUCTION_EXECUTOR) continue;
            manager.grantRole(id, _memberOf(id), 0);
        }
        for (uint256 i = 0; i < grants.length; ++i) {
            manager.grantRole(_roleId(grants[i].role), _target(grants[i].target), 0);
        }
        manager.grantRole(Roles.PLATFORM_ADMIN, admin2, 0);
        manager.finishBootstrap();
        vm.stopPrank();
    }

    // -------------------------------------------------------------- investors

    function _onboard() internal {
        _investor(ALICE_ID, alice, "DE", false);
        _investor(BOB_ID, bob, "FR", false);
        _investor(CAROL_ID, carol, "AT", false);
        _investor(CUSTODIAN_ID, custodian, "LU", true);
        vm.prank(compliance);
        registry.linkWallet(ALICE_ID, alice2);
    }

    function _investor(bytes32 id, address wallet, bytes2 country, bool collective) internal {
        vm.startPrank(compliance);
        registry.registerInvestor(id, country, collective);
        registry.setKyc(id, IInvestorRegistry.KycStatus.Approved, uint48(block.timestamp) + KYC_VALIDITY);
        registry.linkWallet(id, wallet);
        vm.stopPrank();
    }

    // ------------------------------------------------------ register actions

    /// @dev Issuer consents to exactly `callData`.
    function _consentTo(bytes memory callData) internal {
        bytes32 digest = register.consentDigest(callData);
        vm.prank(issuer);
        register.consent(digest);
    }

    /// @dev Issuer consents to exactly `callData`, then the keeper sends it; reverts bubble up.
    function _withConsent(bytes memory callData) internal returns (bytes memory result) {
        _consentTo(callData);
        vm.prank(keeper);
        bool ok;
        (ok, result) = address(register).call(callData);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(result, 0x20), mload(result))
            }
        }
    }

    function _params(bytes12 isin, ISecuritiesRegister.SecurityKind kind, uint128 volume)
        internal
        view
        returns (ISecuritiesRegister.SecurityParams memory)
    {
        return ISecuritiesRegister.SecurityParams({
            isin: isin,
            issuer: issuer,
            kind: kind,
            currency: "EUR",
            nominalPerUnit: 100_00,
            issueVolume: volume,
            termsHash: keccak256("terms v1"),
            termsUri: "https://issuer.example/terms-v1.pdf"
        });
    }

    function _createSecurity(bytes12 isin, ISecuritiesRegister.SecurityKind kind, uint128 volume)
        internal
        returns (address)
    {
        bytes memory result =
            _withConsent(abi.encodeCall(ISecuritiesRegister.createSecurity, (_params(isin, kind, volume))));
        return abi.decode(result, (address));
    }

    function _issue(address to, uint256 amount) internal returns (uint256 entryId) {
        return abi.decode(_withConsent(abi.encodeCall(ISecuritiesRegister.issue, (ISIN, to, amount))), (uint256));
    }

    function _refused(address from, address to, uint256 amount, ISecuritiesRegister.ReasonCode reason)
        internal
        pure
        returns (bytes memory)
    {
        return abi.encodeWithSelector(
            ISecuritiesRegister.RegisterMovementRefused.selector, ISIN, from, to, amount, reason
        );
    }

    function _entry(ISecuritiesRegister.EntryKind kind, address from, address to, uint256 amount)
        internal
        pure
        returns (ISecuritiesRegister.Entry memory)
    {
        return ISecuritiesRegister.Entry({isin: ISIN, kind: kind, from: from, to: to, amount: amount});
    }

    function _signInstruction(uint256 key, IInstructionBook.Instruction memory instruction)
        internal
        view
        returns (bytes memory)
    {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, book.instructionDigest(instruction));
        return abi.encodePacked(r, s, v);
    }
}
