// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

import {IInstructionBook} from "../../src/register/IInstructionBook.sol";
import {ISecuritiesRegister} from "../../src/register/ISecuritiesRegister.sol";
import {Fixture} from "../utils/Fixture.sol";

/// @dev Plain OpenZeppelin ERC-20, the baseline.
contract PlainToken is ERC20 {
    constructor() ERC20("Plain", "PLN") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}

/// @dev The parts of the ERC-3643 (T-REX 4.1.6) and ONCHAINID contracts the benchmark calls.
interface ITrexInit {
    function init() external;
    function addAgent(address agent) external;
}

interface ITrexToken {
    function init(
        address ir,
        address compliance,
        string calldata name,
        string calldata symbol,
        uint8 decimals,
        address onchainId
    ) external;
    function addAgent(address agent) external;
    function unpause() external;
    function mint(address to, uint256 amount) external;
    function transfer(address to, uint256 amount) external returns (bool);
    function balanceOf(address account) external view returns (uint256);
}

interface ITrexIdentityRegistry {
    function init(address trustedIssuers, address claimTopics, address identityStorage) external;
    function addAgent(address agent) external;
    function registerIdentity(address user, address identity, uint16 country) external;
    function isVerified(address user) external view returns (bool);
}

interface ITrexStorage {
    function init() external;
    function bindIdentityRegistry(address identityRegistry) external;
}

interface ITrexTopics {
    function init() external;
    function addClaimTopic(uint256 topic) external;
}

interface ITrexIssuers {
    function init() external;
    function addTrustedIssuer(address issuer, uint256[] calldata topics) external;
}

interface IOnchainIdentity {
    function addClaim(
        uint256 topic,
        uint256 scheme,
        address issuer,
        bytes calldata signature,
        bytes calldata data,
        string calldata uri
    ) external returns (bytes32);
}

/// @notice Gas of register operations next to a plain ERC-20 transfer and an ERC-3643 (T-REX) transfer, measured in
/// the same run. Each figure is its own test so that every account and slot starts cold, as in a fresh transaction;
/// figures are execution gas of the measured call (no 21,000 intrinsic gas, no calldata gas). `scripts/gas-bench`
/// turns the logged figures into a table.
contract GasBench is Fixture {
    event log_named_uint(string key, uint256 val);

    string internal constant TREX = "../node_modules/@tokenysolutions/t-rex/artifacts/";
    uint256 internal constant KYC_TOPIC = 1;
    uint256 internal constant CLAIM_SIGNER_KEY = 0xC1A1;

    PlainToken internal plain;
    ITrexToken internal trex;

    function setUp() public override {
        super.setUp();
        _issue(alice, 1_000);
        plain = new PlainToken();
        plain.mint(alice, 1_000);
        _setUpTrex();
    }

    // ---------------------------------------------------------------- figures

    function test_gas_ecropIssue() public {
        _consentTo(abi.encodeCall(ISecuritiesRegister.issue, (ISIN, bob, 100)));
        _coolAll();
        vm.prank(keeper);
        uint256 start = gasleft();
        register.issue(ISIN, bob, 100);
        emit log_named_uint("gas.ecrop.issue", start - gasleft());
    }

    function test_gas_ecropTransfer() public {
        vm.prank(alice);
        uint256 start = gasleft();
        token.transfer(bob, 100);
        emit log_named_uint("gas.ecrop.transfer", start - gasleft());
        assertEq(token.balanceOf(bob), 100);
    }

    function test_gas_ecropInstructedTransfer() public {
        IInstructionBook.Instruction memory instruction = IInstructionBook.Instruction({
            isin: ISIN, from: alice, to: bob, amount: 100, nonce: 0, deadline: block.timestamp + 1 days
        });
        bytes memory signature = _signInstruction(ALICE_KEY, instruction);
        IInstructionBook.Queued[] memory batch = new IInstructionBook.Queued[](1);
        batch[0] = IInstructionBook.Queued({instruction: instruction, receivedAt: uint48(block.timestamp)});

        vm.prank(keeper);
        uint256 start = gasleft();
        book.submit(instruction, signature);
        uint256 submitted = start - gasleft();
        _coolAll();
        vm.prank(keeper);
        start = gasleft();
        book.executeNext(batch);
        uint256 executed = start - gasleft();

        emit log_named_uint("gas.ecrop.instructed.submit", submitted);
        emit log_named_uint("gas.ecrop.instructed.execute", executed);
        emit log_named_uint("gas.ecrop.instructed", submitted + executed);
        assertEq(token.balanceOf(bob), 100);
    }

    function test_gas_plainErc20Transfer() public {
        vm.prank(alice);
        uint256 start = gasleft();
        plain.transfer(bob, 100);
        emit log_named_uint("gas.oz.transfer", start - gasleft());
    }

    function test_gas_trexTransfer() public {
        vm.prank(alice);
        uint256 start = gasleft();
        trex.transfer(bob, 100);
        emit log_named_uint("gas.trex.transfer", start - gasleft());
        assertEq(trex.balanceOf(bob), 100);
    }

    // ---------------------------------------------------------------- helpers

    function _coolAll() internal {
        vm.cool(address(register));
        vm.cool(address(registry));
        vm.cool(address(book));
        vm.cool(address(token));
        vm.cool(address(manager));
    }

    function _deploy(string memory artifact, bytes memory args) internal returns (address deployed) {
        bytes memory code = vm.parseJsonBytes(vm.readFile(string.concat(TREX, artifact)), ".bytecode");
        bytes memory initCode = abi.encodePacked(code, args);
        assembly ("memory-safe") {
            deployed := create(0, add(initCode, 0x20), mload(initCode))
        }
        require(deployed != address(0), string.concat("deployment failed: ", artifact));
    }

    /// @dev The T-REX suite wired as its documentation describes: claim topics and trusted issuers registries, an
    /// identity registry over its storage, a modular compliance without modules, the token bound to both, an agent;
    /// every investor gets an ONCHAINID identity with a KYC claim signed by the trusted claim issuer.
    function _setUpTrex() internal {
        address topics =
            _deploy("contracts/registry/implementation/ClaimTopicsRegistry.sol/ClaimTopicsRegistry.json", "");
        address issuers =
            _deploy("contracts/registry/implementation/TrustedIssuersRegistry.sol/TrustedIssuersRegistry.json", "");
        address store =
            _deploy("contracts/registry/implementation/IdentityRegistryStorage.sol/IdentityRegistryStorage.json", "");
        address identities = _deploy("contracts/registry/implementation/IdentityRegistry.sol/IdentityRegistry.json", "");
        address compliance_ = _deploy("contracts/compliance/modular/ModularCompliance.sol/ModularCompliance.json", "");
        trex = ITrexToken(_deploy("contracts/token/Token.sol/Token.json", ""));
        address claimSigner = vm.addr(CLAIM_SIGNER_KEY);
        address claimIssuer =
            _deploy("@onchain-id/solidity/contracts/ClaimIssuer.sol/ClaimIssuer.json", abi.encode(claimSigner));

        ITrexTopics(topics).init();
        ITrexTopics(topics).addClaimTopic(KYC_TOPIC);
        ITrexIssuers(issuers).init();
        uint256[] memory claimTopics = new uint256[](1);
        claimTopics[0] = KYC_TOPIC;
        ITrexIssuers(issuers).addTrustedIssuer(claimIssuer, claimTopics);
        ITrexStorage(store).init();
        ITrexIdentityRegistry(identities).init(issuers, topics, store);
        ITrexStorage(store).bindIdentityRegistry(identities);
        ITrexInit(compliance_).init();
        trex.init(identities, compliance_, "T-REX bench", "TRX", 0, address(0));
        trex.addAgent(address(this));
        ITrexIdentityRegistry(identities).addAgent(address(this));

        _trexInvestor(identities, claimIssuer, alice, 276);
        _trexInvestor(identities, claimIssuer, bob, 250);
        trex.unpause();
        trex.mint(alice, 1_000);
    }

    function _trexInvestor(address identities, address claimIssuer, address wallet, uint16 country) internal {
        address identity =
            _deploy("@onchain-id/solidity/contracts/Identity.sol/Identity.json", abi.encode(wallet, false));
        bytes memory data = abi.encode("KYC approved");
        bytes32 digest = keccak256(
            abi.encodePacked("\x19Ethereum Signed Message:\n32", keccak256(abi.encode(identity, KYC_TOPIC, data)))
        );
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(CLAIM_SIGNER_KEY, digest);
        vm.prank(wallet);
        IOnchainIdentity(identity).addClaim(KYC_TOPIC, 1, claimIssuer, abi.encodePacked(r, s, v), data, "");
        ITrexIdentityRegistry(identities).registerIdentity(wallet, identity, country);
        require(ITrexIdentityRegistry(identities).isVerified(wallet), "T-REX investor not verified");
    }
}
