// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {AccountAllowlist} from "../../src/AccountAllowlist.sol";
import {ConsortiumGovernance} from "../../src/ConsortiumGovernance.sol";
import {INodeRegistry} from "../../src/INodeRegistry.sol";
import {NodeRegistry} from "../../src/NodeRegistry.sol";
import {ValidatorSet} from "../../src/ValidatorSet.sol";
import {Base} from "./Base.sol";

/// @notice Deploys a consortium the way a network would: governance with founding members, the three registries
/// with genesis entries, then the one-time binding.
abstract contract Fixture is Base {
    uint64 internal constant LIFETIME = 100;
    uint64 internal constant DELAY = 2;
    uint256 internal constant START_BLOCK = 1000;

    address internal alice = address(0xA11CE);
    address internal bob = address(0xB0B);
    address internal carol = address(0xCA201);
    address internal dave = address(0xDA7E);
    address internal erin = address(0xE214);
    address internal outsider = address(0x0B5);

    address internal genesisValidator = address(0x7A11);

    ConsortiumGovernance internal gov;
    NodeRegistry internal nodes;
    AccountAllowlist internal accounts;
    ValidatorSet internal validators;

    /// @dev Three founders, simple majority (threshold 2), 100-block lifetime, 2-block activation delay.
    function setUp() public virtual {
        vm.roll(START_BLOCK);
        address[] memory founders = new address[](3);
        founders[0] = alice;
        founders[1] = bob;
        founders[2] = carol;
        _deploy(founders, 1, 2);
    }

    function _deploy(address[] memory founders, uint256 numerator, uint256 denominator) internal {
        string[] memory names = new string[](founders.length);
        for (uint256 i = 0; i < founders.length; ++i) {
            names[i] = string(abi.encodePacked("member-", bytes1(uint8(0x41 + i))));
        }
        gov = new ConsortiumGovernance(founders, names, numerator, denominator, LIFETIME, DELAY);

        INodeRegistry.NodeSpec[] memory initialNodes = new INodeRegistry.NodeSpec[](1);
        initialNodes[0] = _spec(1, founders[0]);
        nodes = new NodeRegistry(address(gov), initialNodes);

        AccountAllowlist.InitialAccount[] memory initialAccounts =
            new AccountAllowlist.InitialAccount[](founders.length);
        for (uint256 i = 0; i < founders.length; ++i) {
            initialAccounts[i] = AccountAllowlist.InitialAccount(founders[i], founders[i], new address[](0));
        }
        accounts = new AccountAllowlist(address(gov), initialAccounts);

        ValidatorSet.InitialValidator[] memory initialValidators = new ValidatorSet.InitialValidator[](1);
        initialValidators[0] = ValidatorSet.InitialValidator(genesisValidator, founders[0]);
        validators = new ValidatorSet(address(gov), initialValidators);

        gov.bindRegistries(address(nodes), address(accounts), address(validators));
    }

    /// @dev A well-formed node record whose enode id is derived from `seed`.
    function _spec(uint256 seed, address owner) internal pure returns (INodeRegistry.NodeSpec memory) {
        return INodeRegistry.NodeSpec({
            idHigh: keccak256(abi.encode("high", seed)),
            idLow: keccak256(abi.encode("low", seed)),
            host: "10.0.0.1",
            port: 30303,
            discPort: 30303,
            owner: owner,
            sidecarEndpoint: "https://sidecar.example:8600",
            payloadKey: keccak256(abi.encode("x25519", seed))
        });
    }

    /// @dev Proposes as `proposer` and approves with `approvers` in turn; returns the proposal id.
    function _passAddNode(INodeRegistry.NodeSpec memory spec, uint64 requested, address[] memory approvers)
        internal
        returns (uint256 id)
    {
        vm.prank(alice);
        id = gov.proposeAddNode(spec, requested);
        _approveAll(id, approvers);
    }

    function _approveAll(uint256 id, address[] memory approvers) internal {
        for (uint256 i = 0; i < approvers.length; ++i) {
            vm.prank(approvers[i]);
            gov.approve(id);
        }
    }

    function _one(address a) internal pure returns (address[] memory list) {
        list = new address[](1);
        list[0] = a;
    }

    function _two(address a, address b) internal pure returns (address[] memory list) {
        list = new address[](2);
        list[0] = a;
        list[1] = b;
    }

    function _three(address a, address b, address c) internal pure returns (address[] memory list) {
        list = new address[](3);
        list[0] = a;
        list[1] = b;
        list[2] = c;
    }

    /// @dev Admits `account` with alice proposing and bob approving (threshold 2 of 3).
    function _admitWithThree(address account) internal {
        vm.prank(alice);
        uint256 id = gov.proposeAddMember(account, "newcomer");
        vm.prank(bob);
        gov.approve(id);
    }
}
