//! The node's data: a map from key to value, in memory, shared by every connection.
//!
//! Values are kept as the JSON text they arrived as: a GET writes those bytes straight
//! back, so a value comes back exactly as it was sent and is never parsed into a tree of
//! allocations. Each pair is one allocation ([`Entry`]), which is what lets a node hold a
//! million small keys in less memory than redis needs for them (`bench/`).
//!
//! Two limits keep a node open to the internet from filling its laptop: a number of keys
//! and a number of bytes (keys plus values). Past either, writes are refused with 507 and
//! nothing already stored is evicted.

use std::collections::HashSet;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::entry::Entry;

/// How many keys a node holds by default before it answers 507 (and evicts nothing).
pub const DEFAULT_MAX_KEYS: usize = 1_000_000;

/// The largest value a node stores by default, in bytes of JSON text.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 1 << 20;

/// How many bytes of keys and values a node holds by default (256 MiB): a million
/// small pairs fit, a terabyte of one-MiB values does not.
pub const DEFAULT_MAX_BYTES: usize = 256 << 20;

/// The map and what it weighs, changed together under one lock.
#[derive(Default)]
struct Store {
    entries: HashSet<Entry>,
    /// The bytes of every key and value held: what `--max-bytes` bounds.
    bytes: usize,
    /// The XOR of every pair's hash: changes whenever any pair does, in O(1) per write,
    /// so a proxy can tell "something changed here" without reading every pair.
    digest: u64,
}

/// One pair's share of [`Store::digest`]: a fixed hash (std's SipHash with zero keys) of
/// the key, a separator and the value.
fn pair_hash(entry: &Entry) -> u64 {
    use std::hash::Hasher;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    h.write(entry.key_bytes());
    h.write_u8(0xff);
    h.write(entry.value().as_bytes());
    h.finish()
}

/// A handle to the store; cloning it is cheap and every clone sees the same data.
#[derive(Clone)]
pub struct Db {
    /// A std `RwLock`, not tokio's: it is never held across an `.await`, every critical
    /// section is a single map operation, and reads (the common case) run side by side.
    store: Arc<RwLock<Store>>,
    /// Past this many keys a new key is refused rather than an old one evicted: losing
    /// data silently would teach the wrong lesson.
    max_keys: usize,
    /// Past this many bytes of keys and values, likewise.
    max_bytes: usize,
}

/// Some of a node's pairs, and what it holds in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub count: usize,
    pub digest: u64,
    /// The first pairs by key, sorted.
    pub pairs: Vec<(String, String)>,
}

/// Why a write was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum PutError {
    /// The node already holds `max_keys` keys and this one is new.
    Full { max_keys: usize },
    /// Storing it would take the node past `max_bytes` of keys and values.
    OverBudget { used: usize, max_bytes: usize },
}

impl Db {
    pub fn new(max_keys: usize, max_bytes: usize) -> Db {
        Db {
            store: Arc::new(RwLock::new(Store::default())),
            max_keys,
            max_bytes,
        }
    }

    /// A poisoned lock only means another request panicked mid-operation; every operation
    /// here leaves the map consistent, so the data is still good to serve.
    fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores `value` (JSON text) under `key`, replacing any old value. Returns whether
    /// the key is new.
    pub fn put(&self, key: &str, value: &str) -> Result<bool, PutError> {
        // Packed before the lock is taken, so writers hold it only to swap the entry in.
        let entry = Entry::new(key, value);
        let mut store = self.write();
        let old = store.entries.get(key.as_bytes()).map(Entry::weight);
        if old.is_none() && store.entries.len() >= self.max_keys {
            return Err(PutError::Full {
                max_keys: self.max_keys,
            });
        }
        let used = store.bytes - old.unwrap_or(0);
        if used + entry.weight() > self.max_bytes {
            return Err(PutError::OverBudget {
                used: store.bytes,
                max_bytes: self.max_bytes,
            });
        }
        store.bytes = used + entry.weight();
        store.digest ^= pair_hash(&entry);
        let old = store.entries.replace(entry);
        if let Some(old) = &old {
            store.digest ^= pair_hash(old);
        }
        Ok(old.is_none())
    }

    /// The value's JSON text, copied out so the lock is released before the answer is sent.
    pub fn get(&self, key: &str) -> Option<String> {
        self.read()
            .entries
            .get(key.as_bytes())
            .map(|e| e.value().to_owned())
    }

    /// Removes a key; `false` when it was not there.
    pub fn delete(&self, key: &str) -> bool {
        let mut store = self.write();
        match store.entries.take(key.as_bytes()) {
            Some(gone) => {
                store.bytes -= gone.weight();
                store.digest ^= pair_hash(&gone);
                true
            }
            None => false,
        }
    }

    /// Removes every key and answers how many went.
    pub fn clear(&self) -> usize {
        let mut store = self.write();
        let n = store.entries.len();
        // Replace rather than `clear()`: a demo reset should hand the memory back too.
        *store = Store::default();
        n
    }

    pub fn len(&self) -> usize {
        self.read().entries.len()
    }

    /// The bytes of keys and values held, and the most allowed (`--max-bytes`).
    pub fn bytes(&self) -> (usize, usize) {
        (self.read().bytes, self.max_bytes)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A fingerprint of every pair held: equal digests mean (almost surely) equal data.
    pub fn digest(&self) -> u64 {
        self.read().digest
    }

    /// The first `limit` pairs by key, sorted, as (key, value JSON text), with the count
    /// of all keys and the digest, read at one moment.
    ///
    /// Under the read lock only pointers are gathered, and only the `limit` smallest are
    /// sorted (`select_nth_unstable`) and copied: a page asking for 300 pairs of a node
    /// holding a million costs a pass over pointers, not a sort and a copy of everything.
    pub fn first(&self, limit: usize) -> Summary {
        let store = self.read();
        let mut entries: Vec<&Entry> = store.entries.iter().collect();
        if limit < entries.len() {
            if limit > 0 {
                entries.select_nth_unstable_by(limit - 1, |a, b| a.key_bytes().cmp(b.key_bytes()));
            }
            entries.truncate(limit);
        }
        entries.sort_unstable_by(|a, b| a.key_bytes().cmp(b.key_bytes()));
        Summary {
            count: store.entries.len(),
            digest: store.digest,
            pairs: entries
                .into_iter()
                .map(|e| (e.key().to_owned(), e.value().to_owned()))
                .collect(),
        }
    }

    /// Every pair, sorted by key (see [`Db::first`]).
    pub fn sorted(&self, limit: usize) -> Vec<(String, String)> {
        self.first(limit).pairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_node_refuses_new_keys_but_updates_old_ones() {
        let db = Db::new(1, DEFAULT_MAX_BYTES);
        assert_eq!(db.put("a", "1"), Ok(true));
        assert_eq!(db.put("b", "2"), Err(PutError::Full { max_keys: 1 }));
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
        let keys: Vec<&str> = first.pairs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!((first.count, keys), (53, vec!["a", "b", "c", "k00", "k01"]));
        assert_eq!(db.first(0).pairs.len(), 0);
        assert_eq!(db.first(1000).pairs.len(), 53);
        assert_eq!(db.clear(), 53);
        assert!(db.is_empty());
        assert_eq!(db.bytes().0, 0);
    }

    /// The digest follows the data: the same pairs give the same digest whatever the
    /// order they came in, and any change changes it.
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
        a.delete("x");
        assert_ne!(a.digest(), b.digest());
        b.delete("x");
        assert_eq!(a.digest(), b.digest());
    }

    /// The byte budget counts keys and values, refuses what would pass it, lets a value
    /// shrink or be replaced within it, and gives bytes back on delete.
    #[test]
    fn the_byte_budget_holds() {
        let db = Db::new(100, 10);
        assert_eq!(db.put("ab", "1234"), Ok(true)); // 6 bytes
        assert_eq!(
            db.put("cd", "123456"),
            Err(PutError::OverBudget {
                used: 6,
                max_bytes: 10
            })
        );
        assert_eq!(db.put("ab", "12345678"), Ok(false)); // 10 bytes, replacing 6
        assert_eq!(db.bytes(), (10, 10));
        assert_eq!(db.get("cd"), None);
        assert!(db.delete("ab"));
        assert_eq!(db.bytes().0, 0);
        assert_eq!(db.put("cd", "123456"), Ok(true));
    }
}
