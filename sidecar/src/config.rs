//! Sidecar configuration: a TOML file whose every option can be overridden by an environment
//! variable or a command-line flag (flag over environment over file over default).
//!
//! The file never holds a PIN: it names where the PIN comes from (a file or an environment
//! variable). Unknown keys are rejected so that a misspelt option is an error, not a default.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use serde::Deserialize;

use crate::signer::{PinSource, TokenConfig};

/// Default listen address of the JSON-RPC endpoint: loopback, the port dApps expect.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8545";
/// Default upstream node: a Besu node's HTTP JSON-RPC on the same host.
pub const DEFAULT_UPSTREAM: &str = "http://127.0.0.1:8555";
/// Default PKCS#11 module: SoftHSM2 as Debian installs it.
pub const DEFAULT_PKCS11_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// Default token label.
pub const DEFAULT_TOKEN_LABEL: &str = "ecrop";
/// Environment variable read for the PIN when the configuration names no other source.
pub const DEFAULT_PIN_ENV: &str = "ECROP_HSM_PIN";
/// Largest request body accepted: 2 MiB holds a contract deployment of the 24 KiB code size
/// limit many times over, hex-encoded, while bounding memory per connection.
pub const DEFAULT_MAX_REQUEST_BYTES: u32 = 2 * 1024 * 1024;
/// Largest response relayed from upstream: 32 MiB covers large `eth_getLogs` answers.
pub const DEFAULT_MAX_RESPONSE_BYTES: u32 = 32 * 1024 * 1024;
/// Largest batch accepted, in calls.
pub const DEFAULT_MAX_BATCH_LEN: u32 = 100;
/// Most concurrent connections served; more are refused at accept time.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 512;
/// Upstream request timeout: long enough for a slow `eth_call`, short enough that a dead node
/// is reported while the dApp still waits.
pub const DEFAULT_UPSTREAM_TIMEOUT_SECS: u64 = 30;

/// Errors while reading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("config file not readable ({path}): {source}")]
    Read {
        /// File path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("config file invalid ({path}): {message}")]
    Parse {
        /// File path.
        path: PathBuf,
        /// Parser message, with line and column.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("config invalid: {0}")]
    Invalid(String),
}

/// The configuration file's schema. Every field is optional; absent fields take defaults.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `[rpc]`: the dApp-facing endpoint.
    #[serde(default)]
    pub rpc: RpcFile,
    /// `[upstream]`: the node everything is forwarded to.
    #[serde(default)]
    pub upstream: UpstreamFile,
    /// `[hsm]`: the PKCS#11 token.
    #[serde(default)]
    pub hsm: HsmFile,
    /// `[log]`: logging.
    #[serde(default)]
    pub log: LogFile,
    /// `[permissioning]`: following the consortium's permissioning contracts.
    #[serde(default)]
    pub permissioning: PermissioningFile,
    /// `[api]`: clients, roles and limits of the JSON-RPC endpoint.
    #[serde(default)]
    pub api: crate::api::ApiFile,
    /// `[audit]`: the audit log.
    #[serde(default)]
    pub audit: crate::audit::AuditFile,
    /// `[ops]`: metrics, health and readiness.
    #[serde(default)]
    pub ops: crate::ops::OpsFile,
    /// `[signing]`: the signing policy per key.
    #[serde(default)]
    pub signing: crate::signing_policy::SigningFile,
    /// `[[webhooks]]`: notifications of events to HTTP receivers.
    #[serde(default)]
    pub webhooks: Vec<crate::ops::WebhookFile>,
}

/// `[rpc]` section.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RpcFile {
    /// Listen address (HTTP and WebSocket on the same port).
    pub listen: Option<SocketAddr>,
    /// Largest request body, in bytes.
    pub max_request_bytes: Option<u32>,
    /// Largest response body, in bytes.
    pub max_response_bytes: Option<u32>,
    /// Largest batch, in calls.
    pub max_batch_len: Option<u32>,
    /// Most concurrent connections.
    pub max_connections: Option<u32>,
    /// Browser origins allowed to call the endpoint (`Origin` header); none by default, so a
    /// web page cannot use the sidecar's keys. `"*"` allows any.
    pub allowed_origins: Option<Vec<String>>,
    /// Host names the endpoint answers to (`Host` header), against DNS rebinding; by default
    /// the loopback names and the listen address. `"*"` allows any.
    pub allowed_hosts: Option<Vec<String>>,
}

/// `[upstream]` section.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamFile {
    /// HTTP JSON-RPC URL of the node.
    pub url: Option<String>,
    /// Timeout of one upstream call, in seconds.
    pub timeout_secs: Option<u64>,
}

/// `[hsm]` section.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HsmFile {
    /// Path of the PKCS#11 module (shared library).
    pub module: Option<PathBuf>,
    /// Label of the token holding the keys.
    pub token_label: Option<String>,
    /// File holding the user PIN (first line).
    pub pin_file: Option<PathBuf>,
    /// Name of an environment variable holding the user PIN.
    pub pin_env: Option<String>,
}

/// `[log]` section.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogFile {
    /// `text` (default) or `json`.
    pub format: Option<LogFormat>,
    /// A `tracing` filter such as `info` or `ecrop=debug`.
    pub level: Option<String>,
}

/// `[permissioning]` section. Permissioning is on when `governance` or `deployment` is set.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissioningFile {
    /// Address of the `ConsortiumGovernance` contract (the registries are read from it).
    pub governance: Option<alloy::primitives::Address>,
    /// Deployment file naming `ConsortiumGovernance`, used when `governance` is not set.
    pub deployment: Option<PathBuf>,
    /// WebSocket URL of the node for new-block notifications; polling only when absent.
    pub ws_url: Option<String>,
    /// Listen address of the decision API.
    pub decision_listen: Option<SocketAddr>,
    /// Directory of the sidecar's RocksDB store (state and cursor).
    pub store_path: Option<PathBuf>,
    /// Whether the sidecar refuses sends from accounts the allowlist does not allow.
    pub enforce: Option<bool>,
    /// Polling interval in milliseconds.
    pub poll_interval_ms: Option<u64>,
    /// HTTP JSON-RPC URL of the local Besu node whose allowlists are kept equal to the
    /// contracts through its `perm_*` methods; no sync when absent.
    pub besu_sync_url: Option<String>,
    /// Besu permissions config file to keep in step for cold starts (`nodes-allowlist` and
    /// `accounts-allowlist`).
    pub besu_permissions_file: Option<PathBuf>,
}

/// Default store directory, relative to the working directory.
pub const DEFAULT_STORE_PATH: &str = ".ecrop/store";

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per event.
    Json,
}

impl FileConfig {
    /// Reads and parses a configuration file.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Self::parse(&text).map_err(|message| ConfigError::Parse { path: path.to_owned(), message })
    }

    /// Parses configuration text; the error is the parser's message.
    ///
    /// The message carries line and column but never the offending source text, which could
    /// be a secret written into the wrong place.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| match e.span() {
            Some(span) => {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.rfind('\n').map_or(before.len(), |i| before.len() - i - 1) + 1;
                format!("line {line}, column {column}: {}", e.message())
            }
            None => e.message().to_owned(),
        })
    }
}

/// Resolved settings of the JSON-RPC endpoint.
#[derive(Debug, Clone)]
pub struct RpcSettings {
    /// Listen address.
    pub listen: SocketAddr,
    /// Largest request body, in bytes.
    pub max_request_bytes: u32,
    /// Largest response body, in bytes.
    pub max_response_bytes: u32,
    /// Largest batch, in calls.
    pub max_batch_len: u32,
    /// Most concurrent connections.
    pub max_connections: u32,
    /// Allowed `Origin` header values (empty: requests carrying an origin are refused).
    pub allowed_origins: Vec<String>,
    /// Allowed `Host` header names (without port).
    pub allowed_hosts: Vec<String>,
}

/// Host names a loopback endpoint answers to by default.
pub const LOOPBACK_HOSTS: [&str; 4] = ["localhost", "127.0.0.1", "::1", "[::1]"];

impl RpcSettings {
    /// Settings for `listen` with every limit at its default.
    pub fn with_defaults(listen: SocketAddr) -> Self {
        Self {
            listen,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_batch_len: DEFAULT_MAX_BATCH_LEN,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            allowed_origins: Vec::new(),
            allowed_hosts: default_hosts(listen),
        }
    }
}

/// The loopback names plus the listen address itself.
pub fn default_hosts(listen: SocketAddr) -> Vec<String> {
    let mut hosts: Vec<String> = LOOPBACK_HOSTS.iter().map(|h| (*h).to_owned()).collect();
    let own = listen.ip().to_string();
    if !hosts.contains(&own) {
        hosts.push(own);
    }
    hosts
}

/// Resolved settings of the upstream node.
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    /// HTTP JSON-RPC URL.
    pub url: reqwest::Url,
    /// Timeout of one call.
    pub timeout: Duration,
}

impl UpstreamSettings {
    /// Parses and checks an upstream URL: `http` or `https` only.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, ConfigError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| ConfigError::Invalid(format!("upstream url ({url}): {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ConfigError::Invalid(format!(
                "upstream url ({url}): scheme must be http or https"
            )));
        }
        if timeout.is_zero() {
            return Err(ConfigError::Invalid("upstream timeout must be above zero".into()));
        }
        Ok(Self { url: parsed, timeout })
    }
}

/// Builds the token configuration from the `[hsm]` section and its overrides.
///
/// The PIN source is the PIN file when one is named, else the named environment variable,
/// else [`DEFAULT_PIN_ENV`].
pub fn token_config(hsm: &HsmFile) -> TokenConfig {
    let pin = match (&hsm.pin_file, &hsm.pin_env) {
        (Some(file), _) => PinSource::File(file.clone()),
        (None, Some(var)) => PinSource::Env(var.clone()),
        (None, None) => PinSource::Env(DEFAULT_PIN_ENV.to_owned()),
    };
    TokenConfig {
        module: hsm.module.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_PKCS11_MODULE)),
        token_label: hsm.token_label.clone().unwrap_or_else(|| DEFAULT_TOKEN_LABEL.to_owned()),
        pin,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_option() {
        let text = r#"
            [rpc]
            listen = "127.0.0.1:9000"
            max_request_bytes = 1000
            max_response_bytes = 2000
            max_batch_len = 10
            max_connections = 5
            [upstream]
            url = "http://127.0.0.1:8555"
            timeout_secs = 3
            [hsm]
            module = "/lib/p11.so"
            token_label = "t"
            pin_file = "/run/pin"
            [log]
            format = "json"
            level = "debug"
            [permissioning]
            governance = "0x00000000000000000000000000000000000000aa"
            ws_url = "ws://127.0.0.1:8546"
            decision_listen = "127.0.0.1:8547"
            store_path = "/var/lib/ecrop/store"
            enforce = false
            poll_interval_ms = 500
        "#;
        let config = FileConfig::parse(text).unwrap();
        assert_eq!(config.rpc.listen.unwrap().port(), 9000);
        assert_eq!(config.log.format, Some(LogFormat::Json));
        assert_eq!(config.permissioning.enforce, Some(false));
        assert_eq!(config.permissioning.decision_listen.unwrap().port(), 8547);
        let token = token_config(&config.hsm);
        assert!(matches!(token.pin, PinSource::File(ref p) if p == &PathBuf::from("/run/pin")));
    }

    #[test]
    fn rejects_unknown_key() {
        let err = FileConfig::parse("[rpc]\nlisten_addr = \"127.0.0.1:1\"\n").unwrap_err();
        assert!(err.contains("unknown field `listen_addr`"), "{err}");
    }

    #[test]
    fn rejects_pin_in_file() {
        let err = FileConfig::parse("[hsm]\npin = \"1234\"\n").unwrap_err();
        assert!(err.contains("unknown field `pin`"), "{err}");
        assert!(!err.contains("1234"), "{err}");
        assert!(err.starts_with("line 2, column 1:"), "{err}");
    }

    #[test]
    fn pin_env_defaults() {
        let token = token_config(&HsmFile::default());
        assert!(matches!(token.pin, PinSource::Env(ref v) if v == DEFAULT_PIN_ENV));
    }

    #[test]
    fn refuses_non_http_upstream() {
        let err = UpstreamSettings::new("ws://x", Duration::from_secs(1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "config invalid: upstream url (ws://x): scheme must be http or https"
        );
    }
}
