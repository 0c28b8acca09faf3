//! What the browser tests do to a /state page and read off it, written once: where the
//! page is, a key written for it to show, the cards and their keys, the page's own
//! updates, and the marks left by anything that ran.
//!
//! A test file using it declares `mod common` (the storage kit, through `#[path]`) and
//! `mod support` beside `mod browser_support`; this file reaches them as `crate::common`
//! and `crate::support`.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};

use super::Browser;
use crate::common::post;
use crate::support::encode;

/// How long the proxy's page may take to show a change: it polls every second.
pub const LIVE: Duration = Duration::from_secs(3);

/// The /state page of the proxy, or the node, at `addr`.
pub fn state_url(addr: SocketAddr) -> String {
    format!("http://{addr}/state")
}

/// Writes `key` = `value` (JSON text) through the proxy, or to the node, at `addr`.
pub async fn put(addr: SocketAddr, key: &str, value: &str) {
    let path = format!("/put?key={}", encode(key));
    let reply = post(addr, &path, format!(r#"{{"value": {value}}}"#)).await;
    assert_eq!(
        reply.status,
        200,
        "writing {key:?} failed: {}",
        reply.text()
    );
}

/// Every card on the proxy's page as `{name, keys, fresh}`: its node's name, the keys
/// its table shows, and those highlighted as new (`tr.new`). A function body for
/// [`Browser::js`], read in one go so `keys` and `fresh` come from the same redraw.
pub const CARDS: &str = "return [...document.querySelectorAll('#cards .card')].map((c) => ({
  name: c.querySelector('h2').innerText,
  keys: [...c.querySelectorAll('.keys tr')].map((r) => r.cells[0].innerText),
  fresh: [...c.querySelectorAll('.keys tr.new')].map((r) => r.cells[0].innerText),
}));";

/// The keys all cards show, sorted (a function body, like [`CARDS`]).
pub const SHOWN_KEYS: &str =
    "return [...document.querySelectorAll('#cards .keys tr')].map((r) => r.cells[0].innerText).sort();";

/// The rows of "Last requests", each as its cells' text (a function body).
pub const RECENT_ROWS: &str =
    "return [...document.querySelectorAll('#recent tr')].map((r) => [...r.cells].map((c) => c.innerText));";

/// The names of the cards in [`CARDS`]' answer whose table shows `key`.
pub fn holders(cards: &Value, key: &str) -> Vec<String> {
    let cards = cards.as_array().expect("a list of cards");
    cards
        .iter()
        .filter(|c| {
            c["keys"]
                .as_array()
                .is_some_and(|k| k.contains(&json!(key)))
        })
        .map(|c| c["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Waits until the proxy's page has updated itself from /state.json at least once.
pub async fn wait_until_live(browser: &Browser) {
    let live = "return document.getElementById('live').innerText.startsWith('live · updated')";
    browser.wait_for("the page to go live", LIVE, live).await;
}

/// Waits for the proxy's page's next update: its `#live` line names the second of each
/// update, so it changes with every one, once all the update drew has been drawn.
pub async fn next_update(browser: &Browser) {
    let before = json!(browser.text("#live").await);
    let changed = format!("return document.getElementById('live').innerText !== {before}");
    browser
        .wait_for("the page's next update", LIVE, &changed)
        .await;
}

/// Marks the document, so [`assert_same_document`] can tell it was never reloaded.
pub async fn mark_document(browser: &Browser) {
    browser.js("window.__kvMark = 'the same document'").await;
}

pub async fn assert_same_document(browser: &Browser) {
    let mark = browser.js("return window.__kvMark || null").await;
    assert_eq!(
        mark,
        json!("the same document"),
        "the page was reloaded or left"
    );
}

/// Whether some table cell on the page shows exactly `text`.
pub async fn cell_shows(browser: &Browser, text: &str) -> bool {
    let script = format!(
        "return [...document.querySelectorAll('td')].some((td) => td.innerText === {})",
        json!(text)
    );
    browser.js(&script).await == json!(true)
}

/// Checks that nothing on `page` ran as code or was read as markup: no title was ever
/// set to PWNED (every assignment, not just the last, the page resets its title each
/// second), no element `#pwned` was ever added, and none is there now.
pub async fn assert_nothing_ran(browser: &Browser, page: &str) {
    let (titles, pwned) = browser.watched().await;
    let bad: Vec<&String> = titles.iter().filter(|t| t.contains("PWNED")).collect();
    assert!(bad.is_empty(), "{page}: a script set the title: {bad:?}");
    assert!(
        pwned.is_empty(),
        "{page}: an element #pwned was added: {pwned:?}"
    );
    let title = browser.client.title().await.expect("the title");
    assert!(!title.contains("PWNED"), "{page}: the title is {title:?}");
    let found = browser
        .js("return document.getElementById('pwned') !== null")
        .await;
    assert_eq!(found, json!(false), "{page}: an element #pwned exists");
}
