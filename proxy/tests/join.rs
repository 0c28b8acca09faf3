//! Students' nodes joining the class: a real `storage --join` process adds itself to the
//! proxy, takes its share of the keys and leaves on SIGTERM; without `--advertise` it is
//! reached at the address it came from (the classroom LAN); one started before the proxy
//! keeps trying, one refused says why and stops; a restarted node rejoins in its old
//! place; joined nodes survive a reload; `GET /config` gives back the whole class, odd
//! names and all; and the token is never shown or logged.
//!
//! What `POST /join` and `POST /leave` refuse is in `join_guards.rs`.

#[path = "../../storage/tests/common/mod.rs"]
mod common;
mod students_support;
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use common::{get, post, start_node};
use serde_json::{json, Value};
use students_support::{
    class_config, config_names, config_nodes, config_text, count_on, error_of, file_nodes,
    free_port, join, join_ok, leave_with_secret, placement, spawn_storage, start_proxy, url,
    value_on, wait_config, Proc, TempFile, TOKEN,
};

/// The `/health` entry of the node called `name`.
async fn health_of(proxy: SocketAddr, name: &str) -> Value {
    let health = get(proxy, "/health").await.expect_json(200);
    health["nodes"]
        .as_array()
        .and_then(|ns| ns.iter().find(|n| n["name"] == name))
        .unwrap_or_else(|| panic!("{name} is not in /health: {health:#}"))
        .clone()
}

/// Nothing in the output a student's node printed shows the token.
fn assert_no_token(proc: &Proc) {
    let out = proc.output();
    assert!(
        !out.contains(TOKEN),
        "{} printed the token:\n{out}",
        proc.name
    );
}

/// `storage --join --advertise` shows up in `/config` after the file's nodes, is marked
/// joined in `/health`, takes the keys `SHA-256 mod 3` gives index 2, and on SIGTERM
/// leaves the class before it stops.
#[tokio::test]
async fn a_storage_node_joins_takes_its_share_and_leaves_on_sigterm() {
    let (kv1, kv2) = file_nodes().await;
    let (proxy, _) = start_proxy(&class_config(&kv1, &kv2, "")).await;
    let port = free_port();
    let advertised = format!("http://127.0.0.1:{port}");
    let mut alice = spawn_storage(
        "alice",
        &[
            "-p",
            &port.to_string(),
            "--join",
            &url(proxy.addr),
            "--join-token",
            TOKEN,
            "--advertise",
            &advertised,
        ],
    );

    let (nodes, joined) = wait_config(proxy.addr, |n| n.len() == 3).await;
    assert!(
        joined,
        "alice did not join within 6 s: /config has {nodes:?}; she printed:\n{}",
        alice.output()
    );
    let want: Vec<(String, String)> = vec![
        ("kv1".into(), url(kv1.addr)),
        ("kv2".into(), url(kv2.addr)),
        ("alice".into(), advertised.clone()),
    ];
    assert_eq!(nodes, want, "joined nodes come after the file's nodes");
    let h = health_of(proxy.addr, "alice").await;
    assert_eq!(
        (&h["joined"], &h["up"]),
        (&json!(true), &json!(true)),
        "{h}"
    );
    let h = health_of(proxy.addr, "kv1").await;
    assert_eq!(h["joined"], json!(false), "a file node is not joined: {h}");

    // Keys are placed over (kv1, kv2, alice) in that order.
    let alice_addr = format!("127.0.0.1:{port}").parse().unwrap();
    let addrs = [kv1.addr, kv2.addr, alice_addr];
    let keys: Vec<String> = (0..12)
        .map(|i| format!("key-{i}"))
        .chain(["hello world".into(), "a&b=c".into(), "ключ".into()])
        .collect();
    let mut per_node = [0; 3];
    for (i, key) in keys.iter().enumerate() {
        let path = format!("/put?key={}", students_support::encode(key));
        let reply = post(proxy.addr, &path, format!(r#"{{"value": {i}}}"#)).await;
        reply.expect_json(200);
        let home = placement(key, 3);
        per_node[home] += 1;
        for (n, addr) in addrs.iter().enumerate() {
            let held = value_on(*addr, key).await;
            let expected = (n == home).then(|| json!(i));
            assert_eq!(
                held, expected,
                "{key:?}: node {n} holds {held:?}, home is {home}"
            );
        }
    }
    assert!(
        per_node.iter().all(|&c| c > 0),
        "the keys should cover every node: {per_node:?}"
    );
    assert_eq!(count_on(alice_addr).await, per_node[2]);

    alice.terminate();
    let (nodes, left) =
        wait_config(proxy.addr, |n| n.iter().all(|(name, _)| name != "alice")).await;
    assert!(
        left,
        "alice still in /config 6 s after SIGTERM: {nodes:?}; she printed:\n{}",
        alice.output()
    );
    assert_eq!(nodes, want[..2].to_vec());
    let status = alice.wait_exit(Duration::from_secs(5)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "alice should stop cleanly after leaving, got {status:?}:\n{}",
        alice.output()
    );
    assert_no_token(&alice);
}

/// Without `--advertise` the proxy reaches the node at the address its join came from
/// and the port it said it listens on (the classroom-LAN case).
#[tokio::test]
async fn a_node_without_advertise_is_reached_at_its_source_address() {
    let (kv1, kv2) = file_nodes().await;
    let (proxy, _) = start_proxy(&class_config(&kv1, &kv2, "")).await;
    let bob = spawn_storage(
        "bob",
        &["-p", "0", "--join", &url(proxy.addr), "--join-token", TOKEN],
    );
    let port = bob
        .port_after("listening on", Duration::from_secs(10))
        .await;
    let (nodes, joined) = wait_config(proxy.addr, |n| n.len() == 3).await;
    assert!(joined, "bob did not join: {nodes:?}\n{}", bob.output());
    assert_eq!(
        nodes[2],
        ("bob".to_string(), format!("http://127.0.0.1:{port}"))
    );
    assert_eq!(health_of(proxy.addr, "bob").await["up"], json!(true));
    assert_no_token(&bob);
}

/// Joining again with the same name and URL (a node restarted) is 200 and the node is
/// listed once, at the same index.
#[tokio::test]
async fn a_rejoin_with_the_same_name_and_url_is_200_without_a_duplicate() {
    let (kv1, kv2) = file_nodes().await;
    let (proxy, _) = start_proxy(&class_config(&kv1, &kv2, "")).await;
    let alice = start_node(storage::Settings::named("alice")).await;
    let first = join_ok(proxy.addr, "alice", &url(alice.addr)).await;
    assert_eq!(
        (&first["index"], &first["nodes"]),
        (&json!(2), &json!(3)),
        "{first}"
    );
    assert!(
        first["note"].as_str().is_some_and(|n| n.contains("mod 3")),
        "the first join warns that keys move: {first}"
    );
    assert_eq!(
        count_on(alice.addr).await,
        0,
        "the API check left its key behind"
    );
    let again = join_ok(proxy.addr, "alice", &url(alice.addr)).await;
    assert_eq!(
        (&again["index"], &again["nodes"]),
        (&json!(2), &json!(3)),
        "{again}"
    );
    assert_eq!(config_names(proxy.addr).await, ["kv1", "kv2", "alice"]);
    let health = get(proxy.addr, "/health").await.expect_json(200);
    assert_eq!(health["nodes_total"], json!(3), "{health}");
}

/// A reload of the config file (here switching to replication) keeps the joined nodes
/// after the file's nodes.
#[tokio::test]
async fn joined_nodes_survive_a_config_reload() {
    let (kv1, kv2) = file_nodes().await;
    let text = class_config(&kv1, &kv2, "");
    let file = TempFile::new("join-reload.yml", &text);
    let (proxy, p) = start_proxy(&text).await;
    let alice = start_node(storage::Settings::named("alice")).await;
    join_ok(proxy.addr, "alice", &url(alice.addr)).await;

    let edited = text.replace("mode: sharding", "mode: replication");
    assert_ne!(edited, text);
    proxy::reload::apply(&p, &file.path, &edited);

    let (shown, config) = config_text(proxy.addr).await;
    assert_eq!(config.mode, "replication", "{shown}");
    let names: Vec<&str> = config.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["kv1", "kv2", "alice"], "{shown}");
    let health = get(proxy.addr, "/health").await.expect_json(200);
    assert_eq!(health["mode"], json!("replication"));
    assert_eq!(health_of(proxy.addr, "alice").await["joined"], json!(true));

    // The joined node now gets every write, as replication says.
    post(proxy.addr, "/put?key=after-reload", r#"{"value": 1}"#)
        .await
        .expect_json(200);
    assert_eq!(value_on(alice.addr, "after-reload").await, Some(json!(1)));
    // And a file that no longer loads keeps it all running as it was.
    proxy::reload::apply(&p, &file.path, "mode: nonsense\n");
    assert_eq!(config_nodes(proxy.addr).await.len(), 3);
}

/// `GET /config` is YAML the proxy loads again: the file's nodes, then the joined ones,
/// the rest of the file as it was, and never the token.
#[tokio::test]
async fn config_shows_the_whole_class_without_the_token() {
    let (kv1, kv2) = file_nodes().await;
    let (proxy, _) = start_proxy(&class_config(&kv1, &kv2, "timeout_ms: 1500\n")).await;
    let alice = start_node(storage::Settings::named("alice")).await;
    let bob = start_node(storage::Settings::named("bob")).await;
    for (name, node) in [("alice", &alice), ("bob", &bob)] {
        join_ok(proxy.addr, name, &url(node.addr)).await;
    }
    let reply = get(proxy.addr, "/config").await;
    assert!(
        reply
            .header("content-type")
            .is_some_and(|c| c.contains("yaml")),
        "{reply:#?}"
    );
    let (text, config) = config_text(proxy.addr).await;
    assert!(!text.contains(TOKEN), "the token is shown:\n{text}");
    assert!(!text.contains("join_token"), "{text}");
    assert_eq!(config.join_token, None);
    assert_eq!(config.mode, "sharding");
    assert_eq!(config.timeout_ms, Some(1500));
    let nodes: Vec<(&str, &str)> = config
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.url.as_str()))
        .collect();
    let (u1, u2, ua, ub) = (url(kv1.addr), url(kv2.addr), url(alice.addr), url(bob.addr));
    assert_eq!(
        nodes,
        [
            ("kv1", u1.as_str()),
            ("kv2", u2.as_str()),
            ("alice", ua.as_str()),
            ("bob", ub.as_str())
        ]
    );
}

/// The proxy binary, run as a teacher runs it (with debug logs on), never writes the join token to its
/// output, while it does log the join itself.
#[tokio::test]
async fn the_token_never_appears_in_the_proxy_log() {
    let (kv1, kv2) = file_nodes().await;
    let file = TempFile::new("join-log.yml", &class_config(&kv1, &kv2, ""));
    let mut command = std::process::Command::new(students_support::proxy_bin());
    command.args(["-c", file.arg(), "-p", "0", "--host", "127.0.0.1"]);
    // Debug, as a teacher chasing a problem would run it: more lines, still no token.
    command.env("RUST_LOG", "debug");
    let mut teacher = Proc::spawn("proxy", command);
    let port = teacher.port_after("open ", Duration::from_secs(10)).await;
    let addr = format!("127.0.0.1:{port}").parse().unwrap();

    let alice = start_node(storage::Settings::named("alice")).await;
    error_of(
        &join(addr, Some("not-the-token"), "alice", &url(alice.addr)).await,
        401,
    );
    let joined = join_ok(addr, "alice", &url(alice.addr)).await;
    let (text, _) = config_text(addr).await;
    assert!(!text.contains(TOKEN), "{text}");
    leave_with_secret(addr, "alice", &joined["secret"])
        .await
        .expect_json(200);
    teacher
        .wait_for_line("alice left", Duration::from_secs(5))
        .await;

    teacher.terminate();
    let status = teacher.wait_exit(Duration::from_secs(10)).await;
    assert!(status.is_some(), "the proxy did not stop on SIGTERM");
    let log = teacher.output();
    assert!(log.contains("alice joined"), "the join is logged:\n{log}");
    assert!(
        !log.contains(TOKEN),
        "the token is in the proxy's log:\n{log}"
    );
}

/// A student's node started before the teacher's proxy keeps trying, and joins once the
/// proxy is up.
#[tokio::test]
async fn a_node_started_before_the_proxy_joins_when_it_comes_up() {
    let (kv1, kv2) = file_nodes().await;
    let proxy_port = free_port();
    let dave = spawn_storage(
        "dave",
        &[
            "-p",
            "0",
            "--join",
            &format!("http://127.0.0.1:{proxy_port}"),
            "--join-token",
            TOKEN,
        ],
    );
    dave.wait_for_line("cannot join", Duration::from_secs(10))
        .await;

    let config = proxy::config::Config::parse(&class_config(&kv1, &kv2, "")).unwrap();
    let p = std::sync::Arc::new(proxy::Proxy::new(config));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", proxy_port))
        .await
        .expect("bind the proxy's port");
    tokio::spawn(proxy::serve(listener, p, std::future::pending()));
    let addr = format!("127.0.0.1:{proxy_port}").parse().unwrap();
    let (nodes, joined) = wait_config(addr, |n| n.len() == 3).await;
    assert!(joined, "dave never joined: {nodes:?}\n{}", dave.output());
    assert_eq!(nodes[2].0, "dave");
}

/// A node the proxy refuses (a wrong token) says why once, stops asking, and keeps
/// serving on its own.
#[tokio::test]
async fn a_refused_node_says_why_and_stops_asking() {
    let (kv1, kv2) = file_nodes().await;
    let (proxy, _) = start_proxy(&class_config(&kv1, &kv2, "")).await;
    let erin = spawn_storage(
        "erin",
        &[
            "-p",
            "0",
            "--join",
            &url(proxy.addr),
            "--join-token",
            "wrong-token",
        ],
    );
    let port = erin
        .port_after("listening on", Duration::from_secs(10))
        .await;
    let line = erin.wait_for_line("refused", Duration::from_secs(10)).await;
    assert!(line.contains("401"), "{line}");
    // Past the first two retry delays (0.5 s, 1 s): a refusal is not retried.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let out = erin.output();
    assert_eq!(out.matches("refused").count(), 1, "{out}");
    assert!(!out.contains("cannot join"), "{out}");
    assert_eq!(config_nodes(proxy.addr).await.len(), 2);
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    get(addr, "/health").await.expect_json(200);
}

/// Names YAML would read as something else (a number, a bool, null, a mapping) come
/// back out of `/config` as the same strings, so the saved file loads as the class was.
#[tokio::test]
async fn tricky_names_round_trip_through_config() {
    let (kv1, kv2) = file_nodes().await;
    let (proxy, _) = start_proxy(&class_config(&kv1, &kv2, "")).await;
    let names = [
        "123",
        "true",
        "null",
        "~",
        "a: b",
        "- x",
        "#hash",
        "Алиса",
        "O'Brien \"the\" 2nd",
        "0x1F",
        "1e3",
    ];
    // One node each: a URL joins under one name only.
    let mut nodes = Vec::new();
    for name in names {
        let node = start_node(storage::Settings::named("student")).await;
        join_ok(proxy.addr, name, &url(node.addr)).await;
        nodes.push(node);
    }
    let (text, config) = config_text(proxy.addr).await;
    let shown: Vec<&str> = config.nodes.iter().map(|n| n.name.as_str()).collect();
    let mut want = vec!["kv1", "kv2"];
    want.extend(names);
    assert_eq!(shown, want, "{text}");
}
