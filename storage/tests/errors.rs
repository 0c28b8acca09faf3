//! Everything a client can get wrong, and a node that fills up: each answer has the
//! right status and a JSON body with an `error` sentence, and a refused write changes
//! nothing.

mod common;

use common::{get, post, request, start_node};
use serde_json::json;
use storage::Settings;

/// A node that takes values of at most 16 bytes of JSON text.
fn small_values() -> Settings {
    Settings {
        max_value_bytes: 16,
        ..Settings::named("kv1")
    }
}

/// `/put`, `/get` and `/delete` without `?key=` are 400, and say how to add one.
#[tokio::test]
async fn missing_key_is_400() {
    let node = start_node(Settings::named("kv1")).await;
    let answers = [
        post(node.addr, "/put", r#"{"value": 1}"#).await,
        post(node.addr, "/put?other=1", r#"{"value": 1}"#).await,
        get(node.addr, "/get").await,
        request(node.addr, "DELETE", "/delete", &[], b"").await,
    ];
    for reply in answers {
        let body = reply.expect_error(400);
        assert!(body["error"].as_str().unwrap().contains("?key="), "{body}");
    }
    assert_eq!(get(node.addr, "/health").await.json()["keys"], 0);
}

/// `?key=` with nothing after it is 400, not a key called "".
#[tokio::test]
async fn empty_key_is_400() {
    let node = start_node(Settings::named("kv1")).await;
    let put = post(node.addr, "/put?key=", r#"{"value": 1}"#).await;
    let body = put.expect_error(400);
    assert!(
        body["error"].as_str().unwrap().contains("empty key"),
        "{body}"
    );
    get(node.addr, "/get?key=").await.expect_error(400);
    post(node.addr, "/delete?key=", "").await.expect_error(400);
    assert_eq!(get(node.addr, "/health").await.json()["keys"], 0);
}

/// A put whose body is not a JSON object with a `value` is 400, names the key, shows
/// the expected shape, and stores nothing.
#[tokio::test]
async fn bad_put_bodies_are_400() {
    let node = start_node(Settings::named("kv1")).await;
    let bodies: [&[u8]; 10] = [
        b"",                            // empty
        b"   ",                         // only whitespace
        br#"{"value": }"#,              // invalid JSON
        br#"{"value": 1"#,              // cut short
        br#"{"val": 1}"#,               // no `value`
        br#"["x"]"#,                    // an array, which serde could read as a struct
        br#""just a string""#,          // not an object
        b"value=1",                     // a form
        br#"{"value": 1} {}"#,          // something after the object
        br#"{"value": 1, "value": 2}"#, // `value` twice
    ];
    for body in bodies {
        let reply = request(node.addr, "POST", "/put?key=k", &[], body).await;
        let shown = String::from_utf8_lossy(body);
        assert_eq!(reply.status, 400, "body {shown:?}: {reply:#?}");
        let answer = reply.expect_error(400);
        assert_eq!(answer["key"], "k", "body {shown:?}");
        let sentence = answer["error"].as_str().unwrap();
        assert!(sentence.contains(r#"{"value": "hello"}"#), "{sentence}");
    }
    get(node.addr, "/get?key=k").await.expect_error(404);
}

/// A body that is not UTF-8 is 400 (JSON text is UTF-8).
#[tokio::test]
async fn non_utf8_body_is_400() {
    let node = start_node(Settings::named("kv1")).await;
    let reply = post(node.addr, "/put?key=k", b"{\"value\": \"\xff\"}").await;
    let body = reply.expect_error(400);
    assert!(body["error"].as_str().unwrap().contains("UTF-8"), "{body}");
    get(node.addr, "/get?key=k").await.expect_error(404);
}

/// A key of 1024 bytes is fine; one byte more is 414, for every route that takes a key.
#[tokio::test]
async fn key_over_1_kib_is_414() {
    let node = start_node(Settings::named("kv1")).await;
    let longest = "k".repeat(1024);
    post(node.addr, &format!("/put?key={longest}"), r#"{"value": 1}"#)
        .await
        .expect_json(200);
    get(node.addr, &format!("/get?key={longest}"))
        .await
        .expect_json(200);

    let too_long = "k".repeat(1025);
    let put = post(
        node.addr,
        &format!("/put?key={too_long}"),
        r#"{"value": 1}"#,
    )
    .await;
    let body = put.expect_error(414);
    assert!(body["error"].as_str().unwrap().contains("1025"), "{body}");
    get(node.addr, &format!("/get?key={too_long}"))
        .await
        .expect_error(414);
    post(node.addr, &format!("/delete?key={too_long}"), "")
        .await
        .expect_error(414);
    // The limit is on decoded bytes: 342 Cyrillic letters are 684 bytes, 513 are 1026.
    let cyrillic = "я".repeat(513);
    let encoded: String = cyrillic.bytes().map(|b| format!("%{b:02X}")).collect();
    get(node.addr, &format!("/get?key={encoded}"))
        .await
        .expect_error(414);
    assert_eq!(get(node.addr, "/health").await.json()["keys"], 1);
}

/// A value at the limit is stored; one byte over is 413 and the old value stays.
#[tokio::test]
async fn value_over_the_limit_is_413() {
    let node = start_node(small_values()).await;
    let fits = format!(r#""{}""#, "a".repeat(14)); // 16 bytes of JSON text
    let reply = post(node.addr, "/put?key=k", format!(r#"{{"value": {fits}}}"#)).await;
    reply.expect_json(200);

    let over = format!(r#""{}""#, "b".repeat(15)); // 17 bytes
    let reply = post(node.addr, "/put?key=k", format!(r#"{{"value": {over}}}"#)).await;
    let body = reply.expect_error(413);
    assert_eq!(body["key"], "k");
    assert!(
        body["error"].as_str().unwrap().contains("17 bytes"),
        "{body}"
    );

    let kept = get(node.addr, "/get?key=k").await.expect_json(200);
    assert_eq!(kept["value"], json!("a".repeat(14)));
}

/// A body whose `Content-Length` is over the limit is 413, and a client that sends all
/// of it before reading the answer (as curl and Python's `http.client` do) gets that 413,
/// not a broken pipe: 16 MiB is more than the socket buffers hold, so the node must read
/// and drop it rather than hang up early.
#[tokio::test]
async fn declared_body_over_the_limit_is_413() {
    let node = start_node(small_values()).await;
    // The limit on a body is the value's limit plus 1024 bytes for the `{"value": }`.
    let mut body = br#"{"value": 1"#.to_vec();
    body.resize(16 << 20, b' ');
    body.push(b'}');
    let reply = post(node.addr, "/put?key=k", &body).await;
    let answer = reply.expect_error(413);
    assert!(
        answer["error"].as_str().unwrap().contains("1040 bytes"),
        "{answer}"
    );
    get(node.addr, "/get?key=k").await.expect_error(404);
}

/// A body longer than the limit is 413 even when it is mostly padding around a small
/// value, and even when it comes chunked, without a `Content-Length` to go by.
#[tokio::test]
async fn sent_body_over_the_limit_is_413() {
    let node = start_node(small_values()).await;
    let padded = format!(r#"{{"value": 1{}}}"#, " ".repeat(2000));
    post(node.addr, "/put?key=k", &padded)
        .await
        .expect_error(413);

    let mut chunked = Vec::new();
    for _ in 0..3 {
        chunked.extend_from_slice(format!("400\r\n{}\r\n", " ".repeat(0x400)).as_bytes());
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let headers = [("Transfer-Encoding", "chunked")];
    let reply = request(node.addr, "POST", "/put?key=k", &headers, &chunked).await;
    reply.expect_error(413);
    get(node.addr, "/get?key=k").await.expect_error(404);
}

/// A value nested 64 deep is stored; 100 deep is 400, so one value cannot make `/dump`
/// unreadable to a parser with a recursion limit.
#[tokio::test]
async fn deeply_nested_value_is_400() {
    let node = start_node(Settings::named("kv1")).await;
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let ok = post(
        node.addr,
        "/put?key=ok",
        format!(r#"{{"value": {}}}"#, nested(64)),
    )
    .await;
    ok.expect_json(200);
    let one_more = format!(r#"{{"value": {}}}"#, nested(65));
    let over = post(node.addr, "/put?key=over", one_more).await;
    assert!(over.expect_error(400)["error"]
        .as_str()
        .unwrap()
        .contains("64 levels"));

    let deep = post(
        node.addr,
        "/put?key=deep",
        format!(r#"{{"value": {}}}"#, nested(100)),
    )
    .await;
    let body = deep.expect_error(400);
    assert_eq!(body["key"], "deep");
    get(node.addr, "/get?key=deep").await.expect_error(404);
    let objects = format!("{}1{}", r#"{"a":"#.repeat(100), "}".repeat(100));
    post(
        node.addr,
        "/put?key=deep",
        format!(r#"{{"value": {objects}}}"#),
    )
    .await
    .expect_error(400);
    get(node.addr, "/dump").await.expect_json(200);
}

/// A key whose percent-decoding is not UTF-8 is 400, on every route.
#[tokio::test]
async fn non_utf8_key_is_400() {
    let node = start_node(Settings::named("kv1")).await;
    let put = post(node.addr, "/put?key=%FF", r#"{"value": 1}"#).await;
    let body = put.expect_error(400);
    assert!(body["error"].as_str().unwrap().contains("UTF-8"), "{body}");
    get(node.addr, "/get?key=%C3").await.expect_error(400);
    post(node.addr, "/delete?key=a%80b", "")
        .await
        .expect_error(400);
    assert_eq!(get(node.addr, "/health").await.json()["keys"], 0);
}

/// A path no route serves is a JSON 404 naming the path, not an HTML page.
#[tokio::test]
async fn unknown_route_is_404_json() {
    let node = start_node(Settings::named("kv1")).await;
    for path in ["/nope", "/get/", "/PUT", "/state/x"] {
        let body = get(node.addr, path).await.expect_error(404);
        assert_eq!(body["path"], path);
    }
    let posted = post(node.addr, "/keys?key=a", r#"{"value": 1}"#).await;
    posted.expect_error(404);
}

/// The wrong method is a JSON 405 whose `Allow` header (and sentence) names the right
/// ones; a GET never writes and a POST never reads by accident.
#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let node = start_node(Settings::named("kv1")).await;
    let cases = [
        ("GET", "/put?key=k", "POST, PUT"),
        ("DELETE", "/put?key=k", "POST, PUT"),
        ("POST", "/get?key=k", "GET, HEAD"),
        ("PUT", "/delete?key=k", "DELETE, POST"),
        ("GET", "/delete?key=k", "DELETE, POST"),
        ("GET", "/clear", "POST, DELETE"),
        ("POST", "/dump", "GET, HEAD"),
        ("DELETE", "/health", "GET, HEAD"),
        ("POST", "/state", "GET, HEAD"),
        ("POST", "/", "GET, HEAD"),
    ];
    for (method, path, allow) in cases {
        let reply = request(node.addr, method, path, &[], br#"{"value": 1}"#).await;
        let body = reply.expect_error(405);
        assert_eq!(reply.header("allow"), Some(allow), "{method} {path}");
        let sentence = body["error"].as_str().unwrap();
        assert!(sentence.contains(method), "{sentence}");
    }
    get(node.addr, "/get?key=k").await.expect_error(404);
}

/// A full node (`max_keys: 2`) answers 507 for a new key, still updates the keys it
/// has, and loses nothing.
#[tokio::test]
async fn full_node_refuses_new_keys_only() {
    let settings = Settings {
        max_keys: 2,
        ..Settings::named("kv4")
    };
    let node = start_node(settings).await;
    post(node.addr, "/put?key=a", r#"{"value": 1}"#)
        .await
        .expect_json(200);
    post(node.addr, "/put?key=b", r#"{"value": 2}"#)
        .await
        .expect_json(200);

    let refused = post(node.addr, "/put?key=c", r#"{"value": 3}"#).await;
    let body = refused.expect_error(507);
    assert_eq!((&body["key"], &body["node"]), (&json!("c"), &json!("kv4")));
    assert!(body["error"].as_str().unwrap().contains("full"), "{body}");

    let update = post(node.addr, "/put?key=a", r#"{"value": "new"}"#).await;
    update.expect_json(200);
    let dump = get(node.addr, "/dump").await.expect_json(200);
    assert_eq!(
        (&dump["count"], &dump["data"]),
        (&json!(2), &json!({"a": "new", "b": 2}))
    );

    // Deleting makes room again.
    post(node.addr, "/delete?key=b", "").await.expect_json(200);
    post(node.addr, "/put?key=c", r#"{"value": 3}"#)
        .await
        .expect_json(200);
}

/// Every error the node can give, side by side: the status, `application/json`, and an
/// `error` sentence a person can act on.
#[tokio::test]
async fn every_error_is_json_with_an_error_sentence() {
    let settings = Settings {
        max_keys: 1,
        max_value_bytes: 16,
        ..Settings::named("kv1")
    };
    let node = start_node(settings).await;
    post(node.addr, "/put?key=first", "{\"value\": 1}")
        .await
        .expect_json(200);
    let long_key = format!("/get?key={}", "k".repeat(1025));
    let cases: [(&str, &str, &[u8], u16); 9] = [
        ("GET", "/get", b"", 400),
        ("GET", "/get?key=%FF", b"", 400),
        ("POST", "/put?key=k", b"nope", 400),
        ("GET", "/get?key=missing", b"", 404),
        ("GET", "/missing", b"", 404),
        ("PATCH", "/put?key=k", b"", 405),
        ("GET", long_key.as_str(), b"", 414),
        (
            "POST",
            "/put?key=k",
            br#"{"value": "0123456789abcdef"}"#,
            413,
        ),
        ("POST", "/put?key=second", br#"{"value": 2}"#, 507),
    ];
    for (method, path, body, status) in cases {
        let reply = request(node.addr, method, path, &[], body).await;
        assert_eq!(reply.status, status, "{method} {path}: {reply:#?}");
        reply.expect_error(status);
    }
}
