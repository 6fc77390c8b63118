//! Besu allowlist sync (optional mode): keeps a Besu node's local node and account allowlists
//! equal to the permissioning contracts, through Besu's `PERM` JSON-RPC methods, and writes the
//! matching permissions configuration file for cold starts.
//!
//! The core is pure: [`plan`] compares the desired entries (from the contracts) with what Besu
//! reports and returns the minimal additions and removals. [`Syncer::sync_once`] reads Besu's
//! lists, applies the plan with at most one add and one remove call per list, and writes the
//! file; [`run`] repeats that whenever the desired state changes, every
//! [`Syncer::resync_interval`] (Besu restarts, manual edits), and with backoff while Besu is
//! unreachable.
//!
//! Contract:
//! - Persists only the permissions file, atomically (temporary file, fsync, rename), and only
//!   when its content changes. It is written after Besu's calls and also while Besu is down, so
//!   a node started later reads the current lists.
//! - Entries Besu refuses (e.g. a host name without Besu's DNS support) are reported and logged
//!   as warnings; the others are still applied. Fixed nodes (bootnodes, static nodes) that Besu
//!   refuses to remove are reported as kept.
//! - Besu's local account allowlist has no targets: an account limited to some contracts is
//!   allowed to every target by Besu's list. The sidecar's own checks enforce targets.
//! - Logs carry entry counts and entries (enode URLs, addresses are public), never secrets.

use std::{
    collections::BTreeSet,
    io::Write,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use alloy::primitives::Address;
use tokio::sync::watch;

mod client;

use client::List;
pub use client::{BesuClient, Refusal};

use super::{
    enode::{Enode, EnodeError},
    state::PermState,
};

/// Timeout of one call to Besu: allowlist calls touch memory and one small file.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer read from Besu: 16 MiB holds ~80 000 enode URLs, far beyond any consortium.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// First wait after Besu could not be reached.
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(500);
/// Longest wait between attempts while Besu is down: short enough that a restarted node gets
/// its lists within half a minute.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Default period of a full comparison even without changes: catches Besu restarts and
/// manual edits of its lists.
pub const DEFAULT_RESYNC_INTERVAL: Duration = Duration::from_secs(60);
/// How often the driver re-plans after Besu refused a batch because an entry appeared or
/// vanished meanwhile (someone else edits the lists too).
const RACE_RETRIES: usize = 2;

/// Errors of the sync.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Besu could not be reached or timed out; retried with backoff.
    #[error("besu unreachable ({url}): {reason}")]
    Unreachable {
        /// Besu's JSON-RPC URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// Besu answered with something that is not the documented response.
    #[error("besu answered {method} with an invalid response ({url}): {reason}")]
    InvalidResponse {
        /// Besu's JSON-RPC URL.
        url: String,
        /// Method called.
        method: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The `PERM` API is not enabled on Besu's endpoint.
    #[error(
        "besu does not offer {method} ({url}); enable the PERM api with --rpc-http-api=...,PERM"
    )]
    PermApiDisabled {
        /// Besu's JSON-RPC URL.
        url: String,
        /// Method called.
        method: &'static str,
    },
    /// The allowlist is not enabled in Besu.
    #[error("besu's {list} allowlist is not enabled ({message}); start besu with {flag}")]
    AllowlistDisabled {
        /// `nodes` or `accounts`.
        list: &'static str,
        /// Besu's message.
        message: String,
        /// The Besu option that enables it.
        flag: &'static str,
    },
    /// Besu refused a call for a reason the sync cannot work around.
    #[error("besu refused {method} (code {code}): {message}")]
    Refused {
        /// Method called.
        method: &'static str,
        /// Besu's error code.
        code: i64,
        /// Besu's message.
        message: String,
        /// The kind of refusal.
        kind: Refusal,
    },
    /// Besu's list still differs after the retries (someone else keeps changing it).
    #[error("besu's {list} allowlist kept changing during the sync; will retry")]
    Unsettled {
        /// `nodes` or `accounts`.
        list: &'static str,
    },
    /// The permissions file could not be written.
    #[error("permissions file ({path}): {reason}")]
    File {
        /// File path.
        path: String,
        /// What failed.
        reason: String,
    },
}

impl SyncError {
    /// Whether waiting and trying again may help without an operator.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            SyncError::Unreachable { .. }
                | SyncError::Unsettled { .. }
                | SyncError::Refused { kind: Refusal::PersistFailure, .. }
        )
    }
}

/// The allowlists the contracts want on the node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    /// Block the lists are in force at.
    pub block: u64,
    /// Nodes, in canonical form ([`Enode::canonical`]).
    pub nodes: BTreeSet<Enode>,
    /// Accounts.
    pub accounts: BTreeSet<Address>,
    /// Registry entries whose host or port cannot form an enode URL, with the reason; they are
    /// left out of the lists.
    pub invalid: Vec<(String, String)>,
}

impl Desired {
    /// Builds the desired lists from nodes given as enodes and accounts.
    pub fn new(
        block: u64,
        nodes: impl IntoIterator<Item = Enode>,
        accounts: impl IntoIterator<Item = Address>,
    ) -> Self {
        Self {
            block,
            nodes: nodes.into_iter().map(|e| e.canonical()).collect(),
            accounts: accounts.into_iter().collect(),
            invalid: Vec::new(),
        }
    }

    /// The lists as the follower's state has them, for block `synced_block + 1`: Besu's local
    /// lists guard the pool and the next block, which is the first one a pooled transaction can
    /// land in.
    pub fn from_state(state: &PermState) -> Self {
        let block = state.synced_block().saturating_add(1);
        let mut desired = Self { block, ..Self::default() };
        for node in state.nodes_at(block) {
            let (high, low) = node.id.0.split_at(32);
            match Enode::from_parts(
                alloy::primitives::B256::from_slice(high),
                alloy::primitives::B256::from_slice(low),
                &node.host,
                node.port,
                node.discport,
            ) {
                Ok(enode) => {
                    desired.nodes.insert(enode.canonical());
                }
                Err(e) => desired
                    .invalid
                    .push((format!("node 0x{}", hex::encode(node.id)), e.to_string())),
            }
        }
        desired.accounts = state.accounts_at(block).into_iter().collect();
        desired
    }

    /// Node URLs as written to Besu, sorted.
    pub fn node_urls(&self) -> Vec<String> {
        self.nodes.iter().map(ToString::to_string).collect()
    }

    /// Account addresses as written to Besu (lower-case hex), sorted.
    pub fn account_strings(&self) -> Vec<String> {
        self.accounts.iter().map(|a| account_text(*a)).collect()
    }
}

fn account_text(account: Address) -> String {
    format!("0x{}", hex::encode(account))
}

/// What to change on Besu.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncPlan {
    /// Enode URLs to add.
    pub add_nodes: Vec<String>,
    /// Enode URLs to remove, spelled as Besu reported them.
    pub remove_nodes: Vec<String>,
    /// Accounts to add.
    pub add_accounts: Vec<String>,
    /// Accounts to remove, spelled as Besu reported them.
    pub remove_accounts: Vec<String>,
}

impl SyncPlan {
    /// Whether Besu already holds the desired lists.
    pub fn is_empty(&self) -> bool {
        self.add_nodes.is_empty()
            && self.remove_nodes.is_empty()
            && self.add_accounts.is_empty()
            && self.remove_accounts.is_empty()
    }
}

/// The minimal changes that turn Besu's lists into the desired ones. Entries are compared by
/// meaning, not spelling: node URLs in canonical form (lower-case id and host, a `discport`
/// equal to the port dropped), accounts as addresses. Entries Besu reports that cannot be
/// parsed, and second spellings of the same entry, are removed.
pub fn plan(
    desired_nodes: &BTreeSet<Enode>,
    desired_accounts: &BTreeSet<Address>,
    current_nodes: &[String],
    current_accounts: &[String],
) -> SyncPlan {
    let (keep_nodes, remove_nodes) = split_current(current_nodes, |text| {
        text.parse::<Enode>().ok().map(|e| e.canonical()).filter(|e| desired_nodes.contains(e))
    });
    let (keep_accounts, remove_accounts) = split_current(current_accounts, |text| {
        text.parse::<Address>().ok().filter(|a| desired_accounts.contains(a))
    });
    SyncPlan {
        add_nodes: desired_nodes
            .iter()
            .filter(|e| !keep_nodes.contains(*e))
            .map(ToString::to_string)
            .collect(),
        remove_nodes,
        add_accounts: desired_accounts
            .iter()
            .filter(|a| !keep_accounts.contains(*a))
            .map(|a| account_text(*a))
            .collect(),
        remove_accounts,
    }
}

/// Splits Besu's entries into the desired ones it holds (first spelling kept) and the rest.
fn split_current<K: Ord>(
    current: &[String],
    wanted: impl Fn(&str) -> Option<K>,
) -> (BTreeSet<K>, Vec<String>) {
    let mut keep = BTreeSet::new();
    let mut remove = Vec::new();
    for text in current {
        match wanted(text) {
            Some(key) if !keep.contains(&key) => {
                keep.insert(key);
            }
            _ => remove.push(text.clone()),
        }
    }
    (keep, remove)
}

/// The permissions configuration file Besu reads at start (`--permissions-nodes-config-file`,
/// `--permissions-accounts-config-file`; both may name the same file).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigFiles {
    /// File for `nodes-allowlist`.
    pub nodes: Option<PathBuf>,
    /// File for `accounts-allowlist`.
    pub accounts: Option<PathBuf>,
}

/// Renders a permissions file with the given lists (`None`: key left out), one TOML array per
/// line, as Besu documents it.
pub fn render_config(nodes: Option<&[String]>, accounts: Option<&[String]>) -> String {
    let array = |items: &[String]| {
        let quoted: Vec<String> = items.iter().map(|s| format!("\"{s}\"")).collect();
        format!("[{}]", quoted.join(","))
    };
    let mut out = String::from(
        "# Written by the ecrop sidecar from the consortium's permissioning contracts.\n\
         # Changes made here are overwritten; change the contracts through `ecrop perm propose`.\n",
    );
    if let Some(accounts) = accounts {
        out.push_str(&format!("accounts-allowlist={}\n", array(accounts)));
    }
    if let Some(nodes) = nodes {
        out.push_str(&format!("nodes-allowlist={}\n", array(nodes)));
    }
    out
}

/// Writes `content` to `path` atomically unless the file already holds it; returns whether it
/// was written.
pub fn write_atomically(path: &Path, content: &str) -> Result<bool, SyncError> {
    let fail = |e: std::io::Error| SyncError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    if std::fs::read_to_string(path).is_ok_and(|old| old == content) {
        return Ok(false);
    }
    let mut tmp_name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let mut file = std::fs::File::create(&tmp).map_err(fail)?;
    file.write_all(content.as_bytes()).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail(e)
    })?;
    // Make the rename itself durable; a directory that cannot be opened is not fatal.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(dir) = std::fs::File::open(dir)
    {
        let _ = dir.sync_all();
    }
    Ok(true)
}

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SyncReport {
    /// Block the desired lists were in force at.
    pub block: u64,
    /// Node URLs added.
    pub added_nodes: Vec<String>,
    /// Node URLs removed.
    pub removed_nodes: Vec<String>,
    /// Accounts added.
    pub added_accounts: Vec<String>,
    /// Accounts removed.
    pub removed_accounts: Vec<String>,
    /// Entries Besu refused, with its reason.
    pub rejected: Vec<(String, String)>,
    /// Fixed nodes (bootnodes, static nodes) Besu would not remove.
    pub kept_fixed: Vec<String>,
    /// Registry entries that form no valid enode URL.
    pub invalid: Vec<(String, String)>,
    /// Changing calls made (add and remove; reads are not counted).
    pub change_calls: usize,
    /// Whether the permissions file was (re)written.
    pub file_written: bool,
}

impl SyncReport {
    /// Whether anything changed on Besu.
    pub fn changed(&self) -> bool {
        self.change_calls > 0
    }
}

/// Keeps one Besu node's allowlists equal to the desired lists.
#[derive(Debug, Clone)]
pub struct Syncer {
    client: BesuClient,
    files: ConfigFiles,
    nodes: bool,
    accounts: bool,
    /// Full comparison period without changes.
    pub resync_interval: Duration,
}

impl Syncer {
    /// Syncs the lists selected by `nodes` / `accounts` on Besu at `client`, writing `files`.
    pub fn new(client: BesuClient, files: ConfigFiles, nodes: bool, accounts: bool) -> Self {
        Self { client, files, nodes, accounts, resync_interval: DEFAULT_RESYNC_INTERVAL }
    }

    /// Brings Besu's lists to `desired` and writes the permissions file (also when Besu is
    /// down, so that its next start reads the current lists).
    pub async fn sync_once(&self, desired: &Desired) -> Result<SyncReport, SyncError> {
        let mut report = SyncReport {
            block: desired.block,
            invalid: desired.invalid.clone(),
            ..Default::default()
        };
        let applied = self.apply(desired, &mut report).await;
        let written = self.write_files(desired);
        applied?;
        report.file_written = written?;
        Ok(report)
    }

    async fn apply(&self, desired: &Desired, report: &mut SyncReport) -> Result<(), SyncError> {
        if self.nodes {
            self.apply_list(List::Nodes, desired, report).await?;
        }
        if self.accounts {
            self.apply_list(List::Accounts, desired, report).await?;
        }
        Ok(())
    }

    async fn apply_list(
        &self,
        list: List,
        desired: &Desired,
        report: &mut SyncReport,
    ) -> Result<(), SyncError> {
        let empty_nodes = BTreeSet::new();
        let empty_accounts = BTreeSet::new();
        for _ in 0..=RACE_RETRIES {
            let current = self.client.get(list).await?;
            let step = match list {
                List::Nodes => plan(&desired.nodes, &empty_accounts, &current, &[]),
                List::Accounts => plan(&empty_nodes, &desired.accounts, &[], &current),
            };
            let (add, remove) = match list {
                List::Nodes => (step.add_nodes, step.remove_nodes),
                List::Accounts => (step.add_accounts, step.remove_accounts),
            };
            // Fixed nodes Besu refused earlier stay; asking again would fail the batch again.
            let remove: Vec<String> =
                remove.into_iter().filter(|r| !report.kept_fixed.contains(r)).collect();
            let raced = self.change(list, true, &add, report).await?
                | self.change(list, false, &remove, report).await?;
            if !raced {
                return Ok(());
            }
            tracing::debug!(target: "ecrop::perm", list = list.name(), "besu's list changed meanwhile; planning again");
        }
        Err(SyncError::Unsettled { list: list.name() })
    }

    /// Adds or removes `entries` in one call; on a refusal that names no entry, isolates the
    /// refused entries one by one. Returns whether the list changed under the sync's feet.
    async fn change(
        &self,
        list: List,
        add: bool,
        entries: &[String],
        report: &mut SyncReport,
    ) -> Result<bool, SyncError> {
        if entries.is_empty() {
            return Ok(false);
        }
        report.change_calls += 1;
        match self.client.change(list, add, entries).await {
            Ok(()) => {
                record(list, add, entries, report);
                Ok(false)
            }
            Err(SyncError::Refused { kind: Refusal::Existing | Refusal::Absent, .. }) => Ok(true),
            Err(SyncError::Refused {
                kind: Refusal::InvalidEntry | Refusal::FixedNode | Refusal::Duplicate,
                ..
            }) if entries.len() > 1 => {
                let mut raced = false;
                for entry in entries {
                    raced |= Box::pin(self.change(list, add, std::slice::from_ref(entry), report))
                        .await?;
                }
                Ok(raced)
            }
            Err(SyncError::Refused { kind: Refusal::FixedNode, .. }) => {
                tracing::warn!(target: "ecrop::perm", node = %entries[0], "besu keeps a fixed node (bootnode or static node) the contracts no longer list");
                report.kept_fixed.extend_from_slice(entries);
                Ok(false)
            }
            Err(SyncError::Refused {
                kind: Refusal::InvalidEntry | Refusal::Duplicate,
                message,
                method,
                ..
            }) => {
                tracing::warn!(target: "ecrop::perm", method, entry = %entries[0], %message, "besu refused an allowlist entry");
                report.rejected.push((entries[0].clone(), message));
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    fn write_files(&self, desired: &Desired) -> Result<bool, SyncError> {
        let nodes = desired.node_urls();
        let accounts = desired.account_strings();
        let nodes_path = self.files.nodes.as_ref().filter(|_| self.nodes);
        let accounts_path = self.files.accounts.as_ref().filter(|_| self.accounts);
        let mut written = false;
        match (nodes_path, accounts_path) {
            (Some(n), Some(a)) if n == a => {
                written |= write_atomically(n, &render_config(Some(&nodes), Some(&accounts)))?;
            }
            (n, a) => {
                if let Some(path) = n {
                    written |= write_atomically(path, &render_config(Some(&nodes), None))?;
                }
                if let Some(path) = a {
                    written |= write_atomically(path, &render_config(None, Some(&accounts)))?;
                }
            }
        }
        Ok(written)
    }
}

fn record(list: List, add: bool, entries: &[String], report: &mut SyncReport) {
    let target = match (list, add) {
        (List::Nodes, true) => &mut report.added_nodes,
        (List::Nodes, false) => &mut report.removed_nodes,
        (List::Accounts, true) => &mut report.added_accounts,
        (List::Accounts, false) => &mut report.removed_accounts,
    };
    target.extend_from_slice(entries);
}

/// Runs the sync until `shutdown` turns true or the desired-state channel closes: once at
/// start, then on every change of `desired`, every [`Syncer::resync_interval`], and with
/// exponential backoff ([`INITIAL_BACKOFF`] to [`MAX_BACKOFF`]) while Besu is unreachable.
/// `to_desired` maps the channel's value to the lists (`None`: nothing known yet, wait).
/// Each finished sync is published on `reports`.
pub async fn run<S, F>(
    syncer: Syncer,
    mut source: watch::Receiver<S>,
    to_desired: F,
    reports: watch::Sender<Option<Result<SyncReport, String>>>,
    mut shutdown: watch::Receiver<bool>,
) where
    S: Send + Sync,
    F: Fn(&S) -> Option<Desired>,
{
    let mut backoff = INITIAL_BACKOFF;
    tracing::info!(target: "ecrop::perm", besu = %syncer.client.url(), nodes = syncer.nodes, accounts = syncer.accounts, "besu allowlist sync started");
    loop {
        if *shutdown.borrow() {
            break;
        }
        let desired = to_desired(&source.borrow_and_update());
        let wait = match desired {
            None => syncer.resync_interval,
            Some(desired) => match syncer.sync_once(&desired).await {
                Ok(report) => {
                    backoff = INITIAL_BACKOFF;
                    log_report(&report);
                    reports.send_replace(Some(Ok(report)));
                    syncer.resync_interval
                }
                Err(e) => {
                    if e.is_transient() {
                        tracing::warn!(target: "ecrop::perm", error = %e, retry_in_ms = backoff.as_millis() as u64, "besu allowlist sync failed; retrying");
                    } else {
                        tracing::error!(target: "ecrop::perm", error = %e, "besu allowlist sync failed");
                    }
                    reports.send_replace(Some(Err(e.to_string())));
                    let wait = if e.is_transient() { backoff } else { syncer.resync_interval };
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    wait
                }
            },
        };
        tokio::select! {
            changed = source.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            _ = shutdown.changed() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
    tracing::info!(target: "ecrop::perm", "besu allowlist sync stopped");
}

fn log_report(report: &SyncReport) {
    if report.changed() || report.file_written {
        tracing::info!(
            target: "ecrop::perm",
            block = report.block,
            added_nodes = report.added_nodes.len(),
            removed_nodes = report.removed_nodes.len(),
            added_accounts = report.added_accounts.len(),
            removed_accounts = report.removed_accounts.len(),
            rejected = report.rejected.len(),
            file_written = report.file_written,
            "besu allowlists synced"
        );
    } else {
        tracing::debug!(target: "ecrop::perm", block = report.block, "besu allowlists already in sync");
    }
    for (entry, reason) in &report.invalid {
        tracing::warn!(target: "ecrop::perm", %entry, %reason, "registry entry forms no valid enode url; left out");
    }
}

/// Adapter for the follower: runs the sync on the follower's state channel
/// (`None` until the first state is read), with [`Desired::from_state`].
pub async fn run_with_follower(
    syncer: Syncer,
    state: watch::Receiver<Option<Arc<PermState>>>,
    reports: watch::Sender<Option<Result<SyncReport, String>>>,
    shutdown: watch::Receiver<bool>,
) {
    run(syncer, state, |s| s.as_deref().map(Desired::from_state), reports, shutdown).await;
}

/// Parses desired node URLs given as text (e.g. from a file), refusing malformed ones.
pub fn parse_nodes<'a>(
    urls: impl IntoIterator<Item = &'a str>,
) -> Result<BTreeSet<Enode>, (String, EnodeError)> {
    urls.into_iter()
        .map(|u| u.parse::<Enode>().map(|e| e.canonical()).map_err(|e| (u.to_owned(), e)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enode(n: u8, port: u16) -> Enode {
        format!("enode://{}@127.0.0.1:{port}", hex::encode([n; 64])).parse().unwrap()
    }

    #[test]
    fn plan_adds_missing_and_removes_extra_entries() {
        let desired: BTreeSet<Enode> = [enode(1, 30303), enode(2, 30304)].into();
        let accounts: BTreeSet<Address> = [Address::repeat_byte(1)].into();
        let current_nodes = vec![enode(2, 30304).to_string(), enode(3, 30305).to_string()];
        let current_accounts = vec![format!("0x{}", hex::encode([2u8; 20]))];
        let plan = plan(&desired, &accounts, &current_nodes, &current_accounts);
        assert_eq!(plan.add_nodes, vec![enode(1, 30303).to_string()]);
        assert_eq!(plan.remove_nodes, vec![enode(3, 30305).to_string()]);
        assert_eq!(plan.add_accounts, vec![format!("0x{}", hex::encode([1u8; 20]))]);
        assert_eq!(plan.remove_accounts, current_accounts);
    }

    #[test]
    fn plan_compares_by_meaning_not_spelling() {
        let desired: BTreeSet<Enode> = [enode(1, 30303)].into();
        let accounts: BTreeSet<Address> = [Address::repeat_byte(0xab)].into();
        let besu_nodes = vec![format!(
            "enode://{}@127.0.0.1:30303?discport=30303",
            hex::encode_upper([1u8; 64])
        )];
        let besu_accounts = vec![Address::repeat_byte(0xab).to_checksum(None)];
        assert!(plan(&desired, &accounts, &besu_nodes, &besu_accounts).is_empty());
    }

    #[test]
    fn plan_removes_unparsable_and_duplicate_entries() {
        let desired: BTreeSet<Enode> = [enode(1, 30303)].into();
        let current = vec![
            enode(1, 30303).to_string(),
            format!("{}?discport=30303", enode(1, 30303)),
            "garbage".to_owned(),
        ];
        let plan = plan(&desired, &BTreeSet::new(), &current, &["0x12".to_owned()]);
        assert!(plan.add_nodes.is_empty());
        assert_eq!(plan.remove_nodes, current[1..].to_vec());
        assert_eq!(plan.remove_accounts, vec!["0x12".to_owned()]);
    }

    #[test]
    fn a_moved_node_is_replaced() {
        let desired: BTreeSet<Enode> = [enode(1, 30400)].into();
        let plan = plan(&desired, &BTreeSet::new(), &[enode(1, 30303).to_string()], &[]);
        assert_eq!(plan.add_nodes, vec![enode(1, 30400).to_string()]);
        assert_eq!(plan.remove_nodes, vec![enode(1, 30303).to_string()]);
    }

    #[test]
    fn renders_the_documented_file_format() {
        let text = render_config(
            Some(&[enode(1, 1).to_string(), enode(2, 2).to_string()]),
            Some(&["0x0000000000000000000000000000000000000009".to_owned()]),
        );
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(parsed["nodes-allowlist"].as_array().unwrap().len(), 2);
        assert_eq!(
            parsed["accounts-allowlist"].as_array().unwrap()[0].as_str().unwrap(),
            "0x0000000000000000000000000000000000000009"
        );
        assert!(
            text.contains("accounts-allowlist=[\"0x0000000000000000000000000000000000000009\"]\n")
        );
        let nodes_only = render_config(Some(&[]), None);
        assert!(nodes_only.ends_with("nodes-allowlist=[]\n"));
        assert!(!nodes_only.contains("accounts-allowlist"));
    }

    #[test]
    fn writes_files_atomically_and_only_on_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("permissions_config.toml");
        assert!(write_atomically(&path, "a=[]\n").unwrap());
        assert!(!write_atomically(&path, "a=[]\n").unwrap());
        assert!(write_atomically(&path, "a=[\"x\"]\n").unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a=[\"x\"]\n");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
    }

    #[test]
    fn classifies_besu_messages() {
        assert_eq!(Refusal::classify("Request contains an invalid node"), Refusal::InvalidEntry);
        assert_eq!(
            Refusal::classify("Cannot add an existing node to allowlist"),
            Refusal::Existing
        );
        assert_eq!(
            Refusal::classify("Cannot remove an absent account from allowlist"),
            Refusal::Absent
        );
        assert_eq!(
            Refusal::classify(
                "Cannot remove a fixed node (bootnode or static node) from allowlist"
            ),
            Refusal::FixedNode
        );
        assert_eq!(Refusal::classify("Request contains duplicate accounts"), Refusal::Duplicate);
        assert_eq!(
            Refusal::classify(
                "The permissioning allowlist configuration file is out of sync.  The changes have been applied, but not persisted to disk"
            ),
            Refusal::FileOutOfSync
        );
    }

    #[test]
    fn desired_lists_follow_the_state_at_the_next_block() {
        use crate::permissioning::state::{
            AccountEntry, AccountSpan, Contracts, NodeEntry, NodeInfo, OPEN, Span,
        };
        let contracts = Contracts {
            governance: Address::repeat_byte(0xf1),
            node_registry: Address::repeat_byte(0xf2),
            account_allowlist: Address::repeat_byte(0xf3),
            validator_set: Address::repeat_byte(0xf4),
        };
        let owner = Address::repeat_byte(0xee);
        let mut state = PermState::new(contracts, 1);
        let node = |n: u8, host: &str, spans: Vec<Span>| NodeEntry {
            info: NodeInfo {
                id: alloy::primitives::B512::repeat_byte(n),
                host: host.to_owned(),
                port: 30303,
                discport: 30303,
                owner,
                sidecar_endpoint: String::new(),
                payload_key: alloy::primitives::B256::ZERO,
            },
            spans,
        };
        // In force from 11, ending at 11, and a host no enode URL can carry.
        state
            .insert_node(node(1, "10.0.0.1", vec![Span { activation: 11, deactivation: OPEN }]))
            .unwrap();
        state
            .insert_node(node(2, "10.0.0.2", vec![Span { activation: 1, deactivation: 11 }]))
            .unwrap();
        state
            .insert_node(node(3, "bad_host", vec![Span { activation: 1, deactivation: OPEN }]))
            .unwrap();
        state
            .insert_account(AccountEntry {
                account: Address::repeat_byte(1),
                owner,
                spans: vec![AccountSpan {
                    span: Span { activation: 1, deactivation: OPEN },
                    targets: vec![Address::repeat_byte(9)],
                }],
            })
            .unwrap();
        state.set_synced(10, alloy::primitives::B256::ZERO);

        let desired = Desired::from_state(&state);

        assert_eq!(desired.block, 11);
        assert_eq!(
            desired.node_urls(),
            vec![format!("enode://{}@10.0.0.1:30303", hex::encode([1u8; 64]))]
        );
        assert_eq!(desired.accounts, [Address::repeat_byte(1)].into());
        assert_eq!(desired.invalid.len(), 1);
        assert!(
            desired.invalid[0].1.starts_with("invalid host name (bad_host)"),
            "{:?}",
            desired.invalid
        );
    }
}
