//! Chaos from the page: the teacher cuts a node off or slows it down *in the proxy*,
//! without touching the student's laptop.
//!
//! `POST /chaos` `{"node": "kv2", "fault": "partition" | "slow", "ms": 300}` and
//! `DELETE /chaos` (every node) or `DELETE /chaos?node=kv2` (one). A partitioned node is
//! answered for at once, as if its network were gone ("cut off by /chaos"); a slow one
//! gets every request `ms` later (past `timeout_ms` that is a timeout, and the node is
//! marked down as a real slow node would be). Faults belong to the node's URL, like the
//! failure memory, so a reload keeps them; healing clears that memory at once.
//! Only the teacher may do it: `admin_token` is required (refused when none is set).

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use serde::Deserialize;

/// The longest delay `slow` may add: past it, a partition says the same thing faster.
pub const MAX_SLOW_MS: u64 = 60_000;

/// What the proxy pretends about a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Every request to it fails at once, as if its cable were cut.
    Partition,
    /// Every request to it waits this long before it is sent.
    Slow { ms: u64 },
}

impl Fault {
    /// As an order would say it: `"partition"`, or `"slow"` and its `ms`.
    pub fn name(&self) -> (&'static str, Option<u64>) {
        match self {
            Fault::Partition => ("partition", None),
            Fault::Slow { ms } => ("slow", Some(*ms)),
        }
    }

    /// In words, for cards and errors.
    pub fn describe(&self) -> String {
        match self {
            Fault::Partition => "partitioned by the teacher (/chaos)".into(),
            Fault::Slow { ms } => format!("slowed by {ms} ms by the teacher (/chaos)"),
        }
    }
}

/// A `POST /chaos` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Order {
    pub node: String,
    pub fault: String,
    #[serde(default)]
    pub ms: Option<u64>,
}

impl Order {
    /// The fault the order asks for, or why it makes no sense.
    pub fn fault(&self) -> Result<Fault, String> {
        match (self.fault.as_str(), self.ms) {
            ("partition", _) => Ok(Fault::Partition),
            ("slow", Some(ms)) if (1..=MAX_SLOW_MS).contains(&ms) => Ok(Fault::Slow { ms }),
            ("slow", _) => Err(format!(
                "a slow fault needs \"ms\": how many milliseconds to add, 1 to {MAX_SLOW_MS}"
            )),
            (other, _) => Err(format!(
                "unknown fault {other:?}: send \"partition\" or \"slow\" (with \"ms\")"
            )),
        }
    }
}

/// The faults in force, by node URL. A std lock: held to copy or change one entry.
#[derive(Default)]
pub struct Chaos {
    faults: RwLock<HashMap<String, Fault>>,
}

impl Chaos {
    pub fn set(&self, url: &str, fault: Fault) {
        let mut faults = self.faults.write().unwrap_or_else(|e| e.into_inner());
        faults.insert(url.to_string(), fault);
    }

    /// Heals one node (`Some(url)`) or all; answers the URLs healed.
    pub fn heal(&self, url: Option<&str>) -> Vec<String> {
        let mut faults = self.faults.write().unwrap_or_else(|e| e.into_inner());
        match url {
            Some(url) => faults
                .remove_entry(url)
                .map(|(u, _)| u)
                .into_iter()
                .collect(),
            None => faults.drain().map(|(u, _)| u).collect(),
        }
    }

    /// The fault on a node, if any. Asked on every request: a read lock on a map that is
    /// almost always empty.
    pub fn of(&self, url: &str) -> Option<Fault> {
        let faults = self.faults.read().unwrap_or_else(|e| e.into_inner());
        if faults.is_empty() {
            return None;
        }
        faults.get(url).copied()
    }

    /// How long a request to the node waits first (a slow fault), if at all.
    pub fn delay(&self, url: &str) -> Option<Duration> {
        match self.of(url) {
            Some(Fault::Slow { ms }) => Some(Duration::from_millis(ms)),
            _ => None,
        }
    }
}

impl crate::Proxy {
    /// `GET /chaos` lists the faults; `POST` makes one; `DELETE` heals (all, or `?node=`).
    pub(crate) async fn chaos(
        &self,
        cluster: &crate::cluster::Cluster,
        req: hyper::Request<hyper::body::Incoming>,
    ) -> Result<storage::http::Response, storage::http::HttpError> {
        use hyper::{Method, StatusCode};
        use serde_json::json;
        use storage::http::{self, HttpError};

        let by_name = |name: &str| {
            cluster
                .nodes
                .iter()
                .find(|n| n.name == name)
                .ok_or_else(|| {
                    HttpError::new(
                        StatusCode::NOT_FOUND,
                        format!(
                            "no node named {name:?} here; the nodes are {}",
                            cluster.names().join(", ")
                        ),
                    )
                })
        };
        match *req.method() {
            Method::POST => {
                let timeout = cluster.config.limits().body_timeout;
                let body = http::read_body(req, 4096, timeout).await?;
                let order: Order = serde_json::from_slice(&body).map_err(|e| {
                    HttpError::new(
                        StatusCode::BAD_REQUEST,
                        format!(
                            "send {{\"node\": \"kv2\", \"fault\": \"partition\"}} or \
                             {{\"node\": \"kv2\", \"fault\": \"slow\", \"ms\": 300}}: {e}"
                        ),
                    )
                })?;
                let fault = order
                    .fault()
                    .map_err(|why| HttpError::new(StatusCode::BAD_REQUEST, why))?;
                let node = by_name(&order.node)?;
                self.upstream.chaos.set(&node.base, fault);
                let text = format!("node {} is {}", node.name, fault.describe());
                tracing::warn!("chaos: {text}");
                self.recent.event("chaos", text.clone());
                self.snapshots.wrote();
                Ok(http::json(
                    StatusCode::OK,
                    &json!({"message": text, "node": node.name, "fault": fault.name().0,
                            "ms": fault.name().1}),
                ))
            }
            Method::DELETE => {
                let only = http::query_param(req.uri().query(), "node")?;
                let url = match &only {
                    Some(name) => Some(by_name(name)?.base.clone()),
                    None => None,
                };
                let healed_urls = self.upstream.chaos.heal(url.as_deref());
                let healed: Vec<String> = cluster
                    .nodes
                    .iter()
                    .filter(|n| healed_urls.contains(&n.base) || url.as_ref() == Some(&n.base))
                    .map(|n| {
                        // What the fault taught the failure memory is forgotten at once.
                        self.upstream.health.answered(&n.base);
                        n.name.clone()
                    })
                    .collect();
                let text = if healed.is_empty() {
                    "chaos healed: no fault was in force".to_string()
                } else {
                    format!("chaos healed: {}", healed.join(", "))
                };
                tracing::info!("{text}");
                self.recent.event("chaos", text.clone());
                self.snapshots.wrote();
                Ok(http::json(
                    StatusCode::OK,
                    &json!({"message": text, "healed": healed}),
                ))
            }
            _ => {
                let faults: Vec<serde_json::Value> = cluster
                    .nodes
                    .iter()
                    .filter_map(|n| {
                        self.upstream.chaos.of(&n.base).map(|f| {
                            json!({"node": n.name, "url": n.url, "fault": f.name().0, "ms": f.name().1,
                                   "text": f.describe()})
                        })
                    })
                    .collect();
                Ok(http::json(StatusCode::OK, &json!({"faults": faults})))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(fault: &str, ms: Option<u64>) -> Order {
        Order {
            node: "kv2".into(),
            fault: fault.into(),
            ms,
        }
    }

    #[test]
    fn orders_say_what_is_wrong() {
        assert_eq!(order("partition", None).fault(), Ok(Fault::Partition));
        assert_eq!(
            order("slow", Some(300)).fault(),
            Ok(Fault::Slow { ms: 300 })
        );
        assert!(order("slow", None).fault().unwrap_err().contains("ms"));
        assert!(order("slow", Some(0)).fault().is_err());
        assert!(order("explode", None)
            .fault()
            .unwrap_err()
            .contains("partition"));
    }

    #[test]
    fn healing_one_leaves_the_others() {
        let chaos = Chaos::default();
        chaos.set("http://a", Fault::Partition);
        chaos.set("http://b", Fault::Slow { ms: 5 });
        assert_eq!(chaos.heal(Some("http://a")), ["http://a"]);
        assert_eq!(chaos.of("http://a"), None);
        assert_eq!(chaos.delay("http://b"), Some(Duration::from_millis(5)));
        assert_eq!(chaos.heal(None), ["http://b"]);
        assert_eq!(chaos.of("http://b"), None);
    }
}
