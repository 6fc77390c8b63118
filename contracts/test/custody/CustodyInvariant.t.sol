// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {Custody} from "../../src/custody/Custody.sol";
import {ICustody} from "../../src/custody/ICustody.sol";
import {ISecuritiesRegister} from "../../src/register/ISecuritiesRegister.sol";
import {Test} from "../utils/Test.sol";
import {CustodyFixture, MockToken} from "./CustodyFixture.sol";

/// @notice Drives random sequences of deposits, plain transfers and register entries to the custody contract,
/// allocations, address-book changes, requests, approvals (including by the requester and by non-approvers),
/// cancellations, retractions, executions, freezes, pauses and time. Operations that the rules refuse are still
/// attempted and must then revert without effect.
contract CustodyHandler is Test {
    bytes12 internal constant ISIN = "DE0007164600";
    uint256 internal constant WINDOW = 1 days;

    Custody internal custody;
    ISecuritiesRegister internal register;
    MockToken internal usd;
    address internal token;
    address internal officer;
    address internal compliance;
    address internal admin;
    address internal keeper;
    address internal issuer;

    bytes32[] internal clients;
    address[] internal approvers;
    address[] internal payees;

    /// @notice Net amount of each asset that entered the contract by any path, minus what left by execution.
    mapping(address asset => uint256) public ghostHeld;
    /// @notice What was executed per asset and UTC day.
    mapping(address asset => mapping(uint256 day => uint256)) public ghostOut;
    /// @notice Days on which something was executed, per asset.
    mapping(address asset => uint256[]) internal _days;

    mapping(bytes32 op => uint256) public successes;

    constructor(
        Custody custody_,
        ISecuritiesRegister register_,
        MockToken usd_,
        address token_,
        address[8] memory accounts,
        bytes32[] memory clients_,
        address[] memory payees_
    ) {
        custody = custody_;
        register = register_;
        usd = usd_;
        token = token_;
        officer = accounts[0];
        compliance = accounts[1];
        admin = accounts[2];
        keeper = accounts[3];
        issuer = accounts[4];
        approvers.push(accounts[5]);
        approvers.push(accounts[6]);
        approvers.push(accounts[7]);
        // The requester is tried as approver too: it must always be refused.
        approvers.push(officer);
        clients = clients_;
        payees = payees_;
    }

    // --------------------------------------------------------------- inflow

    function deposit(uint256 clientSeed, uint256 amount) external {
        amount = bound(amount, 1, 500 ether);
        usd.mint(officer, amount);
        vm.startPrank(officer);
        usd.approve(address(custody), amount);
        try custody.deposit(_client(clientSeed), address(usd), amount) {
            ghostHeld[address(usd)] += amount;
            ++successes["deposit"];
        } catch {}
        vm.stopPrank();
    }

    function transferIn(uint256 amount) external {
        amount = bound(amount, 1, 100 ether);
        usd.mint(address(custody), amount);
        ghostHeld[address(usd)] += amount;
        ++successes["transferIn"];
    }

    function issueIn(uint256 amount) external {
        amount = bound(amount, 1, 2_000);
        bytes memory callData = abi.encodeCall(ISecuritiesRegister.issue, (ISIN, address(custody), amount));
        bytes32 digest = register.consentDigest(callData);
        vm.prank(issuer);
        register.consent(digest);
        vm.prank(keeper);
        (bool ok,) = address(register).call(callData);
        if (ok) {
            ghostHeld[token] += amount;
            ++successes["issueIn"];
        } else {
            vm.prank(issuer);
            register.revokeConsent(digest);
        }
    }

    function allocate(uint256 clientSeed, bool security, uint256 amount, uint256 approverSeed) external {
        address asset = security ? token : address(usd);
        uint256 free = custody.unallocated(asset);
        if (free == 0) return;
        amount = bound(amount, 1, free);
        vm.prank(officer);
        try custody.proposeAllocation(_client(clientSeed), asset, amount) returns (uint256 changeId) {
            vm.prank(_approver(approverSeed));
            try custody.approveChange(changeId) {
                ++successes["allocate"];
            } catch {}
        } catch {}
    }

    // ---------------------------------------------------------- address book

    /// @dev Removes one time in four and adds otherwise.
    function setDestination(uint256 clientSeed, uint256 payeeSeed, uint256 mode, uint256 approverSeed) external {
        vm.prank(officer);
        try custody.proposeDestination(_client(clientSeed), payees[payeeSeed % payees.length], mode % 4 != 1) returns (
            uint256 changeId
        ) {
            // Only real approvers here: the proposer's refusal is covered by the unit tests.
            vm.prank(approvers[approverSeed % 3]);
            try custody.approveChange(changeId) {
                ++successes["destination"];
            } catch {}
        } catch {}
    }

    // ----------------------------------------------------------- withdrawals

    /// @dev Mostly within the client's available balance and to a destination in its address book, so that
    /// requests get through often enough; sometimes beyond, which must fail.
    function request(uint256 clientSeed, bool security, uint256 amount, uint256 payeeSeed) external {
        address asset = security ? token : address(usd);
        bytes32 clientId = _client(clientSeed);
        (,, uint256 available) = custody.position(clientId, asset);
        uint256 cap = security ? 1_500 : 150 ether;
        if (available != 0 && available < cap && amount % 8 != 0) cap = available;
        amount = bound(amount, 1, cap);
        address[] memory book = custody.destinations(clientId);
        address destination =
            book.length == 0 || payeeSeed % 8 == 0 ? payees[payeeSeed % payees.length] : book[payeeSeed % book.length];
        vm.prank(officer);
        try custody.requestWithdrawal(clientId, asset, amount, destination, keccak256(abi.encode(amount))) {
            ++successes["request"];
        } catch {}
    }

    function approve(uint256 idSeed, uint256 approverSeed) external {
        uint256 id = _find(idSeed, ICustody.WithdrawalStatus.Pending);
        if (id == 0) return;
        address approver = _approver(approverSeed);
        vm.prank(approver);
        try custody.approveWithdrawal(id) {
            require(approver != custody.withdrawal(id).requester, "requester approved");
            ++successes["approve"];
        } catch {}
    }

    function cancel(uint256 idSeed) external {
        uint256 id = _id(idSeed);
        if (id == 0) return;
        vm.prank(compliance);
        try custody.cancelWithdrawal(id, keccak256("handler")) {
            ++successes["cancel"];
        } catch {}
    }

    function retract(uint256 idSeed) external {
        uint256 id = _id(idSeed);
        if (id == 0) return;
        vm.prank(officer);
        try custody.retractWithdrawal(id) {
            ++successes["retract"];
        } catch {}
    }

    /// @dev Picks an approved withdrawal and, half of the time, waits for its unlock first.
    function execute(uint256 idSeed, bool wait) external {
        uint256 id = _find(idSeed, ICustody.WithdrawalStatus.Approved);
        if (id == 0) return;
        ICustody.Withdrawal memory w = custody.withdrawal(id);
        if (wait && w.unlockAt > block.timestamp) vm.warp(w.unlockAt);
        vm.prank(officer);
        try custody.executeWithdrawal(id) {
            uint256 day = block.timestamp / WINDOW;
            if (ghostOut[w.asset][day] == 0) _days[w.asset].push(day);
            ghostOut[w.asset][day] += w.amount;
            ghostHeld[w.asset] -= w.amount;
            ++successes["execute"];
        } catch {}
    }

    // -------------------------------------------------------------- controls

    /// @dev Freezes one time in four and unfreezes otherwise, so that most of the run sees open accounts.
    function freeze(uint256 clientSeed, uint256 mode) external {
        vm.prank(compliance);
        try custody.setClientFrozen(_client(clientSeed), mode % 4 == 1) {
            ++successes["freeze"];
        } catch {}
    }

    /// @dev Pauses one time in eight and resumes otherwise.
    function pause(uint256 mode) external {
        vm.prank(admin);
        try custody.setPaused(mode % 8 == 1) {
            ++successes["pause"];
        } catch {}
    }

    function warp(uint256 seconds_) external {
        vm.warp(block.timestamp + bound(seconds_, 1, 2 days));
    }

    // --------------------------------------------------------------- helpers

    function clientCount() external view returns (uint256) {
        return clients.length;
    }

    function clientAt(uint256 i) external view returns (bytes32) {
        return clients[i];
    }

    function dayCount(address asset) external view returns (uint256) {
        return _days[asset].length;
    }

    function dayAt(address asset, uint256 i) external view returns (uint256) {
        return _days[asset][i];
    }

    function _client(uint256 seed) internal view returns (bytes32) {
        return clients[seed % clients.length];
    }

    function _approver(uint256 seed) internal view returns (address) {
        return approvers[seed % approvers.length];
    }

    /// @dev Any withdrawal id, or 0 when there is none.
    function _id(uint256 seed) internal view returns (uint256) {
        uint256 count = custody.withdrawalCount();
        return count == 0 ? 0 : 1 + seed % count;
    }

    /// @dev A withdrawal in `status`, searched from a random start; any id when none is (its refusal is tested too).
    function _find(uint256 seed, ICustody.WithdrawalStatus status) internal view returns (uint256) {
        uint256 count = custody.withdrawalCount();
        if (count == 0) return 0;
        for (uint256 i = 0; i < count; ++i) {
            uint256 id = 1 + (seed + i) % count;
            if (custody.withdrawal(id).status == status) return id;
        }
        return 1 + seed % count;
    }
}

/// @notice Custody invariants under random operation sequences (fixed seed from `foundry.toml`).
contract CustodyInvariantTest is CustodyFixture {
    CustodyHandler internal handler;
    address[] internal assetList;

    function setUp() public override {
        super.setUp();
        // Time-lock threshold low enough that both branches occur.
        vm.prank(admin);
        custody.setAssetPolicy(address(usd), true, APPROVALS, 1 hours, 400 ether, 50 ether);

        bytes32[] memory clients = new bytes32[](3);
        clients[0] = CLIENT_A;
        clients[1] = CLIENT_B;
        clients[2] = keccak256("client:c");
        vm.prank(custodyOfficer);
        custody.openAccount(clients[2]);
        // Eligible register wallets, so that they can receive the security as well as the cash token.
        address[] memory payees = new address[](2);
        payees[0] = alice;
        payees[1] = bob;

        handler = new CustodyHandler(
            custody,
            register,
            usd,
            address(token),
            [custodyOfficer, compliance, admin, keeper, issuer, custodyApprover, approver2, approver3],
            clients,
            payees
        );
        assetList.push(address(usd));
        assetList.push(address(token));

        // A running business to start from: every client holds both assets and has one destination, so that short
        // random sequences reach approvals and executions.
        for (uint256 i = 0; i < clients.length; ++i) {
            handler.deposit(i, 300 ether);
            handler.issueIn(1_000 + i);
            handler.allocate(i, true, 1_000, i);
            handler.setDestination(i, i, 0, i);
        }

        bytes4[] memory selectors = new bytes4[](15);
        selectors[0] = CustodyHandler.deposit.selector;
        selectors[1] = CustodyHandler.transferIn.selector;
        selectors[2] = CustodyHandler.issueIn.selector;
        selectors[3] = CustodyHandler.allocate.selector;
        selectors[4] = CustodyHandler.setDestination.selector;
        selectors[5] = CustodyHandler.request.selector;
        selectors[6] = CustodyHandler.request.selector;
        selectors[7] = CustodyHandler.approve.selector;
        selectors[8] = CustodyHandler.approve.selector;
        selectors[9] = CustodyHandler.cancel.selector;
        selectors[10] = CustodyHandler.retract.selector;
        selectors[11] = CustodyHandler.execute.selector;
        selectors[12] = CustodyHandler.freeze.selector;
        selectors[13] = CustodyHandler.warp.selector;
        selectors[14] = CustodyHandler.pause.selector;
        targetContract(address(handler));
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
    }

    /// @dev Per asset: client balances sum to `allocated`, and `allocated + unallocated` is exactly what the
    /// contract holds, which is exactly what came in minus what executions sent out.
    /// @dev The seeded state is what the comment above says it is.
    function test_handlerSeedsState() public view {
        for (uint256 i = 0; i < handler.clientCount(); ++i) {
            (uint256 cash,,) = custody.position(handler.clientAt(i), address(usd));
            (uint256 units,,) = custody.position(handler.clientAt(i), address(token));
            assertGt(cash, 0);
            assertGt(units, 0);
            assertEq(custody.destinations(handler.clientAt(i)).length, 1);
        }
    }

    /// forge-config: default.invariant.depth = 128
    function invariant_clientBalancesSumToHoldings() public view {
        for (uint256 a = 0; a < assetList.length; ++a) {
            address asset = assetList[a];
            uint256 sum;
            for (uint256 c = 0; c < handler.clientCount(); ++c) {
                (uint256 balance,,) = custody.position(handler.clientAt(c), asset);
                sum += balance;
            }
            uint256 held = IERC20(asset).balanceOf(address(custody));
            assertEq(sum, custody.allocated(asset), "sum of client balances != allocated");
            assertEq(custody.allocated(asset) + custody.unallocated(asset), held, "allocated + unallocated != held");
            assertEq(custody.shortfall(asset), 0, "shortfall");
            assertEq(held, handler.ghostHeld(asset), "held != inflow - outflow");
        }
    }

    /// @dev Every reservation is exactly the sum of the client's open withdrawals, and never exceeds the balance;
    /// no executed withdrawal lacks an approval or was approved by its requester.
    /// forge-config: default.invariant.depth = 128
    function invariant_reservationsMatchOpenWithdrawals() public view {
        uint256 count = custody.withdrawalCount();
        for (uint256 a = 0; a < assetList.length; ++a) {
            for (uint256 c = 0; c < handler.clientCount(); ++c) {
                bytes32 clientId = handler.clientAt(c);
                uint256 open;
                for (uint256 id = 1; id <= count; ++id) {
                    ICustody.Withdrawal memory w = custody.withdrawal(id);
                    if (w.clientId != clientId || w.asset != assetList[a]) continue;
                    if (w.status == ICustody.WithdrawalStatus.Pending || w.status == ICustody.WithdrawalStatus.Approved)
                    {
                        open += w.amount;
                    }
                }
                (uint256 balance, uint256 reserved,) = custody.position(clientId, assetList[a]);
                assertEq(reserved, open, "reserved != open withdrawals");
                assertLe(reserved, balance, "reserved > balance");
            }
        }
        for (uint256 id = 1; id <= count; ++id) {
            ICustody.Withdrawal memory w = custody.withdrawal(id);
            assertFalse(custody.hasApproved(id, w.requester), "requester approved");
            if (w.status == ICustody.WithdrawalStatus.Executed || w.status == ICustody.WithdrawalStatus.Approved) {
                assertEq(w.approvals, w.approvalsRequired, "executable without all approvals");
            }
        }
    }

    /// @dev No UTC day carried more than the asset's daily limit.
    /// forge-config: default.invariant.depth = 128
    function invariant_dailyLimitNeverExceeded() public view {
        for (uint256 a = 0; a < assetList.length; ++a) {
            address asset = assetList[a];
            uint256 limit = custody.assetPolicy(asset).dailyLimit;
            for (uint256 i = 0; i < handler.dayCount(asset); ++i) {
                assertLe(handler.ghostOut(asset, handler.dayAt(asset, i)), limit, "daily limit exceeded");
            }
        }
    }

    /// @dev Shows in `-vv` output how much of each operation the run exercised.
    function afterInvariant() public {
        emit log_named_uint("deposit", handler.successes("deposit"));
        emit log_named_uint("transferIn", handler.successes("transferIn"));
        emit log_named_uint("issueIn", handler.successes("issueIn"));
        emit log_named_uint("allocate", handler.successes("allocate"));
        emit log_named_uint("destination", handler.successes("destination"));
        emit log_named_uint("request", handler.successes("request"));
        emit log_named_uint("approve", handler.successes("approve"));
        emit log_named_uint("cancel", handler.successes("cancel"));
        emit log_named_uint("retract", handler.successes("retract"));
        emit log_named_uint("execute", handler.successes("execute"));
        emit log_named_uint("freeze", handler.successes("freeze"));
    }

    event log_named_uint(string key, uint256 val);
}
