//! The node's data: a map from key to its copy, in memory, shared by every connection.
//!
//! Values are kept as the JSON text they arrived as: a GET writes those bytes straight
//! back, so a value comes back exactly as it was sent and is never parsed into a tree of
//! allocations. Copies are packed end to end in slabs, with no allocation of their own
//! ([`crate::copies::Copies`]), which is what lets a node hold a million small keys in
//! less memory than redis needs for them (`bench/`).
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
use crate::entry::{Entry, EntryRef};
use crate::hints::Hint;
use crate::log::{Change, DataFile};
use crate::store::Store;
use crate::version::Version;

/// How many keys a node holds by default before it answers 507 (and evicts nothing).
pub const DEFAULT_MAX_KEYS: usize = 1_000_000;

/// The largest value a node stores by default, in bytes of JSON text.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 1 << 20;

/// How many bytes of keys and values a node holds by default (256 MiB): a million
/// small pairs fit, a terabyte of one-MiB values does not.
pub const DEFAULT_MAX_BYTES: usize = 256 << 20;

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

    /// Whether replacing a copy of `old` bytes by one of `new` keeps the node within
    /// `--max-bytes` (507 otherwise).
    fn fits(&self, store: &Store, old: usize, new: usize) -> Result<(), WriteError> {
        if store.totals.bytes - old + new > self.max_bytes {
            return Err(WriteError::OverBudget {
                used: store.totals.bytes,
                max_bytes: self.max_bytes,
            });
        }
        Ok(())
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
        self.fits(&store, old, entry.weight())?;
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
        if entry.weight() > old {
            self.fits(&store, old, entry.weight())?;
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
        self.fits(&store, old, entry.weight())?;
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
#[path = "db_tests.rs"]
mod tests;
