//! `ecrop contracts`: deploy the platform's contracts and call any of their functions.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::ChainArgs;
use crate::onchain::{
    self, Artifacts, Deployment, Matrix, find_function, format_value, parse_args,
};

/// Contract subcommands.
#[derive(Debug, Subcommand)]
pub enum ContractsCommand {
    /// Deploy the platform's contracts that are missing and wire the permission matrix from
    /// the matrix file; safe to run again (what is in place is kept).
    Deploy(DeployArgs),
    /// Call a view function: `ecrop contracts call SecuritiesRegister totalSupply DE0007164600`.
    Call(CallArgs),
    /// Send a transaction: `ecrop contracts send SecuritiesRegister setPaused true`.
    Send(CallArgs),
    /// Print the deployed addresses.
    Addresses(AddressesArgs),
}

/// Options of `ecrop contracts deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The permission matrix files to wire, repeated or comma-separated.
    #[arg(
        long,
        env = "ECROP_MATRIX",
        value_name = "FILE",
        value_delimiter = ',',
        default_values = ["contracts/matrix.json", "contracts/custody.matrix.json"]
    )]
    pub matrix: Vec<PathBuf>,
    /// Chain options.
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// Options of `ecrop contracts call` and `send`.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// Contract name, as in the deployment file.
    #[arg(value_name = "CONTRACT")]
    pub contract: String,
    /// Function name.
    #[arg(value_name = "FUNCTION")]
    pub function: String,
    /// Arguments, in Solidity literal form (numbers, 0x hex, true/false, [a,b], (a,b));
    /// put negative numbers after `--`.
    #[arg(value_name = "ARG")]
    pub args: Vec<String>,
    /// Block to read at (calls only; default latest).
    #[arg(long, value_name = "N")]
    pub block: Option<u64>,
    /// Chain options.
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// Options of `ecrop contracts addresses`.
#[derive(Debug, Args)]
pub struct AddressesArgs {
    /// Chain options.
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// Runs a contracts subcommand.
pub async fn run(command: &ContractsCommand) -> anyhow::Result<()> {
    match command {
        ContractsCommand::Deploy(args) => deploy(args).await,
        ContractsCommand::Call(args) => call(args, false).await,
        ContractsCommand::Send(args) => call(args, true).await,
        ContractsCommand::Addresses(args) => {
            let deployment = Deployment::load(&args.chain.deployment)?;
            if args.chain.json {
                println!("{}", serde_json::to_string_pretty(&deployment)?);
            } else {
                println!(
                    "chain {} (events from block {})",
                    deployment.chain_id, deployment.start_block
                );
                for (name, address) in &deployment.contracts {
                    println!("  {name:<20} {address}");
                }
            }
            Ok(())
        }
    }
}

async fn deploy(args: &DeployArgs) -> anyhow::Result<()> {
    let artifacts = Artifacts::new(&args.chain.artifacts);
    let matrix = Matrix::load_all(&args.matrix)?;
    let client = args.chain.client(&artifacts)?;
    let quiet = args.chain.json;
    let progress = move |line: &str| {
        if !quiet {
            eprintln!("{line}");
        }
    };
    let report =
        onchain::deploy(&client, &artifacts, &matrix, &args.chain.deployment, &progress).await?;
    if args.chain.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "deployed {} contract(s), kept {}; matrix: {} function(s) set, {} already in place; {} system grant(s)",
        report.deployed.len(),
        report.kept.len(),
        report.functions_set,
        report.functions_kept,
        report.grants_made
    );
    for (name, address) in &report.contracts {
        println!("  {name:<20} {address}");
    }
    println!("addresses written to {}", args.chain.deployment.display());
    Ok(())
}

async fn call(args: &CallArgs, send: bool) -> anyhow::Result<()> {
    let artifacts = Artifacts::new(&args.chain.artifacts);
    let deployment = Deployment::load(&args.chain.deployment)?;
    let address = deployment.address(&args.contract)?;
    let artifact = artifacts.get(&args.contract)?;
    let function = find_function(&args.contract, &artifact.abi, &args.function, args.args.len())?;
    let values = parse_args(function, &args.args)?;
    let client = args.chain.client(&artifacts)?;

    if send {
        let sent =
            client.send(&args.contract, &artifact.abi, address, &args.function, &values).await?;
        if args.chain.json {
            println!(
                "{}",
                serde_json::json!({"hash": sent.hash, "block": sent.block, "gasUsed": sent.gas_used})
            );
        } else {
            println!("{} mined in block {} (gas {})", sent.hash, sent.block, sent.gas_used);
        }
        return Ok(());
    }

    let output = client
        .call(&args.contract, &artifact.abi, address, &args.function, &values, args.block)
        .await
        .with_context(|| format!("calling {}.{}", args.contract, function.signature()))?;
    if args.chain.json {
        let named: serde_json::Map<String, serde_json::Value> = function
            .outputs
            .iter()
            .zip(&output)
            .enumerate()
            .map(|(i, (param, value))| {
                let key = if param.name.is_empty() { i.to_string() } else { param.name.clone() };
                (key, serde_json::Value::String(format_value(value)))
            })
            .collect();
        println!("{}", serde_json::Value::Object(named));
    } else {
        for value in &output {
            println!("{}", format_value(value));
        }
    }
    Ok(())
}
