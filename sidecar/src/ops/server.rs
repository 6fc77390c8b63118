//! The ops HTTP endpoint: `GET /metrics` (OpenMetrics text), `GET /healthz` (200 while the
//! process serves) and `GET /readyz` (200 only when every [`ReadinessCheck`] passes, else 503;
//! the JSON body lists each check with `ok` and, when failing, `reason`).
//!
//! The server knows its checks only through the [`ReadinessCheck`] trait; ready-made checks
//! for the upstream node, the token and the follower are [`UpstreamCheck`], [`TokenCheck`] and
//! [`FollowerCheck`]. Checks run concurrently, each bounded by [`CHECK_TIMEOUT`]. Reasons are
//! the components' own error messages, which never carry secrets.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Json, Router,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use futures::future::BoxFuture;
use serde::Serialize;
use tokio::{sync::watch, task::JoinHandle};

use super::{OpsError, metrics::Metrics, metrics::OPENMETRICS_CONTENT_TYPE, watch::FollowerLag};
use crate::{
    signer::{Keyring, KeyringStatus},
    upstream::Upstream,
};

/// Longest time one readiness check may take before it counts as failed; below the usual
/// probe timeouts of orchestrators (Kubernetes defaults to 1 s per probe, many set 3–5 s).
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// One condition of readiness.
pub trait ReadinessCheck: Send + Sync {
    /// Short name shown in `/readyz` (`upstream`, `token`, `follower`).
    fn name(&self) -> &'static str;
    /// `Ok` when ready; else the reason.
    fn check(&self) -> BoxFuture<'_, Result<(), String>>;
}

/// Ready when the upstream node answers `eth_blockNumber`.
#[derive(Debug)]
pub struct UpstreamCheck(pub Arc<Upstream>);

impl ReadinessCheck for UpstreamCheck {
    fn name(&self) -> &'static str {
        "upstream"
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.0.forward("eth_blockNumber", None).await.map(drop).map_err(|e| e.to_string())
        })
    }
}

/// Ready when the token is open and logged in.
#[derive(Debug)]
pub struct TokenCheck(pub Keyring);

impl ReadinessCheck for TokenCheck {
    fn name(&self) -> &'static str {
        "token"
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            match self.0.status().await {
                KeyringStatus::Ready { .. } => Ok(()),
                KeyringStatus::Unavailable { reason } => Err(reason),
            }
        })
    }
}

/// Ready when the permissioning follower is within `max_lag` blocks of the node's head.
#[derive(Debug)]
pub struct FollowerCheck {
    lag: watch::Receiver<FollowerLag>,
    max_lag: u64,
}

impl FollowerCheck {
    /// Reads the lag published by [`super::watch::FollowerMonitor`].
    pub fn new(lag: watch::Receiver<FollowerLag>, max_lag: u64) -> Self {
        Self { lag, max_lag }
    }
}

impl ReadinessCheck for FollowerCheck {
    fn name(&self) -> &'static str {
        "follower"
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        let lag = self.lag.borrow().clone();
        let max = self.max_lag;
        Box::pin(async move {
            match (lag.synced, lag.lag) {
                (None, _) => Err("follower has no permissioning state yet".to_owned()),
                (Some(_), None) => Err("node head not known yet".to_owned()),
                (Some(synced), Some(lag)) if lag > max => Err(format!(
                    "follower at block {synced} is {lag} blocks behind the head (most {max})"
                )),
                _ => Ok(()),
            }
        })
    }
}

/// A check made of a name and a closure returning a future, for conditions without a type of
/// their own.
pub struct FnCheck<F> {
    name: &'static str,
    check: F,
}

impl<F> FnCheck<F>
where
    F: Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync,
{
    /// A check named `name` that runs `check`.
    pub fn new(name: &'static str, check: F) -> Self {
        Self { name, check }
    }
}

impl<F> ReadinessCheck for FnCheck<F>
where
    F: Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync,
{
    fn name(&self) -> &'static str {
        self.name
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        (self.check)()
    }
}

/// One line of the `/readyz` body.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// Check name.
    pub name: &'static str,
    /// Whether it passed.
    pub ok: bool,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The `/readyz` body.
#[derive(Debug, Clone, Serialize)]
pub struct Readiness {
    /// Whether every check passed.
    pub ready: bool,
    /// Each check, in configuration order.
    pub checks: Vec<CheckReport>,
}

/// Runs every check concurrently.
pub async fn readiness(checks: &[Box<dyn ReadinessCheck>]) -> Readiness {
    let reports = futures::future::join_all(checks.iter().map(|check| async move {
        let result = match tokio::time::timeout(CHECK_TIMEOUT, check.check()).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {} ms", CHECK_TIMEOUT.as_millis())),
        };
        CheckReport { name: check.name(), ok: result.is_ok(), reason: result.err() }
    }))
    .await;
    Readiness { ready: reports.iter().all(|r| r.ok), checks: reports }
}

struct Shared {
    metrics: &'static Metrics,
    checks: Vec<Box<dyn ReadinessCheck>>,
}

/// The running ops endpoint.
#[derive(Debug)]
pub struct OpsServer {
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl OpsServer {
    /// Binds `listen` and serves `metrics` and the `checks`.
    pub async fn start(
        listen: SocketAddr,
        metrics: &'static Metrics,
        checks: Vec<Box<dyn ReadinessCheck>>,
    ) -> Result<Self, OpsError> {
        let bind = |source| OpsError::Bind { addr: listen, source };
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(bind)?;
        let local_addr = listener.local_addr().map_err(bind)?;
        let shared = Arc::new(Shared { metrics, checks });
        let router = Router::new()
            .route("/metrics", get(metrics_page))
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .with_state(shared);
        let (shutdown, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            });
            if let Err(error) = serve.await {
                tracing::warn!(target: "ecrop::ops", %error, "ops endpoint stopped");
            }
        });
        tracing::info!(target: "ecrop::ops", %local_addr, "ops endpoint listening (/metrics, /healthz, /readyz)");
        Ok(Self { local_addr, shutdown, task: Some(task) })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting connections and waits for open requests to finish.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for OpsServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

async fn metrics_page(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], shared.metrics.encode())
}

async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let report = readiness(&shared.checks).await;
    let status = if report.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    if !report.ready {
        let failing: Vec<&str> = report.checks.iter().filter(|c| !c.ok).map(|c| c.name).collect();
        tracing::debug!(target: "ecrop::ops", ?failing, "not ready");
    }
    (status, Json(report))
}
