//! Who may do what to a proxy the internet can reach: a join may not point the proxy at
//! the teacher's own network (link-local, loopback unless allowed, the proxy itself),
//! whatever a name resolves to; a joined name belongs to the node holding its secret;
//! another site's page may not write or clear; with `admin_token`, only the teacher
//! clears; and guessing tokens is slowed per client.
//!
//! Address rules for hosts other than 127.0.0.1 are checked through a lookup table the
//! test gives the proxy: nothing here resolves or connects off loopback.
//!
//! What the traffic itself meets (loops, bounded connections, answers as data) is in
//! `internet.rs`.

#[path = "../../storage/tests/common/mod.rs"]
mod common;
mod students_support;
mod support;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use common::{get, post, request, start_node, start_server, Node, Reply};
use proxy::address::Lookup;
use proxy::config::Config;
use proxy::upstream::Upstream;
use proxy::Proxy;
use serde_json::json;
use students_support::{
    class_config, config_nodes, config_text, error_of, file_nodes, join, join_ok, leave,
    leave_with_secret, post_auth, start_proxy, url, yaml, TOKEN,
};
use support::{count_on, value_on};

/// The teacher's token in these tests' configs.
const ADMIN: &str = "teacher-only-2b9e";

/// The test's DNS: a cloud's metadata service, a name for this machine, and nothing else.
fn table() -> Lookup {
    Arc::new(|host: String| {
        Box::pin(async move {
            match host.as_str() {
                "metadata.example" => Ok(vec![IpAddr::from([169, 254, 169, 254])]),
                "me.example" | "localhost" => Ok(vec![IpAddr::from([127, 0, 0, 1])]),
                _ => Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{host} is not in the test's table"),
                )),
            }
        })
    })
}

/// Starts a proxy with the config `text` whose hosts are looked up in [`table`].
async fn start_proxy_with_table(text: &str) -> Node {
    let config = Config::parse(text).unwrap_or_else(|e| panic!("bad test config: {e}\n{text}"));
    let proxy = Arc::new(Proxy::with_upstream(config, Upstream::with_lookup(table())));
    start_server(move |listener, stop| proxy::serve(listener, proxy, stop)).await
}

/// `POST /join` with `Authorization: Bearer token`, as sent for `forwarded_for` by
/// ngrok's agent (a loopback peer that says whom it forwards for).
async fn join_for(proxy: SocketAddr, forwarded_for: &str, token: &str) -> Reply {
    let bearer = format!("Bearer {token}");
    let body = json!({"name": "alice", "url": "http://127.0.0.1:9"}).to_string();
    let headers = [
        ("Authorization", bearer.as_str()),
        ("Content-Type", "application/json"),
        ("X-Forwarded-For", forwarded_for),
    ];
    request(proxy, "POST", "/join", &headers, body.as_bytes()).await
}

/// `POST path` with these headers and body.
async fn post_with(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    request(addr, "POST", path, headers, body.as_bytes()).await
}

/// A join URL that reaches a link-local address (a cloud's metadata service), by name or
/// literally, or this machine without `join_allow_loopback`, or that carries more than
/// `http(s)://host[:port][/path]`, is 400 with the reason, and nothing joins.
#[tokio::test]
async fn a_join_that_would_probe_the_teachers_network_is_400() {
    let kv1 = start_node(storage::Settings::named("kv1")).await;
    let config = yaml(
        "sharding",
        &[("kv1", url(kv1.addr))],
        &format!("join_token: {TOKEN}\n"),
    );
    let proxy = start_proxy_with_table(&config).await;
    let alice = start_node(storage::Settings::named("alice")).await;
    let port = alice.addr.port();
    let cases = [
        ("http://metadata.example/".to_string(), vec!["link-local"]),
        ("http://169.254.169.254/".to_string(), vec!["link-local"]),
        (
            "http://[::ffff:169.254.169.254]/".to_string(),
            vec!["link-local"],
        ),
        (url(alice.addr), vec!["loopback", "--advertise"]),
        (format!("http://me.example:{port}"), vec!["loopback"]),
        ("http://h/x#".to_string(), vec!["fragment"]),
        ("http://h:1/?a=b".to_string(), vec!["not a valid"]),
        ("http://u@h:1".to_string(), vec!["user@"]),
    ];
    for (node_url, words) in cases {
        let why = error_of(
            &join(proxy.addr, Some(TOKEN), "alice", &node_url).await,
            400,
        );
        for word in words {
            assert!(why.contains(word), "{node_url}: {why:?} lacks {word:?}");
        }
    }
    // Without a URL, the address the request came from: loopback here.
    let reply = post_auth(
        proxy.addr,
        "/join",
        Some(TOKEN),
        &json!({"name": "alice", "port": port}),
    )
    .await;
    let why = error_of(&reply, 400);
    assert!(why.contains("loopback"), "{why}");
    assert_eq!(config_nodes(proxy.addr).await.len(), 1, "nobody joined");
}

/// With `join_allow_loopback: true` a node on this machine joins, once: the same node as
/// `http://localhost:P` after `http://127.0.0.1:P` is 409 (one node, one name), and a
/// link-local address is still 400.
#[tokio::test]
async fn allowed_loopback_joins_still_count_one_node_once() {
    let (kv1, kv2) = file_nodes().await;
    let proxy = start_proxy_with_table(&class_config(&kv1, &kv2, "")).await;
    let alice = start_node(storage::Settings::named("alice")).await;
    let port = alice.addr.port();
    join_ok(proxy.addr, "alice", &format!("http://127.0.0.1:{port}")).await;
    let why = error_of(
        &join(
            proxy.addr,
            Some(TOKEN),
            "alice2",
            &format!("http://localhost:{port}"),
        )
        .await,
        409,
    );
    assert!(why.contains("as alice"), "{why}");
    let why = error_of(
        &join(proxy.addr, Some(TOKEN), "bob", "http://metadata.example/").await,
        400,
    );
    assert!(why.contains("link-local"), "{why}");
    assert_eq!(config_nodes(proxy.addr).await.len(), 3);
}

/// The proxy's own URL may not join it (every request would come back): 400 saying it
/// is this proxy, whether loopback joins are allowed or not, and by any name for it.
#[tokio::test]
async fn the_proxys_own_url_may_not_join() {
    let (kv1, kv2) = file_nodes().await;
    let allowed = class_config(&kv1, &kv2, "");
    let closed = yaml(
        "sharding",
        &[("kv1", url(kv1.addr))],
        &format!("join_token: {TOKEN}\n"),
    );
    for config in [allowed, closed] {
        let proxy = start_proxy_with_table(&config).await;
        let before = config_nodes(proxy.addr).await.len();
        for own in [
            url(proxy.addr),
            format!("http://localhost:{}", proxy.addr.port()),
        ] {
            let why = error_of(&join(proxy.addr, Some(TOKEN), "me", &own).await, 400);
            assert!(why.contains("this proxy"), "{own}: {why}");
        }
        assert_eq!(config_nodes(proxy.addr).await.len(), before, "{config}");
    }
}

/// A joined name belongs to the node holding the secret its join was given: with the
/// class token alone, nobody can take alice out (403) or move her name to another URL
/// (409); with her secret, she moves.
#[tokio::test]
async fn a_joined_name_is_held_by_its_secret() {
    let (kv1, kv2) = file_nodes().await;
    let (proxy, _) = start_proxy(&class_config(&kv1, &kv2, "")).await;
    let alice = start_node(storage::Settings::named("alice")).await;
    let laptop = start_node(storage::Settings::named("alice")).await;
    let (alice_url, laptop_url) = (url(alice.addr), url(laptop.addr));
    let joined = join_ok(proxy.addr, "alice", &alice_url).await;
    let secret = joined["secret"].as_str().expect("a secret").to_string();
    assert!(secret.len() >= 16, "{joined}");
    let alice_at = |url: &str| ("alice".to_string(), url.to_string());

    let why = error_of(&leave(proxy.addr, Some(TOKEN), "alice").await, 403);
    assert!(why.contains("secret"), "{why}");
    assert!(config_nodes(proxy.addr)
        .await
        .contains(&alice_at(&alice_url)));

    error_of(
        &join(proxy.addr, Some(TOKEN), "alice", &laptop_url).await,
        409,
    );
    assert!(config_nodes(proxy.addr)
        .await
        .contains(&alice_at(&alice_url)));

    let moved = json!({"name": "alice", "url": laptop_url, "secret": secret});
    post_auth(proxy.addr, "/join", Some(TOKEN), &moved)
        .await
        .expect_json(200);
    let nodes = config_nodes(proxy.addr).await;
    assert!(nodes.contains(&alice_at(&laptop_url)), "{nodes:?}");
    assert_eq!(nodes.len(), 3, "{nodes:?}");
}

/// A rejoin with the same name and URL needs no secret (a restarted laptop lost it) and
/// gets a new one: the old secret no longer takes the node out. The teacher's admin
/// A rejoin under the same name and URL is 200 for anyone with the class token, but only
/// a node that restarted since it joined (a new `instance`: it lost its secret) gets a
/// new secret; a classmate rejoining under its name gets none, so cannot take it out. The
/// teacher's admin token takes any joined node out, without a secret.
#[tokio::test]
async fn a_rejoin_gets_a_secret_only_from_a_restarted_node() {
    let (kv1, kv2) = file_nodes().await;
    let (proxy, _) = start_proxy(&class_config(
        &kv1,
        &kv2,
        &format!("admin_token: {ADMIN}\n"),
    ))
    .await;
    let alice = start_node(storage::Settings::named("alice")).await;
    let addr = alice.addr;
    let first = join_ok(proxy.addr, "alice", &url(addr)).await;
    let classmate = join_ok(proxy.addr, "alice", &url(addr)).await;
    assert!(classmate["secret"].is_null(), "{classmate}");
    let shown = post_auth(
        proxy.addr,
        "/join",
        Some(TOKEN),
        &json!({"name": "alice", "url": url(addr), "secret": first["secret"]}),
    )
    .await
    .expect_json(200);
    assert_eq!(shown["secret"], first["secret"], "its own secret back");

    // The laptop restarts on the same port: a new instance, its secret lost.
    alice.shutdown().await.unwrap();
    let again = support::start_node_on(addr, "alice").await;
    let restarted = join_ok(proxy.addr, "alice", &url(addr)).await;
    assert!(restarted["secret"].is_string(), "{restarted}");
    assert_ne!(restarted["secret"], first["secret"]);
    error_of(
        &leave_with_secret(proxy.addr, "alice", &first["secret"]).await,
        403,
    );
    assert_eq!(config_nodes(proxy.addr).await.len(), 3);
    post_auth(proxy.addr, "/leave", Some(ADMIN), &json!({"name": "alice"}))
        .await
        .expect_json(200);
    assert_eq!(config_nodes(proxy.addr).await.len(), 2);
    again.stop().await;
}

/// A config-file node stays in the class even when the teacher asks `/leave` (409: the
/// file is the place to remove it).
#[tokio::test]
async fn a_config_file_node_cannot_leave_even_for_the_teacher() {
    let (kv1, kv2) = file_nodes().await;
    let (proxy, _) = start_proxy(&class_config(
        &kv1,
        &kv2,
        &format!("admin_token: {ADMIN}\n"),
    ))
    .await;
    let reply = post_auth(proxy.addr, "/leave", Some(ADMIN), &json!({"name": "kv1"})).await;
    assert!(error_of(&reply, 409).contains("config file"));
    assert_eq!(
        config_nodes(proxy.addr).await[0],
        ("kv1".to_string(), url(kv1.addr))
    );
}

/// A node holding a key named like ngrok's error code (`ERR_NGROK_6024`) is a node with
/// data, not ngrok's warning page: it joins.
#[tokio::test]
async fn a_node_holding_an_ngrok_looking_key_joins() {
    let (kv1, kv2) = file_nodes().await;
    let (proxy, _) = start_proxy(&class_config(&kv1, &kv2, "")).await;
    let alice = start_node(storage::Settings::named("alice")).await;
    post(
        alice.addr,
        "/put?key=ERR_NGROK_6024",
        r#"{"value": "You are about to visit"}"#,
    )
    .await
    .expect_json(200);
    join_ok(proxy.addr, "alice", &url(alice.addr)).await;
}

/// Another site's page cannot make a visitor's browser write or clear the class's data
/// (the browser says where a request comes from: `Sec-Fetch-Site`, `Origin`), whatever
/// its `Content-Type`; curl, which sends neither, and the proxy's own page still can.
#[tokio::test]
async fn a_write_from_another_site_is_403_and_curl_still_writes() {
    let kv1 = start_node(storage::Settings::named("kv1")).await;
    let (proxy, _) = start_proxy(&yaml("sharding", &[("kv1", url(kv1.addr))], "")).await;
    post(proxy.addr, "/put?key=k", r#"{"value": 1}"#)
        .await
        .expect_json(200);

    let evil = [("Origin", "http://evil.example")];
    for headers in [&[("Sec-Fetch-Site", "cross-site")][..], &evil[..]] {
        let why = error_of(&post_with(proxy.addr, "/clear", headers, "").await, 403);
        assert!(why.contains("another site"), "{why}");
        assert_eq!(value_on(kv1.addr, "k").await, Some(json!(1)), "{headers:?}");
    }
    let text_plain = [
        ("Origin", "http://evil.example"),
        ("Content-Type", "text/plain"),
    ];
    error_of(
        &post_with(proxy.addr, "/put?key=x", &text_plain, r#"{"value": 2}"#).await,
        403,
    );
    let same_site = [("Sec-Fetch-Site", "same-site")];
    error_of(
        &post_with(proxy.addr, "/delete?key=k", &same_site, "").await,
        403,
    );
    assert_eq!(value_on(kv1.addr, "x").await, None);
    assert_eq!(value_on(kv1.addr, "k").await, Some(json!(1)));

    post(proxy.addr, "/put?key=x", r#"{"value": 2}"#)
        .await
        .expect_json(200);
    let same_origin = [("Sec-Fetch-Site", "same-origin")];
    post_with(proxy.addr, "/put?key=y", &same_origin, r#"{"value": 3}"#)
        .await
        .expect_json(200);
    let own_page = format!("http://{}", proxy.addr);
    post_with(
        proxy.addr,
        "/put?key=z",
        &[("Origin", &own_page)],
        r#"{"value": 4}"#,
    )
    .await
    .expect_json(200);
    assert_eq!(count_on(kv1.addr).await, 4);
    post(proxy.addr, "/clear", "").await.expect_json(200);
    assert_eq!(count_on(kv1.addr).await, 0);
}

/// With `admin_token`, `/clear` needs the teacher's token: without it, or with the
/// class's join token, 401 and the data stays; with it, 200. `GET /config` shows neither.
#[tokio::test]
async fn clear_needs_the_admin_token_when_there_is_one() {
    let (kv1, kv2) = file_nodes().await;
    let (proxy, _) = start_proxy(&class_config(
        &kv1,
        &kv2,
        &format!("admin_token: {ADMIN}\n"),
    ))
    .await;
    post(proxy.addr, "/put?key=k", r#"{"value": 1}"#)
        .await
        .expect_json(200);

    let why = error_of(&post(proxy.addr, "/clear", "").await, 401);
    assert!(why.contains("admin_token"), "{why}");
    error_of(
        &post_auth(proxy.addr, "/clear", Some(TOKEN), &json!({})).await,
        401,
    );
    get(proxy.addr, "/get?key=k").await.expect_json(200);

    post_auth(proxy.addr, "/clear", Some(ADMIN), &json!({}))
        .await
        .expect_json(200);
    get(proxy.addr, "/get?key=k").await.expect_error(404);
    let (text, _) = config_text(proxy.addr).await;
    assert!(!text.contains(ADMIN) && !text.contains(TOKEN), "{text}");
}

/// Ten wrong join tokens in a minute from one client, and the eleventh is 429 with
/// `Retry-After`; the right token still gets in at once: only guesses are slowed.
#[tokio::test]
async fn guessing_the_join_token_is_slowed_after_ten_tries() {
    let (kv1, kv2) = file_nodes().await;
    let (proxy, _) = start_proxy(&class_config(&kv1, &kv2, "")).await;
    let alice = start_node(storage::Settings::named("alice")).await;
    for i in 0..10 {
        let guess = format!("guess-{i}");
        error_of(
            &join(proxy.addr, Some(&guess), "alice", &url(alice.addr)).await,
            401,
        );
    }
    let reply = join(proxy.addr, Some("guess-10"), "alice", &url(alice.addr)).await;
    let why = error_of(&reply, 429);
    assert!(why.contains("wrong tokens"), "{why}");
    let wait: u64 = reply
        .header("retry-after")
        .expect("a Retry-After header")
        .parse()
        .expect("seconds");
    assert!((1..=61).contains(&wait), "Retry-After: {wait}");
    join_ok(proxy.addr, "alice", &url(alice.addr)).await;
}

/// Behind ngrok every request comes from its agent on loopback, so the client is the one
/// `X-Forwarded-For` names: one student's wrong tokens slow that student only.
#[tokio::test]
async fn wrong_tokens_are_counted_per_forwarded_client() {
    let (kv1, kv2) = file_nodes().await;
    let (proxy, _) = start_proxy(&class_config(&kv1, &kv2, "")).await;
    for _ in 0..10 {
        error_of(&join_for(proxy.addr, "203.0.113.1", "guess").await, 401);
    }
    let why = error_of(&join_for(proxy.addr, "203.0.113.1", "guess").await, 429);
    assert!(why.contains("203.0.113.1"), "{why}");
    error_of(&join_for(proxy.addr, "203.0.113.2", "guess").await, 401);
    error_of(
        &join(proxy.addr, Some("guess"), "alice", "http://127.0.0.1:9").await,
        401,
    );
}
