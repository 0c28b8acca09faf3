//! The node's data: a map from key to value, in memory, shared by every connection.
//!
//! Values are kept as the JSON text they arrived as: a GET writes those bytes straight
//! back, so a value comes back exactly as it was sent and is never parsed into a tree of
//! allocations. Each pair is one allocation ([`Entry`]), which is what lets a node hold a
//! million small keys in less memory than redis needs for them (`bench/`).

use std::collections::HashSet;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::entry::Entry;

/// How many keys a node holds by default before it answers 507 (and evicts nothing).
pub const DEFAULT_MAX_KEYS: usize = 1_000_000;

/// The largest value a node stores by default, in bytes of JSON text.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 1 << 20;

/// A handle to the store; cloning it is cheap and every clone sees the same data.
#[derive(Clone)]
pub struct Db {
    /// A std `RwLock`, not tokio's: it is never held across an `.await`, every critical
    /// section is a single map operation, and reads (the common case) run side by side.
    entries: Arc<RwLock<HashSet<Entry>>>,
    /// Past this many keys a new key is refused rather than an old one evicted: losing
    /// data silently would teach the wrong lesson.
    max_keys: usize,
}

/// Why a write was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum PutError {
    /// The node already holds `max_keys` keys and this one is new.
    Full { max_keys: usize },
}

impl Db {
    pub fn new(max_keys: usize) -> Db {
        Db {
            entries: Arc::new(RwLock::new(HashSet::new())),
            max_keys,
        }
    }

    /// A poisoned lock only means another request panicked mid-operation; every operation
    /// here leaves the map consistent, so the data is still good to serve.
    fn read(&self) -> RwLockReadGuard<'_, HashSet<Entry>> {
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashSet<Entry>> {
        self.entries.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores `value` (JSON text) under `key`, replacing any old value. Returns whether
    /// the key is new.
    pub fn put(&self, key: &str, value: &str) -> Result<bool, PutError> {
        // Packed before the lock is taken, so writers hold it only to swap the entry in.
        let entry = Entry::new(key, value);
        let mut map = self.write();
        if map.len() >= self.max_keys && !map.contains(key.as_bytes()) {
            return Err(PutError::Full {
                max_keys: self.max_keys,
            });
        }
        Ok(map.replace(entry).is_none())
    }

    /// The value's JSON text, copied out so the lock is released before the answer is sent.
    pub fn get(&self, key: &str) -> Option<String> {
        self.read()
            .get(key.as_bytes())
            .map(|e| e.value().to_owned())
    }

    /// Removes a key; `false` when it was not there.
    pub fn delete(&self, key: &str) -> bool {
        self.write().remove(key.as_bytes())
    }

    /// Removes every key and answers how many went.
    pub fn clear(&self) -> usize {
        let mut map = self.write();
        let n = map.len();
        // Replace rather than `clear()`: a demo reset should hand the memory back too.
        *map = HashSet::new();
        n
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every pair, sorted by key, as (key, value JSON text); `limit` bounds how many are
    /// copied out (the count of all keys comes from [`Db::len`]).
    pub fn sorted(&self, limit: usize) -> Vec<(String, String)> {
        let map = self.read();
        let mut entries: Vec<&Entry> = map.iter().collect();
        entries.sort_unstable_by(|a, b| a.key().cmp(b.key()));
        entries
            .into_iter()
            .take(limit)
            .map(|e| (e.key().to_owned(), e.value().to_owned()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_node_refuses_new_keys_but_updates_old_ones() {
        let db = Db::new(1);
        assert_eq!(db.put("a", "1"), Ok(true));
        assert_eq!(db.put("b", "2"), Err(PutError::Full { max_keys: 1 }));
        assert_eq!(db.put("a", "3"), Ok(false));
        assert_eq!(db.get("a").as_deref(), Some("3"));
        assert_eq!(db.get("b"), None);
    }

    #[test]
    fn sorted_is_sorted_and_bounded() {
        let db = Db::new(10);
        for k in ["c", "a", "b"] {
            db.put(k, "null").unwrap();
        }
        let keys: Vec<String> = db.sorted(2).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(db.clear(), 3);
        assert!(db.is_empty());
    }
}
