//! `ecrop serve`: the long-running sidecar.

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context;
use clap::Args;

use super::{Cli, HsmArgs, LimitArgs};
use crate::{config, rpc, signer::Keyring, upstream::Upstream, wallet::Wallet};

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
}

/// Runs the sidecar until SIGINT or SIGTERM.
pub async fn run(cli: &Cli, args: &ServeArgs) -> anyhow::Result<()> {
    let mut file = super::load_file(cli)?;
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
    let wallet = Arc::new(Wallet::new(keyring, upstream));
    let server =
        rpc::start(&rpc_settings, wallet).await.context("starting the JSON-RPC endpoint")?;
    println!("ecrop listening on http://{} (HTTP and WebSocket)", server.local_addr());

    shutdown_signal().await;
    tracing::info!(target: "ecrop::rpc", "shutting down; finishing calls in flight");
    server.stop().await;
    Ok(())
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
