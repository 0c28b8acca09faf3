//! What moves when the class changes, on the keys stored right now: for each strategy
//! side by side (mod N, the ring, rendezvous), the share of keys whose node changes if a
//! node joins, and if each node leaves; and how evenly the keys spread (the fullest
//! node's count over the mean). The page shows it beside the cards, whatever the mode.
//!
//! It reads every key, so it is computed from a full gather, off the serving thread, and
//! at most for [`SAMPLE`] keys (a class with more sees a sample, and is told so).

use serde::Serialize;

use crate::placement::modulo::Modulo;
use crate::placement::rendezvous::Rendezvous;
use crate::placement::ring::Ring;
use crate::placement::Placement;

/// Keys looked at, at most.
pub const SAMPLE: usize = 5000;

/// The name the "a node joins" column gives the node that joins.
pub const NEWCOMER: &str = "new";

/// One strategy's figures.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Row {
    pub strategy: &'static str,
    /// The share of keys that move if a node joins.
    pub join: f64,
    /// The share that moves if each node leaves, by node.
    pub leave: Vec<(String, f64)>,
    /// The fullest node's keys over the mean.
    pub spread: f64,
}

/// The table, for `keys` on the nodes `names`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Table {
    pub keys: usize,
    /// How many keys the nodes hold in all (more than `keys` when sampled).
    pub of: usize,
    pub rows: Vec<Row>,
}

/// The figures for every strategy; `vnodes` for the ring.
pub fn table(keys: &[&str], of: usize, names: &[String], vnodes: usize) -> Table {
    let step = keys.len().div_ceil(SAMPLE).max(1);
    let keys: Vec<&str> = keys.iter().step_by(step).copied().collect();
    type Build = fn(Vec<String>, usize) -> Box<dyn Placement>;
    let strategies: [(&'static str, Build); 3] = [
        ("mod N", |n, _| Box::new(Modulo { names: n })),
        ("ring", |n, v| Box::new(Ring::new(n, v))),
        ("rendezvous", |n, _| Box::new(Rendezvous { names: n })),
    ];
    let rows = strategies
        .iter()
        .map(|(strategy, build)| {
            let now = homes(&*build(names.to_vec(), vnodes), names, &keys);
            let mut grown = names.to_vec();
            grown.push(NEWCOMER.to_string());
            let join = moved(&now, &homes(&*build(grown.clone(), vnodes), &grown, &keys));
            let leave = names
                .iter()
                .map(|gone| {
                    let rest: Vec<String> = names.iter().filter(|n| *n != gone).cloned().collect();
                    let after = if rest.is_empty() {
                        vec![String::new(); keys.len()]
                    } else {
                        homes(&*build(rest.clone(), vnodes), &rest, &keys)
                    };
                    (gone.clone(), moved(&now, &after))
                })
                .collect();
            Row {
                strategy,
                join,
                leave,
                spread: spread(&now, names),
            }
        })
        .collect();
    Table {
        keys: keys.len(),
        of,
        rows,
    }
}

/// Each key's node, by name (indexes differ between node lists; names do not).
fn homes(p: &dyn Placement, names: &[String], keys: &[&str]) -> Vec<String> {
    keys.iter()
        .map(|k| {
            p.preference(k, 1)
                .first()
                .map(|&i| names[i].clone())
                .unwrap_or_default()
        })
        .collect()
}

/// The share of keys whose node differs.
fn moved(before: &[String], after: &[String]) -> f64 {
    if before.is_empty() {
        return 0.0;
    }
    let n = before.iter().zip(after).filter(|(a, b)| a != b).count();
    round(n as f64 / before.len() as f64)
}

/// The fullest node's count over the mean.
fn spread(homes: &[String], names: &[String]) -> f64 {
    if homes.is_empty() || names.is_empty() {
        return 1.0;
    }
    let most = names
        .iter()
        .map(|n| homes.iter().filter(|h| *h == n).count())
        .max()
        .unwrap_or(0);
    round(most as f64 * names.len() as f64 / homes.len() as f64)
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On 10,000 keys from 3 nodes to 4: mod N moves about 3/4, the ring and rendezvous
    /// about 1/4; a node leaving moves its own keys (about 1/3) under the ring and
    /// rendezvous, and most under mod N.
    #[test]
    fn the_table_shows_the_lesson() {
        let keys: Vec<String> = (0..10_000).map(|i| format!("key-{i}")).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let names: Vec<String> = ["kv1", "kv2", "kv3"].map(String::from).to_vec();
        let t = table(&keys, keys.len(), &names, 100);
        assert_eq!(t.keys, 5000, "sampled");
        let row = |s: &str| t.rows.iter().find(|r| r.strategy == s).unwrap().clone();
        assert!((0.70..=0.80).contains(&row("mod N").join), "{t:?}");
        assert!((0.20..=0.30).contains(&row("ring").join), "{t:?}");
        assert!((0.20..=0.30).contains(&row("rendezvous").join), "{t:?}");
        for (_, share) in row("rendezvous").leave {
            assert!((0.28..=0.40).contains(&share), "{t:?}");
        }
        assert!(row("mod N").leave.iter().all(|(_, s)| *s > 0.5), "{t:?}");
        assert!(row("ring").spread < 1.25, "{t:?}");
    }
}
