//! Sharding's placement: the node a key lives on is
//!
//! ```text
//! index = int(hashlib.sha256(key.encode()).hexdigest(), 16) % N
//! ```
//!
//! SHA-256 of the key's UTF-8 bytes, read as one big-endian number, mod the number of
//! nodes, counted in the config's order from 0. With `replicas: R` the next R-1 indexes
//! (wrapping around) hold the other copies. Simple, even, and the lesson: when N changes,
//! most keys get another index (`examples/placement/modulo.py`).

use super::{names, sha256, Placement, Step};

pub struct Modulo {
    pub names: Vec<String>,
}

/// `SHA-256(key) mod n`, reduced one byte at a time (`r = (r * 256 + byte) % n`), which
/// gives Python's remainder without big numbers.
pub fn index(key: &str, n: usize) -> usize {
    let n = n.max(1) as u128;
    sha256(key)
        .iter()
        .fold(0u128, |r, &byte| (r * 256 + byte as u128) % n) as usize
}

/// A big-endian unsigned integer in decimal, by long division (the digest is 256 bits,
/// too big for any machine integer).
pub fn to_decimal(bytes: &[u8]) -> String {
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

impl Placement for Modulo {
    fn preference(&self, key: &str, count: usize) -> Vec<usize> {
        let n = self.names.len();
        let first = index(key, n);
        (0..n.min(count)).map(|k| (first + k) % n).collect()
    }

    fn explain(&self, key: &str, count: usize) -> Vec<Step> {
        let n = self.names.len();
        let digest = sha256(key);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let integer = to_decimal(&digest);
        let first = index(key, n);
        let homes = self.preference(key, count);
        let mut steps = vec![
            Step::new("key", key),
            Step::new("SHA-256 of its UTF-8 bytes", hex),
            Step::long("read as one number", integer.clone()),
            Step::new(
                format!("mod {n}, the number of nodes"),
                format!("{} mod {n} = {first}", super::shorten(&integer)),
            ),
            Step::new("index in the config's order", first.to_string()),
            Step::new("node", self.names[first].clone()),
        ];
        if homes.len() > 1 {
            steps.push(Step::new(
                format!("{} copies: the next indexes", homes.len()),
                names(&self.names, &homes),
            ));
        }
        steps
    }
}
