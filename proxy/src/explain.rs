//! `GET /explain?key=K`: where a key goes, step by step, as JSON and in words, so a student
//! can check it on paper (or with `examples/placement/`). The steps come from the
//! cluster's placement, whatever the mode; the top-level fields (`sha256`, `integer`,
//! `mod_n`, `index`, `node`, ...) stay for the scripts that read them.

use serde_json::{json, Value};

use crate::cluster::Cluster;
use crate::mode::{self, Op};
use crate::placement::modulo::to_decimal;

/// Where `key` goes in `cluster`: the steps, the nodes writes go to and reads try, and
/// the SHA-256 arithmetic every mode starts from.
pub fn explain(cluster: &Cluster, key: &str) -> Value {
    let sha256 = mode::sha256_hex(key);
    let integer = to_decimal(&mode::sha256(key));
    let n = cluster.nodes.len();
    let remainder = mode::placement(key, n);
    let names = |list: &[usize]| -> Vec<String> {
        list.iter()
            .map(|&i| cluster.nodes[i].name.clone())
            .collect()
    };
    let writes = cluster.plan(Op::Write, key).nodes().to_vec();
    let reads = cluster.plan(Op::Read, key).nodes().to_vec();
    let index = reads.first().copied().unwrap_or(0);
    let node = cluster
        .nodes
        .get(index)
        .map(|n| n.name.clone())
        .unwrap_or_default();
    let steps = cluster.placement.explain(key, cluster.copies);
    // On the ring, where the key sits and the token it walks to, for the page's drawing.
    let ring = cluster.placement.as_ring().map(|ring| {
        let (position, token) = ring.walk(key);
        json!({"position": position, "token": token})
    });
    let words = match cluster.mode.name() {
        "replication" => format!(
            "In replication mode every key lives on every node, so \"{key}\" does too: \
             writes go to {} at once; reads try {}, and the first that has it answers.",
            names(&writes).join(", "),
            names(&reads).join(", then "),
        ),
        "sharding" => format!(
            "SHA-256(\"{key}\") = {sha256}. As a number that is {integer}; {integer} mod {n} = {remainder}. \
             In sharding mode {rule}: writes go to {writes}; reads ask {reads}.",
            rule = cluster.mode.rule(),
            writes = names(&writes).join(", "),
            reads = names(&reads).join(" then "),
        ),
        mode => format!(
            "In {mode} mode {rule}. For \"{key}\": {steps}. Writes go to {writes}; reads ask {reads}.",
            rule = cluster.mode.rule(),
            steps = steps
                .iter()
                .map(|s| format!("{} {}", s.what, s.value))
                .collect::<Vec<_>>()
                .join("; "),
            writes = names(&writes).join(", "),
            reads = names(&reads).join(" then "),
        ),
    };
    json!({
        "key": key,
        "mode": cluster.mode.name(),
        "sha256": sha256,
        "integer": integer,
        "n": n,
        "mod_n": remainder,
        "index": index,
        "node": node,
        "replicas": cluster.copies,
        "writes_go_to": names(&writes),
        "reads_try": names(&reads),
        "python": format!("int(hashlib.sha256({}.encode()).hexdigest(), 16) % {n}", python_string(key)),
        "words": words,
        "steps": steps,
        "lit": names(&writes),
        "ring": ring,
    })
}

/// The key as a Python string literal, for the one-liner a student can paste.
fn python_string(key: &str) -> String {
    serde_json::to_string(key).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use crate::placement::modulo::to_decimal;

    #[test]
    fn long_division_is_right() {
        assert_eq!(to_decimal(&[0]), "0");
        assert_eq!(to_decimal(&[1, 0]), "256");
        assert_eq!(to_decimal(&[0xff; 8]), u64::MAX.to_string());
    }
}
