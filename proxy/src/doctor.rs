//! `proxy doctor`: does a node speak the API? What a student runs before sharing a URL
//! (`proxy doctor --node https://alice.ngrok-free.app`), what a teacher runs on the
//! class's config before the lesson (`proxy doctor -c configs/students.yml`), and what
//! the proxy runs before it lets a node join.
//!
//! Per node, in order (a check that cannot run because an earlier one failed is skipped):
//! reachable, TLS valid, not ngrok's warning page, a put/get/delete round trip on a
//! throwaway key (removed afterwards), a missing key answers 404, `/state` is HTML.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper::{Method, StatusCode};
use serde::Serialize;
use serde_json::{json, Value};

use crate::cluster::NodeAddr;
use crate::config::{Config, NodeConfig, DEFAULT_TIMEOUT_MS};
use crate::each::each_node;
use crate::upstream::{Answer, NodeRequest, Upstream};

/// The doctor's flags.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Check every node of this config.
    #[arg(short = 'c', long, conflicts_with = "node")]
    pub config: Option<std::path::PathBuf>,
    /// Check one node by its URL, e.g. http://localhost:5000 or https://x.ngrok-free.app.
    #[arg(long)]
    pub node: Option<String>,
    /// How long the node gets per request, in milliseconds (a config's own timeout_ms wins).
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One check on one node: passed, failed (with how to fix it), or not run.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    /// `None`: skipped, because an earlier check failed or it does not apply.
    pub ok: Option<bool>,
    /// What was seen, or for a failure one sentence on how to fix it.
    pub detail: String,
}

/// Every check on one node.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub name: String,
    pub url: String,
    pub checks: Vec<Check>,
    pub latency_ms: Option<u64>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.ok != Some(false))
    }

    /// The first failed check, named, with its fix: what `/join` answers with 422.
    pub fn first_failure(&self) -> Option<String> {
        self.checks
            .iter()
            .find(|c| c.ok == Some(false))
            .map(|c| format!("check '{}' failed: {}", c.name, c.detail))
    }
}

fn pass(name: &'static str, detail: String) -> Check {
    Check {
        name,
        ok: Some(true),
        detail,
    }
}

fn fail(name: &'static str, detail: String) -> Check {
    Check {
        name,
        ok: Some(false),
        detail,
    }
}

/// The checks' names, in order, for the table's header.
const NAMES: [&str; 6] = [
    "reachable",
    "tls",
    "not-ngrok-warning",
    "put-get-delete",
    "missing-404",
    "state-html",
];

/// Runs every check on one node.
pub async fn check_node(upstream: &Upstream, node: &NodeAddr, timeout: Duration) -> Report {
    let mut checks: Vec<Check> = Vec::new();
    let https = node.url.to_ascii_lowercase().starts_with("https://");
    let report = |checks: Vec<Check>, latency_ms| {
        let mut checks = checks;
        for name in NAMES.iter().skip(checks.len()) {
            checks.push(Check {
                name,
                ok: None,
                detail: "not tried (an earlier check failed)".into(),
            });
        }
        Report {
            name: node.name.clone(),
            url: node.url.clone(),
            checks,
            latency_ms,
        }
    };

    // 1-2. reachable, and TLS valid: any answer to /state means both.
    let state = match upstream
        .send(node, &NodeRequest::get("/state"), timeout)
        .await
    {
        Ok(a) => a,
        Err(e) => {
            let why = e.reason();
            let mut checks = Vec::new();
            if https && why.starts_with("TLS") {
                checks.push(Check {
                    name: "reachable",
                    ok: Some(true),
                    detail: "it accepts connections".into(),
                });
                checks.push(fail(
                    "tls",
                    format!("{why}; use the https URL ngrok printed, or http:// for a LAN node"),
                ));
            } else {
                checks.push(fail(
                    "reachable",
                    format!("{why}; is the node running, and is the URL (host and port) right?"),
                ));
            }
            return report(checks, None);
        }
    };
    checks.push(pass(
        "reachable",
        format!("answered in {} ms", state.latency.as_millis()),
    ));
    if https {
        checks.push(pass("tls", "the certificate is valid".into()));
    } else {
        checks.push(Check {
            name: "tls",
            ok: None,
            detail: "plain http".into(),
        });
    }
    // 3. ngrok's free tier answers browsers with a warning page unless told to skip it;
    // ngrok marks its own pages with a header. (The body is the node's data: a key
    // called ERR_NGROK is a key, not ngrok.)
    if let Some(code) = &state.ngrok_error {
        checks.push(fail("not-ngrok-warning", format!("ngrok answered instead of the node ({code}): the proxy sends ngrok-skip-browser-warning, so check the URL is the one `ngrok http` printed and that the tunnel is up")));
        return report(checks, None);
    }
    checks.push(pass("not-ngrok-warning", "the node's own answer".into()));
    // A loop: the URL is this proxy, or a proxy whose nodes lead back to it.
    if state.status == StatusCode::LOOP_DETECTED {
        checks.push(fail("put-get-delete", "this is this proxy (or a proxy that leads back to it), not a node: a request sent there comes back (508 Loop Detected)".into()));
        return report(checks, None);
    }
    // 4. a round trip on a throwaway key, removed afterwards.
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let key = format!("doctor-check-{nonce}");
    let value = json!({"doctor": nonce.to_string()});
    let latency;
    match round_trip(upstream, node, timeout, &key, &value).await {
        Ok(ms) => {
            latency = Some(ms);
            checks.push(pass(
                "put-get-delete",
                format!("a value went in, came back equal and was deleted ({ms} ms per request)"),
            ));
        }
        Err(why) => {
            checks.push(fail("put-get-delete", why));
            return report(checks, None);
        }
    }
    // 5. a key that is not there.
    let missing = NodeRequest::get(format!("/get?key=doctor-missing-{nonce}"));
    match upstream.send(node, &missing, timeout).await {
        Ok(a) if a.status == StatusCode::NOT_FOUND => {
            checks.push(pass("missing-404", "an unknown key answers 404".into()))
        }
        Ok(a) => checks.push(fail("missing-404", format!("GET /get for an unknown key answered {}; it must answer 404 with {{\"error\": ...}}", a.status))),
        Err(e) => checks.push(fail("missing-404", e.reason())),
    }
    // 6. the page the class looks at.
    let is_html = state.status.is_success()
        && state
            .content_type
            .as_ref()
            .and_then(|c| c.to_str().ok())
            .is_some_and(|c| c.contains("text/html"));
    if is_html {
        checks.push(pass("state-html", "GET /state answers an HTML page".into()));
    } else {
        checks.push(fail(
            "state-html",
            format!(
                "GET /state answered {} {}; it must answer 200 with Content-Type text/html",
                state.status,
                state
                    .content_type
                    .as_ref()
                    .and_then(|c| c.to_str().ok())
                    .unwrap_or("without a Content-Type")
            ),
        ));
    }
    report(checks, latency)
}

/// put, get (the same value back), delete, and the key is gone. Answers the get's latency.
async fn round_trip(
    upstream: &Upstream,
    node: &NodeAddr,
    timeout: Duration,
    key: &str,
    value: &Value,
) -> Result<u64, String> {
    let q = storage::http::encode_component(key);
    let put = NodeRequest {
        method: Method::POST,
        path_and_query: format!("/put?key={q}"),
        body: json!({"value": value}).to_string().into(),
        content_type: Some(hyper::header::HeaderValue::from_static("application/json")),
        via: None,
        key: Some(key.to_string()),
        version: None,
    };
    let send = |req: NodeRequest| async move {
        upstream
            .send(node, &req, timeout)
            .await
            .map_err(|e| e.reason())
    };
    let expect = |what: &str, a: &Answer, want: StatusCode| -> Result<(), String> {
        if a.status == want {
            Ok(())
        } else {
            Err(format!(
                "{what} answered {} ({}); it must answer {want}",
                a.status,
                got_instead(a)
            ))
        }
    };
    let a = send(put).await?;
    expect("POST /put with {\"value\": ...}", &a, StatusCode::OK)?;
    let got = send(NodeRequest::get(format!("/get?key={q}"))).await?;
    expect("GET /get after a put", &got, StatusCode::OK)?;
    let back = serde_json::from_slice::<Value>(&got.body)
        .ok()
        .and_then(|v| v.get("value").cloned());
    if back.as_ref() != Some(value) {
        return Err(format!(
            "GET /get answered {} instead of a JSON object whose \"value\" is the value put",
            got_instead(&got)
        ));
    }
    let mut del = NodeRequest {
        method: Method::DELETE,
        ..NodeRequest::get(format!("/delete?key={q}"))
    };
    let mut gone = send(del.clone()).await?;
    if gone.status == StatusCode::METHOD_NOT_ALLOWED {
        del.method = Method::POST;
        gone = send(del).await?;
    }
    expect("DELETE /delete", &gone, StatusCode::OK)?;
    let after = send(NodeRequest::get(format!("/get?key={q}"))).await?;
    expect("GET /get after the delete", &after, StatusCode::NOT_FOUND)?;
    Ok(got.latency.as_millis() as u64)
}

/// What a node answered instead, on one line: an HTML page is called that (with its
/// title), anything else is its first 80 characters with the line breaks folded.
fn got_instead(a: &Answer) -> String {
    let text = String::from_utf8_lossy(&a.body);
    let kind = a
        .content_type
        .as_ref()
        .and_then(|t| t.to_str().ok())
        .unwrap_or("no Content-Type");
    if kind.contains("html") || text.trim_start().starts_with('<') {
        let title = text
            .split_once("<title>")
            .and_then(|(_, rest)| rest.split_once("</title>"))
            .map(|(t, _)| format!(" titled \"{}\"", one_line(t, 60)))
            .unwrap_or_default();
        return format!("an HTML page{title}, not JSON");
    }
    format!("{kind}: {}", one_line(&text, 80))
}

/// `text` on one line (runs of whitespace as one space), at most `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match folded.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &folded[..at]),
        None => folded,
    }
}

/// `proxy doctor ...`: exit 0 when every node passes, 1 when any fails, 2 for a config
/// that does not load.
pub async fn main(args: Args) -> ExitCode {
    let (nodes, timeout) = match (&args.config, &args.node) {
        (Some(path), _) => match Config::load(path) {
            Ok(c) => {
                let t = c
                    .timeout_ms
                    .or(args.timeout_ms)
                    .unwrap_or(DEFAULT_TIMEOUT_MS);
                // Every pool's nodes, each once (a node may be in several pools).
                let mut nodes: Vec<NodeConfig> = Vec::new();
                for spec in crate::pool_config::specs(&c) {
                    for n in spec.config.nodes {
                        if !nodes.iter().any(|m| m.url == n.url) {
                            nodes.push(n);
                        }
                    }
                }
                (nodes, t)
            }
            Err(why) => {
                eprintln!("proxy doctor: {why}");
                return ExitCode::from(2);
            }
        },
        (None, Some(url)) => {
            if let Err(why) = crate::config::check_url(url) {
                eprintln!("proxy doctor: {why}");
                return ExitCode::from(2);
            }
            (
                vec![NodeConfig {
                    name: "node".into(),
                    url: url.clone(),
                }],
                args.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS),
            )
        }
        (None, None) => {
            eprintln!(
                "proxy doctor: say what to check: `--node URL` for one node (yours, before you \
                 share it), or `-c FILE` for every node of a class's config"
            );
            return ExitCode::from(2);
        }
    };
    let upstream = Upstream::new();
    let timeout = Duration::from_millis(timeout.clamp(1, crate::config::MAX_TIMEOUT_MS));
    let addrs: Vec<NodeAddr> = nodes.iter().map(|n| NodeAddr::new(n, false)).collect();
    let reports: Vec<Report> = each_node(addrs, move |node| {
        let upstream = upstream.clone();
        async move { check_node(&upstream, &node, timeout).await }
    })
    .await
    .into_iter()
    .filter_map(|(_, r)| r)
    .collect();
    let all_passed = reports.len() == nodes.len() && reports.iter().all(Report::passed);
    if args.json {
        println!("{}", json!({"passed": all_passed, "nodes": reports}));
    } else {
        print!("{}", table(&reports));
    }
    if all_passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// One row per node with ✓ / ✗ / - per check, then one line per failure with its fix.
pub fn table(reports: &[Report]) -> String {
    let mut out = format!("{:<12} {:<40}", "node", "url");
    for n in NAMES {
        out.push_str(&format!(" {n:^5}"));
    }
    out.push_str("  latency\n");
    for r in reports {
        out.push_str(&format!("{:<12} {:<40}", r.name, r.url));
        for c in &r.checks {
            let mark = match c.ok {
                Some(true) => "✓",
                Some(false) => "✗",
                None => "-",
            };
            out.push_str(&format!(" {:^w$}", mark, w = c.name.len().max(5)));
        }
        match r.latency_ms {
            Some(ms) => out.push_str(&format!("  {ms} ms\n")),
            None => out.push_str("  -\n"),
        }
    }
    for r in reports {
        for c in r.checks.iter().filter(|c| c.ok == Some(false)) {
            out.push_str(&format!("✗ {} {}: {}\n", r.name, c.name, c.detail));
        }
    }
    let passed = reports.iter().filter(|r| r.passed()).count();
    out.push_str(&format!("{passed} of {} nodes pass\n", reports.len()));
    out
}
