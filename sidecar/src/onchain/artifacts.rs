//! Forge build artifacts: `<out>/<Source>.sol/<Contract>.json`, each with the contract's ABI
//! and creation bytecode.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use alloy::{json_abi::JsonAbi, primitives::Bytes};
use serde::Deserialize;

use super::ChainError;

/// Largest artifact file read: forge artifacts of the platform's contracts are well under
/// 2 MiB; 16 MiB bounds a corrupt or foreign file.
const MAX_ARTIFACT_BYTES: u64 = 16 * 1024 * 1024;

/// One compiled contract.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// Contract name.
    pub name: String,
    /// Its ABI.
    pub abi: JsonAbi,
    /// Creation bytecode (empty for interfaces and abstract contracts).
    pub bytecode: Bytes,
    /// Runtime bytecode.
    pub deployed_bytecode: Bytes,
}

#[derive(Deserialize)]
struct ArtifactFile {
    abi: JsonAbi,
    bytecode: BytecodeField,
    #[serde(rename = "deployedBytecode")]
    deployed_bytecode: BytecodeField,
}

#[derive(Deserialize)]
struct BytecodeField {
    object: String,
}

/// The artifacts directory, read lazily and cached by contract name.
#[derive(Debug)]
pub struct Artifacts {
    dir: PathBuf,
    loaded: std::sync::Mutex<HashMap<String, Artifact>>,
}

impl Artifacts {
    /// Uses the forge output directory `dir` (normally `contracts/out`).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into(), loaded: Default::default() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Loads contract `name` from `<dir>/<name>.sol/<name>.json`, or from any
    /// `<dir>/*.sol/<name>.json` when the source file is named differently.
    pub fn get(&self, name: &str) -> Result<Artifact, ChainError> {
        if let Some(found) =
            self.loaded.lock().unwrap_or_else(|p| p.into_inner()).get(name).cloned()
        {
            return Ok(found);
        }
        let direct = self.dir.join(format!("{name}.sol")).join(format!("{name}.json"));
        let path = if direct.is_file() { direct } else { self.search(name)? };
        let artifact = read(&path, name)?;
        self.loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_owned(), artifact.clone());
        Ok(artifact)
    }

    fn search(&self, name: &str) -> Result<PathBuf, ChainError> {
        let missing = || ChainError::ArtifactMissing {
            name: name.to_owned(),
            dir: self.dir.display().to_string(),
        };
        let entries = std::fs::read_dir(&self.dir).map_err(|_| missing())?;
        for entry in entries.flatten() {
            let candidate = entry.path().join(format!("{name}.json"));
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
        Err(missing())
    }
}

fn read(path: &Path, name: &str) -> Result<Artifact, ChainError> {
    let invalid =
        |reason: String| ChainError::ArtifactInvalid { path: path.display().to_string(), reason };
    let text = super::files::read_text(path, MAX_ARTIFACT_BYTES).map_err(invalid)?;
    let file: ArtifactFile = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    let decode = |hex_text: &str| -> Result<Bytes, ChainError> {
        let trimmed = hex_text.trim_start_matches("0x");
        if trimmed.contains("__$") {
            return Err(invalid("bytecode needs library linking, which is not supported".into()));
        }
        hex::decode(trimmed).map(Bytes::from).map_err(|e| invalid(format!("bytecode: {e}")))
    };
    Ok(Artifact {
        name: name.to_owned(),
        abi: file.abi,
        bytecode: decode(&file.bytecode.object)?,
        deployed_bytecode: decode(&file.deployed_bytecode.object)?,
    })
}
