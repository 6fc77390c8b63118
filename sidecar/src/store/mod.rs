//! The sidecar's local database: one RocksDB directory holding the caches the sidecar rebuilds
//! from the chain (never authoritative data).
//!
//! Keys are namespaced by their owner (`perm/...` for the permissioning follower). Values are
//! JSON. A [`Batch`] is written atomically and synced to disk before [`Store::write`] returns, so
//! after a crash a reader sees either all of a batch or none of it. Every call is blocking and
//! short; async callers run it on tokio's blocking pool ([`Store::write_async`]).
//!
//! Nothing secret is ever stored here.

use std::{path::Path, sync::Arc};

use rocksdb::{DB, Options, WriteBatch, WriteOptions};
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
    db: Arc<DB>,
}

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
        Ok(Self { db: Arc::new(db) })
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
        let key = batch.first_key.unwrap_or_default();
        let mut options = WriteOptions::default();
        // The cursor must not run ahead of what survives a power loss.
        options.set_sync(true);
        self.db
            .write_opt(batch.inner, &options)
            .map_err(|e| StoreError::Io { key, reason: e.to_string() })
    }

    /// [`Store::write`] on tokio's blocking pool.
    pub async fn write_async(&self, batch: Batch) -> Result<(), StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.write(batch))
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
    fn refuses_a_second_open_of_the_same_directory() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path()).unwrap();
        let err = Store::open(dir.path()).unwrap_err();
        assert!(err.to_string().starts_with("store not openable ("), "{err}");
    }
}
