//! The slice of the permissioning contracts' interfaces (`permissioning/src/I*.sol`) the follower
//! reads: the paged views that give the full state at a block, the decision views, and the events
//! that change the state. Compiled into the binary, so following needs no artifacts on disk.

#![allow(missing_docs)]

alloy::sol! {
    /// One period in force (`Lifespans.Span`).
    struct Span {
        uint64 activation;
        uint64 deactivation;
    }

    /// `INodeRegistry.NodeSpec`.
    struct NodeSpec {
        bytes32 idHigh;
        bytes32 idLow;
        string host;
        uint16 port;
        uint16 discPort;
        address owner;
        string sidecarEndpoint;
        bytes32 payloadKey;
    }

    /// `INodeRegistry.Node`.
    struct Node {
        bytes32 nodeKey;
        NodeSpec spec;
        Span[] spans;
    }

    /// `IAccountAllowlist.AccountSpan`.
    struct AccountSpan {
        uint64 activation;
        uint64 deactivation;
        address[] targets;
    }

    /// `IAccountAllowlist.Account`.
    struct Account {
        address account;
        address owner;
        AccountSpan[] spans;
    }

    /// `IValidatorSet.Validator`.
    struct Validator {
        address validator;
        address owner;
        Span[] spans;
    }

    /// `IConsortiumGovernance.Member`.
    struct Member {
        address account;
        string name;
        uint64 admittedAt;
    }

    interface IConsortiumGovernance {
        event MemberAdded(address indexed account, uint256 indexed proposalId, string name);
        event MemberRemoved(address indexed account, uint256 indexed proposalId);

        function memberCount() external view returns (uint256);
        function listMembers(uint256 offset, uint256 limit) external view returns (Member[] memory);
        function activationDelay() external view returns (uint64);
        function registries()
            external
            view
            returns (address nodeRegistry, address accountAllowlist, address validatorSet);
    }

    interface INodeRegistry {
        event NodeAdded(bytes32 indexed nodeKey, address indexed owner, NodeSpec spec, uint64 activationBlock);
        event NodeRemoved(bytes32 indexed nodeKey, uint64 deactivationBlock);
        event NodeEndpointUpdated(bytes32 indexed nodeKey, string sidecarEndpoint, bytes32 payloadKey);

        function nodeCount() external view returns (uint256);
        function listNodes(uint256 offset, uint256 limit) external view returns (Node[] memory);
        function nodeAllowedAt(bytes32 idHigh, bytes32 idLow, uint256 blockNumber) external view returns (bool);
        function connectionAllowedAt(
            bytes32 sourceIdHigh,
            bytes32 sourceIdLow,
            bytes32 destinationIdHigh,
            bytes32 destinationIdLow,
            uint256 blockNumber
        ) external view returns (bool);
        function connectionAllowed(
            bytes32 sourceEnodeHigh,
            bytes32 sourceEnodeLow,
            bytes16 sourceEnodeIp,
            uint16 sourceEnodePort,
            bytes32 destinationEnodeHigh,
            bytes32 destinationEnodeLow,
            bytes16 destinationEnodeIp,
            uint16 destinationEnodePort
        ) external view returns (bytes32);
    }

    interface IAccountAllowlist {
        event AccountAdded(address indexed account, address indexed owner, address[] targets, uint64 activationBlock);
        event AccountRemoved(address indexed account, uint64 deactivationBlock);

        function accountCount() external view returns (uint256);
        function listAccounts(uint256 offset, uint256 limit) external view returns (Account[] memory);
        function transactionAllowedAt(address sender, address target, uint256 blockNumber) external view returns (bool);
        function transactionAllowed(
            address sender,
            address target,
            uint256 value,
            uint256 gasPrice,
            uint256 gasLimit,
            bytes calldata payload
        ) external view returns (bool);
    }

    interface IValidatorSet {
        event ValidatorAdded(address indexed validator, address indexed owner, uint64 activationBlock);
        event ValidatorRemoved(address indexed validator, uint64 deactivationBlock);

        function validatorCount() external view returns (uint256);
        function listValidators(uint256 offset, uint256 limit) external view returns (Validator[] memory);
        function validatorsAt(uint256 blockNumber) external view returns (address[] memory);
    }
}
