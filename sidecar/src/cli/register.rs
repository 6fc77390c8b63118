//! `ecrop register`: the register keeper's, compliance officer's and issuer agent's daily
//! work on the crypto-securities register, each action signed by the sidecar's HSM.

use std::path::PathBuf;

use alloy::{
    dyn_abi::{DynSolValue, JsonAbiExt},
    primitives::{Address, B256, Bytes, U256},
};
use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use super::{
    ChainArgs,
    platform::{Platform, address, bytes32_arg, document_hash, time_arg, uint, word},
};
use crate::onchain::{self, find_function, register::isin_value};

const REGISTER: &str = "SecuritiesRegister";
const REGISTRY: &str = "InvestorRegistry";

pub use crate::onchain::register::REASON_CODES;

/// Register subcommands.
#[derive(Debug, Subcommand)]
pub enum RegisterCommand {
    /// Enter a new security (register keeper); needs the issuer's consent first.
    CreateSecurity(CreateSecurityArgs),
    /// Consent, as the issuer's agent, to a register change given by its digest.
    Consent(DigestArgs),
    /// Issue units of a security to a holder (register keeper).
    Issue(MoveArgs),
    /// Redeem units from a holder (register keeper).
    Redeem(MoveArgs),
    /// Raise a security's issue volume (register keeper, with the issuer's consent).
    IncreaseVolume(VolumeArgs),
    /// Enter an investor with KYC approval and wallets (compliance officer).
    Onboard(OnboardArgs),
    /// Place a restriction on disposal on part of a holding (register keeper).
    Restrict(RestrictArgs),
    /// Create a third-party right such as a pledge over part of a holding (register keeper).
    Pledge(PledgeArgs),
    /// Move units without the holder's instruction, by court order or insolvency (register keeper).
    ForceTransfer(ForceTransferArgs),
    /// Move a holding from a lost wallet to another wallet of the same investor (register keeper).
    Recover(RecoverArgs),
    /// Correct a wrongful entry by a reversing entry that points to it (register keeper).
    Reverse(ReverseArgs),
    /// Freeze or unfreeze a holding (compliance officer).
    Freeze(FreezeArgs),
    /// Say whether a transfer would be booked, and if not, exactly why.
    Check(CheckArgs),
    /// Print a holder's register extract.
    Extract(ExtractArgs),
    /// Write the whole register as of a block (JSON and CSV), rebuilt from events and checked
    /// against the contract's views at that block.
    Export(ExportArgs),
}

/// Entry kind of a security.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Kind {
    /// Single entry: the holder is the investor.
    Single,
    /// Collective entry: held by a custodian or central depository for many investors.
    Collective,
}

/// Options of `create-security`.
#[derive(Debug, Args)]
pub struct CreateSecurityArgs {
    /// ISIN (check digit validated by the register).
    #[arg(long, value_name = "ISIN")]
    pub isin: String,
    /// Issuer's address.
    #[arg(long, value_name = "ADDRESS")]
    pub issuer: Address,
    /// Single or collective entry.
    #[arg(long, value_enum, default_value = "single")]
    pub kind: Kind,
    /// ISO 4217 currency code.
    #[arg(long, value_name = "CODE", default_value = "EUR")]
    pub currency: String,
    /// Nominal amount per unit, in the currency's minor unit.
    #[arg(long, value_name = "AMOUNT")]
    pub nominal: u128,
    /// Issue volume: most units that may ever exist.
    #[arg(long, value_name = "UNITS")]
    pub volume: u128,
    /// The terms document; its keccak-256 hash is entered.
    #[arg(long, value_name = "FILE")]
    pub terms: Option<PathBuf>,
    /// The terms document's hash, when the file is not at hand.
    #[arg(long, value_name = "HASH", conflicts_with = "terms")]
    pub terms_hash: Option<String>,
    /// Where the terms document is published.
    #[arg(long, value_name = "URI")]
    pub terms_uri: String,
    /// Chain options.
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// Options of `consent`.
#[derive(Debug, Args)]
pub struct DigestArgs {
    /// Digest printed by the command that needs the consent.
    #[arg(long, value_name = "HASH")]
    pub digest: String,
    /// Chain options.
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// Options of `issue` and `redeem`.
#[derive(Debug, Args)]
pub struct MoveArgs {
    /// ISIN.
    #[arg(long, value_name = "ISIN")]
    pub isin: String,
    /// Holder receiving (issue) or giving up (redeem) the units.
    #[arg(long, value_name = "ADDRESS")]
    pub holder: Address,
    /// Units.
    #[arg(long, value_name = "UNITS")]
    pub amount: U256,
    /// Chain options.
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// Options of `increase-volume`.
#[derive(Debug, Args)]
pub struct VolumeArgs {
    /// ISIN.
    #[arg(long, value_name = "ISIN")]
    pub isin: String,
    /// New issue volume.
    #[arg(long, value_name = "UNITS")]
    pub volume: U256,
    /// Chain options.
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// Options of `onboard`.
#[derive(Debug, Args)]
pub struct OnboardArgs {
    /// Unique holder identifier: text of up to 32 bytes, or 0x and 64 hex digits.
    #[arg(long, value_name = "ID")]
    pub holder_id: String,
    /// ISO 3166 two-letter country code.
    #[arg(long, value_name = "CC")]
    pub country: String,
    /// End of the KYC approval: Unix seconds, YYYY-MM-DD or +Nd.
    #[arg(long, value_name = "TIME")]
    pub kyc_expiry: String,
    /// Wallet of the investor (repeat for several).
    #[arg(long = "wallet", value_name = "ADDRESS", required = true)]
    pub wallets: Vec<Address>,
    /// The investor is a custodian or central depository holding collective entries.
    #[arg(long)]
    pub collective: bool,
    /// Chain options.
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// Options of `restrict`.
#[derive(Debug, Args)]
pub struct RestrictArgs {
    /// ISIN.
    #[arg(long, value_name = "ISIN")]
    pub isin: String,
    /// Holder.
    #[arg(long, value_name = "ADDRESS")]
    pub holder: Address,
    /// Units restricted.
    #[arg(long, value_name = "UNITS")]
    pub amount: U256,
    /// Reason code of the restriction.
    #[arg(long, value_name = "CODE")]
    pub reason_code: u16,
    /// Authority that ordered it: text of up to 32 bytes or a 0x hash.
    #[arg(long, value_name = "AUTHORITY")]
    pub authority: String,
    /// End of the restriction (Unix seconds, YYYY-MM-DD or +Nd); none when absent.
    #[arg(long, value_name = "TIME")]
    pub expiry: Option<String>,
    /// Chain options.
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// Kind of third-party right.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PledgeKindArg {
    /// Pledge.
    Pledge,
    /// Lien.
    Lien,
    /// Usufruct.
    Usufruct,
    /// Other right.
    Other,
}

/// Options of `pledge`.
#[derive(Debug, Args)]
pub struct PledgeArgs {
    /// ISIN.
    #[arg(long, value_name = "ISIN")]
    pub isin: String,
    /// Holder.
    #[arg(long, value_name = "ADDRESS")]
    pub holder: Address,
    /// Units encumbered.
    #[arg(long, value_name = "UNITS")]
    pub amount: U256,
    /// Beneficiary of the right.
    #[arg(long, value_name = "ADDRESS")]
    pub beneficiary: Address,
    /// Kind of right.
    #[arg(long, value_enum, default_value = "pledge")]
    pub kind: PledgeKindArg,
    /// Chain options.
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// Legal ground of a register keeper action.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Ground {
    /// A court order.
    CourtOrder,
    /// Insolvency proceedings.
    Insolvency,
    /// Succession.
    Inheritance,
    /// An authority's order.
    AuthorityOrder,
}

/// Options of `force-transfer`.
#[derive(Debug, Args)]
pub struct ForceTransferArgs {
    /// ISIN.
    #[arg(long, value_name = "ISIN")]
    pub isin: String,
    /// Holding the units leave.
    #[arg(long, value_name = "ADDRESS")]
    pub sender: Address,
    /// Holding the units go to.
    #[arg(long, value_name = "ADDRESS")]
    pub receiver: Address,
    /// Units.
    #[arg(long, value_name = "UNITS")]
    pub amount: U256,
    /// Legal ground.
    #[arg(long, value_enum)]
    pub reason: Ground,
    /// The document behind the action.
    #[command(flatten)]
    pub doc: DocumentArgs,
    /// Chain options.
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// The document behind a register keeper action (court order, evidence, decision): only its
/// keccak-256 hash is entered.
#[derive(Debug, Args)]
pub struct DocumentArgs {
    /// The document file; its keccak-256 hash is entered.
    #[arg(long, value_name = "FILE")]
    pub document: Option<PathBuf>,
    /// The document's hash, when the file is not at hand.
    #[arg(long, value_name = "HASH", conflicts_with = "document")]
    pub document_hash: Option<String>,
}

impl DocumentArgs {
    /// The hash to enter.
    pub fn hash(&self) -> anyhow::Result<B256> {
        document_hash(self.document.as_deref(), self.document_hash.as_deref())
    }
}

/// Options of `recover`.
#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// ISIN (recovery moves one security at a time).
    #[arg(long = "isin", value_name = "ISIN", required = true)]
    pub isins: Vec<String>,
    /// The wallet whose key was lost.
    #[arg(long, value_name = "ADDRESS")]
    pub lost: Address,
    /// Another wallet of the same investor.
    #[arg(long, value_name = "ADDRESS")]
    pub replacement: Address,
    /// The document behind the action.
    #[command(flatten)]
    pub doc: DocumentArgs,
    /// Chain options.
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// Options of `reverse`.
#[derive(Debug, Args)]
pub struct ReverseArgs {
    /// Id of the wrongful entry.
    #[arg(long, value_name = "ID")]
    pub entry: u64,
    /// The document behind the action.
    #[command(flatten)]
    pub doc: DocumentArgs,
    /// Chain options.
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// Options of `freeze`.
#[derive(Debug, Args)]
pub struct FreezeArgs {
    /// ISIN.
    #[arg(long, value_name = "ISIN")]
    pub isin: String,
    /// Holder.
    #[arg(long, value_name = "ADDRESS")]
    pub holder: Address,
    /// Lift the freeze instead.
    #[arg(long)]
    pub unfreeze: bool,
    /// Chain options.
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// Options of `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// ISIN.
    #[arg(long, value_name = "ISIN")]
    pub isin: String,
    /// Sender.
    #[arg(long, value_name = "ADDRESS")]
    pub sender: Address,
    /// Receiver.
    #[arg(long, value_name = "ADDRESS")]
    pub receiver: Address,
    /// Units.
    #[arg(long, value_name = "UNITS")]
    pub amount: U256,
    /// Chain options.
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// Options of `extract`.
#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// Holder's wallet.
    #[arg(long, value_name = "ADDRESS")]
    pub holder: Address,
    /// Block to report at (default latest).
    #[arg(long, value_name = "N")]
    pub block: Option<u64>,
    /// Chain options.
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// Options of `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Block the register is exported as of (default latest).
    #[arg(long, value_name = "N")]
    pub block: Option<u64>,
    /// Directory for register-<block>.json and register-<block>.csv.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
    /// Chain options.
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// Runs a register subcommand.
pub async fn run(command: &RegisterCommand) -> anyhow::Result<()> {
    match command {
        RegisterCommand::CreateSecurity(a) => create_security(a).await,
        RegisterCommand::Consent(a) => {
            let p = Platform::open(&a.chain).await?;
            let digest = bytes32_arg(&a.digest)?;
            let sent = p.send(REGISTER, "consent", vec![word(digest)]).await?;
            p.done(&format!("consent given to {digest}"), &sent, json!({"digest": digest}));
            Ok(())
        }
        RegisterCommand::Issue(a) => movement(a, "issue").await,
        RegisterCommand::Redeem(a) => movement(a, "redeem").await,
        RegisterCommand::IncreaseVolume(a) => {
            let p = Platform::open(&a.chain).await?;
            let args = vec![isin_value(&a.isin)?, uint(a.volume, 256)];
            let issuer = issuer_of(&p, &a.isin).await?;
            ensure_consent(&p, issuer, "increaseIssueVolume", &args).await?;
            let sent = p.send(REGISTER, "increaseIssueVolume", args).await?;
            p.done(
                &format!("issue volume of {} raised to {}", a.isin, a.volume),
                &sent,
                json!({"issueVolume": a.volume}),
            );
            Ok(())
        }
        RegisterCommand::Onboard(a) => onboard(a).await,
        RegisterCommand::Restrict(a) => {
            let p = Platform::open(&a.chain).await?;
            let expiry = a.expiry.as_deref().map(time_arg).transpose()?.unwrap_or(0);
            let args = vec![
                isin_value(&a.isin)?,
                address(a.holder),
                uint(a.amount, 256),
                uint(U256::from(a.reason_code), 16),
                word(bytes32_arg(&a.authority)?),
                uint(U256::from(expiry), 48),
            ];
            let sent = p.send(REGISTER, "restrict", args).await?;
            let id = p.event_u64(REGISTER, &sent, "RestrictionPlaced", "restrictionId")?;
            p.done(
                &format!("restriction {id} placed on {} {} of {}", a.amount, a.isin, a.holder),
                &sent,
                json!({"restrictionId": id}),
            );
            Ok(())
        }
        RegisterCommand::Pledge(a) => {
            let p = Platform::open(&a.chain).await?;
            let args = vec![
                isin_value(&a.isin)?,
                address(a.holder),
                uint(a.amount, 256),
                address(a.beneficiary),
                uint(U256::from(a.kind as u8), 8),
            ];
            let sent = p.send(REGISTER, "pledge", args).await?;
            let id = p.event_u64(REGISTER, &sent, "PledgeCreated", "pledgeId")?;
            p.done(
                &format!(
                    "pledge {id} over {} {} of {} for {}",
                    a.amount, a.isin, a.holder, a.beneficiary
                ),
                &sent,
                json!({"pledgeId": id}),
            );
            Ok(())
        }
        RegisterCommand::ForceTransfer(a) => {
            let p = Platform::open(&a.chain).await?;
            let doc = a.doc.hash()?;
            // ActionReason: CourtOrder = 1, Insolvency = 2, Inheritance = 3, AuthorityOrder = 4.
            let reason = a.reason as u8 + 1;
            if a.sender == a.receiver {
                bail!(
                    "sender and receiver are the same holding ({}): nothing would move",
                    a.sender
                );
            }
            precheck(&p, &a.isin, a.sender, a.receiver, a.amount, ENTRY_FORCED).await?;
            let args = vec![
                isin_value(&a.isin)?,
                address(a.sender),
                address(a.receiver),
                uint(a.amount, 256),
                uint(U256::from(reason), 8),
                word(doc),
            ];
            let sent = p.send(REGISTER, "forcedTransfer", args).await?;
            let entry = entry_id(&p, &sent)?;
            p.done(
                &format!(
                    "entry {entry}: forced transfer of {} {} from {} to {}",
                    a.amount, a.isin, a.sender, a.receiver
                ),
                &sent,
                json!({"entryId": entry, "documentHash": doc}),
            );
            Ok(())
        }
        RegisterCommand::Recover(a) => {
            let p = Platform::open(&a.chain).await?;
            let doc = a.doc.hash()?;
            if a.lost == a.replacement {
                bail!("the replacement is the lost wallet itself ({})", a.lost);
            }
            for isin in &a.isins {
                let balance = p
                    .call(REGISTER, "balanceOf", vec![isin_value(isin)?, address(a.lost)], None)
                    .await?;
                if matches!(balance.first(), Some(DynSolValue::Uint(v, _)) if v.is_zero()) {
                    bail!("{} holds nothing in {isin}: nothing to recover", a.lost);
                }
                let args =
                    vec![isin_value(isin)?, address(a.lost), address(a.replacement), word(doc)];
                let sent = p.send(REGISTER, "recover", args).await?;
                let entry = entry_id(&p, &sent)?;
                p.done(
                    &format!(
                        "entry {entry}: {isin} recovered from {} to {}",
                        a.lost, a.replacement
                    ),
                    &sent,
                    json!({"isin": isin, "entryId": entry}),
                );
            }
            Ok(())
        }
        RegisterCommand::Reverse(a) => reverse(a).await,
        RegisterCommand::Freeze(a) => {
            let p = Platform::open(&a.chain).await?;
            let args =
                vec![isin_value(&a.isin)?, address(a.holder), DynSolValue::Bool(!a.unfreeze)];
            let sent = p.send(REGISTER, "setHoldingFrozen", args).await?;
            let state = if a.unfreeze { "unfrozen" } else { "frozen" };
            p.done(
                &format!("holding of {} in {} {state}", a.holder, a.isin),
                &sent,
                json!({"frozen": !a.unfreeze}),
            );
            Ok(())
        }
        RegisterCommand::Check(a) => check(a).await,
        RegisterCommand::Extract(a) => super::register_report::extract(a).await,
        RegisterCommand::Export(a) => super::register_report::export(a).await,
    }
}

async fn create_security(a: &CreateSecurityArgs) -> anyhow::Result<()> {
    let p = Platform::open(&a.chain).await?;
    let terms_hash = document_hash(a.terms.as_deref(), a.terms_hash.as_deref())?;
    let currency = a.currency.to_ascii_uppercase();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        bail!("currency must be a three-letter ISO 4217 code ({})", a.currency);
    }
    let mut currency_word = [0u8; 32];
    currency_word[..3].copy_from_slice(currency.as_bytes());
    let params = DynSolValue::Tuple(vec![
        isin_value(&a.isin)?,
        address(a.issuer),
        uint(U256::from(a.kind as u8), 8),
        DynSolValue::FixedBytes(currency_word.into(), 3),
        uint(U256::from(a.nominal), 128),
        uint(U256::from(a.volume), 128),
        word(terms_hash),
        DynSolValue::String(a.terms_uri.clone()),
    ]);

    if let Ok(out) = p.call(REGISTER, "security", vec![isin_value(&a.isin)?], None).await
        && let Some(DynSolValue::Address(issuer)) =
            out.first().and_then(onchain::tuple_fields).and_then(|f| f.get(4))
        && !issuer.is_zero()
    {
        bail!("security {} is already entered (issuer {issuer})", a.isin);
    }

    // The issuer consents to exactly this call: show its digest and check the consent first.
    let digest =
        ensure_consent(&p, a.issuer, "createSecurity", std::slice::from_ref(&params)).await?;
    let sent = p.send(REGISTER, "createSecurity", vec![params]).await?;
    p.done(
        &format!("security {} entered", a.isin),
        &sent,
        json!({"isin": a.isin, "digest": digest}),
    );
    Ok(())
}

/// Checks that `issuer` consented to exactly this call of `function`; the error tells the
/// issuer's agent what to run. Returns the consent digest.
async fn ensure_consent(
    p: &Platform,
    issuer: Address,
    function: &str,
    args: &[DynSolValue],
) -> anyhow::Result<B256> {
    let abi = p.artifacts.get(REGISTER)?.abi;
    let f = find_function(REGISTER, &abi, function, args.len())?;
    let call_data = Bytes::from(f.abi_encode_input(args)?);
    let digest = match p
        .call(REGISTER, "consentDigest", vec![DynSolValue::Bytes(call_data.to_vec())], None)
        .await?
        .first()
    {
        Some(DynSolValue::FixedBytes(d, _)) => *d,
        _ => bail!("consentDigest returned no digest"),
    };
    let consented =
        p.call(REGISTER, "hasConsent", vec![address(issuer), word(digest)], None).await?;
    if !matches!(consented.first(), Some(DynSolValue::Bool(true))) {
        bail!(
            "the issuer ({issuer}) has not consented to this {function} yet; the issuer's agent runs\n  ecrop register consent --digest {digest} --from {issuer}\nthen run this command again unchanged"
        );
    }
    Ok(digest)
}

/// `EntryKind` values of the register.
const ENTRY_FORCED: u8 = 2;
const ENTRY_ISSUE: u8 = 5;
const ENTRY_REDEMPTION: u8 = 6;

/// Asks the register whether a movement of `kind` would be booked; refuses with the reason
/// code and its ground when not, before anything is sent.
async fn precheck(
    p: &Platform,
    isin: &str,
    from: Address,
    to: Address,
    amount: U256,
    kind: u8,
) -> anyhow::Result<()> {
    if amount.is_zero() {
        bail!("amount must be above zero");
    }
    let args = vec![
        isin_value(isin)?,
        address(from),
        address(to),
        uint(amount, 256),
        uint(U256::from(kind), 8),
    ];
    let out = p.call(REGISTER, "checkMovement", args, None).await?;
    let code = match out.first() {
        Some(DynSolValue::Uint(v, _)) => v.to::<usize>(),
        _ => bail!("checkMovement returned no code"),
    };
    if code != 0 {
        let (name, ground) =
            REASON_CODES.get(code).copied().unwrap_or(("Unknown", "not a documented code"));
        bail!("the register would refuse this: {code} {name}: {ground}");
    }
    Ok(())
}

/// The issuer of security `isin`.
async fn issuer_of(p: &Platform, isin: &str) -> anyhow::Result<Address> {
    let out = p.call(REGISTER, "security", vec![isin_value(isin)?], None).await?;
    match out.first().and_then(onchain::tuple_fields) {
        Some(fields) => match fields.get(4) {
            Some(DynSolValue::Address(issuer)) if issuer.is_zero() => {
                bail!("security {isin} is not entered in the register")
            }
            Some(DynSolValue::Address(issuer)) => Ok(*issuer),
            _ => bail!("security view lacks the issuer"),
        },
        _ => bail!("security view returned nothing"),
    }
}

async fn movement(a: &MoveArgs, function: &str) -> anyhow::Result<()> {
    let p = Platform::open(&a.chain).await?;
    let args = vec![isin_value(&a.isin)?, address(a.holder), uint(a.amount, 256)];
    let issuer = issuer_of(&p, &a.isin).await?;
    // The register's own check first, so no consent is asked for a movement it would refuse.
    let (from, to, kind) = if function == "issue" {
        (Address::ZERO, a.holder, ENTRY_ISSUE)
    } else {
        (a.holder, Address::ZERO, ENTRY_REDEMPTION)
    };
    precheck(&p, &a.isin, from, to, a.amount, kind).await?;
    ensure_consent(&p, issuer, function, &args).await?;
    let sent = p.send(REGISTER, function, args).await?;
    let entry = entry_id(&p, &sent)?;
    let verb = if function == "issue" { "issued to" } else { "redeemed from" };
    p.done(
        &format!("entry {entry}: {} {} {verb} {}", a.amount, a.isin, a.holder),
        &sent,
        json!({"entryId": entry}),
    );
    Ok(())
}

async fn onboard(a: &OnboardArgs) -> anyhow::Result<()> {
    let p = Platform::open(&a.chain).await?;
    let holder_id = bytes32_arg(&a.holder_id)?;
    let country = a.country.to_ascii_uppercase();
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
        bail!("country must be an ISO 3166 two-letter code ({})", a.country);
    }
    let mut cc = [0u8; 32];
    cc[..2].copy_from_slice(country.as_bytes());
    let expiry = time_arg(&a.kyc_expiry)?;
    let id = word(holder_id);

    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    if expiry <= now || expiry >= 1 << 48 {
        bail!("KYC expiry must lie in the future and before year 8,000,000 ({})", a.kyc_expiry);
    }
    for wallet in &a.wallets {
        let owner = p.call(REGISTRY, "holderOf", vec![address(*wallet)], None).await?;
        if let Some(DynSolValue::FixedBytes(owner, _)) = owner.first()
            && !owner.is_zero()
            && *owner != holder_id
        {
            bail!("wallet {wallet} already belongs to another investor ({owner})");
        }
    }

    // Each step is skipped when already done, so an interrupted onboarding can be rerun.
    let existing = p.call(REGISTRY, "investor", vec![id.clone()], None).await?;
    let exists = matches!(
        existing.first().and_then(onchain::tuple_fields).and_then(|f| f.first()),
        Some(DynSolValue::Bool(true))
    );
    let mut steps = Vec::new();
    if !exists {
        let args = vec![
            id.clone(),
            DynSolValue::FixedBytes(cc.into(), 2),
            DynSolValue::Bool(a.collective),
        ];
        let sent = p.send(REGISTRY, "registerInvestor", args).await?;
        steps.push((format!("investor {} entered ({country})", a.holder_id), sent));
    }
    // KycStatus.Approved = 2.
    let args = vec![id.clone(), uint(U256::from(2u8), 8), uint(U256::from(expiry), 48)];
    let sent = p.send(REGISTRY, "setKyc", args).await?;
    steps.push((format!("KYC approved until {expiry}"), sent));
    for wallet in &a.wallets {
        let owner = p.call(REGISTRY, "holderOf", vec![address(*wallet)], None).await?;
        if matches!(owner.first(), Some(DynSolValue::FixedBytes(o, _)) if *o == holder_id) {
            continue;
        }
        let sent = p.send(REGISTRY, "linkWallet", vec![id.clone(), address(*wallet)]).await?;
        steps.push((format!("wallet {wallet} linked"), sent));
    }
    if p.json {
        let out: Vec<_> = steps.iter().map(|(what, sent)| json!({"action": what, "transaction": sent.hash, "block": sent.block})).collect();
        println!("{}", json!({"holderId": holder_id, "kycExpiry": expiry, "steps": out}));
    } else {
        for (what, sent) in &steps {
            println!("{what} (transaction {}, block {})", sent.hash, sent.block);
        }
    }
    Ok(())
}

async fn reverse(a: &ReverseArgs) -> anyhow::Result<()> {
    let p = Platform::open(&a.chain).await?;
    let doc = a.doc.hash()?;
    let abi = p.artifacts.get(REGISTER)?.abi;
    let to_block = p.client.block_number().await?;
    let logs =
        p.event_logs(REGISTER, &["EntryRecorded"], p.deployment.start_block, to_block).await?;
    let original = onchain::events::decode_logs(&abi, &logs)
        .into_iter()
        .find(|e| e.name == "EntryRecorded" && e.u64("entryId").ok() == Some(a.entry))
        .with_context(|| format!("entry {} not found in the register's events", a.entry))?;
    let entry = DynSolValue::Tuple(vec![
        DynSolValue::FixedBytes(pad(&original.fixed_bytes("isin")?), 12),
        uint(original.uint("kind")?, 8),
        address(original.address("from")?),
        address(original.address("to")?),
        uint(original.uint("amount")?, 256),
    ]);
    let sent =
        p.send(REGISTER, "reverse", vec![uint(U256::from(a.entry), 256), entry, word(doc)]).await?;
    let reversal = entry_id(&p, &sent)?;
    p.done(
        &format!("entry {reversal} reverses entry {}", a.entry),
        &sent,
        json!({"entryId": reversal, "reverses": a.entry}),
    );
    Ok(())
}

async fn check(a: &CheckArgs) -> anyhow::Result<()> {
    let p = Platform::open(&a.chain).await?;
    let args =
        vec![isin_value(&a.isin)?, address(a.sender), address(a.receiver), uint(a.amount, 256)];
    let out = p.call(REGISTER, "checkTransfer", args, None).await?;
    let code = match out.first() {
        Some(DynSolValue::Uint(v, _)) => v.to::<u64>(),
        _ => bail!("checkTransfer returned no code"),
    };
    let (name, ground) =
        REASON_CODES.get(code as usize).copied().unwrap_or(("Unknown", "not a documented code"));
    if p.json {
        println!("{}", json!({"code": code, "reason": name, "ground": ground, "ok": code == 0}));
    } else if code == 0 {
        println!("ok: the transfer would be booked");
    } else {
        println!("refused: {code} {name}: {ground}");
    }
    Ok(())
}

fn pad(bytes: &[u8]) -> B256 {
    let mut word = [0u8; 32];
    let n = bytes.len().min(32);
    word[..n].copy_from_slice(&bytes[..n]);
    B256::from(word)
}

fn entry_id(p: &Platform, sent: &onchain::Sent) -> anyhow::Result<u64> {
    p.event_u64(REGISTER, sent, "EntryRecorded", "entryId")
}
