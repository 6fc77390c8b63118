//! `ecrop api-clients`: the clients of the JSON-RPC endpoint.
//!
//! Edits the clients file (JSON, mode 0600, written atomically, locked while edited); a
//! running sidecar picks the change up within about a second, without a restart.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use crate::{
    api::{
        self, Access, AccessMode, GlobalLimits, LimitsFile, Roles,
        auth::{JwtAlg, JwtKey, generate_api_key},
        clients::{ClientEntry, ClientsFile, Credential, FILE_VERSION, Stamp},
        roles::valid_id,
    },
    config::{FileConfig, RpcSettings},
};

/// Largest public key file read.
const MAX_PEM_BYTES: u64 = 64 * 1024;

/// The clients file option, shared by `serve`, `dev` and `api-clients`.
#[derive(Debug, Clone, Default, Args)]
pub struct ClientsFileArg {
    /// Clients file of the JSON-RPC endpoint (JSON, managed with `ecrop api-clients`)
    /// [config: api.clients_file] [default: .ecrop/api-clients.json].
    #[arg(long = "api-clients", env = "ECROP_API_CLIENTS", value_name = "FILE")]
    pub api_clients: Option<PathBuf>,
}

/// Access control for `serve` (mode [`AccessMode::Required`]) or `dev`
/// ([`AccessMode::DevLoopback`]) from the configuration and the clients file option. The
/// caller adds the refusal hook and may pass `on_change` for reloads.
pub fn access(
    file: &FileConfig,
    arg: &ClientsFileArg,
    settings: &RpcSettings,
    mode: AccessMode,
    on_change: Option<api::ClientChanges>,
) -> anyhow::Result<Access> {
    let global = GlobalLimits {
        max_request_bytes: settings.max_request_bytes,
        max_batch_len: settings.max_batch_len,
    };
    Ok(Access::from_config(&file.api, arg.api_clients.as_deref(), mode, global, on_change)?)
}

/// Subcommands of `ecrop api-clients`.
#[derive(Debug, Subcommand)]
pub enum ApiClientsCommand {
    /// Add a client. With an API key (the default) the new key is printed once on standard
    /// output (or written to --key-out) and only its SHA-256 is stored; with
    /// --jwt-public-key the client authenticates with JWTs whose `sub` is its id, signed
    /// with the matching private key.
    Add(AddArgs),
    /// List the clients (never their secrets).
    List(ListArgs),
    /// Revoke a client: its credential is refused from the next request on (a running
    /// sidecar reloads the file within about a second). The entry stays, with who revoked it
    /// and when.
    Revoke(RevokeArgs),
}

/// Options of `api-clients add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// Client id: 1 to 64 letters, digits, `-`, `_` or `.`, starting with a letter or digit.
    #[arg(value_name = "ID")]
    pub id: String,

    /// Role in the API permission matrix ([api.roles.NAME] of the configuration, or a
    /// built-in role: reader, signer, private, admin).
    #[arg(long, value_name = "ROLE")]
    pub role: String,

    /// PEM public key (-----BEGIN PUBLIC KEY-----) verifying the client's JWTs.
    #[arg(long, value_name = "FILE", requires = "jwt_alg")]
    pub jwt_public_key: Option<PathBuf>,

    /// Algorithm of the client's JWTs; tokens with any other `alg` are refused.
    #[arg(long, value_name = "ALG", requires = "jwt_public_key")]
    pub jwt_alg: Option<JwtAlg>,

    /// Write the new API key to this file (created, mode 0600; must not exist) instead of
    /// standard output.
    #[arg(long, value_name = "FILE", conflicts_with = "jwt_public_key")]
    pub key_out: Option<PathBuf>,

    /// Calls per second for this client, over the role's (0 for no limit).
    #[arg(long, value_name = "N")]
    pub rate: Option<u32>,

    /// Calls at once above the rate (token bucket size), over the role's.
    #[arg(long, value_name = "N")]
    pub burst: Option<u32>,

    /// Calls in flight at once, over the role's (0 for no limit).
    #[arg(long, value_name = "N")]
    pub max_concurrent: Option<u32>,

    /// Largest request body in bytes, over the role's.
    #[arg(long, value_name = "BYTES")]
    pub max_request_bytes: Option<u32>,

    /// Most calls in one batch, over the role's.
    #[arg(long, value_name = "CALLS")]
    pub max_batch_len: Option<u32>,

    /// The clients file.
    #[command(flatten)]
    pub file: ClientsFileArg,
}

/// Options of `api-clients list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,

    /// The clients file.
    #[command(flatten)]
    pub file: ClientsFileArg,
}

/// Options of `api-clients revoke`.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// Client id.
    #[arg(value_name = "ID")]
    pub id: String,

    /// The clients file.
    #[command(flatten)]
    pub file: ClientsFileArg,
}

/// Runs an `api-clients` subcommand.
pub async fn run(cli: &super::Cli, command: &ApiClientsCommand) -> anyhow::Result<()> {
    let config = super::load_file(cli)?;
    match command {
        ApiClientsCommand::Add(args) => add(&config, args),
        ApiClientsCommand::List(args) => list(&config, args),
        ApiClientsCommand::Revoke(args) => revoke(&config, args),
    }
}

/// Holds an exclusive lock on `<file>.lock` while the clients file is edited.
fn lock(path: &Path) -> anyhow::Result<std::fs::File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the directory of {}", path.display()))?;
    }
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(PathBuf::from(name))
        .with_context(|| format!("locking {}", path.display()))?;
    file.lock().with_context(|| format!("locking {}", path.display()))?;
    Ok(file)
}

fn add(config: &FileConfig, args: &AddArgs) -> anyhow::Result<()> {
    if !valid_id(&args.id) {
        bail!(
            "invalid client id ({}): use 1 to 64 letters, digits, -, _ or ., starting with a letter or digit",
            args.id.escape_debug()
        );
    }
    let roles = Roles::from_config(config.api.roles.as_ref())?;
    if roles.get(&args.role).is_none() {
        bail!(
            "unknown role ({}); roles: {}",
            args.role.escape_debug(),
            roles.names().collect::<Vec<_>>().join(", ")
        );
    }
    let limits = LimitsFile {
        requests_per_second: args.rate,
        burst: args.burst,
        max_concurrent: args.max_concurrent,
        max_request_bytes: args.max_request_bytes,
        max_batch_len: args.max_batch_len,
    };
    limits.check("client limits").map_err(|e| anyhow::anyhow!("{e}"))?;
    let limits = (limits != LimitsFile::default()).then_some(limits);

    let (credential, key) = match (&args.jwt_public_key, args.jwt_alg) {
        (Some(path), Some(alg)) => {
            let pem = crate::onchain::files::read_text(path, MAX_PEM_BYTES)
                .map_err(|reason| anyhow::anyhow!("public key {} ({reason})", path.display()))?;
            JwtKey::new(alg, &pem)
                .map_err(|reason| anyhow::anyhow!("public key {}: {reason}", path.display()))?;
            (Credential::Jwt { alg, public_key_pem: pem }, None)
        }
        (None, None) => {
            let (key, hash) = generate_api_key();
            (Credential::ApiKey { sha256: hash.to_hex() }, Some(key))
        }
        _ => bail!("--jwt-public-key and --jwt-alg go together"),
    };

    let path = config.api.clients_path(args.file.api_clients.as_deref());
    let _lock = lock(&path)?;
    let mut file = ClientsFile::load(&path)?;
    if file.clients.is_empty() {
        file.version = FILE_VERSION;
    }
    if let Some(existing) = file.get(&args.id) {
        let state = match &existing.revoked {
            Some(stamp) => format!("revoked {} by {}", stamp.at, stamp.by),
            None => "active".to_owned(),
        };
        bail!("client {} exists already ({state}); choose another id", args.id);
    }
    let kind = credential.kind();
    file.clients.push(ClientEntry {
        id: args.id.clone(),
        role: args.role.clone(),
        credential,
        limits,
        created: Stamp::now(),
        revoked: None,
    });

    if let (Some(out), Some(key)) = (&args.key_out, &key) {
        use std::os::unix::fs::OpenOptionsExt;
        let mut handle = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(out)
            .with_context(|| format!("creating the key file {}", out.display()))?;
        if let Err(e) =
            handle.write_all(format!("{key}\n").as_bytes()).and_then(|()| handle.sync_all())
        {
            let _ = std::fs::remove_file(out);
            return Err(e).with_context(|| format!("writing the key file {}", out.display()));
        }
    }
    if let Err(e) = file.save(&path) {
        if let Some(out) = &args.key_out {
            let _ = std::fs::remove_file(out);
        }
        return Err(e.into());
    }
    eprintln!("added client {} (role {}, {kind}) to {}", args.id, args.role, path.display());
    match (&args.key_out, key) {
        (Some(out), Some(_)) => {
            eprintln!("API key written to {} (it is not stored anywhere else)", out.display())
        }
        (None, Some(key)) => {
            eprintln!("API key (shown once, not stored; send it as Authorization: Bearer <key>):");
            println!("{key}");
        }
        _ => {}
    }
    Ok(())
}

fn list(config: &FileConfig, args: &ListArgs) -> anyhow::Result<()> {
    let path = config.api.clients_path(args.file.api_clients.as_deref());
    let file = ClientsFile::load(&path)?;
    if args.json {
        let entries: Vec<serde_json::Value> = file
            .clients
            .iter()
            .map(|c| {
                let mut entry = serde_json::json!({
                    "id": c.id,
                    "role": c.role,
                    "credential": c.credential.kind(),
                    "created": c.created,
                    "revoked": c.revoked,
                    "active": c.active(),
                });
                if let Some(limits) = &c.limits {
                    entry["limits"] = serde_json::to_value(limits).unwrap_or_default();
                }
                entry
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(());
    }
    if file.clients.is_empty() {
        println!("no clients in {}", path.display());
        return Ok(());
    }
    println!(
        "{:<24} {:<10} {:<10} {:<21} {:<12} STATUS",
        "ID", "ROLE", "CREDENTIAL", "CREATED", "BY"
    );
    for c in &file.clients {
        let status = match &c.revoked {
            Some(stamp) => format!("revoked {} by {}", stamp.at, stamp.by),
            None => "active".to_owned(),
        };
        println!(
            "{:<24} {:<10} {:<10} {:<21} {:<12} {status}",
            c.id,
            c.role,
            c.credential.kind(),
            c.created.at,
            c.created.by
        );
    }
    Ok(())
}

fn revoke(config: &FileConfig, args: &RevokeArgs) -> anyhow::Result<()> {
    let path = config.api.clients_path(args.file.api_clients.as_deref());
    let _lock = lock(&path)?;
    let mut file = ClientsFile::load(&path)?;
    let Some(entry) = file.clients.iter_mut().find(|c| c.id == args.id) else {
        bail!("no client {} in {}", args.id.escape_debug(), path.display());
    };
    if let Some(stamp) = &entry.revoked {
        bail!("client {} was already revoked ({} by {})", args.id, stamp.at, stamp.by);
    }
    entry.revoked = Some(Stamp::now());
    file.save(&path)?;
    eprintln!("revoked client {} in {}", args.id, path.display());
    Ok(())
}
