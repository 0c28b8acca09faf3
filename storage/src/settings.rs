//! The node's command line: the classroom original's `-n NAME -p PORT`, plus what a
//! container or a classroom LAN needs. Every flag also reads an environment variable.

use clap::Parser;

use std::path::PathBuf;
use std::time::Duration;

use crate::db::{DEFAULT_MAX_BYTES, DEFAULT_MAX_KEYS, DEFAULT_MAX_VALUE_BYTES};
use crate::server::{self, Limits};

/// How long tombstones are kept by default: one lesson, in seconds.
pub const DEFAULT_TOMBSTONE_GRACE_S: u64 = 3600;

/// An in-memory key-value node over HTTP, for teaching sharding and replication.
#[derive(Parser, Debug, Clone)]
#[command(name = "storage", version)]
pub struct Settings {
    /// The node's name, shown on /state and in every answer (e.g. kv1).
    #[arg(short = 'n', long, env = "KV_NAME", default_value = "kv1")]
    pub name: String,

    /// The port to listen on; 0 picks a free one and logs it.
    #[arg(short = 'p', long, env = "KV_PORT", default_value_t = 5000)]
    pub port: u16,

    /// The address to listen on. 0.0.0.0 lets containers and the classroom LAN reach it;
    /// 127.0.0.1 keeps it on this machine.
    #[arg(long, env = "KV_HOST", default_value = "0.0.0.0")]
    pub host: String,

    /// How many keys the node holds before it refuses new ones with 507.
    #[arg(long, env = "KV_MAX_KEYS", default_value_t = DEFAULT_MAX_KEYS)]
    pub max_keys: usize,

    /// The largest value accepted, in bytes of JSON.
    #[arg(long, env = "KV_MAX_VALUE_BYTES", default_value_t = DEFAULT_MAX_VALUE_BYTES)]
    pub max_value_bytes: usize,

    /// How many bytes of keys and values the node holds before it refuses writes with
    /// 507 (default 256 MiB): anyone with the URL can write, and a laptop is not a disk.
    #[arg(long, env = "KV_MAX_BYTES", default_value_t = DEFAULT_MAX_BYTES)]
    pub max_bytes: usize,

    /// A request body must arrive within this many milliseconds (408 otherwise).
    #[arg(long, env = "KV_BODY_TIMEOUT_MS", default_value_t = server::DEFAULT_BODY_TIMEOUT.as_millis() as u64,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub body_timeout_ms: u64,

    /// An answer is given up when the client reads nothing of it for this many milliseconds.
    #[arg(long, env = "KV_SEND_TIMEOUT_MS", default_value_t = server::DEFAULT_SEND_TIMEOUT.as_millis() as u64,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub send_timeout_ms: u64,

    /// Connections served at once; past it, a new connection gets 503 at once.
    #[arg(long, env = "KV_MAX_CONNECTIONS", default_value_t = server::DEFAULT_MAX_CONNECTIONS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    pub max_connections: usize,

    /// Keep the data in this file (an append-only log, replayed at start), so a node
    /// restarted after a crash comes back with its keys. Off by default: memory only.
    /// Each write is handed to the OS before the answer (it survives `kill -9`) but not
    /// fsynced (a power cut may lose the last writes).
    #[arg(long, env = "KV_DATA", value_name = "FILE")]
    pub data: Option<PathBuf>,

    /// How long a deletion is remembered (a tombstone), in seconds, so an older write
    /// arriving late cannot bring the key back. A replica down for longer than this may
    /// bring a deleted key back.
    #[arg(long, env = "KV_TOMBSTONE_GRACE_S", default_value_t = DEFAULT_TOMBSTONE_GRACE_S)]
    pub tombstone_grace_s: u64,

    /// A teacher's proxy to join once listening, e.g. https://teacher.ngrok-free.app
    #[arg(long, env = "KV_JOIN", value_name = "PROXY_URL")]
    pub join: Option<String>,

    /// The URL the proxy should reach this node at (your `ngrok http 5000` URL). Without
    /// it, the proxy uses the address your request comes from (the classroom LAN).
    #[arg(long, env = "KV_ADVERTISE", value_name = "URL", requires = "join")]
    pub advertise: Option<String>,

    /// The token the teacher gave the class (the proxy's `join_token`).
    #[arg(
        long,
        env = "KV_JOIN_TOKEN",
        value_name = "TOKEN",
        requires = "join",
        hide_env_values = true
    )]
    pub join_token: Option<String>,
}

impl Settings {
    /// Settings for a node started in-process (tests, the proxy's demo).
    pub fn named(name: &str) -> Settings {
        Settings {
            name: name.to_string(),
            port: 0,
            host: "127.0.0.1".to_string(),
            max_keys: DEFAULT_MAX_KEYS,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
            max_bytes: DEFAULT_MAX_BYTES,
            body_timeout_ms: server::DEFAULT_BODY_TIMEOUT.as_millis() as u64,
            send_timeout_ms: server::DEFAULT_SEND_TIMEOUT.as_millis() as u64,
            max_connections: server::DEFAULT_MAX_CONNECTIONS,
            data: None,
            tombstone_grace_s: DEFAULT_TOMBSTONE_GRACE_S,
            join: None,
            advertise: None,
            join_token: None,
        }
    }
}

impl Settings {
    /// What the accept loop holds clients to.
    pub fn limits(&self) -> Limits {
        Limits {
            max_connections: self.max_connections,
            body_timeout: Duration::from_millis(self.body_timeout_ms),
            send_timeout: Duration::from_millis(self.send_timeout_ms),
        }
    }
}
