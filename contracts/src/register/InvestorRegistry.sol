// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {AccessManaged} from "@openzeppelin/contracts/access/manager/AccessManaged.sol";
import {Time} from "@openzeppelin/contracts/utils/types/Time.sol";

import {IInvestorRegistry} from "./IInvestorRegistry.sol";

/// @title InvestorRegistry
/// @notice See {IInvestorRegistry}.
contract InvestorRegistry is AccessManaged, IInvestorRegistry {
    mapping(bytes32 holderId => Investor) private _investors;
    mapping(address wallet => bytes32 holderId) private _holderOf;

    /// @param authority The platform's {EcropAccessManager}.
    constructor(address authority) AccessManaged(authority) {}

    /// @inheritdoc IInvestorRegistry
    function registerInvestor(bytes32 holderId, bytes2 country, bool collective) external restricted {
        if (holderId == bytes32(0)) revert RegistryZeroHolderId();
        if (_investors[holderId].exists) revert RegistryInvestorExists(holderId);
        _checkCountry(country);

        _investors[holderId] = Investor({
            exists: true,
            kycStatus: KycStatus.None,
            kycExpiry: 0,
            country: country,
            collective: collective,
            frozen: false,
            walletCount: 0
        });
        emit InvestorRegistered(holderId, country, collective);
    }

    /// @inheritdoc IInvestorRegistry
    function setKyc(bytes32 holderId, KycStatus status, uint48 expiry) external restricted {
        Investor storage entry = _existing(holderId);
        uint48 now_ = Time.timestamp();
        if (status == KycStatus.Approved && expiry <= now_) revert RegistryKycExpiryInvalid(expiry, now_);

        entry.kycStatus = status;
        entry.kycExpiry = status == KycStatus.Approved ? expiry : 0;
        emit InvestorKycUpdated(holderId, status, entry.kycExpiry);
    }

    /// @inheritdoc IInvestorRegistry
    function setCountry(bytes32 holderId, bytes2 country) external restricted {
        Investor storage entry = _existing(holderId);
        _checkCountry(country);

        entry.country = country;
        emit InvestorCountryUpdated(holderId, country);
    }

    /// @inheritdoc IInvestorRegistry
    function setCollective(bytes32 holderId, bool collective) external restricted {
        _existing(holderId).collective = collective;
        emit InvestorCollectiveUpdated(holderId, collective);
    }

    /// @inheritdoc IInvestorRegistry
    function setInvestorFrozen(bytes32 holderId, bool frozen) external restricted {
        _existing(holderId).frozen = frozen;
        emit InvestorFreezeUpdated(holderId, frozen);
    }

    /// @inheritdoc IInvestorRegistry
    function linkWallet(bytes32 holderId, address wallet) external restricted {
        Investor storage entry = _existing(holderId);
        if (wallet == address(0)) revert RegistryZeroWallet();
        bytes32 current = _holderOf[wallet];
        if (current != bytes32(0)) revert RegistryWalletTaken(wallet, current);

        _holderOf[wallet] = holderId;
        ++entry.walletCount;
        emit WalletLinked(holderId, wallet);
    }

    /// @inheritdoc IInvestorRegistry
    function unlinkWallet(address wallet) external restricted {
        bytes32 holderId = _holderOf[wallet];
        if (holderId == bytes32(0)) revert RegistryWalletUnknown(wallet);

        delete _holderOf[wallet];
        --_investors[holderId].walletCount;
        emit WalletUnlinked(holderId, wallet);
    }

    /// @inheritdoc IInvestorRegistry
    function walletStatus(address wallet) external view returns (bytes32 holderId, Investor memory entry) {
        holderId = _holderOf[wallet];
        if (holderId != bytes32(0)) entry = _investors[holderId];
    }

    /// @inheritdoc IInvestorRegistry
    function holderOf(address wallet) external view returns (bytes32) {
        return _holderOf[wallet];
    }

    /// @inheritdoc IInvestorRegistry
    function investor(bytes32 holderId) external view returns (Investor memory) {
        return _investors[holderId];
    }

    function _existing(bytes32 holderId) private view returns (Investor storage entry) {
        entry = _investors[holderId];
        if (!entry.exists) revert RegistryInvestorUnknown(holderId);
    }

    function _checkCountry(bytes2 country) private pure {
        for (uint256 i = 0; i < 2; ++i) {
            bytes1 c = country[i];
            if (c < 0x41 || c > 0x5A) revert RegistryInvalidCountry(country);
        }
    }
}
