//! The real `proxy` binary meeting a bad config: every mistake a teacher makes stops it
//! at once with exit code 2 and one sentence that says what to fix, never a panic; a
//! busy port says so; `--check` checks without serving.

#[path = "../../storage/tests/common/mod.rs"]
mod common;
mod support;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::TempFile;

/// How long the binary may take to give up on a bad config.
const LIMIT: Duration = Duration::from_secs(3);

/// Runs `proxy ARGS`, killing it (and failing the test) if it is still running after
/// [`LIMIT`]: a proxy that starts serving a bad config would never exit on its own.
fn run_proxy(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_proxy"))
        .args(args)
        .env_remove("KV_CONFIG")
        .env_remove("KV_PORT")
        .env_remove("KV_HOST")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the proxy binary");
    let started = Instant::now();
    while child.try_wait().expect("poll the child").is_none() {
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let out = child.wait_with_output().expect("collect output");
            panic!(
                "proxy {args:?} still running after {LIMIT:?}; stdout {:?} stderr {:?}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("collect output")
}

const NODE: &str = "  - name: kv1\n    url: http://127.0.0.1:1\n";

/// Checks one failed run: code 2, one line on stderr that starts `proxy:` and holds
/// each of `words`, no panic anywhere. Returns a description of what is wrong, if anything.
fn judge(label: &str, out: &Output, words: &[&str]) -> Option<String> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut wrong = Vec::new();
    if out.status.code() != Some(2) {
        wrong.push(format!("exit {:?}, wanted 2", out.status.code()));
    }
    if stderr.trim().lines().count() != 1 || !stderr.starts_with("proxy: ") {
        wrong.push("not one `proxy: ...` line on stderr".to_string());
    }
    for word in words {
        if !stderr.contains(word) {
            wrong.push(format!("no {word:?} in the message"));
        }
    }
    if stderr.contains("panicked") || stdout.contains("panicked") {
        wrong.push("it panicked".to_string());
    }
    (!wrong.is_empty()).then(|| format!("{label}: {}\n  stderr: {stderr:?}", wrong.join("; ")))
}

/// Each mistake in a config file is refused with exit code 2 within 3 s, in one
/// sentence that names the mistake, and without a panic.
#[test]
fn each_config_mistake_exits_2_with_one_clear_sentence() {
    let unknown_mode = format!("mode: shardnig\nnodes:\n{NODE}");
    let no_mode = format!("nodes:\n{NODE}");
    let duplicate = format!("mode: sharding\nnodes:\n{NODE}{NODE}");
    let typo = format!("mode: sharding\nnodez:\n{NODE}");
    let cases: Vec<(&str, &str, Vec<&str>)> = vec![
        (
            // `url` indented deeper than `name`: YAML cannot parse it at all.
            "yaml-syntax",
            "mode: sharding\nnodes:\n  - name: kv1\n     url: http://x:1\n",
            vec!["line 4"],
        ),
        (
            "unknown-mode",
            &unknown_mode,
            vec!["shardnig", "sharding", "replication"],
        ),
        ("no-mode", &no_mode, vec!["mode"]),
        ("no-nodes", "mode: sharding\n", vec!["no nodes"]),
        (
            "empty-nodes",
            "mode: sharding\nnodes: []\n",
            vec!["no nodes"],
        ),
        (
            "no-url",
            "mode: sharding\nnodes:\n  - name: kv1\n",
            vec!["url"],
        ),
        (
            "no-name",
            "mode: sharding\nnodes:\n  - url: http://127.0.0.1:1\n",
            vec!["name"],
        ),
        (
            "no-scheme",
            "mode: sharding\nnodes:\n  - name: kv1\n    url: localhost:5000\n",
            vec!["kv1", "no scheme", "http://localhost:5000"],
        ),
        (
            "ftp",
            "mode: sharding\nnodes:\n  - name: kv1\n    url: ftp://x:21\n",
            vec!["kv1", "ftp", "http://"],
        ),
        ("duplicate", &duplicate, vec!["duplicate", "kv1"]),
        ("nodez", &typo, vec!["nodez"]),
        (
            "not-a-list",
            "mode: sharding\nnodes: kv1\n",
            vec!["nodes", "sequence"],
        ),
        ("empty-file", "", vec!["empty"]),
    ];
    let mut failures = Vec::new();
    for (label, text, words) in &cases {
        let file = TempFile::new(&format!("{label}.yml"), text);
        let path = file.path.to_str().unwrap();
        let out = run_proxy(&["-c", path, "--host", "127.0.0.1", "-p", "0"]);
        let mut words = words.clone();
        words.push(path);
        failures.extend(judge(label, &out, &words));
    }
    let missing = std::env::temp_dir().join("proxy-test-no-such-config.yml");
    let missing = missing.to_str().unwrap();
    let out = run_proxy(&["-c", missing, "--host", "127.0.0.1", "-p", "0"]);
    failures.extend(judge("missing-file", &out, &[missing, "no such file"]));
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// A port already in use stops the proxy with a non-zero code and says "in use".
#[test]
fn a_port_in_use_is_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let file = TempFile::new("good.yml", &format!("mode: sharding\nnodes:\n{NODE}"));
    let out = run_proxy(&[
        "-c",
        file.path.to_str().unwrap(),
        "--host",
        "127.0.0.1",
        "-p",
        &port,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "it exited 0: {stderr}");
    assert!(
        stderr.contains("in use") && stderr.contains(&port),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `--check` on a good file says so and exits 0 without serving; on a bad file it
/// exits 2 with the reason.
#[test]
fn check_checks_without_serving() {
    let good = TempFile::new(
        "check-good.yml",
        &format!("mode: replication\nnodes:\n{NODE}"),
    );
    let out = run_proxy(&["--check", "-c", good.path.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        stdout.contains("is good") && stdout.contains("replication"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("open http://"),
        "it started serving: {stdout}"
    );

    let bad = TempFile::new("check-bad.yml", "mode: sharding\nnodes: []\n");
    let out = run_proxy(&["--check", "-c", bad.path.to_str().unwrap()]);
    if let Some(wrong) = judge("--check bad", &out, &["no nodes"]) {
        panic!("{wrong}");
    }
}

/// `replicas` and `vnodes` are checked: replicas only where keys have homes (not in
/// replication), between 1 and N; vnodes only on the ring.
#[test]
fn placement_parameters_are_checked() {
    let nodes = "nodes:\n  - name: a\n    url: http://x:1\n  - name: b\n    url: http://x:2\n";
    for (text, word) in [
        (
            format!("mode: replication\n{nodes}replicas: 2\n"),
            "does not apply",
        ),
        (
            format!("mode: sharding\n{nodes}replicas: 3\n"),
            "between 1 and the number of nodes",
        ),
        (
            format!("mode: rendezvous\n{nodes}replicas: 0\n"),
            "between 1",
        ),
        (
            format!("mode: sharding\n{nodes}vnodes: 10\n"),
            "consistent-hashing only",
        ),
        (
            format!("mode: consistent-hashing\n{nodes}vnodes: 0\n"),
            "between 1 and 1000",
        ),
    ] {
        let err = proxy::config::Config::parse(&text).unwrap_err();
        assert!(err.contains(word), "{text:?} said {err:?}");
    }
    let ok = format!("mode: consistent-hashing\n{nodes}replicas: 2\nvnodes: 50\n");
    assert!(proxy::config::Config::parse(&ok).is_ok());
}

/// Quorums that can never be met, hints with nowhere to go and an anti-entropy pace out
/// of range are each one sentence; a quorum by name or number is fine.
#[test]
fn consistency_settings_are_checked() {
    let nodes = "nodes:\n  - name: a\n    url: http://x:1\n  - name: b\n    url: http://x:2\n";
    for (text, word) in [
        (
            format!("mode: replication\n{nodes}write_quorum: 3\n"),
            "more than the 2 copies",
        ),
        (
            format!("mode: sharding\n{nodes}replicas: 1\nread_quorum: 2\n"),
            "more than the 1 copies",
        ),
        (
            format!("mode: replication\n{nodes}read_quorum: 0\n"),
            "give 1 or more",
        ),
        (
            format!("mode: replication\n{nodes}write_quorum: most\n"),
            "write_quorum: \"most\" is not a quorum",
        ),
        (
            format!("mode: replication\n{nodes}hinted_handoff: true\n"),
            "no next node",
        ),
        (
            format!("mode: replication\n{nodes}anti_entropy: true\nanti_entropy_ms: 5\n"),
            "between 100",
        ),
    ] {
        let err = proxy::config::Config::parse(&text).unwrap_err();
        assert!(err.contains(word), "{text:?} said {err:?}");
    }
    let ok = format!(
        "mode: rendezvous\n{nodes}replicas: 2\nwrite_quorum: majority\nread_quorum: one\n\
         read_repair: true\nhinted_handoff: true\nanti_entropy: true\n"
    );
    assert!(proxy::config::Config::parse(&ok).is_ok());
}
