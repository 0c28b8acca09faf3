//! The configs shipped in `configs/` load as they are: a teacher starts from them.

use std::path::Path;

use proxy::config::Config;

fn load(name: &str) -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../configs")
        .join(name);
    Config::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `localhost.yml`: three nodes on 5000-5002, sharding, as the README starts them.
#[test]
fn localhost_is_three_sharded_nodes() {
    let c = load("localhost.yml");
    assert_eq!(c.mode, "sharding");
    let urls: Vec<&str> = c.nodes.iter().map(|n| n.url.as_str()).collect();
    assert_eq!(
        urls,
        [
            "http://localhost:5000",
            "http://localhost:5001",
            "http://localhost:5002"
        ]
    );
}

/// `localhost-replication.yml`: the same nodes, replicated.
#[test]
fn localhost_replication_is_the_same_nodes_replicated() {
    let c = load("localhost-replication.yml");
    assert_eq!(c.mode, "replication");
    assert_eq!(c.nodes, load("localhost.yml").nodes);
}

/// `compose.yml`: the compose services by name, each on the node's port inside the network.
#[test]
fn compose_names_the_compose_services() {
    let c = load("compose.yml");
    let urls: Vec<&str> = c.nodes.iter().map(|n| n.url.as_str()).collect();
    assert_eq!(
        urls,
        ["http://kv1:5000", "http://kv2:5000", "http://kv3:5000"]
    );
    let compose =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../compose.yaml"))
            .unwrap();
    for service in ["kv1:", "kv2:", "kv3:", "proxy:", "/configs/compose.yml"] {
        assert!(compose.contains(service), "compose.yaml lacks {service}");
    }
}

/// `students.example.yml`: https URLs as ngrok gives them, a LAN URL, and joining on.
#[test]
fn students_example_has_https_nodes_and_a_join_token() {
    let c = load("students.example.yml");
    assert!(c.nodes.iter().any(|n| n.url.starts_with("https://")));
    assert!(c.nodes.iter().any(|n| n.url.starts_with("http://192.168.")));
    assert!(c.join_token.is_some());
}

/// The placement lab's configs: the ring, rendezvous, and sharding with two copies, over
/// the lesson's three nodes.
#[test]
fn placement_configs_load() {
    let ring = load("ring.yml");
    assert_eq!(
        (ring.mode.as_str(), ring.vnodes, ring.replicas),
        ("consistent-hashing", Some(100), Some(1))
    );
    assert_eq!(ring.nodes, load("localhost.yml").nodes);
    assert_eq!(load("rendezvous.yml").mode, "rendezvous");
    let copies = load("sharding-replicas.yml");
    assert_eq!(
        (copies.mode.as_str(), copies.replicas),
        ("sharding", Some(2))
    );
}

/// `quorum.yml` and `handoff.yml`: the consistency lab's settings, on the same nodes.
#[test]
fn the_consistency_configs_set_what_their_comments_say() {
    use proxy::consistency::Quorum;
    let q = load("quorum.yml").consistency();
    assert_eq!(
        (q.write_quorum, q.read_quorum),
        (Some(Quorum::Count(2)), Some(Quorum::Count(2)))
    );
    assert!(q.read_repair && !q.hinted_handoff);
    let h = load("handoff.yml");
    assert_eq!(
        (h.mode.as_str(), h.replicas),
        ("consistent-hashing", Some(2))
    );
    assert!(h.consistency().hinted_handoff && h.consistency().anti_entropy);
    assert_eq!(h.nodes, load("localhost.yml").nodes);
}

/// `pools.yml`: a sharding pool and a mirrored replication pool, as its comment says.
#[test]
fn pools_is_sharding_beside_mirrored_replication() {
    let specs = proxy::pool_config::specs(&load("pools.yml"));
    let shape: Vec<(&str, &str, bool, usize)> = specs
        .iter()
        .map(|p| {
            (
                p.name.as_str(),
                p.config.mode.as_str(),
                p.mirror,
                p.config.nodes.len(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("sharded", "sharding", false, 3),
            ("replicated", "replication", true, 3)
        ]
    );
    let urls = |i: usize| -> Vec<String> {
        specs[i]
            .config
            .nodes
            .iter()
            .map(|n| n.url.clone())
            .collect()
    };
    let local: Vec<String> = load("localhost.yml")
        .nodes
        .into_iter()
        .map(|n| n.url)
        .collect();
    assert_eq!(
        urls(0),
        local,
        "the sharded pool is the lesson's three nodes"
    );
    assert!(urls(1).iter().all(|u| u.contains(":501")), "{:?}", urls(1));
}
