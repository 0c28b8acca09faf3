//! Two pools side by side on a projector, in a real browser at 1280×720 and 1920×1080:
//! one column per pool, each showing its own live page (its mode, its cards), both in
//! view at once, nothing cut off to the side, and a root write showing up in both.

mod browser_support;
#[path = "../../storage/tests/common/mod.rs"]
mod common;
mod support;

use std::sync::Arc;

use browser_support::page::{put, LIVE};
use browser_support::Browser;
use common::start_server;
use proxy::config::Config;
use proxy::pools::Pools;
use support::{start_nodes, url};

async fn side_by_side(width: u32, height: u32) {
    let Some(browser) = Browser::open(width, height).await else {
        return;
    };
    let (s, r) = (start_nodes(3).await, start_nodes(3).await);
    let mut text = String::from("pools:\n");
    for (name, mode, nodes, mirror) in [
        ("sharded", "sharding", &s, ""),
        ("replicated", "replication", &r, "    mirror: true\n"),
    ] {
        text.push_str(&format!(
            "  - name: {name}\n    mode: {mode}\n{mirror}    nodes:\n"
        ));
        for (i, n) in nodes.iter().enumerate() {
            text.push_str(&format!(
                "      - name: {}{}\n        url: {}\n",
                &name[..1],
                i + 1,
                url(n.addr)
            ));
        }
    }
    let pools = Arc::new(Pools::new(Config::parse(&text).unwrap()));
    let proxy = start_server(move |l, stop| proxy::serve_pools(l, pools, stop)).await;
    put(proxy.addr, "side-by-side", "1").await;
    browser.goto(&format!("http://{}/state", proxy.addr)).await;

    let columns = browser
        .js(
            "return [...document.querySelectorAll('.pool')].map(p => { const r = p.getBoundingClientRect(); \
             return [p.dataset.pool, r.left, r.right, r.top, r.bottom]; })",
        )
        .await;
    let columns = columns.as_array().expect("columns").clone();
    assert_eq!(columns.len(), 2, "{columns:?}");
    let f = |c: &serde_json::Value, i: usize| c[i].as_f64().unwrap();
    assert_eq!(columns[0][0], "sharded");
    assert!(
        f(&columns[0], 2) <= f(&columns[1], 1),
        "side by side: {columns:?}"
    );
    assert!(
        f(&columns[1], 2) <= width as f64,
        "nothing off to the right: {columns:?}"
    );
    for c in &columns {
        let w = f(c, 2) - f(c, 1);
        assert!(
            w > width as f64 * 0.4,
            "each column about half the width: {columns:?}"
        );
        assert!(
            f(c, 4) <= height as f64 + 1.0,
            "within the screen: {columns:?}"
        );
    }
    let overflow = browser
        .js("return document.documentElement.scrollWidth <= window.innerWidth")
        .await;
    assert_eq!(overflow, true, "no horizontal scroll at {width}×{height}");
    // Each column is its pool's own live page, showing its mode and the mirrored key.
    for (i, mode, holders) in [(0u16, "SHARDING", 1), (1, "REPLICATION", 3)] {
        let shown = browser
            .wait_for(
                "the pool's page to show its mode and the key",
                LIVE,
                &format!(
                    "const d = document.querySelectorAll('iframe')[{i}].contentDocument; \
                     if (!d || !d.getElementById('mode')) return null; \
                     const cards = [...d.querySelectorAll('.card')].filter(c => c.innerText.includes('side-by-side')); \
                     return d.getElementById('mode').innerText.toUpperCase() === '{mode}' && cards.length === {holders} ? 'yes' : null"
                ),
            )
            .await;
        assert_eq!(shown, "yes");
    }
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pools_side_by_side_at_1280x720() {
    side_by_side(1280, 720).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pools_side_by_side_at_1920x1080() {
    side_by_side(1920, 1080).await;
}
