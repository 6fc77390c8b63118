//! `ecrop perm`: the consortium's permissioning contracts from the command line. Deploy them,
//! propose and approve changes to members, nodes, accounts and validators, list the registries
//! as of a block and show where proposals stand. Every transaction goes through the sidecar's
//! endpoint and is signed in its HSM; reverts are explained by the contracts' custom errors.
//!
//! The contracts' addresses live in their own deployment file (default `permissioning.json`),
//! apart from the platform's `deployment.json`.

mod view;

use std::path::PathBuf;

use alloy::{
    dyn_abi::DynSolValue,
    primitives::{Address, B256, U256},
};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::json;

use super::platform::{Platform, address, uint, word};
use crate::{
    onchain::{Artifacts, ChainError, Client, Deployment, ErrorBook, Sent, events::decode_logs},
    permissioning::{
        besu_sync::{BesuClient, ConfigFiles, Desired, SyncReport, Syncer},
        enode::Enode,
    },
};

/// The governance contract.
pub const GOVERNANCE: &str = "ConsortiumGovernance";
/// The node registry.
pub const NODES: &str = "NodeRegistry";
/// The account allowlist.
pub const ACCOUNTS: &str = "AccountAllowlist";
/// The validator set.
pub const VALIDATORS: &str = "ValidatorSet";
/// The permissioning contracts in deployment order (see `permissioning/README.md`).
pub const PERM_CONTRACTS: [&str; 4] = [GOVERNANCE, NODES, ACCOUNTS, VALIDATORS];

/// Permissioning subcommands.
#[derive(Debug, Subcommand)]
pub enum PermCommand {
    /// Deploy the permissioning contracts (what is missing) and bind the registries.
    Deploy(DeployArgs),
    /// Propose a change; the proposer's approval counts at once. Prints the proposal id.
    #[command(subcommand)]
    Propose(ProposeCommand),
    /// Approve an open proposal; the approval that reaches the threshold executes it.
    Approve(ProposalArgs),
    /// Execute an open proposal that already has enough approvals (after a member left).
    Execute(ProposalArgs),
    /// Cancel an open proposal (only its proposer).
    Cancel(ProposalArgs),
    /// List members, nodes, accounts and validators as of a block.
    List(ListArgs),
    /// Show the proposals: state, approvals against the threshold, expiry.
    Status(StatusArgs),
    /// Make a Besu node's local allowlists (`perm_*` API) and permissions file equal to the
    /// contracts, once or at an interval.
    SyncBesu(SyncBesuArgs),
}

/// Options of every `perm` command: where the sidecar is and where the contracts are.
#[derive(Debug, Clone, Args)]
pub struct PermChainArgs {
    /// JSON-RPC endpoint of the sidecar that signs for `--from` (its HSM holds the key).
    #[arg(
        long,
        env = "ECROP_RPC_URL",
        value_name = "URL",
        default_value = "http://127.0.0.1:8545"
    )]
    pub rpc_url: String,

    /// Governance account (of the sidecar's token) that sends the transactions.
    #[arg(long, env = "ECROP_FROM", value_name = "ADDRESS")]
    pub from: Option<Address>,

    /// Forge build output of the permissioning contracts.
    #[arg(
        long,
        env = "ECROP_PERM_ARTIFACTS",
        value_name = "DIR",
        default_value = "permissioning/out"
    )]
    pub artifacts: PathBuf,

    /// Deployment file of the permissioning contracts, written by `ecrop perm deploy`.
    #[arg(
        long,
        env = "ECROP_PERM_DEPLOYMENT",
        value_name = "FILE",
        default_value = "permissioning.json"
    )]
    pub deployment: PathBuf,

    /// Print results as JSON.
    #[arg(long)]
    pub json: bool,
}

impl PermChainArgs {
    fn client(&self, artifacts: &Artifacts) -> Result<Client, ChainError> {
        Client::new(&self.rpc_url, self.from, ErrorBook::from_artifacts(artifacts, &PERM_CONTRACTS))
    }

    /// Opens the deployed contracts.
    async fn open(&self) -> anyhow::Result<Platform> {
        let artifacts = Artifacts::new(&self.artifacts);
        let client = self.client(&artifacts)?;
        Platform::connect(client, artifacts, &self.deployment, self.json, "ecrop perm deploy").await
    }
}

/// Options of `perm deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// A founding member as ADDRESS=NAME (its governance account and name); repeat per member.
    #[arg(long = "member", value_name = "ADDRESS=NAME", required = true, value_parser = member_arg)]
    pub members: Vec<(Address, String)>,
    /// Numerator of the approval fraction: approvals must exceed NUM/DEN of the members.
    #[arg(long, value_name = "NUM", default_value_t = 1)]
    pub threshold_numerator: u64,
    /// Denominator of the approval fraction (1/2: simple majority, 2 of 3).
    #[arg(long, value_name = "DEN", default_value_t = 2)]
    pub threshold_denominator: u64,
    /// Blocks a proposal stays open.
    #[arg(long, value_name = "BLOCKS", default_value_t = 50_400)]
    pub proposal_lifetime: u64,
    /// Least blocks between executing a registry change and its effect (at least 1).
    #[arg(long, value_name = "BLOCKS", default_value_t = 1)]
    pub activation_delay: u64,
    /// An initial validator as ADDRESS or ADDRESS=OWNER (owner: a founding member; default
    /// the first member). At least one is needed.
    #[arg(long = "validator", value_name = "ADDRESS[=OWNER]", required = true, value_parser = owned_arg)]
    pub validators: Vec<(Address, Option<Address>)>,
    /// An initial allowlisted account as ADDRESS or ADDRESS=OWNER (any target; owner default
    /// the first member). With account permissioning on, list every member's account.
    #[arg(long = "account", value_name = "ADDRESS[=OWNER]", value_parser = owned_arg)]
    pub accounts: Vec<(Address, Option<Address>)>,
    /// Chain options.
    #[command(flatten)]
    pub chain: PermChainArgs,
}

/// Proposal kinds.
#[derive(Debug, Subcommand)]
pub enum ProposeCommand {
    /// Admit a member organisation.
    AddMember(AddMemberArgs),
    /// Remove a member (refused while it owns listed entries).
    RemoveMember(AccountArgs),
    /// List a node (enode URL) with its sidecar endpoint and payload key.
    AddNode(AddNodeArgs),
    /// End a node's listing.
    RemoveNode(RemoveNodeArgs),
    /// Allowlist an account, optionally limited to target contracts.
    AddAccount(AddAccountArgs),
    /// End an account's listing.
    RemoveAccount(ScheduledAccountArgs),
    /// Add a QBFT validator.
    AddValidator(AddValidatorArgs),
    /// Remove a QBFT validator (refused if the set would become empty).
    RemoveValidator(RemoveValidatorArgs),
}

/// When a registry change should apply.
#[derive(Debug, Clone, Args)]
pub struct ActivationArgs {
    /// Block from which the change applies (after the current block); default: as soon as the
    /// activation delay allows.
    #[arg(long, value_name = "BLOCK")]
    pub activation_block: Option<u64>,
}

/// Options of `propose add-member`.
#[derive(Debug, Args)]
pub struct AddMemberArgs {
    /// The new member's governance account.
    #[arg(long, value_name = "ADDRESS")]
    pub account: Address,
    /// Its name (1 to 64 bytes).
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// Chain options.
    #[command(flatten)]
    pub chain: PermChainArgs,
}

/// Options naming one account.
#[derive(Debug, Args)]
pub struct AccountArgs {
    /// The member's governance account.
    #[arg(long, value_name = "ADDRESS")]
    pub account: Address,
    /// Chain options.
    #[command(flatten)]
    pub chain: PermChainArgs,
}

/// Options of `propose add-node`.
#[derive(Debug, Args)]
pub struct AddNodeArgs {
    /// The node's enode URL: enode://<128 hex>@<host>:<port>[?discport=<port>].
    #[arg(long, value_name = "ENODE")]
    pub enode: Enode,
    /// The member that runs the node (its governance account).
    #[arg(long, value_name = "ADDRESS")]
    pub owner: Address,
    /// URL of the node's ecrop sidecar for private payloads.
    #[arg(long, value_name = "URL", default_value = "")]
    pub sidecar_endpoint: String,
    /// X25519 public key (0x + 64 hex) the node's sidecar receives private payloads under.
    #[arg(
        long,
        value_name = "HEX",
        default_value = "0x0000000000000000000000000000000000000000000000000000000000000000"
    )]
    pub payload_key: B256,
    /// Activation.
    #[command(flatten)]
    pub activation: ActivationArgs,
    /// Chain options.
    #[command(flatten)]
    pub chain: PermChainArgs,
}

/// Options of `propose remove-node`.
#[derive(Debug, Args)]
pub struct RemoveNodeArgs {
    /// The node's enode URL (only its id is used).
    #[arg(long, value_name = "ENODE")]
    pub enode: Enode,
    /// Activation.
    #[command(flatten)]
    pub activation: ActivationArgs,
    /// Chain options.
    #[command(flatten)]
    pub chain: PermChainArgs,
}

/// Options of `propose add-account`.
#[derive(Debug, Args)]
pub struct AddAccountArgs {
    /// The account to allowlist.
    #[arg(long, value_name = "ADDRESS")]
    pub account: Address,
    /// The member responsible for it (its governance account).
    #[arg(long, value_name = "ADDRESS")]
    pub owner: Address,
    /// A contract the account may call; repeat for several; none: any target
    /// (0x0000000000000000000000000000000000000000 stands for contract creation).
    #[arg(long = "target", value_name = "ADDRESS")]
    pub targets: Vec<Address>,
    /// Activation.
    #[command(flatten)]
    pub activation: ActivationArgs,
    /// Chain options.
    #[command(flatten)]
    pub chain: PermChainArgs,
}

/// Options of `propose remove-account`.
#[derive(Debug, Args)]
pub struct ScheduledAccountArgs {
    /// The account.
    #[arg(long, value_name = "ADDRESS")]
    pub account: Address,
    /// Activation.
    #[command(flatten)]
    pub activation: ActivationArgs,
    /// Chain options.
    #[command(flatten)]
    pub chain: PermChainArgs,
}

/// Options of `propose add-validator`.
#[derive(Debug, Args)]
pub struct AddValidatorArgs {
    /// The validator's signing address.
    #[arg(long, value_name = "ADDRESS")]
    pub validator: Address,
    /// The member that runs it (its governance account).
    #[arg(long, value_name = "ADDRESS")]
    pub owner: Address,
    /// Activation.
    #[command(flatten)]
    pub activation: ActivationArgs,
    /// Chain options.
    #[command(flatten)]
    pub chain: PermChainArgs,
}

/// Options of `propose remove-validator`.
#[derive(Debug, Args)]
pub struct RemoveValidatorArgs {
    /// The validator's signing address.
    #[arg(long, value_name = "ADDRESS")]
    pub validator: Address,
    /// Activation.
    #[command(flatten)]
    pub activation: ActivationArgs,
    /// Chain options.
    #[command(flatten)]
    pub chain: PermChainArgs,
}

/// Options naming one proposal.
#[derive(Debug, Args)]
pub struct ProposalArgs {
    /// Proposal id printed by `ecrop perm propose`.
    #[arg(long, value_name = "ID")]
    pub proposal: u64,
    /// Chain options.
    #[command(flatten)]
    pub chain: PermChainArgs,
}

/// Options of `perm list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Block to list the registries at (default: the latest).
    #[arg(long, value_name = "N")]
    pub block: Option<u64>,
    /// Chain options.
    #[command(flatten)]
    pub chain: PermChainArgs,
}

/// Options of `perm status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Show only this proposal.
    #[arg(long, value_name = "ID")]
    pub proposal: Option<u64>,
    /// Show only open proposals.
    #[arg(long)]
    pub open: bool,
    /// Chain options.
    #[command(flatten)]
    pub chain: PermChainArgs,
}

/// Options of `perm sync-besu`.
#[derive(Debug, Args)]
pub struct SyncBesuArgs {
    /// Besu's JSON-RPC endpoint with the PERM api enabled.
    #[arg(long, env = "ECROP_BESU_URL", value_name = "URL")]
    pub besu_url: String,
    /// Permissions file to write for Besu's next start (both lists).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["nodes_file", "accounts_file"])]
    pub permissions_file: Option<PathBuf>,
    /// File for the nodes allowlist only (`--permissions-nodes-config-file`).
    #[arg(long, value_name = "FILE")]
    pub nodes_file: Option<PathBuf>,
    /// File for the accounts allowlist only (`--permissions-accounts-config-file`).
    #[arg(long, value_name = "FILE")]
    pub accounts_file: Option<PathBuf>,
    /// Leave Besu's nodes allowlist alone.
    #[arg(long)]
    pub no_nodes: bool,
    /// Leave Besu's accounts allowlist alone.
    #[arg(long)]
    pub no_accounts: bool,
    /// Repeat every SECS seconds until interrupted (default: once).
    #[arg(long, value_name = "SECS")]
    pub interval: Option<u64>,
    /// Chain options.
    #[command(flatten)]
    pub chain: PermChainArgs,
}

/// Runs a permissioning subcommand.
pub async fn run(command: &PermCommand) -> anyhow::Result<()> {
    match command {
        PermCommand::Deploy(a) => deploy(a).await,
        PermCommand::Propose(p) => propose(p).await,
        PermCommand::Approve(a) => act(a, "approve").await,
        PermCommand::Execute(a) => act(a, "execute").await,
        PermCommand::Cancel(a) => act(a, "cancel").await,
        PermCommand::List(a) => view::list(&a.chain.open().await?, a.block).await,
        PermCommand::Status(a) => view::status(&a.chain.open().await?, a.proposal, a.open).await,
        PermCommand::SyncBesu(a) => sync_besu(a).await,
    }
}

fn member_arg(text: &str) -> Result<(Address, String), String> {
    let (account, name) =
        text.split_once('=').ok_or_else(|| format!("expected ADDRESS=NAME ({text})"))?;
    let account = account.parse().map_err(|e| format!("bad address ({account}): {e}"))?;
    if name.is_empty() {
        return Err(format!("member name is empty ({text})"));
    }
    Ok((account, name.to_owned()))
}

fn owned_arg(text: &str) -> Result<(Address, Option<Address>), String> {
    let (entry, owner) = match text.split_once('=') {
        Some((entry, owner)) => (entry, Some(owner)),
        None => (text, None),
    };
    let entry = entry.parse().map_err(|e| format!("bad address ({entry}): {e}"))?;
    let owner = owner
        .map(|o| o.parse().map_err(|e| format!("bad owner address ({o}): {e}")))
        .transpose()?;
    Ok((entry, owner))
}

async fn deploy(a: &DeployArgs) -> anyhow::Result<()> {
    let artifacts = Artifacts::new(&a.chain.artifacts);
    let client = a.chain.client(&artifacts)?;
    let chain_id = client.chain_id().await?;
    let path = &a.chain.deployment;
    let mut deployment = Deployment::load_or_new(path, chain_id)?;
    let first_member = a.members[0].0;
    let (mut deployed, mut kept) = (Vec::new(), Vec::new());

    for name in PERM_CONTRACTS {
        let artifact = artifacts.get(name)?;
        if let Some(at) = deployment.contracts.get(name).copied() {
            if !client.code(at).await?.is_empty() {
                kept.push(name);
                continue;
            }
            eprintln!("{name}: recorded at {at} but no code there; deploying again");
        }
        let args = match name {
            GOVERNANCE => vec![
                DynSolValue::Array(a.members.iter().map(|(m, _)| address(*m)).collect()),
                DynSolValue::Array(
                    a.members.iter().map(|(_, n)| DynSolValue::String(n.clone())).collect(),
                ),
                uint(U256::from(a.threshold_numerator), 256),
                uint(U256::from(a.threshold_denominator), 256),
                uint(U256::from(a.proposal_lifetime), 64),
                uint(U256::from(a.activation_delay), 64),
            ],
            NODES => vec![address(deployment.address(GOVERNANCE)?), DynSolValue::Array(vec![])],
            ACCOUNTS => vec![
                address(deployment.address(GOVERNANCE)?),
                DynSolValue::Array(
                    a.accounts
                        .iter()
                        .map(|(account, owner)| {
                            DynSolValue::Tuple(vec![
                                address(*account),
                                address(owner.unwrap_or(first_member)),
                                DynSolValue::Array(vec![]),
                            ])
                        })
                        .collect(),
                ),
            ],
            _ => vec![
                address(deployment.address(GOVERNANCE)?),
                DynSolValue::Array(
                    a.validators
                        .iter()
                        .map(|(v, owner)| {
                            DynSolValue::Tuple(vec![
                                address(*v),
                                address(owner.unwrap_or(first_member)),
                            ])
                        })
                        .collect(),
                ),
            ],
        };
        if !a.chain.json {
            eprintln!("deploying {name}");
        }
        let sent = client.deploy(&artifact, &args).await?;
        let at = sent.contract_address.context("deployment returned no address")?;
        if deployment.contracts.is_empty() || deployment.start_block == 0 {
            deployment.start_block = sent.block;
        }
        deployment.contracts.insert(name.to_owned(), at);
        deployment.save(path)?;
        deployed.push(name);
    }

    // Bind once: the governance contract refuses a second binding.
    let p = Platform { client, artifacts, deployment, json: a.chain.json };
    let bound = p.call(GOVERNANCE, "registries", vec![], None).await?;
    let mut binding = None;
    if matches!(bound.first(), Some(DynSolValue::Address(x)) if x.is_zero()) {
        let args = vec![
            address(p.address(NODES)?),
            address(p.address(ACCOUNTS)?),
            address(p.address(VALIDATORS)?),
        ];
        binding = Some(p.send(GOVERNANCE, "bindRegistries", args).await?.hash);
    }

    if p.json {
        let out = json!({
            "deployed": deployed,
            "kept": kept,
            "bound": binding.is_some(),
            "contracts": p.deployment.contracts,
            "startBlock": p.deployment.start_block,
            "deployment": path,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    for (name, at) in &p.deployment.contracts {
        let how = if deployed.contains(&name.as_str()) { "deployed" } else { "kept" };
        println!("{name:<22} {at}  {how}");
    }
    if binding.is_some() {
        println!("registries bound to the governance");
    }
    println!("written to {}", path.display());
    Ok(())
}

/// What a proposal transaction's events say.
#[derive(Debug, Default)]
struct Outcome {
    id: Option<u64>,
    approvals: Option<u64>,
    threshold: Option<u64>,
    expires_at: Option<u64>,
    effective: Option<u64>,
    cancelled: bool,
}

fn outcome(p: &Platform, sent: &Sent) -> anyhow::Result<Outcome> {
    let abi = p.artifacts.get(GOVERNANCE)?.abi;
    let mut out = Outcome::default();
    for e in decode_logs(&abi, &sent.logs) {
        match e.name.as_str() {
            "ProposalCreated" => {
                out.id = Some(e.u64("proposalId")?);
                out.expires_at = Some(e.u64("expiresAt")?);
            }
            "ProposalApproved" => {
                out.id = Some(e.u64("proposalId")?);
                out.approvals = Some(e.u64("approvals")?);
                out.threshold = Some(e.u64("threshold")?);
            }
            "ProposalExecuted" => out.effective = Some(e.u64("effectiveBlock")?),
            "ProposalCancelled" => out.cancelled = true,
            _ => {}
        }
    }
    Ok(out)
}

fn report(p: &Platform, what: &str, sent: &Sent, o: &Outcome) {
    let id = o.id.map_or_else(|| "?".to_owned(), |i| i.to_string());
    let mut text = match (what, o.effective) {
        ("propose", _) => format!("proposal {id} filed"),
        ("cancel", _) => format!("proposal {id} cancelled"),
        ("execute", _) => format!("proposal {id} executed"),
        _ => format!("proposal {id} approved"),
    };
    if let (Some(a), Some(t)) = (o.approvals, o.threshold) {
        text.push_str(&format!(" ({a} of {t} approvals)"));
    }
    match o.effective {
        Some(block) if what == "execute" => {
            text.push_str(&format!(", effective from block {block}"))
        }
        Some(block) => text.push_str(&format!("; executed, effective from block {block}")),
        None if what != "cancel" => {
            if let Some(expires) = o.expires_at {
                text.push_str(&format!("; open until block {}", expires.saturating_sub(1)));
            }
        }
        None => {}
    }
    p.done(
        &text,
        sent,
        json!({
            "proposalId": o.id,
            "approvals": o.approvals,
            "threshold": o.threshold,
            "executed": o.effective.is_some(),
            "effectiveBlock": o.effective,
            "expiresAt": o.expires_at,
            "cancelled": o.cancelled,
        }),
    );
}

fn activation(a: &ActivationArgs) -> DynSolValue {
    uint(U256::from(a.activation_block.unwrap_or(0)), 64)
}

async fn propose(command: &ProposeCommand) -> anyhow::Result<()> {
    let (chain, function, args) = match command {
        ProposeCommand::AddMember(a) => (
            &a.chain,
            "proposeAddMember",
            vec![address(a.account), DynSolValue::String(a.name.clone())],
        ),
        ProposeCommand::RemoveMember(a) => {
            (&a.chain, "proposeRemoveMember", vec![address(a.account)])
        }
        ProposeCommand::AddNode(a) => {
            let e = &a.enode;
            let spec = DynSolValue::Tuple(vec![
                word(e.id_high()),
                word(e.id_low()),
                DynSolValue::String(e.host.to_string()),
                uint(U256::from(e.port), 16),
                uint(U256::from(e.discovery_port()), 16),
                address(a.owner),
                DynSolValue::String(a.sidecar_endpoint.clone()),
                word(a.payload_key),
            ]);
            (&a.chain, "proposeAddNode", vec![spec, activation(&a.activation)])
        }
        ProposeCommand::RemoveNode(a) => (
            &a.chain,
            "proposeRemoveNode",
            vec![word(a.enode.id_high()), word(a.enode.id_low()), activation(&a.activation)],
        ),
        ProposeCommand::AddAccount(a) => (
            &a.chain,
            "proposeAddAccount",
            vec![
                address(a.account),
                address(a.owner),
                DynSolValue::Array(a.targets.iter().map(|t| address(*t)).collect()),
                activation(&a.activation),
            ],
        ),
        ProposeCommand::RemoveAccount(a) => {
            (&a.chain, "proposeRemoveAccount", vec![address(a.account), activation(&a.activation)])
        }
        ProposeCommand::AddValidator(a) => (
            &a.chain,
            "proposeAddValidator",
            vec![address(a.validator), address(a.owner), activation(&a.activation)],
        ),
        ProposeCommand::RemoveValidator(a) => (
            &a.chain,
            "proposeRemoveValidator",
            vec![address(a.validator), activation(&a.activation)],
        ),
    };
    let p = chain.open().await?;
    let sent = p.send(GOVERNANCE, function, args).await?;
    let o = outcome(&p, &sent)?;
    if o.id.is_none() {
        bail!(
            "{function} was mined but emitted no ProposalCreated event (transaction {})",
            sent.hash
        );
    }
    report(&p, "propose", &sent, &o);
    Ok(())
}

async fn act(a: &ProposalArgs, function: &str) -> anyhow::Result<()> {
    let p = a.chain.open().await?;
    let sent = p.send(GOVERNANCE, function, vec![uint(U256::from(a.proposal), 256)]).await?;
    let mut o = outcome(&p, &sent)?;
    o.id.get_or_insert(a.proposal);
    report(&p, function, &sent, &o);
    Ok(())
}

/// The lists in force at the block after the head, read from the contracts' views.
async fn desired(p: &Platform) -> anyhow::Result<Desired> {
    let next = p.client.block_number().await? + 1;
    let r = view::registries(p, Some(next)).await?;
    let in_force =
        |v: &serde_json::Value| v["state"].as_str().is_some_and(|s| s.starts_with("in force"));
    let mut out = Desired { block: next, ..Desired::default() };
    for node in r["nodes"].as_array().into_iter().flatten().filter(|n| in_force(n)) {
        let url = node["enode"].as_str().unwrap_or_default();
        match url.parse::<Enode>() {
            Ok(e) => {
                out.nodes.insert(e.canonical());
            }
            Err(e) => out.invalid.push((url.to_owned(), e.to_string())),
        }
    }
    for account in r["accounts"].as_array().into_iter().flatten().filter(|a| in_force(a)) {
        let text = account["account"].as_str().unwrap_or_default();
        out.accounts.insert(text.parse().with_context(|| format!("account {text}"))?);
    }
    Ok(out)
}

async fn sync_besu(a: &SyncBesuArgs) -> anyhow::Result<()> {
    let p = a.chain.open().await?;
    let files = match &a.permissions_file {
        Some(f) => ConfigFiles { nodes: Some(f.clone()), accounts: Some(f.clone()) },
        None => ConfigFiles { nodes: a.nodes_file.clone(), accounts: a.accounts_file.clone() },
    };
    let syncer = Syncer::new(BesuClient::new(&a.besu_url)?, files, !a.no_nodes, !a.no_accounts);
    loop {
        let wanted = desired(&p).await?;
        let outcome = syncer.sync_once(&wanted).await;
        let Some(secs) = a.interval else {
            let report = outcome?;
            print_sync(p.json, &report)?;
            return Ok(());
        };
        match outcome {
            Ok(report) => print_sync(p.json, &report)?,
            Err(e) => eprintln!("error: {e}"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(secs.max(1))).await;
    }
}

fn print_sync(json: bool, r: &SyncReport) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(r)?);
        return Ok(());
    }
    if !r.changed() {
        println!("besu already in sync with block {}", r.block);
    }
    for (label, items) in [
        ("added node", &r.added_nodes),
        ("removed node", &r.removed_nodes),
        ("added account", &r.added_accounts),
        ("removed account", &r.removed_accounts),
        ("kept fixed node", &r.kept_fixed),
    ] {
        for item in items {
            println!("{label} {item}");
        }
    }
    for (entry, reason) in r.rejected.iter().chain(&r.invalid) {
        println!("refused {entry}: {reason}");
    }
    if r.file_written {
        println!("permissions file written");
    }
    Ok(())
}
