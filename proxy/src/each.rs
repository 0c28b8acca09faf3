//! Doing one thing to many nodes at once: a replicated write, the /state page's fetches,
//! `doctor -c` over a class. Each node gets its own task, so a slow node delays only
//! itself and the whole takes as long as the slowest one (bounded by the timeout).

use std::future::Future;

use tokio::task::JoinSet;

use crate::cluster::NodeAddr;

/// Runs `work` on every node concurrently and answers in the nodes' order. A node whose
/// task was lost (it panicked) is `None`, for the caller to report as failed.
pub async fn each_node<T, F, Fut>(nodes: Vec<NodeAddr>, work: F) -> Vec<(NodeAddr, Option<T>)>
where
    T: Send + 'static,
    F: Fn(NodeAddr) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let mut tasks = JoinSet::new();
    for (slot, node) in nodes.iter().enumerate() {
        let job = work(node.clone());
        tasks.spawn(async move { (slot, job.await) });
    }
    let mut results: Vec<Option<T>> = nodes.iter().map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((slot, result)) = joined {
            results[slot] = Some(result);
        }
    }
    nodes.into_iter().zip(results).collect()
}
