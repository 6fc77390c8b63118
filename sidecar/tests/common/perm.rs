//! The permissioning contracts on a [`super::DevNet`]: deployed from forge's artifacts with three
//! founding members (HSM accounts of the dev token), changed through governance proposals sent
//! as unsigned transactions to the sidecar, which signs them in the token.

#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::{path::PathBuf, time::Duration};

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, B256, Bytes, U256},
    providers::{Provider, ProviderBuilder, RootProvider},
    rpc::types::{TransactionReceipt, TransactionRequest},
    sol,
    sol_types::{SolCall, SolEvent, SolValue},
};
use ecrop::onchain::Artifacts;
use rand::{Rng, SeedableRng, rngs::StdRng};

sol! {
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

    struct InitialAccount {
        address account;
        address owner;
        address[] targets;
    }

    struct InitialValidator {
        address validator;
        address owner;
    }

    interface Gov {
        event ProposalCreated(
            uint256 indexed proposalId,
            uint8 indexed kind,
            address indexed proposer,
            bytes payload,
            uint64 requestedActivation,
            uint64 expiresAt
        );
        function proposeAddMember(address account, string calldata name) external returns (uint256);
        function proposeRemoveMember(address account) external returns (uint256);
        function proposeAddNode(NodeSpec calldata spec, uint64 requestedActivation) external returns (uint256);
        function proposeRemoveNode(bytes32 idHigh, bytes32 idLow, uint64 requestedActivation) external returns (uint256);
        function proposeAddAccount(address account, address owner, address[] calldata targets, uint64 requestedActivation) external returns (uint256);
        function proposeRemoveAccount(address account, uint64 requestedActivation) external returns (uint256);
        function proposeAddValidator(address validator, address owner, uint64 requestedActivation) external returns (uint256);
        function proposeRemoveValidator(address validator, uint64 requestedActivation) external returns (uint256);
        function approve(uint256 proposalId) external;
        function updateNodeEndpoint(bytes32 idHigh, bytes32 idLow, string calldata sidecarEndpoint, bytes32 payloadKey) external;
        function bindRegistries(address nodeRegistry, address accountAllowlist, address validatorSet) external;
    }
}

/// Activation delay of the test governance, in blocks.
pub const DELAY: u64 = 2;
/// Proposal lifetime of the test governance, in blocks.
pub const LIFETIME: u64 = 1_000;

pub struct Perm {
    pub provider: RootProvider,
    pub members: Vec<Address>,
    pub governance: Address,
    pub nodes: Address,
    pub accounts: Address,
    pub validators: Address,
    pub rng: StdRng,
    /// Enode ids the random changes pick from.
    pub node_pool: Vec<[u8; 64]>,
    /// Accounts the random changes pick from.
    pub account_pool: Vec<Address>,
    /// Validators the random changes pick from.
    pub validator_pool: Vec<Address>,
}

pub fn artifacts() -> Artifacts {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../permissioning/out"));
    assert!(
        dir.join("ConsortiumGovernance.sol").is_dir(),
        "permissioning artifacts missing in {}; run `forge build` in permissioning/ (scripts/test does)",
        dir.display()
    );
    Artifacts::new(dir)
}

pub fn node_id(seed: u8) -> [u8; 64] {
    let mut id = [0u8; 64];
    for (i, b) in id.iter_mut().enumerate() {
        *b = seed.wrapping_mul(31).wrapping_add(i as u8) | 1;
    }
    id
}

fn spec(id: &[u8; 64], owner: Address, n: u8) -> NodeSpec {
    NodeSpec {
        idHigh: B256::from_slice(&id[..32]),
        idLow: B256::from_slice(&id[32..]),
        host: format!("10.0.0.{n}"),
        port: 30303,
        discPort: 30303,
        owner,
        sidecarEndpoint: format!("https://node{n}.example:8443"),
        payloadKey: B256::repeat_byte(n),
    }
}

impl Perm {
    /// Deploys governance (members `members[0..3]`, 1/2 threshold) and the three registries with
    /// one node, the members' accounts (any target) and one validator.
    pub async fn deploy(endpoint: &str, members: &[Address], seed: u64) -> Self {
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .connect_http(endpoint.parse().unwrap());
        let provider = provider.root().clone();
        let members = members[..3].to_vec();
        let artifacts = artifacts();
        let deployer = members[0];

        let names: Vec<String> =
            ["Alpha Bank", "Beta Verwahr", "Gamma Register"].map(String::from).to_vec();
        let args = (members.clone(), names, U256::from(1), U256::from(2), LIFETIME, DELAY)
            .abi_encode_params();
        let governance =
            deploy(&provider, &artifacts, deployer, "ConsortiumGovernance", args).await;

        let first = node_id(200);
        let args = (governance, vec![spec(&first, members[0], 200)]).abi_encode_params();
        let nodes = deploy(&provider, &artifacts, deployer, "NodeRegistry", args).await;
        let initial: Vec<InitialAccount> = members
            .iter()
            .map(|m| InitialAccount { account: *m, owner: *m, targets: vec![] })
            .collect();
        let args = (governance, initial).abi_encode_params();
        let accounts = deploy(&provider, &artifacts, deployer, "AccountAllowlist", args).await;
        let validator = Address::repeat_byte(0xe0);
        let args = (governance, vec![InitialValidator { validator, owner: members[1] }])
            .abi_encode_params();
        let validators = deploy(&provider, &artifacts, deployer, "ValidatorSet", args).await;

        let bind = Gov::bindRegistriesCall {
            nodeRegistry: nodes,
            accountAllowlist: accounts,
            validatorSet: validators,
        };
        let receipt =
            send(&provider, deployer, governance, bind.abi_encode()).await.expect("bindRegistries");
        assert!(receipt.status(), "bindRegistries reverted");

        let mut node_pool: Vec<[u8; 64]> = (0..6).map(node_id).collect();
        node_pool.push(first);
        let mut account_pool: Vec<Address> =
            (0..5).map(|i| Address::repeat_byte(0xa0 + i)).collect();
        account_pool.push(members[2]);
        let mut validator_pool: Vec<Address> =
            (1..4).map(|i| Address::repeat_byte(0xe0 + i)).collect();
        validator_pool.push(validator);
        Self {
            provider,
            members,
            governance,
            nodes,
            accounts,
            validators,
            rng: StdRng::seed_from_u64(seed),
            node_pool,
            account_pool,
            validator_pool,
        }
    }

    pub async fn head(&self) -> u64 {
        self.provider.get_block_number().await.unwrap()
    }

    /// Proposes `call` as `proposer` and approves it as the next member, which executes it.
    /// Returns whether it was executed (false: refused by governance or the registry).
    pub async fn pass(&mut self, proposer: usize, call: Vec<u8>) -> bool {
        let from = self.members[proposer];
        let Ok(receipt) = send(&self.provider, from, self.governance, call).await else {
            return false;
        };
        if !receipt.status() {
            return false;
        }
        let id = receipt
            .inner
            .logs()
            .iter()
            .find_map(|log| Gov::ProposalCreated::decode_log_data(log.data()).ok())
            .expect("ProposalCreated")
            .proposalId;
        let approver = self.members[(proposer + 1) % self.members.len()];
        let approve = Gov::approveCall { proposalId: id }.abi_encode();
        matches!(send(&self.provider, approver, self.governance, approve).await, Ok(r) if r.status())
    }

    /// One random change; returns a description and whether it passed.
    pub async fn random_change(&mut self) -> (String, bool) {
        let head = self.head().await;
        // Zero ("as soon as allowed") or a block after the proposal's block.
        let activation =
            if self.rng.random_bool(0.5) { 0 } else { head + 2 + self.rng.random_range(0..6) };
        let owner = self.members[self.rng.random_range(0..self.members.len())];
        let proposer = self.rng.random_range(0..self.members.len());
        let (what, call) = match self.rng.random_range(0..7) {
            0 => {
                let n = self.rng.random_range(0..self.node_pool.len());
                let id = self.node_pool[n];
                let call = Gov::proposeAddNodeCall {
                    spec: spec(&id, owner, n as u8),
                    requestedActivation: activation,
                };
                (format!("add node {n} at {activation}"), call.abi_encode())
            }
            1 => {
                let n = self.rng.random_range(0..self.node_pool.len());
                let id = self.node_pool[n];
                let call = Gov::proposeRemoveNodeCall {
                    idHigh: B256::from_slice(&id[..32]),
                    idLow: B256::from_slice(&id[32..]),
                    requestedActivation: activation,
                };
                (format!("remove node {n} at {activation}"), call.abi_encode())
            }
            2 | 3 => {
                let account = self.account_pool[self.rng.random_range(0..self.account_pool.len())];
                let mut targets = Vec::new();
                for candidate in [Address::ZERO, self.governance, Address::repeat_byte(0x77)] {
                    if self.rng.random_bool(0.4) {
                        targets.push(candidate);
                    }
                }
                let call = Gov::proposeAddAccountCall {
                    account,
                    owner,
                    targets: targets.clone(),
                    requestedActivation: activation,
                };
                (
                    format!("add account {account} targets {targets:?} at {activation}"),
                    call.abi_encode(),
                )
            }
            4 => {
                let account = self.account_pool[self.rng.random_range(0..self.account_pool.len())];
                let call =
                    Gov::proposeRemoveAccountCall { account, requestedActivation: activation };
                (format!("remove account {account} at {activation}"), call.abi_encode())
            }
            5 => {
                let validator =
                    self.validator_pool[self.rng.random_range(0..self.validator_pool.len())];
                let call = Gov::proposeAddValidatorCall {
                    validator,
                    owner,
                    requestedActivation: activation,
                };
                (format!("add validator {validator} at {activation}"), call.abi_encode())
            }
            _ => {
                let validator =
                    self.validator_pool[self.rng.random_range(0..self.validator_pool.len())];
                let call =
                    Gov::proposeRemoveValidatorCall { validator, requestedActivation: activation };
                (format!("remove validator {validator} at {activation}"), call.abi_encode())
            }
        };
        let passed = self.pass(proposer, call).await;
        (what, passed)
    }
}

async fn deploy(
    provider: &RootProvider,
    artifacts: &Artifacts,
    from: Address,
    name: &str,
    args: Vec<u8>,
) -> Address {
    let artifact = artifacts.get(name).unwrap();
    let mut code = artifact.bytecode.to_vec();
    code.extend_from_slice(&args);
    let request = TransactionRequest::default().with_from(from).with_deploy_code(Bytes::from(code));
    let receipt = provider
        .send_transaction(request)
        .await
        .unwrap_or_else(|e| panic!("deploying {name}: {e}"))
        .with_timeout(Some(Duration::from_secs(30)))
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status(), "deploying {name} reverted");
    receipt.contract_address.unwrap()
}

/// Sends `input` to `to` from `from` through the sidecar; `Err` when refused before mining.
pub async fn send(
    provider: &RootProvider,
    from: Address,
    to: Address,
    input: Vec<u8>,
) -> Result<TransactionReceipt, String> {
    let request =
        TransactionRequest::default().with_from(from).with_to(to).with_input(Bytes::from(input));
    let pending = provider.send_transaction(request).await.map_err(|e| e.to_string())?;
    pending
        .with_timeout(Some(Duration::from_secs(30)))
        .get_receipt()
        .await
        .map_err(|e| e.to_string())
}
