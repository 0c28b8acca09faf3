//! Placement: which nodes a key lives on, built once per cluster (when a config loads or
//! a node joins) and then asked for each key. One file per strategy, each pure (no I/O),
//! each with its formula in its doc and a Python twin in `examples/placement/`:
//!
//! - [`modulo`]: `SHA-256(key) mod N`, the classroom original's sharding;
//! - [`ring`]: consistent hashing, V tokens per node on a ring of 2^64 positions;
//! - [`rendezvous`]: highest random weight, every node scores the key;
//! - [`everywhere`]: replication, every node in the config's order.
//!
//! [`Placement::preference`] answers a key's nodes, most preferred first, each once: the
//! first R are its replicas. [`Placement::explain`] answers the steps that led there, as
//! data the page and `/explain` show whatever the strategy.

pub mod everywhere;
pub mod modulo;
pub mod rendezvous;
pub mod ring;

use serde::Serialize;
use sha2::{Digest, Sha256};

/// Where keys go over one list of nodes.
pub trait Placement: Send + Sync {
    /// The first `count` distinct nodes for `key` (indexes in the cluster's order), most
    /// preferred first; fewer only when there are fewer nodes.
    fn preference(&self, key: &str, count: usize) -> Vec<usize>;

    /// The steps from the key to its first `count` nodes, for a person to check by hand.
    fn explain(&self, key: &str, count: usize) -> Vec<Step>;

    /// The ring, when this placement is one (the page draws it).
    fn as_ring(&self) -> Option<&ring::Ring> {
        None
    }
}

/// One step of an explanation: what it is, its value (shortened when long), and the
/// whole value when it was shortened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub what: String,
    pub value: String,
    pub full: Option<String>,
}

impl Step {
    pub fn new(what: impl Into<String>, value: impl Into<String>) -> Step {
        Step {
            what: what.into(),
            value: value.into(),
            full: None,
        }
    }

    /// A step whose value is long: shown shortened, whole on request.
    pub fn long(what: impl Into<String>, value: String) -> Step {
        Step {
            what: what.into(),
            value: shorten(&value),
            full: (value.len() > 16).then_some(value),
        }
    }
}

/// A long number as its first and last digits: `115792…639936 (78 digits)`.
pub fn shorten(number: &str) -> String {
    if number.len() <= 16 {
        return number.to_string();
    }
    format!(
        "{}…{} ({} digits)",
        &number[..6],
        &number[number.len() - 6..],
        number.len()
    )
}

/// SHA-256 of a text's UTF-8 bytes.
pub fn sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// The first 8 bytes of SHA-256(text), as one big-endian number: a point on a ring of
/// 2^64 positions. Python: `int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")`.
pub fn hash64(text: &str) -> u64 {
    let d = sha256(text);
    u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// The nodes' names joined for a step: `kv1, kv2`.
pub fn names(names: &[String], picked: &[usize]) -> String {
    picked
        .iter()
        .map(|&i| names[i].as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::modulo::Modulo;
    use super::rendezvous::Rendezvous;
    use super::ring::Ring;
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("kv{i}")).collect()
    }

    fn named(all: &[String], picked: Vec<usize>) -> Vec<&str> {
        picked.into_iter().map(|i| all[i].as_str()).collect()
    }

    /// Each strategy places as its Python twin in `examples/placement/` does. The table
    /// was printed by those scripts: (key, modulo R=2 over 3, ring R=2 over 3, rendezvous
    /// R=2 over 3, ring over 4, rendezvous over 4).
    #[test]
    fn every_strategy_matches_its_python_reference() {
        #[allow(clippy::type_complexity)]
        let table: &[(&str, [&str; 2], [&str; 2], [&str; 2], &str, &str)] = &[
            (
                "key-0",
                ["kv3", "kv1"],
                ["kv2", "kv3"],
                ["kv1", "kv2"],
                "kv2",
                "kv1",
            ),
            (
                "key-7",
                ["kv1", "kv2"],
                ["kv2", "kv1"],
                ["kv2", "kv1"],
                "kv2",
                "kv4",
            ),
            (
                "user:42",
                ["kv2", "kv3"],
                ["kv3", "kv1"],
                ["kv1", "kv3"],
                "kv3",
                "kv1",
            ),
            (
                "a&b=c",
                ["kv1", "kv2"],
                ["kv3", "kv1"],
                ["kv2", "kv1"],
                "kv4",
                "kv4",
            ),
            (
                "Привет",
                ["kv2", "kv3"],
                ["kv1", "kv3"],
                ["kv1", "kv2"],
                "kv4",
                "kv1",
            ),
            (
                "hello world",
                ["kv1", "kv2"],
                ["kv2", "kv1"],
                ["kv3", "kv2"],
                "kv2",
                "kv3",
            ),
            (
                "x",
                ["kv3", "kv1"],
                ["kv2", "kv1"],
                ["kv3", "kv2"],
                "kv4",
                "kv3",
            ),
        ];
        let (three, four) = (names(3), names(4));
        let modulo = Modulo {
            names: three.clone(),
        };
        let ring3 = Ring::new(three.clone(), ring::DEFAULT_VNODES);
        let ring4 = Ring::new(four.clone(), ring::DEFAULT_VNODES);
        let hrw3 = Rendezvous {
            names: three.clone(),
        };
        let hrw4 = Rendezvous {
            names: four.clone(),
        };
        for (key, m, r, h, r4, h4) in table {
            assert_eq!(named(&three, modulo.preference(key, 2)), m, "modulo {key}");
            assert_eq!(named(&three, ring3.preference(key, 2)), r, "ring {key}");
            assert_eq!(
                named(&three, hrw3.preference(key, 2)),
                h,
                "rendezvous {key}"
            );
            assert_eq!(
                named(&four, ring4.preference(key, 1)),
                [*r4],
                "ring/4 {key}"
            );
            assert_eq!(
                named(&four, hrw4.preference(key, 1)),
                [*h4],
                "rendezvous/4 {key}"
            );
        }
    }

    /// The share of 10,000 keys whose node changes when a fourth node joins three.
    fn moved(before: &dyn Placement, after: &dyn Placement) -> f64 {
        let moved = (0..10_000)
            .filter(|i| {
                let key = format!("key-{i}");
                before.preference(&key, 1) != after.preference(&key, 1)
            })
            .count();
        moved as f64 / 10_000.0
    }

    /// From 3 to 4 nodes: mod N moves about 3/4 of the keys, the ring (default vnodes)
    /// and rendezvous about 1/4.
    #[test]
    fn what_moves_from_three_nodes_to_four() {
        let (three, four) = (names(3), names(4));
        let modulo = moved(
            &Modulo {
                names: three.clone(),
            },
            &Modulo {
                names: four.clone(),
            },
        );
        let ring = moved(
            &Ring::new(three.clone(), ring::DEFAULT_VNODES),
            &Ring::new(four.clone(), ring::DEFAULT_VNODES),
        );
        let hrw = moved(&Rendezvous { names: three }, &Rendezvous { names: four });
        assert!((0.70..=0.80).contains(&modulo), "mod N moved {modulo}");
        assert!((0.20..=0.30).contains(&ring), "the ring moved {ring}");
        assert!((0.20..=0.30).contains(&hrw), "rendezvous moved {hrw}");
    }

    /// R copies are R distinct nodes, in every strategy, and never more than N.
    #[test]
    fn copies_are_distinct_nodes() {
        let n = names(5);
        let all: [Box<dyn Placement>; 3] = [
            Box::new(Modulo { names: n.clone() }),
            Box::new(Ring::new(n.clone(), 7)),
            Box::new(Rendezvous { names: n.clone() }),
        ];
        for p in &all {
            for i in 0..200 {
                let homes = p.preference(&format!("k{i}"), 3);
                let mut unique = homes.clone();
                unique.sort_unstable();
                unique.dedup();
                assert_eq!((homes.len(), unique.len()), (3, 3));
                assert_eq!(p.preference(&format!("k{i}"), 9).len(), 5);
            }
        }
    }
}
