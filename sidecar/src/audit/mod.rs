//! The audit log: every signature, refused request and administrative action, append-only and
//! hash-chained in the sidecar's RocksDB store.
//!
//! - **What is stored**: one [`Entry`] per event under `audit/entry/{seq:020}`, and the head
//!   record `audit/head` (`{seq, hash}` of the last entry). Every entry carries the hash of its
//!   predecessor and its own SHA-256 ([`entry`] has the encoding). Strings are bounded; request
//!   bodies and secrets are never stored, only who, what, when, which account and target, and
//!   the outcome (a transaction hash, a signature, or the error code and message).
//! - **When**: [`AuditLog::record`] returns once the entry and the new head are on disk, in one
//!   atomic, synced batch. One writer task commits whatever is queued in one batch.
//! - **Fails closed for signing**: while the log cannot write, [`AuditLayer`] refuses signing
//!   methods before they reach a key; a write that fails after a signature was made is logged
//!   at error level and the caller still gets its answer (a transaction already sent cannot be
//!   recalled, and an error would make the client send it again).
//! - **A broken chain stops the start**: [`AuditLog::open`] refuses to extend a chain whose head
//!   does not match its last entry (see [`AuditError::BrokenChain`]).
//! - **Reading**: [`chain::verify`] walks the chain and names every break; [`chain::Range`]
//!   selects entries for export. Both run in other processes on a secondary instance of the
//!   database ([`crate::store::Store::open_secondary`]) while the sidecar runs.
//!
//! A hash chain detects an edit, a deletion, a reordering or a cut end; someone able to write
//! the database can still rewrite the whole chain consistently, unless the head hash printed by
//! `ecrop audit verify` (and logged at shutdown) is also kept somewhere else.

pub mod chain;
pub mod entry;
pub mod layer;
pub mod log;

use serde::Deserialize;

pub use entry::{Entry, Head, Kind, NewEntry, Outcome};
pub use layer::{Announcement, AuditLayer};
pub use log::AuditLog;

use crate::{config::ConfigError, store::StoreError};

/// Admin method patterns recorded when `[audit] admin_methods` is not set: the node's
/// administrative namespaces (a trailing `*` matches any suffix).
pub const DEFAULT_ADMIN_METHODS: [&str; 7] =
    ["admin_*", "debug_*", "miner_*", "perm_*", "clique_*", "ibft_*", "qbft_*"];

/// Error codes recorded as refusals when `[audit] refusal_codes` is not set: the sidecar's own
/// refusals ([`crate::rpc::error::REFUSAL_CODES`]: transaction rejected, limit exceeded,
/// forbidden, unauthorized, method not permitted).
pub const DEFAULT_REFUSAL_CODES: [i32; 5] = crate::rpc::error::REFUSAL_CODES;

/// Errors of the audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The store failed.
    #[error("audit store failed: {0}")]
    Store(#[from] StoreError),
    /// Writing a group of entries failed; they are not in the log.
    #[error("audit write failed: {0}")]
    Write(String),
    /// An export could not be written (its destination failed, e.g. a closed pipe).
    #[error("export not written: {0}")]
    Export(String),
    /// The log's writer has stopped (closed, or the process is shutting down).
    #[error("audit log closed")]
    Closed,
    /// The stored chain does not end where its head says; the log is not extended.
    #[error(
        "audit chain broken ({0}); run `ecrop audit verify` and keep the store as evidence, then start with a new store directory"
    )]
    BrokenChain(String),
}

/// `[audit]` section of the configuration file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditFile {
    /// Whether the log records anything (default true).
    pub enabled: Option<bool>,
    /// Methods recorded as administrative actions: exact names, or a prefix followed by `*`
    /// (default [`DEFAULT_ADMIN_METHODS`]). Their params are recorded (bounded), so methods
    /// taking secrets (a password) do not belong here.
    pub admin_methods: Option<Vec<String>>,
    /// JSON-RPC error codes recorded as refusals (default [`DEFAULT_REFUSAL_CODES`]).
    pub refusal_codes: Option<Vec<i64>>,
}

/// Resolved `[audit]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSettings {
    /// Whether the log records anything.
    pub enabled: bool,
    /// Admin method patterns, checked.
    pub admin_methods: Vec<MethodPattern>,
    /// Refusal codes.
    pub refusal_codes: Vec<i64>,
}

impl AuditSettings {
    /// Resolves and checks the file's section.
    pub fn from_file(file: &AuditFile) -> Result<Self, ConfigError> {
        let patterns = match &file.admin_methods {
            Some(list) => list.clone(),
            None => DEFAULT_ADMIN_METHODS.iter().map(|p| (*p).to_owned()).collect(),
        };
        let admin_methods =
            patterns.iter().map(|p| MethodPattern::parse(p)).collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            enabled: file.enabled.unwrap_or(true),
            admin_methods,
            refusal_codes: file
                .refusal_codes
                .clone()
                .unwrap_or_else(|| DEFAULT_REFUSAL_CODES.iter().map(|c| i64::from(*c)).collect()),
        })
    }

    /// Whether `method` is an administrative method.
    pub fn is_admin(&self, method: &str) -> bool {
        self.admin_methods.iter().any(|p| p.matches(method))
    }

    /// Whether an error `code` is a refusal.
    pub fn is_refusal(&self, code: i64) -> bool {
        self.refusal_codes.contains(&code)
    }
}

/// A method name, or a prefix when written with a trailing `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MethodPattern {
    /// This exact method.
    Exact(String),
    /// Every method starting with this.
    Prefix(String),
}

impl MethodPattern {
    /// Parses `admin_*` or `admin_addPeer`; a `*` anywhere but at the end is refused.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let invalid = |why: &str| {
            ConfigError::Invalid(format!("audit.admin_methods: pattern ({text}) {why}"))
        };
        let (stem, prefix) = match text.strip_suffix('*') {
            Some(stem) => (stem, true),
            None => (text, false),
        };
        if stem.contains('*') {
            return Err(invalid("may hold `*` only at its end"));
        }
        if !prefix && stem.is_empty() {
            return Err(invalid("is empty"));
        }
        if !stem.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(invalid("may hold only letters, digits and `_`"));
        }
        Ok(if prefix { Self::Prefix(stem.to_owned()) } else { Self::Exact(stem.to_owned()) })
    }

    /// Whether `method` matches.
    pub fn matches(&self, method: &str) -> bool {
        match self {
            Self::Exact(name) => name == method,
            Self::Prefix(stem) => method.starts_with(stem.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_cover_admin_namespaces_and_refusals() {
        let settings = AuditSettings::from_file(&AuditFile::default()).unwrap();
        assert!(settings.enabled);
        for method in ["admin_addPeer", "debug_traceTransaction", "perm_addNodesToAllowlist"] {
            assert!(settings.is_admin(method), "{method}");
        }
        for method in ["eth_call", "administrator", "personal_sign"] {
            assert!(!settings.is_admin(method), "{method}");
        }
        assert!(settings.is_refusal(-32003));
        assert!(!settings.is_refusal(-32000));
    }

    #[test]
    fn parses_the_section_and_refuses_bad_patterns() {
        let file: AuditFile = toml::from_str(
            "enabled = false\nadmin_methods = [\"admin_addPeer\", \"txpool_*\"]\nrefusal_codes = [-1]\n",
        )
        .unwrap();
        let settings = AuditSettings::from_file(&file).unwrap();
        assert!(!settings.enabled);
        assert!(settings.is_admin("admin_addPeer"));
        assert!(!settings.is_admin("admin_removePeer"));
        assert!(settings.is_admin("txpool_content"));
        assert_eq!(settings.refusal_codes, [-1]);

        for (pattern, why) in [
            ("ad*min", "may hold `*` only at its end"),
            ("", "is empty"),
            ("admin addPeer", "may hold only letters, digits and `_`"),
        ] {
            let err = MethodPattern::parse(pattern).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("config invalid: audit.admin_methods: pattern ({pattern}) {why}")
            );
        }
        assert!(toml::from_str::<AuditFile>("enable = true").is_err());
    }
}
