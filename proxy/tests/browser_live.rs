//! The proxy's /state page keeping itself up to date in a real browser (headless
//! Chromium over WebDriver), as a class watches it on the projector: keys written while
//! the page is open appear on the right cards within 3 s without a reload, highlighted
//! as new; the filter narrows the keys and stays on through updates; "Last requests"
//! lists a new request; a scrolled key list stays scrolled and a foreign node's frame is
//! not loaded anew; and the explain box does the placement arithmetic.
//!
//! What must never go wrong on that page (hostile keys, foreign pages, a projector's
//! size) is in `browser_safety.rs`. Without Chromium these tests print a banner and
//! pass; `KV_REQUIRE_BROWSER=1` makes that a failure (see `browser_support`).

mod browser_support;
#[path = "../../storage/tests/common/mod.rs"]
mod common;
mod support;

use std::time::Instant;

use browser_support::page::{self, put, state_url, LIVE};
use browser_support::Browser;
use common::get;
use hyper::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::{named, start_nodes, start_proxy, start_scripted, url, yaml};

/// `SHA-256(key)` in hex, as `hashlib.sha256(key.encode()).hexdigest()` prints it.
fn sha256_hex(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// `int(hashlib.sha256(key.encode()).hexdigest(), 16) % n`, worked out here byte by byte
/// (the remainder of a big-endian number), independently of the proxy's own code.
fn python_mod(key: &str, n: usize) -> usize {
    let digest = Sha256::digest(key.as_bytes());
    digest
        .iter()
        .fold(0, |rest, &b| (rest * 256 + b as usize) % n)
}

async fn keys_appear_live(mode: &str) {
    let Some(browser) = Browser::open(1280, 900).await else {
        return;
    };
    let nodes = start_nodes(3).await;
    let (proxy, _) = start_proxy(&yaml(mode, &named(&nodes), "")).await;
    let names = ["kv1", "kv2", "kv3"];
    let expected = |key: &str| -> Vec<String> {
        match mode {
            "sharding" => vec![names[python_mod(key, 3)].to_string()],
            _ => names.iter().map(|n| n.to_string()).collect(),
        }
    };

    put(proxy.addr, "before-load", "1").await;
    browser.goto(&state_url(proxy.addr)).await;
    page::mark_document(&browser).await;
    let cards = browser.js(page::CARDS).await;
    assert_eq!(
        page::holders(&cards, "before-load"),
        expected("before-load"),
        "{mode}: {cards}"
    );
    page::wait_until_live(&browser).await;

    for (i, key) in ["after-load-1", "after-load-2", "after-load-3"]
        .into_iter()
        .enumerate()
    {
        put(proxy.addr, key, &i.to_string()).await;
        let written = Instant::now();
        let want = expected(key);
        let until_there = format!(
            "const cards = (() => {{ {cards} }})();
             const holders = cards.filter((c) => c.keys.includes({key})).length;
             return holders === {n} ? cards : null;",
            cards = page::CARDS,
            key = json!(key),
            n = want.len(),
        );
        let cards = browser
            .wait_for(&format!("{key} on {want:?}"), LIVE, &until_there)
            .await;
        eprintln!(
            "{mode}: {key} shown {:?} after it was written",
            written.elapsed()
        );
        assert_eq!(
            page::holders(&cards, key),
            want,
            "{mode}: {key} is on the wrong cards: {cards}"
        );
        for card in cards.as_array().expect("cards") {
            let fresh = card["fresh"].as_array().expect("fresh keys");
            let name = card["name"].as_str().unwrap_or_default();
            if want.iter().any(|w| w == name) {
                assert!(
                    fresh.contains(&json!(key)),
                    "{mode}: {key} on {name} is not highlighted: {card}"
                );
            }
            assert!(
                !fresh.contains(&json!("before-load")),
                "{mode}: an old key is highlighted: {card}"
            );
        }
    }
    page::assert_same_document(&browser).await;
    browser.close().await;
}

/// Sharding: a key written before the page loaded is on its node's card at once; keys
/// written while it is open appear on the card of the node Python names within 3 s,
/// with no reload, highlighted as new when they arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_appear_live_in_sharding() {
    keys_appear_live("sharding").await;
}

/// Replication: the same, with every key appearing on every node's card.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_appear_live_in_replication() {
    keys_appear_live("replication").await;
}

/// The explain box shows the arithmetic for `key-7`: its SHA-256 and the one node that
/// `int(hashlib.sha256(b"key-7").hexdigest(), 16) % 3` names, without leaving the page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_box_shows_the_arithmetic() {
    let Some(browser) = Browser::open(1280, 900).await else {
        return;
    };
    let nodes = start_nodes(3).await;
    let (proxy, _) = start_proxy(&yaml("sharding", &named(&nodes), "")).await;
    browser.goto(&state_url(proxy.addr)).await;
    page::mark_document(&browser).await;

    browser.type_into("#explain-key", "key-7").await;
    browser.click("#explain-form button").await;
    let out = "return document.getElementById('explain-out').innerText";
    let out = browser.wait_for("the explanation", LIVE, out).await;
    let out = out.as_str().unwrap_or_default();
    let remainder = python_mod("key-7", 3);
    let node = format!("kv{}", remainder + 1);
    assert!(
        out.contains(&sha256_hex("key-7")),
        "no SHA-256 of key-7 in: {out}"
    );
    assert!(
        out.contains(&format!("mod 3 = {remainder}")),
        "no `mod 3 = {remainder}` in: {out}"
    );
    assert!(
        out.contains(&node),
        "the node {node} is not named in: {out}"
    );
    for other in ["kv1", "kv2", "kv3"].into_iter().filter(|n| *n != node) {
        assert!(
            !out.contains(other),
            "sharding names one node, but {other} is in: {out}"
        );
    }
    page::assert_same_document(&browser).await;
    browser.close().await;
}

/// Typing in the filter box narrows every card to the keys containing the text, keeps
/// doing so as the page updates and keys arrive, and clearing it shows all keys again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_narrows_the_keys() {
    let Some(browser) = Browser::open(1280, 900).await else {
        return;
    };
    let nodes = start_nodes(3).await;
    let (proxy, _) = start_proxy(&yaml("sharding", &named(&nodes), "")).await;
    for (i, key) in [
        "apple-1",
        "apple-2",
        "pineapple",
        "banana-1",
        "cherry-1",
        "grape",
    ]
    .iter()
    .enumerate()
    {
        put(proxy.addr, key, &i.to_string()).await;
    }
    browser.goto(&state_url(proxy.addr)).await;
    let until_shown = |keys: &[&str]| {
        let mut keys = keys.to_vec();
        keys.sort();
        let want = json!(json!(keys).to_string());
        let shown = page::SHOWN_KEYS;
        format!("const shown = (() => {{ {shown} }})(); return JSON.stringify(shown) === {want} ? shown : null")
    };

    browser.type_into("#filter", "apple").await;
    let apples = ["apple-1", "apple-2", "pineapple"];
    browser
        .wait_for("only the apples", LIVE, &until_shown(&apples))
        .await;
    page::next_update(&browser).await;
    assert_eq!(
        browser.js(page::SHOWN_KEYS).await,
        json!(apples),
        "an update undid the filter"
    );
    put(proxy.addr, "apple-3", "7").await;
    put(proxy.addr, "banana-2", "8").await;
    let apples = ["apple-1", "apple-2", "apple-3", "pineapple"];
    browser
        .wait_for(
            "the new apple and no new banana",
            LIVE,
            &until_shown(&apples),
        )
        .await;

    let backspaces = fantoccini::key::Key::Backspace
        .to_string()
        .repeat("apple".len());
    browser.type_into("#filter", &backspaces).await;
    let all = [
        "apple-1",
        "apple-2",
        "apple-3",
        "pineapple",
        "banana-1",
        "banana-2",
        "cherry-1",
        "grape",
    ];
    browser
        .wait_for("every key again", LIVE, &until_shown(&all))
        .await;
    browser.close().await;
}

/// A request made while the page is open is listed under "Last requests" within 3 s:
/// its method, its key and the node that answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recent_requests_list_a_new_request() {
    let Some(browser) = Browser::open(1280, 900).await else {
        return;
    };
    let nodes = start_nodes(3).await;
    let (proxy, _) = start_proxy(&yaml("sharding", &named(&nodes), "")).await;
    browser.goto(&state_url(proxy.addr)).await;

    put(proxy.addr, "recent-probe", "1").await;
    get(proxy.addr, "/get?key=recent-probe").await;
    // The way each request went: the node, and what it answered.
    let node = format!("kv{} 200", python_mod("recent-probe", 3) + 1);
    for method in ["POST", "GET"] {
        let row = json!([method, "recent-probe", node]);
        let until_listed = format!(
            "const rows = (() => {{ {rows} }})();
             return rows.some((r) => JSON.stringify(r.slice(0, 3)) === {want}) ? rows : null",
            rows = page::RECENT_ROWS,
            want = json!(row.to_string()),
        );
        browser
            .wait_for(&format!("the row {row}"), LIVE, &until_listed)
            .await;
    }
    browser.close().await;
}

/// A card whose key list was scrolled (to show keys further down) stays scrolled when
/// the page updates itself, so a teacher can point at a key for more than a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrolled_key_list_stays_scrolled() {
    let Some(browser) = Browser::open(1280, 900).await else {
        return;
    };
    let nodes = start_nodes(1).await;
    let (proxy, _) = start_proxy(&yaml("sharding", &named(&nodes), "")).await;
    for i in 0..60 {
        put(proxy.addr, &format!("key-{i:02}"), &i.to_string()).await;
    }
    browser.goto(&state_url(proxy.addr)).await;
    let scroll = "const list = document.querySelector('#cards .keys'); list.scrollTop = 200; return list.scrollTop;";
    assert_eq!(
        browser.js(scroll).await,
        json!(200),
        "the key list is too short to scroll"
    );
    page::next_update(&browser).await;
    let now = browser
        .js("return document.querySelector('#cards .keys').scrollTop")
        .await;
    assert_eq!(
        now,
        json!(200),
        "the update scrolled the key list back to the top"
    );
    browser.close().await;
}

/// A foreign node's frame is kept across the page's updates while its page is the
/// same: it does not reload every second (which would reset its scroll and flicker).
/// (The element found inside the frame must still be there after two updates.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_frame_is_not_reloaded_by_updates() {
    let Some(browser) = Browser::open(1280, 900).await else {
        return;
    };
    let foreign = start_scripted(|seen| {
        if seen.path_and_query.starts_with("/state") {
            storage::http::html("<!doctype html><h1 id=old>the old course's node</h1>".to_string())
        } else {
            storage::http::json(StatusCode::NOT_FOUND, &json!({"error": "no such route"}))
        }
    })
    .await;
    let (proxy, _) = start_proxy(&yaml("sharding", &[("old", url(foreign.node.addr))], "")).await;
    browser.goto(&state_url(proxy.addr)).await;
    page::wait_until_live(&browser).await;

    let client = &browser.client;
    client.enter_frame(0).await.expect("enter the frame");
    let heading = client
        .find(fantoccini::Locator::Css("#old"))
        .await
        .expect("the frame's heading");
    client.enter_parent_frame().await.expect("back to the page");
    page::next_update(&browser).await;
    page::next_update(&browser).await;
    client.enter_frame(0).await.expect("enter the frame again");
    let still = heading.text().await;
    client.enter_parent_frame().await.expect("back to the page");
    assert!(
        still.is_ok(),
        "the frame's page was loaded anew by an update: {still:?}"
    );
    browser.close().await;
}

/// Clearing the filter brings back the keys it hid, without highlighting them as new:
/// they were there all along.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clearing_the_filter_highlights_nothing() {
    let Some(browser) = Browser::open(1280, 900).await else {
        return;
    };
    let nodes = start_nodes(3).await;
    let (proxy, _) = start_proxy(&yaml("sharding", &named(&nodes), "")).await;
    for key in ["apple-1", "banana-1", "cherry-1", "grape"] {
        put(proxy.addr, key, "1").await;
    }
    browser.goto(&state_url(proxy.addr)).await;
    browser.type_into("#filter", "apple").await;
    page::next_update(&browser).await;
    page::next_update(&browser).await;
    let backspaces = fantoccini::key::Key::Backspace
        .to_string()
        .repeat("apple".len());
    browser.type_into("#filter", &backspaces).await;
    let all = "const cards = (() => { CARDS })(); return cards.flatMap((c) => c.keys).length === 4 ? cards : null";
    let all = all.replace("CARDS", page::CARDS);
    browser.wait_for("every key again", LIVE, &all).await;
    for _ in 0..2 {
        let cards = browser.js(page::CARDS).await;
        let cards = cards.as_array().expect("cards");
        let fresh: Vec<&Value> = cards
            .iter()
            .flat_map(|c| c["fresh"].as_array().expect("fresh"))
            .collect();
        assert!(
            fresh.is_empty(),
            "old keys highlighted as new after clearing the filter: {fresh:?}"
        );
        page::next_update(&browser).await;
    }
    browser.close().await;
}
