//! Test harness: real processes on loopback in temporary directories.
//!
//! [`DevNet`] runs the `ecrop dev` binary (SoftHSM2 token, anvil, sidecar) exactly as an
//! operator would; [`Serve`] runs `ecrop serve` against an existing token and node. Both are
//! stopped with SIGTERM when dropped, so anvil and the token are cleaned up.

#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use alloy::primitives::Address;
use serde_json::{Value, json};

/// Path of the binary under test.
pub const ECROP: &str = env!("CARGO_BIN_EXE_ecrop");

/// How long a child process may take to print its endpoint.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Fails the test loudly when a tool the test needs is missing.
pub fn require_tools() {
    let anvil = std::env::var("ECROP_ANVIL").unwrap_or_else(|_| "anvil".into());
    let found = Command::new(&anvil).arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(
        found,
        "anvil not found ({anvil}); run scripts/bootstrap and put node_modules/.bin on PATH (scripts/test does)"
    );
    let module = std::env::var("ECROP_PKCS11_MODULE")
        .unwrap_or_else(|_| "/usr/lib/softhsm/libsofthsm2.so".into());
    assert!(
        Path::new(&module).exists(),
        "PKCS#11 module missing ({module}); run scripts/bootstrap, which installs softhsm2"
    );
}

/// A running process whose stdout lines are collected in the background.
pub struct Proc {
    child: Child,
    log: PathBuf,
    lines: mpsc::Receiver<String>,
    pub output: Vec<String>,
}

impl Proc {
    /// Spawns `command`; its stderr (the logs) goes to a file named in failure messages.
    pub fn spawn(mut command: Command, log: PathBuf) -> Self {
        let stderr = std::fs::File::create(&log).expect("log file");
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(stderr);
        let mut child = command.spawn().expect("spawning ecrop");
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, log, lines, output: Vec::new() }
    }

    /// The process's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for a stdout line starting with `prefix` (after trimming) and returns it.
    pub fn wait_line(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(line) = self.output.iter().find(|l| l.trim_start().starts_with(prefix)) {
                return line.trim().to_owned();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(line) => self.output.push(line),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Ok(Some(status)) = self.child.try_wait() {
                        panic!(
                            "ecrop exited ({status}) before printing {prefix:?}; stdout: {:?}; log:\n{}",
                            self.output,
                            self.log()
                        );
                    }
                    assert!(
                        Instant::now() < deadline,
                        "no {prefix:?} line within {START_TIMEOUT:?}; stdout: {:?}",
                        self.output
                    );
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().expect("wait");
                    panic!(
                        "ecrop exited ({status}) before printing {prefix:?}; stdout: {:?}; log:\n{}",
                        self.output,
                        self.log()
                    );
                }
            }
        }
    }

    /// Sends SIGTERM and waits for exit; returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        self.signal_term();
        self.wait_exit()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM without waiting.
    pub fn signal_term(&self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
    }

    /// Waits up to 15 s for the process to exit (then kills it); returns the exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        self.child.wait().ok().and_then(|s| s.code())
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.is_running() {
            self.terminate();
        }
    }
}

/// `ecrop dev` in a temporary data directory.
pub struct DevNet {
    pub proc: Proc,
    pub dir: tempfile::TempDir,
    pub endpoint: String,
    pub upstream: String,
    pub accounts: Vec<Address>,
}

impl DevNet {
    pub fn start(keys: u8) -> Self {
        Self::start_with(keys, &[])
    }

    /// `ecrop dev` with extra arguments.
    pub fn start_with(keys: u8, args: &[&str]) -> Self {
        Self::start_in(tempfile::tempdir().expect("tempdir"), keys, args)
    }

    /// Starts `ecrop dev` with its data in `dir` (a rerun on the same directory reuses the
    /// token and its keys) and extra arguments.
    pub fn start_in(dir: tempfile::TempDir, keys: u8, args: &[&str]) -> Self {
        require_tools();
        let port = ecrop::dev::free_port().expect("free port");
        let mut command = Command::new(ECROP);
        command.args(["dev", "--rpc-port", &port.to_string(), "--keys", &keys.to_string()]);
        command.args(args);
        command.arg("--data-dir").arg(dir.path().join("dev"));
        let mut proc = Proc::spawn(command, dir.path().join("dev.log"));
        let upstream = field(&proc.wait_line("upstream"), 1);
        let endpoint = field(&proc.wait_line("endpoint"), 1);
        let mut accounts = Vec::new();
        for index in 0..keys {
            let line = proc.wait_line(&format!("dev-{index} "));
            accounts.push(field(&line, 1).parse().expect("account address"));
        }
        Self { proc, dir, endpoint, upstream, accounts }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("dev")
    }

    /// Stops the network (SIGTERM) and hands back its directory, token and keys included.
    pub fn stop(self) -> tempfile::TempDir {
        let Self { mut proc, dir, .. } = self;
        proc.terminate();
        dir
    }
}

/// `ecrop serve` with the given extra arguments and environment.
pub struct Serve {
    pub proc: Proc,
    pub endpoint: String,
    /// API key of the harness's admin client (empty with [`Serve::start_raw`]).
    pub key: String,
}

/// Id of the admin client [`Serve::start`] adds.
pub const HARNESS_CLIENT: &str = "harness-admin";

/// API keys that [`call`] and [`post_raw`] send to an endpoint, by endpoint URL.
static KEYS: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

/// Makes [`call`] and [`post_raw`] authenticate to `endpoint` with `key`.
pub fn register_key(endpoint: &str, key: &str) {
    KEYS.lock().unwrap().push((endpoint.to_owned(), key.to_owned()));
}

pub fn key_for(url: &str) -> Option<String> {
    KEYS.lock()
        .unwrap()
        .iter()
        .rev()
        .find(|(e, _)| url.starts_with(e.as_str()))
        .map(|(_, k)| k.clone())
}

/// Adds a client with `role` to the clients file at `path` (created when missing) and
/// returns its new API key.
pub fn add_api_client(path: &Path, id: &str, role: &str) -> String {
    use ecrop::api::clients::{ClientEntry, ClientsFile, Credential, Stamp};
    let mut file = ClientsFile::load(path).unwrap();
    file.version = ecrop::api::clients::FILE_VERSION;
    let (key, hash) = ecrop::api::auth::generate_api_key();
    file.clients.push(ClientEntry {
        id: id.to_owned(),
        role: role.to_owned(),
        credential: Credential::ApiKey { sha256: hash.to_hex() },
        limits: None,
        created: Stamp::now(),
        revoked: None,
    });
    file.save(path).unwrap();
    key
}

impl Serve {
    /// Starts `ecrop serve` with a clients file holding an admin client whose key [`call`]
    /// and [`post_raw`] then send.
    pub fn start(args: &[&str], envs: &[(&str, &Path)], log: PathBuf) -> Self {
        let clients = log.with_extension("clients.json");
        let key = add_api_client(&clients, HARNESS_CLIENT, "admin");
        let mut all = vec!["--api-clients", clients.to_str().unwrap()];
        all.extend_from_slice(args);
        let mut serve = Self::start_raw(&all, envs, log);
        register_key(&serve.endpoint, &key);
        serve.key = key;
        serve
    }

    /// Starts `ecrop serve` with exactly these arguments (no client added).
    pub fn start_raw(args: &[&str], envs: &[(&str, &Path)], log: PathBuf) -> Self {
        let mut command = Command::new(ECROP);
        command.args(["serve", "--listen", "127.0.0.1:0"]).args(args);
        // Each sidecar gets its own store and a free ops port, so tests run side by side.
        if !args.contains(&"--store-path") {
            command.arg("--store-path").arg(log.with_extension("store"));
        }
        if !args.contains(&"--ops-listen") {
            command.args(["--ops-listen", "127.0.0.1:0"]);
        }
        for (key, value) in envs {
            command.env(key, value);
        }
        let mut proc = Proc::spawn(command, log);
        let line = proc.wait_line("ecrop listening on");
        let endpoint = field(&line, 3);
        Self { proc, endpoint, key: String::new() }
    }
}

fn field(line: &str, index: usize) -> String {
    line.split_whitespace().nth(index).unwrap_or_default().to_owned()
}

/// Posts a raw body and returns the HTTP status and the parsed JSON answer (or Null). Sends
/// the API key registered for the endpoint, if any ([`register_key`]).
pub async fn post_raw(url: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let mut request =
        reqwest::Client::new().post(url).header("content-type", "application/json").body(body);
    if let Some(key) = key_for(url) {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.expect("http post");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// One JSON-RPC call; returns the whole response object.
pub async fn call(url: &str, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    post_raw(url, body.to_string()).await.1
}

/// Output of one `ecrop` run.
pub struct CliOut {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The `ecrop` binary as an operator runs it: from the repository root, with the given
/// environment, acting as `--from`.
pub struct OperatorCli {
    envs: Vec<(String, String)>,
    /// A scratch directory for the operator's files.
    pub dir: PathBuf,
}

impl OperatorCli {
    pub fn new(envs: &[(&str, &str)], dir: &Path) -> Self {
        let envs = envs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Self { envs, dir: dir.to_owned() }
    }

    pub fn run(&self, from: &str, args: &[&str]) -> CliOut {
        let output = Command::new(ECROP)
            .args(args)
            .args(["--from", from])
            .envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .output()
            .unwrap();
        CliOut {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs a command that must succeed; returns its standard output.
    pub fn ok(&self, from: &str, args: &[&str]) -> String {
        let out = self.run(from, args);
        assert_eq!(out.code, 0, "ecrop {args:?} failed:\n{}\n{}", out.stdout, out.stderr);
        out.stdout
    }

    /// Runs a command with `--json` that must succeed; returns the parsed output.
    pub fn json(&self, from: &str, args: &[&str]) -> Value {
        let mut with_json = args.to_vec();
        with_json.push("--json");
        let text = self.ok(from, &with_json);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    /// Runs a command that must fail with status 1; returns its error output, trimmed.
    pub fn fails(&self, from: &str, args: &[&str]) -> String {
        let out = self.run(from, args);
        assert_eq!(out.code, 1, "ecrop {args:?} should fail:\n{}\n{}", out.stdout, out.stderr);
        out.stderr.trim().to_owned()
    }
}
