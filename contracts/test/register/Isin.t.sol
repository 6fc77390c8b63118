// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {Isin} from "../../src/register/Isin.sol";
import {Test} from "../utils/Test.sol";

contract IsinTest is Test {
    function test_isValid_acceptsRealIsins() public pure {
        assertTrue(Isin.isValid("US0378331005"), "Apple");
        assertTrue(Isin.isValid("DE0007164600"), "SAP");
        assertTrue(Isin.isValid("US5949181045"), "Microsoft");
        assertTrue(Isin.isValid("GB0002634946"), "BAE Systems");
        assertTrue(Isin.isValid("DE000BASF111"), "BASF");
        assertTrue(Isin.isValid("AU0000XVGZA3"), "letters in the national number");
        assertTrue(Isin.isValid("JP3435000009"), "Sony");
        assertTrue(Isin.isValid("NL0000729408"), "Prosus");
    }

    function test_isValid_refusesWrongCheckDigit() public pure {
        assertFalse(Isin.isValid("US0378331006"));
        assertFalse(Isin.isValid("DE0007164601"));
    }

    function test_isValid_refusesMalformed() public pure {
        assertFalse(Isin.isValid("us0378331005"), "lowercase country");
        assertFalse(Isin.isValid("1S0378331005"), "digit in the country code");
        assertFalse(Isin.isValid("DE000716460A"), "letter as check digit");
        assertFalse(Isin.isValid("DE00071646-0"), "punctuation");
        assertFalse(Isin.isValid(bytes12(0)), "empty");
        assertFalse(Isin.isValid("DE000BASF11 "), "space");
    }

    function test_isValid_refusesTransposition() public pure {
        assertFalse(Isin.isValid("US0378313005"));
    }

    /// @dev Luhn catches every single-digit substitution among the digits.
    function test_fuzz_isValid_refusesAnyChangedDigit(uint8 position, uint8 digit) public pure {
        bytes memory isin = bytes("DE0007164600");
        uint256 index = bound(position, 2, 11);
        uint8 replacement = uint8(0x30 + bound(digit, 0, 9));
        vm.assume(uint8(isin[index]) != replacement);
        isin[index] = bytes1(replacement);
        assertFalse(Isin.isValid(bytes12(isin)));
    }

    function test_toString_roundTrips() public pure {
        assertEq(Isin.toString("DE0007164600"), "DE0007164600");
    }
}
