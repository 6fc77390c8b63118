//! The process-wide Prometheus registry and every metric the sidecar exports.
//!
//! One [`Metrics`] lives for the whole process ([`global`]); tests may build their own with
//! [`Metrics::new`]. Label values come from closed sets only (method names the sidecar knows,
//! outcome classes, error kinds, event names), so a dApp calling made-up methods cannot grow
//! the number of series. Nothing here records parameters, accounts or secrets.

use std::sync::OnceLock;

use crate::rpc::params::SIGNING_METHODS;

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// Content type of [`Metrics::encode`]'s output.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the request-latency buckets, in seconds: from half a millisecond (a cached
/// answer) to 30 s (the default upstream timeout), roughly 2.5× apart.
const LATENCY_BUCKETS: [f64; 15] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Method names exported as they are; every other name is folded into its namespace
/// (`<namespace>_other`, for a namespace in [`KNOWN_NAMESPACES`]) or into `other`.
const KNOWN_METHODS: [&str; 64] = [
    // Served by the sidecar itself.
    "eth_accounts",
    "eth_sendTransaction",
    "eth_signTransaction",
    "eth_sign",
    "personal_sign",
    "eth_signTypedData_v4",
    // The standard execution API.
    "eth_blockNumber",
    "eth_call",
    "eth_chainId",
    "eth_coinbase",
    "eth_createAccessList",
    "eth_estimateGas",
    "eth_feeHistory",
    "eth_gasPrice",
    "eth_getBalance",
    "eth_getBlockByHash",
    "eth_getBlockByNumber",
    "eth_getBlockReceipts",
    "eth_getBlockTransactionCountByHash",
    "eth_getBlockTransactionCountByNumber",
    "eth_getCode",
    "eth_getFilterChanges",
    "eth_getFilterLogs",
    "eth_getLogs",
    "eth_getProof",
    "eth_getStorageAt",
    "eth_getTransactionByBlockHashAndIndex",
    "eth_getTransactionByBlockNumberAndIndex",
    "eth_getTransactionByHash",
    "eth_getTransactionCount",
    "eth_getTransactionReceipt",
    "eth_getUncleCountByBlockHash",
    "eth_getUncleCountByBlockNumber",
    "eth_maxPriorityFeePerGas",
    "eth_mining",
    "eth_newBlockFilter",
    "eth_newFilter",
    "eth_newPendingTransactionFilter",
    "eth_protocolVersion",
    "eth_sendRawTransaction",
    "eth_subscribe",
    "eth_syncing",
    "eth_uninstallFilter",
    "eth_unsubscribe",
    "net_listening",
    "net_peerCount",
    "net_version",
    "web3_clientVersion",
    "web3_sha3",
    // Besu's privacy, permissioning, consensus and administration APIs most used here.
    "priv_distributeRawTransaction",
    "priv_getTransactionReceipt",
    "priv_call",
    "perm_addAccountsToAllowlist",
    "perm_addNodesToAllowlist",
    "perm_getAccountsAllowlist",
    "perm_getNodesAllowlist",
    "perm_removeAccountsFromAllowlist",
    "perm_removeNodesFromAllowlist",
    "qbft_getValidatorsByBlockNumber",
    "qbft_proposeValidatorVote",
    "admin_addPeer",
    "admin_nodeInfo",
    "admin_peers",
    "txpool_besuTransactions",
];

/// Namespaces whose unknown methods are counted together, with their label.
const KNOWN_NAMESPACES: [(&str, &str); 12] = [
    ("eth", "eth_other"),
    ("net", "net_other"),
    ("web3", "web3_other"),
    ("personal", "personal_other"),
    ("priv", "priv_other"),
    ("perm", "perm_other"),
    ("qbft", "qbft_other"),
    ("admin", "admin_other"),
    ("debug", "debug_other"),
    ("txpool", "txpool_other"),
    ("trace", "trace_other"),
    ("miner", "miner_other"),
];

/// The label a method is counted under: its own name when known, else its namespace's
/// `<namespace>_other`, else `other`.
pub fn method_label(method: &str) -> &'static str {
    if let Some(known) = KNOWN_METHODS.iter().find(|m| **m == method) {
        return known;
    }
    let namespace = method.split_once('_').map_or("", |(ns, _)| ns);
    KNOWN_NAMESPACES.iter().find(|(ns, _)| *ns == namespace).map_or("other", |(_, label)| label)
}

/// The outcome class of a JSON-RPC answer: `ok`, `refused` (the sidecar's policy, access
/// control, limits or authentication said no: [`crate::rpc::error::REFUSAL_CODES`]), or the
/// class of the error code.
pub fn outcome_label(error_code: Option<i32>) -> &'static str {
    match error_code {
        None => "ok",
        Some(code) if crate::rpc::error::REFUSAL_CODES.contains(&code) => "refused",
        Some(-32700) => "parse_error",
        Some(-32600) => "invalid_request",
        Some(-32601) => "method_not_found",
        Some(-32602) => "invalid_params",
        Some(-32603) => "internal_error",
        Some(-32002) => "unavailable",
        Some(-32099..=-32000) => "server_error",
        Some(_) => "other_error",
    }
}

/// Labels `{method, outcome}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodOutcome {
    /// See [`method_label`].
    pub method: &'static str,
    /// See [`outcome_label`].
    pub outcome: &'static str,
}

/// Labels `{method}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodOnly {
    /// See [`method_label`].
    pub method: &'static str,
}

/// Labels `{kind}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Kind {
    /// A short fixed name of the failure.
    pub kind: &'static str,
}

/// Labels `{event, outcome}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventOutcome {
    /// Webhook event name.
    pub event: &'static str,
    /// `delivered`, `retry`, `failed` or `dropped`.
    pub outcome: &'static str,
}

/// Labels `{status}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Status {
    /// HTTP status answered, from a fixed set ([`status_label`]).
    pub status: &'static str,
}

/// The label of an HTTP status refusing a request: the refusals the endpoint makes, else
/// `other`.
pub fn status_label(status: u16) -> &'static str {
    match status {
        401 => "401",
        403 => "403",
        413 => "413",
        429 => "429",
        200 => "200",
        _ => "other",
    }
}

/// A histogram with [`LATENCY_BUCKETS`].
fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Every metric of the sidecar, registered in one registry.
pub struct Metrics {
    registry: Registry,
    /// `ecrop_rpc_requests_total{method,outcome}`: JSON-RPC calls answered.
    pub rpc_requests: Family<MethodOutcome, Counter>,
    /// `ecrop_rpc_request_duration_seconds{method}`: time to answer a call.
    pub rpc_duration: Family<MethodOnly, Histogram, fn() -> Histogram>,
    /// `ecrop_rpc_in_flight`: calls being served right now.
    pub rpc_in_flight: Gauge,
    /// `ecrop_signatures_total{method,outcome}`: calls of signing methods.
    pub signatures: Family<MethodOutcome, Counter>,
    /// `ecrop_nonce_resyncs_total`: cached nonces dropped so the next send reads the chain.
    pub nonce_resyncs: Counter,
    /// `ecrop_upstream_errors_total{kind}`: failed relays to the node.
    pub upstream_errors: Family<Kind, Counter>,
    /// `ecrop_follower_lag_blocks`: blocks between the node's head and the follower.
    pub follower_lag: Gauge,
    /// `ecrop_follower_synced_block`: last block the permissioning follower applied.
    pub follower_synced: Gauge,
    /// `ecrop_webhook_deliveries_total{event,outcome}`: webhook delivery attempts.
    pub webhook_deliveries: Family<EventOutcome, Counter>,
    /// `ecrop_webhook_pending`: deliveries waiting for their next attempt.
    pub webhook_pending: Gauge,
    /// `ecrop_http_refusals_total{status}`: requests refused before any method (credentials,
    /// origin or host, body size, a client already over its limits, a batch too long).
    pub http_refusals: Family<Status, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("ecrop");
        let rpc_requests = Family::<MethodOutcome, Counter>::default();
        let rpc_duration = Family::<MethodOnly, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let rpc_in_flight = Gauge::default();
        let signatures = Family::<MethodOutcome, Counter>::default();
        let nonce_resyncs = Counter::default();
        let upstream_errors = Family::<Kind, Counter>::default();
        let follower_lag = Gauge::default();
        let follower_synced = Gauge::default();
        let webhook_deliveries = Family::<EventOutcome, Counter>::default();
        let webhook_pending = Gauge::default();
        let http_refusals = Family::<Status, Counter>::default();
        registry.register(
            "http_refusals",
            "Requests refused before any method, by HTTP status",
            http_refusals.clone(),
        );

        registry.register(
            "rpc_requests",
            "JSON-RPC calls answered, by method and outcome",
            rpc_requests.clone(),
        );
        registry.register(
            "rpc_request_duration_seconds",
            "Time to answer one JSON-RPC call, by method",
            rpc_duration.clone(),
        );
        registry.register("rpc_in_flight", "JSON-RPC calls being served", rpc_in_flight.clone());
        registry.register(
            "signatures",
            "Calls of signing methods, by method and outcome",
            signatures.clone(),
        );
        registry.register(
            "nonce_resyncs",
            "Cached nonces dropped so that the next send reads the nonce from the chain",
            nonce_resyncs.clone(),
        );
        registry.register(
            "upstream_errors",
            "Failed relays to the upstream node, by kind",
            upstream_errors.clone(),
        );
        registry.register(
            "follower_lag_blocks",
            "Blocks between the node's head and the permissioning follower",
            follower_lag.clone(),
        );
        registry.register(
            "follower_synced_block",
            "Last block the permissioning follower applied",
            follower_synced.clone(),
        );
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts, by event and outcome",
            webhook_deliveries.clone(),
        );
        registry.register(
            "webhook_pending",
            "Webhook deliveries waiting for their next attempt",
            webhook_pending.clone(),
        );

        Self {
            registry,
            rpc_requests,
            rpc_duration,
            rpc_in_flight,
            signatures,
            nonce_resyncs,
            upstream_errors,
            follower_lag,
            follower_synced,
            webhook_deliveries,
            webhook_pending,
            http_refusals,
        }
    }

    /// The registry as OpenMetrics text (see [`OPENMETRICS_CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail; an error would only come from a metric's own
        // encoder, and then a partial page is still better than none.
        if let Err(error) = encode(&mut text, &self.registry) {
            tracing::warn!(target: "ecrop::ops", %error, "metrics encoding failed");
        }
        text
    }

    /// Counts one answered call of `method` with JSON-RPC error code `error_code` (`None` on
    /// success) that took `seconds`.
    pub fn record_call(&self, method: &str, error_code: Option<i32>, seconds: f64) {
        let method = method_label(method);
        let outcome = outcome_label(error_code);
        self.rpc_requests.get_or_create(&MethodOutcome { method, outcome }).inc();
        self.rpc_duration.get_or_create(&MethodOnly { method }).observe(seconds);
        if SIGNING_METHODS.contains(&method) {
            self.signatures.get_or_create(&MethodOutcome { method, outcome }).inc();
        }
    }

    /// Counts one failed relay to the node.
    pub fn upstream_error(&self, kind: &'static str) {
        self.upstream_errors.get_or_create(&Kind { kind }).inc();
    }

    /// Counts one request refused before any method, answered with HTTP `status`.
    pub fn http_refusal(&self, status: u16) {
        self.http_refusals.get_or_create(&Status { status: status_label(status) }).inc();
    }

    /// Counts a webhook delivery attempt.
    pub fn webhook_delivery(&self, event: &'static str, outcome: &'static str) {
        self.webhook_deliveries.get_or_create(&EventOutcome { event, outcome }).inc();
    }
}

/// The process-wide metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_unknown_methods() {
        assert_eq!(method_label("eth_getLogs"), "eth_getLogs");
        assert_eq!(method_label("eth_madeUp"), "eth_other");
        assert_eq!(method_label("perm_whatever"), "perm_other");
        assert_eq!(method_label("x"), "other");
        assert_eq!(method_label("zzz_eth_call"), "other");
        assert_eq!(method_label(""), "other");
    }

    #[test]
    fn classifies_outcomes() {
        assert_eq!(outcome_label(None), "ok");
        assert_eq!(outcome_label(Some(-32003)), "refused");
        assert_eq!(outcome_label(Some(-32099)), "refused");
        assert_eq!(outcome_label(Some(-32602)), "invalid_params");
        assert_eq!(outcome_label(Some(-32000)), "server_error");
        assert_eq!(outcome_label(Some(3)), "other_error");
    }

    #[test]
    fn encodes_names_and_labels() {
        let metrics = Metrics::new();
        metrics.record_call("eth_sign", Some(-32000), 0.002);
        metrics.record_call("eth_madeUp", None, 0.001);
        metrics.nonce_resyncs.inc();
        metrics.upstream_error("timeout");
        let text = metrics.encode();
        for line in [
            "ecrop_rpc_requests_total{method=\"eth_sign\",outcome=\"server_error\"} 1",
            "ecrop_rpc_requests_total{method=\"eth_other\",outcome=\"ok\"} 1",
            "ecrop_signatures_total{method=\"eth_sign\",outcome=\"server_error\"} 1",
            "ecrop_rpc_request_duration_seconds_count{method=\"eth_sign\"} 1",
            "ecrop_nonce_resyncs_total 1",
            "ecrop_upstream_errors_total{kind=\"timeout\"} 1",
            "ecrop_follower_lag_blocks 0",
            "ecrop_rpc_in_flight 0",
            "# EOF",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(!text.contains("eth_madeUp"));
    }
}
