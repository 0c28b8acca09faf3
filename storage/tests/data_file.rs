//! `--data FILE`: a real `storage` process killed with SIGKILL comes back with its keys,
//! versions, tombstones and hints; a torn last record is cut off with one log line; the
//! log is compacted when it doubles; and a file that cannot be opened stops the start.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use common::{encode, get, request};
use serde_json::json;

/// Stops the child even when an assertion fails first.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A data file in a fresh temporary directory, removed with it by the test's end.
fn data_path(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kv-data-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("kv1.log")
}

/// Starts `storage --data path` on a free port; answers its address and the log lines
/// it printed before listening (the replay's).
fn start(path: &Path) -> (Running, SocketAddr, Vec<String>) {
    let mut node = Running(
        Command::new(env!("CARGO_BIN_EXE_storage"))
            .args(["-n", "kv1", "-p", "0", "--host", "127.0.0.1", "--data"])
            .arg(path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .env("NO_COLOR", "1")
            .spawn()
            .expect("start storage"),
    );
    let out = node.0.stdout.take().expect("stdout is piped");
    let mut before = Vec::new();
    for line in BufReader::new(out).lines() {
        let line = line.expect("a log line");
        if let Some(rest) = line.split("listening on http://").nth(1) {
            let addr = rest.split_whitespace().next().unwrap_or_default();
            return (node, addr.parse().expect("an address"), before);
        }
        before.push(line);
    }
    panic!("the node exited before listening: {before:?}");
}

fn kill(mut node: Running) {
    node.0.kill().expect("SIGKILL");
    node.0.wait().expect("reaped");
}

async fn put(addr: SocketAddr, key: &str, value: &str, version: Option<&str>) {
    let headers: Vec<(&str, &str)> = version.map(|v| ("X-Kv-Version", v)).into_iter().collect();
    let body = format!(r#"{{"value": {value}}}"#);
    let path = format!("/put?key={}", encode(key));
    request(addr, "PUT", &path, &headers, body.as_bytes())
        .await
        .expect_json(200);
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// 1000 keys, a versioned value, a tombstone and a hint survive `kill -9`; a torn record
/// appended after them is cut off with one warning and the keys are all still there.
#[tokio::test]
async fn a_killed_node_comes_back_with_its_data() {
    let path = data_path("kill");
    let (node, addr, _) = start(&path);
    for i in 0..1000 {
        put(addr, &format!("key{i}"), &i.to_string(), None).await;
    }
    let (v1, v2) = (format!("{}.0.p", now_ms()), format!("{}.1.p", now_ms()));
    put(addr, "key1", "\"versioned\"", Some(&v1)).await;
    request(
        addr,
        "DELETE",
        "/delete?key=key2",
        &[("X-Kv-Version", &v2)],
        b"",
    )
    .await
    .expect_json(200);
    request(addr, "PUT", "/put?key=h&hint=kv2", &[], br#"{"value": 7}"#)
        .await
        .expect_json(200);
    kill(node);

    let (node, addr, log) = start(&path);
    let health = get(addr, "/health").await.expect_json(200);
    assert_eq!(
        (&health["keys"], &health["tombstones"], &health["hints"]),
        (&json!(999), &json!(1), &json!(1))
    );
    let got = get(addr, "/get?key=key1").await;
    assert_eq!(got.expect_json(200)["value"], "versioned");
    assert_eq!(got.header("x-kv-version"), Some(v1.as_str()));
    let gone = get(addr, "/get?key=key2").await;
    assert_eq!(gone.expect_error(404)["deleted"], true);
    assert_eq!(gone.header("x-kv-version"), Some(v2.as_str()));
    assert!(!log.iter().any(|l| l.contains("WARN")), "{log:?}");
    kill(node);

    let size = std::fs::metadata(&path).unwrap().len();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    file.write_all(b"\x00\x07torn{\"ke").unwrap();
    drop(file);
    let (node, addr, log) = start(&path);
    let health = get(addr, "/health").await.expect_json(200);
    assert_eq!(
        (&health["keys"], &health["tombstones"]),
        (&json!(999), &json!(1))
    );
    let warnings: Vec<&String> = log.iter().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "one line for the torn record: {log:?}");
    assert!(warnings[0].contains("kv1.log"), "{warnings:?}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), size, "cut back");
    // Writes after the cut are read back at the next start.
    put(addr, "after", "1", None).await;
    kill(node);
    let (_node, addr, _) = start(&path);
    assert_eq!(get(addr, "/health").await.json()["keys"], 1000);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

/// Overwriting one key many times grows the log past 1 MiB; it is then compacted to
/// about one record per key, and what it held survives a restart.
#[tokio::test]
async fn the_log_is_compacted_when_it_doubles() {
    let path = data_path("compact");
    let (node, addr, _) = start(&path);
    put(addr, "small", "1", None).await;
    let big = format!("\"{}\"", "x".repeat(20_000));
    let (mut before, mut after) = (0, 0);
    for i in 0..80 {
        let version = format!("{}.{i}.p", 1_000_000 + i);
        put(addr, "big", &big, Some(&version)).await;
        let size = std::fs::metadata(&path).unwrap().len();
        if size < before && after == 0 {
            after = size;
        } else if after == 0 {
            before = size;
        }
    }
    // The append that passes 1 MiB is followed by a compaction, down to two records.
    assert!(before > 1_000_000, "the log grew to {before} bytes");
    assert!(
        after > 0 && after < 50_000,
        "compacted from {before} to {after} bytes"
    );
    kill(node);
    let (_node, addr, _) = start(&path);
    let got = get(addr, "/get?key=big").await;
    assert_eq!(
        got.expect_json(200)["value"].as_str().map(str::len),
        Some(20_000)
    );
    assert_eq!(got.header("x-kv-version"), Some("1000079.79.p"));
    assert_eq!(get(addr, "/health").await.json()["keys"], 2);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

/// A data file that cannot be opened stops the start with exit code 2 and one line
/// naming the file.
#[test]
fn an_unopenable_data_file_is_exit_2() {
    let path = std::env::temp_dir().join("kv-no-such-dir-for-sure/kv1.log");
    let out = Command::new(env!("CARGO_BIN_EXE_storage"))
        .args(["-p", "0", "--host", "127.0.0.1", "--data"])
        .arg(&path)
        .output()
        .expect("run storage");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("kv-no-such-dir-for-sure/kv1.log"),
        "{stderr}"
    );
}
