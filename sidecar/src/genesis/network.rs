//! The network definition: what the consortium agreed on, as a TOML file.
//!
//! Unknown keys are rejected so that a misspelt option is an error, not a silent default.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use alloy::primitives::Address;
use serde::Deserialize;

use super::GenesisError;

/// Longest validator name: it becomes the token label, which PKCS#11 limits to 32 bytes.
const VALIDATOR_NAME_MAX_BYTES: usize = 32;

/// Default Besu P2P port.
const DEFAULT_P2P_PORT: u16 = 30303;

/// Default port of Besu's HTTP JSON-RPC; the sidecar's upstream (see `config::DEFAULT_UPSTREAM`).
const DEFAULT_BESU_RPC_PORT: u16 = 8555;

/// Default port of the sidecar's JSON-RPC endpoint (see `config::DEFAULT_LISTEN`).
const DEFAULT_SIDECAR_PORT: u16 = 8545;

/// A parsed and checked network definition.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkDefinition {
    /// `[network]`: chain parameters.
    pub network: NetworkSection,
    /// `[[validators]]`: the initial QBFT validators, one node each.
    pub validators: Vec<ValidatorDef>,
    /// `[[members]]`: the consortium members and their accounts.
    #[serde(default)]
    pub members: Vec<MemberDef>,
    /// `admins`: accounts that administer the platform from the first block.
    #[serde(default)]
    pub admins: Vec<Address>,
    /// `[nodes]`: how the generated files are laid out on the nodes.
    #[serde(default)]
    pub nodes: NodesSection,
    /// `[contracts]`: the platform contracts placed in `alloc`; none when absent.
    pub contracts: Option<ContractsSection>,
}

/// `[contracts]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractsSection {
    /// Forge output directory with the platform's artifacts; a relative path starts at the
    /// definition file's directory. The first admin is the deployer, and the platform's admin.
    pub artifacts: PathBuf,
}

/// `[network]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSection {
    /// Human name of the network.
    pub name: String,
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// QBFT `blockperiodseconds`: target seconds between blocks.
    pub block_period_seconds: u64,
    /// QBFT `epochlength`: blocks after which pending validator votes are discarded.
    pub epoch_length: u64,
    /// QBFT `requesttimeoutseconds`: seconds before a round change.
    pub request_timeout_seconds: u64,
    /// Block gas limit; [`super::DEFAULT_GAS_LIMIT`] when absent.
    pub gas_limit: Option<u64>,
    /// Balance in ether given to every member and admin account in `alloc` (0 when absent;
    /// gas is free, so balances matter only for value transfers).
    pub account_balance_ether: Option<u64>,
}

/// One `[[validators]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorDef {
    /// Name: lowercase letters, digits and `-`; also the label of the validator's token.
    pub name: String,
    /// IP address the node is reached at by its peers (its enode host).
    pub host: IpAddr,
    /// P2P port.
    #[serde(default = "default_p2p_port")]
    pub p2p_port: u16,
    /// Port of Besu's HTTP JSON-RPC, on the node's loopback.
    #[serde(default = "default_besu_rpc_port")]
    pub rpc_port: u16,
    /// Port of the sidecar's JSON-RPC endpoint.
    #[serde(default = "default_sidecar_port")]
    pub sidecar_port: u16,
}

/// One `[[members]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberDef {
    /// The institution's name.
    pub name: String,
    /// Its account on the network.
    pub account: Address,
}

/// `[nodes]` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodesSection {
    /// Where the output directory is found on the nodes (e.g. a container mount point); the
    /// output directory itself when absent.
    pub root: Option<PathBuf>,
    /// PKCS#11 module path on the nodes; `config::DEFAULT_PKCS11_MODULE` when absent.
    pub pkcs11_module: Option<PathBuf>,
    /// Address the sidecars listen on; loopback when absent. Wider only as explicit config,
    /// e.g. inside a container whose published port is bound to the host's loopback.
    pub sidecar_listen_host: Option<IpAddr>,
}

fn default_p2p_port() -> u16 {
    DEFAULT_P2P_PORT
}

fn default_besu_rpc_port() -> u16 {
    DEFAULT_BESU_RPC_PORT
}

fn default_sidecar_port() -> u16 {
    DEFAULT_SIDECAR_PORT
}

impl NetworkDefinition {
    /// Reads, parses and checks a definition file.
    pub fn load(path: &Path) -> Result<Self, GenesisError> {
        let text = std::fs::read_to_string(path).map_err(GenesisError::io(path))?;
        let mut def = Self::parse(&text)
            .map_err(|message| GenesisError::Parse { path: path.to_owned(), message })?
            .checked()?;
        if let (Some(contracts), Some(base)) = (def.contracts.as_mut(), path.parent()) {
            contracts.artifacts = base.join(&contracts.artifacts);
        }
        Ok(def)
    }

    /// Parses definition text without checking it; the error is the parser's message.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.message().to_owned())
    }

    /// Checks the rules the schema cannot express.
    pub fn checked(self) -> Result<Self, GenesisError> {
        let invalid = |m: String| Err(GenesisError::Invalid(m));
        let n = &self.network;
        if n.chain_id == 0 {
            return invalid("chain_id must not be 0".into());
        }
        for (field, value) in [
            ("block_period_seconds", n.block_period_seconds),
            ("epoch_length", n.epoch_length),
            ("request_timeout_seconds", n.request_timeout_seconds),
        ] {
            if value == 0 {
                return invalid(format!("{field} must be at least 1"));
            }
        }
        if n.gas_limit == Some(0) {
            return invalid("gas_limit must not be 0".into());
        }
        if self.validators.is_empty() {
            return invalid("at least one validator is needed".into());
        }

        let mut names = HashSet::new();
        let mut endpoints = HashSet::new();
        for v in &self.validators {
            let valid_name = !v.name.is_empty()
                && v.name.len() <= VALIDATOR_NAME_MAX_BYTES
                && v.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !valid_name {
                return invalid(format!(
                    "validator name ({}) must be 1 to {VALIDATOR_NAME_MAX_BYTES} lowercase \
                     letters, digits or '-'",
                    v.name
                ));
            }
            if !names.insert(v.name.as_str()) {
                return invalid(format!("validator name ({}) appears twice", v.name));
            }
            if !endpoints.insert((v.host, v.p2p_port)) {
                return invalid(format!(
                    "validator p2p endpoint ({}:{}) appears twice",
                    v.host, v.p2p_port
                ));
            }
        }

        if self.contracts.is_some() && self.admins.is_empty() {
            return invalid("[contracts] needs an admin to deploy them".into());
        }

        let mut accounts = HashSet::new();
        for m in &self.members {
            if !accounts.insert(m.account) {
                return invalid(format!("member account ({}) appears twice", m.account));
            }
        }
        Ok(self)
    }
}
