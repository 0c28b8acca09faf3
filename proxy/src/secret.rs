//! Random strings nobody can guess: the proxy's own id (for loop detection) and the
//! secret each joined node gets back from `/join`.
//!
//! Read from the operating system's generator (`/dev/urandom`); where there is none,
//! SHA-256 over the clock, the process id and std's per-process random hash keys.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::Read;

use sha2::{Digest, Sha256};

/// `bytes` random bytes as lowercase hex (twice as many characters).
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    let from_os = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_ok();
    if !from_os {
        let mut seed = Sha256::new();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        seed.update(now.to_le_bytes());
        seed.update(std::process::id().to_le_bytes());
        let mut h = RandomState::new().build_hasher();
        h.write_u128(now);
        seed.update(h.finish().to_le_bytes());
        let digest = seed.finalize();
        for (i, b) in buf.iter_mut().enumerate() {
            *b = digest[i % digest.len()];
        }
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two secrets in time that does not depend on where the first difference is.
pub fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_differ_and_compare() {
        let (a, b) = (random_hex(16), random_hex(16));
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(same(&a, &a.clone()));
        assert!(!same(&a, &b));
        assert!(!same("ab", "abc"));
    }
}
