//! The local development network behind `ecrop dev`: a SoftHSM2 token in a data directory,
//! an anvil chain on loopback and the sidecar in front of it.
//!
//! Persists, in the data directory: the SoftHSM2 configuration and token files, and the
//! token's PINs (files readable by the owner only). A rerun on the same directory reuses the
//! token and keys. The chain itself lives in anvil's memory and ends with the command.
//! PINs are never printed or logged; the operator reads them from their files.

use std::{
    fs,
    io::Write,
    net::{Ipv4Addr, SocketAddr, TcpListener},
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use alloy::primitives::{Address, U256};
use secrecy::SecretString;
use tokio::process::{Child, Command};

/// Label of the development token.
pub const DEV_TOKEN_LABEL: &str = "ecrop-dev";
/// Balance given to each development account: 1000 ether.
pub const DEV_FUNDING_WEI: u128 = 1_000 * 10u128.pow(18);
/// How long anvil may take to answer after start.
pub const ANVIL_START_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes of randomness in a generated PIN (hex-encoded, so twice as many characters).
const PIN_BYTES: usize = 16;

/// Errors preparing or running the development network.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    /// A file or directory in the data directory could not be written or read.
    #[error("data directory ({path}): {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// anvil could not be started.
    #[error("anvil could not be started ({bin}): {reason}")]
    AnvilStart {
        /// Binary asked for.
        bin: String,
        /// What failed.
        reason: String,
    },
    /// No free port on loopback.
    #[error("no free port on loopback: {0}")]
    NoPort(std::io::Error),
}

/// Files of the development setup inside the data directory.
#[derive(Debug, Clone)]
pub struct DevPaths {
    /// The data directory itself.
    pub data_dir: PathBuf,
    /// SoftHSM2 configuration file (point `SOFTHSM2_CONF` here).
    pub softhsm_conf: PathBuf,
    /// Token storage directory.
    pub token_dir: PathBuf,
    /// File holding the token's user PIN.
    pub user_pin: PathBuf,
    /// File holding the token's security officer PIN.
    pub so_pin: PathBuf,
}

impl DevPaths {
    /// Creates the data directory layout where missing: directories (owner only), the
    /// SoftHSM2 configuration and the two PIN files with fresh random PINs. Existing files
    /// are kept, so a rerun finds the same token.
    pub fn prepare(data_dir: &Path) -> Result<Self, DevError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| DevError::Io { path, source }
        };
        // Only a directory made here is narrowed to the owner; an existing one keeps its mode
        // (the secrets inside are owner-only files either way).
        let created = !data_dir.exists();
        fs::create_dir_all(data_dir).map_err(io(data_dir))?;
        let data_dir = fs::canonicalize(data_dir).map_err(io(data_dir))?;
        if created {
            fs::set_permissions(&data_dir, fs::Permissions::from_mode(0o700))
                .map_err(io(&data_dir))?;
        }

        let token_dir = data_dir.join("tokens");
        fs::create_dir_all(&token_dir).map_err(io(&token_dir))?;

        let softhsm_conf = data_dir.join("softhsm2.conf");
        if !softhsm_conf.exists() {
            let text = format!(
                "# SoftHSM2 configuration of the ecrop development token.\n\
                 directories.tokendir = {}\n\
                 objectstore.backend = file\n\
                 log.level = ERROR\n\
                 slots.removable = false\n",
                token_dir.display()
            );
            fs::write(&softhsm_conf, text).map_err(io(&softhsm_conf))?;
        }

        let user_pin = data_dir.join("user.pin");
        let so_pin = data_dir.join("so.pin");
        for pin in [&user_pin, &so_pin] {
            if !pin.exists() {
                write_secret_file(pin, &random_pin()).map_err(io(pin))?;
            }
        }
        Ok(Self { data_dir, softhsm_conf, token_dir, user_pin, so_pin })
    }

    /// Reads a PIN file written by [`DevPaths::prepare`].
    pub fn read_pin(path: &Path) -> Result<SecretString, DevError> {
        let text = fs::read_to_string(path)
            .map_err(|source| DevError::Io { path: path.to_owned(), source })?;
        Ok(SecretString::from(text.trim_end().to_owned()))
    }
}

fn random_pin() -> String {
    let bytes: [u8; PIN_BYTES] = rand::random();
    hex::encode(bytes)
}

/// Writes `content` to a new file readable by the owner only.
fn write_secret_file(path: &Path, content: &str) -> std::io::Result<()> {
    let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(content.as_bytes())?;
    file.write_all(b"\n")
}

/// A free TCP port on 127.0.0.1, found by binding port 0. The port is released before it is
/// returned, so another process could take it first; callers retry on bind failure.
pub fn free_port() -> Result<u16, DevError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(DevError::NoPort)?;
    Ok(listener.local_addr().map_err(DevError::NoPort)?.port())
}

/// A running anvil, killed when dropped.
#[derive(Debug)]
pub struct Anvil {
    child: Child,
    addr: SocketAddr,
}

impl Anvil {
    /// Starts `bin` on a free loopback port and waits until it answers JSON-RPC.
    pub async fn start(bin: &str, extra_args: &[String]) -> Result<Self, DevError> {
        let start_error = |reason: String| DevError::AnvilStart { bin: bin.to_owned(), reason };
        let port = free_port()?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let mut child = Command::new(bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                start_error(if e.kind() == std::io::ErrorKind::NotFound {
                    "not found; run scripts/bootstrap, which installs it under node_modules/.bin"
                        .to_owned()
                } else {
                    e.to_string()
                })
            })?;

        let deadline = Instant::now() + ANVIL_START_TIMEOUT;
        let url = format!("http://{addr}");
        let client = reqwest::Client::new();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    use tokio::io::AsyncReadExt;
                    let _ = pipe.read_to_string(&mut stderr).await;
                }
                return Err(start_error(format!("exited ({status}): {}", stderr.trim())));
            }
            let probe = client
                .post(&url)
                .json(
                    &serde_json::json!({"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}),
                )
                .timeout(Duration::from_secs(1))
                .send()
                .await;
            if probe.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            if Instant::now() > deadline {
                return Err(start_error(format!(
                    "no answer on {url} within {}s",
                    ANVIL_START_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Nobody reads anvil's stderr from here on; drop the pipe so anvil never blocks on it.
        drop(child.stderr.take());
        Ok(Self { child, addr })
    }

    /// anvil's HTTP URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops anvil and waits for it to exit.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// Gives `account` a balance through anvil's `anvil_setBalance`.
    pub async fn fund(&self, account: Address, wei: U256) -> Result<(), DevError> {
        let response = reqwest::Client::new()
            .post(self.url())
            .json(&serde_json::json!({
                "jsonrpc": "2.0", "id": 1, "method": "anvil_setBalance",
                "params": [account, format!("{wei:#x}")],
            }))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| DevError::AnvilStart {
                bin: "anvil".into(),
                reason: format!("funding {account}: {e}"),
            })?;
        drop(response);
        Ok(())
    }
}
