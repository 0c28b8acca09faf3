//! Versions for writes: a hybrid logical clock (HLC).
//!
//! Every write the proxy sends is stamped `X-Kv-Version: <ms>.<counter>.<proxy id>`: the
//! wall clock in milliseconds, a counter that orders writes within one millisecond (and
//! keeps counting up if the wall clock steps back), and the proxy's id to break ties
//! between proxies. Nodes keep the newest version of each key: last write wins.
//!
//! What last-write-wins loses: two clients writing the same key at once each get 200,
//! and only one value survives; a proxy whose clock runs ahead wins against later writes
//! from a proxy whose clock is behind. Vector clocks would keep both values as siblings
//! and let the reader merge them; this lab keeps one value and says so.

use std::sync::Mutex;

use storage::version::Version;

/// The clock of one proxy.
pub struct Clock {
    /// The last version handed out: a std `Mutex`, held for a comparison and an add.
    last: Mutex<(u64, u32)>,
    /// This proxy's part of every version (letters, digits and `-` only).
    id: String,
}

impl Clock {
    pub fn new(id: &str) -> Clock {
        let id: String = id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .take(32)
            .collect();
        Clock {
            last: Mutex::new((0, 0)),
            id: if id.is_empty() { "proxy".into() } else { id },
        }
    }

    /// A version newer than every one this clock handed out or saw.
    pub fn stamp(&self) -> Version {
        let now = crate::health::now_ms();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        *last = if now > last.0 {
            (now, 0)
        } else {
            (last.0, last.1.saturating_add(1))
        };
        Version::new(last.0, last.1, &self.id)
            .expect("milliseconds, a counter and a checked id make a version")
    }

    /// Moves the clock past a version seen on a node (written by another proxy whose
    /// clock is ahead), so this proxy's next write is newer than what it just read.
    pub fn observe(&self, seen: &Version) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if (seen.ms(), seen.counter()) > *last {
            *last = (seen.ms(), seen.counter());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stamp_is_newer_than_the_last_and_than_what_was_seen() {
        let clock = Clock::new("kv-proxy-ab12");
        let a = clock.stamp();
        let b = clock.stamp();
        assert!(b > a, "{b} after {a}");
        let ahead = Version::new(a.ms() + 60_000, 7, "other").unwrap();
        clock.observe(&ahead);
        let c = clock.stamp();
        assert!(c > ahead, "{c} after {ahead}");
        assert!(c.to_string().ends_with(".kv-proxy-ab12"));
    }
}
