//! Sharding: every key lives on exactly one node, picked by hashing the key.
//!
//! Each node holds a part of the data, so adding nodes adds room; but when a node is
//! down, the keys that hash to it cannot be read or written, and when the number of
//! nodes changes, most keys hash to a different node than before.

use std::sync::Arc;

use super::{Mode, Params};
use crate::placement::modulo::Modulo;
use crate::placement::Placement;

pub struct Sharding;

impl Mode for Sharding {
    fn name(&self) -> &'static str {
        "sharding"
    }

    /// Reads and writes alike go to the node the key hashes to (and, with `replicas: R`,
    /// the next R-1 indexes).
    fn placement(&self, names: Vec<String>, _params: &Params) -> Arc<dyn Placement> {
        Arc::new(Modulo { names })
    }

    fn rule(&self) -> &'static str {
        "each key lives on one node: SHA-256 of the key, read as a number, mod the number of nodes"
    }
}

/// The node a key lives on: SHA-256 of the key's UTF-8 bytes, read as one big-endian
/// unsigned integer, mod `nodes`. The same number as Python's
///
/// ```text
/// int(hashlib.sha256(key.encode()).hexdigest(), 16) % nodes
/// ```
///
/// The 256-bit integer is reduced one byte at a time (`r = (r * 256 + byte) % nodes`),
/// which gives the same remainder without big-number arithmetic.
pub fn placement(key: &str, nodes: usize) -> usize {
    crate::placement::modulo::index(key, nodes)
}

/// The SHA-256 digest of the key's UTF-8 bytes: 32 bytes, the big-endian integer.
pub fn sha256(key: &str) -> [u8; 32] {
    crate::placement::sha256(key)
}

/// The SHA-256 digest of the key, in hex, as `hashlib.sha256(key.encode()).hexdigest()`.
pub fn sha256_hex(key: &str) -> String {
    sha256(key).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values computed with the Python one-liner from the README.
    #[test]
    fn matches_python() {
        assert_eq!(
            sha256_hex("key-7"),
            "78ed7d2bf2a8c4af4a3d3652a89fe8b9f46addb8bc8e7cb69106a6467900f5e6"
        );
        for (key, n, want) in PYTHON {
            assert_eq!(placement(key, *n), *want, "{key} mod {n}");
        }
    }

    /// `(key, N, int(hashlib.sha256(key.encode()).hexdigest(), 16) % N)`
    const PYTHON: &[(&str, usize, usize)] = &[
        ("key-0", 1, 0),
        ("key-0", 2, 0),
        ("key-0", 3, 2),
        ("key-0", 5, 3),
        ("key-0", 30, 8),
        ("key-7", 1, 0),
        ("key-7", 2, 0),
        ("key-7", 3, 0),
        ("key-7", 5, 0),
        ("key-7", 30, 0),
        ("a&b=c", 1, 0),
        ("a&b=c", 2, 1),
        ("a&b=c", 3, 0),
        ("a&b=c", 5, 1),
        ("a&b=c", 30, 21),
        ("100%", 1, 0),
        ("100%", 2, 0),
        ("100%", 3, 1),
        ("100%", 5, 0),
        ("100%", 30, 10),
        ("с пробелом", 1, 0),
        ("с пробелом", 2, 1),
        ("с пробелом", 3, 0),
        ("с пробелом", 5, 1),
        ("с пробелом", 30, 21),
        ("Привет", 1, 0),
        ("Привет", 2, 1),
        ("Привет", 3, 1),
        ("Привет", 5, 1),
        ("Привет", 30, 1),
        ("hello world", 1, 0),
        ("hello world", 2, 1),
        ("hello world", 3, 0),
        ("hello world", 5, 4),
        ("hello world", 30, 9),
        ("x", 1, 0),
        ("x", 2, 1),
        ("x", 3, 2),
        ("x", 5, 0),
        ("x", 30, 5),
    ];
}
