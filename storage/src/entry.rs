//! One stored pair, key and value in a single allocation: `[key length][key][value]`.
//!
//! A million small pairs is where memory goes: two separate boxes (`Box<str>` key,
//! `Box<str>` value) cost two allocations and a 32-byte map slot each; one box with the
//! key's length in front costs one allocation and a 16-byte slot. The map is a
//! `HashSet<Entry>` that hashes and compares only the key part, and finds an entry by
//! its key bytes through `Borrow<[u8]>`.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};

/// A key and its value (JSON text), both UTF-8, packed together.
pub struct Entry(Box<[u8]>);

/// The key's length is stored in this many bytes; keys are at most 1 KiB.
const LEN: usize = 2;

impl Entry {
    /// Packs `key` and `value`. Keys longer than `u16::MAX` bytes are refused long before
    /// they get here (the HTTP layer allows 1 KiB), so the length always fits.
    pub fn new(key: &str, value: &str) -> Entry {
        let len = u16::try_from(key.len()).unwrap_or(u16::MAX);
        let key = &key.as_bytes()[..len as usize];
        let mut bytes = Vec::with_capacity(LEN + key.len() + value.len());
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(key);
        bytes.extend_from_slice(value.as_bytes());
        Entry(bytes.into_boxed_slice())
    }

    fn key_len(&self) -> usize {
        u16::from_le_bytes([self.0[0], self.0[1]]) as usize
    }

    pub fn key_bytes(&self) -> &[u8] {
        &self.0[LEN..LEN + self.key_len()]
    }

    /// The key; both parts were `str` when packed, so this never falls back.
    pub fn key(&self) -> &str {
        std::str::from_utf8(self.key_bytes()).unwrap_or_default()
    }

    /// The bytes of key and value, as the node's byte budget counts them.
    pub fn weight(&self) -> usize {
        self.0.len() - LEN
    }

    /// The value's JSON text.
    pub fn value(&self) -> &str {
        std::str::from_utf8(&self.0[LEN + self.key_len()..]).unwrap_or_default()
    }
}

/// Only the key decides where an entry sits and which entry it is.
impl Hash for Entry {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Must hash exactly as `[u8]` does, for lookups through `Borrow<[u8]>`.
        self.key_bytes().hash(state)
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Entry) -> bool {
        self.key_bytes() == other.key_bytes()
    }
}

impl Eq for Entry {}

impl Borrow<[u8]> for Entry {
    fn borrow(&self) -> &[u8] {
        self.key_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::Entry;
    use std::collections::HashSet;

    #[test]
    fn packs_and_finds_by_key() {
        let e = Entry::new("ключ", r#"{"a": [1, 2]}"#);
        assert_eq!(e.key(), "ключ");
        assert_eq!(e.value(), r#"{"a": [1, 2]}"#);
        let mut set = HashSet::new();
        set.insert(e);
        set.replace(Entry::new("ключ", "2"));
        assert_eq!(set.len(), 1);
        assert_eq!(set.get("ключ".as_bytes()).map(Entry::value), Some("2"));
        assert!(!set.contains("k".as_bytes()));
    }
}
