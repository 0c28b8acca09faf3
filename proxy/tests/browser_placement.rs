//! The placement lab in a real browser (headless Chromium): the ring drawn in
//! consistent-hashing mode (every token, every key, the explained key's walk) and
//! redrawn live when a node joins; the "what moves" table comparing the strategies on
//! the keys held. Without Chromium these tests print a banner and pass;
//! `KV_REQUIRE_BROWSER=1` makes that a failure.

mod browser_support;
#[path = "../../storage/tests/common/mod.rs"]
mod common;
mod support;

use browser_support::page::{put, state_url, LIVE};
use browser_support::Browser;
use serde_json::{json, Value};
use support::{named, start_nodes, start_proxy, yaml};

/// The ring shows V tokens per node and a dot per key shown; explaining a key draws its
/// walk to its token; a fourth node in the config adds its tokens without a reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ring_is_drawn_and_follows_the_class() {
    let Some(browser) = Browser::open(1280, 900).await else {
        return;
    };
    let nodes = start_nodes(4).await;
    let list = named(&nodes);
    let (proxy, live) = start_proxy(&yaml("consistent-hashing", &list[..3], "vnodes: 20\n")).await;
    for i in 0..30 {
        put(proxy.addr, &format!("user-{i}"), &i.to_string()).await;
    }
    browser.goto(&state_url(proxy.addr)).await;
    let counts = "const r = document.getElementById('ring');
        return [r.querySelectorAll('line.token').length, r.querySelectorAll('circle.key').length]";
    let want = json!([60, 30]);
    browser
        .wait_for(
            "60 tokens and 30 keys",
            LIVE,
            &format!(
                "const c = (() => {{ {counts} }})(); return JSON.stringify(c) === {:?} ? c : null",
                want.to_string()
            ),
        )
        .await;
    // Each token is in its node's colour.
    let colours: Value = browser
        .js("return [...new Set([...document.querySelectorAll('#ring line.token')].map((l) => l.getAttribute('stroke')))].length")
        .await;
    assert_eq!(colours, json!(3), "three nodes, three colours");

    browser.type_into("#explain-key", "user-7").await;
    browser.click("#explain-form button").await;
    browser
        .wait_for(
            "the explained key's walk",
            LIVE,
            "return document.querySelector('#ring circle.explained') && document.querySelector('#ring path.walk')",
        )
        .await;

    live.live.replace(
        proxy::config::Config::parse(&yaml("consistent-hashing", &list, "vnodes: 20\n")).unwrap(),
    );
    browser
        .wait_for(
            "the fourth node's tokens",
            LIVE,
            "return document.querySelectorAll('#ring line.token').length === 80",
        )
        .await;
    browser.close().await;
}

/// "What moves" lists mod N, the ring and rendezvous on the keys held: mod N moves far
/// more when a node joins than the other two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_moves_compares_the_strategies() {
    let Some(browser) = Browser::open(1280, 900).await else {
        return;
    };
    let nodes = start_nodes(3).await;
    let (proxy, _) = start_proxy(&yaml("sharding", &named(&nodes), "")).await;
    for i in 0..300 {
        put(proxy.addr, &format!("user-{i}"), &i.to_string()).await;
    }
    browser.goto(&state_url(proxy.addr)).await;
    let rows = browser
        .wait_for(
            "the what-moves table",
            LIVE,
            "const rows = [...document.querySelectorAll('#moves tr')].slice(1).map((r) => [...r.cells].map((c) => c.innerText));
             return rows.length === 3 && !document.getElementById('moves-section').hidden ? rows : null",
        )
        .await;
    let rows = rows.as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r[0].as_str().unwrap()).collect();
    assert_eq!(names, ["mod N", "ring", "rendezvous"]);
    let join = |r: &Value| -> f64 {
        r[1].as_str()
            .unwrap()
            .trim_end_matches("% move")
            .parse()
            .unwrap()
    };
    assert!(join(&rows[0]) > 60.0, "{rows:?}");
    assert!(join(&rows[1]) < 40.0 && join(&rows[2]) < 40.0, "{rows:?}");
    browser.close().await;
}
