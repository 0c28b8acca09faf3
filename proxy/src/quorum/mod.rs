//! Carries out a [`Quorum`] plan: Dynamo's writes and reads over a key's copies.
//!
//! - **Write**: sent to every home at once; answered 200 as soon as W of them stored it
//!   (the others still get it, in the background). With hinted handoff, a home that is
//!   marked down, or fails, is stood in for by the next spare node of the key's list,
//!   which keeps the write as a *hint* for it (`/put?key=K&hint=kv2`): the hint counts
//!   toward W (a sloppy quorum) and [`crate::handoff`] delivers it when the home is back.
//!   Fewer than W: 503 with `acked`, `needed` and each node's outcome; what the write
//!   left behind is said, because it is not undone (a copy that took it keeps it).
//! - **Read**: R homes asked at once (every home with read repair), a home that fails
//!   replaced by the next; the newest copy wins (versions: [`crate::clock`]); a
//!   tombstone newer than every value means the key was deleted (404). With read
//!   repair, every home that answered with an older or missing copy gets the newest
//!   written back before the answer goes out, and the answer says which.
//!
//! Every answer carries `X-Kv-Quorum: agreed/copies` and a note for the page's feed.
//!
//! The write is [`write`], the read [`read`]; what a copy is worth ([`Seen`]) and the
//! write that heals one ([`repair_request`]) are shared with [`crate::handoff`] and
//! [`crate::anti_entropy`].

mod read;
mod write;

use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, StatusCode};
use storage::http::{encode_component, Response};
use storage::version::Version;

use crate::cluster::{Cluster, NodeAddr};
use crate::forward::Forwarded;
use crate::mode::{Op, Quorum};
use crate::upstream::{Answer, NodeRequest, Upstream};

pub const QUORUM_HEADER: HeaderName = HeaderName::from_static("x-kv-quorum");
pub const REPAIRED_HEADER: HeaderName = HeaderName::from_static("x-kv-repaired");

/// Carries out `q` for `req`.
pub async fn run(upstream: &Upstream, cluster: &Cluster, q: Quorum, req: NodeRequest) -> Forwarded {
    match q.op {
        Op::Write => write::write(upstream, cluster, q, req).await,
        Op::Read => read::read(upstream, cluster, q, req).await,
    }
}

/// A copy as a read saw it, in the order "newer": nothing, a value no one versioned,
/// then versioned values and tombstones by their version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Seen {
    Missing,
    Unversioned,
    Versioned(Version, Kind),
}

/// A versioned copy is a value or a tombstone (a delete, remembered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Deleted,
    Value,
}

impl Seen {
    /// What an answer says the node holds: a 200 holds a value, a 404 holds nothing or a
    /// tombstone (its version in `X-Kv-Version`).
    pub fn of(answer: &Answer) -> Seen {
        match (answer.status == StatusCode::OK, &answer.version) {
            (true, Some(v)) => Seen::Versioned(v.clone(), Kind::Value),
            (true, None) => Seen::Unversioned,
            (false, Some(v)) => Seen::Versioned(v.clone(), Kind::Deleted),
            (false, None) => Seen::Missing,
        }
    }

    fn is_value(&self) -> bool {
        matches!(self, Seen::Unversioned | Seen::Versioned(_, Kind::Value))
    }
}

/// The write that brings a stale copy of `key` up to `newest`: the value (its JSON
/// text) put back with its version, or the tombstone's delete. `None` when there is
/// nothing to bring (the newest is nothing at all).
pub fn repair_request(key: &str, newest: &Seen, value: Option<&str>) -> Option<NodeRequest> {
    let q = encode_component(key);
    let (method, path, body, version) = match newest {
        Seen::Missing => return None,
        Seen::Versioned(v, Kind::Deleted) => (
            Method::DELETE,
            format!("/delete?key={q}"),
            String::new(),
            Some(v.clone()),
        ),
        Seen::Versioned(v, Kind::Value) => (
            Method::POST,
            format!("/put?key={q}"),
            format!("{{\"value\":{}}}", value?),
            Some(v.clone()),
        ),
        Seen::Unversioned => (
            Method::POST,
            format!("/put?key={q}"),
            format!("{{\"value\":{}}}", value?),
            None,
        ),
    };
    Some(NodeRequest {
        method,
        path_and_query: path,
        body: body.into(),
        content_type: Some(HeaderValue::from_static("application/json")),
        via: None,
        key: Some(key.to_string()),
        version,
    })
}

/// Writes `fix` to every stale copy at once; answers the nodes it healed.
pub async fn repair(
    upstream: &Upstream,
    cluster: &Cluster,
    stale: &[NodeAddr],
    fix: &NodeRequest,
) -> Vec<String> {
    let (upstream, fix, timeout) = (upstream.clone(), fix.clone(), cluster.timeout);
    crate::each::each_node(stale.to_vec(), move |node| {
        let (upstream, fix) = (upstream.clone(), fix.clone());
        async move { upstream.send(&node, &fix, timeout).await }
    })
    .await
    .into_iter()
    .filter(|(_, r)| {
        r.as_ref()
            .and_then(|r| r.as_ref().ok())
            .is_some_and(|a| a.status.is_success() || a.status == StatusCode::NOT_FOUND)
    })
    .map(|(n, _)| n.name)
    .collect()
}

/// The key's preference list in words, for the feed: `homes kv2, kv3 (spares kv1)`.
pub(crate) fn preference(cluster: &Cluster, q: &Quorum) -> String {
    let names = |list: &[usize]| -> String {
        list.iter()
            .map(|&i| cluster.nodes[i].name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if q.spares.is_empty() {
        format!("homes {}", names(&q.homes))
    } else {
        format!("homes {} (spares {})", names(&q.homes), names(&q.spares))
    }
}

pub(crate) fn set(response: &mut Response, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, v);
    }
}
