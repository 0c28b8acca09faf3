//! No loops: a request the proxy sends carries a `Via` header naming this proxy, added to
//! whatever `Via` it came with. A request that arrives already naming this proxy has gone
//! round a loop (a node's URL that is this proxy, or a proxy whose nodes lead back here)
//! and is answered `508 Loop Detected` at once, instead of calling itself until it runs
//! out of sockets. A proxy of proxies stays fine: each adds its own name, none sees its
//! own twice.

use hyper::header::{HeaderMap, HeaderValue, VIA};

/// More proxies than this on one request's path is a loop we cannot see (or a joke).
pub const MAX_HOPS: usize = 8;

/// This proxy's name in `Via`: `kv-proxy-<random>`, new at every start.
#[derive(Debug, Clone)]
pub struct ProxyId(String);

impl Default for ProxyId {
    fn default() -> Self {
        ProxyId::new()
    }
}

impl ProxyId {
    pub fn new() -> ProxyId {
        ProxyId(format!("kv-proxy-{}", crate::secret::random_hex(6)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Why the request must not go on, if it must not: it has been here, or through too
    /// many proxies.
    pub fn loop_in(&self, headers: &HeaderMap) -> Option<String> {
        let hops = hops(headers);
        if hops.iter().any(|h| h == &self.0) {
            Some(format!(
                "loop: this request already went through this proxy ({}); a node's URL leads back \
                 to the proxy itself: take that node out of the nodes",
                self.0
            ))
        } else if hops.len() >= MAX_HOPS {
            Some(format!(
                "loop: this request went through {} proxies already ({})",
                hops.len(),
                hops.join(" → ")
            ))
        } else {
            None
        }
    }

    /// The `Via` a request forwarded from one with `incoming` headers carries: theirs, then us.
    pub fn via(&self, incoming: Option<&HeaderValue>) -> HeaderValue {
        let ours = format!("1.1 {}", self.0);
        let text = match incoming.and_then(|v| v.to_str().ok()) {
            Some(before) if !before.trim().is_empty() => format!("{before}, {ours}"),
            _ => ours,
        };
        HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("1.1 kv-proxy"))
    }
}

/// The names in every `Via` header, in order (`1.1 name, 1.0 other` → `[name, other]`).
fn hops(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(VIA)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|hop| hop.split_whitespace().nth(1).map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_that_came_back_is_a_loop() {
        let (me, other) = (ProxyId::new(), ProxyId::new());
        let mut headers = HeaderMap::new();
        assert!(me.loop_in(&headers).is_none());
        headers.insert(VIA, other.via(None));
        assert!(me.loop_in(&headers).is_none(), "another proxy is fine");
        let through_me = me.via(headers.get(VIA));
        assert!(through_me.to_str().unwrap().contains(other.as_str()));
        headers.insert(VIA, through_me);
        assert!(me.loop_in(&headers).is_some());
        assert!(other.loop_in(&headers).is_some());
    }

    #[test]
    fn too_many_hops_is_a_loop() {
        let mut headers = HeaderMap::new();
        for _ in 0..MAX_HOPS {
            let v = ProxyId::new().via(headers.get(VIA));
            headers.insert(VIA, v);
        }
        assert!(ProxyId::new().loop_in(&headers).is_some());
    }
}
