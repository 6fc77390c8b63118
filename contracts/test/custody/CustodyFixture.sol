// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {IAccessManager} from "@openzeppelin/contracts/access/manager/IAccessManager.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

import {Roles} from "../../src/access/Roles.sol";
import {Custody} from "../../src/custody/Custody.sol";
import {ICustody} from "../../src/custody/ICustody.sol";
import {Fixture} from "../utils/Fixture.sol";

/// @notice Cheatcodes the custody tests need beyond the shared {Vm} subset; same cheatcode address.
interface VmCustody {
    function envOr(string calldata name, string calldata defaultValue) external view returns (string memory);
    function envOr(string calldata name, bytes calldata defaultValue) external view returns (bytes memory);
    function expectEmit(bool checkTopic1, bool checkTopic2, bool checkTopic3, bool checkData, address emitter) external;
}

/// @notice A plain OpenZeppelin ERC-20 with open minting, the custody tests' cash-like asset.
contract MockToken is ERC20 {
    constructor(string memory name_) ERC20(name_, name_) {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}

/// @notice An ERC-20 that keeps one percent of every transfer, to show that custody refuses such tokens.
contract FeeToken is ERC20 {
    constructor() ERC20("Fee", "FEE") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function _update(address from, address to, uint256 value) internal override {
        if (from == address(0) || to == address(0)) return super._update(from, to, value);
        uint256 fee = value / 100;
        super._update(from, address(0xFEE), fee);
        super._update(from, to, value - fee);
    }
}

/// @notice The register fixture plus a custody contract wired into the access manager the way a deployment after
/// bootstrap does it (four eyes for every matrix change), from `test/custody/custody.matrix.json`; three custody
/// approvers, a second custody officer, two client accounts, a cash-like ERC-20 and the register's security as assets.
abstract contract CustodyFixture is Fixture {
    VmCustody internal constant vmx = VmCustody(address(uint160(uint256(keccak256("hevm cheat code")))));

    bytes32 internal constant CLIENT_A = keccak256("client:a");
    bytes32 internal constant CLIENT_B = keccak256("client:b");
    bytes32 internal constant TRAVEL = keccak256("travel-rule record 1");

    uint8 internal constant APPROVALS = 2;
    uint32 internal constant DELAY = 1 days;
    uint128 internal constant LIMIT = 1_000 ether;
    uint128 internal constant THRESHOLD = 100 ether;
    uint128 internal constant SEC_LIMIT = 10_000;
    uint128 internal constant SEC_THRESHOLD = 1_000;

    Custody internal custody;
    MockToken internal usd;

    address internal approver2 = vm.addr(0xC16);
    address internal approver3 = vm.addr(0xC26);
    address internal officer2 = vm.addr(0xC15);
    address internal payee = vm.addr(0xBE1);
    address internal payee2 = vm.addr(0xBE2);

    function setUp() public virtual override {
        super.setUp();
        custody = new Custody(address(manager));
        usd = new MockToken("USD");
        vm.label(address(custody), "custody");
        vm.label(address(usd), "usd");

        _wireCustody();
        _fourEyes(abi.encodeCall(IAccessManager.grantRole, (Roles.CUSTODY_APPROVER, approver2, 0)));
        _fourEyes(abi.encodeCall(IAccessManager.grantRole, (Roles.CUSTODY_APPROVER, approver3, 0)));
        _fourEyes(abi.encodeCall(IAccessManager.grantRole, (Roles.CUSTODY_OFFICER, officer2, 0)));

        // The custody contract is a wallet of the custodian (a collective-entry holder) in the investor registry.
        vm.prank(compliance);
        registry.linkWallet(CUSTODIAN_ID, address(custody));

        vm.startPrank(admin);
        custody.setAssetPolicy(address(usd), true, APPROVALS, DELAY, LIMIT, THRESHOLD);
        custody.setAssetPolicy(address(token), true, APPROVALS, DELAY, SEC_LIMIT, SEC_THRESHOLD);
        vm.stopPrank();

        vm.startPrank(custodyOfficer);
        custody.openAccount(CLIENT_A);
        custody.openAccount(CLIENT_B);
        vm.stopPrank();
    }

    // ---------------------------------------------------------------- wiring

    function _custodyJson() internal view returns (string memory) {
        return vm.readFile(string.concat(vm.projectRoot(), "/custody.matrix.json"));
    }

    function _custodyFunctions() internal view returns (FunctionSpec[] memory) {
        return abi.decode(vm.parseJson(_custodyJson(), ".functions"), (FunctionSpec[]));
    }

    /// @dev One proposal per (target, selector): the access manager's four-eyes path, as after bootstrap.
    function _wireCustody() internal {
        FunctionSpec[] memory functions = _custodyFunctions();
        for (uint256 i = 0; i < functions.length; ++i) {
            bytes4[] memory selectors = new bytes4[](1);
            selectors[0] = bytes4(keccak256(bytes(functions[i].signature)));
            _fourEyes(
                abi.encodeCall(
                    IAccessManager.setTargetFunctionRole, (address(custody), selectors, _roleId(functions[i].role))
                )
            );
        }
    }

    function _fourEyes(bytes memory data) internal {
        vm.prank(admin);
        uint256 id = manager.propose(data);
        vm.prank(admin2);
        manager.approve(id, data);
    }

    // --------------------------------------------------------------- helpers

    function _deposit(bytes32 clientId, uint256 amount) internal {
        usd.mint(custodyOfficer, amount);
        vm.startPrank(custodyOfficer);
        usd.approve(address(custody), amount);
        custody.deposit(clientId, address(usd), amount);
        vm.stopPrank();
    }

    function _setDestination(bytes32 clientId, address destination, bool allowed) internal {
        vm.prank(custodyOfficer);
        uint256 changeId = custody.proposeDestination(clientId, destination, allowed);
        vm.prank(custodyApprover);
        custody.approveChange(changeId);
    }

    function _allocate(bytes32 clientId, address asset, uint256 amount) internal {
        vm.prank(custodyOfficer);
        uint256 changeId = custody.proposeAllocation(clientId, asset, amount);
        vm.prank(custodyApprover);
        custody.approveChange(changeId);
    }

    function _request(bytes32 clientId, address asset, uint256 amount, address destination)
        internal
        returns (uint256 id)
    {
        vm.prank(custodyOfficer);
        id = custody.requestWithdrawal(clientId, asset, amount, destination, TRAVEL);
    }

    function _approveAll(uint256 id) internal {
        vm.prank(custodyApprover);
        custody.approveWithdrawal(id);
        vm.prank(approver2);
        custody.approveWithdrawal(id);
    }

    function _execute(uint256 id) internal {
        vm.prank(custodyOfficer);
        custody.executeWithdrawal(id);
    }

    /// @dev A funded client A with `payee` in its address book.
    function _funded(uint256 amount) internal {
        _deposit(CLIENT_A, amount);
        _setDestination(CLIENT_A, payee, true);
    }

    function _position(bytes32 clientId, address asset) internal view returns (uint256 balance, uint256 reserved) {
        (balance, reserved,) = custody.position(clientId, asset);
    }

    function _notExecutable(uint256 id, ICustody.ExecutionCheck reason) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(ICustody.CustodyWithdrawalNotExecutable.selector, id, reason);
    }
}
