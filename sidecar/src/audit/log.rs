//! The writer: one task owns the chain's end and commits queued entries in groups.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicU64, Ordering},
};

use tokio::sync::{mpsc, oneshot};

use super::{
    AuditError,
    entry::{ENTRY_PREFIX, Entry, GENESIS_HASH, HEAD_KEY, Head, NewEntry, entry_key, key_seq},
};
use crate::store::{Batch, Store};

/// Most entries queued before [`AuditLog::record`] waits and [`AuditLog::record_detached`]
/// drops (with an error log): a burst of several thousand requests is absorbed while memory
/// stays bounded (entries are at most a few KiB).
pub const QUEUE_CAPACITY: usize = 8192;
/// Most entries committed in one batch: large enough that a burst costs a few syncs, small
/// enough that one batch stays well under a megabyte.
pub const MAX_GROUP: usize = 512;

type Reply = oneshot::Sender<Result<u64, AuditError>>;

enum Job {
    /// An entry, who waits for it, and whether it must be synced before the answer.
    Record(Box<NewEntry>, Option<Reply>, bool),
    Close(oneshot::Sender<()>),
}

/// A handle to the audit log; cheap to clone. See the module documentation of
/// [`crate::audit`].
#[derive(Clone, Debug)]
pub struct AuditLog {
    jobs: mpsc::Sender<Job>,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    /// False after a failed write, until a write succeeds again, and once closed.
    writable: AtomicBool,
    /// Detached entries dropped because the queue was full or the log closed.
    dropped: AtomicU64,
}

/// The writer's view of the chain's end.
#[derive(Debug, Clone)]
struct Tip {
    seq: u64,
    hash: String,
    time_ms: i64,
}

impl AuditLog {
    /// Opens the log in `store`, continuing the chain from its head, and starts the writer.
    ///
    /// Refuses ([`AuditError::BrokenChain`]) when the head and the last stored entry disagree:
    /// a head without entries, entries without a head, a head naming another seq or hash than
    /// the last entry, or a last entry whose content no longer matches its hash. Atomic
    /// batches make these impossible after a crash; they mean the store was edited. Only the
    /// end is checked here; `ecrop audit verify` walks the whole chain.
    pub async fn open(store: Store) -> Result<Self, AuditError> {
        let reader = store.clone();
        let tip = tokio::task::spawn_blocking(move || read_tip(&reader))
            .await
            .map_err(|e| AuditError::Write(format!("reading the head: {e}")))??;
        tracing::info!(target: "ecrop::audit", seq = tip.seq, head = %tip.hash, "audit log open");

        let (jobs, queue) = mpsc::channel(QUEUE_CAPACITY);
        let shared =
            Arc::new(Shared { writable: AtomicBool::new(true), dropped: AtomicU64::new(0) });
        tokio::spawn(writer(store, tip, queue, shared.clone()));
        Ok(Self { jobs, shared })
    }

    /// Appends `entry`; returns its seq once it is on disk.
    pub async fn record(&self, entry: NewEntry) -> Result<u64, AuditError> {
        self.append(entry, true).await
    }

    /// Appends `entry`; returns its seq once the operating system has it: it survives the
    /// process dying, and is on disk with the next [`AuditLog::record`] (a power loss before
    /// that loses it). For the announcement of a signature, whose answer follows synced.
    pub async fn record_unsynced(&self, entry: NewEntry) -> Result<u64, AuditError> {
        self.append(entry, false).await
    }

    async fn append(&self, entry: NewEntry, sync: bool) -> Result<u64, AuditError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Record(Box::new(entry), Some(reply), sync))
            .await
            .map_err(|_| AuditError::Closed)?;
        answer.await.map_err(|_| AuditError::Closed)?
    }

    /// Queues `entry` without waiting, for contexts that cannot wait. An entry that cannot be
    /// queued (queue full, log closed) or written is logged at error level, never silently
    /// lost; [`AuditLog::dropped`] counts the first kind.
    pub fn record_detached(&self, entry: NewEntry) {
        let Err(error) = self.jobs.try_send(Job::Record(Box::new(entry), None, true)) else {
            return;
        };
        self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        let (reason, entry) = match error {
            mpsc::error::TrySendError::Full(Job::Record(entry, ..)) => ("queue full", entry),
            mpsc::error::TrySendError::Closed(Job::Record(entry, ..)) => ("log closed", entry),
            _ => return,
        };
        tracing::error!(
            target: "ecrop::audit",
            reason,
            who = %entry.who,
            kind = entry.kind.as_str(),
            action = %entry.action,
            uid = %entry.uid,
            "audit entry not recorded"
        );
    }

    /// Whether the last write succeeded and the log is open; signing waits for this.
    pub fn is_writable(&self) -> bool {
        self.shared.writable.load(Ordering::Relaxed) && !self.jobs.is_closed()
    }

    /// Detached entries that could not be queued since the log opened.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Writes everything queued (from every handle) and stops the writer; later records fail
    /// with [`AuditError::Closed`]. The final head is logged, to be kept elsewhere.
    pub async fn close(self) {
        let (done, finished) = oneshot::channel();
        if self.jobs.send(Job::Close(done)).await.is_err() {
            return;
        }
        // The writer answers after its last write; a writer gone has nothing left to write.
        let _ = finished.await;
    }
}

/// Reads and checks the chain's end.
fn read_tip(store: &Store) -> Result<Tip, AuditError> {
    let head: Option<Head> = store.get_json(HEAD_KEY)?;
    let last = store.last_with_prefix(ENTRY_PREFIX)?;
    let (head, (key, value)) = match (head, last) {
        (None, None) => {
            return Ok(Tip { seq: 0, hash: GENESIS_HASH.to_owned(), time_ms: i64::MIN });
        }
        (None, Some((key, _))) => {
            return Err(AuditError::BrokenChain(format!("entries up to {key} but no head")));
        }
        (Some(head), None) => {
            return Err(AuditError::BrokenChain(format!(
                "head names seq {} but no entry is stored",
                head.seq
            )));
        }
        (Some(head), Some(last)) => (head, last),
    };
    let entry: Entry = serde_json::from_slice(&value)
        .map_err(|e| AuditError::BrokenChain(format!("last entry ({key}) does not decode: {e}")))?;
    let Some(seq) = key_seq(&key).filter(|seq| *seq == entry.seq) else {
        return Err(AuditError::BrokenChain(format!("last entry ({key}) holds seq {}", entry.seq)));
    };
    if !entry.hash_matches() {
        return Err(AuditError::BrokenChain(format!(
            "last entry (seq {seq}) does not match its hash"
        )));
    }
    if head.seq != seq || head.hash != entry.hash {
        return Err(AuditError::BrokenChain(format!(
            "head names seq {} ({}) but the last entry is seq {seq} ({})",
            head.seq, head.hash, entry.hash
        )));
    }
    Ok(Tip { seq, hash: entry.hash, time_ms: entry.time_ms })
}

/// The writer task: takes what is queued, seals and commits it in one batch, answers.
async fn writer(store: Store, mut tip: Tip, mut queue: mpsc::Receiver<Job>, shared: Arc<Shared>) {
    let mut closers = Vec::new();
    let mut group = Vec::with_capacity(MAX_GROUP);
    let mut synced = false;
    while let Some(job) = queue.recv().await {
        let mut next = Some(job);
        while let Some(job) = next.take() {
            match job {
                Job::Record(entry, reply, sync) => {
                    synced |= sync;
                    group.push((*entry, reply));
                }
                Job::Close(done) => {
                    // Nothing new is accepted; what is already queued is still written.
                    queue.close();
                    closers.push(done);
                }
            }
            if group.len() < MAX_GROUP {
                next = queue.try_recv().ok();
            }
        }
        if !group.is_empty() {
            tip = commit(&store, tip, std::mem::take(&mut group), synced, &shared).await;
        }
        synced = false;
    }
    shared.writable.store(false, Ordering::Relaxed);
    tracing::info!(target: "ecrop::audit", seq = tip.seq, head = %tip.hash, "audit log closed; keep this head hash to anchor the chain");
    for done in closers {
        let _ = done.send(());
    }
}

/// Seals `group` after `tip`, writes it with the new head in one batch (synced when `sync`),
/// and answers every waiting producer. Returns the new tip, or the old one when the write
/// failed.
async fn commit(
    store: &Store,
    tip: Tip,
    group: Vec<(NewEntry, Option<Reply>)>,
    sync: bool,
    shared: &Shared,
) -> Tip {
    let now = now_ms();
    let mut next = tip.clone();
    let mut batch = Batch::new();
    let mut replies = Vec::with_capacity(group.len());
    let mut encode_error = None;
    for (new, reply) in group {
        let entry = Entry::seal(new, next.seq + 1, now.max(next.time_ms), &next.hash);
        if let Err(e) = batch.put_json(&entry_key(entry.seq), &entry) {
            encode_error = Some(e.to_string());
            replies.push((entry, reply));
            break;
        }
        next = Tip { seq: entry.seq, hash: entry.hash.clone(), time_ms: entry.time_ms };
        replies.push((entry, reply));
    }
    let written = match encode_error {
        Some(reason) => Err(reason),
        None => match batch.put_json(HEAD_KEY, &Head { seq: next.seq, hash: next.hash.clone() }) {
            Ok(()) => store.write_with_async(batch, sync).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        },
    };

    match written {
        Ok(()) => {
            shared.writable.store(true, Ordering::Relaxed);
            tracing::debug!(target: "ecrop::audit", entries = replies.len(), seq = next.seq, "audit entries written");
            for (entry, reply) in replies {
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(entry.seq));
                }
            }
            next
        }
        Err(reason) => {
            shared.writable.store(false, Ordering::Relaxed);
            tracing::error!(target: "ecrop::audit", entries = replies.len(), %reason, "audit entries not written");
            for (entry, reply) in replies {
                tracing::error!(
                    target: "ecrop::audit",
                    who = %entry.who,
                    kind = entry.kind.as_str(),
                    action = %entry.action,
                    uid = %entry.uid,
                    "audit entry lost"
                );
                if let Some(reply) = reply {
                    let _ = reply.send(Err(AuditError::Write(reason.clone())));
                }
            }
            tip
        }
    }
}

pub use crate::clock::now_ms;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Kind, Outcome, chain};

    fn entry(action: &str) -> NewEntry {
        NewEntry::new("tester", Kind::Admin, action).outcome(Outcome::ok("done"))
    }

    #[tokio::test]
    async fn records_chain_and_close_drains_detached_entries() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let log = AuditLog::open(store.clone()).await.unwrap();
        assert_eq!(log.record(entry("one")).await.unwrap(), 1);
        assert_eq!(log.record(entry("two")).await.unwrap(), 2);
        for i in 0..50 {
            log.record_detached(entry(&format!("detached {i}")));
        }
        let other = log.clone();
        log.close().await;
        assert!(!other.is_writable());
        assert!(matches!(other.record(entry("late")).await, Err(AuditError::Closed)));

        let report = chain::verify(&store).unwrap();
        assert!(report.breaks.is_empty(), "{:?}", report.breaks);
        assert_eq!(report.entries, 52);
        let head: Head = store.get_json(HEAD_KEY).unwrap().unwrap();
        assert_eq!(head.seq, 52);
    }

    #[tokio::test]
    async fn refuses_to_extend_a_chain_whose_head_was_moved() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let log = AuditLog::open(store.clone()).await.unwrap();
        log.record(entry("one")).await.unwrap();
        log.record(entry("two")).await.unwrap();
        log.close().await;

        let mut batch = Batch::new();
        batch.delete(&entry_key(2));
        store.write(batch).unwrap();
        let err = AuditLog::open(store.clone()).await.unwrap_err();
        assert!(err.to_string().starts_with("audit chain broken (head names seq 2 ("), "{err}");

        let mut batch = Batch::new();
        batch.delete(HEAD_KEY);
        store.write(batch).unwrap();
        let err = AuditLog::open(store.clone()).await.unwrap_err();
        assert!(
            err.to_string().starts_with(
                "audit chain broken (entries up to audit/entry/00000000000000000001 but no head)"
            ),
            "{err}"
        );
    }
}
