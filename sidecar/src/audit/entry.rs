//! One audit entry: its fields, their bounds, its key in the store and its hash.
//!
//! The hash of an entry is SHA-256 over a canonical encoding: a domain tag, then every field
//! except the hash itself, in a fixed order, each string prefixed by its byte length (so no two
//! different entries share an encoding), starting with the predecessor's hash. The stored JSON
//! is only a container: verification re-encodes the decoded fields, so JSON key order,
//! whitespace or escaping never change a hash.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Key prefix of every entry.
pub const ENTRY_PREFIX: &str = "audit/entry/";
/// Key of the head record (`{seq, hash}` of the last entry).
pub const HEAD_KEY: &str = "audit/head";
/// `prev_hash` of the first entry: 32 zero bytes, hex.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Domain tag at the start of the hashed encoding; a new encoding gets a new tag.
const HASH_DOMAIN: &[u8] = b"ecrop-audit-entry/1";

/// Longest `who`, `action`, request ids, accounts and targets, in bytes: client ids, method
/// names, JSON-RPC ids and addresses fit with room to spare.
pub const MAX_SHORT_BYTES: usize = 128;
/// Longest result summary (a transaction hash or a 65-byte signature in hex fits).
pub const MAX_RESULT_BYTES: usize = 256;
/// Longest error message.
pub const MAX_MESSAGE_BYTES: usize = 512;
/// Longest detail.
pub const MAX_DETAIL_BYTES: usize = 1024;
/// Appended to a string cut at its bound.
pub const TRUNCATED: &str = "…[truncated]";

/// `who` of entries the sidecar records about itself.
pub const WHO_SIDECAR: &str = "sidecar";
/// `who` of requests refused before authentication established a client.
pub const WHO_UNAUTHENTICATED: &str = "unauthenticated";
/// `who` of calls that carry no [`crate::api::Caller`] (authentication not configured).
pub const WHO_UNIDENTIFIED: &str = "unidentified";

/// `who` of an operator acting through the command line.
pub fn who_operator(user: &str) -> String {
    format!("operator:{user}")
}

/// What an entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A call of a signing method, whatever its outcome (unless it was refused).
    Signature,
    /// A request refused by a policy, an access rule, a limit or authentication.
    Refusal,
    /// An administrative action (an admin method of the node, a change of configuration).
    Admin,
    /// The sidecar or the log itself: started, stopped, found something wrong.
    Lifecycle,
}

impl Kind {
    /// The lowercase name, as stored and exported.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signature => "signature",
            Self::Refusal => "refusal",
            Self::Admin => "admin",
            Self::Lifecycle => "lifecycle",
        }
    }
}

/// How the action ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Outcome {
    /// It succeeded; `result` summarises the answer (a transaction hash, a signature).
    Ok {
        /// Summary of the result, bounded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<String>,
    },
    /// It failed or was refused with this JSON-RPC error.
    Error {
        /// Error code.
        code: i64,
        /// Error message, bounded.
        message: String,
    },
    /// No answer exists (a notification); the outcome is unknown to the log.
    None,
}

impl Outcome {
    /// Success with a result summary.
    pub fn ok(result: impl Into<String>) -> Self {
        Self::Ok { result: Some(result.into()) }
    }

    /// Failure with a code and message.
    pub fn error(code: i64, message: impl Into<String>) -> Self {
        Self::Error { code, message: message.into() }
    }
}

/// An entry as a producer describes it; the log adds seq, time, hashes and bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    /// Who acted: a client id, `operator:<user>`, [`WHO_SIDECAR`], [`WHO_UNAUTHENTICATED`]
    /// or [`WHO_UNIDENTIFIED`].
    pub who: String,
    /// What the entry is about.
    pub kind: Kind,
    /// The method called or the administrative action taken.
    pub action: String,
    /// The JSON-RPC id as JSON text (`1`, `"a"`), when there is one.
    pub request_id: Option<String>,
    /// The sidecar's own unique id of the request, also logged with the request.
    pub uid: String,
    /// Account acting or signing, when one applies.
    pub account: Option<String>,
    /// Target of the action (a transaction's `to`, a contract), when one applies.
    pub target: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// Anything else worth keeping, bounded. Never a secret, never a whole request body.
    pub detail: Option<String>,
}

impl NewEntry {
    /// An entry with a fresh unique id and no request id, account, target or detail.
    pub fn new(who: impl Into<String>, kind: Kind, action: impl Into<String>) -> Self {
        Self {
            who: who.into(),
            kind,
            action: action.into(),
            request_id: None,
            uid: new_uid(),
            account: None,
            target: None,
            outcome: Outcome::None,
            detail: None,
        }
    }

    /// Sets the outcome.
    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    /// Sets the detail.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Sets the account.
    pub fn account(mut self, account: impl Into<String>) -> Self {
        self.account = Some(account.into());
        self
    }

    /// Sets the target.
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }
}

/// A fresh unique request id: 128 random bits in hex.
pub fn new_uid() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Position in the chain, from 1, without gaps.
    pub seq: u64,
    /// When the log wrote it: UTC, milliseconds since the Unix epoch; never earlier than the
    /// previous entry's time (a clock stepping back is clamped).
    pub time_ms: i64,
    /// See [`NewEntry::who`].
    pub who: String,
    /// See [`NewEntry::kind`].
    pub kind: Kind,
    /// See [`NewEntry::action`].
    pub action: String,
    /// See [`NewEntry::request_id`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// See [`NewEntry::uid`].
    pub uid: String,
    /// See [`NewEntry::account`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// See [`NewEntry::target`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// See [`NewEntry::outcome`].
    pub outcome: Outcome,
    /// See [`NewEntry::detail`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Hash of the previous entry ([`GENESIS_HASH`] for the first), hex.
    pub prev_hash: String,
    /// SHA-256 of this entry's canonical encoding, hex.
    pub hash: String,
}

/// The head record: where the chain ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    /// Seq of the last entry.
    pub seq: u64,
    /// Hash of the last entry.
    pub hash: String,
}

impl Entry {
    /// Builds entry `seq` from `new`, bounding every string, and seals it with its hash.
    pub fn seal(new: NewEntry, seq: u64, time_ms: i64, prev_hash: &str) -> Self {
        let mut entry = Self {
            seq,
            time_ms,
            who: bound(new.who, MAX_SHORT_BYTES),
            kind: new.kind,
            action: bound(new.action, MAX_SHORT_BYTES),
            request_id: new.request_id.map(|s| bound(s, MAX_SHORT_BYTES)),
            uid: bound(new.uid, MAX_SHORT_BYTES),
            account: new.account.map(|s| bound(s, MAX_SHORT_BYTES)),
            target: new.target.map(|s| bound(s, MAX_SHORT_BYTES)),
            outcome: match new.outcome {
                Outcome::Ok { result } => {
                    Outcome::Ok { result: result.map(|s| bound(s, MAX_RESULT_BYTES)) }
                }
                Outcome::Error { code, message } => {
                    Outcome::Error { code, message: bound(message, MAX_MESSAGE_BYTES) }
                }
                Outcome::None => Outcome::None,
            },
            detail: new.detail.map(|s| bound(s, MAX_DETAIL_BYTES)),
            prev_hash: prev_hash.to_owned(),
            hash: String::new(),
        };
        entry.hash = entry.compute_hash();
        entry
    }

    /// SHA-256 of the canonical encoding of every field but `hash`, hex.
    pub fn compute_hash(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(HASH_DOMAIN);
        put_str(&mut hasher, &self.prev_hash);
        hasher.update(self.seq.to_be_bytes());
        hasher.update(self.time_ms.to_be_bytes());
        put_str(&mut hasher, &self.who);
        put_str(&mut hasher, self.kind.as_str());
        put_str(&mut hasher, &self.action);
        put_opt(&mut hasher, self.request_id.as_deref());
        put_str(&mut hasher, &self.uid);
        put_opt(&mut hasher, self.account.as_deref());
        put_opt(&mut hasher, self.target.as_deref());
        match &self.outcome {
            Outcome::Ok { result } => {
                hasher.update([0u8]);
                put_opt(&mut hasher, result.as_deref());
            }
            Outcome::Error { code, message } => {
                hasher.update([1u8]);
                hasher.update(code.to_be_bytes());
                put_str(&mut hasher, message);
            }
            Outcome::None => hasher.update([2u8]),
        }
        put_opt(&mut hasher, self.detail.as_deref());
        hex::encode(hasher.finalize())
    }

    /// Whether the stored hash matches the content.
    pub fn hash_matches(&self) -> bool {
        self.compute_hash() == self.hash
    }
}

fn put_str(hasher: &mut Sha256, value: &str) {
    // Strings are bounded far below 4 GiB; the length prefix makes the encoding unambiguous.
    let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
    hasher.update(len.to_be_bytes());
    hasher.update(value.as_bytes());
}

fn put_opt(hasher: &mut Sha256, value: Option<&str>) {
    match value {
        None => hasher.update([0u8]),
        Some(value) => {
            hasher.update([1u8]);
            put_str(hasher, value);
        }
    }
}

/// Cuts `value` to at most `max` bytes (on a character boundary, marked with [`TRUNCATED`]).
pub fn bound(mut value: String, max: usize) -> String {
    if value.len() <= max {
        return value;
    }
    let mut cut = max.saturating_sub(TRUNCATED.len());
    while cut > 0 && !value.is_char_boundary(cut) {
        cut -= 1;
    }
    value.truncate(cut);
    value.push_str(TRUNCATED);
    value
}

/// Store key of entry `seq`.
pub fn entry_key(seq: u64) -> String {
    format!("{ENTRY_PREFIX}{seq:020}")
}

/// The seq a store key names, if it is an entry key of the canonical form.
pub fn key_seq(key: &str) -> Option<u64> {
    let digits = key.strip_prefix(ENTRY_PREFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> NewEntry {
        NewEntry::new("client-a", Kind::Signature, "eth_sendTransaction")
            .account("0x00000000000000000000000000000000000000aa")
            .outcome(Outcome::ok("0x01"))
    }

    #[test]
    fn hash_covers_every_field() {
        let entry = Entry::seal(sample(), 1, 1_000, GENESIS_HASH);
        assert!(entry.hash_matches());
        type Mutation = Box<dyn Fn(&mut Entry)>;
        let mutations: Vec<Mutation> = vec![
            Box::new(|e| e.seq = 2),
            Box::new(|e| e.time_ms += 1),
            Box::new(|e| e.who.push('x')),
            Box::new(|e| e.kind = Kind::Admin),
            Box::new(|e| e.action.push('x')),
            Box::new(|e| e.request_id = Some("1".into())),
            Box::new(|e| e.uid.push('x')),
            Box::new(|e| e.account = None),
            Box::new(|e| e.target = Some(String::new())),
            Box::new(|e| e.outcome = Outcome::Ok { result: None }),
            Box::new(|e| e.outcome = Outcome::error(-1, "0x01")),
            Box::new(|e| e.detail = Some(String::new())),
            Box::new(|e| e.prev_hash = "00".into()),
        ];
        for (i, mutate) in mutations.iter().enumerate() {
            let mut changed = entry.clone();
            mutate(&mut changed);
            assert!(!changed.hash_matches(), "mutation {i} kept the hash");
        }
    }

    #[test]
    fn length_prefixes_keep_neighbouring_fields_apart() {
        let mut a = NewEntry::new("ab", Kind::Admin, "c");
        a.uid = "u".into();
        let mut b = NewEntry::new("a", Kind::Admin, "bc");
        b.uid = "u".into();
        let a = Entry::seal(a, 1, 0, GENESIS_HASH);
        let b = Entry::seal(b, 1, 0, GENESIS_HASH);
        assert_ne!(a.hash, b.hash);
    }

    #[test]
    fn json_round_trip_keeps_the_hash() {
        let entry = Entry::seal(sample().detail("a,\"b\"\nc"), 7, 5, GENESIS_HASH);
        let text = serde_json::to_string(&entry).unwrap();
        let back: Entry = serde_json::from_str(&text).unwrap();
        assert_eq!(back, entry);
        assert!(back.hash_matches());
    }

    #[test]
    fn strings_are_bounded_on_character_boundaries() {
        let long = "é".repeat(MAX_DETAIL_BYTES);
        let entry = Entry::seal(sample().detail(long), 1, 0, GENESIS_HASH);
        let detail = entry.detail.unwrap();
        assert!(detail.len() <= MAX_DETAIL_BYTES, "{}", detail.len());
        assert!(detail.ends_with(TRUNCATED));
        assert_eq!(bound("short".into(), 10), "short");
    }

    #[test]
    fn keys_sort_by_seq_and_parse_back() {
        assert_eq!(entry_key(42), "audit/entry/00000000000000000042");
        assert!(entry_key(9) < entry_key(10));
        assert_eq!(key_seq(&entry_key(u64::MAX)), Some(u64::MAX));
        assert_eq!(key_seq("audit/entry/42"), None);
        assert_eq!(key_seq("audit/head"), None);
    }
}
