//! The /state pages in a real browser (headless Chromium over WebDriver), checked for
//! what must never go wrong in front of a class: a key that is a `<script>` and a value
//! that is an `<img onerror>` stay text, on the proxy's page and on a node's own; a
//! foreign node's page is shown in a sandboxed frame its scripts cannot reach out of;
//! and the page is readable on a projector, photographed at 1920×1080 and 1280×720
//! (the README's `docs/state.png` is made by `docs/screenshot`, from the real demo).
//!
//! The page updating itself is in `browser_live.rs`. Without Chromium these tests print
//! a banner and pass; `KV_REQUIRE_BROWSER=1` makes that a failure (see `browser_support`).

mod browser_support;
#[path = "../../storage/tests/common/mod.rs"]
mod common;
mod support;

use std::path::PathBuf;
use std::time::Instant;

use browser_support::page::{self, put, state_url, LIVE};
use browser_support::Browser;
use common::{get, start_node};
use hyper::StatusCode;
use serde_json::json;
use support::{named, start_nodes, start_proxy, start_scripted, url, yaml};

/// A key that is a script, and a value that is an image whose error handler is one.
const SCRIPT_KEY: &str = "<script>document.title='PWNED'</script>";
const IMG_VALUE: &str = r#"<img src=x id=pwned onerror="document.title='PWNED'">"#;

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
/// (`target/screenshots/`); at 1280×720 the mode is at least 40 px tall and every card fits
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
