//! `ecrop serve`: the long-running sidecar.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use alloy::primitives::Address;
use anyhow::Context;
use clap::Args;

use super::{Cli, HsmArgs, LimitArgs, observe::Observability};
use crate::{
    config::{self, PermissioningFile},
    onchain::Deployment,
    ops,
    permissioning::{
        decision::{DEFAULT_DECISION_LISTEN, DecisionServer},
        follower::{DEFAULT_POLL_INTERVAL, Follower, FollowerConfig},
        policy::AllowlistPolicy,
    },
    rpc,
    signer::Keyring,
    signing_policy::SigningPolicy,
    store::Store,
    upstream::Upstream,
    wallet::Wallet,
};

/// Name of the governance contract in a deployment file.
const GOVERNANCE_NAME: &str = "ConsortiumGovernance";

/// Options of `ecrop serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on, HTTP and WebSocket [config: rpc.listen] [default: 127.0.0.1:8545].
    #[arg(long, env = "ECROP_RPC_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// HTTP JSON-RPC URL of the node [config: upstream.url] [default: http://127.0.0.1:8555].
    #[arg(long, env = "ECROP_UPSTREAM_URL", value_name = "URL")]
    pub upstream: Option<String>,

    /// Endpoint limits.
    #[command(flatten)]
    pub limits: LimitArgs,

    /// Token options.
    #[command(flatten)]
    pub hsm: HsmArgs,

    /// Permissioning options.
    #[command(flatten)]
    pub perm: PermArgs,

    /// Listen address of /metrics, /healthz and /readyz [config: ops.listen]
    /// [default: 127.0.0.1:9546].
    #[arg(long, env = "ECROP_OPS_LISTEN", value_name = "ADDR")]
    pub ops_listen: Option<SocketAddr>,

    /// API clients.
    #[command(flatten)]
    pub api: super::api_clients::ClientsFileArg,
}

/// Options of the permissioning follower, the decision API and send enforcement. Permissioning
/// is on when a governance address or a deployment file is given.
#[derive(Debug, Clone, Default, Args)]
pub struct PermArgs {
    /// Address of the ConsortiumGovernance contract [config: permissioning.governance].
    #[arg(long, env = "ECROP_PERM_GOVERNANCE", value_name = "ADDRESS")]
    pub perm_governance: Option<Address>,

    /// Deployment file naming ConsortiumGovernance, used without --perm-governance
    /// [config: permissioning.deployment].
    #[arg(long, env = "ECROP_PERM_DEPLOYMENT", value_name = "FILE")]
    pub perm_deployment: Option<PathBuf>,

    /// WebSocket URL of the node for new-block notifications; polling only without it
    /// [config: permissioning.ws_url].
    #[arg(long, env = "ECROP_PERM_WS_URL", value_name = "URL")]
    pub perm_ws_url: Option<String>,

    /// Listen address of the decision API [config: permissioning.decision_listen]
    /// [default: 127.0.0.1:8547].
    #[arg(long, env = "ECROP_DECISION_LISTEN", value_name = "ADDR")]
    pub decision_listen: Option<SocketAddr>,

    /// Directory of the RocksDB store [config: permissioning.store_path] [default: .ecrop/store].
    #[arg(long, env = "ECROP_STORE_PATH", value_name = "DIR")]
    pub store_path: Option<PathBuf>,

    /// Refuse sends from accounts the allowlist does not allow (true or false)
    /// [config: permissioning.enforce] [default: true].
    #[arg(long, env = "ECROP_PERM_ENFORCE", value_name = "BOOL")]
    pub perm_enforce: Option<bool>,

    /// Besu node (HTTP JSON-RPC with the PERM API) whose local allowlists follow the
    /// contracts [config: permissioning.besu_sync_url] [default: no sync].
    #[arg(long, env = "ECROP_BESU_SYNC_URL", value_name = "URL")]
    pub besu_sync_url: Option<String>,

    /// Besu permissions config file written for cold starts
    /// [config: permissioning.besu_permissions_file].
    #[arg(long, env = "ECROP_BESU_PERMISSIONS_FILE", value_name = "FILE")]
    pub besu_permissions_file: Option<PathBuf>,

    /// Polling interval in milliseconds [config: permissioning.poll_interval_ms] [default: 1000].
    #[arg(long, env = "ECROP_PERM_POLL_MS", value_name = "MS")]
    pub perm_poll_ms: Option<u64>,
}

impl PermArgs {
    /// Applies these overrides to the file's `[permissioning]` section.
    pub fn apply(&self, file: &mut PermissioningFile) {
        if let Some(governance) = self.perm_governance {
            file.governance = Some(governance);
        }
        if let Some(path) = &self.perm_deployment {
            file.deployment = Some(path.clone());
        }
        if let Some(url) = &self.perm_ws_url {
            file.ws_url = Some(url.clone());
        }
        if let Some(listen) = self.decision_listen {
            file.decision_listen = Some(listen);
        }
        if let Some(path) = &self.store_path {
            file.store_path = Some(path.clone());
        }
        if let Some(enforce) = self.perm_enforce {
            file.enforce = Some(enforce);
        }
        if let Some(ms) = self.perm_poll_ms {
            file.poll_interval_ms = Some(ms);
        }
        if let Some(url) = &self.besu_sync_url {
            file.besu_sync_url = Some(url.clone());
        }
        if let Some(path) = &self.besu_permissions_file {
            file.besu_permissions_file = Some(path.clone());
        }
    }
}

/// The running permissioning parts.
struct Permissioning {
    follower: Follower,
    decisions: DecisionServer,
    enforce: bool,
    /// Stops the Besu allowlist sync, when it runs.
    sync_shutdown: Option<tokio::sync::watch::Sender<bool>>,
}

/// Starts the follower and the decision API when permissioning is configured.
async fn start_permissioning(
    file: &PermissioningFile,
    upstream_url: &str,
    store: Store,
) -> anyhow::Result<Option<Permissioning>> {
    let governance = match (file.governance, &file.deployment) {
        (Some(address), _) => address,
        (None, Some(path)) => Deployment::load(path)?.address(GOVERNANCE_NAME)?,
        (None, None) => return Ok(None),
    };
    let poll_interval = match file.poll_interval_ms {
        Some(0) => {
            anyhow::bail!("config invalid: permissioning.poll_interval_ms must be above zero")
        }
        Some(ms) => Duration::from_millis(ms),
        None => DEFAULT_POLL_INTERVAL,
    };
    let follower = Follower::spawn(
        FollowerConfig {
            http_url: upstream_url.to_owned(),
            ws_url: file.ws_url.clone(),
            governance,
            poll_interval,
        },
        store,
    )?;
    let listen = match file.decision_listen {
        Some(listen) => listen,
        None => DEFAULT_DECISION_LISTEN.parse().context("default decision listen address")?,
    };
    let decisions = DecisionServer::start(listen, follower.state(), follower.status()).await?;
    let enforce = file.enforce.unwrap_or(true);
    tracing::info!(target: "ecrop::perm", %governance, enforce, "permissioning on");

    let sync_shutdown = match &file.besu_sync_url {
        Some(url) => {
            use crate::permissioning::besu_sync::{self, BesuClient, ConfigFiles, Syncer};
            let files = ConfigFiles {
                nodes: file.besu_permissions_file.clone(),
                accounts: file.besu_permissions_file.clone(),
            };
            let syncer = Syncer::new(BesuClient::new(url)?, files, true, true);
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let (reports, _) = tokio::sync::watch::channel(None);
            tokio::spawn(besu_sync::run_with_follower(syncer, follower.state(), reports, stopped));
            tracing::info!(target: "ecrop::perm", besu = %url, "besu allowlist sync on");
            Some(stop)
        }
        None => None,
    };
    Ok(Some(Permissioning { follower, decisions, enforce, sync_shutdown }))
}

/// Runs the sidecar until SIGINT or SIGTERM.
pub async fn run(cli: &Cli, args: &ServeArgs) -> anyhow::Result<()> {
    let mut file = super::load_file(cli)?;
    let signing = SigningPolicy::from_file(&file.signing)?;
    args.hsm.apply(&mut file.hsm);
    let rpc_settings = super::rpc_settings(&file, args.listen, &args.limits)?;
    let upstream_settings =
        super::upstream_settings(&file, args.upstream.as_deref(), &args.limits)?;

    // An unusable token does not stop the sidecar: reads pass through and signing answers
    // with the reason (the keyring logs it) until the token can be opened.
    let keyring = Keyring::new(config::token_config(&file.hsm));
    if let crate::signer::KeyringStatus::Ready { keys } = keyring.status().await {
        tracing::info!(target: "ecrop::signer", keys, "token ready");
    }

    let upstream = Arc::new(Upstream::new(upstream_settings, rpc_settings.max_response_bytes)?);
    tracing::info!(target: "ecrop::upstream", url = %upstream.url(), "upstream node");
    args.perm.apply(&mut file.permissioning);

    // One store for the audit log, the webhooks' pending deliveries and the follower.
    let store_path = file
        .permissioning
        .store_path
        .clone()
        .unwrap_or_else(|| Path::new(config::DEFAULT_STORE_PATH).into());
    std::fs::create_dir_all(&store_path)
        .with_context(|| format!("creating the store directory ({})", store_path.display()))?;
    let store = Store::open(&store_path)?;
    let observe = Observability::start(&file, store.clone(), "serve").await?;
    // From here on, the log records how the run ended, a failed start included.
    let outcome = async {
        let permissioning =
            start_permissioning(&file.permissioning, upstream.url().as_str(), store.clone()).await?;

        let metrics = ops::metrics::global();
        let max_lag = file.ops.max_follower_lag_blocks();
        let mut checks: Vec<Box<dyn ops::ReadinessCheck>> = vec![
            Box::new(ops::server::UpstreamCheck(upstream.clone())),
            Box::new(ops::server::TokenCheck(keyring.clone())),
        ];
        checks.extend(observe.readiness_check());
        let notifier = observe.notifier();
        let monitor = permissioning.as_ref().map(|perm| {
            ops::watch::FollowerMonitor::spawn(
                perm.follower.status(),
                Some(upstream.clone()),
                Arc::new(notifier.clone()),
                metrics,
                max_lag,
            )
        });
        if let Some(monitor) = &monitor {
            checks.push(Box::new(ops::server::FollowerCheck::new(monitor.lag(), max_lag)));
        }
        let chain_events = notifier.wants(ops::EventKind::CustodyWithdrawalRequested)
            || notifier.wants(ops::EventKind::RoleGranted);
        let watcher = match ops::watch::ChainWatchConfig::from_ops(&file.ops)? {
            Some(watch) if chain_events => Some(ops::watch::ChainWatcher::spawn(
                watch,
                upstream.clone(),
                store.clone(),
                Arc::new(notifier.clone()),
            )?),
            _ => None,
        };
        let ops_listen = args.ops_listen.unwrap_or_else(|| file.ops.listen());
        let ops_server = ops::OpsServer::start(ops_listen, metrics, checks)
            .await
            .context("starting the ops endpoint (/metrics, /healthz, /readyz)")?;

        tracing::info!(target: "ecrop::wallet", keys = signing.key_count(), default = ?signing.default_rule(), "signing policy");
        let mut wallet = Wallet::new(keyring, upstream).with_signing_policy(signing);
        if let Some(perm) = permissioning.as_ref().filter(|p| p.enforce) {
            wallet = wallet.with_policy(Arc::new(AllowlistPolicy::new(perm.follower.state())));
        }
        let access = super::api_clients::access(
            &file,
            &args.api,
            &rpc_settings,
            crate::api::AccessMode::Required,
            observe.client_changes(),
        )?.with_refusal_hook(observe.refusal_hook());
        observe.clients_loaded(access.clients()).await?;
        let server =
            rpc::start(&rpc_settings, Arc::new(wallet), access, observe.observers(&rpc_settings))
                .await
                .context("starting the JSON-RPC endpoint")?;
        println!("ecrop listening on http://{} (HTTP and WebSocket)", server.local_addr());
        println!("ecrop ops on http://{} (/metrics, /healthz, /readyz)", ops_server.local_addr());
        if let Some(perm) = &permissioning {
            println!("ecrop decisions on http://{}", perm.decisions.local_addr());
        }

        shutdown_signal().await;
        tracing::info!(target: "ecrop::rpc", "shutting down; finishing calls in flight");
        // The endpoint first: calls in flight are answered (and recorded) before anything they
        // use stops.
        server.stop().await;
        if let Some(watcher) = watcher {
            watcher.stop().await;
        }
        if let Some(monitor) = monitor {
            monitor.stop().await;
        }
        if let Some(perm) = permissioning {
            if let Some(stop) = &perm.sync_shutdown {
                let _ = stop.send(true);
            }
            perm.decisions.stop().await;
            perm.follower.stop().await;
        }
        ops_server.stop().await;
        anyhow::Ok(())
    }
    .await;
    observe.stop(outcome.as_ref().err()).await;
    tracing::info!(target: "ecrop::rpc", "stopped");
    outcome
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}
