// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

/// @title IInvestorRegistry
/// @notice Who may hold register entries. An investor has a unique holder identifier (e.g. a hash of the LEI or of
/// the customer file number), a KYC status with expiry, a country of residence, a freeze flag, a mark for
/// collective-entry holders (custodians and central securities depositories) and one or more wallets. A wallet
/// belongs to at most one investor.
/// @dev Maintained by the compliance officer through the permission matrix. The register reads {walletStatus} on every
/// movement; an expired KYC makes a wallet ineligible without any transaction.
interface IInvestorRegistry {
    /// @notice Result of the customer due diligence.
    enum KycStatus {
        None,
        Pending,
        Approved,
        Rejected,
        Revoked
    }

    /// @notice One investor; fits one storage slot.
    struct Investor {
        bool exists;
        KycStatus kycStatus;
        uint48 kycExpiry;
        bytes2 country;
        bool collective;
        bool frozen;
        uint32 walletCount;
    }

    /// @notice An investor was entered with its holder identifier.
    event InvestorRegistered(bytes32 indexed holderId, bytes2 country, bool collective);
    /// @notice The investor's KYC status or expiry changed.
    event InvestorKycUpdated(bytes32 indexed holderId, KycStatus status, uint48 expiry);
    /// @notice The investor's country of residence changed.
    event InvestorCountryUpdated(bytes32 indexed holderId, bytes2 country);
    /// @notice The investor was marked (or unmarked) as a collective-entry holder.
    event InvestorCollectiveUpdated(bytes32 indexed holderId, bool collective);
    /// @notice The investor was frozen or unfrozen; a frozen investor neither sends nor receives.
    event InvestorFreezeUpdated(bytes32 indexed holderId, bool frozen);
    /// @notice `wallet` now belongs to the investor.
    event WalletLinked(bytes32 indexed holderId, address indexed wallet);
    /// @notice `wallet` no longer belongs to the investor.
    event WalletUnlinked(bytes32 indexed holderId, address indexed wallet);

    /// @notice The holder identifier must not be zero.
    error RegistryZeroHolderId();
    /// @notice An investor with `holderId` already exists.
    error RegistryInvestorExists(bytes32 holderId);
    /// @notice No investor has `holderId`.
    error RegistryInvestorUnknown(bytes32 holderId);
    /// @notice `country` is not two uppercase ASCII letters (ISO 3166-1 alpha-2).
    error RegistryInvalidCountry(bytes2 country);
    /// @notice An approved KYC needs an expiry after `now`; `expiry` is not.
    error RegistryKycExpiryInvalid(uint48 expiry, uint48 now);
    /// @notice The zero address cannot be a wallet.
    error RegistryZeroWallet();
    /// @notice `wallet` already belongs to investor `holderId`.
    error RegistryWalletTaken(address wallet, bytes32 holderId);
    /// @notice `wallet` belongs to no investor.
    error RegistryWalletUnknown(address wallet);

    /// @notice Enters a new investor with KYC status `None`.
    function registerInvestor(bytes32 holderId, bytes2 country, bool collective) external;

    /// @notice Records the KYC outcome. `Approved` needs an expiry in the future; other statuses ignore the expiry.
    function setKyc(bytes32 holderId, KycStatus status, uint48 expiry) external;

    /// @notice Changes the country of residence.
    function setCountry(bytes32 holderId, bytes2 country) external;

    /// @notice Marks the investor as collective-entry holder (custodian, CSD) or not.
    function setCollective(bytes32 holderId, bool collective) external;

    /// @notice Freezes or unfreezes every wallet of the investor.
    function setInvestorFrozen(bytes32 holderId, bool frozen) external;

    /// @notice Adds `wallet` to the investor.
    function linkWallet(bytes32 holderId, address wallet) external;

    /// @notice Removes `wallet` from its investor. Holdings stay on the wallet but can no longer move until the
    /// wallet is linked again or the register keeper recovers or force-transfers them.
    function unlinkWallet(address wallet) external;

    /// @notice The investor owning `wallet` (zero id when none) and its record.
    function walletStatus(address wallet) external view returns (bytes32 holderId, Investor memory record);

    /// @notice The investor owning `wallet`, or zero.
    function holderOf(address wallet) external view returns (bytes32);

    /// @notice The record of investor `holderId` (`exists` false when unknown).
    function investor(bytes32 holderId) external view returns (Investor memory);
}
