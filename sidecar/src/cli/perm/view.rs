//! `ecrop perm list` and `ecrop perm status`: the registries and proposals read from the
//! contracts' views (`eth_call`), for people or as JSON.

use alloy::{
    dyn_abi::{DynSolType, DynSolValue},
    primitives::{B256, U256},
};
use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::{ACCOUNTS, GOVERNANCE, NODES, VALIDATORS};
use crate::{
    cli::platform::{Platform, uint},
    onchain::tuple_fields,
    permissioning::enode::Enode,
};

/// Entries per paged call: the registries' `MAX_PAGE`.
const PAGE: u64 = 100;
/// Deactivation block of a span without a scheduled removal (`Lifespans.OPEN`).
const OPEN: u64 = u64::MAX;
/// Names of `ProposalKind`, in enum order.
const KINDS: [&str; 8] = [
    "add-member",
    "remove-member",
    "add-node",
    "remove-node",
    "add-account",
    "remove-account",
    "add-validator",
    "remove-validator",
];
/// Names of `ProposalState`, in enum order.
const STATES: [&str; 5] = ["unknown", "open", "executed", "cancelled", "expired"];

/// An address, checksummed as people and tools compare them.
fn addr(v: &DynSolValue) -> anyhow::Result<String> {
    v.as_address().map(|a| a.to_checksum(None)).context("expected an address")
}

fn num(v: &DynSolValue) -> anyhow::Result<u64> {
    let (n, _) = v.as_uint().context("expected a number")?;
    u64::try_from(n).context("number does not fit 64 bits")
}

fn text(v: &DynSolValue) -> anyhow::Result<String> {
    v.as_str().map(str::to_owned).context("expected a string")
}

fn word(v: &DynSolValue) -> anyhow::Result<B256> {
    match v {
        DynSolValue::FixedBytes(w, 32) => Ok(*w),
        _ => bail!("expected bytes32"),
    }
}

fn fields(v: &DynSolValue, n: usize) -> anyhow::Result<&[DynSolValue]> {
    let f = tuple_fields(v).context("expected a tuple")?;
    if f.len() != n {
        bail!("expected a tuple of {n} fields, got {}", f.len());
    }
    Ok(f)
}

fn items(v: Option<&DynSolValue>) -> anyhow::Result<&[DynSolValue]> {
    v.and_then(DynSolValue::as_array).context("expected an array")
}

/// Spans `(activation, deactivation)` from an array of span tuples (extra fields ignored).
fn spans(v: &DynSolValue) -> anyhow::Result<Vec<(u64, u64)>> {
    items(Some(v))?
        .iter()
        .map(|s| {
            let f = tuple_fields(s).context("expected a span")?;
            Ok((num(f.first().context("span")?)?, num(f.get(1).context("span")?)?))
        })
        .collect()
}

/// Where an entry stands at `block` given its spans.
fn standing(spans: &[(u64, u64)], block: u64) -> String {
    if let Some((_, end)) = spans.iter().find(|(a, d)| *a <= block && block < *d) {
        return if *end == OPEN { "in force".into() } else { format!("in force until {end}") };
    }
    if let Some((start, _)) = spans.iter().find(|(a, _)| *a > block) {
        return format!("from block {start}");
    }
    if spans.is_empty() { "never listed".into() } else { "removed".into() }
}

fn spans_json(spans: &[(u64, u64)]) -> Value {
    spans
        .iter()
        .map(|(a, d)| json!({"activation": a, "deactivation": if *d == OPEN { None } else { Some(d) }}))
        .collect()
}

/// Calls a paged view `list(offset, limit)` of `contract` until `count` entries are read.
async fn paged(
    p: &Platform,
    contract: &str,
    count_fn: &'static str,
    list_fn: &'static str,
    block: u64,
) -> anyhow::Result<Vec<DynSolValue>> {
    let count =
        num(p.call(contract, count_fn, vec![], Some(block)).await?.first().context(count_fn)?)?;
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < count {
        let page = p
            .call(
                contract,
                list_fn,
                vec![uint(U256::from(offset), 256), uint(U256::from(PAGE), 256)],
                Some(block),
            )
            .await?;
        let page = items(page.first())?;
        if page.is_empty() {
            break;
        }
        offset += page.len() as u64;
        out.extend(page.iter().cloned());
    }
    Ok(out)
}

fn enode_text(high: B256, low: B256, host: &str, port: u16, discport: u16) -> String {
    Enode::from_parts(high, low, host, port, discport).map_or_else(
        |e| format!("0x{}{} ({host}:{port}, {e})", hex::encode(high), hex::encode(low)),
        |e| e.to_string(),
    )
}

/// `perm list`.
pub(super) async fn list(p: &Platform, block: Option<u64>) -> anyhow::Result<()> {
    let registries = registries(p, block).await?;
    if p.json {
        println!("{}", serde_json::to_string_pretty(&registries)?);
        return Ok(());
    }
    print_registries(&registries);
    Ok(())
}

/// The registries with each entry's standing at `block` (default: the latest), as JSON.
/// A future block is answered from the latest state: its spans hold every change decided so
/// far.
pub(super) async fn registries(p: &Platform, block: Option<u64>) -> anyhow::Result<Value> {
    let head = p.client.block_number().await?;
    let block = block.unwrap_or(head);
    let read_at = block.min(head);

    let mut members = Vec::new();
    for m in paged(p, GOVERNANCE, "memberCount", "listMembers", read_at).await? {
        let f = fields(&m, 3)?;
        members.push(
            json!({"account": addr(&f[0])?, "name": text(&f[1])?, "admittedAt": num(&f[2])?}),
        );
    }

    let mut nodes = Vec::new();
    for n in paged(p, NODES, "nodeCount", "listNodes", read_at).await? {
        let f = fields(&n, 3)?;
        let s = fields(&f[1], 8)?;
        let (high, low) = (word(&s[0])?, word(&s[1])?);
        let (host, port, disc) = (text(&s[2])?, num(&s[3])?, num(&s[4])?);
        let spans = spans(&f[2])?;
        nodes.push(json!({
            "enode": enode_text(high, low, &host, port as u16, disc as u16),
            "nodeKey": word(&f[0])?,
            "host": host,
            "port": port,
            "discport": disc,
            "owner": addr(&s[5])?,
            "sidecarEndpoint": text(&s[6])?,
            "payloadKey": word(&s[7])?,
            "state": standing(&spans, block),
            "spans": spans_json(&spans),
        }));
    }

    let mut accounts = Vec::new();
    for a in paged(p, ACCOUNTS, "accountCount", "listAccounts", read_at).await? {
        let f = fields(&a, 3)?;
        let spans_v = items(Some(&f[2]))?;
        let spans = spans(&f[2])?;
        // Targets of the span in force (or the latest one).
        let current = spans
            .iter()
            .position(|(s, d)| *s <= block && block < *d)
            .or(spans.len().checked_sub(1));
        let targets: Vec<String> = match current.and_then(|i| spans_v.get(i)).and_then(tuple_fields)
        {
            Some(span) => items(span.get(2))?.iter().map(addr).collect::<anyhow::Result<_>>()?,
            None => Vec::new(),
        };
        accounts.push(json!({
            "account": addr(&f[0])?,
            "owner": addr(&f[1])?,
            "targets": targets,
            "state": standing(&spans, block),
            "spans": spans_json(&spans),
        }));
    }

    let mut validators = Vec::new();
    for v in paged(p, VALIDATORS, "validatorCount", "listValidators", read_at).await? {
        let f = fields(&v, 3)?;
        let spans = spans(&f[2])?;
        validators.push(json!({
            "validator": addr(&f[0])?,
            "owner": addr(&f[1])?,
            "state": standing(&spans, block),
            "spans": spans_json(&spans),
        }));
    }

    Ok(json!({
        "block": block,
        "stateBlock": read_at,
        "members": members,
        "nodes": nodes,
        "accounts": accounts,
        "validators": validators,
    }))
}

fn print_registries(r: &Value) {
    let empty = Vec::new();
    let list = |k: &str| r[k].as_array().unwrap_or(&empty);
    let (members, nodes, accounts, validators) =
        (list("members"), list("nodes"), list("accounts"), list("validators"));
    let (block, read_at) =
        (r["block"].as_u64().unwrap_or(0), r["stateBlock"].as_u64().unwrap_or(0));
    let s = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    if read_at < block {
        println!("as of block {block} (changes decided by block {read_at})");
    } else {
        println!("as of block {block}");
    }
    println!("\nmembers ({})", members.len());
    for m in members {
        println!("  {}  {}  (since block {})", s(m, "account"), s(m, "name"), m["admittedAt"]);
    }
    println!("\nnodes ({})", nodes.len());
    for n in nodes {
        println!("  {}  owner {}  {}", s(n, "enode"), s(n, "owner"), s(n, "state"));
    }
    println!("\naccounts ({})", accounts.len());
    for a in accounts {
        let targets = a["targets"].as_array().map_or(0, Vec::len);
        let targets =
            if targets == 0 { "any target".to_owned() } else { format!("{targets} targets") };
        println!("  {}  owner {}  {targets}  {}", s(a, "account"), s(a, "owner"), s(a, "state"));
    }
    println!("\nvalidators ({})", validators.len());
    for v in validators {
        println!("  {}  owner {}  {}", s(v, "validator"), s(v, "owner"), s(v, "state"));
    }
}

/// What a proposal's payload does, in words and as JSON.
fn describe(kind: usize, payload: &[u8]) -> anyhow::Result<(String, Value)> {
    let types: &[DynSolType] = match kind {
        0 => &[DynSolType::Address, DynSolType::String],
        2 => &[DynSolType::Tuple(vec![
            DynSolType::FixedBytes(32),
            DynSolType::FixedBytes(32),
            DynSolType::String,
            DynSolType::Uint(16),
            DynSolType::Uint(16),
            DynSolType::Address,
            DynSolType::String,
            DynSolType::FixedBytes(32),
        ])],
        3 => &[DynSolType::FixedBytes(32), DynSolType::FixedBytes(32)],
        4 => &[
            DynSolType::Address,
            DynSolType::Address,
            DynSolType::Array(Box::new(DynSolType::Address)),
        ],
        6 => &[DynSolType::Address, DynSolType::Address],
        1 | 5 | 7 => &[DynSolType::Address],
        _ => bail!("unknown proposal kind {kind}"),
    };
    let decoded = DynSolType::Tuple(types.to_vec()).abi_decode_params(payload)?;
    let v = tuple_fields(&decoded).context("payload is not a tuple")?;
    Ok(match kind {
        0 => {
            let (a, name) = (addr(&v[0])?, text(&v[1])?);
            (format!("add member {a} ({name})"), json!({"account": a, "name": name}))
        }
        2 => {
            let s = fields(&v[0], 8)?;
            let enode = enode_text(
                word(&s[0])?,
                word(&s[1])?,
                &text(&s[2])?,
                num(&s[3])? as u16,
                num(&s[4])? as u16,
            );
            let owner = addr(&s[5])?;
            (
                format!("add node {enode} owned by {owner}"),
                json!({"enode": enode, "owner": owner, "sidecarEndpoint": text(&s[6])?, "payloadKey": word(&s[7])?}),
            )
        }
        3 => {
            let id = format!("{}{}", hex::encode(word(&v[0])?), hex::encode(word(&v[1])?));
            (format!("remove node {}…", &id[..16]), json!({"nodeId": id}))
        }
        4 => {
            let (a, owner) = (addr(&v[0])?, addr(&v[1])?);
            let targets: Vec<String> =
                items(v.get(2))?.iter().map(addr).collect::<anyhow::Result<_>>()?;
            let t = if targets.is_empty() {
                "any target".to_owned()
            } else {
                format!("{} targets", targets.len())
            };
            (
                format!("add account {a} owned by {owner} ({t})"),
                json!({"account": a, "owner": owner, "targets": targets}),
            )
        }
        6 => {
            let (a, owner) = (addr(&v[0])?, addr(&v[1])?);
            (format!("add validator {a} owned by {owner}"), json!({"validator": a, "owner": owner}))
        }
        _ => {
            let a = addr(&v[0])?;
            (format!("{} {a}", KINDS[kind].replace('-', " ")), json!({"address": a}))
        }
    })
}

/// `perm status`.
pub(super) async fn status(p: &Platform, only: Option<u64>, open_only: bool) -> anyhow::Result<()> {
    let block = p.client.block_number().await?;
    let one = |f: &'static str| async move {
        num(p.call(GOVERNANCE, f, vec![], None).await?.first().context(f)?)
    };
    let (members, threshold, lifetime, delay, count) = (
        one("memberCount").await?,
        one("threshold").await?,
        one("proposalLifetime").await?,
        one("activationDelay").await?,
        one("proposalCount").await?,
    );
    let ids: Vec<u64> = match only {
        Some(id) => vec![id],
        None => (1..=count).collect(),
    };

    let mut proposals = Vec::new();
    for id in ids {
        let arg = || vec![uint(U256::from(id), 256)];
        let stored = p.call(GOVERNANCE, "getProposal", arg(), None).await?;
        let f = fields(stored.first().context("getProposal")?, 8)?;
        let kind = num(&f[0])? as usize;
        let state_n = num(p
            .call(GOVERNANCE, "proposalState", arg(), None)
            .await?
            .first()
            .context("proposalState")?)? as usize;
        let state = STATES.get(state_n).copied().unwrap_or("unknown");
        if open_only && state != "open" {
            continue;
        }
        let approvals = num(p
            .call(GOVERNANCE, "approvalCount", arg(), None)
            .await?
            .first()
            .context("approvalCount")?)?;
        let payload = match &f[7] {
            DynSolValue::Bytes(b) => b.clone(),
            _ => bail!("proposal {id} payload is not bytes"),
        };
        let (summary, details) = describe(kind, &payload)?;
        let executed_at = num(&f[5])?;
        proposals.push(json!({
            "id": id,
            "kind": KINDS.get(kind).copied().unwrap_or("unknown"),
            "summary": summary,
            "details": details,
            "state": state,
            "proposer": addr(&f[1])?,
            "createdAt": num(&f[2])?,
            "expiresAt": num(&f[3])?,
            "requestedActivation": num(&f[4])?,
            "executedAt": if executed_at == 0 { None } else { Some(executed_at) },
            "approvals": approvals,
            "threshold": threshold,
        }));
    }

    if p.json {
        let out = json!({
            "block": block,
            "members": members,
            "threshold": threshold,
            "proposalLifetime": lifetime,
            "activationDelay": delay,
            "proposals": proposals,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "block {block}: {members} members, threshold {threshold}, proposals open {lifetime} blocks, changes apply {delay} blocks after execution"
    );
    if proposals.is_empty() {
        println!("no proposals");
    }
    for pr in &proposals {
        let state = pr["state"].as_str().unwrap_or_default();
        let when = match state {
            "open" => format!(
                "open until block {}",
                pr["expiresAt"].as_u64().unwrap_or(0).saturating_sub(1)
            ),
            "executed" => format!("executed in block {}", pr["executedAt"]),
            "expired" => format!("expired at block {}", pr["expiresAt"]),
            other => other.to_owned(),
        };
        println!(
            "#{:<4} {:<16} {}/{}  {when}  {}",
            pr["id"].as_u64().unwrap_or_default(),
            pr["kind"].as_str().unwrap_or_default(),
            pr["approvals"],
            pr["threshold"],
            pr["summary"].as_str().unwrap_or_default()
        );
    }
    Ok(())
}
