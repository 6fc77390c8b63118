//! `ecrop instruction`: holder instructions (Weisungen) signed with EIP-712, submitted and
//! executed in the order received.

use std::path::PathBuf;

use alloy::{
    dyn_abi::DynSolValue,
    primitives::{Address, Bytes, U256},
    providers::Provider,
};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    ChainArgs,
    platform::{Platform, address, time_arg, uint},
};
use crate::onchain::{
    events::decode_logs,
    register::{isin_text, isin_value},
};

const BOOK: &str = "InstructionBook";
/// Most instructions one `execute` transaction takes by default: keeps a batch well inside a
/// block's gas limit (about 134k gas each).
const DEFAULT_BATCH: u64 = 50;
/// Largest instruction file read.
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// Instruction subcommands.
#[derive(Debug, Subcommand)]
pub enum InstructionCommand {
    /// Sign a transfer instruction as the holder (the holder's key is in the sidecar's token)
    /// and write it to a file for the register keeper.
    Sign(SignArgs),
    /// Submit a signed instruction (register keeper); it gets its receipt time and place.
    Submit(SubmitArgs),
    /// Execute queued instructions in the order received (register keeper).
    Execute(ExecuteArgs),
}

/// Options of `instruction sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// ISIN.
    #[arg(long, value_name = "ISIN")]
    pub isin: String,
    /// Receiving wallet.
    #[arg(long, value_name = "ADDRESS")]
    pub to: Address,
    /// Units.
    #[arg(long, value_name = "UNITS")]
    pub amount: U256,
    /// Latest execution time (Unix seconds, YYYY-MM-DD or +Nd).
    #[arg(long, value_name = "TIME", default_value = "+7d")]
    pub deadline: String,
    /// File to write the signed instruction to; an existing file is not overwritten.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// The holder's instruction number. Default: the next one the book expects; give it
    /// explicitly (next + 1, next + 2, ...) to sign several before any is submitted.
    #[arg(long, value_name = "N")]
    pub nonce: Option<u64>,
    /// Chain options (`--from` is the holder).
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// Options of `instruction submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// Signed instruction written by `instruction sign`.
    #[arg(long, value_name = "FILE")]
    pub file: PathBuf,
    /// Chain options (`--from` is the register keeper).
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// Options of `instruction execute`.
#[derive(Debug, Args)]
pub struct ExecuteArgs {
    /// Most instructions to execute in this transaction.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BATCH)]
    pub max: u64,
    /// Chain options (`--from` is the register keeper).
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// A signed instruction as exchanged between holder and register keeper.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SignedInstruction {
    /// Instruction book the signature is bound to.
    pub book: Address,
    /// Chain id.
    pub chain_id: u64,
    /// ISIN.
    pub isin: String,
    /// Holder (signer).
    pub from: Address,
    /// Receiver.
    pub to: Address,
    /// Units.
    pub amount: U256,
    /// Holder's nonce.
    pub nonce: U256,
    /// Deadline, Unix seconds.
    pub deadline: U256,
    /// EIP-712 signature by `from`.
    pub signature: Bytes,
}

impl SignedInstruction {
    fn tuple(&self) -> anyhow::Result<DynSolValue> {
        Ok(DynSolValue::Tuple(vec![
            isin_value(&self.isin)?,
            address(self.from),
            address(self.to),
            uint(self.amount, 256),
            uint(self.nonce, 256),
            uint(self.deadline, 256),
        ]))
    }
}

/// Runs an instruction subcommand.
pub async fn run(command: &InstructionCommand) -> anyhow::Result<()> {
    match command {
        InstructionCommand::Sign(a) => sign(a).await,
        InstructionCommand::Submit(a) => submit(a).await,
        InstructionCommand::Execute(a) => execute(a).await,
    }
}

async fn sign(a: &SignArgs) -> anyhow::Result<()> {
    let p = Platform::open(&a.chain).await?;
    let holder = p.client.from()?;
    let book = p.address(BOOK)?;
    if a.out.exists() {
        bail!(
            "{} exists; choose another --out (a signed instruction is never overwritten)",
            a.out.display()
        );
    }
    let next = match p.call(BOOK, "nonces", vec![address(holder)], None).await?.first() {
        Some(DynSolValue::Uint(n, _)) => *n,
        _ => bail!("nonces returned nothing"),
    };
    let nonce = match a.nonce {
        Some(n) if U256::from(n) < next => {
            bail!("nonce {n} is already used; the book expects {next} or later")
        }
        Some(n) => U256::from(n),
        None => next,
    };
    let deadline = U256::from(time_arg(&a.deadline)?);
    isin_value(&a.isin)?;
    let isin = a.isin.to_ascii_uppercase();
    let typed = json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}
            ],
            "Instruction": [
                {"name": "isin", "type": "bytes12"}, {"name": "from", "type": "address"},
                {"name": "to", "type": "address"}, {"name": "amount", "type": "uint256"},
                {"name": "nonce", "type": "uint256"}, {"name": "deadline", "type": "uint256"}
            ]
        },
        "primaryType": "Instruction",
        "domain": {"name": "ecrop instruction book", "version": "1", "chainId": p.deployment.chain_id, "verifyingContract": book},
        "message": {
            "isin": format!("0x{}", hex::encode(isin.as_bytes())), "from": holder, "to": a.to,
            "amount": a.amount.to_string(), "nonce": nonce.to_string(), "deadline": deadline.to_string()
        }
    });
    let signature: Bytes = p
        .client
        .provider()
        .raw_request("eth_signTypedData_v4".into(), (holder, typed))
        .await
        .context("eth_signTypedData_v4 through the sidecar")?;
    let signed = SignedInstruction {
        book,
        chain_id: p.deployment.chain_id,
        isin,
        from: holder,
        to: a.to,
        amount: a.amount,
        nonce,
        deadline,
        signature,
    };

    // The contract's own digest must be what was signed; recover against it.
    let digest = match p.call(BOOK, "instructionDigest", vec![signed.tuple()?], None).await?.first()
    {
        Some(DynSolValue::FixedBytes(d, _)) => *d,
        _ => bail!("instructionDigest returned nothing"),
    };
    let recovered = alloy::primitives::Signature::try_from(signed.signature.as_ref())
        .context("signature is not 65 bytes")?
        .recover_address_from_prehash(&digest)
        .context("recovering the signer")?;
    if recovered != holder {
        bail!(
            "the signature recovers to {recovered}, not the holder {holder}: domain or type mismatch"
        );
    }
    std::fs::write(&a.out, serde_json::to_string_pretty(&signed)? + "\n")
        .with_context(|| format!("writing {}", a.out.display()))?;
    if p.json {
        println!("{}", json!({"file": a.out, "nonce": nonce, "digest": digest}));
    } else {
        println!(
            "instruction {nonce} of {holder} signed: {} {} to {}; written to {}",
            a.amount,
            a.isin,
            a.to,
            a.out.display()
        );
    }
    Ok(())
}

async fn submit(a: &SubmitArgs) -> anyhow::Result<()> {
    let p = Platform::open(&a.chain).await?;
    let text = crate::onchain::files::read_text(&a.file, MAX_FILE_BYTES).map_err(|reason| {
        anyhow::anyhow!("{} cannot be a signed instruction ({reason})", a.file.display())
    })?;
    let signed: SignedInstruction = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a signed instruction", a.file.display()))?;
    let book = p.address(BOOK)?;
    if signed.book != book || signed.chain_id != p.deployment.chain_id {
        bail!(
            "the instruction was signed for book {} on chain {}, this deployment is book {book} on chain {}",
            signed.book,
            signed.chain_id,
            p.deployment.chain_id
        );
    }
    let sent = p
        .send(BOOK, "submit", vec![signed.tuple()?, DynSolValue::Bytes(signed.signature.to_vec())])
        .await?;
    let abi = p.artifacts.get(BOOK)?.abi;
    let received =
        decode_logs(&abi, &sent.logs).into_iter().find(|e| e.name == "InstructionReceived");
    let (id, at) = match &received {
        Some(e) => {
            (e.u64("instructionId").unwrap_or_default(), e.u64("receivedAt").unwrap_or_default())
        }
        None => (0, 0),
    };
    p.done(
        &format!("instruction {id} received at {at}"),
        &sent,
        json!({"instructionId": id, "receivedAt": at}),
    );
    Ok(())
}

async fn execute(a: &ExecuteArgs) -> anyhow::Result<()> {
    let p = Platform::open(&a.chain).await?;
    let abi = p.artifacts.get(BOOK)?.abi;
    let bounds = p.call(BOOK, "queueBounds", vec![], None).await?;
    let (head, tail) = match bounds.as_slice() {
        [DynSolValue::Uint(h, _), DynSolValue::Uint(t, _)] => (h.to::<u64>(), t.to::<u64>()),
        _ => bail!("queueBounds returned nothing"),
    };
    if head >= tail {
        println!("no instructions queued");
        return Ok(());
    }
    let count = (tail - head).min(a.max.max(1));

    let latest = p.client.provider().get_block_number().await.context("block number")?;
    let logs =
        p.event_logs(BOOK, &["InstructionReceived"], p.deployment.start_block, latest).await?;
    let received: std::collections::BTreeMap<u64, DynSolValue> = decode_logs(&abi, &logs)
        .into_iter()
        .filter(|e| e.name == "InstructionReceived")
        .filter_map(|e| {
            let id = e.u64("instructionId").ok()?;
            let tuple = DynSolValue::Tuple(vec![
                DynSolValue::Tuple(vec![
                    isin_value(&isin_text(&e.fixed_bytes("isin").ok()?)).ok()?,
                    address(e.address("from").ok()?),
                    address(e.address("to").ok()?),
                    uint(e.uint("amount").ok()?, 256),
                    uint(e.uint("nonce").ok()?, 256),
                    uint(e.uint("deadline").ok()?, 256),
                ]),
                uint(e.uint("receivedAt").ok()?, 48),
            ]);
            Some((id, tuple))
        })
        .collect();
    let mut batch = Vec::new();
    for id in head..head + count {
        batch.push(
            received
                .get(&id)
                .cloned()
                .with_context(|| format!("instruction {id} not found in the book's events"))?,
        );
    }
    let sent = p.send(BOOK, "executeNext", vec![DynSolValue::Array(batch)]).await?;
    let mut outcomes = Vec::new();
    for e in decode_logs(&abi, &sent.logs) {
        match e.name.as_str() {
            "InstructionExecuted" => outcomes.push(json!({"instructionId": e.u64("instructionId")?, "executed": true, "entryId": e.u64("entryId")?})),
            "InstructionRejected" => {
                let code = e.u64("reason")?;
                let reason = super::register::REASON_CODES.get(code as usize).map_or("Unknown", |r| r.0);
                outcomes.push(json!({"instructionId": e.u64("instructionId")?, "executed": false, "reason": reason, "code": code}));
            }
            _ => {}
        }
    }
    if p.json {
        println!(
            "{}",
            json!({"transaction": sent.hash, "block": sent.block, "instructions": outcomes})
        );
    } else {
        for o in &outcomes {
            if o["executed"] == true {
                println!("instruction {} executed as entry {}", o["instructionId"], o["entryId"]);
            } else {
                println!(
                    "instruction {} rejected: {}",
                    o["instructionId"],
                    o["reason"].as_str().unwrap_or_default()
                );
            }
        }
        println!("(transaction {}, block {})", sent.hash, sent.block);
    }
    Ok(())
}
