//! The permissioning state as the contracts hold it: nodes, accounts and validators with their
//! activation histories, the current members, and the block the state reflects.
//!
//! Everything here is pure: no I/O, no clock. The follower builds a [`PermState`] from the
//! contracts' paged views at one block, then feeds it the registries' events in log order
//! ([`PermState::apply`]); the result equals what the contracts' views return at the same block.
//! Decisions ([`PermState::node_allowed_at`], [`PermState::transaction_allowed_at`], ...) follow
//! the contracts' `*At` views exactly: an entry is in force at block `n` iff one of its spans has
//! `activation <= n < deactivation`.
//!
//! A state answers for a block only if it is within its horizon ([`PermState::decidable_through`]):
//! changes executed after the synced block take effect at least `activation_delay` blocks after
//! their execution, so the state cannot yet know about them beyond that. Callers that must not
//! guess (the decision API) check the horizon first; the methods here answer from what is known.
//!
//! The state is serialised with serde (the store persists it as JSON); the lookup indexes are not
//! stored but rebuilt on load.

use std::collections::{BTreeMap, HashMap};

use alloy::primitives::{Address, B256, B512, keccak256};
use serde::{Deserialize, Serialize};

/// The deactivation block of a span whose removal has not been decided (`type(uint64).max`, the
/// contracts' `Lifespans.OPEN`).
pub const OPEN: u64 = u64::MAX;

/// Errors raised when an event does not fit the state: the state is out of step with the chain and
/// must be read again from the contracts' views.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// An entry was added while it still had an open listing.
    #[error("{kind} already listed ({id})")]
    AlreadyListed {
        /// `node`, `account` or `validator`.
        kind: &'static str,
        /// Node key or address.
        id: String,
    },
    /// An entry was removed or changed that has no open listing.
    #[error("{kind} not listed ({id})")]
    NotListed {
        /// `node`, `account` or `validator`.
        kind: &'static str,
        /// Node key or address.
        id: String,
    },
    /// A span would start before the previous one ends, or end before it starts.
    #[error("{kind} span out of order ({id}: {reason})")]
    SpanOrder {
        /// `node`, `account` or `validator`.
        kind: &'static str,
        /// Node key or address.
        id: String,
        /// What is out of order.
        reason: String,
    },
    /// The same entry appears twice in a snapshot.
    #[error("{kind} appears twice in the snapshot ({id})")]
    Duplicate {
        /// `node`, `account`, `validator` or `member`.
        kind: &'static str,
        /// Node key or address.
        id: String,
    },
    /// A node's key is not the keccak hash of its id.
    #[error("node key does not match its id (key {key}, id {id})")]
    NodeKeyMismatch {
        /// The key as given.
        key: B256,
        /// The id as given.
        id: B512,
    },
}

/// The deployed permissioning contracts a state belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contracts {
    /// `ConsortiumGovernance`.
    pub governance: Address,
    /// `NodeRegistry`.
    pub node_registry: Address,
    /// `AccountAllowlist`.
    pub account_allowlist: Address,
    /// `ValidatorSet`.
    pub validator_set: Address,
}

impl Contracts {
    /// The four addresses, governance first, for log filters.
    pub fn all(&self) -> [Address; 4] {
        [self.governance, self.node_registry, self.account_allowlist, self.validator_set]
    }
}

/// One period in force: `[activation, deactivation)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// First block in force.
    pub activation: u64,
    /// First block no longer in force; [`OPEN`] while no removal is decided.
    pub deactivation: u64,
}

impl Span {
    /// Whether `block` lies in the span.
    pub fn contains(&self, block: u64) -> bool {
        self.activation <= block && block < self.deactivation
    }
}

/// Everything recorded about a node (the contract's `NodeSpec`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Enode id: the 64-byte uncompressed public key without the `04` prefix.
    pub id: B512,
    /// IPv4 address, IPv6 address (no brackets) or DNS name.
    pub host: String,
    /// devp2p TCP port.
    pub port: u16,
    /// Discovery UDP port (`0`: discovery off).
    pub discport: u16,
    /// Governance account of the owning member.
    pub owner: Address,
    /// URL of the node's sidecar for private payloads; may be empty.
    pub sidecar_endpoint: String,
    /// X25519 key for private payloads; may be zero.
    pub payload_key: B256,
}

impl NodeInfo {
    /// The registry key: `keccak256(idHigh ‖ idLow)`.
    pub fn key(&self) -> B256 {
        node_key(&self.id.0)
    }
}

/// The registry key of an enode id: `keccak256(idHigh ‖ idLow)`.
pub fn node_key(id: &[u8; 64]) -> B256 {
    keccak256(id)
}

/// A node with its history (the contract's `Node`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEntry {
    /// The latest record (a re-added node replaces it).
    pub info: NodeInfo,
    /// Periods in force, in block order.
    pub spans: Vec<Span>,
}

/// One listing period of an account and the targets it allowed (empty: any target).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSpan {
    /// The period.
    #[serde(flatten)]
    pub span: Span,
    /// Allowed targets; `Address::ZERO` stands for contract creation.
    pub targets: Vec<Address>,
}

/// An account with its history (the contract's `Account`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountEntry {
    /// The account.
    pub account: Address,
    /// Owning member of the latest listing.
    pub owner: Address,
    /// Periods in force with their targets, in block order.
    pub spans: Vec<AccountSpan>,
}

/// A validator with its history (the contract's `Validator`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorEntry {
    /// The validator address.
    pub validator: Address,
    /// Owning member of the latest listing.
    pub owner: Address,
    /// Periods in force, in block order.
    pub spans: Vec<Span>,
}

/// A change to the permissioning state, decoded from one contract event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PermEvent {
    /// `NodeAdded`: the node is listed from `activation` on; `info` replaces its record.
    NodeAdded {
        /// The complete record.
        info: NodeInfo,
        /// First block in force.
        activation: u64,
    },
    /// `NodeRemoved`: the node's open listing ends at `deactivation`.
    NodeRemoved {
        /// Registry key.
        key: B256,
        /// First block no longer in force.
        deactivation: u64,
    },
    /// `NodeEndpointUpdated`: new sidecar endpoint and payload key, at once.
    NodeEndpointUpdated {
        /// Registry key.
        key: B256,
        /// New endpoint.
        sidecar_endpoint: String,
        /// New payload key.
        payload_key: B256,
    },
    /// `AccountAdded`.
    AccountAdded {
        /// The account.
        account: Address,
        /// Owning member.
        owner: Address,
        /// Allowed targets (empty: any).
        targets: Vec<Address>,
        /// First block in force.
        activation: u64,
    },
    /// `AccountRemoved`.
    AccountRemoved {
        /// The account.
        account: Address,
        /// First block no longer in force.
        deactivation: u64,
    },
    /// `ValidatorAdded`.
    ValidatorAdded {
        /// The validator.
        validator: Address,
        /// Owning member.
        owner: Address,
        /// First block in force.
        activation: u64,
    },
    /// `ValidatorRemoved`.
    ValidatorRemoved {
        /// The validator.
        validator: Address,
        /// First block no longer in force.
        deactivation: u64,
    },
    /// `MemberAdded` (governance): applies at once.
    MemberAdded {
        /// Governance account of the member.
        account: Address,
        /// Its name.
        name: String,
    },
    /// `MemberRemoved` (governance): applies at once.
    MemberRemoved {
        /// Governance account of the member.
        account: Address,
    },
}

/// The stored form of [`PermState`]: the same data without lookup indexes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    contracts: Contracts,
    activation_delay: u64,
    synced_block: u64,
    synced_hash: B256,
    nodes: Vec<NodeEntry>,
    accounts: Vec<AccountEntry>,
    validators: Vec<ValidatorEntry>,
    members: BTreeMap<Address, String>,
}

/// The permissioning contracts' state at one block, with lookup indexes.
///
/// Lists keep the contracts' order (first added first), so [`PermState::validators_at`] equals
/// `ValidatorSet.validatorsAt` element for element.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "Stored", into = "Stored")]
pub struct PermState {
    contracts: Contracts,
    activation_delay: u64,
    synced_block: u64,
    synced_hash: B256,
    nodes: Vec<NodeEntry>,
    accounts: Vec<AccountEntry>,
    validators: Vec<ValidatorEntry>,
    members: BTreeMap<Address, String>,
    node_by_key: HashMap<B256, usize>,
    account_by_address: HashMap<Address, usize>,
    validator_by_address: HashMap<Address, usize>,
}

impl PartialEq for PermState {
    fn eq(&self, other: &Self) -> bool {
        // The indexes follow from the lists.
        self.contracts == other.contracts
            && self.activation_delay == other.activation_delay
            && self.synced_block == other.synced_block
            && self.synced_hash == other.synced_hash
            && self.nodes == other.nodes
            && self.accounts == other.accounts
            && self.validators == other.validators
            && self.members == other.members
    }
}

impl Eq for PermState {}

impl TryFrom<Stored> for PermState {
    type Error = StateError;

    fn try_from(stored: Stored) -> Result<Self, StateError> {
        let mut state = Self::new(stored.contracts, stored.activation_delay);
        state.set_synced(stored.synced_block, stored.synced_hash);
        state.members = stored.members;
        for node in stored.nodes {
            state.insert_node(node)?;
        }
        for account in stored.accounts {
            state.insert_account(account)?;
        }
        for validator in stored.validators {
            state.insert_validator(validator)?;
        }
        Ok(state)
    }
}

impl From<PermState> for Stored {
    fn from(state: PermState) -> Self {
        Self {
            contracts: state.contracts,
            activation_delay: state.activation_delay,
            synced_block: state.synced_block,
            synced_hash: state.synced_hash,
            nodes: state.nodes,
            accounts: state.accounts,
            validators: state.validators,
            members: state.members,
        }
    }
}

impl PermState {
    /// An empty state for `contracts`, synced to nothing (block 0, zero hash).
    pub fn new(contracts: Contracts, activation_delay: u64) -> Self {
        Self {
            contracts,
            activation_delay,
            synced_block: 0,
            synced_hash: B256::ZERO,
            nodes: Vec::new(),
            accounts: Vec::new(),
            validators: Vec::new(),
            members: BTreeMap::new(),
            node_by_key: HashMap::new(),
            account_by_address: HashMap::new(),
            validator_by_address: HashMap::new(),
        }
    }

    // ------------------------------------------------------------ building

    /// Appends a node read from `listNodes` (snapshot order is the contract's order).
    pub fn insert_node(&mut self, node: NodeEntry) -> Result<(), StateError> {
        let key = node.info.key();
        if self.node_by_key.contains_key(&key) {
            return Err(StateError::Duplicate { kind: "node", id: key.to_string() });
        }
        check_spans("node", &key.to_string(), node.spans.iter().copied())?;
        self.node_by_key.insert(key, self.nodes.len());
        self.nodes.push(node);
        Ok(())
    }

    /// Appends an account read from `listAccounts`.
    pub fn insert_account(&mut self, account: AccountEntry) -> Result<(), StateError> {
        let id = account.account;
        if self.account_by_address.contains_key(&id) {
            return Err(StateError::Duplicate { kind: "account", id: id.to_string() });
        }
        check_spans("account", &id.to_string(), account.spans.iter().map(|s| s.span))?;
        self.account_by_address.insert(id, self.accounts.len());
        self.accounts.push(account);
        Ok(())
    }

    /// Appends a validator read from `listValidators`.
    pub fn insert_validator(&mut self, validator: ValidatorEntry) -> Result<(), StateError> {
        let id = validator.validator;
        if self.validator_by_address.contains_key(&id) {
            return Err(StateError::Duplicate { kind: "validator", id: id.to_string() });
        }
        check_spans("validator", &id.to_string(), validator.spans.iter().copied())?;
        self.validator_by_address.insert(id, self.validators.len());
        self.validators.push(validator);
        Ok(())
    }

    /// Adds a current member read from `listMembers`.
    pub fn insert_member(&mut self, account: Address, name: String) -> Result<(), StateError> {
        if self.members.insert(account, name).is_some() {
            return Err(StateError::Duplicate { kind: "member", id: account.to_string() });
        }
        Ok(())
    }

    /// Records that the state reflects block `block` with hash `hash` (all its events applied).
    pub fn set_synced(&mut self, block: u64, hash: B256) {
        self.synced_block = block;
        self.synced_hash = hash;
    }

    /// Applies one event, as the contract applied it.
    ///
    /// On an error the state is unchanged, and it no longer matches the chain: read it again.
    pub fn apply(&mut self, event: &PermEvent) -> Result<(), StateError> {
        match event {
            PermEvent::NodeAdded { info, activation } => {
                let key = info.key();
                let id = key.to_string();
                match self.node_by_key.get(&key) {
                    Some(&index) => {
                        let entry = &mut self.nodes[index];
                        open_span("node", &id, &mut entry.spans, *activation)?;
                        entry.info = info.clone();
                    }
                    None => {
                        let spans = vec![Span { activation: *activation, deactivation: OPEN }];
                        self.node_by_key.insert(key, self.nodes.len());
                        self.nodes.push(NodeEntry { info: info.clone(), spans });
                    }
                }
            }
            PermEvent::NodeRemoved { key, deactivation } => {
                let id = key.to_string();
                let entry = self
                    .node_by_key
                    .get(key)
                    .map(|&i| &mut self.nodes[i])
                    .ok_or_else(|| StateError::NotListed { kind: "node", id: id.clone() })?;
                close_span("node", &id, &mut entry.spans, *deactivation)?;
            }
            PermEvent::NodeEndpointUpdated { key, sidecar_endpoint, payload_key } => {
                let entry = self
                    .node_by_key
                    .get(key)
                    .map(|&i| &mut self.nodes[i])
                    .filter(|e| e.spans.last().is_some_and(|s| s.deactivation == OPEN))
                    .ok_or_else(|| StateError::NotListed { kind: "node", id: key.to_string() })?;
                entry.info.sidecar_endpoint.clone_from(sidecar_endpoint);
                entry.info.payload_key = *payload_key;
            }
            PermEvent::AccountAdded { account, owner, targets, activation } => {
                let id = account.to_string();
                match self.account_by_address.get(account) {
                    Some(&index) => {
                        let entry = &mut self.accounts[index];
                        let mut spans: Vec<Span> = entry.spans.iter().map(|s| s.span).collect();
                        open_span("account", &id, &mut spans, *activation)?;
                        let span = Span { activation: *activation, deactivation: OPEN };
                        entry.spans.push(AccountSpan { span, targets: targets.clone() });
                        entry.owner = *owner;
                    }
                    None => {
                        let span = Span { activation: *activation, deactivation: OPEN };
                        self.account_by_address.insert(*account, self.accounts.len());
                        self.accounts.push(AccountEntry {
                            account: *account,
                            owner: *owner,
                            spans: vec![AccountSpan { span, targets: targets.clone() }],
                        });
                    }
                }
            }
            PermEvent::AccountRemoved { account, deactivation } => {
                let id = account.to_string();
                let entry = self
                    .account_by_address
                    .get(account)
                    .map(|&i| &mut self.accounts[i])
                    .ok_or_else(|| StateError::NotListed { kind: "account", id: id.clone() })?;
                let mut spans: Vec<Span> = entry.spans.iter().map(|s| s.span).collect();
                close_span("account", &id, &mut spans, *deactivation)?;
                if let Some(last) = entry.spans.last_mut() {
                    last.span.deactivation = *deactivation;
                }
            }
            PermEvent::ValidatorAdded { validator, owner, activation } => {
                let id = validator.to_string();
                match self.validator_by_address.get(validator) {
                    Some(&index) => {
                        let entry = &mut self.validators[index];
                        open_span("validator", &id, &mut entry.spans, *activation)?;
                        entry.owner = *owner;
                    }
                    None => {
                        let spans = vec![Span { activation: *activation, deactivation: OPEN }];
                        self.validator_by_address.insert(*validator, self.validators.len());
                        self.validators.push(ValidatorEntry {
                            validator: *validator,
                            owner: *owner,
                            spans,
                        });
                    }
                }
            }
            PermEvent::ValidatorRemoved { validator, deactivation } => {
                let id = validator.to_string();
                let entry = self
                    .validator_by_address
                    .get(validator)
                    .map(|&i| &mut self.validators[i])
                    .ok_or_else(|| StateError::NotListed { kind: "validator", id: id.clone() })?;
                close_span("validator", &id, &mut entry.spans, *deactivation)?;
            }
            PermEvent::MemberAdded { account, name } => {
                if self.members.contains_key(account) {
                    return Err(StateError::AlreadyListed {
                        kind: "member",
                        id: account.to_string(),
                    });
                }
                self.members.insert(*account, name.clone());
            }
            PermEvent::MemberRemoved { account } => {
                if self.members.remove(account).is_none() {
                    return Err(StateError::NotListed { kind: "member", id: account.to_string() });
                }
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------ metadata

    /// The contracts this state belongs to.
    pub fn contracts(&self) -> &Contracts {
        &self.contracts
    }

    /// The governance's activation delay: a change executed in block `b` applies from
    /// `b + activation_delay` at the earliest (at least 1).
    pub fn activation_delay(&self) -> u64 {
        self.activation_delay
    }

    /// The last block whose events are applied.
    pub fn synced_block(&self) -> u64 {
        self.synced_block
    }

    /// The hash of [`PermState::synced_block`].
    pub fn synced_hash(&self) -> B256 {
        self.synced_hash
    }

    /// The last block this state answers for with certainty: `synced_block + activation_delay`.
    ///
    /// A change not yet seen is executed at `synced_block + 1` or later and so applies from
    /// `synced_block + 1 + activation_delay` at the earliest.
    pub fn decidable_through(&self) -> u64 {
        self.synced_block.saturating_add(self.activation_delay)
    }

    // ----------------------------------------------------------- decisions

    /// Whether the node with enode id `id` is in force at `block` (`nodeAllowedAt`).
    pub fn node_allowed_at(&self, id: &[u8; 64], block: u64) -> bool {
        self.node_by_key
            .get(&node_key(id))
            .is_some_and(|&i| in_force(self.nodes[i].spans.iter().copied(), block).is_some())
    }

    /// Whether a connection between `source` and `destination` is allowed at `block`: both ends in
    /// force (`connectionAllowedAt`).
    pub fn connection_allowed_at(
        &self,
        source: &[u8; 64],
        destination: &[u8; 64],
        block: u64,
    ) -> bool {
        self.node_allowed_at(source, block) && self.node_allowed_at(destination, block)
    }

    /// Whether `account` is in force at `block`, to any target (`accountAllowedAt`).
    pub fn account_allowed_at(&self, account: Address, block: u64) -> bool {
        self.account_span_at(account, block).is_some()
    }

    /// Whether a transaction from `sender` to `target` (`None`: contract creation, the contract's
    /// `address(0)`) is allowed in `block` (`transactionAllowedAt`).
    pub fn transaction_allowed_at(
        &self,
        sender: Address,
        target: Option<Address>,
        block: u64,
    ) -> bool {
        let Some(span) = self.account_span_at(sender, block) else { return false };
        let target = target.unwrap_or(Address::ZERO);
        span.targets.is_empty() || span.targets.contains(&target)
    }

    /// Whether `validator` is in force at `block` (`isValidatorAt`).
    pub fn validator_at(&self, validator: Address, block: u64) -> bool {
        self.validator_by_address
            .get(&validator)
            .is_some_and(|&i| in_force(self.validators[i].spans.iter().copied(), block).is_some())
    }

    // --------------------------------------------------------------- lists

    /// The nodes in force at `block`, in the order they were first added.
    pub fn nodes_at(&self, block: u64) -> Vec<NodeInfo> {
        self.nodes
            .iter()
            .filter(|n| in_force(n.spans.iter().copied(), block).is_some())
            .map(|n| n.info.clone())
            .collect()
    }

    /// The accounts in force at `block`, in the order they were first added.
    pub fn accounts_at(&self, block: u64) -> Vec<Address> {
        self.accounts
            .iter()
            .filter(|a| in_force(a.spans.iter().map(|s| s.span), block).is_some())
            .map(|a| a.account)
            .collect()
    }

    /// The validators in force at `block`, in the order they were first added (`validatorsAt`).
    pub fn validators_at(&self, block: u64) -> Vec<Address> {
        self.validators
            .iter()
            .filter(|v| in_force(v.spans.iter().copied(), block).is_some())
            .map(|v| v.validator)
            .collect()
    }

    /// Every node ever added, with its history, in the contract's order (`listNodes`).
    pub fn nodes(&self) -> &[NodeEntry] {
        &self.nodes
    }

    /// Every account ever added, with its history (`listAccounts`).
    pub fn accounts(&self) -> &[AccountEntry] {
        &self.accounts
    }

    /// Every validator ever added, with its history (`listValidators`).
    pub fn validators(&self) -> &[ValidatorEntry] {
        &self.validators
    }

    /// The current members: governance account and name.
    pub fn members(&self) -> &BTreeMap<Address, String> {
        &self.members
    }

    /// One node by enode id, with its history.
    pub fn node(&self, id: &[u8; 64]) -> Option<&NodeEntry> {
        self.node_by_key.get(&node_key(id)).map(|&i| &self.nodes[i])
    }

    /// One account, with its history.
    pub fn account(&self, account: Address) -> Option<&AccountEntry> {
        self.account_by_address.get(&account).map(|&i| &self.accounts[i])
    }

    fn account_span_at(&self, account: Address, block: u64) -> Option<&AccountSpan> {
        let entry = &self.accounts[*self.account_by_address.get(&account)?];
        let index = in_force(entry.spans.iter().map(|s| s.span), block)?;
        entry.spans.get(index)
    }
}

/// The index of the span in force at `block`, as `Lifespans.find` decides: the last span starting
/// at or before `block`, if it has not ended by then.
fn in_force(
    spans: impl DoubleEndedIterator<Item = Span> + ExactSizeIterator,
    block: u64,
) -> Option<usize> {
    let (index, span) = spans.enumerate().rev().find(|(_, s)| s.activation <= block)?;
    (block < span.deactivation).then_some(index)
}

/// `Lifespans.open` as an event reports it: the new span must start no earlier than the last one
/// ends, and the last one must be closed.
fn open_span(
    kind: &'static str,
    id: &str,
    spans: &mut Vec<Span>,
    activation: u64,
) -> Result<(), StateError> {
    if let Some(last) = spans.last() {
        if last.deactivation == OPEN {
            return Err(StateError::AlreadyListed { kind, id: id.to_owned() });
        }
        if activation < last.deactivation {
            return Err(StateError::SpanOrder {
                kind,
                id: id.to_owned(),
                reason: format!(
                    "activation {activation} before previous end {}",
                    last.deactivation
                ),
            });
        }
    }
    spans.push(Span { activation, deactivation: OPEN });
    Ok(())
}

/// `Lifespans.close` as an event reports it: the last span must be open and end no earlier than it
/// starts.
fn close_span(
    kind: &'static str,
    id: &str,
    spans: &mut [Span],
    deactivation: u64,
) -> Result<(), StateError> {
    let Some(last) = spans.last_mut().filter(|s| s.deactivation == OPEN) else {
        return Err(StateError::NotListed { kind, id: id.to_owned() });
    };
    if deactivation < last.activation || deactivation == OPEN {
        return Err(StateError::SpanOrder {
            kind,
            id: id.to_owned(),
            reason: format!("deactivation {deactivation} before activation {}", last.activation),
        });
    }
    last.deactivation = deactivation;
    Ok(())
}

/// Checks a snapshot's history: spans in order, never overlapping, only the last one open.
fn check_spans(
    kind: &'static str,
    id: &str,
    spans: impl Iterator<Item = Span>,
) -> Result<(), StateError> {
    let mut previous_end: Option<u64> = None;
    for span in spans {
        let bad = |reason: String| StateError::SpanOrder { kind, id: id.to_owned(), reason };
        if span.deactivation < span.activation {
            return Err(bad(format!(
                "span [{}, {}) ends before it starts",
                span.activation, span.deactivation
            )));
        }
        if let Some(end) = previous_end
            && (end == OPEN || span.activation < end)
        {
            return Err(bad(format!("span from {} overlaps the previous one", span.activation)));
        }
        previous_end = Some(span.deactivation);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contracts() -> Contracts {
        Contracts {
            governance: Address::repeat_byte(1),
            node_registry: Address::repeat_byte(2),
            account_allowlist: Address::repeat_byte(3),
            validator_set: Address::repeat_byte(4),
        }
    }

    fn node(byte: u8) -> NodeInfo {
        NodeInfo {
            id: B512::repeat_byte(byte),
            host: "10.0.0.1".into(),
            port: 30303,
            discport: 30303,
            owner: Address::repeat_byte(9),
            sidecar_endpoint: String::new(),
            payload_key: B256::ZERO,
        }
    }

    #[test]
    fn spans_follow_the_contract_rules() {
        let mut state = PermState::new(contracts(), 2);
        let a = node(0xaa);
        state.apply(&PermEvent::NodeAdded { info: a.clone(), activation: 10 }).unwrap();
        assert!(!state.node_allowed_at(&a.id.0, 9));
        assert!(state.node_allowed_at(&a.id.0, 10));
        state.apply(&PermEvent::NodeRemoved { key: a.key(), deactivation: 20 }).unwrap();
        assert!(state.node_allowed_at(&a.id.0, 19));
        assert!(!state.node_allowed_at(&a.id.0, 20));
        state.apply(&PermEvent::NodeAdded { info: a.clone(), activation: 25 }).unwrap();
        assert!(!state.node_allowed_at(&a.id.0, 22));
        assert!(state.node_allowed_at(&a.id.0, 25));
        assert_eq!(state.nodes_at(30), vec![a.clone()]);
        assert_eq!(
            state.apply(&PermEvent::NodeAdded { info: a.clone(), activation: 40 }),
            Err(StateError::AlreadyListed { kind: "node", id: a.key().to_string() })
        );
    }

    #[test]
    fn empty_span_is_never_in_force() {
        let mut state = PermState::new(contracts(), 1);
        let account = Address::repeat_byte(5);
        let add = PermEvent::AccountAdded {
            account,
            owner: Address::repeat_byte(9),
            targets: vec![],
            activation: 10,
        };
        state.apply(&add).unwrap();
        state.apply(&PermEvent::AccountRemoved { account, deactivation: 10 }).unwrap();
        assert!(!state.account_allowed_at(account, 10));
        assert!(!state.account_allowed_at(account, 9));
    }

    #[test]
    fn targets_belong_to_their_span() {
        let mut state = PermState::new(contracts(), 1);
        let sender = Address::repeat_byte(5);
        let target = Address::repeat_byte(6);
        let owner = Address::repeat_byte(9);
        state
            .apply(&PermEvent::AccountAdded {
                account: sender,
                owner,
                targets: vec![target],
                activation: 3,
            })
            .unwrap();
        state.apply(&PermEvent::AccountRemoved { account: sender, deactivation: 8 }).unwrap();
        state
            .apply(&PermEvent::AccountAdded {
                account: sender,
                owner,
                targets: vec![Address::ZERO],
                activation: 8,
            })
            .unwrap();
        assert!(state.transaction_allowed_at(sender, Some(target), 7));
        assert!(!state.transaction_allowed_at(sender, None, 7));
        assert!(!state.transaction_allowed_at(sender, Some(target), 8));
        assert!(state.transaction_allowed_at(sender, None, 8));
        assert!(!state.transaction_allowed_at(Address::repeat_byte(7), None, 8));
        assert_eq!(state.accounts_at(2), Vec::<Address>::new());
        assert_eq!(state.accounts_at(8), vec![sender]);
    }

    #[test]
    fn round_trips_through_serde_with_indexes() {
        let mut state = PermState::new(contracts(), 3);
        let a = node(0x11);
        state.apply(&PermEvent::NodeAdded { info: a.clone(), activation: 1 }).unwrap();
        let validator = Address::repeat_byte(8);
        let add =
            PermEvent::ValidatorAdded { validator, owner: Address::repeat_byte(9), activation: 1 };
        state.apply(&add).unwrap();
        state.set_synced(7, B256::repeat_byte(7));
        let json = serde_json::to_string(&state).unwrap();
        let back: PermState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, state);
        assert!(back.node_allowed_at(&a.id.0, 5));
        assert_eq!(back.validators_at(5), vec![validator]);
        assert_eq!(back.decidable_through(), 10);
    }

    #[test]
    fn refuses_a_snapshot_with_overlapping_spans() {
        let mut state = PermState::new(contracts(), 1);
        let entry = NodeEntry {
            info: node(1),
            spans: vec![
                Span { activation: 5, deactivation: OPEN },
                Span { activation: 6, deactivation: OPEN },
            ],
        };
        assert!(matches!(state.insert_node(entry), Err(StateError::SpanOrder { .. })));
    }
}
