//! What `POST /join` and `POST /leave` refuse, each with the status and the sentence the
//! join module promises, whatever would break the class: a wrong or missing token (401),
//! joining turned off (403), a bad name or URL (400), a name or a URL already in the
//! class (409, also when two students race for one name), a URL that does not speak the
//! API (422), a full class (429, also when two race for the last place), and leaving as
//! a file node or an unknown one (409, 404). A name with HTML in it gets in, as text.
//!
//! Joining that works, with a real `storage --join`, is in `join.rs`.

#[path = "../../storage/tests/common/mod.rs"]
mod common;
mod students_support;
mod support;

use common::{get, start_node};
use serde_json::json;
use students_support::{
    class_config, config_names, config_nodes, error_of, file_nodes, join, join_ok, leave,
    leave_with_secret, post_auth, start_html_everywhere, start_proxy, url, yaml, TOKEN,
};

/// A wrong token and no token at all are both 401, for joining and for leaving, and
/// change nothing.
#[tokio::test]
async fn a_wrong_or_missing_token_is_401() {
    let (kv1, kv2) = file_nodes().await;
    let (proxy, _) = start_proxy(&class_config(&kv1, &kv2, "")).await;
    let alice = start_node(storage::Settings::named("alice")).await;
    let alice_url = url(alice.addr);

    let why = error_of(
        &join(proxy.addr, Some("guess"), "alice", &alice_url).await,
        401,
    );
    assert!(why.contains("token"), "{why}");
    error_of(&join(proxy.addr, None, "alice", &alice_url).await, 401);
    // The right token with another scheme is not a bearer token.
    let reply = common::request(
        proxy.addr,
        "POST",
        "/join",
        &[("Authorization", &format!("Basic {TOKEN}"))],
        json!({"name": "alice", "url": alice_url})
            .to_string()
            .as_bytes(),
    )
    .await;
    error_of(&reply, 401);
    // A prefix of the token is not the token.
    error_of(
        &join(proxy.addr, Some(&TOKEN[..5]), "alice", &alice_url).await,
        401,
    );
    error_of(&leave(proxy.addr, Some("guess"), "kv1").await, 401);
    assert_eq!(config_nodes(proxy.addr).await.len(), 2, "nobody joined");
}

/// A proxy without `join_token` refuses joins with 403 and says how to turn them on.
#[tokio::test]
async fn joining_is_off_without_a_join_token() {
    let (kv1, kv2) = file_nodes().await;
    let config = yaml(
        "sharding",
        &[("kv1", url(kv1.addr)), ("kv2", url(kv2.addr))],
        "",
    );
    let (proxy, _) = start_proxy(&config).await;
    let alice = start_node(storage::Settings::named("alice")).await;
    let why = error_of(
        &join(proxy.addr, Some(TOKEN), "alice", &url(alice.addr)).await,
        403,
    );
    assert!(why.contains("join_token"), "403 should say how: {why}");
    error_of(
        &join(proxy.addr, None, "alice", &url(alice.addr)).await,
        403,
    );
    error_of(&leave(proxy.addr, Some(TOKEN), "kv1").await, 403);
    // An empty token is a mistake in the config, said at load, not a way in.
    let why = proxy::config::Config::parse(&format!("{config}join_token: \"\"\n")).unwrap_err();
    assert!(why.contains("join_token is empty"), "{why}");
    assert_eq!(config_nodes(proxy.addr).await.len(), 2);
}

/// A name already held by another URL, joined or from the file, is 409 naming that URL.
#[tokio::test]
async fn a_name_taken_by_another_url_is_409() {
    let (kv1, kv2) = file_nodes().await;
    let (proxy, _) = start_proxy(&class_config(&kv1, &kv2, "")).await;
    let alice = start_node(storage::Settings::named("alice")).await;
    let impostor = start_node(storage::Settings::named("alice")).await;
    join_ok(proxy.addr, "alice", &url(alice.addr)).await;

    let why = error_of(
        &join(proxy.addr, Some(TOKEN), "alice", &url(impostor.addr)).await,
        409,
    );
    assert!(
        why.contains(&url(alice.addr)),
        "409 should name the holder: {why}"
    );
    let why = error_of(
        &join(proxy.addr, Some(TOKEN), "kv1", &url(impostor.addr)).await,
        409,
    );
    assert!(why.contains(&url(kv1.addr)), "{why}");
    let nodes = config_nodes(proxy.addr).await;
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    assert_eq!(nodes[2], ("alice".to_string(), url(alice.addr)));
}

/// A URL that answers but does not speak the API is 422 and is not added. The 422 reads
/// the same whether something listens there or not, and never carries what the URL
/// answered: a join must not be a way to probe the teacher's network or read from it.
#[tokio::test]
async fn a_url_that_does_not_speak_the_api_is_422_and_tells_nothing_of_it() {
    let (kv1, kv2) = file_nodes().await;
    let (proxy, _) = start_proxy(&class_config(&kv1, &kv2, "timeout_ms: 1000\n")).await;
    let homepage = start_html_everywhere().await;
    let reply = join(proxy.addr, Some(TOKEN), "alice", &url(homepage.addr)).await;
    let body = reply.expect_error(422);
    let why = body["error"].as_str().unwrap().to_string();
    assert!(why.contains(&url(homepage.addr)), "{why}");
    assert!(
        why.contains("proxy doctor"),
        "422 should say how to see why: {why}"
    );
    assert!(
        body.get("checks").is_none(),
        "the checks' details echo the target: {body:#}"
    );
    assert!(
        !reply.text().contains("html"),
        "the answer echoes the target: {body:#}"
    );

    let dead = students_support::dead_addr().await;
    let closed = error_of(&join(proxy.addr, Some(TOKEN), "bob", &url(dead)).await, 422);
    assert_eq!(
        closed.replace(&url(dead), "URL"),
        why.replace(&url(homepage.addr), "URL"),
        "an open and a closed port must read alike"
    );
    assert_eq!(config_nodes(proxy.addr).await.len(), 2, "nobody joined");
}

/// Bad names and URLs are 400 with the reason, before any check reaches out.
#[tokio::test]
async fn a_bad_name_or_url_is_400() {
    let (kv1, kv2) = file_nodes().await;
    let (proxy, _) = start_proxy(&class_config(&kv1, &kv2, "")).await;
    let cases = [
        (json!({"name": "alice", "url": "ftp://127.0.0.1:21"}), "ftp"),
        (json!({"name": "alice", "url": "127.0.0.1:5000"}), "scheme"),
        (json!({"name": "alice", "url": "http://"}), "not a valid"),
        (
            json!({"name": "alice", "url": "http://x:1/?a=b"}),
            "not a valid",
        ),
        (
            json!({"name": "", "url": "http://127.0.0.1:5000"}),
            "empty name",
        ),
        (
            json!({"name": "a\nb", "url": "http://127.0.0.1:5000"}),
            "visible",
        ),
        (
            json!({"name": "alice ", "url": "http://127.0.0.1:5000"}),
            "space",
        ),
        (
            json!({"name": "alice", "url": "http://127.0.0.1:5000/x#"}),
            "fragment",
        ),
        (
            json!({"name": "alice", "url": "http://user@127.0.0.1:5000"}),
            "user@",
        ),
        (json!({"name": "alice"}), "url"),
        (json!({"url": "http://127.0.0.1:5000"}), "JSON"),
    ];
    for (body, word) in cases {
        let reply = post_auth(proxy.addr, "/join", Some(TOKEN), &body).await;
        let why = error_of(&reply, 400);
        assert!(why.contains(word), "{body} said {why:?}, wanted {word:?}");
    }
    let reply = common::request(
        proxy.addr,
        "POST",
        "/join",
        &[("Authorization", &format!("Bearer {TOKEN}"))],
        b"name=alice",
    )
    .await;
    error_of(&reply, 400);
    assert_eq!(config_nodes(proxy.addr).await.len(), 2, "nobody joined");
}

/// With `max_joined: 1` the second student is told the class is full (429); a rejoin
/// of the first is still fine, and a place frees up when the first leaves.
#[tokio::test]
async fn a_full_class_is_429() {
    let (kv1, kv2) = file_nodes().await;
    let (proxy, _) = start_proxy(&class_config(&kv1, &kv2, "max_joined: 1\n")).await;
    let alice = start_node(storage::Settings::named("alice")).await;
    let bob = start_node(storage::Settings::named("bob")).await;
    let joined = join_ok(proxy.addr, "alice", &url(alice.addr)).await;
    let why = error_of(
        &join(proxy.addr, Some(TOKEN), "bob", &url(bob.addr)).await,
        429,
    );
    assert!(why.contains("full"), "{why}");
    join_ok(proxy.addr, "alice", &url(alice.addr)).await;
    assert_eq!(config_nodes(proxy.addr).await.len(), 3);

    leave_with_secret(proxy.addr, "alice", &joined["secret"])
        .await
        .expect_json(200);
    join_ok(proxy.addr, "bob", &url(bob.addr)).await;
    assert_eq!(config_names(proxy.addr).await, ["kv1", "kv2", "bob"]);
}

/// `/leave` removes a joined node, refuses a file node with 409 (the teacher edits the
/// file) and an unknown name with 404.
#[tokio::test]
async fn leave_removes_joined_nodes_only() {
    let (kv1, kv2) = file_nodes().await;
    let (proxy, _) = start_proxy(&class_config(&kv1, &kv2, "")).await;
    let alice = start_node(storage::Settings::named("alice")).await;
    let joined = join_ok(proxy.addr, "alice", &url(alice.addr)).await;

    let why = error_of(&leave(proxy.addr, Some(TOKEN), "kv1").await, 409);
    assert!(why.contains("config file"), "{why}");
    let why = error_of(&leave(proxy.addr, Some(TOKEN), "nobody").await, 404);
    assert!(why.contains("nobody"), "{why}");
    assert_eq!(config_nodes(proxy.addr).await.len(), 3);

    let left = leave_with_secret(proxy.addr, "alice", &joined["secret"])
        .await
        .expect_json(200);
    assert_eq!(left["nodes"], json!(2), "{left}");
    assert_eq!(config_names(proxy.addr).await, ["kv1", "kv2"]);
    error_of(&leave(proxy.addr, Some(TOKEN), "alice").await, 404);
}

/// Two students racing for the last place: exactly one gets in, the other hears 429;
/// two racing for one name with different URLs: one gets it, the other hears 409.
#[tokio::test]
async fn racing_joins_are_settled_under_the_lock() {
    let (kv1, kv2) = file_nodes().await;
    let (proxy, _) = start_proxy(&class_config(&kv1, &kv2, "max_joined: 1\n")).await;
    let alice = start_node(storage::Settings::named("alice")).await;
    let bob = start_node(storage::Settings::named("bob")).await;
    let (alice_url, bob_url) = (url(alice.addr), url(bob.addr));
    let (a, b) = tokio::join!(
        join(proxy.addr, Some(TOKEN), "alice", &alice_url),
        join(proxy.addr, Some(TOKEN), "bob", &bob_url),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [200, 429], "{a:#?}\n{b:#?}");
    assert_eq!(config_nodes(proxy.addr).await.len(), 3);

    let (proxy, _) = start_proxy(&class_config(&kv1, &kv2, "")).await;
    let (a, b) = tokio::join!(
        join(proxy.addr, Some(TOKEN), "carol", &alice_url),
        join(proxy.addr, Some(TOKEN), "carol", &bob_url),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{a:#?}\n{b:#?}");
    let nodes = config_nodes(proxy.addr).await;
    assert_eq!(nodes.len(), 3, "{nodes:?}");
}

/// One node cannot join under two names: it would get two shares of the keys.
#[tokio::test]
async fn a_url_joins_under_one_name_only() {
    let (kv1, kv2) = file_nodes().await;
    let (proxy, _) = start_proxy(&class_config(&kv1, &kv2, "")).await;
    let node = start_node(storage::Settings::named("alice")).await;
    join_ok(proxy.addr, "alice", &url(node.addr)).await;
    let err = join(
        proxy.addr,
        Some(TOKEN),
        "alice2",
        &format!("{}/", url(node.addr)),
    )
    .await
    .expect_error(409);
    assert!(err["error"].as_str().unwrap().contains("as alice"), "{err}");
    let err = join(proxy.addr, Some(TOKEN), "kv1again", &url(kv1.addr))
        .await
        .expect_error(409);
    assert!(err["error"].as_str().unwrap().contains("as kv1"), "{err}");
}

/// A student's name is shown as text on the class's `/state` page, never as markup.
#[tokio::test]
async fn a_name_with_html_is_text_on_the_state_page() {
    let (kv1, kv2) = file_nodes().await;
    let (proxy, _) = start_proxy(&class_config(&kv1, &kv2, "")).await;
    let node = start_node(storage::Settings::named("mallory")).await;
    let name = "<img src=x onerror=alert(1)>";
    join_ok(proxy.addr, name, &url(node.addr)).await;
    let page = get(proxy.addr, "/state").await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(
        html.contains("onerror=alert(1)"),
        "the name is not shown at all"
    );
    assert!(!html.contains(name), "the name went in as markup:\n{html}");
}
