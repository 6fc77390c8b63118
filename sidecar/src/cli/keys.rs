//! `ecrop keys`: secp256k1 keys inside the PKCS#11 token.

use anyhow::Context;
use clap::{Args, Subcommand};
use serde::Serialize;

use super::{Cli, HsmArgs};
use crate::{
    config,
    signer::{KeyInfo, Token},
};

/// Key subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a secp256k1 key pair inside the token; the private key is sensitive and can
    /// never be extracted.
    Generate(GenerateArgs),
    /// List the token's secp256k1 keys: label, address and public key.
    List(ListArgs),
}

/// Options of `ecrop keys generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Label of the new key; must not exist in the token yet.
    #[arg(long, value_name = "LABEL")]
    pub label: String,
    /// Print the key as JSON.
    #[arg(long)]
    pub json: bool,
    /// Token options.
    #[command(flatten)]
    pub hsm: HsmArgs,
}

/// Options of `ecrop keys list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print the keys as a JSON array.
    #[arg(long)]
    pub json: bool,
    /// Token options.
    #[command(flatten)]
    pub hsm: HsmArgs,
}

/// A key as printed with `--json`.
#[derive(Serialize)]
struct KeyOut<'a> {
    label: &'a str,
    address: String,
    public_key: String,
}

impl<'a> From<&'a KeyInfo> for KeyOut<'a> {
    fn from(key: &'a KeyInfo) -> Self {
        Self {
            label: &key.label,
            address: key.address.to_checksum(None),
            public_key: format!("0x{}", hex::encode(key.public_key)),
        }
    }
}

/// Runs a key subcommand.
pub async fn run(cli: &Cli, command: &KeysCommand) -> anyhow::Result<()> {
    let mut file = super::load_file(cli)?;
    let hsm = match command {
        KeysCommand::Generate(args) => &args.hsm,
        KeysCommand::List(args) => &args.hsm,
    };
    hsm.apply(&mut file.hsm);
    let token_config = config::token_config(&file.hsm);
    let token = tokio::task::spawn_blocking(move || Token::open(&token_config))
        .await
        .context("token task")??;

    match command {
        KeysCommand::Generate(args) => {
            let label = args.label.clone();
            if label.is_empty() || label.len() > 64 {
                anyhow::bail!("key label must be 1 to 64 bytes long");
            }
            if label.chars().any(char::is_control) {
                anyhow::bail!("key label must not contain control characters");
            }
            let key = tokio::task::spawn_blocking(move || token.generate_key(&label))
                .await
                .context("token task")??;
            tracing::info!(target: "ecrop::signer", label = %key.label, address = %key.address, "key generated");
            print_keys(std::slice::from_ref(&key), args.json, false)?;
        }
        KeysCommand::List(args) => {
            let keys =
                tokio::task::spawn_blocking(move || token.keys()).await.context("token task")??;
            print_keys(&keys, args.json, true)?;
        }
    }
    Ok(())
}

fn print_keys(keys: &[KeyInfo], json: bool, as_array: bool) -> anyhow::Result<()> {
    let out: Vec<KeyOut<'_>> = keys.iter().map(KeyOut::from).collect();
    if json {
        let text = match (as_array, out.first()) {
            (false, Some(one)) => serde_json::to_string_pretty(one)?,
            _ => serde_json::to_string_pretty(&out)?,
        };
        println!("{text}");
        return Ok(());
    }
    if out.is_empty() {
        println!("no secp256k1 keys in the token");
        return Ok(());
    }
    let width = out.iter().map(|k| k.label.len()).max().unwrap_or(5).max(5);
    println!("{:<width$}  {:<42}  public key", "label", "address");
    for key in &out {
        println!("{:<width$}  {}  {}", key.label, key.address, key.public_key);
    }
    Ok(())
}
