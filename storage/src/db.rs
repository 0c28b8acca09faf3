//! The node's data: a map from key to its copy, in memory, shared by every connection.
//!
//! Values are kept as the JSON text they arrived as: a GET writes those bytes straight
//! back, so a value comes back exactly as it was sent and is never parsed into a tree of
//! allocations. Copies are packed end to end in slabs, with no allocation of their own
//! ([`Copies`]), which is what lets a node hold a million small keys in less memory than
//! redis needs for them (`bench/`).
//!
//! A key holds a live value or a **tombstone** (a deletion that remembers its version,
//! so an older write arriving late cannot bring the key back), each with an optional
//! [`Version`]. A write carrying a version is applied only if it is newer than what is
//! held; a write without one replaces whatever is held, as in the classroom original.
//! Tombstones are dropped after a grace period ([`crate::grace`]). Beside the node's own
//! copies it keeps [`Hints`] for other nodes.
//!
//! Two limits keep a node open to the internet from filling its laptop: a number of live
//! keys and a number of bytes (keys, versions, values, tombstones and hints). Past either,
//! writes are refused with 507 and nothing already stored is evicted.
//!
//! With `--data FILE`, every change is appended to a log ([`crate::log`]) under the write
//! lock before it is applied, and the log is replayed at start.

use std::path::Path;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::buckets::{bucket_of, Digests};
use crate::copies::Copies;
use crate::entry::{Entry, EntryRef};
use crate::hints::{Hint, Hints};
use crate::log::{Change, DataFile};
use crate::version::Version;

/// How many keys a node holds by default before it answers 507 (and evicts nothing).
pub const DEFAULT_MAX_KEYS: usize = 1_000_000;

/// The largest value a node stores by default, in bytes of JSON text.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 1 << 20;

/// How many bytes of keys and values a node holds by default (256 MiB): a million
/// small pairs fit, a terabyte of one-MiB values does not.
pub const DEFAULT_MAX_BYTES: usize = 256 << 20;

/// The copies, the hints, what they weigh and their digests, changed together under one
/// lock. Every change goes through [`Store::commit`] (log, then memory) and
/// [`Store::apply`] (memory), which replay uses too: the two cannot disagree.
#[derive(Default)]
struct Store {
    /// Live copies and tombstones, one per key.
    entries: Copies,
    hints: Hints,
    /// What the copies and hints add up to.
    totals: Totals,
    /// The data file, when the node has one: appended to under this same lock, so the
    /// file's order is the memory's order.
    log: Option<DataFile>,
}

/// Counts kept beside the copies, so reading them is not a scan. A field of its own so a
/// copy read in place from [`Store::entries`] can be counted out while it is borrowed.
#[derive(Default)]
struct Totals {
    /// The bytes of every key, version and value held, hints included: what
    /// `--max-bytes` bounds.
    bytes: usize,
    /// Live keys (what `--max-keys` bounds and `/health` counts) and tombstones.
    live: usize,
    tombstones: usize,
    /// One XOR of copy hashes per bucket: changes whenever any copy does, in O(1) per
    /// write, so a proxy can tell "something changed here" without reading every pair.
    digests: Digests,
}

impl Totals {
    /// Adds an own copy to the counts, the weight and the digests, or takes it out.
    fn count(&mut self, e: EntryRef<'_>, added: bool) {
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
    fn commit(&mut self, change: Change) -> Result<(), WriteError> {
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
    fn apply(&mut self, change: Change) {
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

/// The version a held copy carries (only valid ones are ever stored).
fn version_of(e: EntryRef<'_>) -> Option<Version> {
    e.version()?.parse().ok()
}

/// A handle to the store; cloning it is cheap and every clone sees the same data.
#[derive(Clone)]
pub struct Db {
    /// A std `RwLock`, not tokio's: it is never held across an `.await`, every critical
    /// section is a single map operation (plus one `write` to the data file), and reads
    /// (the common case) run side by side.
    store: Arc<RwLock<Store>>,
    /// Past this many live keys a new key is refused rather than an old one evicted:
    /// losing data silently would teach the wrong lesson.
    max_keys: usize,
    /// Past this many bytes of keys, versions and values, likewise.
    max_bytes: usize,
}

/// A copy listed by `/dump`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub key: String,
    /// The value's JSON text.
    pub value: String,
    pub version: Option<String>,
}

/// Some of a node's pairs, and what it holds in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Live keys, all of them.
    pub count: usize,
    pub digest: u64,
    /// The first pairs by key, sorted.
    pub pairs: Vec<Pair>,
    /// Tombstones (key, version), sorted, when asked for.
    pub deleted: Vec<(String, Option<String>)>,
}

/// What a key holds, as `/get` answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Live {
        value: String,
        version: Option<String>,
    },
    Deleted {
        version: Option<String>,
    },
    Missing,
}

/// What a write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// False when a copy at least as new was held, and kept.
    pub applied: bool,
    /// Whether a live copy was held before the write.
    pub was_live: bool,
    /// The version of what is held now (`None`: unversioned).
    pub version: Option<String>,
    /// Whether what is held now is a live copy (not a tombstone).
    pub live: bool,
}

/// What removing a hint did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HintRemoval {
    Removed,
    Missing,
    /// A hint with another version (a newer write) is held: it was kept.
    Changed {
        held: Option<String>,
    },
}

/// How much a node holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub live: usize,
    pub tombstones: usize,
    pub hints: usize,
    pub bytes: usize,
}

/// Why a write was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum WriteError {
    /// The node already holds `max_keys` live keys and this one is new.
    Full { max_keys: usize },
    /// Storing it would take the node past `max_bytes`.
    OverBudget { used: usize, max_bytes: usize },
    /// The data file would not take the change, so it was not made.
    Disk { path: String, why: String },
}

impl Db {
    pub fn new(max_keys: usize, max_bytes: usize) -> Db {
        Db {
            store: Arc::new(RwLock::new(Store::default())),
            max_keys,
            max_bytes,
        }
    }

    /// A store kept in the data file at `data` (when given), replayed from it first.
    /// Fails, naming the path, only when the file cannot be opened or created.
    pub fn open(max_keys: usize, max_bytes: usize, data: Option<&Path>) -> Result<Db, String> {
        let mut store = Store::default();
        if let Some(path) = data {
            let log = DataFile::open(path, |change| store.apply(change))
                .map_err(|e| format!("could not open the data file {}: {e}", path.display()))?;
            store.log = Some(log);
        }
        Ok(Db {
            store: Arc::new(RwLock::new(store)),
            max_keys,
            max_bytes,
        })
    }

    /// A poisoned lock only means another request panicked mid-operation; every operation
    /// here leaves the map consistent, so the data is still good to serve.
    fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores `value` (JSON text) under `key` unversioned, replacing whatever is held.
    /// Returns whether the key is new (held no live value).
    pub fn put(&self, key: &str, value: &str) -> Result<bool, WriteError> {
        self.put_versioned(key, value, None).map(|o| !o.was_live)
    }

    /// Stores `value` under `key` unless a copy (live or tombstone) at least as new as
    /// `version` is held. Without a version, replaces whatever is held.
    pub fn put_versioned(
        &self,
        key: &str,
        value: &str,
        version: Option<&Version>,
    ) -> Result<Outcome, WriteError> {
        let text = version.map(Version::to_string);
        // Packed before the lock is taken, so writers hold it only to swap the entry in.
        let entry = Entry::versioned(key, text.as_deref(), value);
        let mut store = self.write();
        let held = store.entries.get(key.as_bytes());
        let was_live = held.is_some_and(|e| !e.is_tombstone());
        if let (Some(v), Some(h)) = (version, held) {
            if version_of(h).as_ref() >= Some(v) {
                return Ok(kept(h, was_live));
            }
        }
        let old = held.map_or(0, EntryRef::weight);
        if !was_live && store.totals.live >= self.max_keys {
            return Err(WriteError::Full {
                max_keys: self.max_keys,
            });
        }
        if store.totals.bytes - old + entry.weight() > self.max_bytes {
            return Err(WriteError::OverBudget {
                used: store.totals.bytes,
                max_bytes: self.max_bytes,
            });
        }
        store.commit(Change::Own(entry))?;
        Ok(Outcome {
            applied: true,
            was_live,
            version: text,
            live: true,
        })
    }

    /// What `key` holds: a live value, a tombstone, or nothing. Copied out so the lock
    /// is released before the answer is sent.
    pub fn lookup(&self, key: &str) -> Lookup {
        match self.read().entries.get(key.as_bytes()) {
            None => Lookup::Missing,
            Some(e) if e.is_tombstone() => Lookup::Deleted {
                version: e.version().map(str::to_string),
            },
            Some(e) => Lookup::Live {
                value: e.value().to_owned(),
                version: e.version().map(str::to_string),
            },
        }
    }

    /// The live value's JSON text, if any.
    pub fn get(&self, key: &str) -> Option<String> {
        match self.lookup(key) {
            Lookup::Live { value, .. } => Some(value),
            _ => None,
        }
    }

    /// Removes a key outright, leaving no tombstone (and dropping one if held); `false`
    /// when it held no live value.
    pub fn delete(&self, key: &str) -> Result<bool, WriteError> {
        let mut store = self.write();
        let Some(held) = store.entries.get(key.as_bytes()) else {
            return Ok(false);
        };
        let was_live = !held.is_tombstone();
        store.commit(Change::Remove(key.to_string()))?;
        Ok(was_live)
    }

    /// Records that `key` was deleted by the write `version`, unless a copy at least as
    /// new is held. The tombstone is recorded whether or not a live copy was there.
    pub fn delete_versioned(&self, key: &str, version: &Version) -> Result<Outcome, WriteError> {
        let text = version.to_string();
        let entry = Entry::tombstone(key, &text);
        let mut store = self.write();
        let held = store.entries.get(key.as_bytes());
        let was_live = held.is_some_and(|e| !e.is_tombstone());
        if let Some(h) = held {
            if version_of(h).as_ref() >= Some(version) {
                return Ok(kept(h, was_live));
            }
        }
        let old = held.map_or(0, EntryRef::weight);
        // A tombstone that replaces a value frees bytes; only one that grows is refused.
        if entry.weight() > old && store.totals.bytes - old + entry.weight() > self.max_bytes {
            return Err(WriteError::OverBudget {
                used: store.totals.bytes,
                max_bytes: self.max_bytes,
            });
        }
        store.commit(Change::Own(entry))?;
        Ok(Outcome {
            applied: true,
            was_live,
            version: Some(text),
            live: false,
        })
    }

    /// Holds a copy of `key` for `node` (a tombstone when `value` is empty), unless a hint
    /// at least as new is held for them. An unversioned hint replaces only an unversioned one.
    pub fn put_hint(
        &self,
        node: &str,
        key: &str,
        value: &str,
        version: Option<&Version>,
    ) -> Result<Outcome, WriteError> {
        let text = version.map(Version::to_string);
        let entry = Entry::versioned(key, text.as_deref(), value);
        let mut store = self.write();
        let held = store.hints.get(node, key);
        if let Some(h) = held {
            // `Option` orders `None` (unversioned) first; equal versions keep the held one,
            // except two unversioned hints, where the later replaces the earlier.
            let held_version = version_of(h.view());
            if held_version.as_ref() > version
                || (version.is_some() && held_version.as_ref() == version)
            {
                return Ok(kept(h.view(), false));
            }
        }
        let old = held.map_or(0, Entry::weight);
        if store.totals.bytes - old + entry.weight() > self.max_bytes {
            return Err(WriteError::OverBudget {
                used: store.totals.bytes,
                max_bytes: self.max_bytes,
            });
        }
        let live = !entry.is_tombstone();
        store.commit(Change::Hint(node.to_string(), entry))?;
        Ok(Outcome {
            applied: true,
            was_live: false,
            version: text,
            live,
        })
    }

    /// Drops the hint for `node` and `key` if its version is `version` (any version when
    /// `None`): a newer hint that arrived while the old one was handed over stays.
    pub fn remove_hint(
        &self,
        node: &str,
        key: &str,
        version: Option<&Version>,
    ) -> Result<HintRemoval, WriteError> {
        let mut store = self.write();
        let Some(held) = store.hints.get(node, key) else {
            return Ok(HintRemoval::Missing);
        };
        if version.is_some() && version_of(held.view()).as_ref() != version {
            return Ok(HintRemoval::Changed {
                held: held.version().map(str::to_string),
            });
        }
        store.commit(Change::HintRemove(node.to_string(), key.to_string()))?;
        Ok(HintRemoval::Removed)
    }

    /// The first `limit` hints by (node, key), and how many are held in all.
    pub fn hints(&self, limit: usize) -> (usize, Vec<Hint>) {
        let store = self.read();
        (store.hints.len(), store.hints.first(limit))
    }

    /// Drops every tombstone whose version is older than `cutoff_ms` (milliseconds since
    /// 1970), logging each drop; answers how many went.
    pub fn drop_tombstones_before(&self, cutoff_ms: u64) -> Result<usize, WriteError> {
        let mut store = self.write();
        if store.totals.tombstones == 0 {
            return Ok(0);
        }
        let expired: Vec<String> = store
            .entries
            .iter()
            .filter(|e| e.is_tombstone() && version_of(*e).is_some_and(|v| v.ms() < cutoff_ms))
            .map(|e| e.key().to_string())
            .collect();
        let mut dropped = 0;
        for key in expired {
            match store.commit(Change::Remove(key)) {
                Ok(()) => dropped += 1,
                Err(e) if dropped == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(dropped)
    }

    /// Removes every key, tombstone and hint, and answers how many live keys went.
    pub fn clear(&self) -> Result<usize, WriteError> {
        let mut store = self.write();
        let n = store.totals.live;
        store.commit(Change::Clear)?;
        Ok(n)
    }

    /// Live keys.
    pub fn len(&self) -> usize {
        self.read().totals.live
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn counts(&self) -> Counts {
        let store = self.read();
        Counts {
            live: store.totals.live,
            tombstones: store.totals.tombstones,
            hints: store.hints.len(),
            bytes: store.totals.bytes,
        }
    }

    /// The bytes held, and the most allowed (`--max-bytes`).
    pub fn bytes(&self) -> (usize, usize) {
        (self.read().totals.bytes, self.max_bytes)
    }

    /// A fingerprint of every copy held (values, versions, tombstones; not hints): equal
    /// digests mean (almost surely) equal data.
    pub fn digest(&self) -> u64 {
        self.read().totals.digests.whole()
    }

    /// The 64 bucket digests, with the live and tombstone counts, read at one moment.
    pub fn digests(&self) -> (Digests, Counts) {
        let store = self.read();
        let counts = Counts {
            live: store.totals.live,
            tombstones: store.totals.tombstones,
            hints: store.hints.len(),
            bytes: store.totals.bytes,
        };
        (store.totals.digests.clone(), counts)
    }

    /// The first `limit` live pairs by key (in `bucket` only, when given), sorted, with
    /// the count of all live keys and the digest, read at one moment; with `tombstones`,
    /// every tombstone (in `bucket`) too.
    ///
    /// Under the read lock only pointers are gathered, and only the `limit` smallest are
    /// sorted (`select_nth_unstable`) and copied: a page asking for 300 pairs of a node
    /// holding a million costs a pass over pointers, not a sort and a copy of everything.
    pub fn dump(&self, limit: usize, bucket: Option<usize>, tombstones: bool) -> Summary {
        let store = self.read();
        let in_bucket = |e: &EntryRef<'_>| bucket.is_none() || bucket == Some(bucket_of(e.key()));
        // Sized up front when every live copy is wanted: growing the vector as it fills
        // would copy it over and over.
        let all = if bucket.is_none() {
            store.totals.live
        } else {
            0
        };
        let mut entries: Vec<EntryRef<'_>> = Vec::with_capacity(all);
        entries.extend(
            store
                .entries
                .iter()
                .filter(|e| !e.is_tombstone())
                .filter(in_bucket),
        );
        let by_key = |a: &EntryRef<'_>, b: &EntryRef<'_>| a.key_bytes().cmp(b.key_bytes());
        if limit < entries.len() {
            if limit > 0 {
                entries.select_nth_unstable_by(limit - 1, by_key);
            }
            entries.truncate(limit);
        }
        entries.sort_unstable_by(by_key);
        let mut deleted: Vec<EntryRef<'_>> = Vec::new();
        if tombstones && store.totals.tombstones > 0 {
            deleted = store
                .entries
                .iter()
                .filter(|e| e.is_tombstone())
                .filter(in_bucket)
                .collect();
            deleted.sort_unstable_by(by_key);
        }
        Summary {
            count: store.totals.live,
            digest: store.totals.digests.whole(),
            pairs: entries
                .into_iter()
                .map(|e| Pair {
                    key: e.key().to_owned(),
                    value: e.value().to_owned(),
                    version: e.version().map(str::to_string),
                })
                .collect(),
            deleted: deleted
                .into_iter()
                .map(|e| (e.key().to_owned(), e.version().map(str::to_string)))
                .collect(),
        }
    }

    /// The first `limit` live pairs by key, with the count and digest (see [`Db::dump`]).
    pub fn first(&self, limit: usize) -> Summary {
        self.dump(limit, None, false)
    }

    /// The first `limit` live pairs as (key, value JSON text), sorted by key.
    pub fn sorted(&self, limit: usize) -> Vec<(String, String)> {
        self.first(limit)
            .pairs
            .into_iter()
            .map(|p| (p.key, p.value))
            .collect()
    }
}

/// The answer when a copy at least as new was held: what is held, unchanged.
fn kept(held: EntryRef<'_>, was_live: bool) -> Outcome {
    Outcome {
        applied: false,
        was_live,
        version: held.version().map(str::to_string),
        live: !held.is_tombstone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        text.parse().unwrap()
    }

    #[test]
    fn a_full_node_refuses_new_keys_but_updates_old_ones() {
        let db = Db::new(1, DEFAULT_MAX_BYTES);
        assert_eq!(db.put("a", "1"), Ok(true));
        assert_eq!(db.put("b", "2"), Err(WriteError::Full { max_keys: 1 }));
        assert_eq!(db.put("a", "3"), Ok(false));
        assert_eq!(db.get("a").as_deref(), Some("3"));
        assert_eq!(db.get("b"), None);
    }

    #[test]
    fn sorted_is_sorted_and_bounded() {
        let db = Db::new(100, DEFAULT_MAX_BYTES);
        for k in ["c", "a", "b"] {
            db.put(k, "null").unwrap();
        }
        let keys: Vec<String> = db.sorted(2).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["a", "b"]);
        for i in (0..50).rev() {
            db.put(&format!("k{i:02}"), "1").unwrap();
        }
        let first = db.first(5);
        let keys: Vec<&str> = first.pairs.iter().map(|p| p.key.as_str()).collect();
        assert_eq!((first.count, keys), (53, vec!["a", "b", "c", "k00", "k01"]));
        assert_eq!(db.first(0).pairs.len(), 0);
        assert_eq!(db.first(1000).pairs.len(), 53);
        assert_eq!(db.clear(), Ok(53));
        assert!(db.is_empty());
        assert_eq!(db.bytes().0, 0);
    }

    /// The digest follows the data: the same pairs give the same digest whatever the
    /// order they came in, and any change (value, version, tombstone) changes it.
    #[test]
    fn the_digest_follows_the_data() {
        let (a, b) = (Db::new(10, 1000), Db::new(10, 1000));
        assert_eq!(a.digest(), 0);
        a.put("x", "1").unwrap();
        a.put("y", "2").unwrap();
        b.put("y", "2").unwrap();
        b.put("x", "0").unwrap();
        assert_ne!(a.digest(), b.digest());
        b.put("x", "1").unwrap();
        assert_eq!(a.digest(), b.digest());
        a.put_versioned("x", "1", Some(&v("1.0.p"))).unwrap();
        assert_ne!(a.digest(), b.digest(), "a version is part of the copy");
        b.put_versioned("x", "1", Some(&v("1.0.p"))).unwrap();
        assert_eq!(a.digest(), b.digest());
        a.delete_versioned("x", &v("2.0.p")).unwrap();
        assert_ne!(a.digest(), b.digest());
        b.delete_versioned("x", &v("2.0.p")).unwrap();
        assert_eq!(a.digest(), b.digest());
        a.delete("y").unwrap();
        assert_ne!(a.digest(), b.digest());
        b.delete("y").unwrap();
        assert_eq!(a.digest(), b.digest());
        assert_ne!(a.digest(), 0, "the tombstone of x is still held");
    }

    /// The byte budget counts keys and values, refuses what would pass it, lets a value
    /// shrink or be replaced within it, and gives bytes back on delete.
    #[test]
    fn the_byte_budget_holds() {
        let db = Db::new(100, 10);
        assert_eq!(db.put("ab", "1234"), Ok(true)); // 6 bytes
        assert_eq!(
            db.put("cd", "123456"),
            Err(WriteError::OverBudget {
                used: 6,
                max_bytes: 10
            })
        );
        assert_eq!(db.put("ab", "12345678"), Ok(false)); // 10 bytes, replacing 6
        assert_eq!(db.bytes(), (10, 10));
        assert_eq!(db.get("cd"), None);
        assert_eq!(db.delete("ab"), Ok(true));
        assert_eq!(db.bytes().0, 0);
        assert_eq!(db.put("cd", "123456"), Ok(true));
    }

    /// Newer wins, older is kept, unversioned loses to any version, and a tombstone
    /// stops an older write from bringing its key back.
    #[test]
    fn the_newest_version_wins() {
        let db = Db::new(100, DEFAULT_MAX_BYTES);
        db.put("k", "0").unwrap();
        let done = db.put_versioned("k", "1", Some(&v("5.0.p"))).unwrap();
        assert!(done.applied && done.was_live);
        let kept = db.put_versioned("k", "2", Some(&v("4.9.p"))).unwrap();
        assert_eq!(
            (kept.applied, kept.version.as_deref()),
            (false, Some("5.0.p"))
        );
        assert_eq!(db.get("k").as_deref(), Some("1"));
        let gone = db.delete_versioned("k", &v("6.0.p")).unwrap();
        assert!(gone.applied && gone.was_live && !gone.live);
        assert!(
            !db.put_versioned("k", "3", Some(&v("5.5.p")))
                .unwrap()
                .applied
        );
        assert_eq!(
            db.lookup("k"),
            Lookup::Deleted {
                version: Some("6.0.p".into())
            }
        );
        let counts = db.counts();
        assert_eq!((counts.live, counts.tombstones), (0, 1));
        assert!(
            db.put_versioned("k", "4", Some(&v("7.0.p")))
                .unwrap()
                .applied
        );
        assert_eq!(db.len(), 1);
        // Unversioned replaces whatever is held, as the classroom original did.
        db.put("k", "5").unwrap();
        assert_eq!(
            db.lookup("k"),
            Lookup::Live {
                value: "5".into(),
                version: None
            }
        );
    }

    /// Tombstones older than the cut-off go; newer ones and live values stay.
    #[test]
    fn old_tombstones_are_dropped() {
        let db = Db::new(100, DEFAULT_MAX_BYTES);
        db.delete_versioned("old", &v("1000.0.p")).unwrap();
        db.delete_versioned("new", &v("3000.0.p")).unwrap();
        db.put_versioned("live", "1", Some(&v("1.0.p"))).unwrap();
        assert_eq!(db.drop_tombstones_before(2000), Ok(1));
        assert_eq!(db.lookup("old"), Lookup::Missing);
        assert!(matches!(db.lookup("new"), Lookup::Deleted { .. }));
        assert_eq!(db.len(), 1);
    }

    /// Hints are kept apart from the node's own data, but weigh in its budget.
    #[test]
    fn hints_are_not_own_data() {
        let db = Db::new(1, 100);
        db.put("a", "1").unwrap();
        db.put_hint("kv2", "b", "22", Some(&v("2.0.p"))).unwrap();
        assert_eq!(db.get("b"), None);
        let counts = db.counts();
        assert_eq!(
            (counts.live, counts.hints, counts.bytes),
            (1, 1, 2 + 1 + 2 + 5)
        );
        assert!(
            !db.put_hint("kv2", "b", "3", Some(&v("1.0.p")))
                .unwrap()
                .applied
        );
        assert!(
            db.put_hint("kv2", "b", "", Some(&v("3.0.p")))
                .unwrap()
                .applied
        );
        assert_eq!(
            db.remove_hint("kv2", "b", Some(&v("2.0.p"))),
            Ok(HintRemoval::Changed {
                held: Some("3.0.p".into())
            })
        );
        assert_eq!(
            db.remove_hint("kv2", "b", Some(&v("3.0.p"))),
            Ok(HintRemoval::Removed)
        );
        assert_eq!(db.remove_hint("kv2", "b", None), Ok(HintRemoval::Missing));
        assert_eq!(db.bytes().0, 2);
    }

    /// Copies rewritten, deleted and removed many times over (so slabs are compacted
    /// under them) read back, count and digest as the same final copies written once.
    #[test]
    fn churn_leaves_the_same_data_as_writing_it_once() {
        let (churned, once) = (
            Db::new(10_000, DEFAULT_MAX_BYTES),
            Db::new(10_000, DEFAULT_MAX_BYTES),
        );
        for round in 1..=20u64 {
            for k in 0..3000 {
                let value = format!("[{round}, \"{}\"]", "x".repeat(k % 200));
                churned
                    .put_versioned(&format!("k{k}"), &value, Some(&v(&format!("{round}.0.p"))))
                    .unwrap();
            }
        }
        for k in 0..3000 {
            let key = format!("k{k}");
            match k % 3 {
                0 => assert!(
                    churned
                        .delete_versioned(&key, &v("99.0.p"))
                        .unwrap()
                        .applied
                ),
                1 => assert!(churned.delete(&key).unwrap()),
                _ => {}
            }
        }
        for k in 0..3000 {
            let key = format!("k{k}");
            match k % 3 {
                0 => {
                    once.delete_versioned(&key, &v("99.0.p")).unwrap();
                }
                1 => {}
                _ => {
                    let value = format!("[20, \"{}\"]", "x".repeat(k % 200));
                    once.put_versioned(&key, &value, Some(&v("20.0.p")))
                        .unwrap();
                }
            }
        }
        assert_eq!(churned.counts(), once.counts());
        assert_eq!(churned.digests(), once.digests());
        assert_eq!(churned.first(5000), once.first(5000));
        assert_eq!(churned.lookup("k2"), once.lookup("k2"));
        assert_eq!(churned.lookup("k3"), once.lookup("k3"));
    }

    /// Everything a store holds comes back from its data file, and a clear is replayed too.
    #[test]
    fn a_store_comes_back_from_its_data_file() {
        let path = std::env::temp_dir().join(format!("kv-db-{}.log", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let db = Db::open(100, DEFAULT_MAX_BYTES, Some(&path)).unwrap();
        db.put("a", "1").unwrap();
        db.put_versioned("b", "2", Some(&v("9.0.p"))).unwrap();
        db.delete_versioned("c", &v("8.0.p")).unwrap();
        db.put_hint("kv3", "d", "4", None).unwrap();
        let digest = db.digest();
        drop(db);
        let back = Db::open(100, DEFAULT_MAX_BYTES, Some(&path)).unwrap();
        assert_eq!(back.digest(), digest);
        assert_eq!(
            back.counts(),
            Counts {
                live: 2,
                tombstones: 1,
                hints: 1,
                bytes: 2 + 7 + 6 + 2
            }
        );
        back.clear().unwrap();
        drop(back);
        let cleared = Db::open(100, DEFAULT_MAX_BYTES, Some(&path)).unwrap();
        assert_eq!(cleared.counts().live + cleared.counts().hints, 0);
        let _ = std::fs::remove_file(&path);
    }
}
