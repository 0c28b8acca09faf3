//! Every message helps: what a new teacher typed wrong is answered with one sentence that
//! says what to do, and a failure names what failed (the node, the key).

#[path = "../../storage/tests/common/mod.rs"]
mod common;
mod students_support;
mod support;

use std::process::Command;
use std::time::Duration;

use common::get;
use students_support::{doctor, free_port, placement, proxy_bin, spawn_storage, TempFile};
use support::{named, start_nodes, start_proxy, yaml};

/// Runs the proxy binary with `args` to the end (or 10 s): exit code and all it printed.
fn proxy(args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(proxy_bin())
        .args(args)
        .env_remove("KV_CONFIG")
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run proxy");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

/// `--mode` with a config is refused in a sentence (it would be silently ignored): the
/// mode belongs in the file.
#[test]
fn mode_without_demo_is_refused() {
    let file = TempFile::new(
        "mode-flag.yml",
        "mode: sharding\nnodes:\n  - name: kv1\n    url: http://127.0.0.1:9\n",
    );
    let port = free_port().to_string();
    let (code, said) = proxy(&["-c", file.arg(), "-p", &port, "--mode", "replication"]);
    assert_eq!(code, Some(2), "{said}");
    assert!(
        said.contains("--demo") && said.contains("mode: replication"),
        "{said}"
    );
}

/// `proxy doctor` alone says both ways to use it; `--node localhost:5005` says what to
/// write, without calling the URL a node "node".
#[tokio::test]
async fn doctor_says_how_to_use_it() {
    let alone = doctor(&[]).await;
    assert_eq!(alone.code, Some(2), "{alone:?}");
    assert!(
        alone.stderr.contains("--node") && alone.stderr.contains("-c"),
        "{alone:?}"
    );
    let bare = doctor(&["--node", "localhost:5005"]).await;
    assert_eq!(bare.code, Some(2));
    assert!(
        bare.stderr.contains("write it as http://localhost:5005"),
        "{bare:?}"
    );
    assert!(!bare.stderr.contains("node node"), "{bare:?}");
}

/// A URL with a mistyped `://` gets the URL meant, not `http://http//...`.
#[test]
fn a_mistyped_scheme_gets_the_url_meant() {
    let file = TempFile::new(
        "typo.yml",
        "mode: sharding\nnodes:\n  - name: kv1\n    url: http//localhost:5000\n",
    );
    let (code, said) = proxy(&["--check", "-c", file.arg()]);
    assert_eq!(code, Some(2));
    assert!(said.contains("write it as http://localhost:5000"), "{said}");
    assert!(!said.contains("http://http//"), "{said}");
}

/// A node that fails makes a 502 that names the node and the key.
#[tokio::test]
async fn a_failure_names_the_node_and_the_key() {
    let mut nodes = start_nodes(2).await;
    let (proxy, _) = start_proxy(&yaml("sharding", &named(&nodes), "timeout_ms: 300\n")).await;
    let key = (0..100)
        .map(|i| format!("key-{i}"))
        .find(|k| placement(k, 2) == 1)
        .unwrap();
    nodes.pop().unwrap().shutdown().await.unwrap();
    let body = get(proxy.addr, &format!("/get?key={key}"))
        .await
        .expect_error(502);
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("kv2") && error.contains(&key), "{body}");
    assert_eq!(body["key"], key.as_str());
}

/// A student's node whose `--join` proxy is not there says so in words ("cannot reach the
/// proxy at URL: connection refused"), not "client error (Connect)".
#[tokio::test]
async fn a_missing_proxy_is_said_in_words() {
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let node = spawn_storage(
        "alice",
        &["-p", "0", "--join", &nowhere, "--join-token", "t"],
    );
    let line = node
        .wait_for_line("cannot join", Duration::from_secs(10))
        .await;
    assert!(
        line.contains(&format!("cannot reach the proxy at {nowhere}"))
            && line.contains("connection refused"),
        "{line}"
    );
}

/// The demo's nodes take 5000-5002 whatever `-p` says: a busy one is said so, with what
/// to do, not "pick another port with -p".
#[test]
fn a_busy_demo_port_says_the_demo_needs_it() {
    // Hold 5000 (if something else already holds it, the demo meets the same refusal).
    let _held = std::net::TcpListener::bind("0.0.0.0:5000");
    let port = free_port().to_string();
    let (code, said) = proxy(&["--demo", "-p", &port]);
    assert_eq!(code, Some(2), "{said}");
    assert!(
        said.contains("5000") && said.contains("-p moves only the proxy"),
        "{said}"
    );
}
