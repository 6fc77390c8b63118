//! The deployment file: which contract lives at which address on which chain.
//!
//! Written after every deployed contract, so an interrupted deployment resumes where it
//! stopped; replaced atomically (write to a temporary file, then rename).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use alloy::primitives::Address;
use serde::{Deserialize, Serialize};

use super::ChainError;

/// Largest deployment file read.
const MAX_DEPLOYMENT_BYTES: u64 = 1024 * 1024;

/// Contract addresses of one chain.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    /// Chain id the addresses belong to.
    pub chain_id: u64,
    /// Contract name to address.
    pub contracts: BTreeMap<String, Address>,
    /// Block of the first deployment: where event scans start.
    #[serde(default)]
    pub start_block: u64,
}

impl Deployment {
    /// Reads `path`; a missing file is an empty deployment for `chain_id`.
    pub fn load_or_new(path: &Path, chain_id: u64) -> Result<Self, ChainError> {
        if !path.exists() {
            return Ok(Self { chain_id, ..Self::default() });
        }
        let deployment = Self::load(path)?;
        if deployment.chain_id != chain_id {
            return Err(file_error(
                path,
                format!("written for chain {}, the node is chain {chain_id}", deployment.chain_id),
            ));
        }
        Ok(deployment)
    }

    /// Reads `path`.
    pub fn load(path: &Path) -> Result<Self, ChainError> {
        let text = super::files::read_text(path, MAX_DEPLOYMENT_BYTES)
            .map_err(|reason| file_error(path, reason))?;
        serde_json::from_str(&text).map_err(|e| file_error(path, e.to_string()))
    }

    /// Writes atomically to `path`.
    pub fn save(&self, path: &Path) -> Result<(), ChainError> {
        let text =
            serde_json::to_string_pretty(self).map_err(|e| file_error(path, e.to_string()))?;
        let tmp = tmp_path(path);
        std::fs::write(&tmp, format!("{text}\n")).map_err(|e| file_error(&tmp, e.to_string()))?;
        std::fs::rename(&tmp, path).map_err(|e| file_error(path, e.to_string()))
    }

    /// Address of contract `name`.
    pub fn address(&self, name: &str) -> Result<Address, ChainError> {
        self.contracts.get(name).copied().ok_or_else(|| ChainError::NotDeployed(name.to_owned()))
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

fn file_error(path: &Path, reason: String) -> ChainError {
    ChainError::DeploymentFile { path: path.display().to_string(), reason }
}
