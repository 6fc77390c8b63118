//! Reading the permissioning contracts from the node: the full state at one block through the
//! paged views, and the events of a block or a block range.
//!
//! Reads nothing but standard JSON-RPC (`eth_call` pinned to a block hash, `eth_getLogs`,
//! `eth_getBlockByNumber`, `eth_blockNumber`), holds no state beyond request counters, and logs
//! nothing: the follower decides what a failure means.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use alloy::{
    eips::{BlockId, BlockNumberOrTag},
    network::TransactionBuilder,
    primitives::{Address, B256, B512, U256},
    providers::{Provider, ProviderBuilder, RootProvider},
    rpc::types::{Filter, Log, TransactionRequest},
    sol_types::{SolCall, SolEvent},
};

use super::{
    abi::{
        Account, IAccountAllowlist, IConsortiumGovernance, INodeRegistry, IValidatorSet, Node,
        Validator,
    },
    state::{
        AccountEntry, AccountSpan, Contracts, NodeEntry, NodeInfo, PermEvent, PermState, Span,
        StateError,
    },
};

/// Entries per paged view call: the contracts' `MAX_PAGE`.
pub const PAGE: u64 = 100;

/// Errors while reading the contracts.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The node could not be reached or answered with an error.
    #[error("node request failed ({url}): {reason}")]
    Rpc {
        /// Node URL.
        url: String,
        /// Transport or node message.
        reason: String,
    },
    /// The node does not know a block the follower asked for (not yet mined, or reorganised).
    #[error("block not found ({0})")]
    BlockMissing(String),
    /// A view returned data that does not decode.
    #[error("cannot decode {what}: {reason}")]
    Decode {
        /// View or event.
        what: &'static str,
        /// Decoder message.
        reason: String,
    },
    /// The contracts' data does not make a consistent state.
    #[error("inconsistent contract data: {0}")]
    State(#[from] StateError),
    /// A log came without its block number or hash (a pending log).
    #[error("log without block information (transaction {0:?})")]
    PendingLog(Option<B256>),
}

/// A block as the follower tracks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRef {
    /// Number.
    pub number: u64,
    /// Hash.
    pub hash: B256,
    /// Parent hash.
    pub parent: B256,
}

/// Request counters, for tests and the status report.
#[derive(Debug, Default)]
pub struct Counters {
    /// Full-state reads.
    pub snapshots: AtomicU64,
    /// `eth_getLogs` requests.
    pub log_requests: AtomicU64,
}

/// JSON-RPC access to the node for the follower.
#[derive(Debug, Clone)]
pub struct ChainSource {
    url: String,
    provider: RootProvider,
    counters: Arc<Counters>,
}

impl ChainSource {
    /// A source reading from the node's HTTP JSON-RPC at `url`.
    pub fn new(url: &str) -> Result<Self, SourceError> {
        let parsed = url.parse().map_err(|e| SourceError::Rpc {
            url: url.to_owned(),
            reason: format!("invalid url: {e}"),
        })?;
        let provider = ProviderBuilder::new().disable_recommended_fillers().connect_http(parsed);
        Ok(Self {
            url: url.to_owned(),
            provider: provider.root().clone(),
            counters: Arc::new(Counters::default()),
        })
    }

    /// The node's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The request counters.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// The latest block number.
    pub async fn head(&self) -> Result<u64, SourceError> {
        self.provider.get_block_number().await.map_err(|e| self.rpc(e))
    }

    /// Number, hash and parent hash of block `number`.
    pub async fn block(&self, number: u64) -> Result<BlockRef, SourceError> {
        let block = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Number(number))
            .await
            .map_err(|e| self.rpc(e))?
            .ok_or_else(|| SourceError::BlockMissing(number.to_string()))?;
        Ok(BlockRef {
            number: block.header.number,
            hash: block.header.hash,
            parent: block.header.parent_hash,
        })
    }

    /// The registries bound to `governance` and its activation delay, read at `at`.
    pub async fn contracts(
        &self,
        governance: Address,
        at: B256,
    ) -> Result<(Contracts, u64), SourceError> {
        let registries = self
            .call(governance, IConsortiumGovernance::registriesCall {}, at, "registries")
            .await?;
        let delay = self
            .call(governance, IConsortiumGovernance::activationDelayCall {}, at, "activationDelay")
            .await?;
        let contracts = Contracts {
            governance,
            node_registry: registries.nodeRegistry,
            account_allowlist: registries.accountAllowlist,
            validator_set: registries.validatorSet,
        };
        Ok((contracts, delay))
    }

    /// The full state at `block`, every call pinned to its hash.
    pub async fn snapshot(
        &self,
        governance: Address,
        block: BlockRef,
    ) -> Result<PermState, SourceError> {
        self.counters.snapshots.fetch_add(1, Ordering::Relaxed);
        let at = block.hash;
        let (contracts, delay) = self.contracts(governance, at).await?;
        let mut state = PermState::new(contracts, delay);

        let count = self.count(governance, IConsortiumGovernance::memberCountCall {}, at).await?;
        for offset in (0..count).step_by(PAGE as usize) {
            let call = IConsortiumGovernance::listMembersCall {
                offset: U256::from(offset),
                limit: U256::from(PAGE),
            };
            for member in self.call(governance, call, at, "listMembers").await? {
                state.insert_member(member.account, member.name)?;
            }
        }

        let registry = contracts.node_registry;
        let count = self.count(registry, INodeRegistry::nodeCountCall {}, at).await?;
        for offset in (0..count).step_by(PAGE as usize) {
            let call = INodeRegistry::listNodesCall {
                offset: U256::from(offset),
                limit: U256::from(PAGE),
            };
            for node in self.call(registry, call, at, "listNodes").await? {
                state.insert_node(node_entry(node))?;
            }
        }

        let allowlist = contracts.account_allowlist;
        let count = self.count(allowlist, IAccountAllowlist::accountCountCall {}, at).await?;
        for offset in (0..count).step_by(PAGE as usize) {
            let call = IAccountAllowlist::listAccountsCall {
                offset: U256::from(offset),
                limit: U256::from(PAGE),
            };
            for account in self.call(allowlist, call, at, "listAccounts").await? {
                state.insert_account(account_entry(account))?;
            }
        }

        let set = contracts.validator_set;
        let count = self.count(set, IValidatorSet::validatorCountCall {}, at).await?;
        for offset in (0..count).step_by(PAGE as usize) {
            let call = IValidatorSet::listValidatorsCall {
                offset: U256::from(offset),
                limit: U256::from(PAGE),
            };
            for validator in self.call(set, call, at, "listValidators").await? {
                state.insert_validator(validator_entry(validator))?;
            }
        }

        state.set_synced(block.number, block.hash);
        Ok(state)
    }

    /// The permissioning events of the block with hash `hash`, in log order.
    pub async fn events_of_block(
        &self,
        contracts: &Contracts,
        hash: B256,
    ) -> Result<Vec<PermEvent>, SourceError> {
        let filter = Filter::new().address(contracts.all().to_vec()).at_block_hash(hash);
        self.events(contracts, &filter).await
    }

    /// The permissioning events of blocks `from..=to`, in log order.
    pub async fn events_of_range(
        &self,
        contracts: &Contracts,
        from: u64,
        to: u64,
    ) -> Result<Vec<PermEvent>, SourceError> {
        let filter = Filter::new().address(contracts.all().to_vec()).from_block(from).to_block(to);
        self.events(contracts, &filter).await
    }

    /// A decision view or any other call of `call` on `to`, at block `at` (for comparisons).
    pub async fn call<C: SolCall>(
        &self,
        to: Address,
        call: C,
        at: B256,
        what: &'static str,
    ) -> Result<C::Return, SourceError> {
        self.call_at(to, call, BlockId::hash(at), what).await
    }

    /// Like [`ChainSource::call`] at any block id.
    pub async fn call_at<C: SolCall>(
        &self,
        to: Address,
        call: C,
        at: BlockId,
        what: &'static str,
    ) -> Result<C::Return, SourceError> {
        let request = TransactionRequest::default().with_to(to).with_input(call.abi_encode());
        let output = self.provider.call(request).block(at).await.map_err(|e| self.rpc(e))?;
        C::abi_decode_returns(&output)
            .map_err(|e| SourceError::Decode { what, reason: e.to_string() })
    }

    async fn count<C: SolCall<Return = U256>>(
        &self,
        to: Address,
        call: C,
        at: B256,
    ) -> Result<u64, SourceError> {
        let count = self.call(to, call, at, "count").await?;
        u64::try_from(count).map_err(|_| SourceError::Decode {
            what: "count",
            reason: format!("{count} too large"),
        })
    }

    async fn events(
        &self,
        contracts: &Contracts,
        filter: &Filter,
    ) -> Result<Vec<PermEvent>, SourceError> {
        self.counters.log_requests.fetch_add(1, Ordering::Relaxed);
        let mut logs = self.provider.get_logs(filter).await.map_err(|e| self.rpc(e))?;
        logs.retain(|log| !log.removed);
        if let Some(log) = logs.iter().find(|l| l.block_number.is_none() || l.log_index.is_none()) {
            return Err(SourceError::PendingLog(log.transaction_hash));
        }
        logs.sort_by_key(|l| (l.block_number, l.log_index));
        let mut events = Vec::with_capacity(logs.len());
        for log in &logs {
            if let Some(event) = decode(contracts, log)? {
                events.push(event);
            }
        }
        Ok(events)
    }

    fn rpc(&self, error: impl std::fmt::Display) -> SourceError {
        SourceError::Rpc { url: self.url.clone(), reason: error.to_string() }
    }
}

/// The state change a log stands for; `None` for events that change nothing the follower keeps
/// (proposals, approvals) and for logs of other contracts.
pub fn decode(contracts: &Contracts, log: &Log) -> Result<Option<PermEvent>, SourceError> {
    let Some(topic) = log.topic0() else { return Ok(None) };
    let address = log.address();
    let data = log.data();
    let bad = |what: &'static str| {
        move |e: alloy::sol_types::Error| SourceError::Decode { what, reason: e.to_string() }
    };

    let event = if address == contracts.node_registry {
        match *topic {
            INodeRegistry::NodeAdded::SIGNATURE_HASH => {
                let e =
                    INodeRegistry::NodeAdded::decode_log_data(data).map_err(bad("NodeAdded"))?;
                let info = node_info(e.spec);
                PermEvent::NodeAdded { info, activation: e.activationBlock }
            }
            INodeRegistry::NodeRemoved::SIGNATURE_HASH => {
                let e = INodeRegistry::NodeRemoved::decode_log_data(data)
                    .map_err(bad("NodeRemoved"))?;
                PermEvent::NodeRemoved { key: e.nodeKey, deactivation: e.deactivationBlock }
            }
            INodeRegistry::NodeEndpointUpdated::SIGNATURE_HASH => {
                let e = INodeRegistry::NodeEndpointUpdated::decode_log_data(data)
                    .map_err(bad("NodeEndpointUpdated"))?;
                PermEvent::NodeEndpointUpdated {
                    key: e.nodeKey,
                    sidecar_endpoint: e.sidecarEndpoint,
                    payload_key: e.payloadKey,
                }
            }
            _ => return Ok(None),
        }
    } else if address == contracts.account_allowlist {
        match *topic {
            IAccountAllowlist::AccountAdded::SIGNATURE_HASH => {
                let e = IAccountAllowlist::AccountAdded::decode_log_data(data)
                    .map_err(bad("AccountAdded"))?;
                PermEvent::AccountAdded {
                    account: e.account,
                    owner: e.owner,
                    targets: e.targets,
                    activation: e.activationBlock,
                }
            }
            IAccountAllowlist::AccountRemoved::SIGNATURE_HASH => {
                let e = IAccountAllowlist::AccountRemoved::decode_log_data(data)
                    .map_err(bad("AccountRemoved"))?;
                PermEvent::AccountRemoved { account: e.account, deactivation: e.deactivationBlock }
            }
            _ => return Ok(None),
        }
    } else if address == contracts.validator_set {
        match *topic {
            IValidatorSet::ValidatorAdded::SIGNATURE_HASH => {
                let e = IValidatorSet::ValidatorAdded::decode_log_data(data)
                    .map_err(bad("ValidatorAdded"))?;
                PermEvent::ValidatorAdded {
                    validator: e.validator,
                    owner: e.owner,
                    activation: e.activationBlock,
                }
            }
            IValidatorSet::ValidatorRemoved::SIGNATURE_HASH => {
                let e = IValidatorSet::ValidatorRemoved::decode_log_data(data)
                    .map_err(bad("ValidatorRemoved"))?;
                PermEvent::ValidatorRemoved {
                    validator: e.validator,
                    deactivation: e.deactivationBlock,
                }
            }
            _ => return Ok(None),
        }
    } else if address == contracts.governance {
        match *topic {
            IConsortiumGovernance::MemberAdded::SIGNATURE_HASH => {
                let e = IConsortiumGovernance::MemberAdded::decode_log_data(data)
                    .map_err(bad("MemberAdded"))?;
                PermEvent::MemberAdded { account: e.account, name: e.name }
            }
            IConsortiumGovernance::MemberRemoved::SIGNATURE_HASH => {
                let e = IConsortiumGovernance::MemberRemoved::decode_log_data(data)
                    .map_err(bad("MemberRemoved"))?;
                PermEvent::MemberRemoved { account: e.account }
            }
            _ => return Ok(None),
        }
    } else {
        return Ok(None);
    };
    Ok(Some(event))
}

fn node_info(spec: super::abi::NodeSpec) -> NodeInfo {
    let mut id = [0u8; 64];
    id[..32].copy_from_slice(spec.idHigh.as_slice());
    id[32..].copy_from_slice(spec.idLow.as_slice());
    NodeInfo {
        id: B512::from(id),
        host: spec.host,
        port: spec.port,
        discport: spec.discPort,
        owner: spec.owner,
        sidecar_endpoint: spec.sidecarEndpoint,
        payload_key: spec.payloadKey,
    }
}

fn span(s: super::abi::Span) -> Span {
    Span { activation: s.activation, deactivation: s.deactivation }
}

/// A `listNodes` entry as the state keeps it.
pub fn node_entry(node: Node) -> NodeEntry {
    NodeEntry { info: node_info(node.spec), spans: node.spans.into_iter().map(span).collect() }
}

/// A `listAccounts` entry as the state keeps it.
pub fn account_entry(account: Account) -> AccountEntry {
    AccountEntry {
        account: account.account,
        owner: account.owner,
        spans: account
            .spans
            .into_iter()
            .map(|s| AccountSpan {
                span: Span { activation: s.activation, deactivation: s.deactivation },
                targets: s.targets,
            })
            .collect(),
    }
}

/// A `listValidators` entry as the state keeps it.
pub fn validator_entry(validator: Validator) -> super::state::ValidatorEntry {
    super::state::ValidatorEntry {
        validator: validator.validator,
        owner: validator.owner,
        spans: validator.spans.into_iter().map(span).collect(),
    }
}
