//! `ecrop register extract` and `export`: the register rebuilt from its events and checked
//! against the contract's views at the same block.

use alloy::{eips::BlockNumberOrTag, primitives::Address, providers::Provider};
use anyhow::{Context, bail};

use super::{
    platform::Platform,
    register::{ExportArgs, ExtractArgs},
};
use crate::onchain::{
    events::decode_logs,
    register::{RegisterSnapshot, rebuild, to_csv, verify},
};

const REGISTER: &str = "SecuritiesRegister";

/// Rebuilds the register at `block` (latest when `None`) and checks it against the views.
async fn snapshot(p: &Platform, block: Option<u64>) -> anyhow::Result<RegisterSnapshot> {
    let latest = p.client.block_number().await?;
    let block = block.unwrap_or(latest);
    if block > latest {
        bail!("block {block} is in the future (latest is {latest})");
    }
    let register = p.address(REGISTER)?;
    let code = p
        .client
        .provider()
        .get_code_at(register)
        .block_id(block.into())
        .await
        .context("reading the register's code")?;
    if code.is_empty() {
        bail!("block {block} is before the register was deployed at {register}");
    }
    let abi = p.artifacts.get(REGISTER)?.abi;
    let header = p
        .client
        .provider()
        .get_block_by_number(BlockNumberOrTag::Number(block))
        .await
        .context("reading the block")?
        .with_context(|| format!("block {block} not found"))?;
    let timestamp = header.header.timestamp;

    let from = p.deployment.start_block.min(block);
    let logs = p.client.logs(register, &[], from, block).await?;
    let events = decode_logs(&abi, &logs);
    let securities = rebuild(&events, timestamp)?;
    let snapshot = RegisterSnapshot {
        chain_id: p.deployment.chain_id,
        block,
        timestamp,
        register,
        securities,
    };
    let differences = verify(&p.client, &abi, &snapshot).await?;
    if !differences.is_empty() {
        bail!(
            "the register rebuilt from events differs from the contract at block {block}:\n  {}",
            differences.join("\n  ")
        );
    }
    Ok(snapshot)
}

/// `ecrop register extract`.
pub async fn extract(a: &ExtractArgs) -> anyhow::Result<()> {
    let p = Platform::open(&a.chain).await?;
    let snapshot = snapshot(&p, a.block).await?;
    let holder_id = holder_id(&p, a.holder, snapshot.block).await.unwrap_or_default();

    let holdings: Vec<_> = snapshot
        .securities
        .iter()
        .filter_map(|(isin, s)| s.holdings.get(&a.holder).map(|h| (isin, s, h)))
        .collect();
    if p.json {
        let entries: Vec<_> = holdings
            .iter()
            .map(|(isin, s, h)| {
                serde_json::json!({"isin": isin, "kind": s.kind, "currency": s.currency,
                    "nominalPerUnit": s.nominal_per_unit, "termsHash": s.terms_hash, "holding": h})
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "holder": a.holder, "holderId": holder_id, "block": snapshot.block,
                "timestamp": snapshot.timestamp, "register": snapshot.register, "holdings": entries,
            }))?
        );
        return Ok(());
    }
    println!("Register extract (Registerauszug)");
    println!("  register   {} on chain {}", snapshot.register, snapshot.chain_id);
    println!("  as of      block {} (unix time {})", snapshot.block, snapshot.timestamp);
    println!(
        "  holder     {}{}",
        a.holder,
        if holder_id.is_empty() { String::new() } else { format!(" (holder id {holder_id})") }
    );
    if holdings.is_empty() {
        println!("  no holdings");
    }
    for (isin, security, h) in holdings {
        println!();
        println!(
            "  {isin}  {} entry, nominal per unit {} (minor units of {}), status {}",
            security.kind, security.nominal_per_unit, security.currency, security.status
        );
        println!("    balance      {}", h.balance);
        println!("    restricted   {}", h.restricted);
        println!("    encumbered   {}", h.encumbered);
        println!("    free         {}", h.free);
        if h.frozen {
            println!("    frozen       yes");
        }
        for r in &h.restrictions {
            println!(
                "    restriction {}: {} units, reason {}, authority {}, expiry {}",
                r.id,
                r.amount,
                r.reason_code,
                r.authority,
                if r.expiry == 0 { "none".to_owned() } else { r.expiry.to_string() }
            );
        }
        for pl in &h.pledges {
            println!("    {} {}: {} units for {}", pl.kind, pl.id, pl.amount, pl.beneficiary);
        }
    }
    Ok(())
}

/// `ecrop register export`.
pub async fn export(a: &ExportArgs) -> anyhow::Result<()> {
    let p = Platform::open(&a.chain).await?;
    let snapshot = snapshot(&p, a.block).await?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let json_path = a.out.join(format!("register-{}.json", snapshot.block));
    let csv_path = a.out.join(format!("register-{}.csv", snapshot.block));
    std::fs::write(&json_path, serde_json::to_string_pretty(&snapshot)? + "\n")
        .with_context(|| format!("writing {}", json_path.display()))?;
    std::fs::write(&csv_path, to_csv(&snapshot))
        .with_context(|| format!("writing {}", csv_path.display()))?;
    let holdings: usize = snapshot.securities.values().map(|s| s.holdings.len()).sum();
    if p.json {
        println!(
            "{}",
            serde_json::json!({"block": snapshot.block, "securities": snapshot.securities.len(),
                "holdings": holdings, "json": json_path, "csv": csv_path, "verified": true})
        );
    } else {
        println!(
            "register as of block {}: {} securities, {} holdings; matches the contract's views",
            snapshot.block,
            snapshot.securities.len(),
            holdings
        );
        println!("  {}\n  {}", json_path.display(), csv_path.display());
    }
    Ok(())
}

async fn holder_id(p: &Platform, wallet: Address, block: u64) -> anyhow::Result<String> {
    let out = p
        .call(
            "InvestorRegistry",
            "holderOf",
            vec![alloy::dyn_abi::DynSolValue::Address(wallet)],
            Some(block),
        )
        .await?;
    Ok(match out.first() {
        Some(value) => crate::onchain::format_value(value),
        None => String::new(),
    })
}
