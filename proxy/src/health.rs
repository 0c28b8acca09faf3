//! Failure memory (passive health): a node that timed out is remembered as down, so the
//! requests after it do not each wait a full timeout for a closed laptop.
//!
//! A timeout marks the node's URL down for a back-off (1 s, doubling to 30 s) and starts
//! a background probe (`GET /health` once the back-off is up); a successful probe or any
//! answer from the node clears the mark at once. The executor ([`crate::forward`])
//! consults the marks while walking a key's nodes: reads ask marked nodes last, replicated
//! writes skip them, and a request that cannot succeed without a marked node still tries
//! it, so a restarted node serves its first request. A refused connection costs nothing
//! and marks nothing. The memory is per URL, so reloads and joins keep it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The first back-off after a timeout.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// The longest back-off.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// One node marked down.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    /// When it was first marked, in ms since the epoch (for the page: "down since").
    pub since_ms: u64,
    /// The next probe is due then.
    pub probe_at: Instant,
    pub backoff: Duration,
    /// A probe task is running for it (one per node).
    pub probing: bool,
}

/// The marks, by node URL. A std lock, held for one map operation.
#[derive(Default)]
pub struct Health {
    marks: Mutex<HashMap<String, Mark>>,
}

/// What a failed request means for the mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marked {
    /// It was not marked before: a probe must be started.
    Newly,
    /// It was marked already (the back-off doubled, when not probing).
    Again,
}

impl Health {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Mark>> {
        self.marks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Since when `url` is marked down (ms since the epoch), if it is.
    pub fn down_since(&self, url: &str) -> Option<u64> {
        self.lock().get(url).map(|m| m.since_ms)
    }

    pub fn is_down(&self, url: &str) -> bool {
        self.lock().contains_key(url)
    }

    /// The node timed out: mark it, or double its back-off.
    pub fn timed_out(&self, url: &str) -> Marked {
        let mut marks = self.lock();
        match marks.get_mut(url) {
            Some(m) => {
                m.backoff = (m.backoff * 2).min(MAX_BACKOFF);
                m.probe_at = Instant::now() + m.backoff;
                Marked::Again
            }
            None => {
                marks.insert(
                    url.to_string(),
                    Mark {
                        since_ms: now_ms(),
                        probe_at: Instant::now() + FIRST_BACKOFF,
                        backoff: FIRST_BACKOFF,
                        probing: false,
                    },
                );
                Marked::Newly
            }
        }
    }

    /// The node answered: it is up.
    pub fn answered(&self, url: &str) {
        // Most answers come from nodes that were never marked: look before locking for long.
        let mut marks = self.lock();
        if !marks.is_empty() {
            marks.remove(url);
        }
    }

    /// Claims the probe of `url`: `true` once per mark, so one task probes each node.
    pub fn start_probe(&self, url: &str) -> bool {
        match self.lock().get_mut(url) {
            Some(m) if !m.probing => {
                m.probing = true;
                true
            }
            _ => false,
        }
    }

    /// How long the probe of `url` waits before its next try; `None` once it is up.
    pub fn next_probe(&self, url: &str) -> Option<Duration> {
        self.lock()
            .get(url)
            .map(|m| m.probe_at.saturating_duration_since(Instant::now()))
    }

    /// Every marked node: (URL, since ms).
    pub fn marked(&self) -> Vec<(String, u64)> {
        self.lock()
            .iter()
            .map(|(url, m)| (url.clone(), m.since_ms))
            .collect()
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_marks_and_an_answer_clears() {
        let h = Health::default();
        assert!(!h.is_down("http://a"));
        assert_eq!(h.timed_out("http://a"), Marked::Newly);
        assert!(h.is_down("http://a"));
        assert!(h.start_probe("http://a"));
        assert!(!h.start_probe("http://a"), "one probe per node");
        assert_eq!(h.timed_out("http://a"), Marked::Again);
        let wait = h.next_probe("http://a").unwrap();
        assert!(
            wait > FIRST_BACKOFF && wait <= 2 * FIRST_BACKOFF,
            "{wait:?}"
        );
        h.answered("http://a");
        assert!(!h.is_down("http://a"));
        assert_eq!(h.next_probe("http://a"), None);
    }

    #[test]
    fn the_backoff_stops_at_thirty_seconds() {
        let h = Health::default();
        for _ in 0..10 {
            h.timed_out("http://a");
        }
        assert!(h.next_probe("http://a").unwrap() <= MAX_BACKOFF);
    }
}
