//! `GET /explain?key=K`: the placement arithmetic for one key, step by step, as JSON and
//! in words, so a student can check on paper (or in Python) where a key goes.

use serde_json::{json, Value};

use crate::cluster::Cluster;
use crate::mode::{self, Op};

/// The arithmetic for `key` in `cluster`: digest, integer, remainder, chosen node, and
/// (in replication) the order reads try the nodes.
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
    let writes = cluster.mode.plan(Op::Write, key, n).nodes().to_vec();
    let reads = cluster.mode.plan(Op::Read, key, n).nodes().to_vec();
    let index = reads.first().copied().unwrap_or(0);
    let node = cluster
        .nodes
        .get(index)
        .map(|n| n.name.clone())
        .unwrap_or_default();
    let words = format!(
        "SHA-256(\"{key}\") = {sha256}. As a number that is {integer}; {integer} mod {n} = {remainder}. \
         In {mode} mode {rule}: writes go to {writes}; reads ask {reads}.",
        mode = cluster.mode.name(),
        rule = cluster.mode.rule(),
        writes = names(&writes).join(", "),
        reads = names(&reads).join(" then "),
    );
    json!({
        "key": key,
        "mode": cluster.mode.name(),
        "sha256": sha256,
        "integer": integer,
        "n": n,
        "mod_n": remainder,
        "index": index,
        "node": node,
        "writes_go_to": names(&writes),
        "reads_try": names(&reads),
        "python": format!("int(hashlib.sha256({}.encode()).hexdigest(), 16) % {n}", python_string(key)),
        "words": words,
    })
}

/// A big-endian unsigned integer in decimal, by long division (the digest is 256 bits,
/// too big for any machine integer).
fn to_decimal(bytes: &[u8]) -> String {
    let mut number: Vec<u8> = bytes.to_vec();
    let mut digits = Vec::new();
    while number.iter().any(|&b| b != 0) {
        let mut rest = 0u32;
        for byte in number.iter_mut() {
            let cur = rest * 256 + *byte as u32;
            *byte = (cur / 10) as u8;
            rest = cur % 10;
        }
        digits.push(b'0' + rest as u8);
    }
    if digits.is_empty() {
        return "0".into();
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

/// The key as a Python string literal, for the one-liner a student can paste.
fn python_string(key: &str) -> String {
    serde_json::to_string(key).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::to_decimal;

    #[test]
    fn long_division_is_right() {
        assert_eq!(to_decimal(&[0]), "0");
        assert_eq!(to_decimal(&[1, 0]), "256");
        assert_eq!(to_decimal(&[0xff; 8]), u64::MAX.to_string());
    }
}
