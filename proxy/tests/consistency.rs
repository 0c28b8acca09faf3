//! The consistency lab on real node processes: quorums that survive one node killed and
//! refuse with two, a stale copy after a restart and read repair healing it, hints that
//! reach a node when it returns, anti-entropy healing with no reads at all, and deletes
//! that none of them bring back.

#[path = "../../storage/tests/common/mod.rs"]
mod common;
mod students_support;
mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{get, post, request};
use students_support::{free_port, spawn_storage, Proc};
use support::{start_proxy, value_on, yaml};

/// A storage process on a port of its own, restartable there (with its data file).
struct Disk {
    name: String,
    port: u16,
    data: Option<PathBuf>,
    proc: Option<Proc>,
}

impl Disk {
    fn start(name: &str, data: bool) -> Disk {
        let data = data.then(|| {
            std::env::temp_dir().join(format!(
                "kv-consistency-{name}-{}-{}.data",
                std::process::id(),
                free_port()
            ))
        });
        let mut d = Disk {
            name: name.into(),
            port: free_port(),
            data,
            proc: None,
        };
        d.restart();
        d
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// SIGKILL: a crash, a laptop lid.
    fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    /// Starts it again on its port, with its data file if it has one; waits until it answers.
    fn restart(&mut self) {
        let port = self.port.to_string();
        let mut args = vec!["-p", port.as_str()];
        let data = self.data.as_ref().map(|d| d.display().to_string());
        if let Some(d) = &data {
            args.extend(["--data", d.as_str()]);
        }
        self.proc = Some(spawn_storage(&self.name, &args));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(self.addr()).is_err() {
            assert!(Instant::now() < deadline, "{} did not start", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    async fn health(&self) -> serde_json::Value {
        get(self.addr(), "/health").await.expect_json(200)
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        self.kill();
        if let Some(d) = &self.data {
            let _ = std::fs::remove_file(d);
        }
    }
}

fn cluster(mode: &str, disks: &[Disk], extra: &str) -> String {
    let list: Vec<(&str, String)> = disks.iter().map(|d| (d.name.as_str(), d.url())).collect();
    yaml(mode, &list, &format!("timeout_ms: 1000\n{extra}"))
}

async fn put(proxy: SocketAddr, key: &str, value: &str) -> common::Reply {
    post(
        proxy,
        &format!("/put?key={key}"),
        format!(r#"{{"value": "{value}"}}"#),
    )
    .await
}

async fn wait_until<F, Fut>(within: Duration, mut done: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if done().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// W=2, R=2 of 3: one node killed, writes still answer 200 and reads the newest; two
/// killed, a write is refused with 503 naming each node's outcome and what it left.
#[tokio::test]
async fn w2_r2_survives_one_node_down_and_refuses_with_two() {
    let mut d = vec![
        Disk::start("q1", false),
        Disk::start("q2", false),
        Disk::start("q3", false),
    ];
    let conf = cluster("replication", &d, "write_quorum: 2\nread_quorum: 2\n");
    let (proxy, _) = start_proxy(&conf).await;
    put(proxy.addr, "a", "one").await.expect_json(200);
    d[2].kill();
    let stored = put(proxy.addr, "a", "two").await;
    assert_eq!(stored.header("x-kv-quorum"), Some("2/3"));
    let body = stored.expect_json(200);
    assert_eq!(
        (body["acked"].as_u64(), body["needed"].as_u64()),
        (Some(2), Some(2))
    );
    let read = get(proxy.addr, "/get?key=a").await;
    assert_eq!(read.header("x-kv-quorum"), Some("2/3"));
    assert_eq!(read.expect_json(200)["value"], "two");
    d[1].kill();
    let refused = put(proxy.addr, "a", "three").await;
    let e = refused.expect_error(503);
    assert_eq!(
        (e["acked"].as_u64(), e["needed"].as_u64()),
        (Some(1), Some(2))
    );
    let text = e["error"].as_str().unwrap();
    assert!(text.contains("q1 took it"), "what it left is said: {text}");
    let named: Vec<&str> = e["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node"].as_str().unwrap())
        .collect();
    for n in ["q1", "q2", "q3"] {
        assert!(named.contains(&n), "{n} is named: {e}");
    }
    // R=2 with one node left cannot know the newest value.
    get(proxy.addr, "/get?key=a").await.expect_error(503);
}

/// W=R=1: a node restarted from its data file answers its old value (stale); a read
/// with read repair returns the newest and writes it back to that node.
#[tokio::test]
async fn a_stale_copy_is_read_at_r1_and_healed_by_read_repair() {
    let mut d = vec![
        Disk::start("r1", true),
        Disk::start("r2", false),
        Disk::start("r3", false),
    ];
    let conf = cluster("replication", &d, "write_quorum: 1\nread_quorum: 1\n");
    let (proxy, _) = start_proxy(&conf).await;
    put(proxy.addr, "k", "old").await.expect_json(200);
    assert!(
        wait_until(Duration::from_secs(3), || async {
            value_on(d[0].addr(), "k").await == Some("old".into())
        })
        .await
    );
    d[0].kill();
    put(proxy.addr, "k", "new").await.expect_json(200);
    d[0].restart();
    // R=1 asks the first copy in order, which is r1, and it is stale.
    let stale = get(proxy.addr, "/get?key=k").await.expect_json(200);
    assert_eq!(stale["value"], "old", "W=R=1 reads the stale copy: {stale}");
    let repairing = cluster("replication", &d, "read_quorum: all\nread_repair: true\n");
    let (proxy2, p2) = start_proxy(&repairing).await;
    let read = get(proxy2.addr, "/get?key=k").await;
    assert_eq!(read.header("x-kv-repaired"), Some("r1"));
    let body = read.expect_json(200);
    assert_eq!(body["value"], "new");
    assert_eq!(body["repaired"], serde_json::json!(["r1"]));
    assert_eq!(value_on(d[0].addr(), "k").await, Some("new".into()));
    let feed = p2.recent.list();
    assert!(
        feed[0].note.contains("repaired r1"),
        "the feed says so: {:?}",
        feed[0].note
    );
}

/// Hinted handoff (R=2 on the ring, W=2): with one node down every write is taken, the
/// missing copies kept as hints on the next node; within 10 s of the node's return they
/// are on it, and the hints are gone.
#[tokio::test]
async fn hints_reach_a_node_within_ten_seconds_of_its_return() {
    let mut d = vec![
        Disk::start("s1", false),
        Disk::start("s2", false),
        Disk::start("s3", false),
    ];
    let conf = cluster(
        "consistent-hashing",
        &d,
        "replicas: 2\nwrite_quorum: 2\nhinted_handoff: true\n",
    );
    let (proxy, _) = start_proxy(&conf).await;
    d[2].kill();
    for i in 0..40 {
        let r = put(proxy.addr, &format!("h{i}"), &i.to_string()).await;
        assert_eq!(r.status, 200, "write {i} with s3 down: {}", r.text());
    }
    let held_hints: u64 = {
        let mut n = 0;
        for disk in &d[..2] {
            n += disk.health().await["hints"].as_u64().unwrap();
        }
        n
    };
    assert!(held_hints > 0, "some writes were hints for s3");
    d[2].restart();
    let started = Instant::now();
    let delivered = wait_until(Duration::from_secs(10), || async {
        let mut keys = 0;
        let mut hints = 0;
        for disk in &d {
            let h = get(disk.addr(), "/health").await.json();
            keys += h["keys"].as_u64().unwrap_or(0);
            hints += h["hints"].as_u64().unwrap_or(0);
        }
        keys == 80 && hints == 0
    })
    .await;
    assert!(
        delivered,
        "every copy in place within 10 s ({:?})",
        started.elapsed()
    );
    assert_eq!(d[2].health().await["keys"].as_u64(), Some(held_hints));
}

/// Anti-entropy heals a node restarted empty without a single read, and a delete made
/// while it was down reaches it too (its data file still held the key).
#[tokio::test]
async fn anti_entropy_heals_with_no_reads_and_keeps_deletes() {
    let mut d = vec![
        Disk::start("a1", false),
        Disk::start("a2", false),
        Disk::start("a3", true),
    ];
    let conf = cluster(
        "replication",
        &d,
        "write_quorum: 2\nanti_entropy: true\nanti_entropy_ms: 300\n",
    );
    let (proxy, p) = start_proxy(&conf).await;
    put(proxy.addr, "gone", "soon").await.expect_json(200);
    assert!(
        wait_until(Duration::from_secs(3), || async {
            value_on(d[2].addr(), "gone").await.is_some()
        })
        .await
    );
    d[2].kill();
    request(proxy.addr, "DELETE", "/delete?key=gone", &[], b"")
        .await
        .expect_json(200);
    for i in 0..30 {
        put(proxy.addr, &format!("e{i}"), "x")
            .await
            .expect_json(200);
    }
    d[2].restart();
    assert!(
        value_on(d[2].addr(), "gone").await.is_some(),
        "its file kept the key"
    );
    let healed = wait_until(Duration::from_secs(10), || async {
        d[2].health().await["keys"].as_u64() == Some(30)
            && value_on(d[2].addr(), "gone").await.is_none()
    })
    .await;
    assert!(healed, "a3 healed: {}", d[2].health().await);
    let last = p.anti_entropy.last().expect("a pass ran");
    assert!(last.repaired > 0 || !last.examined.is_empty());
    get(proxy.addr, "/get?key=gone").await.expect_error(404);
}

/// Read repair and hinted handoff bring back no deleted key: a node that missed the
/// delete gets the tombstone, not the value back everywhere.
#[tokio::test]
async fn read_repair_and_hints_carry_deletes() {
    let mut d = vec![
        Disk::start("t1", false),
        Disk::start("t2", false),
        Disk::start("t3", true),
    ];
    let conf = cluster(
        "replication",
        &d,
        "write_quorum: 2\nread_quorum: all\nread_repair: true\n",
    );
    let (proxy, _) = start_proxy(&conf).await;
    put(proxy.addr, "x", "1").await.expect_json(200);
    d[2].kill();
    request(proxy.addr, "DELETE", "/delete?key=x", &[], b"")
        .await
        .expect_json(200);
    d[2].restart();
    assert!(
        value_on(d[2].addr(), "x").await.is_some(),
        "t3 missed the delete"
    );
    let read = get(proxy.addr, "/get?key=x").await;
    assert_eq!(read.header("x-kv-repaired"), Some("t3"));
    read.expect_error(404);
    assert_eq!(
        value_on(d[2].addr(), "x").await,
        None,
        "t3 got the tombstone"
    );
    get(proxy.addr, "/get?key=x").await.expect_error(404);

    // Hints: a delete for a node that is down waits on a spare and reaches it.
    let mut r = vec![
        Disk::start("u1", false),
        Disk::start("u2", false),
        Disk::start("u3", true),
    ];
    let conf = cluster(
        "rendezvous",
        &r,
        "replicas: 2\nwrite_quorum: 2\nhinted_handoff: true\n",
    );
    let (proxy, _) = start_proxy(&conf).await;
    let keys: Vec<String> = (0..20).map(|i| format!("del{i}")).collect();
    for k in &keys {
        put(proxy.addr, k, "v").await.expect_json(200);
    }
    let on_u3 = {
        let mut list = Vec::new();
        for k in &keys {
            if value_on(r[2].addr(), k).await.is_some() {
                list.push(k.clone());
            }
        }
        list
    };
    assert!(!on_u3.is_empty(), "u3 is a home of some keys");
    r[2].kill();
    for k in &on_u3 {
        request(proxy.addr, "DELETE", &format!("/delete?key={k}"), &[], b"")
            .await
            .expect_json(200);
    }
    r[2].restart();
    let gone = wait_until(Duration::from_secs(10), || async {
        for k in &on_u3 {
            if value_on(r[2].addr(), k).await.is_some() {
                return false;
            }
        }
        true
    })
    .await;
    assert!(gone, "the deletes reached u3 as hints");
    for k in &on_u3 {
        get(proxy.addr, &format!("/get?key={k}"))
            .await
            .expect_error(404);
    }
}

/// A spare that fails to keep a hint is replaced by the next spare of the key's list: the
/// write still meets W=2, and the hint waits on a node that answered.
#[tokio::test]
async fn a_failed_spare_passes_the_hint_on() {
    let ours = support::start_nodes(2).await;
    let (dead_home, dead_spare) = (support::dead_addr().await, support::dead_addr().await);
    let list = [
        ("kv1", support::url(ours[0].addr)),
        ("kv2", support::url(dead_home)),
        ("kv3", support::url(dead_spare)),
        ("kv4", support::url(ours[1].addr)),
    ];
    let conf = yaml(
        "rendezvous",
        &list,
        "timeout_ms: 1000\nreplicas: 2\nwrite_quorum: 2\nhinted_handoff: true\n",
    );
    let (proxy, p) = start_proxy(&conf).await;
    let cluster = p.live.get();
    // A key whose list is kv1 and kv2 (homes), then kv3 (dead), then kv4.
    let key = (0..5000)
        .map(|i| format!("k{i}"))
        .find(|k| {
            let order = cluster.placement.preference(k, 4);
            let mut homes = order[..2].to_vec();
            homes.sort();
            homes == [0, 1] && order[2] == 2
        })
        .expect("some key has that list");
    let stored = put(proxy.addr, &key, "v").await;
    assert_eq!(
        stored.header("x-kv-quorum"),
        Some("2/2"),
        "{}",
        stored.text()
    );
    stored.expect_json(200);
    let hints = get(ours[1].addr, "/hints").await.expect_json(200);
    assert_eq!(hints["hints"][0]["for"], "kv2", "{hints}");
    assert_eq!(hints["hints"][0]["key"], key.as_str());
}
