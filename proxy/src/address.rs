//! Where a joined node may be, checked as pure rules (no test connects anywhere to check
//! them) and again at every connect.
//!
//! Any student may join a URL, so a join must not let them make the teacher's proxy talk
//! to the teacher's own network: a join URL is `http(s)://host[:port][/path]` and nothing
//! more (no `user@`, `?query` or `#fragment`), and the addresses its host resolves to are
//! refused when they are link-local (`169.254.169.254` is a cloud's metadata service) or
//! this proxy's own listener, and when they are loopback unless the config says
//! `join_allow_loopback: true`. A name can resolve differently later, so joined nodes
//! are reached through [`GuardedResolver`], which applies the same rules at every
//! connect. Two URLs are one node when scheme, host, port and path agree, with
//! `localhost`, `127.0.0.1` and `[::1]` counted as one host.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::Name;

/// A join URL, taken apart and normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeUrl {
    /// `http` or `https`.
    pub scheme: String,
    /// Lowercase, without the brackets of an IPv6 address.
    pub host: String,
    /// The port, or the scheme's default.
    pub port: u16,
    /// The path without its trailing `/` (`""` for none).
    pub path: String,
}

impl NodeUrl {
    /// Parses `http(s)://host[:port][/path]`; anything else is refused with the reason.
    pub fn parse(url: &str) -> Result<NodeUrl, String> {
        let lower = url.to_ascii_lowercase();
        let (scheme, rest) = if let Some(rest) = lower.strip_prefix("http://") {
            ("http", rest)
        } else if let Some(rest) = lower.strip_prefix("https://") {
            ("https", rest)
        } else {
            return Err(format!("'{url}' must start with http:// or https://"));
        };
        if url.contains('#') {
            return Err(format!(
                "'{url}' has a #fragment: a node URL is http(s)://host[:port][/path]"
            ));
        }
        if url.contains('?') {
            return Err(format!(
                "'{url}' has a ?query: a node URL is http(s)://host[:port][/path]"
            ));
        }
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(format!(
                "'{url}' has a user@ part: a node URL is http(s)://host[:port][/path]"
            ));
        }
        let uri: hyper::Uri = url
            .parse()
            .map_err(|_| format!("'{url}' is not a valid URL"))?;
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("'{url}' has no host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if host.is_empty() {
            return Err(format!("'{url}' has no host"));
        }
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        if port == 0 {
            return Err(format!("'{url}' has port 0"));
        }
        Ok(NodeUrl {
            scheme: scheme.to_string(),
            host,
            port,
            path: path.trim_end_matches('/').to_string(),
        })
    }

    /// The host, with every name for this machine's loopback counted as one.
    fn host_key(&self) -> &str {
        let loopback = self.host == "localhost"
            || self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if loopback {
            "localhost"
        } else {
            &self.host
        }
    }

    /// Whether two URLs reach the same node.
    pub fn same_node(&self, other: &NodeUrl) -> bool {
        self.scheme == other.scheme
            && self.host_key() == other.host_key()
            && self.port == other.port
            && self.path == other.path
    }
}

/// Whether two URLs (as configured or joined) reach the same node; URLs that do not
/// parse are compared as text.
pub fn same_node(a: &str, b: &str) -> bool {
    match (NodeUrl::parse(a), NodeUrl::parse(b)) {
        (Ok(a), Ok(b)) => a.same_node(&b),
        _ => a
            .trim_end_matches('/')
            .eq_ignore_ascii_case(b.trim_end_matches('/')),
    }
}

/// What a joined node's addresses are held to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rules {
    /// `join_allow_loopback` in the config.
    pub allow_loopback: bool,
    /// Where this proxy listens, once it does.
    pub own: Option<SocketAddr>,
}

/// Why a joined node may not be at `addr`, or `None` when it may. A port of 0 means
/// "any port" (a resolver learns only the host's addresses).
pub fn refused(addr: SocketAddr, rules: &Rules) -> Option<&'static str> {
    let ip = match addr.ip() {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    let local = ip.is_loopback() || ip.is_unspecified();
    if let Some(own) = rules.own {
        if addr.port() == own.port() && (local || ip == own.ip()) {
            return Some("this is this proxy, not a node");
        }
    }
    let link_local = match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    };
    if link_local {
        return Some("a link-local address (169.254.x.x, fe80::) is never a student's node");
    }
    if ip.is_multicast() || ip == IpAddr::from([255, 255, 255, 255]) {
        return Some("a multicast or broadcast address is not a node");
    }
    if local && !rules.allow_loopback {
        return Some(
            "an address on the proxy's own machine (loopback) may not join: behind ngrok, give \
             --advertise with your ngrok URL; a teacher trying joins on one machine sets \
             join_allow_loopback: true",
        );
    }
    None
}

/// Looks a host up: the system's resolver, or a table in tests (which must never
/// resolve or connect to anything off loopback).
pub type Lookup = Arc<
    dyn Fn(String) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>> + Send + Sync,
>;

/// The system's resolver.
pub fn system_lookup() -> Lookup {
    Arc::new(|host: String| {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    })
}

/// The addresses `url` reaches, each checked: the first refusal, if any, says why.
pub async fn check(url: &NodeUrl, rules: &Rules, lookup: &Lookup) -> Result<(), String> {
    let ips = match url.host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => lookup(url.host.clone())
            .await
            .map_err(|_| format!("the host {} does not resolve", url.host))?,
    };
    if ips.is_empty() {
        return Err(format!("the host {} does not resolve", url.host));
    }
    for ip in ips {
        if let Some(why) = refused(SocketAddr::new(ip, url.port), rules) {
            return Err(format!("{}: {why}", url.host));
        }
    }
    Ok(())
}

/// The rules in force, shared by the proxy (which changes them on a reload and when it
/// starts listening) and the resolver of joined nodes' connections.
pub type SharedRules = Arc<RwLock<Rules>>;

/// A resolver for hyper's connector that drops the addresses [`refused`] refuses, so a
/// joined node's name that later resolves to the metadata service is never connected to.
/// (Literal IP addresses skip resolvers; the join checks those, and they never change.)
#[derive(Clone)]
pub struct GuardedResolver {
    pub lookup: Lookup,
    pub rules: SharedRules,
}

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let (lookup, rules) = (self.lookup.clone(), self.rules.clone());
        Box::pin(async move {
            let host = name.as_str().to_string();
            let ips = lookup(host.clone()).await?;
            let rules = *rules.read().unwrap_or_else(|e| e.into_inner());
            let mut why = None;
            let allowed: Vec<SocketAddr> = ips
                .into_iter()
                .map(|ip| SocketAddr::new(ip, 0))
                .filter(|a| match refused(*a, &rules) {
                    Some(w) => {
                        why = Some(w);
                        false
                    }
                    None => true,
                })
                .collect();
            match (allowed.is_empty(), why) {
                (true, Some(why)) => Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("{host} is refused: {why}"),
                )),
                _ => Ok(allowed.into_iter()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn join_urls_are_host_port_path_only() {
        let u = NodeUrl::parse("HTTP://Alice.Example:8080/kv/").unwrap();
        assert_eq!(
            (u.scheme.as_str(), u.host.as_str(), u.port, u.path.as_str()),
            ("http", "alice.example", 8080, "/kv")
        );
        assert_eq!(
            NodeUrl::parse("https://x.ngrok-free.app").unwrap().port,
            443
        );
        for bad in [
            "http://127.0.0.1:5000/x#",
            "http://h:1/get?key=a",
            "http://user:pw@h:1",
            "ftp://h",
            "h:5000",
            "http://",
            "http://h:0",
            // Found by fuzz/run: brackets around nothing.
            "https://[]O\u{154}O!\0",
            "http://[]:80",
        ] {
            assert!(NodeUrl::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn loopback_aliases_are_one_node() {
        assert!(same_node("http://localhost:5000", "http://127.0.0.1:5000/"));
        assert!(same_node("http://[::1]:5000", "http://LOCALHOST:5000"));
        assert!(same_node("http://h", "http://h:80"));
        assert!(!same_node("http://localhost:5000", "http://localhost:5001"));
        assert!(!same_node("http://h:1/a", "http://h:1/b"));
        assert!(!same_node("http://h:1", "https://h:1"));
    }

    #[test]
    fn address_rules() {
        let closed = Rules::default();
        let open = Rules {
            allow_loopback: true,
            own: Some(addr("0.0.0.0:5003")),
        };
        assert!(refused(addr("169.254.169.254:80"), &open).is_some());
        assert!(refused(addr("[fe80::1]:80"), &open).is_some());
        assert!(refused(addr("[::ffff:169.254.169.254]:80"), &open).is_some());
        assert!(refused(addr("127.0.0.1:5000"), &closed)
            .unwrap()
            .contains("loopback"));
        assert!(refused(addr("127.0.0.1:5000"), &open).is_none());
        assert!(refused(addr("127.0.0.1:5003"), &open)
            .unwrap()
            .contains("this proxy"));
        assert!(refused(addr("[::1]:5003"), &open)
            .unwrap()
            .contains("this proxy"));
        assert!(refused(addr("192.168.1.23:5000"), &closed).is_none());
        assert!(refused(addr("10.0.0.5:5003"), &closed).is_none());
    }

    /// A name that resolves to a link-local address is refused, by a table, not DNS.
    #[tokio::test]
    async fn names_are_checked_by_what_they_resolve_to() {
        let table: Lookup = Arc::new(|host: String| {
            Box::pin(async move {
                Ok(match host.as_str() {
                    "metadata.example" => vec!["169.254.169.254".parse().unwrap()],
                    "me.example" => vec!["127.0.0.1".parse().unwrap()],
                    _ => vec!["203.0.113.7".parse().unwrap()],
                })
            })
        });
        let rules = Rules::default();
        let url = |u: &str| NodeUrl::parse(u).unwrap();
        assert!(check(&url("http://metadata.example/"), &rules, &table)
            .await
            .is_err());
        assert!(check(&url("http://me.example:5000"), &rules, &table)
            .await
            .is_err());
        assert!(check(&url("https://alice.example"), &rules, &table)
            .await
            .is_ok());
        let mut resolver = GuardedResolver {
            lookup: table,
            rules: Arc::new(RwLock::new(rules)),
        };
        use tower_service::Service;
        let name: Name = "metadata.example".parse().unwrap();
        assert!(resolver.call(name).await.is_err());
        let name: Name = "alice.example".parse().unwrap();
        assert_eq!(resolver.call(name).await.unwrap().count(), 1);
    }
}
