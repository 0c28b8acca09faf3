//! Nodes written by anyone under the consistency lab: a node that ignores `X-Kv-Version`
//! still works (its copies count as the oldest), and a node that ignores `&hint=` is no
//! spare: its copy is taken back and does not count toward W.

#[path = "../../storage/tests/common/mod.rs"]
mod common;
mod support;

use common::{get, post};
use storage::http;
use support::{start_nodes, start_proxy, start_scripted, url, value_on, yaml};

/// An unversioned copy (a foreign node's) loses to a versioned one in a quorum read, and
/// is repaired; alone, it is read all the same.
#[tokio::test]
async fn an_unversioned_copy_counts_as_the_oldest() {
    let ours = start_nodes(2).await;
    let list = [("kv1", url(ours[0].addr)), ("kv2", url(ours[1].addr))];
    let conf = yaml(
        "replication",
        &list,
        "read_quorum: all\nread_repair: true\n",
    );
    let (proxy, _) = start_proxy(&conf).await;
    post(proxy.addr, "/put?key=k", r#"{"value": "versioned"}"#)
        .await
        .expect_json(200);
    // kv1 gets an unversioned copy straight from a client (as a node in another language
    // keeps every copy): it is older than kv2's, whatever the clock says.
    post(ours[0].addr, "/put?key=k", r#"{"value": "unversioned"}"#)
        .await
        .expect_json(200);
    let read = get(proxy.addr, "/get?key=k").await;
    assert_eq!(read.header("x-kv-repaired"), Some("kv1"));
    assert_eq!(read.expect_json(200)["value"], "versioned");
    assert_eq!(value_on(ours[0].addr, "k").await, Some("versioned".into()));
    // Only unversioned copies: the value is read as it is.
    post(ours[0].addr, "/put?key=u", r#"{"value": 1}"#)
        .await
        .expect_json(200);
    post(ours[1].addr, "/put?key=u", r#"{"value": 1}"#)
        .await
        .expect_json(200);
    let read = get(proxy.addr, "/get?key=u").await.expect_json(200);
    assert_eq!(
        (read["value"].as_i64(), read["version"].is_null()),
        (Some(1), true)
    );
}

/// A spare that stores a hint as its own key (it ignores `&hint=`) is not counted toward
/// W, and the copy it should not hold is deleted again.
#[tokio::test]
async fn a_spare_without_hints_does_not_count() {
    let ours = start_nodes(1).await;
    let foreign = start_scripted(|seen| {
        if seen.method == "DELETE" {
            http::json(
                hyper::StatusCode::OK,
                &serde_json::json!({"message": "deleted"}),
            )
        } else {
            http::json(
                hyper::StatusCode::OK,
                &serde_json::json!({"message": "stored"}),
            )
        }
    })
    .await;
    let dead = support::dead_addr().await;
    let list = [
        ("kv1", url(ours[0].addr)),
        ("kv2", url(dead)),
        ("py", url(foreign.node.addr)),
    ];
    let conf = yaml(
        "rendezvous",
        &list,
        "replicas: 2\nwrite_quorum: 2\nhinted_handoff: true\n",
    );
    let (proxy, p) = start_proxy(&conf).await;
    let cluster = p.live.get();
    // A key whose homes are kv1 and kv2, so its spare is the foreign node.
    let key = (0..1000)
        .map(|i| format!("k{i}"))
        .find(|k| {
            let mut homes = cluster.placement.preference(k, 2);
            homes.sort();
            homes == [0, 1]
        })
        .expect("some key lives on kv1 and kv2");
    let refused = post(proxy.addr, &format!("/put?key={key}"), r#"{"value": 1}"#).await;
    let e = refused.expect_error(503);
    assert_eq!(
        (e["acked"].as_u64(), e["needed"].as_u64()),
        (Some(1), Some(2))
    );
    assert!(
        e["error"].as_str().unwrap().contains("keeps no hints"),
        "{e}"
    );
    let seen: Vec<String> = foreign
        .log
        .list()
        .iter()
        .map(|s| format!("{} {}", s.method, s.path_and_query))
        .collect();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen[0].starts_with("POST /put?key=") && seen[0].contains("&hint=kv2"),
        "{seen:?}"
    );
    assert!(seen[1].starts_with("DELETE /delete?key="), "{seen:?}");
}
