//! `storage --join URL`: a student's node asks the teacher's proxy to add it to the class,
//! and on Ctrl-C asks to leave, so nobody types thirty URLs into YAML.
//!
//! Joining retries with backoff until the proxy answers (it may start after the
//! students' nodes); a refusal that retrying cannot fix (a wrong token, a bad URL, the
//! name taken) is logged once, in a sentence with what to do, and joining stops. A
//! refusal that can change (joining off for now, the class full, the API check failed
//! while a tunnel comes up) is retried with backoff.
//!
//! The proxy hands the node a secret when it joins: the node keeps it (in memory) and
//! shows it when it leaves or moves to another URL, so nobody else can do that for it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

use crate::tls;

/// The longest wait between two attempts to join.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// How often a joined node asks again. A rejoin with the same name and URL is a cheap
/// no-op for the proxy, and it brings the node back into the class if the proxy was
/// restarted (joined nodes live only in the proxy's memory).
const REJOIN_EVERY: Duration = Duration::from_secs(15);

/// How long one request to the proxy may take (a join waits for the proxy's API check).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// A `--join` or `--advertise` URL must be http(s) with a host; said at start, not
/// discovered by a join that retries forever.
pub fn check_url(url: &str) -> Result<(), String> {
    let lower = url.to_ascii_lowercase();
    let uri = url.parse::<hyper::Uri>().ok();
    let has_host = uri
        .as_ref()
        .and_then(|u| u.host())
        .is_some_and(|h| !h.is_empty());
    if (lower.starts_with("http://") || lower.starts_with("https://")) && has_host {
        Ok(())
    } else {
        Err(format!(
            "'{url}' is not an http(s) URL: write it like https://teacher.ngrok-free.app"
        ))
    }
}

/// Where to join and as what.
#[derive(Clone)]
pub struct Joining {
    /// The proxy's base URL, e.g. https://teacher.ngrok-free.app
    pub proxy: String,
    pub token: String,
    pub name: String,
    /// The URL others reach this node at; `None`: the proxy uses our address and `port`.
    pub advertise: Option<String>,
    /// The port this node listens on.
    pub port: u16,
    /// The secret the proxy handed out at the last join: it proves the node is itself.
    secret: Arc<Mutex<Option<String>>>,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

/// What the proxy said.
enum Outcome {
    Joined(String),
    /// Retrying cannot help: the sentence says what to change.
    Refused(String),
    /// The proxy did not answer, or answered 5xx: try again later.
    Retry(String),
}

impl Joining {
    pub fn new(
        proxy: &str,
        token: &str,
        name: &str,
        advertise: Option<String>,
        port: u16,
    ) -> Joining {
        Joining {
            proxy: proxy.trim_end_matches('/').to_string(),
            token: token.to_string(),
            name: name.to_string(),
            advertise,
            port,
            secret: Arc::default(),
            client: Client::builder(TokioExecutor::new()).build(tls::connector()),
        }
    }

    /// Joins in the background, retrying with backoff until the proxy answers, then
    /// asking again every [`REJOIN_EVERY`] (quietly, while the answer stays the same).
    pub fn start(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut wait = Duration::from_millis(500);
            let mut joined = false;
            loop {
                match self.join_once().await {
                    Outcome::Joined(msg) => {
                        if !joined {
                            tracing::info!("joined the class at {}: {msg}", self.proxy);
                        }
                        joined = true;
                        wait = Duration::from_millis(500);
                        tokio::time::sleep(REJOIN_EVERY).await;
                    }
                    Outcome::Refused(why) => {
                        tracing::error!(
                            "the proxy at {} refused to add this node: {why}",
                            self.proxy
                        );
                        return;
                    }
                    Outcome::Retry(why) => {
                        joined = false;
                        tracing::warn!(
                            "cannot join {} yet ({why}); trying again in {:.1} s",
                            self.proxy,
                            wait.as_secs_f64()
                        );
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(MAX_BACKOFF);
                    }
                }
            }
        })
    }

    fn secret(&self) -> Option<String> {
        self.secret
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    async fn join_once(&self) -> Outcome {
        let mut body = match &self.advertise {
            Some(url) => json!({"name": self.name, "url": url}),
            None => json!({"name": self.name, "port": self.port}),
        };
        if let Some(secret) = self.secret() {
            body["secret"] = json!(secret);
        }
        match self.post("/join", body).await {
            Err(why) => Outcome::Retry(why),
            Ok((status, answer)) => {
                let said = answer
                    .get("message")
                    .or_else(|| answer.get("error"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                if status.is_success() {
                    if let Some(secret) = answer.get("secret").and_then(Value::as_str) {
                        *self.secret.lock().unwrap_or_else(|e| e.into_inner()) =
                            Some(secret.to_string());
                    }
                    Outcome::Joined(said)
                } else if can_change(status) {
                    Outcome::Retry(format!("{status} {said}"))
                } else {
                    Outcome::Refused(format!("{status}: {said} ({})", what_to_do(status)))
                }
            }
        }
    }

    /// Asks to leave; called on Ctrl-C or SIGTERM, before the node stops.
    pub async fn leave(&self) {
        let Some(secret) = self.secret() else {
            // Never joined: there is nothing to leave.
            return;
        };
        let body = json!({"name": self.name, "secret": secret});
        match self.post("/leave", body).await {
            Ok((status, _)) if status.is_success() => {
                tracing::info!("left the class at {}", self.proxy)
            }
            Ok((status, answer)) => {
                tracing::warn!("the proxy did not take the leave: {status} {answer}")
            }
            Err(why) => tracing::warn!("could not tell the proxy this node is leaving: {why}"),
        }
    }

    async fn post(&self, path: &str, body: Value) -> Result<(StatusCode, Value), String> {
        let req = Request::builder()
            .method(Method::POST)
            .uri(format!("{}{path}", self.proxy))
            .header(AUTHORIZATION, format!("Bearer {}", self.token))
            .header(CONTENT_TYPE, "application/json")
            .header("ngrok-skip-browser-warning", "1")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| format!("bad proxy URL {}: {e}", self.proxy))?;
        let exchange = async {
            let res = self
                .client
                .request(req)
                .await
                .map_err(|e| unreachable(&self.proxy, &e))?;
            let status = res.status();
            let bytes = res
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok((
                status,
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            ))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()))?
    }
}

/// Why the proxy could not be reached, for a person: "cannot reach the proxy at URL:
/// connection refused", not the client library's "client error (Connect)".
fn unreachable(proxy: &str, e: &hyper_util::client::legacy::Error) -> String {
    use std::error::Error as _;
    let mut why = e.to_string();
    let mut next = e.source();
    while let Some(inner) = next {
        if let Some(io) = inner.downcast_ref::<std::io::Error>() {
            why = match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    "connection refused (is the proxy running, and is the URL right?)".into()
                }
                _ => io.to_string(),
            };
            break;
        }
        why = inner.to_string();
        next = inner.source();
    }
    format!("cannot reach the proxy at {proxy}: {why}")
}

/// Whether a refusal may turn into a yes by itself: joining off for now (403), the class
/// full (429), the API check failed (422: a tunnel still coming up), the proxy's own
/// trouble (5xx). A wrong token, a bad URL or a taken name stay so until a person acts.
fn can_change(status: StatusCode) -> bool {
    status.is_server_error()
        || matches!(
            status,
            StatusCode::FORBIDDEN
                | StatusCode::TOO_MANY_REQUESTS
                | StatusCode::UNPROCESSABLE_ENTITY
        )
}

/// What the student does about a refusal that will not change by itself.
fn what_to_do(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNAUTHORIZED => "check --join-token against the token the teacher gave",
        StatusCode::CONFLICT => "pick another name with -n, or ask the teacher",
        StatusCode::BAD_REQUEST => {
            "check --advertise: the URL ngrok printed, like https://x.ngrok-free.app"
        }
        _ => "ask the teacher",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_refusals_that_can_change_are_retried() {
        for s in [403, 422, 429, 500, 502, 503] {
            assert!(can_change(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [400, 401, 409] {
            assert!(!can_change(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }

    #[test]
    fn join_urls_must_be_http() {
        assert!(check_url("https://teacher.ngrok-free.app").is_ok());
        assert!(check_url("http://192.168.1.5:5003/").is_ok());
        assert!(check_url("teacher.example:5003").is_err());
        assert!(check_url("ftp://x").is_err());
        assert!(check_url("http://").is_err());
    }
}
