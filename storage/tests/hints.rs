//! Hinted handoff on the node: a copy held for another node (`&hint=NODE`) is kept apart
//! from the node's own data, listed by `/hints`, and given back with `DELETE /hints`
//! only when it is still the version the proxy delivered.

mod common;

use std::net::SocketAddr;

use common::{get, request, start_node, Reply};
use serde_json::json;
use storage::Settings;

async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    version: Option<&str>,
    body: &str,
) -> Reply {
    let headers: Vec<(&str, &str)> = version.map(|v| ("X-Kv-Version", v)).into_iter().collect();
    request(addr, method, path, &headers, body.as_bytes()).await
}

/// A hint is stored for its node, never answers `/get`, is not in `/dump`, the key count
/// or the digests, and is listed by `/hints` with its version and raw value.
#[tokio::test]
async fn a_hint_is_not_the_nodes_own_data() {
    let node = start_node(Settings::named("kv1")).await;
    let digests_before = get(node.addr, "/digests").await.expect_json(200);
    let stored = send(
        node.addr,
        "PUT",
        "/put?key=k&hint=kv2",
        Some("5.0.p"),
        r#"{"value": [1,  2]}"#,
    )
    .await;
    assert_eq!(
        stored.expect_json(200),
        json!({"message": "hint stored", "for": "kv2", "key": "k", "node": "kv1"})
    );
    assert_eq!(stored.header("x-kv-version"), Some("5.0.p"));
    get(node.addr, "/get?key=k").await.expect_error(404);
    let dump = get(node.addr, "/dump?versions=1").await.expect_json(200);
    assert_eq!(
        (&dump["count"], &dump["data"], &dump["deleted"]),
        (&json!(0), &json!({}), &json!({}))
    );
    assert_eq!(
        get(node.addr, "/digests").await.expect_json(200),
        digests_before
    );
    let health = get(node.addr, "/health").await.expect_json(200);
    assert_eq!((&health["keys"], &health["hints"]), (&json!(0), &json!(1)));
    assert!(
        health["bytes"].as_u64().unwrap() > 0,
        "hints weigh in the budget"
    );
    // A deletion held as a hint needs a version.
    send(node.addr, "DELETE", "/delete?key=d&hint=kv3", None, "")
        .await
        .expect_error(400);
    let tomb = send(
        node.addr,
        "DELETE",
        "/delete?key=d&hint=kv3",
        Some("6.0.p"),
        "",
    )
    .await;
    assert_eq!(tomb.expect_json(200)["message"], "hint stored");
    let reply = get(node.addr, "/hints").await;
    reply.expect_json(200);
    assert_eq!(
        reply.text(),
        r#"{"node":"kv1","count":2,"hints":[{"for":"kv2","key":"k","version":"5.0.p","deleted":false,"value":[1,  2]},{"for":"kv3","key":"d","version":"6.0.p","deleted":true,"value":null}]}"#
    );
    let one = get(node.addr, "/hints?limit=1").await.expect_json(200);
    assert_eq!(
        (&one["count"], one["hints"].as_array().unwrap().len()),
        (&json!(2), 1)
    );
    // A node name must be a name.
    send(
        node.addr,
        "PUT",
        "/put?key=k&hint=",
        None,
        r#"{"value": 1}"#,
    )
    .await
    .expect_error(400);
    send(
        node.addr,
        "PUT",
        "/put?key=k&hint=a%0Ab",
        None,
        r#"{"value": 1}"#,
    )
    .await
    .expect_error(400);
}

/// Among hints for the same node and key the newest wins; `DELETE /hints` with an old
/// version keeps the newer hint, with the matching version (or none) removes it.
#[tokio::test]
async fn a_hint_is_removed_only_at_its_version() {
    let node = start_node(Settings::named("kv1")).await;
    send(
        node.addr,
        "POST",
        "/put?key=k&hint=kv2",
        Some("2.0.p"),
        r#"{"value": "new"}"#,
    )
    .await
    .expect_json(200);
    let older = send(
        node.addr,
        "POST",
        "/put?key=k&hint=kv2",
        Some("1.0.p"),
        r#"{"value": "old"}"#,
    )
    .await;
    assert_eq!(older.header("x-kv-version"), Some("2.0.p"));
    let hints = get(node.addr, "/hints").await.expect_json(200);
    assert_eq!(hints["hints"][0]["value"], "new");
    let stale = send(
        node.addr,
        "DELETE",
        "/hints?for=kv2&key=k&version=1.0.p",
        None,
        "",
    )
    .await;
    stale.expect_error(404);
    assert_eq!(get(node.addr, "/health").await.json()["hints"], 1);
    send(
        node.addr,
        "DELETE",
        "/hints?for=kv2&key=k&version=bad",
        None,
        "",
    )
    .await
    .expect_error(400);
    send(node.addr, "DELETE", "/hints?key=k", None, "")
        .await
        .expect_error(400);
    let removed = send(
        node.addr,
        "DELETE",
        "/hints?for=kv2&key=k&version=2.0.p",
        None,
        "",
    )
    .await;
    assert_eq!(removed.expect_json(200)["message"], "hint removed");
    send(node.addr, "DELETE", "/hints?for=kv2&key=k", None, "")
        .await
        .expect_error(404);
    // Without a version, whatever is held goes.
    send(
        node.addr,
        "POST",
        "/put?key=k&hint=kv2",
        None,
        r#"{"value": 1}"#,
    )
    .await
    .expect_json(200);
    send(node.addr, "DELETE", "/hints?for=kv2&key=k", None, "")
        .await
        .expect_json(200);
    assert_eq!(get(node.addr, "/hints").await.json()["count"], 0);
}

/// `POST /clear` removes hints and tombstones along with the keys.
#[tokio::test]
async fn clear_removes_everything() {
    let node = start_node(Settings::named("kv1")).await;
    send(node.addr, "POST", "/put?key=a", None, r#"{"value": 1}"#)
        .await
        .expect_json(200);
    send(
        node.addr,
        "POST",
        "/put?key=h&hint=kv2",
        None,
        r#"{"value": 1}"#,
    )
    .await
    .expect_json(200);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    send(
        node.addr,
        "DELETE",
        "/delete?key=t",
        Some(&format!("{now}.0.p")),
        "",
    )
    .await
    .expect_error(404);
    send(node.addr, "POST", "/clear", None, "")
        .await
        .expect_json(200);
    let health = get(node.addr, "/health").await.expect_json(200);
    assert_eq!(
        (
            &health["keys"],
            &health["tombstones"],
            &health["hints"],
            &health["bytes"]
        ),
        (&json!(0), &json!(0), &json!(0), &json!(0))
    );
}
