//! The node's routes as a student uses them: put, get, delete, dump, clear, health, the
//! `/state` page and the `/` redirect, each against a real node on a free port.
//!
//! What a client gets wrong is in `errors.rs`; the wire and the stop are in `server.rs`.

mod common;

use common::{encode, get, post, request, start_node};
use serde_json::{json, Value};
use storage::Settings;

/// Puts `{"value": value_text}` under `key` and checks the 200.
async fn put(addr: std::net::SocketAddr, key: &str, value_text: &str) {
    let body = format!(r#"{{"value": {value_text}}}"#);
    let reply = post(addr, &format!("/put?key={}", encode(key)), body).await;
    reply.expect_json(200);
}

/// A value comes back exactly as it was sent: same JSON text, byte for byte, whatever
/// its type and however it was spaced.
#[tokio::test]
async fn get_returns_the_value_exactly_as_put() {
    let node = start_node(Settings::named("kv1")).await;
    let values = [
        r#""hello""#,
        "42",
        "-1.50e+10",
        "null",
        "true",
        r#"{ "b" :  [1, 2 ,3] ,  "a":{"c" : null}	}"#,
        r#"[[1, [2, [3, []]]], [], "x"]"#,
        r#""quotes \" and \\ and \u00e9 and é and \n""#,
    ];
    for (i, value) in values.iter().enumerate() {
        let key = format!("k{i}");
        put(node.addr, &key, value).await;
        let reply = get(node.addr, &format!("/get?key={key}")).await;
        reply.expect_json(200);
        assert_eq!(
            reply.text(),
            format!(r#"{{"value":{value},"key":"{key}","node":"kv1"}}"#),
            "value {value} did not come back byte for byte"
        );
    }
    // Whitespace around the value belongs to the body, not to the value.
    let spaced = "{\"value\":\n\t [1,  2] \r\n}";
    post(node.addr, "/put?key=spaced", spaced)
        .await
        .expect_json(200);
    let reply = get(node.addr, "/get?key=spaced").await;
    assert_eq!(
        reply.text(),
        r#"{"value":[1,  2],"key":"spaced","node":"kv1"}"#
    );
}

/// `PUT /put` stores like `POST /put`, and a second put replaces the first value.
#[tokio::test]
async fn put_method_also_stores_and_overwrites() {
    let node = start_node(Settings::named("kv1")).await;
    let first = request(node.addr, "PUT", "/put?key=k", &[], br#"{"value": 1}"#).await;
    first.expect_json(200);
    let second = request(node.addr, "PUT", "/put?key=k", &[], br#"{"value": "two"}"#).await;
    second.expect_json(200);
    let got = get(node.addr, "/get?key=k").await.expect_json(200);
    assert_eq!(got["value"], "two");
    let health = get(node.addr, "/health").await.expect_json(200);
    assert_eq!(health["keys"], 1, "an overwrite must not add a key");
}

/// A put answers `{"message", "key", "node"}` and nothing else.
#[tokio::test]
async fn put_answers_message_key_and_node() {
    let node = start_node(Settings::named("kv7")).await;
    let reply = post(node.addr, "/put?key=greeting", r#"{"value": "hi"}"#).await;
    assert_eq!(
        reply.expect_json(200),
        json!({"message": "stored", "key": "greeting", "node": "kv7"})
    );
}

/// The body is read as JSON whatever `Content-Type` says, as Flask's `force=True` did:
/// none, text/plain, a form type, or JSON.
#[tokio::test]
async fn body_is_json_whatever_the_content_type() {
    let node = start_node(Settings::named("kv1")).await;
    let types = [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/json"),
    ];
    for (i, content_type) in types.iter().enumerate() {
        let headers: Vec<(&str, &str)> =
            content_type.iter().map(|t| ("Content-Type", *t)).collect();
        let body = format!(r#"{{"value": {i}}}"#);
        let path = format!("/put?key=t{i}");
        let reply = request(node.addr, "POST", &path, &headers, body.as_bytes()).await;
        reply.expect_json(200);
        let got = get(node.addr, &format!("/get?key=t{i}")).await;
        assert_eq!(got.expect_json(200)["value"], i, "with {content_type:?}");
    }
}

/// Keys with spaces, `&`, `=`, `%`, `+`, `/`, `?`, `#` or Cyrillic survive
/// percent-encoding: stored, answered, found, listed and deleted under the same name.
#[tokio::test]
async fn awkward_keys_round_trip() {
    let node = start_node(Settings::named("kv1")).await;
    let keys = [
        "with space",
        "a&b",
        "a=b",
        "100%",
        "a+b",
        "x/y",
        "what?#not-a-fragment",
        "ключ",
        "ключ с пробелом",
    ];
    for (i, key) in keys.iter().enumerate() {
        let path = format!("/put?key={}", encode(key));
        let stored = post(node.addr, &path, format!(r#"{{"value": {i}}}"#)).await;
        assert_eq!(stored.expect_json(200)["key"], *key);
    }
    let dump = get(node.addr, "/dump").await.expect_json(200);
    for (i, key) in keys.iter().enumerate() {
        let got = get(node.addr, &format!("/get?key={}", encode(key))).await;
        let got = got.expect_json(200);
        assert_eq!((&got["key"], &got["value"]), (&json!(key), &json!(i)));
        assert_eq!(dump["data"][key], i, "{key:?} in /dump");
    }
    assert_eq!(dump["count"], keys.len());
    let gone = request(
        node.addr,
        "DELETE",
        &format!("/delete?key={}", encode("a&b")),
        &[],
        b"",
    )
    .await;
    assert_eq!(gone.expect_json(200)["key"], "a&b");
    let still = get(node.addr, &format!("/get?key={}", encode("a"))).await;
    still.expect_error(404);
}

/// In a raw query `+` means a space, as in HTML forms; only `%2B` is a plus.
#[tokio::test]
async fn plus_in_a_raw_query_is_a_space() {
    let node = start_node(Settings::named("kv1")).await;
    let stored = post(node.addr, "/put?key=a+b", r#"{"value": "spaced"}"#).await;
    assert_eq!(stored.expect_json(200)["key"], "a b");
    let got = get(node.addr, "/get?key=a%20b").await.expect_json(200);
    assert_eq!(got["value"], "spaced");
    let plus = get(node.addr, "/get?key=a%2Bb").await.expect_error(404);
    assert_eq!(plus["key"], "a+b");
}

/// Asking for a key the node does not hold is a 404 naming the key and the node.
#[tokio::test]
async fn get_of_an_unknown_key_is_404() {
    let node = start_node(Settings::named("kv3")).await;
    let body = get(node.addr, "/get?key=nope").await.expect_error(404);
    assert_eq!(body["key"], "nope");
    assert_eq!(body["node"], "kv3");
}

/// `DELETE /delete` removes a key (200) and a second delete finds nothing (404).
#[tokio::test]
async fn delete_removes_then_404() {
    let node = start_node(Settings::named("kv1")).await;
    put(node.addr, "k", "1").await;
    let first = request(node.addr, "DELETE", "/delete?key=k", &[], b"").await;
    assert_eq!(
        first.expect_json(200),
        json!({"message": "deleted", "key": "k", "node": "kv1"})
    );
    get(node.addr, "/get?key=k").await.expect_error(404);
    let again = request(node.addr, "DELETE", "/delete?key=k", &[], b"").await;
    assert_eq!(again.expect_error(404)["key"], "k");
}

/// `POST /delete` works too, for clients that only speak GET and POST.
#[tokio::test]
async fn post_delete_works_like_delete() {
    let node = start_node(Settings::named("kv1")).await;
    put(node.addr, "k", "1").await;
    put(node.addr, "other", "2").await;
    let first = post(node.addr, "/delete?key=k", "").await;
    assert_eq!(first.expect_json(200)["message"], "deleted");
    post(node.addr, "/delete?key=k", "").await.expect_error(404);
    let left = get(node.addr, "/get?key=other").await.expect_json(200);
    assert_eq!(left["value"], 2, "deleting one key must leave the others");
}

/// `/dump` lists every pair with its exact value, the node's name and the count.
#[tokio::test]
async fn dump_lists_every_pair() {
    let node = start_node(Settings::named("kv2")).await;
    let mut empty = get(node.addr, "/dump").await.expect_json(200);
    assert_eq!(empty["digest"], json!("0000000000000000"), "nothing held");
    empty.as_object_mut().unwrap().remove("digest");
    assert_eq!(empty, json!({"node": "kv2", "count": 0, "data": {}}));

    put(node.addr, "b", r#"{"x": [1, 2]}"#).await;
    put(node.addr, "a", r#""one""#).await;
    put(node.addr, "c", "null").await;
    let reply = get(node.addr, "/dump").await;
    let mut dump = reply.expect_json(200);
    let digest = dump.as_object_mut().unwrap().remove("digest").unwrap();
    assert_ne!(
        digest,
        json!("0000000000000000"),
        "a digest of what is held"
    );
    assert_eq!(
        dump,
        json!({"node": "kv2", "count": 3, "data": {"a": "one", "b": {"x": [1, 2]}, "c": null}})
    );
    // Values are sent as they were stored, not re-encoded.
    assert!(
        reply.text().contains(r#""b":{"x": [1, 2]}"#),
        "{}",
        reply.text()
    );
}

/// `/clear` answers how many keys went and leaves the node empty; clearing an empty
/// node removes 0. Both POST and DELETE clear.
#[tokio::test]
async fn clear_empties_the_node_and_counts() {
    let node = start_node(Settings::named("kv1")).await;
    for k in ["a", "b", "c"] {
        put(node.addr, k, "1").await;
    }
    let cleared = post(node.addr, "/clear", "").await;
    assert_eq!(
        cleared.expect_json(200),
        json!({"message": "cleared", "removed": 3, "node": "kv1"})
    );
    let dump = get(node.addr, "/dump").await.expect_json(200);
    assert_eq!((&dump["count"], &dump["data"]), (&json!(0), &json!({})));
    get(node.addr, "/get?key=a").await.expect_error(404);

    put(node.addr, "d", "1").await;
    let by_delete = request(node.addr, "DELETE", "/clear", &[], b"").await;
    assert_eq!(by_delete.expect_json(200)["removed"], 1);
    let again = post(node.addr, "/clear", "").await;
    assert_eq!(again.expect_json(200)["removed"], 0);
}

/// `/health` says the node is up, its name and how many keys it holds.
#[tokio::test]
async fn health_has_name_and_key_count() {
    let node = start_node(Settings::named("kv5")).await;
    let mut before = get(node.addr, "/health").await.expect_json(200);
    let instance = before.as_object_mut().unwrap().remove("instance").unwrap();
    assert_eq!(instance.as_str().map(str::len), Some(16), "a per-start id");
    assert_eq!(
        before,
        json!({"status": "ok", "node": "kv5", "keys": 0, "tombstones": 0, "hints": 0,
               "bytes": 0, "max_bytes": storage::db::DEFAULT_MAX_BYTES})
    );
    put(node.addr, "a", "1").await;
    put(node.addr, "b", "2").await;
    let after = get(node.addr, "/health").await.expect_json(200);
    assert_eq!((&after["keys"], &after["bytes"]), (&json!(2), &json!(4)));
}

/// `/state` is an HTML page with the node's name, its key count and the keys in order.
#[tokio::test]
async fn state_page_shows_name_count_and_sorted_keys() {
    let node = start_node(Settings::named("kv9")).await;
    for k in ["cherry", "apple", "banana"] {
        put(node.addr, k, r#""fruit""#).await;
    }
    let reply = get(node.addr, "/state").await;
    assert_eq!(reply.status, 200);
    let kind = reply.header("content-type").unwrap_or_default();
    assert!(kind.starts_with("text/html"), "content-type {kind}");
    let page = reply.text();
    assert!(page.contains("Node kv9"), "{page}");
    assert!(page.contains(r#"<span id="count">3</span>"#), "{page}");
    let at = |k: &str| page.find(&format!("<td>{k}</td>")).expect(k);
    assert!(at("apple") < at("banana") && at("banana") < at("cherry"));
}

/// A hostile key is shown on `/state` escaped, never as live HTML.
#[tokio::test]
async fn state_page_escapes_keys_and_values() {
    let node = start_node(Settings::named("kv1")).await;
    put(node.addr, "<script>alert(1)</script>", r#""<b>bold</b>""#).await;
    let reply = get(node.addr, "/state").await;
    assert_eq!(reply.status, 200);
    let page = reply.text();
    assert!(
        !page.contains("<script>"),
        "the raw tag is on the page: {page}"
    );
    assert!(!page.contains("<b>"), "the raw tag is on the page: {page}");
    // askama writes `<` as `&#60;`; `&lt;` would do as well.
    let shown = page.contains("&#60;script&#62;alert(1)&#60;/script&#62;")
        || page.contains("&lt;script&gt;alert(1)&lt;/script&gt;");
    assert!(shown, "the key is not shown, escaped: {page}");
}

/// A long value is cut on `/state`, with its full size in bytes beside it.
#[tokio::test]
async fn state_page_cuts_long_values() {
    let node = start_node(Settings::named("kv1")).await;
    let long = format!(r#""{}""#, "x".repeat(500));
    put(node.addr, "long", &long).await;
    put(node.addr, "short", r#""yyy""#).await;
    let reply = get(node.addr, "/state").await;
    assert_eq!(reply.status, 200);
    let page = reply.text();
    // The text shown is 120 characters (the opening quote and 119 x's), then an ellipsis.
    assert!(page.contains(&format!("{}…", "x".repeat(119))), "{page}");
    assert!(!page.contains(&"x".repeat(120)), "the value was not cut");
    assert!(page.contains("(502 bytes)"), "{page}");
    assert_eq!(
        page.matches("bytes)").count(),
        1,
        "a short value is not cut"
    );
}

/// `/` sends a browser to the `/state` page.
#[tokio::test]
async fn root_redirects_to_state() {
    let node = start_node(Settings::named("kv1")).await;
    let reply = get(node.addr, "/").await;
    assert_eq!(reply.status, 302, "{reply:#?}");
    assert_eq!(reply.header("location"), Some("/state"));
}

/// `HEAD` on a GET route answers the headers of the GET, without a body.
#[tokio::test]
async fn head_answers_without_a_body() {
    let node = start_node(Settings::named("kv1")).await;
    let reply = request(node.addr, "HEAD", "/health", &[], b"").await;
    assert_eq!(reply.status, 200);
    assert!(reply.body.is_empty(), "{reply:#?}");
    let length: usize = reply
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .expect("a Content-Length");
    let full = get(node.addr, "/health").await;
    assert_eq!(length, full.body.len());
    let _: Value = full.json();
}

/// `/dump?limit=K&preview=B`: the count of everything, the first K pairs by key, and
/// values longer than B bytes cut to a string of their start, listed in `cut` with their
/// full size: what a page needs of a node holding much, cheaply.
#[tokio::test]
async fn dump_summary_with_previews() {
    let node = start_node(Settings::named("kv3")).await;
    for k in ["d", "c", "b", "a"] {
        put(node.addr, k, r#""short""#).await;
    }
    put(node.addr, "aa", &format!("\"{}\"", "x".repeat(1000))).await;
    let dump = get(node.addr, "/dump?limit=3&preview=10")
        .await
        .expect_json(200);
    assert_eq!(dump["count"], json!(5));
    assert_eq!(
        dump["data"],
        json!({"a": "short", "aa": "\"xxxxxxxxx", "b": "short"})
    );
    assert_eq!(dump["cut"], json!({"aa": 1002}));
}
