//! `proxy doctor`, the real binary, against nodes that pass and nodes that each get one
//! thing wrong: every failure names its check, exit codes are 0 (all pass), 1 (a node
//! fails) and 2 (nothing to check), and the throwaway key does not stay behind.

#[path = "../../storage/tests/common/mod.rs"]
mod common;
mod students_support;
mod support;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{post, start_node, start_server, Node};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{json, Value};
use storage::http::Response;
use storage::server::Handler;
use students_support::{
    count_on, dead_addr, doctor, null_value, start_canned, start_html_everywhere, url, value_on,
    yaml, Doctor, TempFile,
};

/// The checks, in the order the doctor runs them.
const CHECKS: [&str; 6] = [
    "reachable",
    "tls",
    "not-ngrok-warning",
    "put-get-delete",
    "missing-404",
    "state-html",
];

/// The table's row for the node called `name` (the header starts with "node" too, so a
/// row is told apart by its URL).
fn row<'a>(out: &'a Doctor, name: &str) -> &'a str {
    let rows: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.split_whitespace().next() == Some(name) && l.contains("http://"))
        .collect();
    assert_eq!(rows.len(), 1, "want one row for {name}: {out:#?}");
    rows[0]
}

/// The names of the checks that failed, for the node called `name`, from `--json`.
fn failed(out: &Doctor, name: &str) -> Vec<String> {
    CHECKS
        .iter()
        .filter(|c| out.check(name, c) == json!(false))
        .map(|c| c.to_string())
        .collect()
}

/// A real storage node passes every check (TLS does not apply to http), exit 0, and
/// is left holding only what it held before.
#[tokio::test]
async fn a_storage_node_passes_every_check() {
    let node = start_node(storage::Settings::named("kv1")).await;
    post(node.addr, "/put?key=mine", r#"{"value": "kept"}"#)
        .await
        .expect_json(200);
    let out = doctor(&["--node", &url(node.addr)]).await;
    assert_eq!(out.code, Some(0), "{out:#?}");
    let line = row(&out, "node");
    assert_eq!(line.matches('✓').count(), 5, "{out:#?}");
    assert!(!out.stdout.contains('✗'), "{out:#?}");
    assert!(out.stdout.contains("1 of 1 nodes pass"), "{out:#?}");
    assert_eq!(count_on(node.addr).await, 1, "the throwaway key stayed");
    assert_eq!(value_on(node.addr, "mine").await, Some(json!("kept")));
}

/// `--json` prints one JSON object: `passed`, and per node every check by name, in
/// order, `ok: null` for the TLS check a plain-http node skips.
#[tokio::test]
async fn json_output_parses_and_says_passed() {
    let node = start_node(storage::Settings::named("kv1")).await;
    let out = doctor(&["--node", &url(node.addr), "--json"]).await;
    assert_eq!(out.code, Some(0), "{out:#?}");
    let all = out.json();
    assert_eq!(all["passed"], json!(true), "{all:#}");
    let report = &all["nodes"][0];
    assert_eq!(report["url"], json!(url(node.addr)));
    let names: Vec<&str> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, CHECKS);
    for check in CHECKS {
        let want = if check == "tls" {
            Value::Null
        } else {
            json!(true)
        };
        assert_eq!(out.check("node", check), want, "{check}: {all:#}");
    }
    assert!(report["latency_ms"].is_u64(), "{all:#}");
    assert_eq!(count_on(node.addr).await, 0, "the throwaway key stayed");
}

/// Nothing listening: exit 1, `reachable` failed with a hint, the rest not tried.
#[tokio::test]
async fn a_dead_port_fails_reachable() {
    let dead = url(dead_addr().await);
    let out = doctor(&["--node", &dead]).await;
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert!(out.stdout.contains("✗ node reachable"), "{out:#?}");
    assert!(out.stdout.contains("0 of 1 nodes pass"), "{out:#?}");

    let out = doctor(&["--node", &dead, "--json"]).await;
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert_eq!(out.json()["passed"], json!(false));
    assert_eq!(failed(&out, "node"), ["reachable"]);
    for check in &CHECKS[1..] {
        assert_eq!(
            out.check("node", check),
            Value::Null,
            "{check} ran: {out:#?}"
        );
    }
}

/// A web server that is not a node (HTML 200 to everything) is reachable but fails the
/// put/get/delete round trip, and that is the first failure named.
#[tokio::test]
async fn a_server_answering_html_to_everything_fails_put_get_delete() {
    let homepage = start_html_everywhere().await;
    let out = doctor(&["--node", &url(homepage.addr), "--json"]).await;
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert_eq!(out.check("node", "reachable"), json!(true));
    assert_eq!(failed(&out, "node"), ["put-get-delete"]);

    let out = doctor(&["--node", &url(homepage.addr)]).await;
    assert_eq!(out.code, Some(1), "{out:#?}");
    let first = out
        .stdout
        .lines()
        .find(|l| l.starts_with('✗'))
        .unwrap_or_else(|| panic!("no failure line: {out:#?}"));
    assert!(first.starts_with("✗ node put-get-delete:"), "{first}");
}

/// A node slower than `--timeout-ms` fails `reachable`, and the doctor gives up after
/// about that long instead of waiting for it.
#[tokio::test]
async fn a_node_slower_than_the_timeout_fails_reachable_in_time() {
    let slow = start_canned(Duration::from_secs(2), |_| {
        storage::http::html("<!doctype html><p>finally".into())
    })
    .await;
    let out = doctor(&["--node", &url(slow.addr), "--timeout-ms", "300", "--json"]).await;
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert_eq!(failed(&out, "node"), ["reachable"]);
    assert!(
        out.took < Duration::from_millis(1800),
        "a 300 ms timeout took {:?}",
        out.took
    );
}

/// A node that answers a key it never stored with `200 {"value": null}` (but 404 for
/// a key it deleted, so the round trip passes) fails `missing-404` alone.
#[tokio::test]
async fn a_node_answering_200_for_a_missing_key_fails_missing_404() {
    let node = start_forgetful().await;
    let out = doctor(&["--node", &url(node.addr), "--json"]).await;
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert_eq!(out.check("node", "put-get-delete"), json!(true), "{out:#?}");
    assert_eq!(failed(&out, "node"), ["missing-404"]);
    assert_eq!(out.check("node", "state-html"), json!(true), "{out:#?}");
}

/// `-c` checks every node of a config: one row per node in config order, exit 1 when
/// any fails, and the good node is still said to pass.
#[tokio::test]
async fn a_config_gets_one_row_per_node() {
    let good = start_node(storage::Settings::named("kv1")).await;
    let text = yaml(
        "sharding",
        &[("good", url(good.addr)), ("dead", url(dead_addr().await))],
        "timeout_ms: 1000\n",
    );
    let file = TempFile::new("doctor.yml", &text);
    let out = doctor(&["-c", file.arg()]).await;
    assert_eq!(out.code, Some(1), "{out:#?}");
    let good_row = row(&out, "good");
    let dead_row = row(&out, "dead");
    assert!(
        !good_row.contains('✗') && good_row.contains('✓'),
        "{good_row}"
    );
    assert!(dead_row.contains('✗'), "{dead_row}");
    assert!(out.stdout.contains("✗ dead reachable"), "{out:#?}");
    assert!(!out.stdout.contains("✗ good"), "{out:#?}");
    assert!(out.stdout.contains("1 of 2 nodes pass"), "{out:#?}");

    let out = doctor(&["-c", file.arg(), "--json"]).await;
    let all = out.json();
    let names: Vec<&str> = all["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["good", "dead"]);
    assert_eq!(all["passed"], json!(false));
    assert_eq!(failed(&out, "good"), Vec::<String>::new());
    assert_eq!(failed(&out, "dead"), ["reachable"]);
    assert_eq!(count_on(good.addr).await, 0, "the throwaway key stayed");
}

/// Nothing to check is exit 2 with a sentence: a config that is missing or does not
/// load, a URL that is not one.
#[tokio::test]
async fn a_config_that_does_not_load_is_exit_2() {
    let bad = TempFile::new(
        "bad.yml",
        "mode: shardnig\nnodes:\n  - name: a\n    url: http://127.0.0.1:1\n",
    );
    let empty = TempFile::new("empty.yml", "mode: sharding\nnodes: []\n");
    let missing = std::env::temp_dir().join("proxy-students-test-no-such-config.yml");
    let cases = [
        (vec!["-c", bad.arg()], "shardnig"),
        (vec!["-c", empty.arg()], "no nodes"),
        (vec!["-c", missing.to_str().unwrap()], "no such file"),
        (vec!["--node", "localhost:5000"], "no scheme"),
        (vec!["--node", "ftp://127.0.0.1:21"], "ftp"),
    ];
    for (args, word) in cases {
        let out = doctor(&args).await;
        assert_eq!(out.code, Some(2), "{args:?}: {out:#?}");
        assert!(
            out.stderr.contains(word),
            "{args:?} should say {word:?}: {out:#?}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: {out:#?}");
    }
}

/// A storage node that forgets to say 404 for a key it never stored: such a key reads
/// as `200 {"value": null}`. Keys it stored and then deleted are 404, as they should be.
struct Forgetful {
    inner: storage::routes::Node,
    /// Every key ever put: only these get an honest 404.
    seen: Mutex<HashSet<String>>,
}

impl Handler for Forgetful {
    async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response {
        let key = storage::http::query_param(req.uri().query(), "key")
            .ok()
            .flatten()
            .unwrap_or_default();
        let path = req.uri().path().to_string();
        if path == "/put" {
            self.seen.lock().unwrap().insert(key.clone());
        }
        let answer = self.inner.handle(req, peer).await;
        let never_seen = !self.seen.lock().unwrap().contains(&key);
        if path == "/get" && answer.status() == StatusCode::NOT_FOUND && never_seen {
            return null_value();
        }
        answer
    }
}

async fn start_forgetful() -> Node {
    let handler = Arc::new(Forgetful {
        inner: storage::routes::Node::open(&storage::Settings::named("forgetful"))
            .expect("no data file to open"),
        seen: Mutex::new(HashSet::new()),
    });
    start_server(move |listener, stop| storage::server::run(listener, handler, stop)).await
}
