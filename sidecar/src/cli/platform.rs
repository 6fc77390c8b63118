//! Shared plumbing of the commands that work with the platform's contracts: the client, the
//! deployment and the artifacts, value parsing, and the two output forms.

use std::path::Path;

use alloy::{
    dyn_abi::DynSolValue,
    primitives::{Address, B256, U256},
};
use anyhow::{Context, bail};
use serde_json::Value;

use super::ChainArgs;
use crate::onchain::{Artifacts, Client, Deployment, Sent};

/// Client, addresses and ABIs of a deployed platform.
pub struct Platform {
    /// Client of the sidecar's endpoint.
    pub client: Client,
    /// Compiled contracts.
    pub artifacts: Artifacts,
    /// Addresses.
    pub deployment: Deployment,
    /// Print JSON instead of text.
    pub json: bool,
}

impl Platform {
    /// Opens the deployment named by `chain`.
    pub async fn open(chain: &ChainArgs) -> anyhow::Result<Self> {
        let artifacts = Artifacts::new(&chain.artifacts);
        let client = chain.client(&artifacts)?;
        Self::connect(client, artifacts, &chain.deployment, chain.json, "ecrop contracts deploy")
            .await
    }

    /// Loads the deployment file at `path` and checks it belongs to the client's chain;
    /// `deploy_command` is named when the file is missing.
    pub async fn connect(
        client: Client,
        artifacts: Artifacts,
        path: &std::path::Path,
        json: bool,
        deploy_command: &str,
    ) -> anyhow::Result<Self> {
        if !path.exists() {
            bail!(
                "deployment file not found ({}); run `{deploy_command}` first, or pass --deployment",
                path.display()
            );
        }
        let deployment = Deployment::load(path)?;
        // Addresses of another chain would point at unrelated contracts: refuse them.
        let node = client.chain_id().await?;
        if deployment.chain_id != node {
            bail!(
                "deployment file {} is for chain {}, the node is chain {node}",
                path.display(),
                deployment.chain_id
            );
        }
        Ok(Self { client, artifacts, deployment, json })
    }

    /// Address of contract `name`.
    pub fn address(&self, name: &str) -> anyhow::Result<Address> {
        Ok(self.deployment.address(name)?)
    }

    /// Sends `function` of contract `name`.
    pub async fn send(
        &self,
        name: &str,
        function: &str,
        args: Vec<DynSolValue>,
    ) -> anyhow::Result<Sent> {
        let abi = self.artifacts.get(name)?.abi;
        Ok(self.client.send(name, &abi, self.address(name)?, function, &args).await?)
    }

    /// Calls view `function` of contract `name` at `block` (latest when `None`).
    pub async fn call(
        &self,
        name: &str,
        function: &str,
        args: Vec<DynSolValue>,
        block: Option<u64>,
    ) -> anyhow::Result<Vec<DynSolValue>> {
        let abi = self.artifacts.get(name)?.abi;
        Ok(self.client.call(name, &abi, self.address(name)?, function, &args, block).await?)
    }

    /// Logs of the events named `events` of contract `name` in blocks `from..=to` (all its
    /// events when `events` is empty).
    pub async fn event_logs(
        &self,
        name: &str,
        events: &[&str],
        from: u64,
        to: u64,
    ) -> anyhow::Result<Vec<alloy::rpc::types::Log>> {
        let abi = self.artifacts.get(name)?.abi;
        let mut selectors = Vec::new();
        for event in events {
            let found = abi
                .event(event)
                .and_then(|e| e.first())
                .with_context(|| format!("{name} has no event {event}"))?;
            selectors.push(found.selector());
        }
        Ok(self.client.logs(self.address(name)?, &selectors, from, to).await?)
    }

    /// Field `field` of the first `event` that contract `name` emitted in `sent`; an error
    /// when the transaction carries none (the contract did not do what was asked).
    pub fn event_u64(
        &self,
        name: &str,
        sent: &Sent,
        event: &str,
        field: &str,
    ) -> anyhow::Result<u64> {
        let abi = self.artifacts.get(name)?.abi;
        crate::onchain::events::decode_logs(&abi, &sent.logs)
            .iter()
            .find(|e| e.name == event)
            .and_then(|e| e.u64(field).ok())
            .with_context(|| format!("transaction {} emitted no {event} event", sent.hash))
    }

    /// Prints the outcome of a transaction: `what` for people, `what` plus `details` as JSON.
    pub fn done(&self, what: &str, sent: &Sent, details: Value) {
        if self.json {
            let mut out = serde_json::json!({
                "action": what,
                "transaction": sent.hash,
                "block": sent.block,
                "gasUsed": sent.gas_used,
            });
            if let (Value::Object(out), Value::Object(extra)) = (&mut out, details) {
                out.extend(extra);
            }
            println!("{out}");
        } else {
            println!("{what} (transaction {}, block {})", sent.hash, sent.block);
        }
    }
}

/// Address value.
pub fn address(a: Address) -> DynSolValue {
    DynSolValue::Address(a)
}

/// Unsigned integer value of `bits` bits.
pub fn uint(v: impl Into<U256>, bits: usize) -> DynSolValue {
    DynSolValue::Uint(v.into(), bits)
}

/// `bytes32` value.
pub fn word(v: B256) -> DynSolValue {
    DynSolValue::FixedBytes(v, 32)
}

/// A `bytes32` from `0x` + 64 hex digits, or from text of at most 32 bytes (right-padded).
pub fn bytes32_arg(text: &str) -> anyhow::Result<B256> {
    if let Some(hex_part) = text.strip_prefix("0x") {
        let bytes = hex::decode(hex_part).context("not hex")?;
        if bytes.len() != 32 {
            bail!("a 32-byte value needs 64 hex digits ({text})");
        }
        return Ok(B256::from_slice(&bytes));
    }
    if text.is_empty() || text.len() > 32 {
        bail!("text for a 32-byte field must be 1 to 32 bytes ({text})");
    }
    let mut out = [0u8; 32];
    out[..text.len()].copy_from_slice(text.as_bytes());
    Ok(B256::from(out))
}

/// Largest document hashed: 1 GiB covers scanned court files while bounding the work.
pub const MAX_DOCUMENT_BYTES: u64 = 1 << 30;

/// A document's hash: keccak-256 of the file's bytes, or a given `0x` hash.
pub fn document_hash(file: Option<&Path>, hash: Option<&str>) -> anyhow::Result<B256> {
    match (file, hash) {
        (Some(path), None) => crate::onchain::files::keccak_file(path, MAX_DOCUMENT_BYTES)
            .map_err(|reason| anyhow::anyhow!("document {} ({reason})", path.display())),
        (None, Some(h)) => bytes32_arg(h),
        _ => bail!("give the document as --document FILE or --document-hash 0x…"),
    }
}

/// A point in time as Unix seconds: digits are taken as seconds, `YYYY-MM-DD` as midnight UTC,
/// `+Nd` / `+Nh` as that long from now.
pub fn time_arg(text: &str) -> anyhow::Result<u64> {
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(seconds);
    }
    if let Some(rest) = text.strip_prefix('+') {
        let (count, unit) = rest.split_at(rest.len().saturating_sub(1));
        let count: u64 = count.parse().with_context(|| format!("bad duration ({text})"))?;
        let seconds = match unit {
            "d" => count * 86_400,
            "h" => count * 3_600,
            "m" => count * 60,
            _ => bail!("duration unit must be d, h or m ({text})"),
        };
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
        return Ok(now + seconds);
    }
    let parts: Vec<&str> = text.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        bail!("time must be Unix seconds, YYYY-MM-DD or +Nd ({text})");
    };
    let (y, m, d): (i64, u32, u32) = (y.parse()?, m.parse()?, d.parse()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || y < 1970 {
        bail!("not a date ({text})");
    }
    // Days since 1970-01-01 of a civil date (proleptic Gregorian).
    let y_adj = if m <= 2 { y - 1 } else { y };
    let era = y_adj.div_euclid(400);
    let yoe = y_adj - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400).context("date before 1970")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_times() {
        assert_eq!(time_arg("0").unwrap(), 0);
        assert_eq!(time_arg("2024-03-01").unwrap(), 1_709_251_200);
        assert_eq!(time_arg("1970-01-02").unwrap(), 86_400);
        assert!(time_arg("+2d").unwrap() > 1_700_000_000);
        assert!(time_arg("2024-13-01").is_err());
        assert!(time_arg("+3w").is_err());
    }

    #[test]
    fn parses_bytes32() {
        let text = bytes32_arg("LEI-529900").unwrap();
        assert_eq!(&text[..10], b"LEI-529900");
        assert!(bytes32_arg(&"a".repeat(33)).is_err());
        assert!(bytes32_arg("0x1234").is_err());
    }
}
