//! Who may do what, for a proxy a whole class (and the internet) can reach.
//!
//! - **Another site may not write.** A page a student opens elsewhere can make their
//!   browser send `POST /clear` to the teacher's proxy (`fetch(..., {mode: 'no-cors'})`).
//!   Browsers say where such a request comes from (`Sec-Fetch-Site`, `Origin`); curl sends
//!   neither and keeps working. The `Content-Type` is no guard: curl's `-d` sends a form
//!   type and students' nodes send `text/plain`.
//! - **The teacher's token.** With `admin_token` in the config, what removes data in bulk
//!   (`/clear`) needs `Authorization: Bearer <admin_token>`.
//! - **Guessing is slow.** Ten wrong tokens (join or admin) in a minute from one client
//!   get 429 with `Retry-After`; a right token is never throttled. The client is the
//!   peer's address, or `X-Forwarded-For` when the peer is loopback (ngrok's agent), so
//!   one student's typos do not lock out the class.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyper::header::{HeaderMap, AUTHORIZATION, HOST, ORIGIN};
use hyper::StatusCode;
use storage::http::HttpError;

use crate::secret;

/// Wrong tokens allowed per client per [`WINDOW`].
pub const MAX_FAILURES: u32 = 10;

/// The window wrong tokens are counted in.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Clients remembered at most; past it, windows that ended are forgotten first.
const MAX_CLIENTS: usize = 10_000;

/// 403 when a browser says the request comes from another site, `None` when it may go
/// on (curl, scripts, and the proxy's own pages).
pub fn cross_site(headers: &HeaderMap) -> Option<HttpError> {
    let refuse = |from: &str| {
        Some(HttpError::new(
            StatusCode::FORBIDDEN,
            format!(
                "this request comes from another site ({from}): a web page may not change the \
                 class's data; use curl, or the proxy's own page"
            ),
        ))
    };
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return match site {
            "same-origin" | "none" => None,
            other => refuse(other),
        };
    }
    let origin = headers.get(ORIGIN).and_then(|v| v.to_str().ok())?;
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or(origin);
    if !host.is_empty() && origin_host.eq_ignore_ascii_case(host) {
        None
    } else {
        refuse(origin)
    }
}

/// The bearer token a request carries, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Whether the request carries `token` (constant-time).
pub fn carries(headers: &HeaderMap, token: &str) -> bool {
    bearer(headers).is_some_and(|given| secret::same(given, token))
}

/// Who a client is, for counting its wrong tokens: the peer, or the address ngrok's
/// agent (a loopback peer) says it forwards for.
pub fn client(peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    if peer.ip().is_loopback() {
        let forwarded = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse::<IpAddr>().ok());
        if let Some(ip) = forwarded {
            return ip;
        }
    }
    peer.ip()
}

/// Wrong tokens per client, in fixed one-minute windows.
#[derive(Default)]
pub struct Throttle {
    /// A std lock, held for one map operation.
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Throttle {
    /// 429 with `Retry-After` when `client` has used up its wrong tokens.
    pub fn check(&self, client: IpAddr) -> Result<(), HttpError> {
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(&client) {
            Some((start, n)) if *n >= MAX_FAILURES && start.elapsed() < WINDOW => {
                let wait = (WINDOW - start.elapsed()).as_secs() + 1;
                Err(HttpError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "{MAX_FAILURES} wrong tokens in a minute from {client}: wait {wait} s \
                         and check the token the teacher gave"
                    ),
                )
                .with("retry_after_s", wait))
            }
            _ => Ok(()),
        }
    }

    /// Counts one wrong token from `client`.
    pub fn failed(&self, client: IpAddr) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_CLIENTS {
            map.retain(|_, (start, _)| start.elapsed() < WINDOW);
        }
        let entry = map.entry(client).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn only_other_sites_are_refused() {
        assert!(
            cross_site(&headers(&[])).is_none(),
            "curl sends neither header"
        );
        assert!(cross_site(&headers(&[("sec-fetch-site", "same-origin")])).is_none());
        assert!(cross_site(&headers(&[("sec-fetch-site", "none")])).is_none());
        assert!(cross_site(&headers(&[("sec-fetch-site", "cross-site")])).is_some());
        assert!(cross_site(&headers(&[("sec-fetch-site", "same-site")])).is_some());
        assert!(cross_site(&headers(&[
            ("origin", "http://evil.example"),
            ("host", "t:5003")
        ]))
        .is_some());
        assert!(cross_site(&headers(&[("origin", "http://t:5003"), ("host", "t:5003")])).is_none());
        assert!(cross_site(&headers(&[("origin", "null")])).is_some());
    }

    #[test]
    fn ten_wrong_tokens_a_minute() {
        let t = Throttle::default();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for _ in 0..MAX_FAILURES {
            assert!(t.check(a).is_ok());
            t.failed(a);
        }
        assert_eq!(
            t.check(a).unwrap_err().status,
            StatusCode::TOO_MANY_REQUESTS
        );
        assert!(t.check(b).is_ok(), "another client is not throttled");
    }

    #[test]
    fn forwarded_for_only_from_loopback() {
        let h = headers(&[("x-forwarded-for", "203.0.113.9, 10.0.0.1")]);
        let via_ngrok: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let direct: SocketAddr = "192.168.1.5:4000".parse().unwrap();
        assert_eq!(
            client(via_ngrok, &h),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client(direct, &h), direct.ip());
    }
}
