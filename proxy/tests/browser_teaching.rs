//! What the proxy's /state page teaches, checked in a real browser (headless Chromium
//! over WebDriver): the way each request went ("kv0 ✗ refused → kv1 200", each node in
//! its card's colour), failures that look like failures, a refused config edit that
//! reaches the projector, the explain box's steps with the whole number one click away
//! and the chosen card lit, text readable against its background (WCAG AA, computed
//! from the page's own styles), and live regions updated in place for screen readers.
//!
//! The page updating itself is in `browser_live.rs`, what must never go wrong on it in
//! `browser_safety.rs`. Without Chromium these tests print a banner and pass;
//! `KV_REQUIRE_BROWSER=1` makes that a failure (see `browser_support`).

mod browser_support;
#[path = "../../storage/tests/common/mod.rs"]
mod common;
mod support;

use std::sync::Arc;

use browser_support::page::{self, put, state_url, LIVE};
use browser_support::Browser;
use common::{get, post};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::{dead_addr, named, start_nodes, start_proxy, url, yaml, TempFile};

/// `int(hashlib.sha256(key.encode()).hexdigest(), 16) % n`, byte by byte.
fn python_mod(key: &str, n: usize) -> usize {
    Sha256::digest(key.as_bytes())
        .iter()
        .fold(0, |rest, &b| (rest * 256 + b as usize) % n)
}

/// `int(hashlib.sha256(key.encode()).hexdigest(), 16)` in decimal, as Python prints it:
/// the digits are kept least significant first and multiplied by 256 for every byte, a
/// different route from the proxy's own long division.
fn python_int(key: &str) -> String {
    let mut digits: Vec<u32> = vec![0];
    for &byte in Sha256::digest(key.as_bytes()).iter() {
        let mut carry = byte as u32;
        for d in digits.iter_mut() {
            let v = *d * 256 + carry;
            *d = v % 10;
            carry = v / 10;
        }
        while carry > 0 {
            digits.push(carry % 10);
            carry /= 10;
        }
    }
    while digits.len() > 1 && digits.last() == Some(&0) {
        digits.pop();
    }
    digits
        .iter()
        .rev()
        .map(|d| char::from_digit(*d, 10).expect("a digit"))
        .collect()
}

/// The first of `key-0`, `key-1`, … that `python_mod(key, n)` places on node `index`.
fn key_on(index: usize, n: usize, but_not: &[&str]) -> String {
    (0..)
        .map(|i| format!("key-{i}"))
        .find(|k| python_mod(k, n) == index && !but_not.contains(&k.as_str()))
        .expect("some key lands there")
}

/// Waits until "Last requests" has a row whose cells' text satisfies `test` (a JS
/// expression over `cells`, a list of strings) and returns every row's cells.
async fn wait_for_row(browser: &Browser, what: &str, test: &str) -> Value {
    let body = format!(
        "const rows = (() => {{ {rows} }})().slice(1);
         return rows.some((cells) => {test}) ? rows : null",
        rows = page::RECENT_ROWS,
    );
    browser.wait_for(what, LIVE, &body).await
}

/// Replication over an address where nothing listens and two nodes: a read goes past
/// the refused node to the next, and "Last requests" shows the way as
/// `kv0 ✗ refused → kv1 200`, each node's name in the colour of its card's top border.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_way_a_read_went_is_shown_in_node_colours() {
    let Some(browser) = Browser::open(1280, 900).await else {
        return;
    };
    let nodes = start_nodes(2).await;
    let mut list = vec![("kv0", url(dead_addr().await))];
    list.extend(named(&nodes));
    let (proxy, _) = start_proxy(&yaml("replication", &list, "")).await;
    browser.goto(&state_url(proxy.addr)).await;

    put(proxy.addr, "way-probe", "1").await;
    let read = get(proxy.addr, "/get?key=way-probe").await;
    assert_eq!(read.status, 200, "the read failed: {}", read.text());
    let want = "kv0 ✗ refused → kv1 200";
    wait_for_row(
        &browser,
        "the read's way",
        "cells[0] === 'GET' && cells[2].includes('✗ refused') && cells[2].includes('→') && cells[2].trim().endsWith('kv1 200')",
    )
    .await;
    let colours = browser
        .js("const border = {};
             for (const c of document.querySelectorAll('#cards .card')) {
               border[c.querySelector('h2').innerText] = getComputedStyle(c).borderTopColor;
             }
             const row = [...document.querySelectorAll('#recent tr')].slice(1)
               .find((r) => r.cells[0].innerText === 'GET' && r.cells[2].innerText.includes('✗ refused'));
             return {
               way: row.cells[2].innerText.trim(),
               names: [...row.cells[2].querySelectorAll('span')]
                 .filter((s) => s.innerText in border)
                 .map((s) => ({ name: s.innerText, color: getComputedStyle(s).color, card: border[s.innerText] })),
             };")
        .await;
    assert_eq!(colours["way"], json!(want), "{colours}");
    let names = colours["names"].as_array().expect("the names");
    let shown: Vec<&str> = names.iter().filter_map(|n| n["name"].as_str()).collect();
    assert_eq!(
        shown,
        ["kv0", "kv1"],
        "each node on the way is a name of its own: {colours}"
    );
    for n in names {
        assert_eq!(
            n["color"], n["card"],
            "{} is not in its card's colour: {colours}",
            n["name"]
        );
    }
    assert_ne!(
        names[0]["color"], names[1]["color"],
        "two nodes in one colour: {colours}"
    );
    browser.close().await;
}

/// Sharding with one of two nodes stopped: a read of a key on it is a 502 row whose
/// status cell is `status-fail` (a filled background, unlike a 200's), a missing key
/// on the live node a 404 row (`status-miss`); the warning says the node is DOWN and its
/// keys cannot be read or written, and its card says DOWN with no latency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_look_different_from_successes() {
    let Some(browser) = Browser::open(1280, 900).await else {
        return;
    };
    let mut nodes = start_nodes(2).await;
    let list = named(&nodes);
    nodes
        .pop()
        .expect("kv2")
        .shutdown()
        .await
        .expect("kv2 stops");
    let (proxy, _) = start_proxy(&yaml("sharding", &list, "")).await;
    browser.goto(&state_url(proxy.addr)).await;

    let (live_key, dead_key) = (key_on(0, 2, &[]), key_on(1, 2, &[]));
    let missing = key_on(0, 2, &[&live_key]);
    put(proxy.addr, &live_key, "1").await;
    for (key, status) in [(&live_key, 200), (&dead_key, 502), (&missing, 404)] {
        let reply = get(proxy.addr, &format!("/get?key={key}")).await;
        assert_eq!(reply.status, status, "GET {key}: {}", reply.text());
    }
    wait_for_row(&browser, "the 404 row", "cells[3] === '404'").await;
    wait_for_row(&browser, "the 502 row", "cells[3] === '502'").await;
    let statuses = browser
        .js("const out = {};
             for (const r of [...document.querySelectorAll('#recent tr')].slice(1)) {
               const td = r.cells[3];
               out[td.innerText] = { cls: td.className, background: getComputedStyle(td).backgroundColor };
             }
             return out;")
        .await;
    assert_eq!(statuses["502"]["cls"], json!("status-fail"), "{statuses}");
    assert_eq!(statuses["404"]["cls"], json!("status-miss"), "{statuses}");
    assert_eq!(statuses["200"]["cls"], json!("status-ok"), "{statuses}");
    assert_ne!(
        statuses["502"]["background"], statuses["200"]["background"],
        "a failure's status looks like a success's: {statuses}"
    );

    let warning = browser
        .wait_for(
            "the DOWN warning",
            LIVE,
            "const w = document.getElementById('down-warning');
             return w.checkVisibility() && w.innerText.includes('DOWN') ? w.innerText : null",
        )
        .await;
    let warning = warning.as_str().unwrap_or_default();
    assert!(
        warning.contains("kv2") && warning.contains("cannot be read or written"),
        "the warning does not say what DOWN means: {warning}"
    );
    let card = browser
        .js("const c = [...document.querySelectorAll('#cards .card')]
               .find((c) => c.querySelector('h2').innerText === 'kv2');
             return c.innerText")
        .await;
    let card = card.as_str().unwrap_or_default();
    assert!(
        card.contains("DOWN"),
        "kv2's card does not say DOWN: {card}"
    );
    assert!(
        !card.contains(" ms"),
        "kv2's card shows a latency though it is down: {card}"
    );
    browser.close().await;
}

/// An edit of the watched config file that is refused (a misspelt mode) is listed on
/// the open page, naming the typo and saying the running config stays; the next valid
/// edit (only a timeout changed) is listed as a reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_edit_reaches_the_page() {
    let Some(browser) = Browser::open(1280, 900).await else {
        return;
    };
    let nodes = start_nodes(2).await;
    let file = TempFile::new("teaching.yml", &yaml("sharding", &named(&nodes), ""));
    let text = std::fs::read_to_string(&file.path).expect("read the config");
    let (proxy, running) = start_proxy(&text).await;
    proxy::reload::watch(Arc::clone(&running), file.path.clone(), text);
    browser.goto(&state_url(proxy.addr)).await;
    page::wait_until_live(&browser).await;

    file.replace(&yaml("shardnig", &named(&nodes), ""));
    let rejected = browser
        .wait_for(
            "the refused edit",
            LIVE + LIVE,
            "const li = [...document.querySelectorAll('#events li.rejected')]
               .find((li) => li.innerText.includes('shardnig'));
             return li ? li.innerText : null",
        )
        .await;
    let rejected = rejected.as_str().unwrap_or_default();
    assert!(
        rejected.contains("running config stays"),
        "the refusal does not say the running config stays: {rejected}"
    );
    assert_eq!(
        browser.text("#mode").await.to_lowercase(),
        "sharding",
        "the page shows another mode after a refused edit"
    );

    file.replace(&yaml("sharding", &named(&nodes), "timeout_ms: 700\n"));
    browser
        .wait_for(
            "the reload",
            LIVE + LIVE,
            "return document.querySelector('#events li.reload')?.innerText || null",
        )
        .await;
    assert_eq!(browser.text("#timeout").await, "700");
    browser.close().await;
}

/// Sharding over 3 nodes: explaining `key-7` lists one step per line; the step with the
/// digest as a number shows it shortened ("… (78 digits)") and opens to the whole
/// number, which is Python's `int(hashlib.sha256(b"key-7").hexdigest(), 16)`; exactly
/// the card of the node `… % 3` names is lit, and stays lit through the page's updates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_steps_open_to_the_whole_number_and_light_the_node() {
    let Some(browser) = Browser::open(1280, 900).await else {
        return;
    };
    let nodes = start_nodes(3).await;
    let (proxy, _) = start_proxy(&yaml("sharding", &named(&nodes), "")).await;
    browser.goto(&state_url(proxy.addr)).await;
    page::wait_until_live(&browser).await;

    browser.type_into("#explain-key", "key-7").await;
    browser.click("#explain-form button").await;
    let steps = browser
        .wait_for(
            "the steps",
            LIVE,
            "const items = document.querySelectorAll('#explain-out ol > li');
             return items.length ? [...items].map((li) => li.innerText) : null",
        )
        .await;
    let steps = steps.as_array().expect("the steps");
    assert!(steps.len() >= 5, "too few steps: {steps:?}");

    let number = browser
        .js("const d = document.querySelector('#explain-out details');
             if (!d) return null;
             const full = d.querySelector(':scope > span');
             const closed = { summary: d.querySelector('summary').innerText, shown: full.checkVisibility() };
             d.open = true;
             return { ...closed, open: full.checkVisibility(), full: full.innerText, inside: d.closest('#explain-out ol > li') !== null };")
        .await;
    let want = python_int("key-7");
    assert!(
        (70..=78).contains(&want.len()),
        "the test's own number: {want}"
    );
    let summary = number["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains(&format!("({} digits)", want.len()))
            && summary.starts_with(&want[..6])
            && summary.contains(&want[want.len() - 6..]),
        "the shortened number is not {want}'s: {number}"
    );
    assert_eq!(
        number["inside"],
        json!(true),
        "not one of the steps: {number}"
    );
    assert_eq!(
        number["shown"],
        json!(false),
        "the whole number shows before it is opened: {number}"
    );
    assert_eq!(
        number["open"],
        json!(true),
        "opening does not show the whole number: {number}"
    );
    assert_eq!(
        number["full"],
        json!(want),
        "the whole number is not Python's"
    );

    let node = format!("kv{}", python_mod("key-7", 3) + 1);
    let lit = "return [...document.querySelectorAll('#cards .card.lit')].map((c) => c.querySelector('h2').innerText)";
    assert_eq!(
        browser.js(lit).await,
        json!([node]),
        "the wrong cards are lit"
    );
    page::next_update(&browser).await;
    assert_eq!(
        browser.js(lit).await,
        json!([node]),
        "an update put the light out"
    );
    browser.close().await;
}

/// Replication over 3 nodes: explaining a key says it lives on every node, and all
/// three cards are lit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_in_replication_lights_every_node() {
    let Some(browser) = Browser::open(1280, 900).await else {
        return;
    };
    let nodes = start_nodes(3).await;
    let (proxy, _) = start_proxy(&yaml("replication", &named(&nodes), "")).await;
    browser.goto(&state_url(proxy.addr)).await;
    page::wait_until_live(&browser).await;

    browser.type_into("#explain-key", "key-7").await;
    browser.click("#explain-form button").await;
    let steps = browser
        .wait_for(
            "the steps",
            LIVE,
            "const items = document.querySelectorAll('#explain-out ol > li');
             return items.length ? [...items].map((li) => li.innerText) : null",
        )
        .await;
    let steps: Vec<&str> = steps
        .as_array()
        .expect("the steps")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        steps.iter().any(|s| s.contains("every node")),
        "no step says every node: {steps:?}"
    );
    let lit = browser
        .js("return [...document.querySelectorAll('#cards .card.lit')].map((c) => c.querySelector('h2').innerText)")
        .await;
    assert_eq!(lit, json!(["kv1", "kv2", "kv3"]), "not every card is lit");
    browser.close().await;
}

/// Every piece of text on the page, as it looks with three nodes up, one down (its
/// hatched block on the bar, its DOWN badge), a feed of 200, 404 and 502 rows and an
/// explanation, stands out from what is behind it by at least 4.5:1 (WCAG AA), computed
/// from the page's own styles at 1280×720.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_text_has_enough_contrast() {
    let Some(browser) = Browser::open(1280, 720).await else {
        return;
    };
    let nodes = start_nodes(3).await;
    let mut list = named(&nodes);
    list.push(("kv4", url(dead_addr().await)));
    let (proxy, _) = start_proxy(&yaml("sharding", &list, "")).await;
    for i in 0..8 {
        // Keys on kv4 fail: a 502 row.
        post(
            proxy.addr,
            &format!("/put?key=key-{i}"),
            format!(r#"{{"value": {i}}}"#),
        )
        .await;
    }
    let missing = (0..)
        .map(|i| format!("missing-{i}"))
        .find(|k| python_mod(k, 4) != 3)
        .expect("a key on a live node");
    assert_eq!(
        get(proxy.addr, &format!("/get?key={missing}")).await.status,
        404
    );
    browser.goto(&state_url(proxy.addr)).await;
    page::wait_until_live(&browser).await;
    browser.type_into("#explain-key", "key-7").await;
    browser.click("#explain-form button").await;
    browser
        .wait_for(
            "the explanation and the DOWN block",
            LIVE,
            "return document.querySelector('#explain-out li')
                 && document.querySelector('#bar .gone')
                 && document.querySelector('.badge.down')",
        )
        .await;

    let report = browser.js(CONTRAST).await;
    let classes: Vec<&str> = report["classes"]
        .as_array()
        .expect("the classes checked")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for class in [
        "gone",
        "badge down",
        "badge up",
        "status-fail",
        "status-miss",
        "status-ok",
        "err",
        "what",
    ] {
        assert!(
            classes.contains(&class),
            "no text of class {class:?} was checked: {report}"
        );
    }
    assert!(
        report["named"].as_u64() > Some(0),
        "no node name in the feed was checked: {report}"
    );
    let failing = report["failing"].as_array().expect("the failing texts");
    assert!(
        failing.is_empty(),
        "{} texts are below 4.5:1 (text, colour, background, ratio):\n{}",
        failing.len(),
        serde_json::to_string_pretty(failing).unwrap_or_default()
    );
    browser.close().await;
}

/// A function body for [`Browser::js`]: every visible element with text of its own, its
/// colour against the colour behind it (the first background that is not transparent,
/// with translucent ones blended in; every colour of a gradient, the worst counting) and
/// the WCAG contrast ratio. Answers `{checked, classes, named, failing}`.
const CONTRAST: &str = r##"
const parse = (c) => {
  const p = c.match(/rgba?\(([^)]*)\)/)[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
  return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
};
const over = (top, under) => [0, 1, 2].map((i) => top[i] * top[3] + under[i] * (1 - top[3])).concat([1]);
const lum = (c) => {
  const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
};
const ratio = (a, b) => {
  const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
};
// The opaque colours that can be behind `el`: one, or one per colour of a gradient.
const behind = (el) => {
  const layers = [];
  let bases = [[255, 255, 255, 1]];
  for (let e = el; e; e = e.parentElement) {
    const s = getComputedStyle(e);
    const stops = (s.backgroundImage.match(/rgba?\([^)]*\)/g) || []).map(parse);
    if (stops.length) { bases = stops.map((c) => over(c, [255, 255, 255, 1])); break; }
    const bg = parse(s.backgroundColor);
    if (bg[3] >= 1) { bases = [bg]; break; }
    if (bg[3] > 0) layers.push(bg);
  }
  return bases.map((b) => layers.reduceRight((under, top) => over(top, under), b));
};
const hex = (c) => "#" + c.slice(0, 3).map((v) => Math.round(v).toString(16).padStart(2, "0")).join("");
const failing = [], classes = new Set();
let checked = 0, named = 0;
for (const el of document.body.querySelectorAll("*")) {
  if (["SCRIPT", "STYLE", "IFRAME"].includes(el.tagName)) continue;
  const own = [...el.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent).join("").trim();
  if (!own || !el.checkVisibility({ opacityProperty: true, visibilityProperty: true })) continue;
  if (el.getClientRects().length === 0) continue;
  checked++;
  if (el.className) classes.add(String(el.className));
  if (el.closest("#recent") && el.style.color) named++;
  for (const bg of behind(el)) {
    const fg = over(parse(getComputedStyle(el).color), bg);
    const r = ratio(fg, bg);
    if (r < 4.5) {
      failing.push({ text: own.slice(0, 60), tag: el.tagName, class: String(el.className), color: hex(fg), background: hex(bg), ratio: Math.round(r * 100) / 100 });
    }
  }
}
return { checked, classes: [...classes], named, failing };
"##;

/// The parts of the page that change while a class watches are live regions, so a
/// screen reader announces them; "Last requests" is updated row by row in place: after
/// a new request the row that was first is the same element, and a cell whose text did
/// not change (the method, GET again) keeps its very text node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_regions_are_updated_in_place() {
    let Some(browser) = Browser::open(1280, 900).await else {
        return;
    };
    let nodes = start_nodes(2).await;
    let (proxy, _) = start_proxy(&yaml("sharding", &named(&nodes), "")).await;
    put(proxy.addr, "in-place", "1").await;
    get(proxy.addr, "/get?key=in-place").await;
    browser.goto(&state_url(proxy.addr)).await;
    page::wait_until_live(&browser).await;

    let live = browser
        .js(
            "return ['recent', 'events', 'notice', 'divergent-section', 'explain-out']
               .map((id) => [id, document.getElementById(id)?.getAttribute('aria-live') ?? null]);",
        )
        .await;
    for pair in live.as_array().expect("the regions") {
        let value = pair[1].as_str();
        assert!(
            matches!(value, Some("polite" | "assertive")),
            "#{} is not a live region (aria-live={value:?})",
            pair[0]
        );
    }

    let before = browser
        .js("const table = document.getElementById('recent');
             const row = table.rows[1];
             row.__kvTag = 'first row';
             row.cells[0].firstChild.__kvTag = 'its method';
             return { rows: table.rows.length, first: [...row.cells].map((c) => c.innerText) };")
        .await;
    assert_eq!(before["first"][0], json!("GET"), "{before}");
    get(proxy.addr, "/get?key=in-place").await;
    let rows = before["rows"].as_u64().expect("a row count");
    let after = browser
        .wait_for(
            "the new request's row",
            LIVE,
            &format!(
                "const table = document.getElementById('recent');
                 if (table.rows.length <= {rows}) return null;
                 return {{
                   row: [...table.rows].some((r) => r.__kvTag === 'first row'),
                   first: table.rows[1].__kvTag === 'first row',
                   method: table.rows[1].cells[0].firstChild.__kvTag === 'its method',
                 }};"
            ),
        )
        .await;
    assert_eq!(
        after,
        json!({"row": true, "first": true, "method": true}),
        "the table was rebuilt rather than updated in place"
    );
    browser.close().await;
}
