//! The /state pages in a real browser (headless Chromium over WebDriver): what a class
//! sees on the projector. Keys show up live without a reload, the explain box does the
//! arithmetic, hostile keys and foreign nodes stay harmless text, the filter narrows the
//! keys, the page is readable at projector sizes, and the last requests are listed.
//!
//! Without Chromium these tests print a banner and pass; `KV_REQUIRE_BROWSER=1` makes
//! that a failure (see `browser_support`).

mod browser_support;
#[path = "../../storage/tests/common/mod.rs"]
mod common;
mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use browser_support::page::{self, LIVE};
use browser_support::Browser;
use common::{get, post, start_node};
use hyper::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::{encode, named, start_nodes, start_proxy, start_scripted, url, yaml};

/// A key that is a script, and a value that is an image whose error handler is one.
const SCRIPT_KEY: &str = "<script>document.title='PWNED'</script>";
const IMG_VALUE: &str = r#"<img src=x id=pwned onerror="document.title='PWNED'">"#;

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

/// Writes `key` = `value` (JSON text) through the proxy, or to the node, at `addr`.
async fn put(addr: SocketAddr, key: &str, value: &str) {
    let path = format!("/put?key={}", encode(key));
    let reply = post(addr, &path, format!(r#"{{"value": {value}}}"#)).await;
    assert_eq!(
        reply.status,
        200,
        "writing {key:?} failed: {}",
        reply.text()
    );
}

fn state_url(addr: SocketAddr) -> String {
    format!("http://{addr}/state")
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

/// A key that is a `<script>` and a value that is an `<img onerror>` stay text on the
/// proxy's page, whether the server rendered them (written before load: the watcher sees
/// the document as it is parsed) or the script drew them (written while it is open):
/// nothing runs, no element is made, the key is shown. The same on a storage node's own
/// /state page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_keys_and_values_stay_text() {
    let Some(browser) = Browser::open(1280, 900).await else {
        return;
    };
    let nodes = start_nodes(3).await;
    let (proxy, _) = start_proxy(&yaml("sharding", &named(&nodes), "")).await;
    let value = json!(IMG_VALUE).to_string();
    let live_key = format!("{SCRIPT_KEY} written live");

    put(proxy.addr, SCRIPT_KEY, &value).await;
    browser.goto(&state_url(proxy.addr)).await;
    assert!(
        page::cell_shows(&browser, SCRIPT_KEY).await,
        "the page does not show the key"
    );
    put(proxy.addr, &live_key, &value).await;
    let until_there = format!(
        "return [...document.querySelectorAll('#cards td')].some((td) => td.innerText === {})",
        json!(live_key)
    );
    browser
        .wait_for("the key written live", LIVE, &until_there)
        .await;
    // One more update: time for an image's error handler to run, had there been an image.
    page::next_update(&browser).await;
    page::assert_nothing_ran(&browser, "the proxy's /state").await;
    assert!(
        page::cell_shows(&browser, SCRIPT_KEY).await,
        "the key is not shown as text"
    );
    assert!(
        page::cell_shows(&browser, &live_key).await,
        "the live key is not shown as text"
    );
    assert!(
        page::cell_shows(&browser, &value).await,
        "the value is not shown as text"
    );

    // A node's own page has no script: a reload shows a key written while it was open.
    let node = start_node(storage::Settings::named("kv9")).await;
    put(node.addr, SCRIPT_KEY, &value).await;
    browser.goto(&state_url(node.addr)).await;
    assert!(
        page::cell_shows(&browser, SCRIPT_KEY).await,
        "the node's page does not show the key"
    );
    put(node.addr, &live_key, &value).await;
    browser
        .client
        .refresh()
        .await
        .expect("reload the node's page");
    page::assert_nothing_ran(&browser, "the node's /state").await;
    assert!(
        page::cell_shows(&browser, &live_key).await,
        "the node's page lacks the new key"
    );
    assert!(
        page::cell_shows(&browser, &value).await,
        "the node's page lacks the value as text"
    );
    browser.close().await;
}

/// A foreign node (one with only an HTML /state page, here a hostile one) is shown in a
/// sandboxed frame: its page is visible, its scripts cannot change the proxy's title.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_node_page_is_sandboxed() {
    let Some(browser) = Browser::open(1280, 900).await else {
        return;
    };
    let foreign = start_scripted(|seen| {
        if seen.path_and_query.starts_with("/state") {
            let html =
                "<!doctype html><title>old node</title><h1 id=old>the old course's node</h1>\
                        <script>top.document.title = 'PWNED by top';</script>\
                        <script>parent.document.title = 'PWNED by parent';</script>";
            storage::http::html(html.to_string())
        } else {
            storage::http::json(StatusCode::NOT_FOUND, &json!({"error": "no such route"}))
        }
    })
    .await;
    let nodes = start_nodes(1).await;
    let mut list = named(&nodes);
    list.push(("old", url(foreign.node.addr)));
    let (proxy, _) = start_proxy(&yaml("sharding", &list, "")).await;

    browser.goto(&state_url(proxy.addr)).await;
    let frame = "const f = document.querySelector('#cards iframe');
                 return f ? { sandbox: f.getAttribute('sandbox'), reachable: f.contentDocument !== null } : null";
    let frame = browser
        .wait_for("the foreign node's frame", LIVE, frame)
        .await;
    assert_eq!(
        frame,
        json!({"sandbox": "", "reachable": false}),
        "the frame is not fully sandboxed"
    );
    // The page redraws the frame at each update: give its scripts two chances.
    page::next_update(&browser).await;
    page::next_update(&browser).await;
    page::assert_nothing_ran(&browser, "the proxy's /state with a foreign node").await;
    assert_eq!(
        browser.client.title().await.expect("the title"),
        "kv proxy · sharding"
    );
    let deadline = Instant::now() + LIVE;
    let shown = loop {
        match browser.text_in_frame(0, "#old").await {
            Some(text) => break text,
            None if Instant::now() < deadline => continue,
            None => panic!("the frame does not show the node's page within {LIVE:?}"),
        }
    };
    assert_eq!(shown, "the old course's node");
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

/// The workspace's root folder, where `target/` and `docs/` are.
fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Width and height from a PNG's header.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let word = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().expect("4 bytes"));
    (word(16), word(20))
}

/// Starts 3 nodes and a sharding proxy holding `key-0` … `key-20`, one of them read back.
async fn classroom_of_21_keys() -> (Vec<common::Node>, common::Node) {
    let nodes = start_nodes(3).await;
    let (proxy, _) = start_proxy(&yaml("sharding", &named(&nodes), "")).await;
    for i in 0..21 {
        put(
            proxy.addr,
            &format!("key-{i}"),
            &format!(r#"{{"n": {i}, "colour": "teal"}}"#),
        )
        .await;
    }
    get(proxy.addr, "/get?key=key-7").await;
    (nodes, proxy)
}

/// Readable on a projector: 21 keys over 3 nodes photographed at 1920×1080 and 1280×720
/// (`target/screenshots/`; `KV_UPDATE_SCREENSHOT=1` also writes the README's
/// `docs/state.png`); at 1280×720 the mode is at least 40 px tall and every card fits
/// across without scrolling sideways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_page_is_readable_on_a_projector() {
    let (_nodes, proxy) = classroom_of_21_keys().await;
    let folder = workspace_root().join("target/screenshots");
    std::fs::create_dir_all(&folder).expect("create target/screenshots");

    for (width, height) in [(1920, 1080), (1280, 720)] {
        let Some(browser) = Browser::open(width, height).await else {
            return;
        };
        browser.goto(&state_url(proxy.addr)).await;
        page::wait_until_live(&browser).await;
        let png = browser.screenshot().await;
        let path = folder.join(format!("state-{width}x{height}.png"));
        std::fs::write(&path, &png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        assert_eq!(
            png_size(&png),
            (width, height),
            "the screenshot is not the page's size"
        );
        assert!(
            png.len() > 10_000,
            "{} is only {} bytes: a blank page?",
            path.display(),
            png.len()
        );
        if width == 1920 && std::env::var("KV_UPDATE_SCREENSHOT").as_deref() == Ok("1") {
            let docs = workspace_root().join("docs/state.png");
            std::fs::write(&docs, &png).unwrap_or_else(|e| panic!("write {}: {e}", docs.display()));
        }
        if width == 1280 {
            let size =
                "return parseFloat(getComputedStyle(document.getElementById('mode')).fontSize)";
            let size = browser.js(size).await.as_f64().expect("a font size");
            assert!(
                size >= 40.0,
                "the mode is {size}px tall at 1280×720; a projector needs 40px"
            );
            let fit = browser
                .js("const width = window.innerWidth;
                     const cards = [...document.querySelectorAll('#cards .card')];
                     const out = cards.filter((c) => { const r = c.getBoundingClientRect(); return r.left < 0 || r.right > width; });
                     return { scroll: document.documentElement.scrollWidth, width, cards: cards.length, out: out.length };")
                .await;
            assert_eq!(fit["cards"], json!(3), "{fit}");
            assert!(
                fit["scroll"].as_u64() <= fit["width"].as_u64(),
                "the page scrolls sideways: {fit}"
            );
            assert_eq!(fit["out"], json!(0), "a card sticks out at 1280×720: {fit}");
        }
        browser.close().await;
    }
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
    let node = format!("kv{}", python_mod("recent-probe", 3) + 1);
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

/// At 1280×720 a short key such as `key-20` stays on one line in its card, so a class
/// reads it as one word (found by looking at the screenshot above).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_keys_stay_on_one_line_at_1280x720() {
    let Some(browser) = Browser::open(1280, 720).await else {
        return;
    };
    let (_nodes, proxy) = classroom_of_21_keys().await;
    browser.goto(&state_url(proxy.addr)).await;
    let broken = browser
        .js(
            "return [...document.querySelectorAll('#cards .keys tr')].map((r) => {
               const range = document.createRange();
               range.selectNodeContents(r.cells[0]);
               return [r.cells[0].innerText, range.getClientRects().length];
             }).filter(([, lines]) => lines > 1);",
        )
        .await;
    assert_eq!(
        broken,
        json!([]),
        "keys broken over several lines, as [key, lines]"
    );
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
