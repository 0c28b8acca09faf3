//! `storage --join URL`: a student's node asks the teacher's proxy to add it to the class,
//! and on Ctrl-C asks to leave, so nobody types thirty URLs into YAML.
//!
//! Joining retries with backoff until the proxy answers (it may start after the
//! students' nodes); a refusal that retrying cannot fix (wrong token, name taken, the
//! node fails the proxy's API check) is logged once, in a sentence, and joining stops.

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

    async fn join_once(&self) -> Outcome {
        let body = match &self.advertise {
            Some(url) => json!({"name": self.name, "url": url}),
            None => json!({"name": self.name, "port": self.port}),
        };
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
                    Outcome::Joined(said)
                } else if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                    Outcome::Retry(format!("{status} {said}"))
                } else {
                    Outcome::Refused(format!("{status}: {said}"))
                }
            }
        }
    }

    /// Asks to leave; called on Ctrl-C or SIGTERM, before the node stops.
    pub async fn leave(&self) {
        match self.post("/leave", json!({"name": self.name})).await {
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
            let res = self.client.request(req).await.map_err(|e| format!("{e}"))?;
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

#[cfg(test)]
mod tests {
    use super::check_url;

    #[test]
    fn join_urls_must_be_http() {
        assert!(check_url("https://teacher.ngrok-free.app").is_ok());
        assert!(check_url("http://192.168.1.5:5003/").is_ok());
        assert!(check_url("teacher.example:5003").is_err());
        assert!(check_url("ftp://x").is_err());
        assert!(check_url("http://").is_err());
    }
}
