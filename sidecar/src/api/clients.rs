//! The clients file: who may call the endpoint, with which role and credential.
//!
//! JSON, written atomically (a temporary file in the same directory, then a rename; mode
//! 0600). An API key is stored only as its SHA-256 hash; a JWT client only with its public key.
//! Revocation keeps the entry, with who revoked it and when. The running sidecar reloads the
//! file when it changes ([`ClientStore::current`] checks at most once a second); a file that
//! does not parse on reload is logged and the last good set stays in force.

use std::{
    collections::BTreeMap,
    io::Write,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant, SystemTime},
};

use serde::{Deserialize, Serialize};

use super::{
    auth::{ApiKeyHash, JwtAlg, JwtKey},
    roles::{LimitsFile, valid_id},
};

/// Default path of the clients file, relative to the working directory.
pub const DEFAULT_CLIENTS_FILE: &str = ".ecrop/api-clients.json";
/// Version of the clients file format written.
pub const FILE_VERSION: u32 = 1;
/// Largest clients file read.
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// How often the running sidecar looks at the file's metadata, at most.
pub const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Errors reading or writing the clients file.
#[derive(Debug, thiserror::Error)]
pub enum ClientsError {
    /// The file could not be read or written.
    #[error("clients file ({path}): {source}")]
    Io {
        /// File path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not a valid clients file.
    #[error("clients file invalid ({path}): {reason}")]
    Invalid {
        /// File path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// When and by whom something was done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stamp {
    /// UTC time, RFC 3339.
    pub at: String,
    /// Operating-system user who did it.
    pub by: String,
}

impl Stamp {
    /// Now, by the current operating-system user.
    pub fn now() -> Self {
        Self { at: crate::clock::now_rfc3339(), by: os_user() }
    }
}

/// How a client proves who it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Credential {
    /// An API key, stored as the hex SHA-256 of the key.
    ApiKey {
        /// Hex SHA-256 of the key.
        sha256: String,
    },
    /// JWTs signed with the private key of this public key; the token's `sub` is the client id.
    Jwt {
        /// Algorithm the tokens must use.
        alg: JwtAlg,
        /// Public key, PEM (`-----BEGIN PUBLIC KEY-----`).
        public_key_pem: String,
    },
}

impl Credential {
    /// Short name for listings: `api-key` or `jwt RS256`.
    pub fn kind(&self) -> String {
        match self {
            Self::ApiKey { .. } => "api-key".to_owned(),
            Self::Jwt { alg, .. } => format!("jwt {alg}"),
        }
    }
}

/// One client of the clients file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientEntry {
    /// Client id (letters, digits, `-`, `_`, `.`).
    pub id: String,
    /// Role in the API permission matrix.
    pub role: String,
    /// Credential.
    pub credential: Credential,
    /// Limits overriding the role's for this client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsFile>,
    /// Creation.
    pub created: Stamp,
    /// Revocation; a revoked client is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<Stamp>,
}

impl ClientEntry {
    /// Whether the client may authenticate.
    pub fn active(&self) -> bool {
        self.revoked.is_none()
    }
}

/// The clients file's content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientsFile {
    /// Format version ([`FILE_VERSION`]).
    pub version: u32,
    /// Clients, in order of creation.
    pub clients: Vec<ClientEntry>,
}

impl ClientsFile {
    /// Reads `path`; a missing file is an empty set.
    pub fn load(path: &Path) -> Result<Self, ClientsError> {
        let io = |source| ClientsError::Io { path: path.to_owned(), source };
        let text = match crate::onchain::files::read_text(path, MAX_FILE_BYTES) {
            Ok(text) => text,
            Err(_) if !path.exists() => return Ok(Self { version: FILE_VERSION, clients: vec![] }),
            Err(reason) => {
                return Err(io(std::io::Error::other(reason)));
            }
        };
        Self::parse(&text).map_err(|reason| ClientsError::Invalid { path: path.to_owned(), reason })
    }

    /// Parses and checks the file's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: Self = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if file.version != FILE_VERSION {
            return Err(format!(
                "version {} not supported (expected {FILE_VERSION})",
                file.version
            ));
        }
        let mut seen = std::collections::HashSet::new();
        let mut hashes = std::collections::HashSet::new();
        for client in &file.clients {
            if !valid_id(&client.id) {
                return Err(format!("invalid client id ({})", client.id));
            }
            if !seen.insert(client.id.as_str()) {
                return Err(format!("client id ({}) appears twice", client.id));
            }
            match &client.credential {
                Credential::ApiKey { sha256 } => {
                    ApiKeyHash::from_hex(sha256).ok_or_else(|| {
                        format!("client {}: sha256 is not 64 hex digits", client.id)
                    })?;
                    // One key must name one client, or whoever holds it could act as either.
                    if !hashes.insert(sha256.to_ascii_lowercase()) {
                        return Err(format!(
                            "client {}: its API key hash is also another client's",
                            client.id
                        ));
                    }
                }
                Credential::Jwt { alg, public_key_pem } => {
                    JwtKey::new(*alg, public_key_pem)
                        .map_err(|e| format!("client {}: {e}", client.id))?;
                }
            }
            if let Some(limits) = &client.limits {
                limits.check(&format!("client {} limits", client.id)).map_err(|e| e.to_string())?;
            }
        }
        Ok(file)
    }

    /// Writes the file atomically with mode 0600, creating its directory when missing.
    pub fn save(&self, path: &Path) -> Result<(), ClientsError> {
        let io = |source| ClientsError::Io { path: path.to_owned(), source };
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let text = serde_json::to_string_pretty(self).map_err(|e| io(std::io::Error::other(e)))?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            use std::os::unix::fs::OpenOptionsExt;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&temp)?;
            file.write_all(text.as_bytes())?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            std::fs::rename(&temp, path)?;
            if let Ok(dir) = std::fs::File::open(&dir) {
                let _ = dir.sync_all();
            }
            Ok(())
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&temp);
            io(e)
        })
    }

    /// The client called `id`.
    pub fn get(&self, id: &str) -> Option<&ClientEntry> {
        self.clients.iter().find(|c| c.id == id)
    }

    /// Changes from `self` (the old set) to `new`, in the order of `new`'s entries.
    pub fn changes_to(&self, new: &ClientsFile) -> Vec<ClientChange> {
        let old: BTreeMap<&str, &ClientEntry> =
            self.clients.iter().map(|c| (c.id.as_str(), c)).collect();
        let mut changes = Vec::new();
        for entry in &new.clients {
            let change = match old.get(entry.id.as_str()) {
                None if entry.active() => Some((ChangeKind::Added, Some(entry.created.clone()))),
                None => None,
                Some(before) if before.active() && !entry.active() => {
                    Some((ChangeKind::Revoked, entry.revoked.clone()))
                }
                Some(before) if *before != entry => Some((ChangeKind::Changed, None)),
                Some(_) => None,
            };
            if let Some((kind, stamp)) = change {
                changes.push(ClientChange {
                    kind,
                    client: entry.id.clone(),
                    role: entry.role.clone(),
                    stamp,
                });
            }
        }
        for (id, before) in &old {
            if new.get(id).is_none() {
                changes.push(ClientChange {
                    kind: ChangeKind::Removed,
                    client: (*id).to_owned(),
                    role: before.role.clone(),
                    stamp: None,
                });
            }
        }
        changes
    }
}

/// What changed about a client between two versions of the clients file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A new active client.
    Added,
    /// An active client was revoked.
    Revoked,
    /// An entry was edited by hand (role, credential or limits).
    Changed,
    /// An entry disappeared (edited by hand; `revoke` keeps entries).
    Removed,
}

/// One change seen when the running sidecar reloaded the clients file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientChange {
    /// What happened.
    pub kind: ChangeKind,
    /// Client id.
    pub client: String,
    /// Client's role (after the change; before it for removals).
    pub role: String,
    /// Who did it and when, as the file records it (creation for added, revocation for
    /// revoked; none for hand edits).
    pub stamp: Option<Stamp>,
}

/// Callback told about the changes of each reload (e.g. to write them to the audit log).
pub type ClientChanges = Arc<dyn Fn(&[ClientChange]) + Send + Sync>;

/// The clients in force, with their credentials ready to check.
#[derive(Debug, Default)]
pub struct ClientSet {
    /// The file as loaded.
    pub file: ClientsFile,
    pub(super) api_keys: Vec<(ApiKeyHash, usize)>,
    pub(super) jwt: BTreeMap<String, (JwtKey, usize)>,
    /// Active clients by id, for the check every call makes.
    active: std::collections::HashMap<String, usize>,
}

impl ClientSet {
    /// Prepares the credentials of the active clients of `file`.
    pub fn new(file: ClientsFile) -> Self {
        let mut api_keys = Vec::new();
        let mut jwt = BTreeMap::new();
        let mut active = std::collections::HashMap::new();
        for (index, client) in file.clients.iter().enumerate().filter(|(_, c)| c.active()) {
            active.insert(client.id.clone(), index);
            match &client.credential {
                Credential::ApiKey { sha256 } => {
                    if let Some(hash) = ApiKeyHash::from_hex(sha256) {
                        api_keys.push((hash, index));
                    }
                }
                Credential::Jwt { alg, public_key_pem } => {
                    if let Ok(key) = JwtKey::new(*alg, public_key_pem) {
                        jwt.insert(client.id.clone(), (key, index));
                    }
                }
            }
        }
        Self { file, api_keys, jwt, active }
    }

    /// The entry at `index` of the file.
    pub fn entry(&self, index: usize) -> Option<&ClientEntry> {
        self.file.clients.get(index)
    }

    /// The client called `id`, when it is active (present and not revoked).
    pub fn active(&self, id: &str) -> Option<&ClientEntry> {
        self.active.get(id).and_then(|index| self.entry(*index))
    }
}

/// Identity of a version of the file: changes with every atomic rewrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Version {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn version(path: &Path) -> Option<Version> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some(Version { modified: meta.modified().ok(), len: meta.len(), inode: meta.ino() })
}

struct Watch {
    checked: Instant,
    version: Option<Version>,
}

/// The clients file as the running sidecar sees it, reloaded when it changes.
pub struct ClientStore {
    path: PathBuf,
    current: RwLock<Arc<ClientSet>>,
    watch: Mutex<Watch>,
    on_change: Option<ClientChanges>,
}

impl std::fmt::Debug for ClientStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientStore").field("path", &self.path).finish_non_exhaustive()
    }
}

impl ClientStore {
    /// Loads `path` (a missing file is an empty set; a malformed one is an error).
    pub fn open(path: &Path, on_change: Option<ClientChanges>) -> Result<Self, ClientsError> {
        let version = version(path);
        let file = ClientsFile::load(path)?;
        Ok(Self {
            path: path.to_owned(),
            current: RwLock::new(Arc::new(ClientSet::new(file))),
            watch: Mutex::new(Watch { checked: Instant::now(), version }),
            on_change,
        })
    }

    /// A store of no clients and no file (dev mode without a clients file).
    pub fn empty() -> Self {
        Self {
            path: PathBuf::new(),
            current: RwLock::new(Arc::new(ClientSet::default())),
            watch: Mutex::new(Watch { checked: Instant::now(), version: None }),
            on_change: None,
        }
    }

    /// Path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The clients in force, reloading the file first when it changed since the last look
    /// (which is at most [`RELOAD_CHECK_INTERVAL`] ago).
    pub fn current(&self) -> Arc<ClientSet> {
        self.check(false);
        self.snapshot()
    }

    /// The clients in force, without looking at the file.
    pub fn snapshot(&self) -> Arc<ClientSet> {
        match self.current.read() {
            Ok(set) => set.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Looks at the file (now when `force`, else when the interval has passed) and reloads it
    /// when it changed. Returns the changes applied.
    pub fn check(&self, force: bool) -> Vec<ClientChange> {
        if self.path.as_os_str().is_empty() {
            return Vec::new();
        }
        // Without `force`, a request never waits for another one's look at the file.
        let watch = if force { self.watch.lock().ok() } else { self.watch.try_lock().ok() };
        let Some(mut watch) = watch else {
            return Vec::new();
        };
        if !force && watch.checked.elapsed() < RELOAD_CHECK_INTERVAL {
            return Vec::new();
        }
        watch.checked = Instant::now();
        let now = version(&self.path);
        if now == watch.version {
            return Vec::new();
        }
        let file = match ClientsFile::load(&self.path) {
            Ok(file) => file,
            Err(error) => {
                // Remember this version so the error is logged once per change of the file.
                watch.version = now;
                tracing::error!(target: "ecrop::api", %error, "clients file not reloaded; the last good set stays in force");
                return Vec::new();
            }
        };
        watch.version = now;
        if now.is_none() {
            tracing::warn!(target: "ecrop::api", path = %self.path.display(), "clients file is gone: every client is refused until it is back");
        }
        let old = self.snapshot();
        let changes = old.file.changes_to(&file);
        let set = Arc::new(ClientSet::new(file));
        match self.current.write() {
            Ok(mut current) => *current = set,
            Err(poisoned) => *poisoned.into_inner() = set,
        }
        drop(watch);
        for change in &changes {
            tracing::info!(target: "ecrop::api", client = %change.client, role = %change.role, kind = ?change.kind, by = change.stamp.as_ref().map(|s| s.by.as_str()), "api client changed");
        }
        tracing::info!(target: "ecrop::api", path = %self.path.display(), changes = changes.len(), "clients file reloaded");
        if let (Some(hook), false) = (&self.on_change, changes.is_empty()) {
            hook(&changes);
        }
        changes
    }
}

/// The operating-system user running this process: `$USER`, else `$LOGNAME`, else `uid N`.
pub fn os_user() -> String {
    use std::os::unix::fs::MetadataExt;
    for var in ["USER", "LOGNAME"] {
        if let Ok(name) = std::env::var(var)
            && !name.is_empty()
            && name.len() <= 64
            && name.chars().all(|c| c.is_ascii_graphic())
        {
            return name;
        }
    }
    match std::fs::metadata("/proc/self") {
        Ok(meta) => format!("uid {}", meta.uid()),
        Err(_) => "unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str) -> ClientEntry {
        ClientEntry {
            id: id.to_owned(),
            role: "reader".to_owned(),
            credential: Credential::ApiKey {
                sha256: super::super::auth::ApiKeyHash::of(id).to_hex(),
            },
            limits: None,
            created: Stamp { at: "2026-01-01T00:00:00Z".into(), by: "alice".into() },
            revoked: None,
        }
    }

    #[test]
    fn round_trips_and_refuses_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/clients.json");
        let file = ClientsFile { version: FILE_VERSION, clients: vec![entry("a"), entry("b")] };
        file.save(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(ClientsFile::load(&path).unwrap(), file);
        assert!(ClientsFile::load(&dir.path().join("none.json")).unwrap().clients.is_empty());

        for (bad, needle) in [
            ("{", "EOF"),
            (r#"{"version":2,"clients":[]}"#, "version 2"),
            (r#"{"version":1,"clients":[],"x":1}"#, "unknown field"),
        ] {
            let err = ClientsFile::parse(bad).unwrap_err();
            assert!(err.contains(needle), "{bad}: {err}");
        }
        let twice = ClientsFile { version: 1, clients: vec![entry("a"), entry("a")] };
        let err = ClientsFile::parse(&serde_json::to_string(&twice).unwrap()).unwrap_err();
        assert!(err.contains("appears twice"), "{err}");
        let (a, mut b) = (entry("a"), entry("b"));
        b.credential = a.credential.clone();
        let shared = ClientsFile { version: 1, clients: vec![a, b] };
        let err = ClientsFile::parse(&serde_json::to_string(&shared).unwrap()).unwrap_err();
        assert!(err.contains("client b: its API key hash is also another client's"), "{err}");
        let mut odd = entry("a b");
        let err = ClientsFile::parse(
            &serde_json::to_string(&ClientsFile { version: 1, clients: vec![odd.clone()] })
                .unwrap(),
        )
        .unwrap_err();
        assert!(err.contains("invalid client id"), "{err}");
        odd.id = "a".into();
        odd.credential = Credential::ApiKey { sha256: "xyz".into() };
        let err = ClientsFile::parse(
            &serde_json::to_string(&ClientsFile { version: 1, clients: vec![odd] }).unwrap(),
        )
        .unwrap_err();
        assert!(err.contains("64 hex digits"), "{err}");
    }

    #[test]
    fn changes_name_added_revoked_changed_removed() {
        let old = ClientsFile { version: 1, clients: vec![entry("a"), entry("b"), entry("c")] };
        let mut new = old.clone();
        new.clients[0].revoked = Some(Stamp { at: "t".into(), by: "bob".into() });
        new.clients[1].role = "admin".into();
        new.clients.remove(2);
        new.clients.push(entry("d"));
        let changes = old.changes_to(&new);
        let kinds: Vec<_> = changes.iter().map(|c| (c.kind, c.client.as_str())).collect();
        assert_eq!(
            kinds,
            [
                (ChangeKind::Revoked, "a"),
                (ChangeKind::Changed, "b"),
                (ChangeKind::Added, "d"),
                (ChangeKind::Removed, "c")
            ]
        );
        assert_eq!(changes[0].stamp.as_ref().unwrap().by, "bob");
    }

    #[test]
    fn store_reloads_and_keeps_the_last_good_set() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clients.json");
        ClientsFile { version: 1, clients: vec![entry("a")] }.save(&path).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let hook: ClientChanges = {
            let seen = seen.clone();
            Arc::new(move |changes: &[ClientChange]| {
                seen.lock().unwrap().extend_from_slice(changes)
            })
        };
        let store = ClientStore::open(&path, Some(hook)).unwrap();
        assert_eq!(store.current().file.clients.len(), 1);

        ClientsFile { version: 1, clients: vec![entry("a"), entry("b")] }.save(&path).unwrap();
        let changes = store.check(true);
        assert_eq!(changes.len(), 1);
        assert_eq!(store.snapshot().file.clients.len(), 2);
        assert_eq!(seen.lock().unwrap()[0].client, "b");

        std::fs::write(&path, "{ not json").unwrap();
        assert!(store.check(true).is_empty());
        assert_eq!(store.snapshot().file.clients.len(), 2, "last good set kept");

        std::fs::write(&path, "{ not json").unwrap();
        let err = ClientStore::open(&path, None).unwrap_err().to_string();
        assert!(err.starts_with("clients file invalid ("), "{err}");
    }
}
