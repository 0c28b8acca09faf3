//! Rendezvous (highest random weight) hashing: every node scores every key,
//!
//! ```text
//! score = int.from_bytes(hashlib.sha256(f"{name}:{key}".encode()).digest()[:8], "big")
//! ```
//!
//! and the key lives on the node with the highest score (ties: the earlier node); with
//! `replicas: R`, on the R highest. A node joining wins only the keys it now scores
//! highest on, about 1/N of them; a node leaving gives away only its own keys
//! (`examples/placement/rendezvous.py`).

use super::{hash64, names, Placement, Step};

pub struct Rendezvous {
    pub names: Vec<String>,
}

impl Rendezvous {
    /// Node `i`'s score for `key`.
    pub fn score(&self, i: usize, key: &str) -> u64 {
        hash64(&format!("{}:{key}", self.names[i]))
    }

    fn ranked(&self, key: &str) -> Vec<(u64, usize)> {
        let mut scores: Vec<(u64, usize)> = (0..self.names.len())
            .map(|i| (self.score(i, key), i))
            .collect();
        scores.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        scores
    }
}

impl Placement for Rendezvous {
    fn preference(&self, key: &str, count: usize) -> Vec<usize> {
        self.ranked(key)
            .into_iter()
            .take(count)
            .map(|(_, i)| i)
            .collect()
    }

    fn explain(&self, key: &str, count: usize) -> Vec<Step> {
        let mut steps = vec![Step::new("key", key)];
        for (score, i) in self.ranked(key) {
            steps.push(Step::long(
                format!(
                    "{}'s score: SHA-256(\"{}:{key}\")'s first 8 bytes",
                    self.names[i], self.names[i]
                ),
                score.to_string(),
            ));
        }
        let homes = self.preference(key, count);
        steps.push(Step::new(
            if homes.len() > 1 {
                format!("the {} highest", homes.len())
            } else {
                "the highest: node".to_string()
            },
            names(&self.names, &homes),
        ));
        steps
    }
}
