//! `ecrop genesis`: generates a QBFT network from a network definition.
//!
//! SoftHSM2 reads `SOFTHSM2_CONF` once, when the module is loaded. The command therefore
//! prepares the output directory's token store first and, unless `SOFTHSM2_CONF` already names
//! its configuration, runs itself again with the variable set from the start (setting the
//! environment of a running multi-threaded process is not sound).

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;

use crate::config::DEFAULT_PKCS11_MODULE;
use crate::genesis::{self, HsmLayout, NetworkDefinition, ValidatorKey};
use crate::onchain::Artifacts;

/// Environment variable SoftHSM2 reads its configuration path from.
const SOFTHSM2_CONF: &str = "SOFTHSM2_CONF";

/// Marks the re-run with `SOFTHSM2_CONF` set, so it never runs itself a third time.
const RERUN_MARKER: &str = "ECROP_GENESIS_RERUN";

/// Options of `ecrop genesis`.
#[derive(Debug, Args)]
pub struct GenesisArgs {
    /// Network definition (TOML), e.g. `genesis/network.toml`.
    #[arg(long, value_name = "FILE")]
    pub network: PathBuf,

    /// Output directory: genesis, static nodes, per-node configurations and the validator
    /// tokens. A rerun on the same directory reuses the tokens and keys.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// PKCS#11 module that holds the validator tokens (SoftHSM2 here).
    #[arg(long = "pkcs11-module", env = "ECROP_PKCS11_MODULE", value_name = "PATH")]
    pub module: Option<PathBuf>,

    /// Print the result as JSON (validators, enodes, contracts); progress goes to stderr.
    #[arg(long)]
    pub json: bool,
}

/// Runs `ecrop genesis`.
pub async fn run(args: &GenesisArgs) -> anyhow::Result<()> {
    let def = NetworkDefinition::load(&args.network)?;
    let module = args.module.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_PKCS11_MODULE));
    if !module.exists() {
        bail!(
            "pkcs#11 module missing ({}); run scripts/bootstrap, which installs softhsm2",
            module.display()
        );
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("output directory ({})", args.out.display()))?;
    let out = std::fs::canonicalize(&args.out)
        .with_context(|| format!("output directory ({})", args.out.display()))?;
    let layout = HsmLayout::prepare(&out)?;

    let conf_set = std::env::var_os(SOFTHSM2_CONF).is_some_and(|v| v == layout.softhsm_conf);
    if !conf_set {
        return rerun_with_conf(&layout.softhsm_conf).await;
    }

    let keys = {
        let def = def.clone();
        let out = out.clone();
        let json = args.json;
        tokio::task::spawn_blocking(move || make_keys(&def, &module, &out, json))
            .await
            .context("key task")??
    };

    let contracts = match (&def.contracts, def.admins.first()) {
        (Some(section), Some(deployer)) => {
            let artifacts = Artifacts::new(&section.artifacts);
            let creations = genesis::platform_creations(&artifacts, *deployer)?;
            let contracts =
                genesis::execute_constructors(def.network.chain_id, *deployer, &creations)?;
            for c in contracts.iter().filter(|_| !args.json) {
                println!(
                    "pre-deployed {} at {} ({} storage slots)",
                    c.name,
                    c.address,
                    c.storage.len()
                );
            }
            contracts
        }
        _ => Vec::new(),
    };

    for file in genesis::render(&def, &keys, &contracts, &out)? {
        let path = out.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("directory ({})", parent.display()))?;
        }
        std::fs::write(&path, file.contents)
            .with_context(|| format!("writing ({})", path.display()))?;
    }
    link_tokens(&layout, &def, &out)?;

    if args.json {
        let summary = std::fs::read_to_string(out.join("network.json"))
            .with_context(|| format!("reading ({})", out.join("network.json").display()))?;
        let mut summary: serde_json::Value = serde_json::from_str(&summary)?;
        summary["out"] = serde_json::json!(out);
        summary["contracts"] = contracts
            .iter()
            .map(|c| (c.name.clone(), c.address.to_string().into()))
            .collect::<serde_json::Map<_, _>>()
            .into();
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }

    println!(
        "network {} (chain id {}) written to {}",
        def.network.name,
        def.network.chain_id,
        out.display()
    );
    for key in &keys {
        println!("  validator {} {}", key.name, key.address);
    }
    Ok(())
}

/// Runs this command again with `SOFTHSM2_CONF` naming `conf`, and returns its outcome.
async fn rerun_with_conf(conf: &Path) -> anyhow::Result<()> {
    if std::env::var_os(RERUN_MARKER).is_some() {
        bail!(
            "{SOFTHSM2_CONF} does not name the output directory's configuration ({})",
            conf.display()
        );
    }
    let exe = std::env::current_exe().context("own executable")?;
    let status = tokio::process::Command::new(&exe)
        .args(std::env::args_os().skip(1))
        .env(SOFTHSM2_CONF, conf)
        .env(RERUN_MARKER, "1")
        .status()
        .await
        .with_context(|| format!("running {}", exe.display()))?;
    if !status.success() {
        // The child has printed its own error.
        std::process::exit(status.code().unwrap_or(1));
    }
    Ok(())
}

/// Ensures every validator's token and node key, printing progress. Blocking.
fn make_keys(
    def: &NetworkDefinition,
    module: &Path,
    out: &Path,
    json: bool,
) -> anyhow::Result<Vec<ValidatorKey>> {
    let total = def.validators.len();
    let mut keys = Vec::with_capacity(total);
    for (index, v) in def.validators.iter().enumerate() {
        let step = index + 1;
        let mut progress = |message: &str| {
            if json {
                eprintln!("[{step}/{total}] {message}");
            } else {
                println!("[{step}/{total}] {message}");
            }
        };
        let node_dir = genesis::node_dir(out, &v.name);
        let key = genesis::ensure_validator_key(module, &node_dir, &v.name, &mut progress)?;
        keys.push(ValidatorKey {
            name: v.name.clone(),
            address: key.address,
            public_key: key.public_key,
        });
    }
    Ok(keys)
}

/// Links `nodes/<name>/token` to the validator's directory in the token store, so a node can
/// mount exactly its own token.
fn link_tokens(layout: &HsmLayout, def: &NetworkDefinition, out: &Path) -> anyhow::Result<()> {
    for v in &def.validators {
        let Some(dir) = layout.token_subdir(&v.name)? else {
            bail!("token store has no directory for token ({})", v.name);
        };
        let Some(dir_name) = dir.file_name() else {
            bail!("token directory has no name ({})", dir.display());
        };
        let link = genesis::node_dir(out, &v.name).join("token");
        let target = Path::new("../../hsm/tokens").join(dir_name);
        if std::fs::read_link(&link).is_ok_and(|t| t == target) {
            continue;
        }
        if link.symlink_metadata().is_ok() {
            std::fs::remove_file(&link)
                .with_context(|| format!("replacing ({})", link.display()))?;
        }
        symlink(&target, &link).with_context(|| format!("linking ({})", link.display()))?;
    }
    Ok(())
}
