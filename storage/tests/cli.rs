//! The `storage` binary as a teacher starts it: flags and their environment variables,
//! `-p 0` logging the port it got, a clear message for a busy port, and a graceful stop
//! on SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Stops the child even when an assertion fails first.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads the log until the line saying where the node listens, and returns its port.
fn listening_port(child: &mut Child) -> u16 {
    let out = child.stdout.take().expect("stdout is piped");
    let deadline = Instant::now() + Duration::from_secs(10);
    for line in BufReader::new(out).lines() {
        let line = line.expect("a log line");
        if let Some(rest) = line.split("listening on http://").nth(1) {
            let addr = rest.split_whitespace().next().unwrap_or_default();
            return addr.rsplit(':').next().unwrap().parse().expect("a port");
        }
        assert!(Instant::now() < deadline, "no 'listening on' line in time");
    }
    panic!("the node exited before saying where it listens");
}

fn storage() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_storage"));
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::null())
        .env("NO_COLOR", "1");
    cmd
}

/// `KV_NAME` and `KV_PORT=0` configure the node like `-n` and `-p 0`; the log says which
/// port it got, and the node answers there under that name.
#[tokio::test]
async fn environment_variables_and_port_zero() {
    let mut node = Running(
        storage()
            .env("KV_NAME", "from-env")
            .env("KV_PORT", "0")
            .env("KV_HOST", "127.0.0.1")
            .spawn()
            .expect("start storage"),
    );
    let port = listening_port(&mut node.0);
    assert_ne!(port, 0);
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let health = common::get(addr, "/health").await.expect_json(200);
    assert_eq!(health["node"], "from-env");
}

/// SIGTERM (what `docker stop` sends) ends the node with exit code 0.
#[tokio::test]
async fn sigterm_stops_it_cleanly() {
    let mut node = Running(
        storage()
            .args(["-n", "kv9", "-p", "0", "--host", "127.0.0.1"])
            .spawn()
            .expect("start storage"),
    );
    let port = listening_port(&mut node.0);
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    common::post(addr, "/put?key=a", r#"{"value": 1}"#)
        .await
        .expect_json(200);
    // SIGTERM from the test itself, as `kill` or `docker stop` would send it.
    let pid = i32::try_from(node.0.id()).expect("a pid");
    assert_eq!(
        unsafe { libc::kill(pid, libc::SIGTERM) },
        0,
        "kill -TERM {pid}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = node.0.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A port that is taken is reported in one sentence with exit code 1, not a panic.
#[test]
fn a_busy_port_is_explained() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_storage"))
        .args(["-n", "kv1", "-p", &port, "--host", "127.0.0.1"])
        .output()
        .expect("run storage");
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("already in use"), "{said}");
    assert!(!said.contains("panicked"), "{said}");
}

/// A `--join` URL without http(s):// is refused at start with exit code 2, rather than
/// retried forever.
#[test]
fn a_bad_join_url_is_refused_at_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_storage"))
        .args([
            "-n",
            "alice",
            "-p",
            "0",
            "--join",
            "teacher.example:5003",
            "--join-token",
            "t",
        ])
        .output()
        .expect("run storage");
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("teacher.example:5003") && said.contains("http"),
        "{said}"
    );
}

/// `--join` without a token would be refused by the proxy and keep running outside the
/// class: it is refused at start instead, with what to add.
#[test]
fn a_join_without_a_token_is_refused_at_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_storage"))
        .args(["-n", "alice", "-p", "0", "--join", "http://127.0.0.1:9"])
        .env_remove("KV_JOIN_TOKEN")
        .output()
        .expect("run storage");
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("--join-token"), "{said}");
}

/// `--max-bytes` (and `KV_MAX_BYTES`) is the node's memory budget, shown by `/health`.
#[tokio::test]
async fn max_bytes_is_a_flag_and_health_shows_it() {
    let mut node = Running(
        storage()
            .args(["-n", "small", "-p", "0", "--host", "127.0.0.1"])
            .env("KV_MAX_BYTES", "5000")
            .spawn()
            .expect("start storage"),
    );
    let port = listening_port(&mut node.0);
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let health = common::get(addr, "/health").await.expect_json(200);
    assert_eq!(
        (&health["bytes"], &health["max_bytes"]),
        (&serde_json::json!(0), &serde_json::json!(5000))
    );
}
