//! Consistent hashing: a ring of 2^64 positions. Each node puts `vnodes` tokens on it,
//! token `v` of node `name` at
//!
//! ```text
//! int.from_bytes(hashlib.sha256(f"{name}#{v}".encode()).digest()[:8], "big")
//! ```
//!
//! and a key sits at `int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")`.
//! The key belongs to the node of the first token clockwise from it (at or after its
//! position, wrapping past the top); with `replicas: R`, the next distinct nodes clockwise
//! hold the other copies. Tokens hang on names, not on positions in a list, so a node
//! joining takes only the arcs its own tokens land on: about 1/N of the keys move, not
//! most of them (`examples/placement/ring.py`).

use super::{hash64, names, Placement, Step};

/// Tokens per node when the config does not say: enough that three nodes split the ring
/// within a few percent of a third each.
pub const DEFAULT_VNODES: usize = 100;

pub struct Ring {
    pub names: Vec<String>,
    /// (position, node index, token number), sorted by position.
    pub tokens: Vec<(u64, usize, usize)>,
}

impl Ring {
    pub fn new(names: Vec<String>, vnodes: usize) -> Ring {
        let mut tokens: Vec<(u64, usize, usize)> = names
            .iter()
            .enumerate()
            .flat_map(|(i, name)| (0..vnodes).map(move |v| (hash64(&format!("{name}#{v}")), i, v)))
            .collect();
        tokens.sort_unstable();
        Ring { names, tokens }
    }

    /// Where on the ring (0 to 1 of the way round) `key` sits, and the first token
    /// clockwise from it: what the page's drawing highlights.
    pub fn walk(&self, key: &str) -> (f64, Option<f64>) {
        let position = hash64(key);
        let token = self.tokens.get(self.start(position)).map(|t| fraction(t.0));
        (fraction(position), token)
    }

    /// The token the walk for `position` starts at: the first at or after it, wrapping.
    fn start(&self, position: u64) -> usize {
        let at = self.tokens.partition_point(|(t, _, _)| *t < position);
        if at == self.tokens.len() {
            0
        } else {
            at
        }
    }
}

/// A position as a share of the way round the ring.
pub fn fraction(position: u64) -> f64 {
    position as f64 / 2f64.powi(64)
}

impl Placement for Ring {
    fn as_ring(&self) -> Option<&Ring> {
        Some(self)
    }

    fn preference(&self, key: &str, count: usize) -> Vec<usize> {
        let want = count.min(self.names.len());
        let mut picked = Vec::with_capacity(want);
        if self.tokens.is_empty() {
            return picked;
        }
        let start = self.start(hash64(key));
        for k in 0..self.tokens.len() {
            let node = self.tokens[(start + k) % self.tokens.len()].1;
            if !picked.contains(&node) {
                picked.push(node);
                if picked.len() == want {
                    break;
                }
            }
        }
        picked
    }

    fn explain(&self, key: &str, count: usize) -> Vec<Step> {
        let position = hash64(key);
        let homes = self.preference(key, count);
        let mut steps = vec![
            Step::new("key", key),
            Step::long(
                "position on the ring: SHA-256's first 8 bytes as a number",
                position.to_string(),
            ),
            Step::new(
                "as a share of the way round",
                format!("{:.4}", position as f64 / 2f64.powi(64)),
            ),
        ];
        if let Some(&(token, node, v)) = self.tokens.get(self.start(position)) {
            steps.push(Step::long(
                format!("first token clockwise: {}#{v}", self.names[node]),
                token.to_string(),
            ));
            steps.push(Step::new("node", self.names[node].clone()));
        }
        if homes.len() > 1 {
            steps.push(Step::new(
                format!("{} copies: the next distinct nodes clockwise", homes.len()),
                names(&self.names, &homes),
            ));
        }
        steps
    }
}
