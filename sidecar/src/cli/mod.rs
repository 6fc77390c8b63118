//! The `ecrop` command line: one file per subcommand. Human output goes to standard output,
//! machine output with `--json`, logs to standard error.
//!
//! Every option of the configuration file can be given as a flag or an environment variable;
//! precedence is flag, then environment, then file, then default. PINs are never options.

pub mod api_clients;
pub mod audit;
pub mod contracts;
pub mod custody;
pub mod dev;
pub mod genesis;
pub mod instruction;
pub mod key_service;
pub mod keys;
pub mod observe;
pub mod perm;
pub mod platform;
pub mod register;
pub mod register_report;
pub mod roles;
pub mod serve;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};

use crate::config::{
    self, ConfigError, FileConfig, HsmFile, LogFormat, RpcSettings, UpstreamSettings,
};

/// ecrop: the sidecar of an ecrop consortium node. It signs dApp transactions with keys held
/// in a PKCS#11 token, manages their nonces and relays everything else to the node.
#[derive(Debug, Parser)]
#[command(name = "ecrop", version, max_term_width = 100)]
pub struct Cli {
    /// Configuration file (TOML). Every option in it can be overridden by flag or environment.
    #[arg(long, global = true, env = "ECROP_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log format: `text` for people, `json` for log collectors [config: log.format].
    #[arg(long, global = true, env = "ECROP_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    /// Log filter, e.g. `info` or `info,ecrop::rpc=debug` [config: log.level].
    #[arg(long, global = true, env = "ECROP_LOG", value_name = "FILTER")]
    pub log_level: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the sidecar: the JSON-RPC endpoint in front of the upstream node.
    Serve(serve::ServeArgs),
    /// Create and list secp256k1 keys inside the PKCS#11 token.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Start a local development network: SoftHSM token, anvil chain and the sidecar.
    Dev(dev::DevArgs),
    /// Deploy the platform's contracts and call their functions through the sidecar.
    #[command(subcommand)]
    Contracts(contracts::ContractsCommand),
    /// Grant, revoke and list roles of the permission matrix.
    #[command(subcommand)]
    Roles(roles::RolesCommand),
    /// Work on the crypto-securities register: securities, investors, entries, extracts.
    #[command(subcommand)]
    Register(register::RegisterCommand),
    /// Holder instructions: sign (as the holder), submit and execute (as the register keeper).
    #[command(subcommand)]
    Instruction(instruction::InstructionCommand),
    /// Consortium permissioning: propose and approve changes, list and check the allowlists.
    #[command(subcommand)]
    Perm(perm::PermCommand),
    /// Custody of client assets: accounts, deposits, withdrawals with approvals, statements.
    #[command(subcommand)]
    Custody(custody::CustodyCommand),
    /// Serve the validator's node key (public key, hash signing, ECDH) to a Besu
    /// security-module plugin on loopback, with Web3signer's paths where it has them.
    KeyService(key_service::KeyServiceArgs),
    /// Generate a QBFT network from a network definition: HSM validator keys, genesis, Besu
    /// and sidecar configurations.
    Genesis(genesis::GenesisArgs),
    /// Manage the clients of the JSON-RPC endpoint: API keys, JWT keys and roles.
    #[command(subcommand)]
    ApiClients(api_clients::ApiClientsCommand),
    /// Verify and export the audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
}

/// PKCS#11 token options, shared by every subcommand that uses the token.
#[derive(Debug, Clone, Default, Args)]
pub struct HsmArgs {
    /// Path of the PKCS#11 module [config: hsm.module] [default: SoftHSM2's].
    #[arg(long = "pkcs11-module", env = "ECROP_PKCS11_MODULE", value_name = "PATH")]
    pub module: Option<PathBuf>,

    /// Label of the token holding the keys [config: hsm.token_label] [default: ecrop].
    #[arg(long, env = "ECROP_TOKEN_LABEL", value_name = "LABEL")]
    pub token_label: Option<String>,

    /// File holding the token's user PIN (one trailing newline is ignored; anything else is
    /// part of the PIN) [config: hsm.pin_file].
    #[arg(long, env = "ECROP_PIN_FILE", value_name = "PATH", conflicts_with = "pin_env")]
    pub pin_file: Option<PathBuf>,

    /// Name of the environment variable holding the user PIN (the PIN itself is never an
    /// argument) [config: hsm.pin_env] [default: ECROP_HSM_PIN].
    #[arg(long, env = "ECROP_PIN_ENV", value_name = "VAR")]
    pub pin_env: Option<String>,
}

impl HsmArgs {
    /// Applies these overrides to the file's `[hsm]` section.
    pub fn apply(&self, hsm: &mut HsmFile) {
        if let Some(module) = &self.module {
            hsm.module = Some(module.clone());
        }
        if let Some(label) = &self.token_label {
            hsm.token_label = Some(label.clone());
        }
        // A PIN source given here replaces both sources of the file.
        if let Some(file) = &self.pin_file {
            hsm.pin_file = Some(file.clone());
            hsm.pin_env = None;
        }
        if let Some(var) = &self.pin_env {
            hsm.pin_env = Some(var.clone());
            hsm.pin_file = None;
        }
    }
}

/// JSON-RPC endpoint limits, shared by `serve` and `dev`.
#[derive(Debug, Clone, Default, Args)]
pub struct LimitArgs {
    /// Largest request body in bytes [config: rpc.max_request_bytes] [default: 2 MiB].
    #[arg(long, env = "ECROP_MAX_REQUEST_BYTES", value_name = "BYTES")]
    pub max_request_bytes: Option<u32>,

    /// Largest response body in bytes [config: rpc.max_response_bytes] [default: 32 MiB].
    #[arg(long, env = "ECROP_MAX_RESPONSE_BYTES", value_name = "BYTES")]
    pub max_response_bytes: Option<u32>,

    /// Most calls in one batch [config: rpc.max_batch_len] [default: 100].
    #[arg(long, env = "ECROP_MAX_BATCH_LEN", value_name = "CALLS")]
    pub max_batch_len: Option<u32>,

    /// Most concurrent connections [config: rpc.max_connections] [default: 512].
    #[arg(long, env = "ECROP_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<u32>,

    /// Browser origin allowed to call the endpoint, comma-separated or repeated; `*` for any
    /// [config: rpc.allowed_origins] [default: none, so web pages are refused].
    #[arg(
        long = "allowed-origin",
        env = "ECROP_ALLOWED_ORIGINS",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    pub allowed_origins: Option<Vec<String>>,

    /// Host name the endpoint answers to, comma-separated or repeated; `*` for any
    /// [config: rpc.allowed_hosts] [default: loopback names and the listen address].
    #[arg(
        long = "allowed-host",
        env = "ECROP_ALLOWED_HOSTS",
        value_name = "HOST",
        value_delimiter = ','
    )]
    pub allowed_hosts: Option<Vec<String>>,

    /// Timeout of one upstream call in seconds [config: upstream.timeout_secs] [default: 30].
    #[arg(long, env = "ECROP_UPSTREAM_TIMEOUT_SECS", value_name = "SECS")]
    pub upstream_timeout_secs: Option<u64>,
}

/// Reads the configuration file named on the command line, or an empty one.
pub fn load_file(cli: &Cli) -> Result<FileConfig, ConfigError> {
    match &cli.config {
        Some(path) => FileConfig::load(path),
        None => Ok(FileConfig::default()),
    }
}

/// Resolves the endpoint settings from the file and the overrides.
pub fn rpc_settings(
    file: &FileConfig,
    listen: Option<SocketAddr>,
    limits: &LimitArgs,
) -> Result<RpcSettings, ConfigError> {
    let settings = RpcSettings {
        listen: match listen.or(file.rpc.listen) {
            Some(addr) => addr,
            None => config::DEFAULT_LISTEN
                .parse()
                .map_err(|e| ConfigError::Invalid(format!("default listen address: {e}")))?,
        },
        max_request_bytes: limits
            .max_request_bytes
            .or(file.rpc.max_request_bytes)
            .unwrap_or(config::DEFAULT_MAX_REQUEST_BYTES),
        max_response_bytes: limits
            .max_response_bytes
            .or(file.rpc.max_response_bytes)
            .unwrap_or(config::DEFAULT_MAX_RESPONSE_BYTES),
        max_batch_len: limits
            .max_batch_len
            .or(file.rpc.max_batch_len)
            .unwrap_or(config::DEFAULT_MAX_BATCH_LEN),
        max_connections: limits
            .max_connections
            .or(file.rpc.max_connections)
            .unwrap_or(config::DEFAULT_MAX_CONNECTIONS),
        allowed_origins: Vec::new(),
        allowed_hosts: Vec::new(),
    };
    let mut settings = settings;
    settings.allowed_origins = limits
        .allowed_origins
        .clone()
        .or_else(|| file.rpc.allowed_origins.clone())
        .unwrap_or_default();
    settings.allowed_hosts = limits
        .allowed_hosts
        .clone()
        .or_else(|| file.rpc.allowed_hosts.clone())
        .unwrap_or_else(|| config::default_hosts(settings.listen));
    for (name, value) in [
        ("max_request_bytes", settings.max_request_bytes),
        ("max_response_bytes", settings.max_response_bytes),
        ("max_batch_len", settings.max_batch_len),
        ("max_connections", settings.max_connections),
    ] {
        if value == 0 {
            return Err(ConfigError::Invalid(format!("rpc.{name} must be above zero")));
        }
    }
    Ok(settings)
}

/// Resolves the upstream settings from the file and the overrides.
pub fn upstream_settings(
    file: &FileConfig,
    url: Option<&str>,
    limits: &LimitArgs,
) -> Result<UpstreamSettings, ConfigError> {
    let url = url.or(file.upstream.url.as_deref()).unwrap_or(config::DEFAULT_UPSTREAM);
    let timeout = limits
        .upstream_timeout_secs
        .or(file.upstream.timeout_secs)
        .unwrap_or(config::DEFAULT_UPSTREAM_TIMEOUT_SECS);
    UpstreamSettings::new(url, Duration::from_secs(timeout))
}

/// Options of every command that works with the platform's contracts.
#[derive(Debug, Clone, Args)]
pub struct ChainArgs {
    /// JSON-RPC endpoint of the sidecar that signs for `--from` (its HSM holds the key).
    #[arg(
        long,
        env = "ECROP_RPC_URL",
        value_name = "URL",
        default_value = "http://127.0.0.1:8545"
    )]
    pub rpc_url: String,

    /// Account of the sidecar's token that acts: it sends the transactions, or signs the
    /// instruction (`instruction sign`); read-only commands use it only as the caller of views.
    #[arg(long, env = "ECROP_FROM", value_name = "ADDRESS")]
    pub from: Option<alloy::primitives::Address>,

    /// Forge build output with the compiled contracts.
    #[arg(long, env = "ECROP_ARTIFACTS", value_name = "DIR", default_value = "contracts/out")]
    pub artifacts: PathBuf,

    /// Deployment file: contract addresses, written by `ecrop contracts deploy`.
    #[arg(long, env = "ECROP_DEPLOYMENT", value_name = "FILE", default_value = "deployment.json")]
    pub deployment: PathBuf,

    /// Print results as JSON.
    #[arg(long)]
    pub json: bool,

    /// File holding the API key (or JWT) sent to the sidecar as `Authorization: Bearer`;
    /// without it the key is read from ECROP_API_KEY. The key itself is never a flag.
    #[arg(long, env = "ECROP_API_KEY_FILE", value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,
}

impl ChainArgs {
    /// A client of the endpoint whose reverts are explained by the platform's errors.
    pub fn client(
        &self,
        artifacts: &crate::onchain::Artifacts,
    ) -> Result<crate::onchain::Client, crate::onchain::ChainError> {
        let errors = crate::onchain::ErrorBook::from_artifacts(
            artifacts,
            &crate::onchain::PLATFORM_CONTRACTS,
        );
        crate::onchain::Client::with_key_file(
            &self.rpc_url,
            self.from,
            errors,
            self.api_key_file.as_deref(),
        )
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn every_subcommand_is_well_formed() {
        // Catches duplicate flags, missing value names and conflicting ids in every
        // subcommand, which clap otherwise reports only when that subcommand runs.
        super::Cli::command().debug_assert();
    }
}
