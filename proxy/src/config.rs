//! The proxy's YAML config, the classroom original's format:
//!
//! ```yaml
//! mode: sharding          # or replication, consistent-hashing, rendezvous
//! nodes:
//!   - name: kv1
//!     url: http://localhost:5000
//! timeout_ms: 2000        # optional, per request to a node
//! join_token: s3cret      # optional: lets students' nodes join (POST /join)
//! admin_token: t3acher    # optional: only the teacher may /clear (and evict nodes)
//! join_allow_loopback: false   # true lets nodes on this machine join (trying it alone)
//! body_timeout_ms: 10000  # a request body must arrive within this
//! send_timeout_ms: 30000  # an answer the client reads nothing of is given up after this
//! max_connections: 1024   # past it, new connections get 503 at once
//! replicas: 2             # copies of each key (sharding, consistent-hashing, rendezvous)
//! vnodes: 100             # ring tokens per node (consistent-hashing)
//! write_quorum: 2         # W, R, read_repair, hinted_handoff, anti_entropy(_ms):
//! read_quorum: majority   #   the consistency lab (crate::consistency)
//! ```
//!
//! Loading checks everything a teacher can get wrong and says it in one sentence: the
//! line of a YAML error, the valid modes, the node at fault. A typo in a field name is an
//! error, not silently ignored.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::consistency::{self, Consistency, Written};
use crate::mode;
use crate::pool_config::{self, PoolConfig};

/// How long a node gets to answer one request when the config does not say.
pub const DEFAULT_TIMEOUT_MS: u64 = 2000;

/// The longest `timeout_ms` accepted: a class waits no longer than this for a node.
pub const MAX_TIMEOUT_MS: u64 = 600_000;

/// How many nodes may join through `POST /join` when the config does not say.
pub const DEFAULT_MAX_JOINED: usize = 64;

/// The config as written in the file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `sharding`, `replication`, `consistent-hashing` or `rendezvous` ([`mode::NAMES`]);
    /// empty when the config lists `pools:` instead.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mode: String,
    /// The nodes, in the order placement counts them (`SHA-256 mod N` picks an index here).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
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
    /// When set, `/clear` (and taking another node's name) needs `Authorization: Bearer
    /// <admin_token>`: the class holds the join token, only the teacher holds this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<String>,
    /// Lets nodes on the proxy's own machine join (127.0.0.1, localhost): for a teacher
    /// trying joins alone, and for tests. Off, because behind ngrok every join looks local.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub join_allow_loopback: bool,
    /// A request body must arrive within this many milliseconds (408 otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_timeout_ms: Option<u64>,
    /// An answer is given up after this many milliseconds in which the client read nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_timeout_ms: Option<u64>,
    /// Connections served at once; one more gets 503 at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    /// How many nodes hold each key (sharding, consistent-hashing, rendezvous; default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<usize>,
    /// Tokens per node on the ring (consistent-hashing; default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vnodes: Option<usize>,
    /// W: how many copies must store a write before it answers 200 ([`crate::consistency`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_quorum: Option<Written>,
    /// R: how many copies a read asks at once; the newest answer wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_quorum: Option<Written>,
    /// A read that saw an older or missing copy writes the newest back to it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_repair: bool,
    /// A write whose copy is down goes to the next node of the key's list, as a hint.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hinted_handoff: bool,
    /// A background pass compares the copies bucket by bucket and heals what differs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub anti_entropy: bool,
    /// How often that pass runs (default 5,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anti_entropy_ms: Option<u64>,
    /// Several clusters instead of one `mode`/`nodes` ([`crate::pool_config`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pools: Vec<PoolConfig>,
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
        Config::load_with_text(path).map(|(config, _)| config)
    }

    /// [`Config::load`], with the text it was read from: the reloader compares the file
    /// with this text, so an edit saved just after start-up is still seen as an edit.
    pub fn load_with_text(path: &Path) -> Result<(Config, String), String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            let why = match e.kind() {
                std::io::ErrorKind::NotFound => "no such file".to_string(),
                _ => e.to_string(),
            };
            format!("cannot read config {}: {why}", path.display())
        })?;
        let config = Config::parse(&text).map_err(|e| format!("config {}: {e}", path.display()))?;
        Ok((config, text))
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
        if !self.pools.is_empty() {
            return pool_config::check(self);
        }
        if self.mode.is_empty() {
            return Err(format!(
                "no mode: add `mode:` ({}), or a `pools:` list",
                mode::NAMES.join(", ")
            ));
        }
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
        for (field, value) in [
            ("timeout_ms", self.timeout_ms),
            ("body_timeout_ms", self.body_timeout_ms),
            ("send_timeout_ms", self.send_timeout_ms),
        ] {
            if let Some(ms) = value.filter(|ms| !(1..=MAX_TIMEOUT_MS).contains(ms)) {
                return Err(format!(
                    "{field} is {ms}: it must be between 1 and {MAX_TIMEOUT_MS} (ten minutes)"
                ));
            }
        }
        if let Some(n) = self
            .max_connections
            .filter(|n| !(1..=1_000_000).contains(n))
        {
            return Err(format!(
                "max_connections is {n}: it must be between 1 and 1000000"
            ));
        }
        if let Some(r) = self.replicas {
            if !mode::WITH_REPLICAS.contains(&self.mode.as_str()) {
                return Err(format!(
                    "replicas: {r} does not apply to mode {}: every node holds every key there \
                     (replicas work with {})",
                    self.mode,
                    mode::WITH_REPLICAS.join(", ")
                ));
            }
            if r == 0 || r > self.nodes.len() {
                return Err(format!(
                    "replicas is {r}: it must be between 1 and the number of nodes ({})",
                    self.nodes.len()
                ));
            }
        }
        if let Some(v) = self.vnodes {
            if self.mode != "consistent-hashing" {
                return Err(format!(
                    "vnodes: {v} applies to mode consistent-hashing only (the ring's tokens)"
                ));
            }
            if !(1..=1000).contains(&v) {
                return Err(format!("vnodes is {v}: it must be between 1 and 1000"));
            }
        }
        self.check_consistency()?;
        for (field, token) in [
            ("join_token", &self.join_token),
            ("admin_token", &self.admin_token),
        ] {
            if token.as_deref().is_some_and(|t| t.trim().is_empty()) {
                return Err(format!(
                    "{field} is empty: give it a secret, or remove the line"
                ));
            }
        }
        if self.join_token.is_some() && self.join_token == self.admin_token {
            return Err(
                "join_token and admin_token are the same: the class holds the join token, so \
                 the admin token must be another secret"
                    .into(),
            );
        }
        Ok(())
    }

    /// Quorums that can be met, hints that have somewhere to go.
    fn check_consistency(&self) -> Result<(), String> {
        let copies = match self.mode.as_str() {
            "replication" => self.nodes.len(),
            _ => self.replicas.unwrap_or(1),
        };
        for (field, written) in [
            ("write_quorum", &self.write_quorum),
            ("read_quorum", &self.read_quorum),
        ] {
            let quorum = written.as_ref().map(|w| w.quorum(field)).transpose()?;
            consistency::check(field, quorum, copies)?;
        }
        if self.hinted_handoff && self.mode == "replication" {
            return Err(
                "hinted_handoff: in replication every node already holds every key, so there is \
                 no next node to keep a hint: use it with replicas on consistent-hashing, \
                 rendezvous or sharding"
                    .into(),
            );
        }
        if let Some(ms) = self
            .anti_entropy_ms
            .filter(|ms| !(100..=3_600_000).contains(ms))
        {
            return Err(format!(
                "anti_entropy_ms is {ms}: it must be between 100 and 3600000 (an hour)"
            ));
        }
        Ok(())
    }

    /// The consistency settings, with their defaults.
    pub fn consistency(&self) -> Consistency {
        Consistency {
            // Checked at load: a word that is not a quorum never gets this far.
            write_quorum: self
                .write_quorum
                .as_ref()
                .and_then(|w| w.quorum("write_quorum").ok()),
            read_quorum: self
                .read_quorum
                .as_ref()
                .and_then(|w| w.quorum("read_quorum").ok()),
            read_repair: self.read_repair,
            hinted_handoff: self.hinted_handoff,
            anti_entropy: self.anti_entropy,
            anti_entropy_ms: self
                .anti_entropy_ms
                .unwrap_or(consistency::DEFAULT_ANTI_ENTROPY_MS),
        }
    }

    /// The mode's parameters, with their defaults.
    pub fn params(&self) -> mode::Params {
        let defaults = mode::Params::default();
        mode::Params {
            replicas: self.replicas.unwrap_or(defaults.replicas),
            vnodes: self.vnodes.unwrap_or(defaults.vnodes),
        }
    }

    /// What the accept loop holds clients to.
    pub fn limits(&self) -> storage::server::Limits {
        let defaults = storage::server::Limits::default();
        storage::server::Limits {
            max_connections: self.max_connections.unwrap_or(defaults.max_connections),
            body_timeout: self
                .body_timeout_ms
                .map_or(defaults.body_timeout, Duration::from_millis),
            send_timeout: self
                .send_timeout_ms
                .map_or(defaults.send_timeout, Duration::from_millis),
        }
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS))
    }

    pub fn max_joined(&self) -> usize {
        self.max_joined.unwrap_or(DEFAULT_MAX_JOINED)
    }

    /// The config as YAML the proxy accepts, with both tokens left out.
    pub fn to_yaml_without_token(&self) -> String {
        let mut shown = self.clone();
        shown.join_token = None;
        shown.admin_token = None;
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
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(invisible) {
        return Err(format!(
            "node name '{}' must be at most {MAX_NAME_CHARS} visible characters",
            name.escape_default()
        ));
    }
    // "alice" and "alice " would look the same on the page and be two nodes.
    if name.trim() != name || name.contains("  ") {
        return Err(format!(
            "node name '{name}' starts or ends with a space (or has two in a row): \
             names must look different when they are different"
        ));
    }
    check_url(url).map_err(|why| format!("node {name}: {why}"))
}

/// A node's URL: `http(s)://host[:port][/path]`, or a sentence on what is wrong with
/// it and what to write instead.
pub fn check_url(url: &str) -> Result<(), String> {
    if url.len() > MAX_URL_CHARS {
        return Err(format!("the url is longer than {MAX_URL_CHARS} characters"));
    }
    let lower = url.to_ascii_lowercase();
    if !lower.starts_with("http://") && !lower.starts_with("https://") {
        return Err(match url.split_once("://") {
            Some((scheme, _)) => {
                format!("url '{url}' uses {scheme}; only http:// and https:// work")
            }
            None => match mistyped_scheme(url) {
                Some(meant) => format!("url '{url}' has a mistyped http://; write it as {meant}"),
                None => format!("url '{url}' has no scheme; write it as http://{url}"),
            },
        });
    }
    // One notion of a node URL for the config and for joins: `http(s)://host[:port][/path]`.
    crate::address::NodeUrl::parse(url)
        .map(|_| ())
        .map_err(|why| {
            format!("url '{url}' is not a valid http(s) URL (like http://10.0.0.5:5000): {why}")
        })
}

/// `http//host`, `http:/host`, `https:host`: the URL meant, when the scheme is there but
/// its `://` is not.
fn mistyped_scheme(url: &str) -> Option<String> {
    let lower = url.to_ascii_lowercase();
    let scheme = ["https", "http"]
        .into_iter()
        .find(|s| lower.starts_with(s))?;
    let rest = url[scheme.len()..].trim_start_matches([':', '/']);
    let skipped = url.len() - scheme.len() - rest.len();
    (skipped > 0 && !rest.is_empty()).then(|| format!("{scheme}://{rest}"))
}

/// A character that shows nothing on the page: controls, and the spaces and marks of
/// zero width that would make two names look alike.
fn invisible(c: char) -> bool {
    c.is_control()
        || (c.is_whitespace() && c != ' ')
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{00AD}')
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
        let c = Config::parse(&format!("{GOOD}join_token: t\nadmin_token: u\n")).unwrap();
        let text = c.to_yaml_without_token();
        assert!(!text.contains("join_token") && !text.contains("admin_token"));
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
            (
                "mode: sharding\nnodes:\n  - name: kv1\n    url: http//localhost:5000\n",
                "write it as http://localhost:5000",
            ),
            (
                "mode: sharding\nnodes:\n  - name: kv1\n    url: 'https:/x.example'\n",
                "write it as https://x.example",
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
            (
                "mode: sharding\nnodes:\n  - name: 'kv1 '\n    url: http://x:1\n",
                "space",
            ),
            (
                "mode: sharding\nnodes:\n  - name: \"kv\\u200B1\"\n    url: http://x:1\n",
                "visible",
            ),
            (
                &*format!("mode: sharding\nnodes:\n{n}join_token: a\nadmin_token: a\n"),
                "same",
            ),
            (
                &*format!("mode: sharding\nnodes:\n{n}body_timeout_ms: 0\n"),
                "body_timeout_ms",
            ),
            (
                &*format!("mode: sharding\nnodes:\n{n}max_connections: 0\n"),
                "max_connections",
            ),
        ];
        for (text, word) in cases {
            let err = Config::parse(text).unwrap_err();
            assert!(err.contains(word), "{text:?} said {err:?}, wanted {word:?}");
        }
    }
}
