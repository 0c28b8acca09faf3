//! The Python node in `examples/python-node/` is a real node: `proxy doctor` passes it,
//! and the proxy shards and replicates over two of them exactly as over Rust nodes,
//! keys with spaces, `&`, `=` and Cyrillic included, values of every JSON kind.
//!
//! The tests need `python3` on the PATH. Without it they pass with a loud note on
//! stderr, unless `KV_REQUIRE_PYTHON=1` (as CI sets it), which makes them fail instead.

#[path = "../../storage/tests/common/mod.rs"]
mod common;
mod students_support;
mod support;

use std::io::Write;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use common::{get, post};
use serde_json::{json, Value};
use students_support::{
    count_on, doctor, encode, placement, start_proxy, url, value_on, workspace_root, yaml, Proc,
};

/// Keys a student's node is most likely to get wrong, each with a value of another kind.
fn pairs() -> Vec<(&'static str, Value)> {
    vec![
        ("hello world", json!("plain text")),
        ("a&b=c", json!(42)),
        ("key=value", json!(-3.25)),
        (
            "ключ",
            json!({"name": "Аня", "age": 31, "tags": ["a", "b"]}),
        ),
        ("Привет мир", json!([1, "two", null, {"three": 3.5}])),
        ("x & y = z", json!({"nested": {"ok": true, "none": null}})),
        ("100%", json!(12345678901234567890u64)),
        ("plus+sign", json!(true)),
        ("user:1", json!(null)),
        ("key-7", json!("")),
    ]
}

/// Whether python3 runs here; when it does not, says so loudly, or fails the test when
/// `KV_REQUIRE_PYTHON=1`.
fn python_ready(test: &str) -> bool {
    let works = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if works {
        return true;
    }
    if std::env::var("KV_REQUIRE_PYTHON").as_deref() == Ok("1") {
        panic!("{test}: python3 is not on the PATH and KV_REQUIRE_PYTHON=1");
    }
    // Straight to stderr: the test harness captures `eprintln!` of passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!!! SKIPPED {test}: python3 is not on the PATH \
         (set KV_REQUIRE_PYTHON=1 to make this a failure) !!!!!!\n"
    );
    false
}

/// `python3 -I examples/python-node/node.py -n NAME -p 0` on 127.0.0.1, and the port it
/// printed. Port 0 lets the OS pick a free port, so parallel tests never collide.
async fn start_python(name: &str) -> (Proc, SocketAddr) {
    let mut command = Command::new("python3");
    command
        .current_dir(workspace_root())
        .args(["-I", "examples/python-node/node.py", "-n", name])
        .args(["-p", "0", "--host", "127.0.0.1"]);
    for var in ["KV_NAME", "KV_PORT", "KV_HOST"] {
        command.env_remove(var);
    }
    let node = Proc::spawn(&format!("python node {name}"), command);
    let port = node
        .port_after("listening on", Duration::from_secs(10))
        .await;
    (node, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// The keys a node holds, by its own `/dump`.
async fn keys_on(node: SocketAddr) -> Vec<String> {
    let dump = get(node, "/dump").await.expect_json(200);
    let mut keys: Vec<String> = dump["data"]
        .as_object()
        .unwrap_or_else(|| panic!("no data in /dump: {dump}"))
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

/// `proxy doctor --node` passes every check on the Python node and leaves it empty.
#[tokio::test]
async fn doctor_passes_the_python_node() {
    if !python_ready("doctor_passes_the_python_node") {
        return;
    }
    let (py0, addr) = start_python("py0").await;
    let out = doctor(&["--node", &url(addr), "--json"]).await;
    assert_eq!(
        out.code,
        Some(0),
        "{out:#?}\nthe node printed:\n{}",
        py0.output()
    );
    assert_eq!(out.json()["passed"], json!(true), "{out:#?}");
    for check in ["reachable", "put-get-delete", "missing-404", "state-html"] {
        assert_eq!(out.check("node", check), json!(true), "{check}: {out:#?}");
    }
    assert_eq!(count_on(addr).await, 0, "the throwaway key stayed");
}

/// Sharding over py0 and py1: each key lands on the node `SHA-256 mod 2` names and only
/// there, stored under exactly its own name, and reads back through the proxy equal.
#[tokio::test]
async fn sharding_over_python_nodes_places_keys_by_sha256_mod_2() {
    if !python_ready("sharding_over_python_nodes_places_keys_by_sha256_mod_2") {
        return;
    }
    let (_py0, a0) = start_python("py0").await;
    let (_py1, a1) = start_python("py1").await;
    let config = yaml("sharding", &[("py0", url(a0)), ("py1", url(a1))], "");
    let (proxy, _) = start_proxy(&config).await;
    let nodes = [a0, a1];
    let mut expected: [Vec<String>; 2] = [Vec::new(), Vec::new()];

    for (key, value) in pairs() {
        let path = format!("/put?key={}", encode(key));
        let reply = post(proxy.addr, &path, json!({"value": value}).to_string()).await;
        let home = placement(key, 2);
        reply.expect_json(200);
        assert_eq!(
            reply.header("x-kv-node"),
            Some(["py0", "py1"][home]),
            "{key:?}"
        );
        expected[home].push(key.to_string());
        for (n, addr) in nodes.iter().enumerate() {
            let held = value_on(*addr, key).await;
            let want = (n == home).then(|| value.clone());
            assert_eq!(held, want, "{key:?} on py{n}; its home is py{home}");
        }
        let back = get(proxy.addr, &format!("/get?key={}", encode(key))).await;
        assert_eq!(back.expect_json(200)["value"], value, "{key:?} read back");
    }
    for (n, addr) in nodes.iter().enumerate() {
        expected[n].sort();
        assert!(!expected[n].is_empty(), "the keys should cover py{n}");
        assert_eq!(keys_on(*addr).await, expected[n], "py{n}'s keys, exactly");
    }
}

/// Replication over py0 and py1: every key is on both, and reads still answer after
/// py0 is killed, from py1.
#[tokio::test]
async fn replication_over_python_nodes_survives_losing_py0() {
    if !python_ready("replication_over_python_nodes_survives_losing_py0") {
        return;
    }
    let (mut py0, a0) = start_python("py0").await;
    let (_py1, a1) = start_python("py1").await;
    let config = yaml(
        "replication",
        &[("py0", url(a0)), ("py1", url(a1))],
        "timeout_ms: 1000\n",
    );
    let (proxy, _) = start_proxy(&config).await;

    for (key, value) in pairs() {
        let path = format!("/put?key={}", encode(key));
        post(proxy.addr, &path, json!({"value": value}).to_string())
            .await
            .expect_json(200);
        for (n, addr) in [a0, a1].iter().enumerate() {
            assert_eq!(
                value_on(*addr, key).await,
                Some(value.clone()),
                "{key:?} on py{n}"
            );
        }
    }
    let all = pairs().len() as u64;
    assert_eq!((count_on(a0).await, count_on(a1).await), (all, all));

    py0.kill();
    for (key, value) in pairs() {
        let reply = get(proxy.addr, &format!("/get?key={}", encode(key))).await;
        assert_eq!(
            reply.expect_json(200)["value"],
            value,
            "{key:?} after py0 died"
        );
        assert_eq!(reply.header("x-kv-node"), Some("py1"), "{key:?}");
    }
}

/// The Python node on a busy port says so in one sentence and exits 1, no traceback.
#[tokio::test]
async fn the_python_node_on_a_busy_port_says_so() {
    if !python_ready("the_python_node_on_a_busy_port_says_so") {
        return;
    }
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let out = Command::new("python3")
        .current_dir(workspace_root())
        .args([
            "-I",
            "examples/python-node/node.py",
            "-n",
            "x",
            "--host",
            "127.0.0.1",
            "-p",
            &port,
        ])
        .output()
        .expect("run python3");
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(!said.contains("Traceback"), "{said}");
    assert!(said.contains("pick another port"), "{said}");
}

/// The Python node joins a class with `--join` and leaves it on SIGTERM, with the secret
/// its join was given.
#[tokio::test]
async fn the_python_node_joins_and_leaves() {
    if !python_ready("the_python_node_joins_and_leaves") {
        return;
    }
    let kv1 = common::start_node(storage::Settings::named("kv1")).await;
    let config = yaml(
        "sharding",
        &[("kv1", url(kv1.addr))],
        "join_token: t0ken\njoin_allow_loopback: true\n",
    );
    let (proxy, _) = start_proxy(&config).await;
    let proxy_url = url(proxy.addr);
    let mut command = Command::new("python3");
    command
        .current_dir(workspace_root())
        .args([
            "-I",
            "examples/python-node/node.py",
            "-n",
            "pyalice",
            "--host",
            "127.0.0.1",
            "-p",
            "0",
        ])
        .args(["--join", &proxy_url, "--join-token", "t0ken"]);
    let node = Proc::spawn("python pyalice", command);
    node.wait_for_line("joined the class", Duration::from_secs(15))
        .await;
    let names = students_support::config_names(proxy.addr).await;
    assert!(names.contains(&"pyalice".to_string()), "{names:?}");
    node.terminate();
    node.wait_for_line("left the class", Duration::from_secs(10))
        .await;
    let names = students_support::config_names(proxy.addr).await;
    assert!(!names.contains(&"pyalice".to_string()), "{names:?}");
}
