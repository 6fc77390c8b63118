//! Operating the sidecar: Prometheus metrics, health and readiness, webhooks.
//!
//! - [`metrics`]: one process-wide registry ([`metrics::global`]) with bounded labels;
//!   [`RpcMetricsLayer`] counts every JSON-RPC call.
//! - [`server`]: the ops HTTP listener (`/metrics`, `/healthz`, `/readyz`), loopback by
//!   default, separate from the dApp endpoint so that scraping needs no API credentials.
//! - [`webhook`]: signed deliveries of [`Event`]s with retries; pending deliveries persist in
//!   the store (`webhook/...` keys) and resume after a restart. Secrets are read from a file
//!   or the environment, never from the configuration file, and never logged.
//! - [`watch`]: the sources of chain events (custody withdrawal requests, role grants) and of
//!   the follower-lag event and gauges.
//!
//! Nothing here fails the endpoint: metrics, readiness and notifications observe it.

pub mod event;
pub mod layer;
pub mod metrics;
pub mod server;
pub mod watch;
pub mod webhook;

use std::{net::SocketAddr, path::PathBuf};

use serde::Deserialize;

pub use event::{Event, EventKind};
pub use layer::{RefusalEvents, RefusalEventsLayer, RpcMetrics, RpcMetricsLayer};
pub use server::{OpsServer, ReadinessCheck};
pub use webhook::{Notifier, WebhookSettings, Webhooks};

/// Default listen address of the ops endpoint: loopback, next to the JSON-RPC ports.
pub const DEFAULT_OPS_LISTEN: &str = "127.0.0.1:9546";
/// Default largest follower lag, in blocks, that still counts as caught up: ten 2-second QBFT
/// blocks, longer than a poll interval plus a slow block.
pub const DEFAULT_MAX_FOLLOWER_LAG_BLOCKS: u64 = 10;
/// Default confirmation depth of the chain watcher: QBFT blocks are final, so one block only
/// guards against a dev chain's reorganisations of the head.
pub const DEFAULT_WATCH_CONFIRMATIONS: u64 = 1;
/// Default poll interval of the chain watcher, in milliseconds.
pub const DEFAULT_WATCH_POLL_MS: u64 = 2_000;

/// Errors of the ops module.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// A configuration value is missing, out of range or inconsistent.
    #[error("config invalid: {0}")]
    Invalid(String),
    /// A webhook's secret file could not be read or is unusable. The secret itself is never
    /// part of the message.
    #[error("webhook secret file not usable ({path}): {reason}")]
    SecretFile {
        /// File named by `secret_file`.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A webhook's secret environment variable is not set or empty.
    #[error("webhook secret environment variable ({name}) is not set or empty")]
    SecretEnv {
        /// Variable named by `secret_env`.
        name: String,
    },
    /// The ops listener could not be bound.
    #[error("cannot listen on ({addr}): {source}")]
    Bind {
        /// Address asked for.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The deployment file could not be used.
    #[error(transparent)]
    Chain(#[from] crate::onchain::ChainError),
    /// The upstream node failed.
    #[error(transparent)]
    Upstream(#[from] crate::upstream::UpstreamError),
    /// The webhook dispatcher is not running any more.
    #[error("webhook dispatcher stopped")]
    Stopped,
}

/// `[ops]` section of the configuration file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsFile {
    /// Listen address of `/metrics`, `/healthz` and `/readyz` (default [`DEFAULT_OPS_LISTEN`]).
    pub listen: Option<SocketAddr>,
    /// Largest follower lag, in blocks, for `/readyz` and the `follower_lagging` event
    /// (default [`DEFAULT_MAX_FOLLOWER_LAG_BLOCKS`]).
    pub max_follower_lag_blocks: Option<u64>,
    /// Deployment file naming `Custody` and `EcropAccessManager`, whose events the chain
    /// watcher turns into webhook events; no chain watcher when absent.
    pub deployment: Option<PathBuf>,
    /// Blocks a log must be below the head before the chain watcher reports it (default
    /// [`DEFAULT_WATCH_CONFIRMATIONS`]).
    pub watch_confirmations: Option<u64>,
    /// Poll interval of the chain watcher, in milliseconds (default [`DEFAULT_WATCH_POLL_MS`]).
    pub watch_poll_ms: Option<u64>,
}

impl OpsFile {
    /// The listen address, defaulted.
    pub fn listen(&self) -> SocketAddr {
        self.listen.unwrap_or_else(|| {
            DEFAULT_OPS_LISTEN.parse().unwrap_or(SocketAddr::from(([127, 0, 0, 1], 9546)))
        })
    }

    /// The follower-lag threshold, defaulted.
    pub fn max_follower_lag_blocks(&self) -> u64 {
        self.max_follower_lag_blocks.unwrap_or(DEFAULT_MAX_FOLLOWER_LAG_BLOCKS)
    }
}

/// One `[[webhooks]]` entry of the configuration file. Resolved (secret read, values checked)
/// by [`WebhookSettings::from_file`].
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookFile {
    /// Receiver URL; `http` or `https` only (checked when the file is parsed).
    #[serde(deserialize_with = "webhook::deserialize_url")]
    pub url: String,
    /// File holding the HMAC secret (the whole file, a trailing newline removed).
    pub secret_file: Option<PathBuf>,
    /// Environment variable holding the HMAC secret.
    pub secret_env: Option<String>,
    /// Events sent to this receiver.
    pub events: Vec<EventKind>,
    /// Attempts before a delivery is given up (default [`webhook::DEFAULT_MAX_ATTEMPTS`]).
    pub max_attempts: Option<u32>,
    /// Delay before the first retry, in milliseconds; doubled per attempt, with jitter
    /// (default [`webhook::DEFAULT_INITIAL_BACKOFF_MS`]).
    pub initial_backoff_ms: Option<u64>,
    /// Longest delay between attempts, in milliseconds (default
    /// [`webhook::DEFAULT_MAX_BACKOFF_MS`]).
    pub max_backoff_ms: Option<u64>,
    /// Timeout of one attempt, in milliseconds (default [`webhook::DEFAULT_TIMEOUT_MS`]).
    pub timeout_ms: Option<u64>,
}
