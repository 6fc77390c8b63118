//! `ecrop key-service`: the validator's node key, served to a Besu security-module plugin.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Args;

use super::{Cli, HsmArgs};
use crate::{config, signer::Token};

/// Options of `ecrop key-service`.
#[derive(Debug, Args)]
pub struct KeyServiceArgs {
    /// Address to listen on; keep it on loopback, next to the Besu node.
    #[arg(
        long,
        env = "ECROP_KEY_SERVICE_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:9000"
    )]
    pub listen: SocketAddr,

    /// Label of the node key in the token (`ecrop genesis` names it `node`).
    #[arg(long, env = "ECROP_NODE_KEY_LABEL", value_name = "LABEL", default_value = "node")]
    pub key_label: String,

    /// Token options.
    #[command(flatten)]
    pub hsm: HsmArgs,
}

/// Serves the node key until SIGINT or SIGTERM.
pub async fn run(cli: &Cli, args: &KeyServiceArgs) -> anyhow::Result<()> {
    let mut file = super::load_file(cli)?;
    args.hsm.apply(&mut file.hsm);
    let token_config = config::token_config(&file.hsm);
    let label = args.key_label.clone();
    let (token, key) = tokio::task::spawn_blocking(move || {
        let token = Token::open(&token_config)?;
        let key = token.keys()?.into_iter().find(|k| k.label == label);
        Ok::<_, crate::signer::SignerError>((token, key))
    })
    .await
    .context("token task")??;
    let key = key.with_context(|| format!("no key labelled {} in the token", args.key_label))?;
    let (local, handle) =
        crate::keyservice::serve(token, key.clone(), args.listen, super::serve::shutdown_signal())
            .await
            .with_context(|| format!("cannot listen on ({})", args.listen))?;
    println!("ecrop key service on http://{local} for node key {} ({})", key.label, key.address);
    handle.await.context("key service task")?;
    Ok(())
}
