//! What the root answers when there are several pools: the side-by-side page (each
//! pool's own live page in a column), and `/state.json`, `/health`, `/config` and
//! `/metrics` covering every pool.

use std::net::IpAddr;
use std::sync::atomic::Ordering;

use askama::Template;
use hyper::StatusCode;
use serde_json::json;
use storage::http::{self, Response};

use super::Pools;
use crate::config::Config;
use crate::pool_config::PoolConfig;

/// The side-by-side page: one column per pool, each its own live page.
#[derive(Template)]
#[template(path = "pools.html")]
struct Page<'a> {
    pools: Vec<(&'a str, &'static str, bool)>,
}

impl Pools {
    pub(super) fn page(&self) -> String {
        let pools = self
            .pools
            .iter()
            .map(|p| {
                (
                    p.name.as_str(),
                    p.proxy.live.get().mode.name(),
                    p.mirror.load(Ordering::Relaxed),
                )
            })
            .collect();
        Page { pools }
            .render()
            .unwrap_or_else(|e| format!("the page failed to render: {e}"))
    }

    /// Every pool's page data, each from its own snapshot.
    pub(super) async fn state_json(&self, viewer: IpAddr) -> Response {
        let mut text = String::from("{\"pools\":[");
        for (i, pool) in self.pools.iter().enumerate() {
            let cluster = pool.proxy.live.get();
            let sweep = pool
                .proxy
                .snapshots
                .fresh(&pool.proxy, &cluster, Some(viewer))
                .await;
            if i > 0 {
                text.push(',');
            }
            text.push_str(&format!(
                "{{\"name\":{},\"mode\":{},\"mirror\":{},\"path\":{},\"state\":",
                json!(pool.name),
                json!(cluster.mode.name()),
                pool.mirror.load(Ordering::Relaxed),
                json!(format!("/{}/", pool.name))
            ));
            text.push_str(&String::from_utf8_lossy(&sweep.json));
            text.push('}');
        }
        text.push_str("]}");
        http::json_text(StatusCode::OK, text)
    }

    pub(super) async fn health(&self, viewer: IpAddr) -> Response {
        let mut pools = Vec::new();
        let (mut up, mut total) = (0, 0);
        for pool in &self.pools {
            let cluster = pool.proxy.live.get();
            let mut h = pool.proxy.health_json(&cluster, Some(viewer)).await;
            up += h["nodes_up"].as_u64().unwrap_or(0);
            total += h["nodes_total"].as_u64().unwrap_or(0);
            h["name"] = json!(pool.name);
            h["mirror"] = json!(pool.mirror.load(Ordering::Relaxed));
            pools.push(h);
        }
        http::json(
            StatusCode::OK,
            &json!({"status": "ok", "nodes_up": up, "nodes_total": total, "pools": pools}),
        )
    }

    /// The config in force: the shared settings and every pool (joined nodes included),
    /// without the tokens.
    pub(super) fn config_yaml(&self) -> Response {
        let mut top = self.first().live.get().effective_config();
        top.pools = self
            .pools
            .iter()
            .map(|p| {
                PoolConfig::from_config(
                    &p.name,
                    p.mirror.load(Ordering::Relaxed),
                    &p.proxy.live.get().effective_config(),
                )
            })
            .collect();
        let shared = Config {
            pools: top.pools,
            timeout_ms: top.timeout_ms,
            max_joined: top.max_joined,
            join_allow_loopback: top.join_allow_loopback,
            body_timeout_ms: top.body_timeout_ms,
            send_timeout_ms: top.send_timeout_ms,
            max_connections: top.max_connections,
            ..Config::default()
        };
        http::with_type(
            StatusCode::OK,
            "application/yaml; charset=utf-8",
            shared.to_yaml_without_token(),
        )
    }

    /// Every pool's metrics, labelled `pool`, and the shared client's once.
    pub(super) fn metrics(&self) -> Response {
        let mut registry = <prometheus_client::registry::Registry>::with_prefix("kv");
        crate::metrics::register_shared(&self.first().upstream, &mut registry);
        for pool in &self.pools {
            let sub = registry.sub_registry_with_label((
                std::borrow::Cow::Borrowed("pool"),
                std::borrow::Cow::Owned(pool.name.clone()),
            ));
            pool.proxy.metrics.register(&pool.proxy, sub);
        }
        crate::metrics::encoded(&registry)
    }
}
