//! The proxy's YAML config, the classroom original's format:
//!
//! ```yaml
//! mode: sharding          # or replication
//! nodes:
//!   - name: kv1
//!     url: http://localhost:5000
//! timeout_ms: 2000        # optional, per request to a node
//! join_token: s3cret      # optional: lets students' nodes join (POST /join)
//! ```
//!
//! Loading checks everything a teacher can get wrong and says it in one sentence: the
//! line of a YAML error, the valid modes, the node at fault. A typo in a field name is an
//! error, not silently ignored.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::mode;

/// How long a node gets to answer one request when the config does not say.
pub const DEFAULT_TIMEOUT_MS: u64 = 2000;

/// The longest `timeout_ms` accepted: a class waits no longer than this for a node.
pub const MAX_TIMEOUT_MS: u64 = 600_000;

/// How many nodes may join through `POST /join` when the config does not say.
pub const DEFAULT_MAX_JOINED: usize = 64;

/// The config as written in the file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `sharding` or `replication` (any name in [`mode::NAMES`]).
    pub mode: String,
    /// The nodes, in the order placement counts them (`SHA-256 mod N` picks an index here).
    #[serde(default)]
    pub nodes: Vec<NodeConfig>,
    /// Per request to a node: connecting and the whole answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// When set, students' nodes may join with `Authorization: Bearer <token>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_token: Option<String>,
    /// How many nodes may join at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_joined: Option<usize>,
}

/// One node: a name for the pages and logs, and the base URL its API lives under.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub name: String,
    pub url: String,
}

impl Config {
    /// Reads and checks a config file; the error is one sentence naming the file.
    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            let why = match e.kind() {
                std::io::ErrorKind::NotFound => "no such file".to_string(),
                _ => e.to_string(),
            };
            format!("cannot read config {}: {why}", path.display())
        })?;
        Config::parse(&text).map_err(|e| format!("config {}: {e}", path.display()))
    }

    /// Parses and checks config text.
    pub fn parse(text: &str) -> Result<Config, String> {
        // An empty file parses as nothing at all; say what it needs instead.
        if text.trim().is_empty() {
            return Err("the file is empty: it needs `mode:` and `nodes:`".into());
        }
        let config: Config = serde_yaml::from_str(text).map_err(|e| describe_yaml_error(&e))?;
        config.check()?;
        Ok(config)
    }

    /// The checks YAML's types cannot express.
    pub fn check(&self) -> Result<(), String> {
        if mode::by_name(&self.mode).is_none() {
            return Err(format!(
                "unknown mode '{}': valid modes are {}",
                self.mode,
                mode::NAMES.join(", ")
            ));
        }
        if self.nodes.is_empty() {
            return Err(
                "no nodes: add a `nodes:` list with at least one `- name: ... url: ...`".into(),
            );
        }
        let mut seen = HashSet::new();
        for node in &self.nodes {
            check_node(&node.name, &node.url)?;
            if !seen.insert(node.name.as_str()) {
                return Err(format!(
                    "duplicate node name '{}': every node needs its own name",
                    node.name
                ));
            }
        }
        if let Some(ms) = self
            .timeout_ms
            .filter(|ms| !(1..=MAX_TIMEOUT_MS).contains(ms))
        {
            return Err(format!(
                "timeout_ms is {ms}: it must be between 1 and {MAX_TIMEOUT_MS} (ten minutes)"
            ));
        }
        Ok(())
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS))
    }

    pub fn max_joined(&self) -> usize {
        self.max_joined.unwrap_or(DEFAULT_MAX_JOINED)
    }

    /// The config as YAML the proxy accepts, with the join token left out.
    pub fn to_yaml_without_token(&self) -> String {
        let mut shown = self.clone();
        shown.join_token = None;
        serde_yaml::to_string(&shown).unwrap_or_default()
    }
}

/// The longest node name accepted: names go on the page and in every header.
pub const MAX_NAME_CHARS: usize = 64;

/// The longest node URL accepted.
pub const MAX_URL_CHARS: usize = 512;

/// A node's name and URL, as a config or a `POST /join` gives them.
pub fn check_node(name: &str, url: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err(format!("a node with url '{url}' has an empty name"));
    }
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(format!(
            "node name '{}' must be at most {MAX_NAME_CHARS} printable characters",
            name.escape_default()
        ));
    }
    if url.len() > MAX_URL_CHARS {
        return Err(format!(
            "node {name}: the url is longer than {MAX_URL_CHARS} characters"
        ));
    }
    let lower = url.to_ascii_lowercase();
    if !lower.starts_with("http://") && !lower.starts_with("https://") {
        return Err(match url.split_once("://") {
            Some((scheme, _)) => {
                format!("node {name}: url '{url}' uses {scheme}; only http:// and https:// work")
            }
            None => format!("node {name}: url '{url}' has no scheme; write it as http://{url}"),
        });
    }
    match url.parse::<hyper::Uri>() {
        Ok(uri) if uri.host().is_some_and(|h| !h.is_empty()) && uri.query().is_none() => Ok(()),
        _ => Err(format!(
            "node {name}: url '{url}' is not a valid http(s) URL (like http://10.0.0.5:5000)"
        )),
    }
}

/// serde_yaml's message, with a hint for the mistakes a teacher makes most.
fn describe_yaml_error(e: &serde_yaml::Error) -> String {
    let mut text = e.to_string();
    if let Some(loc) = e.location() {
        if !text.contains("line") {
            text = format!("{text} (line {}, column {})", loc.line(), loc.column());
        }
    }
    if text.contains("unknown field") {
        text.push_str(" (check the spelling)");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "mode: sharding\nnodes:\n  - name: kv1\n    url: http://localhost:5000\n";

    #[test]
    fn a_good_config_loads() {
        let c = Config::parse(GOOD).unwrap();
        assert_eq!(c.nodes[0].name, "kv1");
        assert_eq!(c.timeout(), Duration::from_millis(DEFAULT_TIMEOUT_MS));
    }

    #[test]
    fn the_yaml_written_back_loads_again() {
        let c = Config::parse(&format!("{GOOD}join_token: t\n")).unwrap();
        let text = c.to_yaml_without_token();
        assert!(!text.contains("join_token"));
        assert_eq!(Config::parse(&text).unwrap().nodes, c.nodes);
    }

    #[test]
    fn each_mistake_is_named() {
        let n = "  - name: kv1\n    url: http://x:1\n";
        let cases = [
            (
                "mode: sharding\nnodes:\n  - name: kv1\n    url: [x\n",
                "line",
            ),
            (&*format!("mode: shardnig\nnodes:\n{n}"), "shardnig"),
            (&*format!("nodes:\n{n}"), "mode"),
            ("mode: sharding\n", "no nodes"),
            ("mode: sharding\nnodes: []\n", "no nodes"),
            ("mode: sharding\nnodes:\n  - name: kv1\n", "url"),
            ("mode: sharding\nnodes:\n  - url: http://x:1\n", "name"),
            (
                "mode: sharding\nnodes:\n  - name: kv1\n    url: localhost:5000\n",
                "no scheme",
            ),
            (
                "mode: sharding\nnodes:\n  - name: kv1\n    url: ftp://x:21\n",
                "ftp",
            ),
            (&*format!("mode: sharding\nnodes:\n{n}{n}"), "duplicate"),
            (&*format!("mode: sharding\nnodez:\n{n}"), "nodez"),
            ("mode: sharding\nnodes: kv1\n", "sequence"),
            ("", "empty"),
            (
                &*format!("mode: sharding\nnodes:\n{n}timeout_ms: 0\n"),
                "timeout_ms",
            ),
            (
                &*format!("mode: sharding\nnodes:\n{n}timeout_ms: 18446744073709551615\n"),
                "timeout_ms",
            ),
        ];
        for (text, word) in cases {
            let err = Config::parse(text).unwrap_err();
            assert!(err.contains(word), "{text:?} said {err:?}, wanted {word:?}");
        }
    }
}
