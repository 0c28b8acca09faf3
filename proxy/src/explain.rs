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
    let replicated = writes.len() == n && n > 1 && cluster.mode.name() == "replication";
    let (words, steps) = if replicated {
        let all = names(&writes).join(", ");
        let order = names(&reads).join(", then ");
        (
            format!(
                "In replication mode every key lives on every node, so \"{key}\" does too: \
                 writes go to {all} at once; reads try {order}, and the first that has it answers."
            ),
            vec![
                step("key", key, None),
                step("lives on", &format!("every node: {all}"), None),
                step("writes go to", &format!("{all}, at once"), None),
                step(
                    "reads try",
                    &format!("{order} (the first that has it answers)"),
                    None,
                ),
            ],
        )
    } else {
        (
            format!(
                "SHA-256(\"{key}\") = {sha256}. As a number that is {integer}; {integer} mod {n} = {remainder}. \
                 In {mode} mode {rule}: writes go to {writes}; reads ask {reads}.",
                mode = cluster.mode.name(),
                rule = cluster.mode.rule(),
                writes = names(&writes).join(", "),
                reads = names(&reads).join(" then "),
            ),
            vec![
                step("key", key, None),
                step("SHA-256 of its UTF-8 bytes", &sha256, None),
                step("read as one number", &shorten(&integer), Some(&integer)),
                step(
                    &format!("mod {n}, the number of nodes"),
                    &format!("{} mod {n} = {remainder}", shorten(&integer)),
                    None,
                ),
                step("index in the config's order", &index.to_string(), None),
                step("node", &node, None),
            ],
        )
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
        "writes_go_to": names(&writes),
        "reads_try": names(&reads),
        "python": format!("int(hashlib.sha256({}.encode()).hexdigest(), 16) % {n}", python_string(key)),
        "words": words,
        "steps": steps,
        "lit": names(&writes),
    })
}

/// One line of the explanation: what it is, its value (shortened), and the whole value
/// when it was shortened.
fn step(what: &str, value: &str, full: Option<&str>) -> Value {
    json!({"what": what, "value": value, "full": full})
}

/// A long number as its first and last digits: `11579…39936 (78 digits)`.
fn shorten(number: &str) -> String {
    if number.len() <= 16 {
        return number.to_string();
    }
    format!(
        "{}…{} ({} digits)",
        &number[..6],
        &number[number.len() - 6..],
        number.len()
    )
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
