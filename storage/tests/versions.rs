//! Versions and tombstones as the proxy uses them: `X-Kv-Version` on writes and answers,
//! the newest write winning on every node, deletions remembered (and forgotten after the
//! grace), and the bucket digests two replicas compare.

mod common;

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{encode, get, request, start_node, Reply};
use serde_json::{json, Value};
use storage::buckets::{bucket_of, BUCKETS};
use storage::Settings;

/// Milliseconds since 1970, now.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A version `n` milliseconds after this test binary started: recent, so no tombstone
/// is old enough for the grace pass to drop, and ordered by `n`.
fn version(n: u64) -> String {
    static START: OnceLock<u64> = OnceLock::new();
    format!("{}.0.p", START.get_or_init(now_ms) + n)
}

async fn put(addr: SocketAddr, key: &str, value: &str, version: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = version.map(|v| ("X-Kv-Version", v)).into_iter().collect();
    let body = format!(r#"{{"value": {value}}}"#);
    request(
        addr,
        "PUT",
        &format!("/put?key={}", encode(key)),
        &headers,
        body.as_bytes(),
    )
    .await
}

async fn delete(addr: SocketAddr, key: &str, version: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = version.map(|v| ("X-Kv-Version", v)).into_iter().collect();
    request(
        addr,
        "DELETE",
        &format!("/delete?key={}", encode(key)),
        &headers,
        b"",
    )
    .await
}

/// A newer version replaces the value, an older one is kept ("kept newer"), and every
/// answer says in `X-Kv-Version` which version the node holds now.
#[tokio::test]
async fn the_newest_version_wins() {
    let node = start_node(Settings::named("kv1")).await;
    let (v1, v2, v3) = (version(1), version(2), version(3));
    let stored = put(node.addr, "k", "1", Some(&v2)).await;
    assert_eq!(stored.expect_json(200)["message"], "stored");
    assert_eq!(stored.header("x-kv-version"), Some(v2.as_str()));
    let kept = put(node.addr, "k", "0", Some(&v1)).await;
    assert_eq!(
        kept.expect_json(200),
        json!({"message": "kept newer", "key": "k", "node": "kv1"})
    );
    assert_eq!(kept.header("x-kv-version"), Some(v2.as_str()));
    let again = put(node.addr, "k", "0", Some(&v2)).await;
    assert_eq!(
        again.expect_json(200)["message"],
        "kept newer",
        "equal is not newer"
    );
    let got = get(node.addr, "/get?key=k").await;
    assert_eq!(got.expect_json(200)["value"], 1);
    assert_eq!(got.header("x-kv-version"), Some(v2.as_str()));
    put(node.addr, "k", "3", Some(&v3)).await.expect_json(200);
    assert_eq!(get(node.addr, "/get?key=k").await.json()["value"], 3);
}

/// An unversioned copy loses to any version; an unversioned write replaces an
/// unversioned copy (and answers without a version), as the classroom original did.
#[tokio::test]
async fn unversioned_is_older_than_any_version() {
    let node = start_node(Settings::named("kv1")).await;
    let plain = put(node.addr, "k", "1", None).await;
    assert_eq!(plain.expect_json(200)["message"], "stored");
    assert_eq!(plain.header("x-kv-version"), None);
    put(node.addr, "k", "2", None).await.expect_json(200);
    assert_eq!(
        get(node.addr, "/get?key=k").await.header("x-kv-version"),
        None
    );
    let v = version(0);
    let versioned = put(node.addr, "k", "3", Some(&v)).await;
    assert_eq!(versioned.expect_json(200)["message"], "stored");
    assert_eq!(get(node.addr, "/get?key=k").await.json()["value"], 3);
}

/// A version that is not `ms.counter.writer` is refused with 400 and nothing is stored.
#[tokio::test]
async fn a_malformed_version_is_400() {
    let node = start_node(Settings::named("kv1")).await;
    for bad in ["yesterday", "1.2", "1.2.has space", "-1.0.p", "1.0.é"] {
        let reply = put(node.addr, "k", "1", Some(bad)).await;
        let body = reply.expect_error(400);
        let message = body["error"].as_str().unwrap();
        assert!(
            message.starts_with("X-Kv-Version must look like 1765000000000.0.proxy-id"),
            "{message}"
        );
        delete(node.addr, "k", Some(bad)).await.expect_error(400);
    }
    get(node.addr, "/get?key=k").await.expect_error(404);
}

/// A versioned delete leaves a tombstone: `/get` is 404 with `deleted: true` and the
/// deletion's version, an older put does not bring the key back, and `/health` counts
/// it apart from the keys.
#[tokio::test]
async fn a_versioned_delete_leaves_a_tombstone() {
    let node = start_node(Settings::named("kv1")).await;
    let (v1, v2, v3) = (version(1), version(2), version(3));
    put(node.addr, "k", "1", Some(&v1)).await.expect_json(200);
    let gone = delete(node.addr, "k", Some(&v2)).await;
    assert_eq!(gone.expect_json(200)["message"], "deleted");
    assert_eq!(gone.header("x-kv-version"), Some(v2.as_str()));
    let got = get(node.addr, "/get?key=k").await;
    let body = got.expect_error(404);
    assert_eq!(
        (&body["deleted"], &body["key"]),
        (&json!(true), &json!("k"))
    );
    assert_eq!(got.header("x-kv-version"), Some(v2.as_str()));
    let late = put(node.addr, "k", "0", Some(&v1)).await;
    assert_eq!(late.expect_json(200)["message"], "kept newer");
    assert_eq!(late.header("x-kv-version"), Some(v2.as_str()));
    get(node.addr, "/get?key=k").await.expect_error(404);
    // Deleting a key never held is 404, but the tombstone is recorded all the same.
    let never = delete(node.addr, "other", Some(&v2)).await;
    assert_eq!(never.expect_error(404)["deleted"], true);
    let health = get(node.addr, "/health").await.expect_json(200);
    assert_eq!(
        (&health["keys"], &health["tombstones"]),
        (&json!(0), &json!(2))
    );
    let dump = get(node.addr, "/dump?versions=1").await.expect_json(200);
    assert_eq!(dump["data"], json!({}));
    assert_eq!(dump["deleted"], json!({"k": v2, "other": v2}));
    // A newer write brings it back.
    put(node.addr, "k", "3", Some(&v3)).await.expect_json(200);
    assert_eq!(
        get(node.addr, "/get?key=k").await.expect_json(200)["value"],
        3
    );
}

/// A delete without a version removes the key outright and leaves no tombstone.
#[tokio::test]
async fn an_unversioned_delete_leaves_nothing() {
    let node = start_node(Settings::named("kv1")).await;
    let v = version(1);
    put(node.addr, "k", "1", Some(&v)).await.expect_json(200);
    delete(node.addr, "k", None).await.expect_json(200);
    let body = get(node.addr, "/get?key=k").await.expect_error(404);
    assert_eq!(body.get("deleted"), None);
    let health = get(node.addr, "/health").await.expect_json(200);
    assert_eq!(
        (&health["keys"], &health["tombstones"]),
        (&json!(0), &json!(0))
    );
    delete(node.addr, "k", None).await.expect_error(404);
    // The key is free again: even an old version may write it.
    put(node.addr, "k", "2", Some("1.0.p"))
        .await
        .expect_json(200);
    assert_eq!(get(node.addr, "/get?key=k").await.json()["value"], 2);
}

/// With a tiny grace, a tombstone is dropped by the background pass.
#[tokio::test]
async fn tombstones_are_dropped_after_the_grace() {
    let mut settings = Settings::named("kv1");
    settings.tombstone_grace_s = 1;
    let node = start_node(settings).await;
    delete(node.addr, "k", Some(&format!("{}.0.p", now_ms())))
        .await
        .expect_error(404);
    let health = get(node.addr, "/health").await.expect_json(200);
    assert_eq!(health["tombstones"], 1, "kept while younger than the grace");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let health = get(node.addr, "/health").await.expect_json(200);
        if health["tombstones"] == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the tombstone was never dropped"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let body = get(node.addr, "/get?key=k").await.expect_error(404);
    assert_eq!(body.get("deleted"), None, "forgotten, not deleted");
}

async fn digests(addr: SocketAddr) -> Vec<String> {
    let body = get(addr, "/digests").await.expect_json(200);
    assert_eq!(body["buckets"], BUCKETS);
    serde_json::from_value(body["digests"].clone()).unwrap()
}

/// Two nodes given the same writes in different orders have equal digests; one key
/// that differs changes exactly its own bucket's digest.
#[tokio::test]
async fn digests_find_the_bucket_that_differs() {
    let (a, b) = (
        start_node(Settings::named("a")).await,
        start_node(Settings::named("b")).await,
    );
    let keys: Vec<String> = (0..40).map(|i| format!("key{i}")).collect();
    for (i, k) in keys.iter().enumerate() {
        put(a.addr, k, &i.to_string(), Some(&version(i as u64))).await;
    }
    for (i, k) in keys.iter().enumerate().rev() {
        put(b.addr, k, "null", None).await;
        put(b.addr, k, &i.to_string(), Some(&version(i as u64))).await;
    }
    delete(a.addr, "key3", Some(&version(100))).await;
    delete(b.addr, "key3", Some(&version(100))).await;
    let (da, db) = (digests(a.addr).await, digests(b.addr).await);
    assert_eq!(da.len(), BUCKETS);
    assert!(da.iter().all(|d| d.len() == 16));
    assert_eq!(da, db);
    let body = get(a.addr, "/digests").await.expect_json(200);
    assert_eq!(
        (&body["node"], &body["count"], &body["tombstones"]),
        (&json!("a"), &json!(39), &json!(1))
    );
    put(b.addr, "key7", "\"different\"", Some(&version(500))).await;
    let db = digests(b.addr).await;
    let differ: Vec<usize> = (0..BUCKETS).filter(|&i| da[i] != db[i]).collect();
    assert_eq!(differ, [bucket_of("key7")]);
}

/// `/dump?bucket=I&buckets=64` lists only that bucket's keys and tombstones (the count
/// stays the whole node's); another number of buckets is refused.
#[tokio::test]
async fn dump_filters_by_bucket() {
    let node = start_node(Settings::named("kv1")).await;
    let keys: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
    for k in &keys {
        put(node.addr, k, "1", Some(&version(1))).await;
    }
    delete(node.addr, "gone", Some(&version(2))).await;
    let b = bucket_of("k1");
    let dump = get(
        node.addr,
        &format!("/dump?bucket={b}&buckets=64&versions=1"),
    )
    .await
    .expect_json(200);
    assert_eq!(dump["count"], 100);
    let listed: Vec<&String> = dump["data"].as_object().unwrap().keys().collect();
    let expected: Vec<&String> = keys.iter().filter(|k| bucket_of(k) == b).collect();
    let mut listed_sorted = listed.clone();
    listed_sorted.sort();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    assert_eq!(listed_sorted, expected_sorted);
    assert!(listed.len() < 100 && listed.contains(&&"k1".to_string()));
    let versions = dump["versions"].as_object().unwrap();
    assert_eq!(versions.len(), listed.len());
    let deleted: &Value = &dump["deleted"];
    assert_eq!(deleted.get("gone").is_some(), bucket_of("gone") == b);
    for bad in [
        "/dump?bucket=1&buckets=32",
        "/dump?bucket=64&buckets=64",
        "/dump?bucket=1",
    ] {
        get(node.addr, bad).await.expect_error(400);
    }
    // Without versions=1 the dump is as it always was.
    let plain = get(node.addr, "/dump?limit=1").await.expect_json(200);
    assert_eq!(plain.get("versions"), None);
    assert_eq!(plain["data"].as_object().unwrap().len(), 1);
}
