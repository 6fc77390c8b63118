// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

/// @title Isin
/// @notice Validation of International Securities Identification Numbers (ISO 6166), stored as `bytes12` ASCII.
/// @dev Layout: two letters (country prefix), nine letters or digits (national number), one check digit. The check
/// digit is the Luhn checksum over the digit string obtained by replacing each letter with its value A=10 ... Z=35.
library Isin {
    /// @notice Whether `isin` is well formed and its check digit is right. Lowercase letters are refused.
    function isValid(bytes12 isin) internal pure returns (bool) {
        uint256 sum = 0;
        // Digits counted from the right, starting at 0 for the check digit; odd positions are doubled.
        uint256 position = 0;
        for (uint256 i = 12; i > 0; --i) {
            uint256 c = uint8(isin[i - 1]);
            uint256 value;
            if (c >= 0x30 && c <= 0x39) {
                if (i <= 2) return false;
                value = c - 0x30;
            } else if (c >= 0x41 && c <= 0x5A) {
                if (i == 12) return false;
                value = c - 55;
            } else {
                return false;
            }

            if (value >= 10) {
                sum += _luhnDigit(value % 10, position++);
                sum += _luhnDigit(value / 10, position++);
            } else {
                sum += _luhnDigit(value, position++);
            }
        }
        return sum % 10 == 0;
    }

    /// @notice The ISIN as a 12-character string.
    function toString(bytes12 isin) internal pure returns (string memory) {
        return string(abi.encodePacked(isin));
    }

    function _luhnDigit(uint256 digit, uint256 position) private pure returns (uint256) {
        if (position % 2 == 0) return digit;
        uint256 doubled = digit * 2;
        return doubled > 9 ? doubled - 9 : doubled;
    }
}
