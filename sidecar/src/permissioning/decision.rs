//! The decision API: a small HTTP service on loopback that a Besu plugin asks "may these nodes
//! connect?" and "may this transaction enter block n?", answered from the follower's state in
//! memory. Every answer names the block it is for and the state it was taken from.
//!
//! ```text
//! GET /v1/connection?source=<enode id>&destination=<enode id>&block=<n>
//! GET /v1/transaction?sender=<address>&target=<address>&block=<n>   (no target: contract creation)
//! GET /v1/status
//! ```
//!
//! Enode ids are 128 hex digits (an optional `0x`), addresses `0x` and 40 hex digits, block
//! numbers decimal or `0x` hex. Unknown, repeated or malformed parameters and queries over
//! [`MAX_QUERY_BYTES`] are refused with 400 and a JSON `{"error": ...}`.
//!
//! Deterministic by construction: the answer for block `n` is a function of `n` and the contracts'
//! history alone. A state synced to block `H` knows every change that can apply at or before
//! `H + activationDelay`; for a later block, or before any state is loaded, the API answers 503
//! ("follower behind") instead of guessing. It fails closed: it never says "allowed" for a block
//! it cannot decide. Persists nothing; logs each refused query at `debug` only.

use std::{fmt::Write as _, net::SocketAddr, sync::Arc};

use alloy::primitives::Address;
use axum::{
    Json, Router,
    extract::{RawQuery, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use serde::Serialize;
use serde_json::json;
use tokio::{
    net::TcpListener,
    sync::{oneshot, watch},
    task::JoinHandle,
};

use super::{
    follower::{FollowerStatus, StateWatch},
    state::PermState,
};

/// Default listen address: loopback, next to the JSON-RPC endpoint's 8545 and Besu's WebSocket
/// default 8546.
pub const DEFAULT_DECISION_LISTEN: &str = "127.0.0.1:8547";
/// Longest query string accepted: the longest valid query (two `0x`-prefixed enode ids and a
/// 20-digit block number, about 300 bytes) with room to spare.
pub const MAX_QUERY_BYTES: usize = 512;
/// Hex digits of an enode id (64 bytes).
const NODE_ID_HEX: usize = 128;
/// Hex digits of an address (20 bytes).
const ADDRESS_HEX: usize = 40;

/// Why a question was not answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    /// The query string is longer than [`MAX_QUERY_BYTES`].
    #[error("query too long ({0} bytes, at most {MAX_QUERY_BYTES})")]
    QueryTooLong(usize),
    /// A required parameter is absent.
    #[error("missing parameter ({0})")]
    Missing(&'static str),
    /// A parameter this endpoint does not take.
    #[error("unknown parameter ({0})")]
    Unknown(String),
    /// A parameter given twice.
    #[error("repeated parameter ({0})")]
    Repeated(String),
    /// A parameter value that does not parse.
    #[error("invalid {name} ({value}): {reason}")]
    Invalid {
        /// Parameter.
        name: &'static str,
        /// Value as given (cut to a bounded length).
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// No state is loaded yet.
    #[error("follower not synced (no permissioning state loaded yet)")]
    NotSynced,
    /// The block is beyond what the state can decide.
    #[error(
        "follower behind (block {block} asked, state synced to block {synced} decides through {decidable_through})"
    )]
    Behind {
        /// Block asked for.
        block: u64,
        /// Block the state reflects.
        synced: u64,
        /// Last block decidable.
        decidable_through: u64,
    },
    /// The listener could not be bound.
    #[error("decision api cannot listen ({addr}): {reason}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        reason: String,
    },
}

impl DecisionError {
    fn status(&self) -> StatusCode {
        match self {
            Self::NotSynced | Self::Behind { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Bind { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl IntoResponse for DecisionError {
    fn into_response(self) -> Response {
        tracing::debug!(target: "ecrop::perm", error = %self, "decision query refused");
        (self.status(), Json(json!({ "error": self.to_string() }))).into_response()
    }
}

/// An answer, with the block it is for and the state it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// The answer.
    pub allowed: bool,
    /// The block the answer is for.
    pub block: u64,
    /// The block the state reflects.
    pub synced_block: u64,
    /// The last block the state decides.
    pub decidable_through: u64,
}

/// The state to decide `block` with, or why there is none.
pub fn state_for(state: Option<&PermState>, block: u64) -> Result<&PermState, DecisionError> {
    let state = state.ok_or(DecisionError::NotSynced)?;
    if block > state.decidable_through() {
        return Err(DecisionError::Behind {
            block,
            synced: state.synced_block(),
            decidable_through: state.decidable_through(),
        });
    }
    Ok(state)
}

fn decision(state: &PermState, block: u64, allowed: bool) -> Decision {
    Decision {
        allowed,
        block,
        synced_block: state.synced_block(),
        decidable_through: state.decidable_through(),
    }
}

/// Decides a connection query string (the part after `?`).
pub fn decide_connection(
    state: Option<&PermState>,
    query: Option<&str>,
) -> Result<Decision, DecisionError> {
    let params = Params::parse(query, &["source", "destination", "block"])?;
    let source = node_id("source", params.required("source")?)?;
    let destination = node_id("destination", params.required("destination")?)?;
    let block = block_number(params.required("block")?)?;
    let state = state_for(state, block)?;
    Ok(decision(state, block, state.connection_allowed_at(&source, &destination, block)))
}

/// Decides a transaction query string (the part after `?`).
pub fn decide_transaction(
    state: Option<&PermState>,
    query: Option<&str>,
) -> Result<Decision, DecisionError> {
    let params = Params::parse(query, &["sender", "target", "block"])?;
    let sender = address("sender", params.required("sender")?)?;
    let target = params.optional("target").map(|t| address("target", t)).transpose()?;
    let block = block_number(params.required("block")?)?;
    let state = state_for(state, block)?;
    Ok(decision(state, block, state.transaction_allowed_at(sender, target, block)))
}

/// A running decision API.
#[derive(Debug)]
pub struct DecisionServer {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl DecisionServer {
    /// Binds `listen` and serves decisions from `state`; `/v1/status` adds the follower's
    /// `status` (head, lag, connection).
    pub async fn start(
        listen: SocketAddr,
        state: StateWatch,
        status: watch::Receiver<FollowerStatus>,
    ) -> Result<Self, DecisionError> {
        let bind = |e: std::io::Error| DecisionError::Bind { addr: listen, reason: e.to_string() };
        let listener = TcpListener::bind(listen).await.map_err(bind)?;
        let local_addr = listener.local_addr().map_err(bind)?;
        let app = Router::new()
            .route("/v1/connection", get(connection))
            .route("/v1/transaction", get(transaction))
            .route("/v1/status", get(report))
            .fallback(not_found)
            .with_state(Arc::new(Watches { state, status }));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(error) = served {
                tracing::error!(target: "ecrop::perm", %error, "decision api stopped");
            }
        });
        tracing::info!(target: "ecrop::perm", addr = %local_addr, "decision api listening");
        Ok(Self { local_addr, stop: Some(stop), task })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting and waits for requests in flight.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for DecisionServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// What the handlers read.
struct Watches {
    state: StateWatch,
    status: watch::Receiver<FollowerStatus>,
}

type Shared = Arc<Watches>;

async fn connection(State(watch): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let state = watch.state.borrow().clone();
    answer(decide_connection(state.as_deref(), query.as_deref()))
}

async fn transaction(State(watch): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let state = watch.state.borrow().clone();
    answer(decide_transaction(state.as_deref(), query.as_deref()))
}

async fn report(State(watch): State<Shared>) -> Response {
    let state = watch.state.borrow().clone();
    let follower = watch.status.borrow().clone();
    match state {
        None => DecisionError::NotSynced.into_response(),
        Some(state) => Json(json!({
            "synced_block": state.synced_block(),
            "synced_hash": state.synced_hash(),
            "decidable_through": state.decidable_through(),
            "activation_delay": state.activation_delay(),
            "head": follower.head,
            "lag": follower.lag,
            "connected": follower.connected,
        }))
        .into_response(),
    }
}

async fn not_found() -> Response {
    let body =
        json!({ "error": "unknown path; use /v1/connection, /v1/transaction or /v1/status" });
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

fn answer(result: Result<Decision, DecisionError>) -> Response {
    match result {
        Ok(decision) => Json(decision).into_response(),
        Err(error) => error.into_response(),
    }
}

/// A query string split into known parameters, each at most once.
struct Params<'a> {
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> Params<'a> {
    fn parse(query: Option<&'a str>, allowed: &[&'static str]) -> Result<Self, DecisionError> {
        let query = query.unwrap_or_default();
        if query.len() > MAX_QUERY_BYTES {
            return Err(DecisionError::QueryTooLong(query.len()));
        }
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            if !allowed.contains(&name) {
                return Err(DecisionError::Unknown(bounded(name)));
            }
            if pairs.iter().any(|(n, _)| *n == name) {
                return Err(DecisionError::Repeated(name.to_owned()));
            }
            pairs.push((name, value));
        }
        Ok(Self { pairs })
    }

    fn optional(&self, name: &str) -> Option<&'a str> {
        self.pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    fn required(&self, name: &'static str) -> Result<&'a str, DecisionError> {
        self.optional(name).ok_or(DecisionError::Missing(name))
    }
}

/// A value for an error message: at most 80 characters, control characters replaced.
fn bounded(value: &str) -> String {
    const SHOWN: usize = 80;
    let mut out = String::new();
    for (i, c) in value.chars().enumerate() {
        if i == SHOWN {
            out.push('…');
            break;
        }
        if c.is_control() {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

fn hex_digits<const N: usize>(
    name: &'static str,
    value: &str,
    digits: usize,
    require_prefix: bool,
) -> Result<[u8; N], DecisionError> {
    let invalid =
        |reason: &'static str| DecisionError::Invalid { name, value: bounded(value), reason };
    let body = match value.strip_prefix("0x") {
        Some(body) => body,
        None if require_prefix => return Err(invalid("expected 0x and hex digits")),
        None => value,
    };
    if body.len() != digits {
        return Err(invalid(if digits == NODE_ID_HEX {
            "expected 128 hex digits"
        } else {
            "expected 40 hex digits"
        }));
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(body, &mut out).map_err(|_| invalid("not hex"))?;
    Ok(out)
}

fn node_id(name: &'static str, value: &str) -> Result<[u8; 64], DecisionError> {
    hex_digits::<64>(name, value, NODE_ID_HEX, false)
}

fn address(name: &'static str, value: &str) -> Result<Address, DecisionError> {
    hex_digits::<20>(name, value, ADDRESS_HEX, true).map(Address::from)
}

fn block_number(value: &str) -> Result<u64, DecisionError> {
    let invalid = |reason| DecisionError::Invalid { name: "block", value: bounded(value), reason };
    if let Some(hex) = value.strip_prefix("0x") {
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid("expected a decimal or 0x-hex block number"));
        }
        return u64::from_str_radix(hex, 16).map_err(|_| invalid("above 2^64-1"));
    }
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("expected a decimal or 0x-hex block number"));
    }
    value.parse().map_err(|_| invalid("above 2^64-1"))
}

#[cfg(test)]
mod tests {
    use alloy::primitives::{B256, B512};

    use super::*;
    use crate::permissioning::state::{Contracts, NodeInfo, PermEvent};

    fn state() -> PermState {
        let mut state = PermState::new(
            Contracts {
                governance: Address::repeat_byte(1),
                node_registry: Address::repeat_byte(2),
                account_allowlist: Address::repeat_byte(3),
                validator_set: Address::repeat_byte(4),
            },
            2,
        );
        let info = |b| NodeInfo {
            id: B512::repeat_byte(b),
            host: "h".into(),
            port: 1,
            discport: 1,
            owner: Address::ZERO,
            sidecar_endpoint: String::new(),
            payload_key: B256::ZERO,
        };
        state.apply(&PermEvent::NodeAdded { info: info(0xaa), activation: 5 }).unwrap();
        state.apply(&PermEvent::NodeAdded { info: info(0xbb), activation: 8 }).unwrap();
        let account = Address::repeat_byte(0xcc);
        let owner = Address::ZERO;
        state
            .apply(&PermEvent::AccountAdded {
                account,
                owner,
                targets: vec![Address::ZERO],
                activation: 5,
            })
            .unwrap();
        state.set_synced(10, B256::repeat_byte(1));
        state
    }

    #[test]
    fn answers_connections_with_the_block() {
        let s = state();
        let q = format!("source={}&destination={}&block=8", "aa".repeat(64), "bb".repeat(64));
        let d = decide_connection(Some(&s), Some(&q)).unwrap();
        assert_eq!(
            d,
            Decision { allowed: true, block: 8, synced_block: 10, decidable_through: 12 }
        );
        let q = format!("source=0x{}&destination={}&block=0x7", "aa".repeat(64), "bb".repeat(64));
        assert!(!decide_connection(Some(&s), Some(&q)).unwrap().allowed);
    }

    #[test]
    fn answers_creation_without_target() {
        let s = state();
        let sender = format!("0x{}", "cc".repeat(20));
        let q = format!("sender={sender}&block=6");
        assert!(decide_transaction(Some(&s), Some(&q)).unwrap().allowed);
        let q = format!("sender={sender}&target=0x{}&block=6", "dd".repeat(20));
        assert!(!decide_transaction(Some(&s), Some(&q)).unwrap().allowed);
    }

    #[test]
    fn refuses_blocks_beyond_the_horizon() {
        let s = state();
        let q = format!("sender=0x{}&block=13", "cc".repeat(20));
        assert_eq!(
            decide_transaction(Some(&s), Some(&q)).unwrap_err().to_string(),
            "follower behind (block 13 asked, state synced to block 10 decides through 12)"
        );
        assert_eq!(
            decide_transaction(None, Some(&q)).unwrap_err().to_string(),
            "follower not synced (no permissioning state loaded yet)"
        );
    }

    #[test]
    fn refuses_malformed_queries() {
        let s = state();
        let cases = [
            ("block=1", "missing parameter (sender)"),
            ("sender=0x12&block=1", "invalid sender (0x12): expected 40 hex digits"),
            (
                "sender=cccccccccccccccccccccccccccccccccccccccc&block=1",
                "invalid sender (cccccccccccccccccccccccccccccccccccccccc): expected 0x and hex digits",
            ),
            (
                "sender=0xzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz&block=1",
                "invalid sender (0xzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz): not hex",
            ),
            ("block=1&block=2", "repeated parameter (block)"),
            ("value=1", "unknown parameter (value)"),
            (
                "sender=0xcccccccccccccccccccccccccccccccccccccccc&block=-1",
                "invalid block (-1): expected a decimal or 0x-hex block number",
            ),
            (
                "sender=0xcccccccccccccccccccccccccccccccccccccccc&block=18446744073709551616",
                "invalid block (18446744073709551616): above 2^64-1",
            ),
        ];
        for (query, expected) in cases {
            let err = decide_transaction(Some(&s), Some(query)).unwrap_err();
            assert_eq!(err.to_string(), expected, "{query}");
            assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        }
        let long = "a".repeat(MAX_QUERY_BYTES + 1);
        assert_eq!(
            decide_connection(Some(&s), Some(&long)).unwrap_err(),
            DecisionError::QueryTooLong(MAX_QUERY_BYTES + 1)
        );
    }
}
