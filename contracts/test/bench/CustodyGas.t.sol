// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {CustodyFixture} from "../custody/CustodyFixture.sol";

/// @dev The parts of Safe (safe-smart-account 1.5.0) the benchmark calls.
interface ISafe {
    function setup(
        address[] calldata owners,
        uint256 threshold,
        address to,
        bytes calldata data,
        address fallbackHandler,
        address paymentToken,
        uint256 payment,
        address paymentReceiver
    ) external;

    function execTransaction(
        address to,
        uint256 value,
        bytes calldata data,
        uint8 operation,
        uint256 safeTxGas,
        uint256 baseGas,
        uint256 gasPrice,
        address gasToken,
        address refundReceiver,
        bytes calldata signatures
    ) external payable returns (bool);

    function getTransactionHash(
        address to,
        uint256 value,
        bytes calldata data,
        uint8 operation,
        uint256 safeTxGas,
        uint256 baseGas,
        uint256 gasPrice,
        address gasToken,
        address refundReceiver,
        uint256 nonce
    ) external view returns (bytes32);

    function nonce() external view returns (uint256);
}

interface ISafeProxyFactory {
    function createProxyWithNonce(address singleton, bytes calldata initializer, uint256 saltNonce)
        external
        returns (address proxy);
}

/// @notice Gas of custody deposit, request, approve and execute next to a plain OpenZeppelin ERC-20 transfer and a
/// Safe 2-of-3 execution of the same transfer, measured in one run. Each figure is its own test, and every touched
/// account is cooled before a measured call, so figures are those of a fresh transaction: execution gas of the call,
/// without the 21,000 intrinsic gas and calldata. `scripts/custody-gas-bench` turns the logged figures into a table.
/// @dev Safe's bytecode comes from the npm package's build artifacts, handed in by the script through
/// `SAFE_SINGLETON_CODE` and `SAFE_FACTORY_CODE` (forge's file permissions do not reach that package); without them
/// the Safe figure is simply not logged and the script reports it missing.
contract CustodyGas is CustodyFixture {
    event log_named_uint(string key, uint256 val);

    uint256 internal constant AMOUNT = 10 ether;
    uint256 internal constant OWNER1 = 0x5AFE1;
    uint256 internal constant OWNER2 = 0x5AFE2;
    uint256 internal constant OWNER3 = 0x5AFE3;

    function setUp() public override {
        super.setUp();
        // Both sides already hold the asset, as they would in steady operation.
        usd.mint(alice, 1_000 ether);
        usd.mint(payee, 1 ether);
        _setLock(type(uint128).max);
    }

    // ---------------------------------------------------------------- figures

    function test_gas_plainErc20Transfer() public {
        _cool();
        vm.prank(alice);
        uint256 start = gasleft();
        usd.transfer(payee, AMOUNT);
        emit log_named_uint("gas.oz.transfer", start - gasleft());
    }

    function test_gas_custodyDeposit() public {
        _deposit(CLIENT_B, 1 ether);
        usd.mint(custodyOfficer, AMOUNT);
        vm.prank(custodyOfficer);
        usd.approve(address(custody), AMOUNT);
        _cool();
        vm.prank(custodyOfficer);
        uint256 start = gasleft();
        custody.deposit(CLIENT_A, address(usd), AMOUNT);
        emit log_named_uint("gas.custody.deposit", start - gasleft());
    }

    function test_gas_custodyFlow() public {
        _funded(100 ether);
        // An earlier executed withdrawal today, as in steady operation (the day's usage slot exists).
        _approveAndExecute(_request(CLIENT_A, address(usd), 1 ether, payee));

        _cool();
        vm.prank(custodyOfficer);
        uint256 start = gasleft();
        uint256 id = custody.requestWithdrawal(CLIENT_A, address(usd), AMOUNT, payee, TRAVEL);
        uint256 requested = start - gasleft();

        _cool();
        vm.prank(custodyApprover);
        start = gasleft();
        custody.approveWithdrawal(id);
        uint256 firstApproval = start - gasleft();

        _cool();
        vm.prank(approver2);
        start = gasleft();
        custody.approveWithdrawal(id);
        uint256 lastApproval = start - gasleft();

        _cool();
        vm.prank(custodyOfficer);
        start = gasleft();
        custody.executeWithdrawal(id);
        uint256 executed = start - gasleft();

        emit log_named_uint("gas.custody.request", requested);
        emit log_named_uint("gas.custody.approve.first", firstApproval);
        emit log_named_uint("gas.custody.approve.last", lastApproval);
        emit log_named_uint("gas.custody.execute", executed);
        emit log_named_uint("gas.custody.total", requested + firstApproval + lastApproval + executed);
        assertEq(usd.balanceOf(payee), 1 ether + 1 ether + AMOUNT);
    }

    /// @dev Safe 2-of-3 holding the asset; one owner relays `execTransaction` with two owners' signatures, which are
    /// collected off-chain.
    function test_gas_safeTwoOfThreeTransfer() public {
        string memory none = "";
        bytes memory singletonCode = vmx.envOr("SAFE_SINGLETON_CODE", bytes(none));
        bytes memory factoryCode = vmx.envOr("SAFE_FACTORY_CODE", bytes(none));
        if (singletonCode.length == 0 || factoryCode.length == 0) return;

        address singleton = _create(singletonCode);
        ISafeProxyFactory factory = ISafeProxyFactory(_create(factoryCode));
        address[] memory owners = new address[](3);
        owners[0] = vm.addr(OWNER1);
        owners[1] = vm.addr(OWNER2);
        owners[2] = vm.addr(OWNER3);
        bytes memory init =
            abi.encodeCall(ISafe.setup, (owners, 2, address(0), "", address(0), address(0), 0, address(0)));
        ISafe safe = ISafe(factory.createProxyWithNonce(singleton, init, 0));
        usd.mint(address(safe), 1_000 ether);

        bytes memory data = abi.encodeCall(IERC20.transfer, (payee, AMOUNT));
        bytes32 hash = safe.getTransactionHash(address(usd), 0, data, 0, 0, 0, 0, address(0), address(0), safe.nonce());
        bytes memory signatures = _sortedSignatures(hash, OWNER1, OWNER2);

        _cool();
        vm.cool(address(safe));
        vm.cool(singleton);
        vm.prank(owners[0]);
        uint256 start = gasleft();
        safe.execTransaction(address(usd), 0, data, 0, 0, 0, 0, address(0), address(0), signatures);
        emit log_named_uint("gas.safe.exec", start - gasleft());
        assertEq(usd.balanceOf(payee), 1 ether + AMOUNT);
    }

    // ---------------------------------------------------------------- helpers

    function _cool() internal {
        vm.cool(address(custody));
        vm.cool(address(usd));
        vm.cool(address(manager));
    }

    function _setLock(uint128 threshold) internal {
        vm.prank(admin);
        custody.setAssetPolicy(address(usd), true, APPROVALS, DELAY, LIMIT, threshold);
    }

    function _approveAndExecute(uint256 id) internal {
        _approveAll(id);
        _execute(id);
    }

    function _create(bytes memory code) internal returns (address deployed) {
        assembly ("memory-safe") {
            deployed := create(0, add(code, 0x20), mload(code))
        }
        require(deployed != address(0), "Safe deployment failed");
    }

    /// @dev Safe wants signatures ordered by signer address, ascending.
    function _sortedSignatures(bytes32 hash, uint256 keyA, uint256 keyB) internal pure returns (bytes memory) {
        if (vm.addr(keyA) > vm.addr(keyB)) (keyA, keyB) = (keyB, keyA);
        (uint8 va, bytes32 ra, bytes32 sa) = vm.sign(keyA, hash);
        (uint8 vb, bytes32 rb, bytes32 sb) = vm.sign(keyB, hash);
        return abi.encodePacked(ra, sa, va, rb, sb, vb);
    }
}
