//! The store behind [`crate::db::Db`]'s lock: the node's copies, the hints it keeps for
//! other nodes, what they weigh and their digests, and the data file, changed together.
//! Every change is a [`Change`]: logged, then applied, by one function each, which replay
//! at start uses too, so the file and the memory cannot disagree.

use crate::buckets::Digests;
use crate::copies::Copies;
use crate::db::WriteError;
use crate::entry::EntryRef;
use crate::hints::Hints;
use crate::log::{Change, DataFile};

/// The copies, the hints, what they weigh and their digests, changed together under one
/// lock. Every change goes through [`Store::commit`] (log, then memory) and
/// [`Store::apply`] (memory), which replay uses too: the two cannot disagree.
#[derive(Default)]
pub(crate) struct Store {
    /// Live copies and tombstones, one per key.
    pub(crate) entries: Copies,
    pub(crate) hints: Hints,
    /// What the copies and hints add up to.
    pub(crate) totals: Totals,
    /// The data file, when the node has one: appended to under this same lock, so the
    /// file's order is the memory's order.
    pub(crate) log: Option<DataFile>,
}

/// Counts kept beside the copies, so reading them is not a scan. A field of its own so a
/// copy read in place from [`Store::entries`] can be counted out while it is borrowed.
#[derive(Default)]
pub(crate) struct Totals {
    /// The bytes of every key, version and value held, hints included: what
    /// `--max-bytes` bounds.
    pub(crate) bytes: usize,
    /// Live keys (what `--max-keys` bounds and `/health` counts) and tombstones.
    pub(crate) live: usize,
    pub(crate) tombstones: usize,
    /// One XOR of copy hashes per bucket: changes whenever any copy does, in O(1) per
    /// write, so a proxy can tell "something changed here" without reading every pair.
    pub(crate) digests: Digests,
}

impl Totals {
    /// Adds an own copy to the counts, the weight and the digests, or takes it out.
    pub(crate) fn count(&mut self, e: EntryRef<'_>, added: bool) {
        let n = if e.is_tombstone() {
            &mut self.tombstones
        } else {
            &mut self.live
        };
        if added {
            *n += 1;
            self.bytes += e.weight();
        } else {
            *n -= 1;
            self.bytes -= e.weight();
        }
        self.digests.toggle(e.key(), e.digest());
    }
}

impl Store {
    /// Logs a change, then applies it; a change that could not be logged is not applied.
    pub(crate) fn commit(&mut self, change: Change) -> Result<(), WriteError> {
        if let Some(log) = self.log.as_mut() {
            log.append(&change).map_err(|why| WriteError::Disk {
                path: log.path().display().to_string(),
                why,
            })?;
        }
        // After a clear the whole log is dead weight: rewrite it (empty) at once.
        let cleared = matches!(change, Change::Clear);
        self.apply(change);
        if let Some(log) = self
            .log
            .as_mut()
            .filter(|l| cleared || l.wants_compaction())
        {
            let hints = self.hints.iter().map(|(node, e)| (node, e.view()));
            // A failed compaction leaves the old file, still good; it is logged there.
            let _ = log.compact(self.entries.iter(), hints);
        }
        Ok(())
    }

    /// Applies a change in memory, with no checks: they were made before it was logged.
    pub(crate) fn apply(&mut self, change: Change) {
        match change {
            Change::Own(entry) => {
                self.totals.count(entry.view(), true);
                let totals = &mut self.totals;
                self.entries.insert(&entry, |old| totals.count(old, false));
            }
            Change::Remove(key) => {
                let totals = &mut self.totals;
                self.entries
                    .remove(key.as_bytes(), |old| totals.count(old, false));
            }
            Change::Hint(node, entry) => {
                self.totals.bytes += entry.weight();
                if let Some(old) = self.hints.set(&node, entry) {
                    self.totals.bytes -= old.weight();
                }
            }
            Change::HintRemove(node, key) => {
                if let Some(old) = self.hints.remove(&node, &key) {
                    self.totals.bytes -= old.weight();
                }
            }
            Change::Clear => {
                // Replace rather than `clear()`: a demo reset should hand the memory back.
                let log = self.log.take();
                *self = Store::default();
                self.log = log;
            }
        }
    }
}
