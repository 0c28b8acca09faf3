//! A foreign node: a student's own server that speaks only the original API (`/put`,
//! `/get`) and has an HTML `/state` page but no `/dump`. The proxy works over it in both
//! modes and shows its page on the proxy's /state in a sandboxed frame, its markup
//! escaped, so a hostile page runs nothing on the projector.

#[path = "../../storage/tests/common/mod.rs"]
mod common;
mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use common::{get, post};
use hyper::StatusCode;
use serde_json::{json, Value};
use storage::http::{html, json_text, query_param, Response};
use support::{
    start_nodes, start_proxy, start_scripted, unescape_html, url, value_on, yaml, Seen, Spied,
};

/// The script a hostile student hides in their /state page.
const HOSTILE: &str = r#"<script>alert("pwned")</script>"#;

/// `(key, node index with 2 nodes)`, computed once with
/// `python3 -c 'import hashlib,sys; k=sys.argv[1]; print(int(hashlib.sha256(k.encode()).hexdigest(), 16) % 2)' KEY`
const PYTHON_MOD_2: &[(&str, usize)] = &[
    ("key-0", 0),
    ("key-1", 0),
    ("key-2", 1),
    ("key-3", 0),
    ("key-4", 1),
    ("key-5", 1),
];

/// The page the foreign node serves for these keys.
fn page(data: &BTreeMap<String, Value>) -> String {
    let rows: String = data.keys().map(|k| format!("<li>{k}</li>")).collect();
    format!("<html><body><h1>my node</h1><ul>{rows}</ul>{HOSTILE}</body></html>")
}

/// Starts a server in the shape of the classroom original: `/put`, `/get`, an HTML
/// `/state`, and a Flask-like HTML 404 for everything else (so no `/dump`).
async fn start_foreign() -> (Spied, Arc<Mutex<BTreeMap<String, Value>>>) {
    let data: Arc<Mutex<BTreeMap<String, Value>>> = Arc::default();
    let store = data.clone();
    let server = start_scripted(move |seen: &Seen| -> Response {
        let (path, query) = seen
            .path_and_query
            .split_once('?')
            .unwrap_or((&seen.path_and_query, ""));
        let key = query_param(Some(query), "key")
            .ok()
            .flatten()
            .unwrap_or_default();
        let mut data = store.lock().unwrap();
        match (seen.method.as_str(), path) {
            ("POST" | "PUT", "/put") => match serde_json::from_slice::<Value>(&seen.body) {
                Ok(body) => {
                    data.insert(key.clone(), body["value"].clone());
                    json_text(
                        StatusCode::OK,
                        json!({"status": "ok", "key": key}).to_string(),
                    )
                }
                Err(_) => json_text(StatusCode::BAD_REQUEST, r#"{"error":"bad json"}"#.into()),
            },
            ("GET", "/get") => match data.get(&key) {
                Some(v) => json_text(StatusCode::OK, json!({"key": key, "value": v}).to_string()),
                None => json_text(StatusCode::NOT_FOUND, r#"{"error":"not found"}"#.into()),
            },
            ("GET", "/state") => html(page(&data)),
            _ => {
                let mut res = html("<h1>Not Found</h1>".into());
                *res.status_mut() = StatusCode::NOT_FOUND;
                res
            }
        }
    })
    .await;
    (server, data)
}

/// Sharding over one of our nodes and a foreign one: each key lands where Python says,
/// and reads come back as the foreign node wrote them.
#[tokio::test]
async fn sharding_works_over_a_foreign_node() {
    let ours = start_nodes(1).await.pop().unwrap();
    let (foreign, data) = start_foreign().await;
    let list = vec![("kv1", url(ours.addr)), ("theirs", url(foreign.node.addr))];
    let (proxy, _) = start_proxy(&yaml("sharding", &list, "")).await;
    for (i, (key, want)) in PYTHON_MOD_2.iter().enumerate() {
        let reply = post(
            proxy.addr,
            &format!("/put?key={key}"),
            format!(r#"{{"value": {i}}}"#),
        )
        .await;
        reply.expect_json(200);
        let on_theirs = data.lock().unwrap().get(*key).cloned();
        let on_ours = value_on(ours.addr, key).await;
        if *want == 1 {
            assert_eq!(reply.header("x-kv-node"), Some("theirs"));
            assert_eq!((on_ours, on_theirs), (None, Some(json!(i))), "{key}");
            let got = get(proxy.addr, &format!("/get?key={key}")).await;
            assert_eq!(got.text(), json!({"key": key, "value": i}).to_string());
        } else {
            assert_eq!((on_ours, on_theirs), (Some(json!(i)), None), "{key}");
        }
    }
}

/// Replication over a foreign node first and ours second: writes land on both, reads
/// are the foreign node's answer.
#[tokio::test]
async fn replication_works_over_a_foreign_node() {
    let ours = start_nodes(1).await.pop().unwrap();
    let (foreign, data) = start_foreign().await;
    let list = vec![("theirs", url(foreign.node.addr)), ("kv1", url(ours.addr))];
    let (proxy, _) = start_proxy(&yaml("replication", &list, "")).await;
    let body = post(proxy.addr, "/put?key=a%26b", r#"{"value": "both"}"#)
        .await
        .expect_json(200);
    assert_eq!(body["message"], "done on 2 of 2 nodes", "{body}");
    assert_eq!(body["nodes"][0]["answer"]["status"], "ok");
    assert_eq!(data.lock().unwrap().get("a&b"), Some(&json!("both")));
    assert_eq!(value_on(ours.addr, "a&b").await, Some(json!("both")));
    let got = get(proxy.addr, "/get?key=a%26b").await;
    assert_eq!(got.text(), r#"{"key":"a&b","value":"both"}"#);
    assert_eq!(got.header("x-kv-node"), Some("theirs"));
}

/// The proxy's /state shows a foreign node's own page in `<iframe sandbox="" srcdoc>`,
/// escaped: the page is all there, and its `<script>` appears nowhere as markup.
#[tokio::test]
async fn state_shows_a_foreign_page_sandboxed_and_escaped() {
    let ours = start_nodes(1).await.pop().unwrap();
    let (foreign, data) = start_foreign().await;
    let list = vec![("kv1", url(ours.addr)), ("theirs", url(foreign.node.addr))];
    let (proxy, _) = start_proxy(&yaml("sharding", &list, "")).await;
    post(proxy.addr, "/put?key=key-2", r#"{"value": 2}"#)
        .await
        .expect_json(200); // key-2 lives on theirs
    let served = page(&data.lock().unwrap());

    let reply = get(proxy.addr, "/state").await;
    assert_eq!(reply.status, 200);
    let text = reply.text();
    let start = text
        .find("<iframe sandbox=\"\"")
        .expect("a sandboxed iframe");
    let tag = &text[start..start + text[start..].find('>').unwrap()];
    let from = tag.find("srcdoc=\"").expect("a srcdoc attribute") + "srcdoc=\"".len();
    let attr = &tag[from..from + tag[from..].find('"').unwrap()];
    assert_eq!(
        unescape_html(attr),
        served,
        "the frame does not hold the node's page"
    );
    assert!(
        !attr.contains('<'),
        "markup inside srcdoc is not escaped: {attr}"
    );
    assert!(
        !text.contains(HOSTILE),
        "the node's script is in the page as markup"
    );
    // The proxy's own two script elements (the first snapshot and /state.js), no more.
    assert_eq!(text.matches("<script").count(), 2, "{text}");

    let snapshot = get(proxy.addr, "/state.json").await.expect_json(200);
    let theirs = &snapshot["nodes"][1];
    assert_eq!(theirs["name"], "theirs");
    assert_eq!(theirs["up"], true);
    assert_eq!(theirs["foreign_html"], served.as_str());
    assert_eq!(theirs["count"], Value::Null);
}
