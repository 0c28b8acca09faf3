//! What the students'-nodes tests (`join`, `join_guards`, `doctor`, `python_node`) share
//! beyond the storage test kit (`common`) and the proxy's test kit (`support`): real
//! programs run as child processes (the `storage` and `proxy` binaries, the Python node)
//! with their output captured and a guard that kills them, `POST /join` by hand, the
//! class the join tests start from (two file nodes, joining on), `proxy doctor` run to
//! the end, and the placement rule redone here.
//!
//! Each test file declares `mod common` (the storage kit, through `#[path]`), `mod
//! support` and `mod students_support`; this file reaches the kits as `crate::common`
//! and `crate::support`, and passes on the helpers of `support` these tests call
//! (the in-process proxy, configs, direct looks at a node, temp files).

// Each test binary compiles its own copy of this module and uses only some of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use hyper::StatusCode;
use proxy::config::Config;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use storage::http::Response;

use crate::common::{get, request, start_node, Node, Reply};
use crate::support::{start_scripted_after, Seen};

// Each test binary calls only some of these, as with the rest of this module.
#[allow(unused_imports)]
pub use crate::support::{count_on, dead_addr, encode, start_proxy, url, value_on, yaml, TempFile};

/// How long a joined node may take to show up in (or drop out of) the proxy's `/config`.
pub const JOIN_WITHIN: Duration = Duration::from_secs(6);

/// The workspace's root folder (the `proxy` crate's parent).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("proxy/ has a parent")
        .to_path_buf()
}

/// The `proxy` binary cargo built for these tests.
pub fn proxy_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_proxy"))
}

/// The `storage` binary, built first if it is missing or older than storage's sources.
///
/// Cargo builds only the binaries of the package under test for its integration tests
/// (`CARGO_BIN_EXE_proxy`), never those of a dependency, so `cargo test -p proxy` alone
/// would leave `storage` unbuilt, or built from older sources. It is looked for beside
/// the `proxy` binary (the same `target/<profile>` folder, so `CARGO_TARGET_DIR` and
/// `--release` are honoured) and built there with `cargo build -p storage --bin storage`.
/// Cargo has let go of its build lock by the time tests run, so this does not deadlock.
pub fn storage_bin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = proxy_bin()
                .parent()
                .expect("the proxy binary is in a folder")
                .to_path_buf();
            let bin = dir.join(format!("storage{}", std::env::consts::EXE_SUFFIX));
            let sources = newest_mtime(&workspace_root().join("storage"));
            let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
            if !matches!(built, Some(b) if b >= sources) {
                let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
                let mut build = Command::new(cargo);
                build
                    .current_dir(workspace_root())
                    .args(["build", "-p", "storage", "--bin", "storage"]);
                if dir.file_name().is_some_and(|n| n == "release") {
                    build.arg("--release");
                }
                let status = build.status().expect("run cargo build -p storage");
                assert!(status.success(), "cargo build -p storage failed: {status}");
            }
            assert!(bin.exists(), "no storage binary at {}", bin.display());
            bin
        })
        .clone()
}

/// The newest modification time of any file under `dir`, its `tests/` left out.
fn newest_mtime(dir: &Path) -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return newest;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        let time = if meta.is_dir() {
            if path.file_name().is_some_and(|n| n == "tests") {
                continue;
            }
            newest_mtime(&path)
        } else {
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH)
        };
        newest = newest.max(time);
    }
    newest
}

/// A port nothing listens on right now (bound, then let go). Another program could take
/// it before the test does; on a test machine that is rare enough.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A child process with its stdout and stderr collected as they come; dropping it kills
/// the process (a failed assertion must not leave nodes running).
pub struct Proc {
    pub name: String,
    child: Child,
    output: Arc<Mutex<String>>,
}

impl Proc {
    /// Starts `command` with its output piped and collected.
    /// `RUST_LOG` from the shell running the tests is dropped unless `command` sets it.
    pub fn spawn(name: &str, mut command: Command) -> Proc {
        if !command.get_envs().any(|(k, _)| k == "RUST_LOG") {
            command.env_remove("RUST_LOG");
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Plain text logs, whatever the terminal the tests run in.
            .env("NO_COLOR", "1");
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start {name} ({command:?}): {e}"));
        let output = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        collect(out, output.clone());
        collect(err, output.clone());
        Proc {
            name: name.to_string(),
            child,
            output,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything it wrote so far, stdout and stderr interleaved by line.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Waits until its output contains `needle`; answers the line that does.
    pub async fn wait_for_line(&self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = self.output().lines().find(|l| l.contains(needle)) {
                return line.to_string();
            }
            if Instant::now() > deadline {
                panic!(
                    "{} did not print {needle:?} within {within:?}; it printed:\n{}",
                    self.name,
                    self.output()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The port of the first `http://HOST:PORT` after `needle` in its output.
    pub async fn port_after(&self, needle: &str, within: Duration) -> u16 {
        let line = self.wait_for_line(needle, within).await;
        let rest = &line[line.find(needle).unwrap() + needle.len()..];
        let url = &rest[rest.find("http://").expect("a URL after the words") + 7..];
        let port: String = url
            .split(':')
            .nth(1)
            .expect("HOST:PORT")
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        port.parse()
            .unwrap_or_else(|_| panic!("no port in {line:?}"))
    }

    /// Sends SIGTERM, as `docker stop` or `kill` would: the program may clean up.
    pub fn terminate(&self) {
        // From the test itself: a machine with only Rust has no `kill` program.
        let pid = i32::try_from(self.pid()).expect("a pid");
        assert_eq!(
            unsafe { libc::kill(pid, libc::SIGTERM) },
            0,
            "kill -TERM {pid} failed"
        );
    }

    /// Waits (without blocking the runtime) for it to exit; `None` if it did not in time.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills it at once (SIGKILL: a crash, a pulled cable) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Copies `from`, line by line, into `into` on a thread of its own.
fn collect(from: impl Read + Send + 'static, into: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            let mut all = into.lock().unwrap();
            all.push_str(&line);
            all.push('\n');
        }
    });
}

/// The `storage` binary as a student runs it, on 127.0.0.1, with `args` after the name.
pub fn spawn_storage(name: &str, args: &[&str]) -> Proc {
    let mut command = Command::new(storage_bin());
    command.args(["-n", name, "--host", "127.0.0.1"]).args(args);
    // The flags' environment twins must not leak in from the shell running the tests.
    for var in [
        "KV_NAME",
        "KV_PORT",
        "KV_HOST",
        "KV_JOIN",
        "KV_ADVERTISE",
        "KV_JOIN_TOKEN",
    ] {
        command.env_remove(var);
    }
    Proc::spawn(&format!("storage {name}"), command)
}

/// `POST path` to the proxy with `Authorization: Bearer token` (none for `None`).
pub async fn post_auth(addr: SocketAddr, path: &str, token: Option<&str>, body: &Value) -> Reply {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(b) = &bearer {
        headers.push(("Authorization", b.as_str()));
    }
    request(addr, "POST", path, &headers, body.to_string().as_bytes()).await
}

/// `POST /join` with `{"name", "url"}`.
pub async fn join(addr: SocketAddr, token: Option<&str>, name: &str, node_url: &str) -> Reply {
    post_auth(
        addr,
        "/join",
        token,
        &json!({"name": name, "url": node_url}),
    )
    .await
}

/// `POST /leave` with `{"name"}` and no secret: what anyone with the class token can send.
pub async fn leave(addr: SocketAddr, token: Option<&str>, name: &str) -> Reply {
    post_auth(addr, "/leave", token, &json!({"name": name})).await
}

/// `POST /leave` with `{"name", "secret"}`: what the node itself sends.
pub async fn leave_with_secret(addr: SocketAddr, name: &str, secret: &Value) -> Reply {
    post_auth(
        addr,
        "/leave",
        Some(TOKEN),
        &json!({"name": name, "secret": secret}),
    )
    .await
}

/// The proxy's `GET /config` text, checked to be YAML the proxy loads again.
pub async fn config_text(proxy: SocketAddr) -> (String, Config) {
    let reply = get(proxy, "/config").await;
    assert_eq!(reply.status, 200, "GET /config: {reply:#?}");
    let text = reply.text().to_string();
    let config = Config::parse(&text)
        .unwrap_or_else(|e| panic!("GET /config is not a config the proxy loads ({e}):\n{text}"));
    (text, config)
}

/// The `(name, url)` of each node in the proxy's `/config`, in order.
pub async fn config_nodes(proxy: SocketAddr) -> Vec<(String, String)> {
    let (_, config) = config_text(proxy).await;
    config.nodes.into_iter().map(|n| (n.name, n.url)).collect()
}

/// The join token of [`class_config`]: the one the teacher tells the class.
pub const TOKEN: &str = "class-token-5c1e7";

/// Two in-process storage nodes, kv1 and kv2: the config file's nodes.
pub async fn file_nodes() -> (Node, Node) {
    (
        start_node(storage::Settings::named("kv1")).await,
        start_node(storage::Settings::named("kv2")).await,
    )
}

/// A sharding config over kv1 and kv2 with joining on, plus `extra` lines.
pub fn class_config(kv1: &Node, kv2: &Node, extra: &str) -> String {
    yaml(
        "sharding",
        &[("kv1", url(kv1.addr)), ("kv2", url(kv2.addr))],
        &format!("join_token: {TOKEN}\njoin_allow_loopback: true\n{extra}"),
    )
}

/// `POST /join` with the class's token, which must be a 200; answers its JSON body.
pub async fn join_ok(proxy: SocketAddr, name: &str, node_url: &str) -> Value {
    join(proxy, Some(TOKEN), name, node_url)
        .await
        .expect_json(200)
}

/// The names in the proxy's `/config`, in order.
pub async fn config_names(proxy: SocketAddr) -> Vec<String> {
    config_nodes(proxy)
        .await
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

/// Polls `/config` until `wanted` says yes, for at most [`JOIN_WITHIN`]; answers the
/// last node list, and whether `wanted` came true.
pub async fn wait_config(
    proxy: SocketAddr,
    wanted: impl Fn(&[(String, String)]) -> bool,
) -> (Vec<(String, String)>, bool) {
    let deadline = Instant::now() + JOIN_WITHIN;
    loop {
        let nodes = config_nodes(proxy).await;
        if wanted(&nodes) {
            return (nodes, true);
        }
        if Instant::now() > deadline {
            return (nodes, false);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The node a key lives on, redone here from the rule the lesson states: SHA-256 of
/// the key's UTF-8 bytes read as a big-endian integer, mod `nodes`, reduced one byte at
/// a time (`r = (r * 256 + byte) mod nodes`), which is that integer's remainder.
pub fn placement(key: &str, nodes: usize) -> usize {
    let n = nodes as u64;
    Sha256::digest(key.as_bytes())
        .iter()
        .fold(0u64, |r, &b| (r * 256 + u64::from(b)) % n) as usize
}

/// Starts a server answering each request with `answer(path_and_query)` after `delay`.
pub async fn start_canned<F>(delay: Duration, answer: F) -> Node
where
    F: Fn(&str) -> Response + Send + Sync + 'static,
{
    start_scripted_after(delay, move |seen: &Seen| answer(&seen.path_and_query))
        .await
        .node
}

/// A web server that is not a node: `200 text/html` to everything (a student's URL that
/// points at some other program, a router's login page).
pub async fn start_html_everywhere() -> Node {
    start_canned(Duration::ZERO, |_| {
        storage::http::html("<!doctype html><h1>Welcome to my homepage</h1>".into())
    })
    .await
}

/// Runs `proxy doctor ARGS` to the end, off the runtime (the nodes it checks may be
/// served by this very test's runtime); answers exit code, stdout, stderr, duration.
pub async fn doctor(args: &[&str]) -> Doctor {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let out = Command::new(proxy_bin())
            .arg("doctor")
            .args(&args)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .env_remove("KV_CONFIG")
            .output()
            .expect("run proxy doctor");
        Doctor {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            took: started.elapsed(),
        }
    })
    .await
    .expect("the doctor thread")
}

/// What one `proxy doctor` run did.
#[derive(Debug)]
pub struct Doctor {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl Doctor {
    /// The `--json` output, parsed.
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("doctor --json printed no JSON ({e}): {self:#?}"))
    }

    /// In `--json` output, the `ok` of check `check` of the node called `node`.
    pub fn check(&self, node: &str, check: &str) -> Value {
        let all = self.json();
        let report = all["nodes"]
            .as_array()
            .and_then(|ns| ns.iter().find(|n| n["name"] == node))
            .unwrap_or_else(|| panic!("no report on {node}: {all:#}"))
            .clone();
        report["checks"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["name"] == check))
            .unwrap_or_else(|| panic!("no check {check} on {node}: {report:#}"))["ok"]
            .clone()
    }
}

/// An error answer's JSON `error` sentence, after checking the status.
pub fn error_of(reply: &Reply, status: u16) -> String {
    reply.expect_error(status)["error"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// `200 {"value": null}`: what a node that never says 404 answers for a missing key.
pub fn null_value() -> Response {
    storage::http::json(StatusCode::OK, &json!({"value": null}))
}
