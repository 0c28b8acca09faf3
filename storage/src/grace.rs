//! Tombstone grace: deletions are remembered for a while (`--tombstone-grace-s`, one
//! lesson by default), then forgotten.
//!
//! A tombstone stops an older write that arrives late (a slow replica, a hint handed
//! over, a read repair) from bringing a deleted key back. Kept for ever, tombstones would
//! fill the node with keys nobody holds; so a background pass drops every tombstone
//! whose version's milliseconds are older than now minus the grace.
//!
//! The price, and the lesson: a replica that was down for longer than the grace missed
//! the deletion *and* its tombstone is gone everywhere else, so when it comes back its
//! old copy looks like the only one, and read repair or anti-entropy may bring the
//! deleted key back to life.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::db::Db;

/// How often the pass runs: a tenth of the grace, between 100 ms and a minute.
pub fn interval(grace: Duration) -> Duration {
    (grace / 10).clamp(Duration::from_millis(100), Duration::from_secs(60))
}

/// Milliseconds since 1970 by the wall clock, the unit versions are written in.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Drops expired tombstones every [`interval`], for ever (the server aborts it on stop).
/// A scan of the keys under the write lock, only when the node holds tombstones: cheap
/// at a classroom's scale.
pub async fn run(db: Db, grace: Duration, node: String) {
    let every = interval(grace);
    loop {
        tokio::time::sleep(every).await;
        let cutoff = now_ms().saturating_sub(grace.as_millis() as u64);
        match db.drop_tombstones_before(cutoff) {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                "{node} dropped {n} tombstones older than the {} s grace",
                grace.as_secs()
            ),
            Err(e) => tracing::warn!("{node} could not drop old tombstones: {e:?}"),
        }
    }
}
