//! The consistency lab on the page, in a real browser: the quorums in words, each
//! request's trace (homes, who took it, quorum met), and the teacher's chaos buttons,
//! which appear once the admin token is typed (kept in the tab's sessionStorage, never
//! in the URL), cut a node off, show the fault on its card, and heal it.

mod browser_support;
#[path = "../../storage/tests/common/mod.rs"]
mod common;
mod support;

use std::time::Duration;

use browser_support::page::{self, put, state_url, LIVE};
use browser_support::Browser;
use common::get;
use support::{named, start_nodes, start_proxy, yaml};

const ADMIN: &str = "t3acher-in-the-tab";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_teacher_partitions_and_heals_from_the_page() {
    let Some(browser) = Browser::open(1280, 900).await else {
        return;
    };
    let nodes = start_nodes(3).await;
    let extra = format!("replicas: 2\nwrite_quorum: 2\nread_quorum: 1\nadmin_token: {ADMIN}\n");
    let (proxy, _) = start_proxy(&yaml("consistent-hashing", &named(&nodes), &extra)).await;
    browser.goto(&state_url(proxy.addr)).await;
    page::wait_until_live(&browser).await;

    let line = browser.text("#consistency").await;
    assert!(line.contains("W=2") && line.contains("R=1"), "{line}");
    put(proxy.addr, "traced", "1").await;
    browser
        .wait_for(
            "the write's trace in the feed",
            LIVE,
            "return [...document.querySelectorAll('#recent tr')].some(r => r.innerText.includes('traced') && r.innerText.includes('quorum met') && r.innerText.includes('homes'))",
        )
        .await;

    let buttons = "return document.querySelectorAll('button.chaos').length";
    assert_eq!(browser.js(buttons).await, 0, "no buttons before the token");
    browser.type_into("#teacher-token", ADMIN).await;
    browser.click("#teacher-form button[type=submit]").await;
    browser
        .wait_for(
            "a partition, slow and heal button per card",
            LIVE,
            &format!("{buttons} === 9"),
        )
        .await;
    browser
        .js("document.querySelector('button.chaos[data-node=\"kv2\"]').click()")
        .await;
    browser
        .wait_for(
            "kv2's card to show the partition",
            Duration::from_secs(5),
            "return [...document.querySelectorAll('.card')].some(c => c.querySelector('h2').innerText === 'kv2' && c.innerText.includes('partitioned'))",
        )
        .await;
    let faults = get(proxy.addr, "/chaos").await.expect_json(200);
    assert_eq!(faults["faults"][0]["node"], "kv2");
    let href = browser.js("return location.href").await;
    assert!(
        !href.as_str().unwrap().contains(ADMIN),
        "the token is not in the URL: {href}"
    );
    let kept = browser
        .js("return sessionStorage.getItem('kv-admin-token')")
        .await;
    assert_eq!(kept, ADMIN);

    browser.click("#heal-all").await;
    browser
        .wait_for(
            "the fault to go",
            Duration::from_secs(5),
            "return ![...document.querySelectorAll('.card')].some(c => c.innerText.includes('partitioned'))",
        )
        .await;
    let faults = get(proxy.addr, "/chaos").await.expect_json(200);
    assert_eq!(faults["faults"], serde_json::json!([]));
    browser.close().await;
}
