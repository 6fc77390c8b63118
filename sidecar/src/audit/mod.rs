//! The audit log: every signature, refused request and administrative action, append-only and
//! hash-chained in RocksDB.

use serde::Deserialize;

/// `[audit]` section of the configuration file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditFile {}
