//! The node's own copies: packed end to end in [`Slabs`], found by key through an index
//! of where each one lies.
//!
//! The index is a hash table of 8-byte [`Loc`]s (hashbrown's `HashTable`, which leaves
//! hashing and comparing to its caller): a slot holds no key, the key is read from the
//! slab it points into. So a key is stored once, and a million keys cost the table
//! about 9 bytes per slot (8 for the `Loc`, 1 of hashbrown's control byte) instead of
//! the 17 a `HashSet` of boxed entries needs. Keys are hashed with std's `RandomState`
//! (SipHash with a random key, as a `HashMap` does): a node open to the internet must
//! not let a client pick keys that all land in the same slot.
//!
//! Every change that leaves a dead copy in a slab ends with [`Copies::compact`], which
//! moves the live copies out of slabs that are mostly dead (see [`crate::slabs`]).

use std::hash::{BuildHasher, RandomState};

use hashbrown::hash_table::{self, HashTable};

use crate::entry::{Entry, EntryRef};
use crate::slabs::{Loc, Slabs};

/// One copy (live or tombstone) per key.
#[derive(Default)]
pub struct Copies {
    /// Where each key's copy lies, hashed by the key bytes stored there.
    index: HashTable<Loc>,
    /// The copies' bytes, and the dead ones not yet compacted away.
    slabs: Slabs,
    /// Seeded at random once per node, so the slots keys land in cannot be predicted.
    hasher: RandomState,
}

impl Copies {
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The copy held for `key`, read in place.
    pub fn get(&self, key: &[u8]) -> Option<EntryRef<'_>> {
        let hash = self.hasher.hash_one(key);
        let loc = self.index.find(hash, |l| self.key_at(*l) == key)?;
        Some(self.at(*loc))
    }

    /// Stores `entry`, replacing the copy held for its key; `replaced` is shown that
    /// copy first (the store counts it out), so a write looks its key up once.
    pub fn insert(&mut self, entry: &Entry, replaced: impl FnOnce(EntryRef<'_>)) {
        let key = entry.key_bytes();
        let hash = self.hasher.hash_one(key);
        let loc = self.slabs.append(entry.bytes());
        // How to tell a slot holding this key, and how to hash a slot's key again when
        // the table grows: both read the key where the slot points.
        let (slabs, hasher) = (&self.slabs, &self.hasher);
        let key_at = |l: &Loc| EntryRef::new(slabs.get(*l)).key_bytes();
        let same_key = |l: &Loc| key_at(l) == key;
        let rehash = |l: &Loc| hasher.hash_one(key_at(l));
        let old = match self.index.entry(hash, same_key, rehash) {
            hash_table::Entry::Occupied(mut held) => Some(std::mem::replace(held.get_mut(), loc)),
            hash_table::Entry::Vacant(slot) => {
                slot.insert(loc);
                None
            }
        };
        if let Some(old) = old {
            replaced(self.at(old));
            self.slabs.kill(old);
            self.compact();
        }
    }

    /// Removes the copy held for `key`, showing it to `removed` first; false when there
    /// was none.
    pub fn remove(&mut self, key: &[u8], removed: impl FnOnce(EntryRef<'_>)) -> bool {
        let hash = self.hasher.hash_one(key);
        let slabs = &self.slabs;
        let same_key = |l: &Loc| EntryRef::new(slabs.get(*l)).key_bytes() == key;
        let Ok(held) = self.index.find_entry(hash, same_key) else {
            return false;
        };
        let (loc, _) = held.remove();
        removed(self.at(loc));
        self.slabs.kill(loc);
        self.compact();
        true
    }

    /// Every copy, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = EntryRef<'_>> {
        self.index.iter().map(|&l| self.at(l))
    }

    /// Moves the live copies out of every slab that is more than half dead, and releases
    /// those slabs. A copy is live when the index still points at it; a dead one is
    /// left behind.
    fn compact(&mut self) {
        let mut moving = Vec::new();
        while let Some(slab) = self.slabs.next_wasteful() {
            for loc in self.slabs.locs(slab) {
                let hash = self.hasher.hash_one(self.key_at(loc));
                // Compared by location, not by key: only the index's own slot matches.
                if let Some(slot) = self.index.find_mut(hash, |&l| l == loc) {
                    moving.clear();
                    moving.extend_from_slice(self.slabs.get(loc));
                    *slot = self.slabs.append(&moving);
                }
            }
            self.slabs.release(slab);
        }
    }

    fn at(&self, loc: Loc) -> EntryRef<'_> {
        EntryRef::new(self.slabs.get(loc))
    }

    fn key_at(&self, loc: Loc) -> &[u8] {
        self.at(loc).key_bytes()
    }

    /// Slabs holding memory (for tests).
    #[cfg(test)]
    fn slabs_in_use(&self) -> usize {
        self.slabs.in_use()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_replaces_and_removes_by_key() {
        let mut copies = Copies::default();
        copies.insert(&Entry::new("ключ", r#"{"a": [1, 2]}"#), |_| {});
        copies.insert(&Entry::versioned("k", Some("1.2.p"), "[1]"), |_| {});
        copies.insert(&Entry::new("ключ", "2"), |_| {});
        assert_eq!(copies.len(), 2);
        assert_eq!(copies.get("ключ".as_bytes()).map(|e| e.value()), Some("2"));
        let k = copies.get(b"k").map(|e| (e.version(), e.value()));
        assert_eq!(k, Some((Some("1.2.p"), "[1]")));
        assert!(copies.get(b"x").is_none());
        assert!(copies.remove(b"k", |_| {}));
        assert!(!copies.remove(b"k", |_| {}));
        let keys: Vec<&str> = copies.iter().map(|e| e.key()).collect();
        assert_eq!(keys, ["ключ"]);
    }

    /// Writing the same keys over and over leaves dead copies behind; compaction keeps
    /// what they take bounded and every key's latest copy readable.
    #[test]
    fn rewrites_do_not_grow_memory() {
        let mut copies = Copies::default();
        for round in 0..50 {
            for k in 0..2000 {
                let value = format!("\"{}\"", "v".repeat(100 + round));
                copies.insert(&Entry::new(&format!("key-{k}"), &value), |_| {});
            }
        }
        // 2,000 copies of ~120 bytes: under 1 MiB live, so a few slabs, not 50 rounds' worth.
        assert!(
            copies.slabs_in_use() <= 4,
            "{} slabs",
            copies.slabs_in_use()
        );
        assert_eq!(copies.len(), 2000);
        for k in [0, 999, 1999] {
            let value = copies.get(format!("key-{k}").as_bytes()).map(|e| e.value());
            assert_eq!(value.map(str::len), Some(151), "the last round's value");
        }
        for k in 0..2000 {
            assert!(copies.remove(format!("key-{k}").as_bytes(), |_| {}));
        }
        assert!(copies.is_empty());
        assert!(copies.slabs_in_use() <= 1, "only the open slab may stay");
    }
}
