//! The node's command line: the classroom original's `-n NAME -p PORT`, plus what a
//! container or a classroom LAN needs. Every flag also reads an environment variable.

use clap::Parser;

use crate::db::{DEFAULT_MAX_KEYS, DEFAULT_MAX_VALUE_BYTES};

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
            join: None,
            advertise: None,
            join_token: None,
        }
    }
}
