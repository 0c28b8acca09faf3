//! The background healers, run while the config asks for them: hinted handoff's
//! deliveries every second, anti-entropy's pass every `anti_entropy_ms`. Each round
//! reads the cluster in force, so a reload that turns one on or off takes effect at the
//! next round.

use std::sync::Weak;
use std::time::{Duration, Instant};

use crate::{anti_entropy, handoff, Proxy};

/// How often hints are looked for.
pub const HANDOFF_EVERY: Duration = Duration::from_secs(1);

/// Starts the healers; they end when the proxy is dropped.
pub fn keep_healing(proxy: Weak<Proxy>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last_pass: Option<Instant> = None;
        loop {
            tokio::time::sleep(HANDOFF_EVERY).await;
            let Some(proxy) = proxy.upgrade() else {
                return;
            };
            let cluster = proxy.live.get();
            let c = cluster.consistency;
            if c.hinted_handoff {
                handoff::deliver(&proxy, &cluster).await;
            }
            let due =
                last_pass.is_none_or(|at| at.elapsed() >= Duration::from_millis(c.anti_entropy_ms));
            if c.anti_entropy && due {
                anti_entropy::pass(&proxy, &cluster).await;
                last_pass = Some(Instant::now());
            }
        }
    })
}
