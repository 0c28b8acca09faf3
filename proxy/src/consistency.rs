//! The consistency lab's settings: how many copies must answer, and how copies heal.
//!
//! ```yaml
//! write_quorum: 2          # W: a number, one, majority or all (of the key's copies)
//! read_quorum: majority    # R: likewise
//! read_repair: true        # a read that saw an older or missing copy writes the newest back
//! hinted_handoff: true     # a write whose copy is down goes to the next node, as a hint
//! anti_entropy: true       # a background pass compares copies bucket by bucket and heals
//! anti_entropy_ms: 5000
//! ```
//!
//! None of them set, a cluster behaves as the classroom original did: a write goes to
//! every copy and succeeds at one, a read answers from the first copy that has the key.
//! Every write is stamped with a version all the same ([`crate::clock`]), and a delete
//! leaves a tombstone, so turning healing on later never brings a deleted key back.

use serde::{Deserialize, Serialize};

/// How often anti-entropy compares the copies when the config does not say.
pub const DEFAULT_ANTI_ENTROPY_MS: u64 = 5_000;

/// How many of a key's copies must answer: W or R.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quorum {
    Count(usize),
    Named(Named),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named {
    One,
    Majority,
    All,
}

/// A quorum as the YAML writes it, a number or a word: read as it is, so the config's
/// check can name the field when the word is wrong ([`Written::quorum`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Written {
    Count(usize),
    Word(String),
}

impl Written {
    /// The quorum it means, or one sentence naming `field`.
    pub fn quorum(&self, field: &str) -> Result<Quorum, String> {
        match self {
            Written::Count(n) => Ok(Quorum::Count(*n)),
            Written::Word(w) => match w.as_str() {
                "one" => Ok(Quorum::Named(Named::One)),
                "majority" => Ok(Quorum::Named(Named::Majority)),
                "all" => Ok(Quorum::Named(Named::All)),
                other => Err(format!(
                    "{field}: {other:?} is not a quorum: give a number of copies, `one`, \
                     `majority` or `all`"
                )),
            },
        }
    }
}

impl Quorum {
    /// How many of `copies` copies this is (never more than there are, never zero).
    ///
    /// `majority` is ⌊copies / 2⌋ + 1: with 3 copies, 2, so that any two majorities share
    /// a copy — the reason `W + R > N` reads the newest value.
    pub fn of(self, copies: usize) -> usize {
        let n = match self {
            Quorum::Count(n) => n,
            Quorum::Named(Named::One) => 1,
            Quorum::Named(Named::Majority) => copies / 2 + 1,
            Quorum::Named(Named::All) => copies,
        };
        n.clamp(1, copies.max(1))
    }

    /// What the config said, for pages: `2`, `majority`.
    pub fn label(self) -> String {
        match self {
            Quorum::Count(n) => n.to_string(),
            Quorum::Named(Named::One) => "one".into(),
            Quorum::Named(Named::Majority) => "majority".into(),
            Quorum::Named(Named::All) => "all".into(),
        }
    }
}

/// The consistency settings of one cluster, as the config gives them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Consistency {
    pub write_quorum: Option<Quorum>,
    pub read_quorum: Option<Quorum>,
    pub read_repair: bool,
    pub hinted_handoff: bool,
    pub anti_entropy: bool,
    pub anti_entropy_ms: u64,
}

impl Consistency {
    /// Whether writes follow Dynamo's rules (a quorum, or hints) rather than the
    /// classroom's "every copy, success at one".
    pub fn quorum_writes(&self) -> bool {
        self.write_quorum.is_some() || self.hinted_handoff
    }

    /// Whether reads ask several copies at once and take the newest, rather than the
    /// first copy that has the key.
    pub fn quorum_reads(&self) -> bool {
        self.read_quorum.is_some() || self.read_repair
    }
}

/// A quorum that cannot be met whatever happens is a config error: say so at load.
pub fn check(name: &str, quorum: Option<Quorum>, copies: usize) -> Result<(), String> {
    match quorum {
        Some(Quorum::Count(0)) => Err(format!(
            "{name}: 0 would answer before any copy took it: give 1 or more, `one`, `majority` or `all`"
        )),
        Some(Quorum::Count(n)) if n > copies => Err(format!(
            "{name}: {n} is more than the {copies} copies each key has: no request could ever \
             succeed (give at most {copies}, or `all`)"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorums_count_copies() {
        let parse = |t: &str| {
            let w: Written = serde_yaml::from_str(t).unwrap();
            w.quorum("q").unwrap()
        };
        assert_eq!(parse("2").of(3), 2);
        assert_eq!(parse("one").of(3), 1);
        assert_eq!(parse("majority").of(3), 2);
        assert_eq!(parse("majority").of(4), 3);
        assert_eq!(parse("majority").of(1), 1);
        assert_eq!(parse("all").of(5), 5);
        let most: Written = serde_yaml::from_str("most").unwrap();
        assert!(most
            .quorum("write_quorum")
            .unwrap_err()
            .contains("write_quorum"));
        assert!(check("write_quorum", Some(parse("4")), 3).is_err());
        assert!(check("write_quorum", Some(parse("0")), 3).is_err());
        assert!(check("write_quorum", Some(parse("all")), 3).is_ok());
    }
}
