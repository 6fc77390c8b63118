// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {IAccessManaged} from "@openzeppelin/contracts/access/manager/IAccessManaged.sol";
import {IAccessManager} from "@openzeppelin/contracts/access/manager/IAccessManager.sol";

import {EcropAccessManager} from "../../src/access/EcropAccessManager.sol";
import {Roles} from "../../src/access/Roles.sol";
import {InstructionBook} from "../../src/register/InstructionBook.sol";
import {InvestorRegistry} from "../../src/register/InvestorRegistry.sol";
import {SecuritiesRegister} from "../../src/register/SecuritiesRegister.sol";
import {Fixture} from "../utils/Fixture.sol";
import {Vm} from "../utils/Test.sol";

/// @notice Tests generated from `matrix.json`: every listed (target, function) refuses every account that lacks its
/// role, the deployed wiring equals the file, and no restricted function is missing from it.
contract MatrixTest is Fixture {
    /// @dev Enough zero words to ABI-decode any listed signature: a zero offset points at a zero length.
    bytes internal constant ZERO_ARGS = new bytes(32 * 24);

    /// @dev Field order is alphabetical, see {Fixture-RoleSpec}.
    struct OpenSpec {
        string signature;
        string target;
        string why;
    }

    uint64[] internal _allRoles;

    function setUp() public override {
        super.setUp();
        for (uint64 id = 1; id <= 8; ++id) {
            _allRoles.push(id);
        }
    }

    function _selector(string memory signature) internal pure returns (bytes4) {
        return bytes4(keccak256(bytes(signature)));
    }

    function _unauthorized(address target, address caller, uint64 required) internal view returns (bytes memory) {
        if (target == address(manager)) {
            return abi.encodeWithSelector(IAccessManager.AccessManagerUnauthorizedAccount.selector, caller, required);
        }
        return abi.encodeWithSelector(IAccessManaged.AccessManagedUnauthorized.selector, caller);
    }

    function test_matrix_roleIdsMatchRolesLibrary() public view {
        RoleSpec[] memory roles = _roles();
        assertEq(roles.length, 8);
        assertEq(_roleId("PLATFORM_ADMIN"), Roles.PLATFORM_ADMIN);
        assertEq(_roleId("REGISTER_KEEPER"), Roles.REGISTER_KEEPER);
        assertEq(_roleId("ISSUER_AGENT"), Roles.ISSUER_AGENT);
        assertEq(_roleId("COMPLIANCE_OFFICER"), Roles.COMPLIANCE_OFFICER);
        assertEq(_roleId("CUSTODY_OFFICER"), Roles.CUSTODY_OFFICER);
        assertEq(_roleId("CUSTODY_APPROVER"), Roles.CUSTODY_APPROVER);
        assertEq(_roleId("AUDITOR"), Roles.AUDITOR);
        assertEq(_roleId("INSTRUCTION_EXECUTOR"), Roles.INSTRUCTION_EXECUTOR);
        for (uint256 i = 0; i < roles.length; ++i) {
            assertEq(manager.isRoleSensitive(uint64(roles[i].id)), roles[i].sensitive);
        }
    }

    function test_matrix_deployedWiringEqualsFile() public view {
        FunctionSpec[] memory functions = _functions();
        for (uint256 i = 0; i < functions.length; ++i) {
            assertEq(
                manager.getTargetFunctionRole(_target(functions[i].target), _selector(functions[i].signature)),
                _roleId(functions[i].role),
                functions[i].signature
            );
        }
    }

    /// @dev The core least-privilege test: each restricted function, called by each role's member that lacks the
    /// required role and by a stranger, reverts with the access error and changes nothing.
    function test_matrix_everyRestrictedFunctionRefusesEveryOtherRole() public {
        FunctionSpec[] memory functions = _functions();
        uint256 checked;
        for (uint256 i = 0; i < functions.length; ++i) {
            address target = _target(functions[i].target);
            uint64 required = _roleId(functions[i].role);
            bytes memory callData = abi.encodePacked(_selector(functions[i].signature), ZERO_ARGS);

            for (uint256 r = 0; r <= _allRoles.length; ++r) {
                address caller = r == _allRoles.length ? stranger : _memberOf(_allRoles[r]);
                if (r < _allRoles.length && _allRoles[r] == required) continue;
                vm.prank(caller);
                (bool ok, bytes memory ret) = target.call(callData);
                assertFalse(ok, string.concat(functions[i].signature, " accepted an unauthorised caller"));
                assertEq(ret, _unauthorized(target, caller, required));
                ++checked;
            }
        }
        assertEq(checked, functions.length * _allRoles.length);
    }

    /// @dev Before wiring, nothing restricted is callable by anyone, not even by the future role holders.
    function test_matrix_nothingCallableBeforeWiring() public {
        EcropAccessManager fresh = new EcropAccessManager(admin);
        InvestorRegistry freshRegistry = new InvestorRegistry(address(fresh));
        SecuritiesRegister freshRegister = new SecuritiesRegister(address(fresh), address(freshRegistry));
        InstructionBook freshBook = new InstructionBook(address(fresh), address(freshRegister));
        address[4] memory callers = [admin, keeper, compliance, issuer];

        FunctionSpec[] memory functions = _functions();
        for (uint256 i = 0; i < functions.length; ++i) {
            bytes32 name = keccak256(bytes(functions[i].target));
            if (name == keccak256("EcropAccessManager")) continue;
            address target = name == keccak256("InvestorRegistry")
                ? address(freshRegistry)
                : name == keccak256("SecuritiesRegister") ? address(freshRegister) : address(freshBook);
            bytes memory callData = abi.encodePacked(_selector(functions[i].signature), ZERO_ARGS);
            for (uint256 c = 0; c < callers.length; ++c) {
                vm.prank(callers[c]);
                (bool ok, bytes memory ret) = target.call(callData);
                assertFalse(ok, functions[i].signature);
                assertEq(ret, abi.encodeWithSelector(IAccessManaged.AccessManagedUnauthorized.selector, callers[c]));
            }
        }
    }

    /// @dev Every listed signature exists: its role holder gets past the access check (any revert it meets
    /// afterwards carries data; an unknown selector would revert empty).
    function test_matrix_listedSignaturesExist() public {
        FunctionSpec[] memory functions = _functions();
        for (uint256 i = 0; i < functions.length; ++i) {
            address target = _target(functions[i].target);
            address caller = _memberOf(_roleId(functions[i].role));
            bytes memory callData = abi.encodePacked(_selector(functions[i].signature), ZERO_ARGS);
            uint256 snapshot = vm.snapshotState();
            vm.prank(caller);
            (bool ok, bytes memory ret) = target.call(callData);
            vm.revertToState(snapshot);
            assertTrue(ok || ret.length != 0, string.concat(functions[i].signature, " is not a function of its target"));
            assertFalse(
                !ok && keccak256(ret) == keccak256(_unauthorized(target, caller, _roleId(functions[i].role))),
                string.concat(functions[i].signature, " refused its own role")
            );
        }
    }

    /// @dev Completeness: every function in the compiled ABI that is not in the matrix is open to a stranger, so no
    /// restricted function can hide from the file.
    function test_matrix_noRestrictedFunctionMissingFromFile() public {
        string[4] memory names = ["EcropAccessManager", "InvestorRegistry", "SecuritiesRegister", "InstructionBook"];
        FunctionSpec[] memory functions = _functions();
        OpenSpec[] memory open = abi.decode(vm.parseJson(_matrixJson(), ".unrestricted"), (OpenSpec[]));
        for (uint256 n = 0; n < names.length; ++n) {
            string memory artifact =
                vm.readFile(string.concat(vm.projectRoot(), "/out/", names[n], ".sol/", names[n], ".json"));
            string[] memory signatures = vm.parseJsonKeys(artifact, ".methodIdentifiers");
            address target = _target(names[n]);
            for (uint256 s = 0; s < signatures.length; ++s) {
                if (_listed(functions, names[n], signatures[s]) || _open(open, names[n], signatures[s])) continue;
                uint256 snapshot = vm.snapshotState();
                vm.prank(stranger);
                (bool ok, bytes memory ret) = target.call(abi.encodePacked(_selector(signatures[s]), ZERO_ARGS));
                vm.revertToState(snapshot);
                if (ok || ret.length < 4) continue;
                bytes4 err = bytes4(ret);
                assertTrue(
                    err != IAccessManaged.AccessManagedUnauthorized.selector
                        && err != IAccessManager.AccessManagerUnauthorizedAccount.selector,
                    string.concat(names[n], ".", signatures[s], " is restricted but missing from matrix.json")
                );
            }
        }
    }

    function _open(OpenSpec[] memory open, string memory target, string memory signature) internal pure returns (bool) {
        for (uint256 i = 0; i < open.length; ++i) {
            if (
                keccak256(bytes(open[i].target)) == keccak256(bytes(target))
                    && keccak256(bytes(open[i].signature)) == keccak256(bytes(signature))
            ) return true;
        }
        return false;
    }

    function _listed(FunctionSpec[] memory functions, string memory target, string memory signature)
        internal
        pure
        returns (bool)
    {
        for (uint256 i = 0; i < functions.length; ++i) {
            if (
                keccak256(bytes(functions[i].target)) == keccak256(bytes(target))
                    && keccak256(bytes(functions[i].signature)) == keccak256(bytes(signature))
            ) return true;
        }
        return false;
    }

    /// @dev The matrix and its grants can be rebuilt from the manager's events alone.
    function test_matrix_eventsRebuildWiringAndGrants() public {
        vm.recordLogs();
        _deploy();
        _wireMatrix();
        bytes memory grant = abi.encodeCall(manager.grantRoleWithExpiry, (Roles.REGISTER_KEEPER, stranger, 0, 4e9));
        vm.prank(admin);
        uint256 id = manager.propose(grant);
        vm.prank(admin2);
        manager.approve(id, grant);
        vm.prank(admin);
        manager.revokeRole(Roles.AUDITOR, auditor);
        Vm.Log[] memory logs = vm.getRecordedLogs();

        // Replay: last role per (target, selector); membership per (role, account).
        FunctionSpec[] memory functions = _functions();
        for (uint256 i = 0; i < functions.length; ++i) {
            address target = _target(functions[i].target);
            bytes4 selector = _selector(functions[i].signature);
            uint64 replayed = 0;
            for (uint256 l = 0; l < logs.length; ++l) {
                if (logs[l].emitter != address(manager)) continue;
                if (logs[l].topics[0] != IAccessManager.TargetFunctionRoleUpdated.selector) continue;
                if (address(uint160(uint256(logs[l].topics[1]))) != target) continue;
                if (bytes4(logs[l].data) != selector) continue;
                replayed = uint64(uint256(logs[l].topics[2]));
            }
            assertEq(replayed, manager.getTargetFunctionRole(target, selector), functions[i].signature);
        }

        address[4] memory accounts = [keeper, stranger, auditor, address(book)];
        for (uint64 role = 1; role <= 8; ++role) {
            for (uint256 a = 0; a < accounts.length; ++a) {
                bool member = false;
                for (uint256 l = 0; l < logs.length; ++l) {
                    if (logs[l].emitter != address(manager) || logs[l].topics.length < 3) continue;
                    if (uint64(uint256(logs[l].topics[1])) != role) continue;
                    if (address(uint160(uint256(logs[l].topics[2]))) != accounts[a]) continue;
                    if (logs[l].topics[0] == IAccessManager.RoleGranted.selector) member = true;
                    if (logs[l].topics[0] == IAccessManager.RoleRevoked.selector) member = false;
                }
                (bool isMember,) = manager.hasRole(role, accounts[a]);
                assertEq(member, isMember);
            }
        }
    }
}
