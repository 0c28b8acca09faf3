//! The last requests through the proxy, for the /state page: each curl in the room shows
//! up on the projector with where it went and how long it took.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// How many requests the page lists.
pub const KEEP: usize = 20;

/// How many recently written keys are remembered, so a node's card lists its newest
/// keys first even when it holds thousands.
pub const KEEP_KEYS: usize = 500;

/// One request as the page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Milliseconds since the Unix epoch, so the browser can say "2 s ago".
    pub at_ms: u64,
    pub method: String,
    pub key: String,
    /// The node or nodes that answered.
    pub nodes: Vec<String>,
    /// Every node asked or skipped, in order, with what came of it.
    pub trail: Vec<crate::forward::Step>,
    /// What the answers added up to under quorums: `W=2: 2 of 3 stored it, quorum met`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
    pub status: u16,
    pub ms: f64,
}

/// Where a request went: the nodes that answered, every step, and what it added up to.
pub struct Way {
    pub nodes: Vec<String>,
    pub trail: Vec<crate::forward::Step>,
    pub note: String,
}

/// How many config events the page lists.
pub const KEEP_EVENTS: usize = 8;

/// How long the notice that the number of nodes changed stays on the page (a `/clear`
/// removes it sooner: the keys it warns about are gone).
pub const NOTICE_FOR: std::time::Duration = std::time::Duration::from_secs(60);

/// Something that changed the class: a reload, a mode switch, a node joining or leaving,
/// and an edit refused, with its reason (a teacher watching the projector must not think
/// a bad edit took effect).
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub at_ms: u64,
    /// `reload`, `rejected`, `joined`, `left`, `progress`: the page colours by it.
    pub kind: &'static str,
    pub text: String,
}

/// A ring of the last [`KEEP`] requests, [`KEEP_KEYS`] written keys and [`KEEP_EVENTS`]
/// config events. Std `Mutex`es: each is held for a push or a copy only.
#[derive(Default)]
pub struct Recent {
    entries: Mutex<VecDeque<Entry>>,
    /// Keys written, newest last, each once.
    keys: Mutex<VecDeque<String>>,
    /// The last change to the number of nodes, in words, and when, for the page.
    notice: Mutex<Option<(std::time::Instant, String)>>,
    events: Mutex<VecDeque<Event>>,
}

impl Recent {
    pub fn record(&self, method: &str, key: &str, way: Way, status: u16, ms: f64) {
        let Way { nodes, trail, note } = way;
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        // The whole key is remembered, to match the nodes' keys; the list shows less.
        if method != "GET" && !key.is_empty() {
            let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
            keys.retain(|k| k != key);
            if keys.len() == KEEP_KEYS {
                keys.pop_front();
            }
            keys.push_back(key.to_string());
        }
        let key: String = key.chars().take(200).collect();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() == KEEP {
            entries.pop_front();
        }
        entries.push_back(Entry {
            at_ms,
            method: method.to_string(),
            key,
            nodes,
            trail,
            note,
            status,
            ms,
        });
    }

    /// Newest first.
    pub fn list(&self) -> Vec<Entry> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.iter().rev().cloned().collect()
    }

    /// The recently written keys, newest first.
    pub fn keys(&self) -> Vec<String> {
        let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.iter().rev().cloned().collect()
    }
}

impl Recent {
    /// Remembers what just changed for the page (the number of nodes, say).
    pub fn set_notice(&self, text: String) {
        *self.notice.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((std::time::Instant::now(), text));
    }

    /// The notice, for [`NOTICE_FOR`] after it was set.
    pub fn notice(&self) -> Option<String> {
        let notice = self.notice.lock().unwrap_or_else(|e| e.into_inner());
        notice
            .as_ref()
            .filter(|(at, _)| at.elapsed() < NOTICE_FOR)
            .map(|(_, text)| text.clone())
    }

    /// The class was cleared: what the notice warned about is gone with the keys.
    pub fn cleared(&self) {
        *self.notice.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Remembers a config event for the page's list. A `progress` event replaces the
    /// newest one when that is progress too, so a rebalance counts up in one line.
    pub fn event(&self, kind: &'static str, text: String) {
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        if kind == "progress" && events.back().is_some_and(|e| e.kind == "progress") {
            events.pop_back();
        }
        if events.len() == KEEP_EVENTS {
            events.pop_front();
        }
        events.push_back(Event {
            at_ms: crate::health::now_ms(),
            kind,
            text,
        });
    }

    /// The config events, newest first.
    pub fn events(&self) -> Vec<Event> {
        let events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        events.iter().rev().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Recent;

    /// Progress counts up in one line; other events keep their own.
    #[test]
    fn progress_replaces_progress_only() {
        let r = Recent::default();
        r.event("reload", "config reloaded".into());
        r.event("progress", "1 of 3".into());
        r.event("progress", "2 of 3".into());
        let texts: Vec<String> = r.events().into_iter().map(|e| e.text).collect();
        assert_eq!(texts, ["2 of 3", "config reloaded"]);
    }
}
