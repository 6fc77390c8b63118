//! The crypto-securities register rebuilt from the register's events, as of a block, and
//! checked against the contract's own views at that block.
//!
//! The events are the register's journal: `SecurityCreated` and its amendments, one
//! `EntryRecorded` per movement of a holding (issue, transfer, instruction, forced transfer,
//! recovery, reversal, redemption), restrictions and pledges placed, moved and released, and
//! freezes. Replaying them up to block N gives the register at N; [`verify`] then compares
//! every holding and supply with `eth_call`s of the views at N, so an export never silently
//! disagrees with the chain.

use std::collections::BTreeMap;

use alloy::{
    dyn_abi::DynSolValue,
    json_abi::JsonAbi,
    primitives::{Address, B256, U256},
};
use serde::Serialize;

use super::{ChainError, Client, events::NamedEvent};

/// Reason codes of the register's pre-check with their grounds, in code order; the same
/// table as in `contracts/README.md` (a test keeps them equal).
pub const REASON_CODES: [(&str, &str); 22] = [
    ("Ok", "the movement would be booked"),
    ("RegisterPaused", "the platform admin stopped all movements"),
    ("SecurityUnknown", "no security with this ISIN is entered"),
    ("SecurityNotActive", "suspended (holder movements, issue) or closed (everything)"),
    ("SenderNotRegistered", "the sending wallet belongs to no investor"),
    ("SenderKycNotApproved", "the sender's KYC status is not Approved"),
    ("SenderKycExpired", "the sender's KYC approval has expired"),
    ("SenderInvestorFrozen", "the sending investor is frozen (all wallets)"),
    ("SenderHoldingFrozen", "the sender's holding in this security is frozen"),
    (
        "InstructionsPending",
        "the sender has signed instructions queued; a direct transfer may not overtake them",
    ),
    ("InsufficientBalance", "amount exceeds the balance"),
    ("InsufficientFreeBalance", "amount exceeds balance minus restrictions and pledges"),
    ("BalanceEncumbered", "forced transfer/reversal would reach units under a third-party right"),
    ("ReceiverZeroAddress", "no receiver given"),
    ("ReceiverNotRegistered", "the receiving wallet belongs to no investor"),
    ("ReceiverKycNotApproved", "the receiver's KYC status is not Approved"),
    ("ReceiverKycExpired", "the receiver's KYC approval has expired"),
    ("ReceiverInvestorFrozen", "the receiving investor is frozen"),
    ("ReceiverHoldingFrozen", "the receiver's holding in this security is frozen"),
    ("ReceiverNotCollectiveHolder", "collective-entry security, receiver is not a custodian/CSD"),
    ("IssueVolumeExceeded", "supply would exceed the issue volume"),
    ("InstructionExpired", "the instruction's deadline passed before execution"),
];

/// Names of `SecurityKind`, by value.
const KINDS: [&str; 2] = ["single", "collective"];
/// Names of `SecurityStatus`, by value.
const STATUSES: [&str; 4] = ["none", "active", "suspended", "closed"];
/// Names of `PledgeKind`, by value.
const PLEDGE_KINDS: [&str; 4] = ["pledge", "lien", "usufruct", "other"];

/// The register at one block.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RegisterSnapshot {
    /// Chain id.
    pub chain_id: u64,
    /// Block the snapshot reflects.
    pub block: u64,
    /// That block's timestamp (restriction expiry is judged against it).
    pub timestamp: u64,
    /// Register contract.
    pub register: Address,
    /// Securities by ISIN.
    pub securities: BTreeMap<String, SecurityRecord>,
}

/// One security and its holdings.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SecurityRecord {
    /// Issuer.
    pub issuer: Address,
    /// ERC-20 facade.
    pub token: Address,
    /// `single` or `collective` entry.
    pub kind: String,
    /// Lifecycle status.
    pub status: String,
    /// ISO 4217 currency code.
    pub currency: String,
    /// Nominal amount per unit.
    #[serde(serialize_with = "decimal")]
    pub nominal_per_unit: U256,
    /// Issue volume (most units that may exist).
    #[serde(serialize_with = "decimal")]
    pub issue_volume: U256,
    /// Units in existence.
    #[serde(serialize_with = "decimal")]
    pub total_supply: U256,
    /// Hash of the terms document.
    pub terms_hash: B256,
    /// Where the terms document is.
    pub terms_uri: String,
    /// Holdings by holder (zero holdings without encumbrances are left out).
    pub holdings: BTreeMap<Address, HoldingRecord>,
}

/// One holder's position in one security.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct HoldingRecord {
    /// Units held.
    #[serde(serialize_with = "decimal")]
    pub balance: U256,
    /// Units under unexpired restrictions on disposal.
    #[serde(serialize_with = "decimal")]
    pub restricted: U256,
    /// Units under third-party rights.
    #[serde(serialize_with = "decimal")]
    pub encumbered: U256,
    /// Units the holder may move.
    #[serde(serialize_with = "decimal")]
    pub free: U256,
    /// Whether the holding is frozen.
    pub frozen: bool,
    /// Active restrictions on disposal.
    pub restrictions: Vec<RestrictionRecord>,
    /// Active third-party rights.
    pub pledges: Vec<PledgeRecord>,
}

/// A restriction on disposal.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RestrictionRecord {
    /// Restriction id.
    pub id: u64,
    /// Units restricted.
    #[serde(serialize_with = "decimal")]
    pub amount: U256,
    /// Reason code.
    pub reason_code: u64,
    /// Authority that ordered it.
    pub authority: B256,
    /// Unix time it ends (0: none).
    pub expiry: u64,
}

/// A third-party right.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PledgeRecord {
    /// Pledge id.
    pub id: u64,
    /// Units encumbered.
    #[serde(serialize_with = "decimal")]
    pub amount: U256,
    /// Beneficiary.
    pub beneficiary: Address,
    /// `pledge`, `lien`, `usufruct` or `other`.
    pub kind: String,
}

#[derive(Default)]
struct Journal {
    securities: BTreeMap<String, SecurityRecord>,
    balances: BTreeMap<(String, Address), U256>,
    frozen: BTreeMap<(String, Address), bool>,
    restrictions: BTreeMap<u64, (String, Address, RestrictionRecord)>,
    pledges: BTreeMap<u64, (String, Address, PledgeRecord)>,
}

/// Amounts as decimal strings: exact for any `uint256`, and what a reviewer reads.
fn decimal<S: serde::Serializer>(value: &U256, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&value.to_string())
}

/// ISIN text of a `bytes12` value.
pub fn isin_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim_end_matches('\0').to_owned()
}

/// The `bytes12` value of an ISIN (checked for shape only; the contract checks the digit).
pub fn isin_value(isin: &str) -> Result<DynSolValue, ChainError> {
    let bytes = isin.as_bytes();
    if bytes.len() != 12 || !bytes.iter().all(u8::is_ascii_alphanumeric) {
        return Err(ChainError::BadArgument {
            function: "isin".into(),
            index: 1,
            value: isin.to_owned(),
            ty: "ISIN".into(),
            reason: "an ISIN is 12 letters and digits, e.g. DE0007164600".into(),
        });
    }
    let upper = bytes.to_ascii_uppercase();
    if !isin_check_digit_ok(&upper) {
        return Err(ChainError::BadArgument {
            function: "isin".into(),
            index: 1,
            value: isin.to_owned(),
            ty: "ISIN".into(),
            reason: "the check digit does not match (ISO 6166)".into(),
        });
    }
    let mut word = [0u8; 32];
    word[..12].copy_from_slice(&upper);
    Ok(DynSolValue::FixedBytes(word.into(), 12))
}

/// ISO 6166 check: letters become two digits (A = 10 … Z = 35), then the Luhn sum of all
/// digits, check digit included, must be a multiple of ten. The first two characters must be
/// letters (the country) and the last a digit.
fn isin_check_digit_ok(isin: &[u8]) -> bool {
    if isin.len() != 12
        || !isin[..2].iter().all(u8::is_ascii_uppercase)
        || !isin[11].is_ascii_digit()
    {
        return false;
    }
    let mut digits = Vec::with_capacity(24);
    for &c in isin {
        match c {
            b'0'..=b'9' => digits.push(c - b'0'),
            b'A'..=b'Z' => {
                let v = c - b'A' + 10;
                digits.push(v / 10);
                digits.push(v % 10);
            }
            _ => return false,
        }
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let doubled = d * 2;
                doubled / 10 + doubled % 10
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn name_of(names: &[&str], value: u64) -> String {
    names.get(value as usize).map_or_else(|| value.to_string(), |n| (*n).to_owned())
}

/// Replays register events (already limited to blocks up to the snapshot's) into the register.
pub fn rebuild(
    events: &[NamedEvent],
    timestamp: u64,
) -> Result<BTreeMap<String, SecurityRecord>, ChainError> {
    let mut j = Journal::default();
    for e in events {
        match e.name.as_str() {
            "SecurityCreated" => {
                let isin = isin_text(&e.fixed_bytes("isin")?);
                j.securities.insert(
                    isin,
                    SecurityRecord {
                        issuer: e.address("issuer")?,
                        token: e.address("token")?,
                        kind: name_of(&KINDS, e.u64("kind")?),
                        status: "active".into(),
                        currency: String::from_utf8_lossy(&e.fixed_bytes("currency")?).into_owned(),
                        nominal_per_unit: e.uint("nominalPerUnit")?,
                        issue_volume: e.uint("issueVolume")?,
                        terms_hash: B256::from_slice(&e.fixed_bytes("termsHash")?),
                        terms_uri: e.string("termsUri")?,
                        ..Default::default()
                    },
                );
            }
            "SecurityTermsAmended" => {
                if let Some(s) = j.securities.get_mut(&isin_text(&e.fixed_bytes("isin")?)) {
                    s.terms_hash = B256::from_slice(&e.fixed_bytes("termsHash")?);
                    s.terms_uri = e.string("termsUri")?;
                }
            }
            "SecurityStatusChanged" => {
                if let Some(s) = j.securities.get_mut(&isin_text(&e.fixed_bytes("isin")?)) {
                    s.status = name_of(&STATUSES, e.u64("status")?);
                }
            }
            "IssueVolumeIncreased" => {
                if let Some(s) = j.securities.get_mut(&isin_text(&e.fixed_bytes("isin")?)) {
                    s.issue_volume = e.uint("issueVolume")?;
                }
            }
            "EntryRecorded" => {
                let isin = isin_text(&e.fixed_bytes("isin")?);
                let (from, to, amount) = (e.address("from")?, e.address("to")?, e.uint("amount")?);
                if from != Address::ZERO {
                    let balance = j.balances.entry((isin.clone(), from)).or_default();
                    *balance = balance.checked_sub(amount).ok_or_else(|| ChainError::Decode {
                        function: "EntryRecorded".into(),
                        reason: format!("entry in block {} moves more than {from} holds", e.block),
                    })?;
                }
                if to != Address::ZERO {
                    *j.balances.entry((isin.clone(), to)).or_default() += amount;
                }
                if let Some(s) = j.securities.get_mut(&isin) {
                    if from == Address::ZERO {
                        s.total_supply += amount;
                    }
                    if to == Address::ZERO {
                        s.total_supply = s.total_supply.saturating_sub(amount);
                    }
                }
            }
            "HoldingFreezeUpdated" => {
                let key = (isin_text(&e.fixed_bytes("isin")?), e.address("holder")?);
                j.frozen.insert(key, e.bool("frozen")?);
            }
            "RestrictionPlaced" => {
                let id = e.u64("restrictionId")?;
                let record = RestrictionRecord {
                    id,
                    amount: e.uint("amount")?,
                    reason_code: e.u64("reasonCode")?,
                    authority: B256::from_slice(&e.fixed_bytes("authority")?),
                    expiry: e.u64("expiry")?,
                };
                j.restrictions
                    .insert(id, (isin_text(&e.fixed_bytes("isin")?), e.address("holder")?, record));
            }
            "RestrictionReleased" => {
                j.restrictions.remove(&e.u64("restrictionId")?);
            }
            "RestrictionMoved" => {
                if let Some(entry) = j.restrictions.get_mut(&e.u64("restrictionId")?) {
                    entry.1 = e.address("to")?;
                }
            }
            "PledgeCreated" => {
                let id = e.u64("pledgeId")?;
                let record = PledgeRecord {
                    id,
                    amount: e.uint("amount")?,
                    beneficiary: e.address("beneficiary")?,
                    kind: name_of(&PLEDGE_KINDS, e.u64("kind")?),
                };
                j.pledges
                    .insert(id, (isin_text(&e.fixed_bytes("isin")?), e.address("holder")?, record));
            }
            "PledgeReleased" => {
                j.pledges.remove(&e.u64("pledgeId")?);
            }
            "PledgeMoved" => {
                if let Some(entry) = j.pledges.get_mut(&e.u64("pledgeId")?) {
                    entry.1 = e.address("to")?;
                }
            }
            _ => {}
        }
    }

    let mut holdings: BTreeMap<(String, Address), HoldingRecord> = BTreeMap::new();
    for ((isin, holder), balance) in &j.balances {
        holdings.entry((isin.clone(), *holder)).or_default().balance = *balance;
    }
    for ((isin, holder), frozen) in &j.frozen {
        if *frozen {
            holdings.entry((isin.clone(), *holder)).or_default().frozen = true;
        }
    }
    for (isin, holder, record) in j.restrictions.values() {
        let holding = holdings.entry((isin.clone(), *holder)).or_default();
        if record.expiry == 0 || record.expiry > timestamp {
            holding.restricted += record.amount;
        }
        holding.restrictions.push(record.clone());
    }
    for (isin, holder, record) in j.pledges.values() {
        let holding = holdings.entry((isin.clone(), *holder)).or_default();
        holding.encumbered += record.amount;
        holding.pledges.push(record.clone());
    }
    for ((isin, holder), mut holding) in holdings {
        let locked = holding.restricted + holding.encumbered;
        holding.free = holding.balance.saturating_sub(locked);
        let empty = holding == HoldingRecord::default();
        if let Some(security) = j.securities.get_mut(&isin)
            && !empty
        {
            security.holdings.insert(holder, holding);
        }
    }
    Ok(j.securities)
}

/// Compares `snapshot` with the register's views at its block; returns every difference.
pub async fn verify(
    client: &Client,
    abi: &JsonAbi,
    snapshot: &RegisterSnapshot,
) -> Result<Vec<String>, ChainError> {
    let name = "SecuritiesRegister";
    let at = Some(snapshot.block);
    let mut differences = Vec::new();
    for (isin, security) in &snapshot.securities {
        let isin_arg = isin_value(isin)?;
        let supply = client
            .call(name, abi, snapshot.register, "totalSupply", std::slice::from_ref(&isin_arg), at)
            .await?;
        if first_uint(&supply) != Some(security.total_supply) {
            differences.push(format!(
                "{isin}: supply rebuilt {} but the register says {:?}",
                security.total_supply,
                first_uint(&supply)
            ));
        }
        for (holder, holding) in &security.holdings {
            let view = client
                .call(
                    name,
                    abi,
                    snapshot.register,
                    "holding",
                    &[isin_arg.clone(), DynSolValue::Address(*holder)],
                    at,
                )
                .await?;
            let Some(fields) = view.first().and_then(super::tuple_fields) else {
                differences.push(format!("{isin} {holder}: holding view undecodable"));
                continue;
            };
            let uint_at = |i: usize| match fields.get(i) {
                Some(DynSolValue::Uint(v, _)) => Some(*v),
                _ => None,
            };
            let frozen = matches!(fields.get(4), Some(DynSolValue::Bool(true)));
            let checks = [
                ("balance", holding.balance, uint_at(0)),
                ("restricted", holding.restricted, uint_at(1)),
                ("encumbered", holding.encumbered, uint_at(2)),
                ("free", holding.free, uint_at(3)),
            ];
            for (field, rebuilt, on_chain) in checks {
                if on_chain != Some(rebuilt) {
                    differences.push(format!(
                        "{isin} {holder}: {field} rebuilt {rebuilt} but the register says {on_chain:?}"
                    ));
                }
            }
            if frozen != holding.frozen {
                differences.push(format!(
                    "{isin} {holder}: frozen rebuilt {} but the register says {frozen}",
                    holding.frozen
                ));
            }
        }
    }
    Ok(differences)
}

fn first_uint(values: &[DynSolValue]) -> Option<U256> {
    match values.first() {
        Some(DynSolValue::Uint(v, _)) => Some(*v),
        _ => None,
    }
}

/// The snapshot as CSV: one row per holding.
pub fn to_csv(snapshot: &RegisterSnapshot) -> String {
    let mut out = String::from(
        "isin,kind,currency,holder,balance,restricted,encumbered,free,frozen,restrictions,pledges\n",
    );
    for (isin, security) in &snapshot.securities {
        for (holder, h) in &security.holdings {
            let restrictions: Vec<String> =
                h.restrictions.iter().map(|r| format!("{}:{}", r.id, r.amount)).collect();
            let pledges: Vec<String> = h
                .pledges
                .iter()
                .map(|p| format!("{}:{}:{}", p.id, p.amount, p.beneficiary))
                .collect();
            out.push_str(&format!(
                "{isin},{},{},{holder},{},{},{},{},{},{},{}\n",
                security.kind,
                security.currency,
                h.balance,
                h.restricted,
                h.encumbered,
                h.free,
                h.frozen,
                restrictions.join(";"),
                pledges.join(";")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isin_check_digits() {
        for good in ["US0378331005", "DE0007164600", "GB0002634946", "de0007164600"] {
            assert!(isin_value(good).is_ok(), "{good}");
        }
        for bad in ["DE0007164601", "US0378331006", "1E0007164600", "DE000716460X", "DE00071646"] {
            assert!(isin_value(bad).is_err(), "{bad}");
        }
        let err = isin_value("DE0007164601").unwrap_err().to_string();
        assert!(err.contains("check digit"), "{err}");
    }
}
