//! Replication: every key lives on every node. The preference is the config's order, the
//! same for every key, so reads ask kv1, then kv2, and so on.

use super::{names, Placement, Step};

pub struct Everywhere {
    pub names: Vec<String>,
}

impl Placement for Everywhere {
    fn preference(&self, _key: &str, count: usize) -> Vec<usize> {
        (0..self.names.len().min(count)).collect()
    }

    fn explain(&self, key: &str, count: usize) -> Vec<Step> {
        let all = self.preference(key, count);
        let order = all
            .iter()
            .map(|&i| self.names[i].as_str())
            .collect::<Vec<_>>()
            .join(", then ");
        vec![
            Step::new("key", key),
            Step::new(
                "lives on",
                format!("every node: {}", names(&self.names, &all)),
            ),
            Step::new(
                "writes go to",
                format!("{}, at once", names(&self.names, &all)),
            ),
            Step::new(
                "reads try",
                format!("{order} (the first that has it answers)"),
            ),
        ]
    }
}
