//! Buckets: the key space cut into 64 parts, so two replicas can find where they differ
//! by comparing 64 numbers instead of every key.
//!
//! A key's bucket is FNV-1a 64 of its UTF-8 bytes, mod 64: a formula a student can redo
//! by hand (or in three lines of Python), and the proxy uses this same function. Each
//! bucket has a digest, the XOR of one hash per copy in it ([`copy_hash`]); XOR makes
//! the digest independent of the order writes came in, and lets a write update it in
//! O(1): XOR the old copy's hash out and the new one's in. Equal digests mean (almost
//! surely) equal buckets; anti-entropy then reads only the buckets whose digests differ.
//!
//! The hash is written out here rather than taken from std: `DefaultHasher` may change
//! between Rust releases, and two nodes built with different compilers must agree.

/// How many buckets the key space is cut into.
pub const BUCKETS: usize = 64;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 carried on over more bytes: start from [`fnv1a64`]`(b"")` (the offset basis).
fn fnv_more(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// FNV-1a 64: start at 0xcbf29ce484222325; for each byte, `h ^= byte; h *= 0x100000001b3`
/// (wrapping).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    fnv_more(FNV_OFFSET, bytes)
}

/// The bucket a key belongs to: `fnv1a64(key as UTF-8) % 64`.
pub fn bucket_of(key: &str) -> usize {
    (fnv1a64(key.as_bytes()) % BUCKETS as u64) as usize
}

/// One copy's share of its bucket's digest: FNV-1a 64 over the key, the version text
/// (empty when unversioned), a 0 or 1 for live or tombstone, and the value text (empty
/// for a tombstone), each followed by a 0xff byte. 0xff never occurs in UTF-8, so no two
/// different copies give the same bytes.
pub fn copy_hash(key: &str, version: Option<&str>, tombstone: bool, value: &str) -> u64 {
    let mut h = FNV_OFFSET;
    for part in [
        key.as_bytes(),
        version.unwrap_or("").as_bytes(),
        if tombstone { b"1" } else { b"0" },
        value.as_bytes(),
    ] {
        h = fnv_more(h, part);
        h = fnv_more(h, &[0xff]);
    }
    h
}

/// The 64 bucket digests, kept up to date by every write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests([u64; BUCKETS]);

impl Default for Digests {
    fn default() -> Self {
        Digests([0; BUCKETS])
    }
}

impl Digests {
    /// Adds a copy to its bucket, or takes it out again: XOR is its own inverse.
    pub fn toggle(&mut self, key: &str, copy_hash: u64) {
        self.0[bucket_of(key)] ^= copy_hash;
    }

    pub fn buckets(&self) -> &[u64; BUCKETS] {
        &self.0
    }

    /// The whole node's digest: the XOR of every bucket's.
    pub fn whole(&self) -> u64 {
        self.0.iter().fold(0, |a, b| a ^ b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published FNV-1a 64 test vectors, so the proxy and a student's Python agree.
    #[test]
    fn fnv1a64_matches_the_reference() {
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
        assert_eq!(bucket_of("a"), 0xaf63dc4c8601ec8c % 64);
    }

    #[test]
    fn copies_that_differ_anywhere_hash_differently() {
        let base = copy_hash("k", Some("1.0.a"), false, "1");
        assert_ne!(base, copy_hash("k", Some("1.0.b"), false, "1"));
        assert_ne!(base, copy_hash("k", None, false, "1"));
        assert_ne!(base, copy_hash("k", Some("1.0.a"), false, "2"));
        assert_ne!(
            copy_hash("k", Some("1.0.a"), true, ""),
            copy_hash("k", Some("1.0.a"), false, "")
        );
        assert_ne!(
            copy_hash("ab", None, false, "c"),
            copy_hash("a", None, false, "bc")
        );
    }
}
