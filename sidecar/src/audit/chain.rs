//! Reading the chain back: verification that names every break, and ranges for export.

use serde::Serialize;

use super::{
    AuditError,
    entry::{ENTRY_PREFIX, Entry, GENESIS_HASH, HEAD_KEY, Head, entry_key, key_seq},
};
use crate::store::Store;

/// Most breaks listed in a report; more are counted only (a wholly rewritten store would
/// otherwise print one line per entry).
pub const MAX_LISTED_BREAKS: usize = 1000;

/// One place where the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "break", rename_all = "snake_case")]
pub enum Break {
    /// The entry stored under `seq` does not decode, or its content no longer matches its
    /// hash: it was modified.
    Modified {
        /// Seq of the key.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// Entries `first..=last` are missing: deleted.
    Missing {
        /// First missing seq.
        first: u64,
        /// Last missing seq.
        last: u64,
    },
    /// The key of `seq` holds an entry naming another seq: entries were reordered or one was
    /// inserted.
    Misplaced {
        /// Seq of the key.
        seq: u64,
        /// Seq the entry names.
        entry_seq: u64,
    },
    /// The entry's `prev_hash` is not its predecessor's hash: the predecessor was rewritten
    /// with a new hash, or this entry was inserted.
    Unlinked {
        /// Seq of the entry.
        seq: u64,
    },
    /// A key under the entry prefix that is not an entry key.
    ForeignKey {
        /// The key.
        key: String,
    },
    /// The head does not name the last entry: the end was cut off (head beyond the last
    /// entry), or entries were appended without the log.
    HeadMismatch {
        /// What the head says, when there is one.
        head: Option<Head>,
        /// Seq of the last entry, when there is one.
        last_seq: Option<u64>,
    },
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Modified { seq, reason } => write!(f, "seq {seq}: modified ({reason})"),
            Self::Missing { first, last } if first == last => {
                write!(f, "seq {first}: missing (deleted)")
            }
            Self::Missing { first, last } => write!(f, "seq {first} to {last}: missing (deleted)"),
            Self::Misplaced { seq, entry_seq } => {
                write!(f, "seq {seq}: holds the entry of seq {entry_seq} (reordered or inserted)")
            }
            Self::Unlinked { seq } => write!(
                f,
                "seq {seq}: does not link to its predecessor (predecessor rewritten or entry inserted)"
            ),
            Self::ForeignKey { key } => write!(f, "key {key}: not an audit entry key"),
            Self::HeadMismatch { head, last_seq } => {
                match head {
                    Some(head) => write!(f, "head names seq {} ({})", head.seq, head.hash)?,
                    None => write!(f, "no head")?,
                }
                match last_seq {
                    Some(seq) if head.as_ref().is_some_and(|h| h.seq > *seq) => write!(
                        f,
                        " but the last entry is seq {seq} (end truncated after seq {seq})"
                    ),
                    Some(seq) => write!(f, " but the last entry is seq {seq}"),
                    None => write!(f, " but no entry is stored (truncated)"),
                }
            }
        }
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Entries read.
    pub entries: u64,
    /// The head record, when there is one.
    pub head: Option<Head>,
    /// Every break found, in chain order (at most [`MAX_LISTED_BREAKS`]).
    pub breaks: Vec<Break>,
    /// Breaks found beyond those listed.
    pub unlisted_breaks: u64,
}

impl Report {
    /// Whether the chain is intact.
    pub fn is_intact(&self) -> bool {
        self.breaks.is_empty()
    }

    fn push(&mut self, found: Break) {
        if self.breaks.len() < MAX_LISTED_BREAKS {
            self.breaks.push(found);
        } else {
            self.unlisted_breaks += 1;
        }
    }
}

/// Walks the whole chain and the head; `progress` is called with every entry's seq.
pub fn verify_with(store: &Store, mut progress: impl FnMut(u64)) -> Result<Report, AuditError> {
    let head: Option<Head> = store.get_json(HEAD_KEY)?;
    let mut report =
        Report { entries: 0, head: head.clone(), breaks: Vec::new(), unlisted_breaks: 0 };
    // Seq and hash of the previous key's entry, as stored.
    let mut prev: Option<(u64, String)> = None;
    // Seq and stored hash (unknown when undecodable) of the last key's entry, for the head.
    let mut last: Option<(u64, Option<String>)> = None;

    for item in store.scan(ENTRY_PREFIX, "") {
        let (key, value) = item?;
        let Some(seq) = key_seq(&key) else {
            report.push(Break::ForeignKey { key });
            continue;
        };
        report.entries += 1;
        progress(seq);

        let expected = prev.as_ref().map_or(1, |(p, _)| p + 1);
        let gap = seq > expected;
        if gap {
            report.push(Break::Missing { first: expected, last: seq - 1 });
        }
        let entry: Entry = match serde_json::from_slice(&value) {
            Ok(entry) => entry,
            Err(e) => {
                report.push(Break::Modified { seq, reason: format!("does not decode: {e}") });
                prev = Some((seq, String::new()));
                last = Some((seq, None));
                continue;
            }
        };
        last = Some((seq, Some(entry.hash.clone())));
        if !entry.hash_matches() {
            report.push(Break::Modified { seq, reason: "content does not match its hash".into() });
        } else if entry.seq != seq {
            report.push(Break::Misplaced { seq, entry_seq: entry.seq });
            // Its successor's link is judged against the entry that belongs here, unknown.
            prev = Some((seq, String::new()));
            continue;
        } else if !gap {
            // After a gap the predecessor is gone; the gap is the break to report.
            let linked = match &prev {
                None => entry.prev_hash == GENESIS_HASH,
                // An undecodable predecessor was already reported; its hash is unknown.
                Some((_, hash)) => hash.is_empty() || entry.prev_hash == *hash,
            };
            if !linked {
                report.push(Break::Unlinked { seq });
            }
        }
        prev = Some((seq, entry.hash));
    }

    let head_matches = match (&head, &last) {
        (None, None) => true,
        (Some(head), Some((seq, hash))) => {
            head.seq == *seq && hash.as_ref().is_none_or(|hash| head.hash == *hash)
        }
        _ => false,
    };
    if !head_matches {
        report.push(Break::HeadMismatch { head, last_seq: last.map(|(seq, _)| seq) });
    }
    Ok(report)
}

/// [`verify_with`] without progress.
pub fn verify(store: &Store) -> Result<Report, AuditError> {
    verify_with(store, |_| {})
}

/// One end of an export range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// A position in the chain.
    Seq(u64),
    /// A time: UTC milliseconds since the Unix epoch.
    TimeMs(i64),
}

/// Entries with `from <= entry < to`: the lower bound inclusive, the upper exclusive, each
/// compared by seq or by time as it is given; an absent bound is open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Range {
    /// Inclusive lower bound.
    pub from: Option<Bound>,
    /// Exclusive upper bound.
    pub to: Option<Bound>,
}

/// What [`read_range`] passes for each stored item.
#[derive(Debug)]
pub enum Item {
    /// An entry in the range.
    Entry(Box<Entry>),
    /// A key whose value does not decode; skipped.
    Undecodable {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
}

impl Range {
    fn below_from(&self, entry: &Entry) -> bool {
        match self.from {
            Some(Bound::Seq(seq)) => entry.seq < seq,
            Some(Bound::TimeMs(ms)) => entry.time_ms < ms,
            None => false,
        }
    }

    fn at_or_beyond_to(&self, entry: &Entry) -> bool {
        match self.to {
            Some(Bound::Seq(seq)) => entry.seq >= seq,
            Some(Bound::TimeMs(ms)) => entry.time_ms >= ms,
            None => false,
        }
    }
}

/// Calls `visit` with every entry in `range`, in seq order, and with every undecodable key
/// met on the way, and `progress` with the seq of every key scanned. Since the writer never
/// lets time go backwards, scanning stops at the first entry at or beyond `to`.
pub fn read_range(
    store: &Store,
    range: Range,
    mut visit: impl FnMut(Item) -> Result<(), AuditError>,
    mut progress: impl FnMut(u64),
) -> Result<(), AuditError> {
    let start = match range.from {
        Some(Bound::Seq(seq)) => entry_key(seq),
        _ => String::new(),
    };
    for item in store.scan(ENTRY_PREFIX, &start) {
        let (key, value) = item?;
        if let Some(seq) = key_seq(&key) {
            progress(seq);
        }
        let entry: Entry = match serde_json::from_slice(&value) {
            Ok(entry) => entry,
            Err(e) => {
                visit(Item::Undecodable { key, reason: e.to_string() })?;
                continue;
            }
        };
        if range.at_or_beyond_to(&entry) {
            break;
        }
        if !range.below_from(&entry) {
            visit(Item::Entry(Box::new(entry)))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        audit::{Kind, NewEntry, Outcome},
        store::Batch,
    };

    /// A store holding a valid chain of `n` entries, at times 1000, 2000, ...
    fn chain(n: u64) -> (tempfile::TempDir, Store, Vec<Entry>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut batch = Batch::new();
        let mut prev = GENESIS_HASH.to_owned();
        let mut entries = Vec::new();
        for seq in 1..=n {
            let new = NewEntry::new("c", Kind::Signature, "eth_sign").outcome(Outcome::ok("0x"));
            let entry = Entry::seal(new, seq, 1000 * seq as i64, &prev);
            prev = entry.hash.clone();
            batch.put_json(&entry_key(seq), &entry).unwrap();
            entries.push(entry);
        }
        if n > 0 {
            batch.put_json(HEAD_KEY, &Head { seq: n, hash: prev }).unwrap();
        }
        store.write(batch).unwrap();
        (dir, store, entries)
    }

    fn put(store: &Store, key: &str, entry: &Entry) {
        let mut batch = Batch::new();
        batch.put_json(key, entry).unwrap();
        store.write(batch).unwrap();
    }

    fn breaks(store: &Store) -> Vec<String> {
        verify(store).unwrap().breaks.iter().map(ToString::to_string).collect::<Vec<_>>()
    }

    #[test]
    fn an_intact_chain_and_an_empty_store_verify() {
        let (_dir, store, _) = chain(5);
        let report = verify(&store).unwrap();
        assert!(report.is_intact(), "{:?}", report.breaks);
        assert_eq!(report.entries, 5);
        let (_dir, store, _) = chain(0);
        assert!(verify(&store).unwrap().is_intact());
    }

    #[test]
    fn names_a_modified_entry() {
        let (_dir, store, entries) = chain(5);
        let mut changed = entries[2].clone();
        changed.who = "someone else".into();
        put(&store, &entry_key(3), &changed);
        assert_eq!(breaks(&store), ["seq 3: modified (content does not match its hash)"]);
    }

    #[test]
    fn names_a_rewritten_entry_by_its_successor() {
        let (_dir, store, entries) = chain(5);
        let mut changed = entries[2].clone();
        changed.who = "someone else".into();
        changed.hash = changed.compute_hash();
        put(&store, &entry_key(3), &changed);
        assert_eq!(
            breaks(&store),
            ["seq 4: does not link to its predecessor (predecessor rewritten or entry inserted)"]
        );
    }

    #[test]
    fn names_deleted_reordered_and_truncated_entries() {
        let (_dir, store, _) = chain(6);
        let mut batch = Batch::new();
        batch.delete(&entry_key(2));
        batch.delete(&entry_key(3));
        store.write(batch).unwrap();
        assert_eq!(breaks(&store), ["seq 2 to 3: missing (deleted)"]);

        let (_dir, store, entries) = chain(6);
        put(&store, &entry_key(3), &entries[3]);
        put(&store, &entry_key(4), &entries[2]);
        assert_eq!(
            breaks(&store),
            [
                "seq 3: holds the entry of seq 4 (reordered or inserted)",
                "seq 4: holds the entry of seq 3 (reordered or inserted)"
            ]
        );

        let (_dir, store, _) = chain(6);
        let mut batch = Batch::new();
        batch.delete(&entry_key(6));
        batch.delete(&entry_key(5));
        store.write(batch).unwrap();
        let found = breaks(&store);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].ends_with("but the last entry is seq 4 (end truncated after seq 4)"),
            "{found:?}"
        );
    }

    #[test]
    fn names_an_undecodable_entry_and_a_foreign_key() {
        let (_dir, store, _) = chain(3);
        let mut batch = Batch::new();
        batch.put_json(&entry_key(2), &"garbage").unwrap();
        batch.put_json("audit/entry/x", &1).unwrap();
        store.write(batch).unwrap();
        let found = breaks(&store);
        assert!(found[0].starts_with("seq 2: modified (does not decode: "), "{found:?}");
        assert_eq!(found[1], "key audit/entry/x: not an audit entry key");
        assert_eq!(found.len(), 2, "{found:?}");
    }

    #[test]
    fn reads_ranges_by_seq_and_by_time() {
        let (_dir, store, _) = chain(6);
        let seqs = |range: Range| {
            let mut seqs = Vec::new();
            read_range(
                &store,
                range,
                |item| {
                    if let Item::Entry(entry) = item {
                        seqs.push(entry.seq);
                    }
                    Ok(())
                },
                |_| {},
            )
            .unwrap();
            seqs
        };
        assert_eq!(seqs(Range::default()), [1, 2, 3, 4, 5, 6]);
        let range = Range { from: Some(Bound::Seq(2)), to: Some(Bound::Seq(4)) };
        assert_eq!(seqs(range), [2, 3]);
        let range = Range { from: Some(Bound::TimeMs(2500)), to: Some(Bound::TimeMs(5000)) };
        assert_eq!(seqs(range), [3, 4]);
        let range = Range { from: Some(Bound::TimeMs(3000)), to: Some(Bound::Seq(6)) };
        assert_eq!(seqs(range), [3, 4, 5]);
        let range = Range { from: Some(Bound::Seq(5)), to: Some(Bound::Seq(5)) };
        assert!(seqs(range).is_empty());
    }
}
