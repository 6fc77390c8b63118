//! The sidecar's local database: one RocksDB directory holding the caches the sidecar rebuilds
//! from the chain, and the audit log (`crate::audit`), which is the one record kept only here.
//!
//! Keys are namespaced by their owner (`perm/...` for the permissioning follower, `audit/...`
//! for the audit log). Values are
//! JSON. A [`Batch`] is written atomically and synced to disk before [`Store::write`] returns, so
//! after a crash a reader sees either all of a batch or none of it. Every call is blocking and
//! short; async callers run it on tokio's blocking pool ([`Store::write_async`]).
//!
//! Nothing secret is ever stored here.
//!
//! Readers in other processes (`ecrop audit`) open the directory as a RocksDB secondary
//! instance ([`Store::open_secondary`]) while the sidecar holds it: they see the database as of
//! their last [`Store::catch_up`], batch by batch, and never write.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use rocksdb::{DB, Direction, IteratorMode, Options, WriteBatch, WriteOptions};
use serde::{Serialize, de::DeserializeOwned};

/// Errors of the local database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// RocksDB could not open the directory (locked by another process, corrupt, no access).
    #[error("store not openable ({path}): {reason}")]
    Open {
        /// Directory.
        path: String,
        /// RocksDB's message.
        reason: String,
    },
    /// A read or write failed.
    #[error("store i/o failed ({key}): {reason}")]
    Io {
        /// Key concerned (the first key of a batch).
        key: String,
        /// RocksDB's message.
        reason: String,
    },
    /// A stored value does not decode, or a value does not encode.
    #[error("store value invalid ({key}): {reason}")]
    Codec {
        /// Key concerned.
        key: String,
        /// Serde's message.
        reason: String,
    },
    /// The blocking task running a write was cancelled or panicked.
    #[error("store task failed: {0}")]
    Task(String),
}

/// A handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    // Declared first: the database closes before its secondary directory is removed.
    db: Arc<DB>,
    secondary: Option<Arc<SecondaryDir>>,
}

/// The private directory of a secondary instance; removed when the last handle goes.
#[derive(Debug)]
struct SecondaryDir(PathBuf);

impl Drop for SecondaryDir {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_dir_all(&self.0) {
            tracing::debug!(target: "ecrop::store", dir = %self.0.display(), %error, "secondary directory not removed");
        }
    }
}

/// One key and its raw value, as [`Store::scan`] yields them.
pub type RawEntry = (String, Box<[u8]>);

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.db.path()).finish()
    }
}

/// Writes collected to apply atomically.
#[derive(Default)]
pub struct Batch {
    inner: WriteBatch,
    first_key: Option<String>,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch").field("writes", &self.inner.len()).finish()
    }
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to the JSON encoding of `value`.
    pub fn put_json<T: Serialize + ?Sized>(
        &mut self,
        key: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| StoreError::Codec { key: key.to_owned(), reason: e.to_string() })?;
        self.inner.put(key.as_bytes(), bytes);
        self.first_key.get_or_insert_with(|| key.to_owned());
        Ok(())
    }

    /// Deletes `key`.
    pub fn delete(&mut self, key: &str) {
        self.inner.delete(key.as_bytes());
        self.first_key.get_or_insert_with(|| key.to_owned());
    }

    /// Whether the batch holds no write.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
}

impl Store {
    /// Opens (creating if needed) the database in directory `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut options = Options::default();
        options.create_if_missing(true);
        let db = DB::open(&options, path).map_err(|e| StoreError::Open {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(Self { db: Arc::new(db), secondary: None })
    }

    /// Opens the existing database in `path` read-only, as a secondary instance, so that it
    /// can be read while another process (the sidecar) holds it; caught up once. The
    /// instance's own files go to a fresh temporary directory, removed when the last handle
    /// is dropped.
    pub fn open_secondary(path: &Path) -> Result<Self, StoreError> {
        let open_error =
            |reason: String| StoreError::Open { path: path.display().to_string(), reason };
        if !path.join("CURRENT").is_file() {
            return Err(open_error("no database in this directory".into()));
        }
        let dir = std::env::temp_dir().join(format!(
            "ecrop-store-secondary-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| open_error(format!("secondary directory ({}): {e}", dir.display())))?;
        let guard = Arc::new(SecondaryDir(dir));
        let mut options = Options::default();
        // A secondary instance must be able to keep every table file open.
        options.set_max_open_files(-1);
        let db = DB::open_as_secondary(&options, path, &guard.0)
            .map_err(|e| open_error(e.to_string()))?;
        let store = Self { db: Arc::new(db), secondary: Some(guard) };
        store.catch_up()?;
        Ok(store)
    }

    /// Makes a secondary instance see what the primary has written since; nothing to do on a
    /// primary.
    pub fn catch_up(&self) -> Result<(), StoreError> {
        if self.secondary.is_none() {
            return Ok(());
        }
        self.db.try_catch_up_with_primary().map_err(|e| StoreError::Io {
            key: String::from("(catch up with primary)"),
            reason: e.to_string(),
        })
    }

    /// Reads `key` undecoded; `None` when absent.
    pub fn get_raw(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.db
            .get(key.as_bytes())
            .map_err(|e| StoreError::Io { key: key.to_owned(), reason: e.to_string() })
    }

    /// Keys starting with `prefix`, from `from` on (inclusive), in byte order, with their raw
    /// values; a read error ends the iteration after it is yielded.
    pub fn scan<'a>(
        &'a self,
        prefix: &'a str,
        from: &str,
    ) -> impl Iterator<Item = Result<RawEntry, StoreError>> + 'a {
        let start = if from < prefix { prefix } else { from };
        let mut failed = false;
        self.db.iterator(IteratorMode::From(start.as_bytes(), Direction::Forward)).map_while(
            move |item| {
                if failed {
                    return None;
                }
                match item {
                    Ok((key, value)) => {
                        if !key.starts_with(prefix.as_bytes()) {
                            return None;
                        }
                        Some(Ok((String::from_utf8_lossy(&key).into_owned(), value)))
                    }
                    Err(e) => {
                        failed = true;
                        Some(Err(StoreError::Io { key: prefix.to_owned(), reason: e.to_string() }))
                    }
                }
            },
        )
    }

    /// The last key starting with `prefix` (in byte order) and its raw value.
    pub fn last_with_prefix(&self, prefix: &str) -> Result<Option<RawEntry>, StoreError> {
        let io =
            |e: rocksdb::Error| StoreError::Io { key: prefix.to_owned(), reason: e.to_string() };
        let mut upper = prefix.as_bytes().to_vec();
        // Every key with the prefix sorts below the prefix with its last byte raised; a prefix
        // ending in 0xff has no such bound and is scanned from the end.
        let mode = match upper.last_mut() {
            Some(last) if *last < u8::MAX => {
                *last += 1;
                IteratorMode::From(&upper, Direction::Reverse)
            }
            _ => IteratorMode::End,
        };
        for item in self.db.iterator(mode) {
            let (key, value) = item.map_err(io)?;
            if key.starts_with(prefix.as_bytes()) {
                return Ok(Some((String::from_utf8_lossy(&key).into_owned(), value)));
            }
            if key.as_ref() < prefix.as_bytes() {
                return Ok(None);
            }
        }
        Ok(None)
    }

    /// Reads and decodes `key`; `None` when absent.
    pub fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        let Some(bytes) = self
            .db
            .get_pinned(key.as_bytes())
            .map_err(|e| StoreError::Io { key: key.to_owned(), reason: e.to_string() })?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Codec { key: key.to_owned(), reason: e.to_string() })
    }

    /// Applies `batch` atomically and syncs it to disk.
    pub fn write(&self, batch: Batch) -> Result<(), StoreError> {
        // The cursor must not run ahead of what survives a power loss.
        self.write_with(batch, true)
    }

    /// Applies `batch` atomically; with `sync`, waits until it is on disk, else until the
    /// operating system has it (it then survives the process, not a power loss, until the
    /// next synced write, which syncs it too).
    pub fn write_with(&self, batch: Batch, sync: bool) -> Result<(), StoreError> {
        let key = batch.first_key.unwrap_or_default();
        let mut options = WriteOptions::default();
        options.set_sync(sync);
        self.db
            .write_opt(batch.inner, &options)
            .map_err(|e| StoreError::Io { key, reason: e.to_string() })
    }

    /// [`Store::write`] on tokio's blocking pool.
    pub async fn write_async(&self, batch: Batch) -> Result<(), StoreError> {
        self.write_with_async(batch, true).await
    }

    /// [`Store::write_with`] on tokio's blocking pool.
    pub async fn write_with_async(&self, batch: Batch, sync: bool) -> Result<(), StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.write_with(batch, sync))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_is_read_back_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let mut batch = Batch::new();
            batch.put_json("a/one", &1u64).unwrap();
            batch.put_json("a/two", &"two").unwrap();
            store.write(batch).unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.get_json::<u64>("a/one").unwrap(), Some(1));
        assert_eq!(store.get_json::<String>("a/two").unwrap().as_deref(), Some("two"));
        assert_eq!(store.get_json::<u64>("a/three").unwrap(), None);
        let err = store.get_json::<u64>("a/two").unwrap_err();
        assert!(err.to_string().starts_with("store value invalid (a/two): "), "{err}");
    }

    #[test]
    fn scans_and_finds_the_last_key_of_a_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut batch = Batch::new();
        for key in ["a/1", "b/1", "b/2", "b/3", "c/1"] {
            batch.put_json(key, &key).unwrap();
        }
        store.write(batch).unwrap();
        let keys: Vec<String> = store.scan("b/", "").map(|r| r.unwrap().0).collect();
        assert_eq!(keys, ["b/1", "b/2", "b/3"]);
        let keys: Vec<String> = store.scan("b/", "b/2").map(|r| r.unwrap().0).collect();
        assert_eq!(keys, ["b/2", "b/3"]);
        assert_eq!(store.last_with_prefix("b/").unwrap().unwrap().0, "b/3");
        assert_eq!(store.last_with_prefix("c/").unwrap().unwrap().0, "c/1");
        assert!(store.last_with_prefix("d/").unwrap().is_none());
        assert!(store.last_with_prefix("0/").unwrap().is_none());
        assert_eq!(store.get_raw("a/1").unwrap().unwrap(), b"\"a/1\"");
    }

    #[test]
    fn a_secondary_reads_while_the_primary_writes() {
        let dir = tempfile::tempdir().unwrap();
        let primary = Store::open(dir.path()).unwrap();
        let mut batch = Batch::new();
        batch.put_json("k/1", &1u64).unwrap();
        primary.write(batch).unwrap();

        let secondary = Store::open_secondary(dir.path()).unwrap();
        assert_eq!(secondary.get_json::<u64>("k/1").unwrap(), Some(1));
        let mut batch = Batch::new();
        batch.put_json("k/2", &2u64).unwrap();
        primary.write(batch).unwrap();
        assert_eq!(secondary.get_json::<u64>("k/2").unwrap(), None);
        secondary.catch_up().unwrap();
        assert_eq!(secondary.get_json::<u64>("k/2").unwrap(), Some(2));

        let missing = dir.path().join("nothing");
        let err = Store::open_secondary(&missing).unwrap_err();
        assert!(err.to_string().ends_with("no database in this directory"), "{err}");
    }

    #[test]
    fn refuses_a_second_open_of_the_same_directory() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path()).unwrap();
        let err = Store::open(dir.path()).unwrap_err();
        assert!(err.to_string().starts_with("store not openable ("), "{err}");
    }
}
