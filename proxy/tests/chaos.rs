//! Chaos from the page: the teacher partitions or slows a node in the proxy, guarded by
//! the admin token, and heals it; the student's process is never touched.

#[path = "../../storage/tests/common/mod.rs"]
mod common;
mod support;

use std::time::{Duration, Instant};

use common::{get, post, request, Reply};
use support::{named, start_nodes, start_proxy, value_on, yaml};

const ADMIN: &str = "t3acher-only";

async fn chaos(
    proxy: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: &str,
    token: Option<&str>,
) -> Reply {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    request(proxy, method, path, &headers, body.as_bytes()).await
}

/// The SHA-256 mod N node of a key, as the sharding lesson computes it.
fn shard(key: &str, n: usize) -> usize {
    proxy::mode::placement(key, n)
}

/// A partition of kv2 in sharding fails exactly kv2's keys, with an error naming it and
/// the fault; the others answer; `DELETE /chaos` heals it, and every key reads again.
#[tokio::test]
async fn a_partition_fails_that_nodes_keys_and_heals() {
    let nodes = start_nodes(3).await;
    let conf = yaml(
        "sharding",
        &named(&nodes),
        &format!("admin_token: {ADMIN}\n"),
    );
    let (proxy, _) = start_proxy(&conf).await;
    let keys: Vec<String> = (0..30).map(|i| format!("c{i}")).collect();
    for k in &keys {
        post(proxy.addr, &format!("/put?key={k}"), r#"{"value": 1}"#)
            .await
            .expect_json(200);
    }
    let order = r#"{"node": "kv2", "fault": "partition"}"#;
    chaos(proxy.addr, "POST", "/chaos", order, None)
        .await
        .expect_error(401);
    chaos(proxy.addr, "POST", "/chaos", order, Some(ADMIN))
        .await
        .expect_json(200);
    for k in &keys {
        let r = get(proxy.addr, &format!("/get?key={k}")).await;
        if shard(k, 3) == 1 {
            let e = r.expect_error(502);
            let text = e["error"].as_str().unwrap();
            assert!(
                text.contains("kv2") && text.contains("partitioned"),
                "{text}"
            );
        } else {
            assert_eq!(r.status, 200, "{k} is not on kv2");
        }
    }
    // The node itself was never touched: it still holds its keys.
    let on_kv2 = keys.iter().find(|k| shard(k, 3) == 1).unwrap();
    assert!(value_on(nodes[1].addr, on_kv2).await.is_some());
    let state = get(proxy.addr, "/state.json").await.expect_json(200);
    assert!(state["nodes"][1]["fault"]
        .as_str()
        .unwrap()
        .contains("partitioned"));
    chaos(proxy.addr, "DELETE", "/chaos", "", Some(ADMIN))
        .await
        .expect_json(200);
    for k in &keys {
        get(proxy.addr, &format!("/get?key={k}"))
            .await
            .expect_json(200);
    }
}

/// A slow fault delays every request to that node by its `ms`; past the timeout it is a
/// timeout and the node is marked down; healing one node clears its failure memory.
#[tokio::test]
async fn a_slow_node_is_slow_and_healing_forgets_it() {
    let nodes = start_nodes(1).await;
    let conf = yaml(
        "sharding",
        &named(&nodes),
        &format!("admin_token: {ADMIN}\ntimeout_ms: 500\n"),
    );
    let (proxy, p) = start_proxy(&conf).await;
    chaos(
        proxy.addr,
        "POST",
        "/chaos",
        r#"{"node": "kv1", "fault": "slow", "ms": 200}"#,
        Some(ADMIN),
    )
    .await
    .expect_json(200);
    let started = Instant::now();
    get(proxy.addr, "/get?key=a").await.expect_error(404);
    assert!(started.elapsed() >= Duration::from_millis(200));
    chaos(
        proxy.addr,
        "POST",
        "/chaos",
        r#"{"node": "kv1", "fault": "slow", "ms": 900}"#,
        Some(ADMIN),
    )
    .await
    .expect_json(200);
    get(proxy.addr, "/get?key=a").await.expect_error(504);
    assert!(p.upstream.health.is_down(&support::url(nodes[0].addr)));
    chaos(proxy.addr, "DELETE", "/chaos?node=kv1", "", Some(ADMIN))
        .await
        .expect_json(200);
    assert!(!p.upstream.health.is_down(&support::url(nodes[0].addr)));
    get(proxy.addr, "/get?key=a").await.expect_error(404);
}

/// Without an admin token in the config, chaos is refused outright (403): the class's
/// join token is not enough to cut a classmate off. Bad orders are 400s that say why;
/// an unknown node is a 404 naming the nodes.
#[tokio::test]
async fn chaos_needs_the_teacher_and_a_sensible_order() {
    let nodes = start_nodes(2).await;
    let (open, _) = start_proxy(&yaml("sharding", &named(&nodes), "")).await;
    let e = chaos(
        open.addr,
        "POST",
        "/chaos",
        r#"{"node": "kv1", "fault": "partition"}"#,
        Some("x"),
    )
    .await
    .expect_error(403);
    assert!(e["error"].as_str().unwrap().contains("admin_token"));
    let conf = yaml(
        "sharding",
        &named(&nodes),
        &format!("admin_token: {ADMIN}\n"),
    );
    let (proxy, _) = start_proxy(&conf).await;
    for (body, want) in [
        (r#"{"node": "kv1", "fault": "slow"}"#, "ms"),
        (r#"{"node": "kv1", "fault": "explode"}"#, "partition"),
        (r#"not json"#, "fault"),
    ] {
        let e = chaos(proxy.addr, "POST", "/chaos", body, Some(ADMIN))
            .await
            .expect_error(400);
        assert!(e["error"].as_str().unwrap().contains(want), "{body}: {e}");
    }
    let e = chaos(
        proxy.addr,
        "POST",
        "/chaos",
        r#"{"node": "kv9", "fault": "partition"}"#,
        Some(ADMIN),
    )
    .await
    .expect_error(404);
    assert!(e["error"].as_str().unwrap().contains("kv1, kv2"));
    // A drive-by page cannot do it either.
    let auth = format!("Bearer {ADMIN}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Sec-Fetch-Site", "cross-site"),
    ];
    let refused = request(proxy.addr, "DELETE", "/chaos", &headers, b"").await;
    assert_eq!(refused.status, 403);
}
