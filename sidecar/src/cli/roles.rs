//! `ecrop roles`: grants of the permission matrix's roles, with expiry and four eyes.

use std::collections::BTreeMap;

use alloy::{
    dyn_abi::{DynSolValue, JsonAbiExt},
    primitives::{Address, U256},
};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::json;

use super::{
    ChainArgs,
    platform::{Platform, address, time_arg, uint},
};
use crate::onchain::{Matrix, events::decode_logs, find_function};

const MANAGER: &str = "EcropAccessManager";

/// Role subcommands.
#[derive(Debug, Subcommand)]
pub enum RolesCommand {
    /// Grant a role, optionally until an expiry. Sensitive roles need a second platform admin
    /// after bootstrap: this then files a proposal and prints its id.
    Grant(GrantArgs),
    /// Approve a pending proposal of another platform admin; it is executed at once.
    Approve(ApproveArgs),
    /// Revoke a role (one platform admin suffices).
    Revoke(RevokeArgs),
    /// List the grants, rebuilt from the access manager's events.
    List(ListArgs),
    /// Close the bootstrap window; from then on sensitive changes need four eyes.
    FinishBootstrap(PlainArgs),
}

/// Options of `roles grant`.
#[derive(Debug, Args)]
pub struct GrantArgs {
    /// Role name, e.g. REGISTER_KEEPER (case-insensitive).
    #[arg(long, value_name = "ROLE")]
    pub role: String,
    /// Account receiving the role.
    #[arg(long, value_name = "ADDRESS")]
    pub account: Address,
    /// End of the grant (Unix seconds, YYYY-MM-DD or +Nd); none when absent.
    #[arg(long, value_name = "TIME")]
    pub expiry: Option<String>,
    /// The permission matrix naming the roles.
    #[arg(long, value_name = "FILE", default_value = "contracts/matrix.json")]
    pub matrix: std::path::PathBuf,
    /// Chain options.
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// Options of `roles approve`.
#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// Proposal id printed by `roles grant`.
    #[arg(long, value_name = "ID")]
    pub proposal: u64,
    /// Chain options.
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// Options of `roles revoke`.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// Role name.
    #[arg(long, value_name = "ROLE")]
    pub role: String,
    /// Account losing the role.
    #[arg(long, value_name = "ADDRESS")]
    pub account: Address,
    /// The permission matrix naming the roles.
    #[arg(long, value_name = "FILE", default_value = "contracts/matrix.json")]
    pub matrix: std::path::PathBuf,
    /// Chain options.
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// Options of `roles list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The permission matrix naming the roles.
    #[arg(long, value_name = "FILE", default_value = "contracts/matrix.json")]
    pub matrix: std::path::PathBuf,
    /// Chain options.
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// Options of commands that take nothing else.
#[derive(Debug, Args)]
pub struct PlainArgs {
    /// Chain options.
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// Runs a role subcommand.
pub async fn run(command: &RolesCommand) -> anyhow::Result<()> {
    match command {
        RolesCommand::Grant(a) => grant(a).await,
        RolesCommand::Approve(a) => approve(a).await,
        RolesCommand::Revoke(a) => {
            let p = Platform::open(&a.chain).await?;
            let matrix = Matrix::load(&a.matrix)?;
            let role = matrix.role_id(&a.role)?;
            let sent = p
                .send(MANAGER, "revokeRole", vec![uint(U256::from(role), 64), address(a.account)])
                .await?;
            p.done(
                &format!("{} revoked from {}", matrix.role_name(role), a.account),
                &sent,
                json!({"role": role}),
            );
            Ok(())
        }
        RolesCommand::List(a) => list(a).await,
        RolesCommand::FinishBootstrap(a) => {
            let p = Platform::open(&a.chain).await?;
            let sent = p.send(MANAGER, "finishBootstrap", vec![]).await?;
            p.done(
                "bootstrap finished: sensitive changes now need a second platform admin",
                &sent,
                json!({}),
            );
            Ok(())
        }
    }
}

async fn grant(a: &GrantArgs) -> anyhow::Result<()> {
    let p = Platform::open(&a.chain).await?;
    let matrix = Matrix::load(&a.matrix)?;
    let role = matrix.role_id(&a.role)?;
    let expiry = a.expiry.as_deref().map(time_arg).transpose()?.unwrap_or(0);
    let args = vec![
        uint(U256::from(role), 64),
        address(a.account),
        uint(U256::ZERO, 32),
        uint(U256::from(expiry), 48),
    ];
    let what = format!(
        "{} granted to {}{}",
        matrix.role_name(role),
        a.account,
        if expiry == 0 { String::new() } else { format!(" until {expiry}") }
    );

    let bootstrapping = matches!(
        p.call(MANAGER, "bootstrapping", vec![], None).await?.first(),
        Some(DynSolValue::Bool(true))
    );
    let sensitive = matches!(
        p.call(MANAGER, "isRoleSensitive", vec![uint(U256::from(role), 64)], None).await?.first(),
        Some(DynSolValue::Bool(true))
    );
    if bootstrapping || !sensitive {
        let sent = p.send(MANAGER, "grantRoleWithExpiry", args).await?;
        p.done(&what, &sent, json!({"role": role, "account": a.account, "expiry": expiry}));
        return Ok(());
    }

    let abi = p.artifacts.get(MANAGER)?.abi;
    let data = find_function(MANAGER, &abi, "grantRoleWithExpiry", 4)?.abi_encode_input(&args)?;
    let sent = p.send(MANAGER, "propose", vec![DynSolValue::Bytes(data)]).await?;
    let id = p.event_u64(MANAGER, &sent, "ProposalCreated", "proposalId")?;
    p.done(
        &format!("proposal {id} filed ({what} once approved); another platform admin runs `ecrop roles approve --proposal {id}`"),
        &sent,
        json!({"proposalId": id}),
    );
    Ok(())
}

async fn approve(a: &ApproveArgs) -> anyhow::Result<()> {
    let p = Platform::open(&a.chain).await?;
    let abi = p.artifacts.get(MANAGER)?.abi;
    let latest = p.client.block_number().await?;
    let logs =
        p.event_logs(MANAGER, &["ProposalCreated"], p.deployment.start_block, latest).await?;
    let created = decode_logs(&abi, &logs)
        .into_iter()
        .find(|e| e.name == "ProposalCreated" && e.u64("proposalId").ok() == Some(a.proposal))
        .with_context(|| format!("proposal {} not found", a.proposal))?;
    let Some(DynSolValue::Bytes(data)) = created.fields.get("data").cloned() else {
        bail!("proposal {} carries no data", a.proposal);
    };
    let sent = p
        .send(MANAGER, "approve", vec![uint(U256::from(a.proposal), 256), DynSolValue::Bytes(data)])
        .await?;
    p.done(
        &format!("proposal {} approved and executed", a.proposal),
        &sent,
        json!({"proposalId": a.proposal}),
    );
    Ok(())
}

async fn list(a: &ListArgs) -> anyhow::Result<()> {
    let p = Platform::open(&a.chain).await?;
    let matrix = Matrix::load(&a.matrix)?;
    let abi = p.artifacts.get(MANAGER)?.abi;
    let latest = p.client.block_number().await?;
    let logs = p
        .event_logs(
            MANAGER,
            &["RoleGranted", "RoleExpirySet", "RoleRevoked"],
            p.deployment.start_block,
            latest,
        )
        .await?;

    // (role, account) -> (granted in block, expiry)
    let mut grants: BTreeMap<(u64, Address), (u64, u64)> = BTreeMap::new();
    for e in decode_logs(&abi, &logs) {
        let key =
            || -> anyhow::Result<(u64, Address)> { Ok((e.u64("roleId")?, e.address("account")?)) };
        match e.name.as_str() {
            "RoleGranted" => {
                let entry = grants.entry(key()?).or_insert((e.block, 0));
                entry.0 = e.block;
            }
            "RoleExpirySet" => {
                grants.entry(key()?).or_insert((e.block, 0)).1 = e.u64("expiry")?;
            }
            "RoleRevoked" => {
                grants.remove(&key()?);
            }
            _ => {}
        }
    }

    let mut rows = Vec::new();
    for ((role, account), (since, expiry)) in &grants {
        // hasRole answers (isMember, executionDelay); an expired grant is not a member.
        let held = p
            .call(MANAGER, "hasRole", vec![uint(U256::from(*role), 64), address(*account)], None)
            .await?;
        let active = matches!(held.first(), Some(DynSolValue::Bool(true)));
        rows.push((matrix.role_name(*role), *account, *since, *expiry, active));
    }
    if p.json {
        let out: Vec<_> = rows
            .iter()
            .map(|(role, account, since, expiry, active)| json!({"role": role, "account": account, "grantedInBlock": since, "expiry": expiry, "active": active}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("{:<22} {:<42} {:>8} {:>12}  state", "role", "account", "block", "expiry");
    for (role, account, since, expiry, active) in rows {
        let expiry = if expiry == 0 { "none".to_owned() } else { expiry.to_string() };
        let state = if active { "active" } else { "expired" };
        println!("{role:<22} {account:<42} {since:>8} {expiry:>12}  {state}");
    }
    Ok(())
}
