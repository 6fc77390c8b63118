// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {IAccessManaged} from "@openzeppelin/contracts/access/manager/IAccessManaged.sol";

import {Custody} from "../../src/custody/Custody.sol";
import {CustodyFixture} from "./CustodyFixture.sol";

/// @notice Access tests generated from `custody.matrix.json` and the compiled ABI: every restricted custody function
/// refuses the member of every other role and a stranger, the deployed wiring equals the file, and no restricted
/// function of the compiled contract is missing from the file.
contract CustodyMatrixTest is CustodyFixture {
    /// @dev Enough zero words to ABI-decode any custody signature.
    bytes internal constant ZERO_ARGS = new bytes(32 * 8);

    /// @dev Field order is alphabetical, as forge decodes JSON objects by sorted key.
    struct OpenSpec {
        string signature;
        string target;
        string why;
    }

    function _selector(string memory signature) internal pure returns (bytes4) {
        return bytes4(keccak256(bytes(signature)));
    }

    function test_custodyMatrix_deployedWiringEqualsFile() public view {
        FunctionSpec[] memory functions = _custodyFunctions();
        assertGt(functions.length, 0);
        for (uint256 i = 0; i < functions.length; ++i) {
            assertEq(functions[i].target, "Custody");
            assertEq(
                manager.getTargetFunctionRole(address(custody), _selector(functions[i].signature)),
                _roleId(functions[i].role),
                functions[i].signature
            );
        }
    }

    /// @dev Each restricted function, called by the member of each role that lacks the required one and by a
    /// stranger, reverts with the access error.
    function test_custodyMatrix_everyRestrictedFunctionRefusesEveryOtherRole() public {
        FunctionSpec[] memory functions = _custodyFunctions();
        uint256 checked;
        for (uint256 i = 0; i < functions.length; ++i) {
            uint64 required = _roleId(functions[i].role);
            bytes memory callData = abi.encodePacked(_selector(functions[i].signature), ZERO_ARGS);
            for (uint64 role = 1; role <= 9; ++role) {
                if (role == required) continue;
                address caller = role == 9 ? stranger : _memberOf(role);
                vm.prank(caller);
                (bool ok, bytes memory ret) = address(custody).call(callData);
                assertFalse(ok, string.concat(functions[i].signature, " accepted an unauthorised caller"));
                assertEq(ret, abi.encodeWithSelector(IAccessManaged.AccessManagedUnauthorized.selector, caller));
                ++checked;
            }
        }
        // Eight roles plus a stranger, minus the one allowed role, per function.
        assertEq(checked, functions.length * 8);
    }

    /// @dev Every listed signature exists and its own role gets past the access check.
    function test_custodyMatrix_listedSignaturesExistAndAdmitTheirRole() public {
        FunctionSpec[] memory functions = _custodyFunctions();
        for (uint256 i = 0; i < functions.length; ++i) {
            address caller = _memberOf(_roleId(functions[i].role));
            uint256 snapshot = vm.snapshotState();
            vm.prank(caller);
            (bool ok, bytes memory ret) =
                address(custody).call(abi.encodePacked(_selector(functions[i].signature), ZERO_ARGS));
            vm.revertToState(snapshot);
            assertTrue(ok || ret.length != 0, string.concat(functions[i].signature, " is not a custody function"));
            assertFalse(
                !ok
                    && keccak256(ret)
                        == keccak256(abi.encodeWithSelector(IAccessManaged.AccessManagedUnauthorized.selector, caller)),
                string.concat(functions[i].signature, " refused its own role")
            );
        }
    }

    /// @dev Completeness, from the compiled ABI: a function that is neither listed nor declared open must not be
    /// restricted, so no restricted function can hide from the file.
    function test_custodyMatrix_noRestrictedFunctionMissingFromFile() public {
        string memory out = "out";
        out = vmx.envOr("FOUNDRY_OUT", out);
        string memory artifact = vm.readFile(string.concat(vm.projectRoot(), "/", out, "/Custody.sol/Custody.json"));
        string[] memory signatures = vm.parseJsonKeys(artifact, ".methodIdentifiers");
        FunctionSpec[] memory functions = _custodyFunctions();
        OpenSpec[] memory open = abi.decode(vm.parseJson(_custodyJson(), ".unrestricted"), (OpenSpec[]));

        uint256 restricted;
        for (uint256 s = 0; s < signatures.length; ++s) {
            bool listed = _listed(functions, signatures[s]);
            if (listed) ++restricted;
            if (listed || _open(open, signatures[s])) continue;
            uint256 snapshot = vm.snapshotState();
            vm.prank(stranger);
            (bool ok, bytes memory ret) = address(custody).call(abi.encodePacked(_selector(signatures[s]), ZERO_ARGS));
            vm.revertToState(snapshot);
            if (ok || ret.length < 4) continue;
            assertTrue(
                bytes4(ret) != IAccessManaged.AccessManagedUnauthorized.selector,
                string.concat("Custody.", signatures[s], " is restricted but missing from custody.matrix.json")
            );
        }
        assertEq(restricted, functions.length, "every listed signature is in the compiled ABI");
    }

    /// @dev Before wiring, nothing restricted is callable, not even by the future role holders.
    function test_custodyMatrix_nothingCallableBeforeWiring() public {
        Custody fresh = new Custody(address(manager));
        FunctionSpec[] memory functions = _custodyFunctions();
        for (uint256 i = 0; i < functions.length; ++i) {
            address caller = _memberOf(_roleId(functions[i].role));
            vm.prank(caller);
            (bool ok, bytes memory ret) =
                address(fresh).call(abi.encodePacked(_selector(functions[i].signature), ZERO_ARGS));
            assertFalse(ok, functions[i].signature);
            assertEq(ret, abi.encodeWithSelector(IAccessManaged.AccessManagedUnauthorized.selector, caller));
        }
    }

    function _listed(FunctionSpec[] memory functions, string memory signature) internal pure returns (bool) {
        for (uint256 i = 0; i < functions.length; ++i) {
            if (keccak256(bytes(functions[i].signature)) == keccak256(bytes(signature))) return true;
        }
        return false;
    }

    function _open(OpenSpec[] memory open, string memory signature) internal pure returns (bool) {
        for (uint256 i = 0; i < open.length; ++i) {
            if (keccak256(bytes(open[i].signature)) == keccak256(bytes(signature))) return true;
        }
        return false;
    }
}
