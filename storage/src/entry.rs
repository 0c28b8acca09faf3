//! One copy packed in a single run of bytes: `[key length][version length][key][version][value]`.
//!
//! A million small pairs is where memory goes: two separate boxes (`Box<str>` key,
//! `Box<str>` value) cost two allocations and a 32-byte map slot each; one run of bytes
//! with the lengths in front costs one. An unversioned copy pays one byte more than a
//! bare pair (the version length, 0); a versioned one also carries its version's text
//! (at most 64 bytes). An empty value is a **tombstone**: a live value is never empty
//! JSON text, so no flag byte is needed for it.
//!
//! The same bytes live in two places: an [`Entry`] owns them in one allocation (a write
//! on its way in, a hint, a record of the data file), and the node's own copies keep
//! them end to end in slabs ([`crate::copies`]), read in place through an [`EntryRef`].
//! Hints are a `HashSet<Entry>` that hashes and compares only the key part, and finds
//! an entry by its key bytes through `Borrow<[u8]>`.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};

use crate::buckets;

/// A key, its version (if any) and its value (JSON text, or nothing for a tombstone),
/// in an allocation of its own.
pub struct Entry(Box<[u8]>);

/// The same packed bytes, read where they lie (in an [`Entry`] or in a slab) without
/// copying them. `Copy`, like the `&[u8]` it wraps.
#[derive(Clone, Copy)]
pub struct EntryRef<'a>(&'a [u8]);

/// The key's length (2 bytes, keys are at most 1 KiB) and the version's (1 byte).
const HEAD: usize = 3;

impl Entry {
    /// An unversioned live copy, as a write without `X-Kv-Version` stores it.
    pub fn new(key: &str, value: &str) -> Entry {
        Entry::versioned(key, None, value)
    }

    /// A tombstone: the key was deleted by the write `version`.
    pub fn tombstone(key: &str, version: &str) -> Entry {
        Entry::versioned(key, Some(version), "")
    }

    /// Packs the three parts. Keys longer than `u16::MAX` bytes are refused long before
    /// they get here (the HTTP layer allows 1 KiB) and version texts are at most 64
    /// bytes, so the lengths always fit.
    pub fn versioned(key: &str, version: Option<&str>, value: &str) -> Entry {
        let key_len = u16::try_from(key.len()).unwrap_or(u16::MAX);
        let key = &key.as_bytes()[..key_len as usize];
        let version = version.unwrap_or("").as_bytes();
        let version_len = u8::try_from(version.len()).unwrap_or(u8::MAX);
        let version = &version[..version_len as usize];
        let mut bytes = Vec::with_capacity(HEAD + key.len() + version.len() + value.len());
        bytes.extend_from_slice(&key_len.to_le_bytes());
        bytes.push(version_len);
        bytes.extend_from_slice(key);
        bytes.extend_from_slice(version);
        bytes.extend_from_slice(value.as_bytes());
        Entry(bytes.into_boxed_slice())
    }

    /// The packed bytes, as a slab stores them.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// A view of this entry, for what reads copies wherever they lie.
    pub fn view(&self) -> EntryRef<'_> {
        EntryRef(&self.0)
    }

    pub fn key_bytes(&self) -> &[u8] {
        self.view().key_bytes()
    }

    pub fn key(&self) -> &str {
        self.view().key()
    }

    pub fn version(&self) -> Option<&str> {
        self.view().version()
    }

    pub fn value(&self) -> &str {
        self.view().value()
    }

    pub fn is_tombstone(&self) -> bool {
        self.view().is_tombstone()
    }

    pub fn weight(&self) -> usize {
        self.view().weight()
    }

    pub fn digest(&self) -> u64 {
        self.view().digest()
    }
}

impl<'a> EntryRef<'a> {
    /// Reads bytes that [`Entry::bytes`] gave (and a slab kept unchanged since).
    pub(crate) fn new(bytes: &'a [u8]) -> EntryRef<'a> {
        EntryRef(bytes)
    }

    /// An [`Entry`] of its own holding the same bytes.
    pub fn to_entry(self) -> Entry {
        Entry(self.0.into())
    }

    fn key_len(self) -> usize {
        u16::from_le_bytes([self.0[0], self.0[1]]) as usize
    }

    fn version_end(self) -> usize {
        HEAD + self.key_len() + self.0[2] as usize
    }

    pub fn key_bytes(self) -> &'a [u8] {
        &self.0[HEAD..HEAD + self.key_len()]
    }

    /// The key; every part was `str` when packed, so this never falls back.
    pub fn key(self) -> &'a str {
        std::str::from_utf8(self.key_bytes()).unwrap_or_default()
    }

    /// The version's text, `None` for an unversioned copy.
    pub fn version(self) -> Option<&'a str> {
        let text = &self.0[HEAD + self.key_len()..self.version_end()];
        (!text.is_empty()).then(|| std::str::from_utf8(text).unwrap_or_default())
    }

    /// The value's JSON text; empty for a tombstone.
    pub fn value(self) -> &'a str {
        std::str::from_utf8(&self.0[self.version_end()..]).unwrap_or_default()
    }

    pub fn is_tombstone(self) -> bool {
        self.version_end() == self.0.len()
    }

    /// The bytes of key, version and value, as the node's byte budget counts them.
    pub fn weight(self) -> usize {
        self.0.len() - HEAD
    }

    /// This copy's share of its bucket's digest ([`buckets::copy_hash`]).
    pub fn digest(self) -> u64 {
        buckets::copy_hash(
            self.key(),
            self.version(),
            self.is_tombstone(),
            self.value(),
        )
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
        assert_eq!((e.version(), e.is_tombstone()), (None, false));
        assert_eq!(
            e.weight(),
            "ключ".len() + 13,
            "unversioned: key and value only"
        );
        let mut set = HashSet::new();
        set.insert(e);
        set.replace(Entry::new("ключ", "2"));
        assert_eq!(set.len(), 1);
        assert_eq!(set.get("ключ".as_bytes()).map(Entry::value), Some("2"));
        assert!(!set.contains("k".as_bytes()));
    }

    #[test]
    fn carries_a_version_or_a_tombstone() {
        let e = Entry::versioned("k", Some("1.2.p"), "[1]");
        assert_eq!(
            (e.key(), e.version(), e.value()),
            ("k", Some("1.2.p"), "[1]")
        );
        assert!(!e.is_tombstone());
        let t = Entry::tombstone("k", "3.0.p");
        assert_eq!((t.key(), t.version(), t.value()), ("k", Some("3.0.p"), ""));
        assert!(t.is_tombstone());
        assert_eq!(t.weight(), 6);
    }
}
