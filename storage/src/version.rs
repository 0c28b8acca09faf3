//! A write's version, `X-Kv-Version: <ms>.<counter>.<id>`: when it was made and by whom.
//!
//! A proxy stamps each write with the wall-clock milliseconds, a counter that tells apart
//! writes in the same millisecond, and its own id. Versions are ordered by (ms, counter,
//! id), the id compared as bytes, so two replicas that saw the same writes in different
//! orders keep the same one: the last writer wins, and every node agrees on who that was.
//!
//! A copy written without a version is *unversioned* and counts as older than any
//! version (`Option<Version>` orders `None` first, which is exactly that).
//!
//! One version has one spelling: no `+`, no leading zeros. Its text is part of the
//! digests two nodes compare, so `Display` gives back exactly the text that was parsed.

use std::fmt;
use std::str::FromStr;

/// The header a write carries its version in, and an answer the version now held.
pub const HEADER: &str = "x-kv-version";

/// The longest writer id, in characters of `[A-Za-z0-9_-]`.
pub const MAX_ID_LEN: usize = 32;

/// `ms.counter.id`. The field order is the comparison order (`derive(Ord)` compares
/// fields top to bottom, and `String` compares as bytes).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Wall-clock milliseconds since 1970 when the write was made: also what the
    /// tombstone grace measures a deletion's age by.
    ms: u64,
    /// Tells apart writes made by one writer in the same millisecond.
    counter: u32,
    /// Who made it: breaks ties between writers whose clocks and counters agree.
    id: String,
}

/// A header that is not a version; its `Display` is the sentence a client sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadVersion(pub String);

impl fmt::Display for BadVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "X-Kv-Version must look like 1765000000000.0.proxy-id (milliseconds.counter.writer): got {:?}",
            self.0.chars().take(100).collect::<String>()
        )
    }
}

impl std::error::Error for BadVersion {}

impl Version {
    /// A version from its parts; the id must be 1–32 characters of `[A-Za-z0-9_-]`.
    pub fn new(ms: u64, counter: u32, id: &str) -> Result<Version, BadVersion> {
        if id.is_empty()
            || id.len() > MAX_ID_LEN
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(BadVersion(format!("{ms}.{counter}.{id}")));
        }
        Ok(Version {
            ms,
            counter,
            id: id.to_string(),
        })
    }

    pub fn ms(&self) -> u64 {
        self.ms
    }

    pub fn counter(&self) -> u32 {
        self.counter
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

/// Digits only, and no leading zero unless the number is 0: the one spelling `Display`
/// gives back.
fn canonical_number<T: FromStr>(text: &str) -> Option<T> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    if !digits || (text.len() > 1 && text.starts_with('0')) {
        return None;
    }
    text.parse().ok()
}

impl FromStr for Version {
    type Err = BadVersion;

    fn from_str(text: &str) -> Result<Version, BadVersion> {
        let bad = || BadVersion(text.to_string());
        let mut parts = text.splitn(3, '.');
        let ms = parts.next().and_then(canonical_number).ok_or_else(bad)?;
        let counter = parts.next().and_then(canonical_number).ok_or_else(bad)?;
        let id = parts.next().ok_or_else(bad)?;
        Version::new(ms, counter, id).map_err(|_| bad())
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.ms, self.counter, self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        text.parse().unwrap()
    }

    #[test]
    fn parses_and_prints_the_same_text() {
        for text in [
            "1765000000000.0.proxy-id",
            "0.0.a",
            "18446744073709551615.4294967295.A_b-9",
        ] {
            assert_eq!(v(text).to_string(), text);
        }
        let parsed = v("12.3.p1");
        assert_eq!((parsed.ms(), parsed.counter(), parsed.id()), (12, 3, "p1"));
    }

    #[test]
    fn orders_by_ms_then_counter_then_id() {
        assert!(v("2.0.a") > v("1.9.z"));
        assert!(v("1.10.a") > v("1.9.z"));
        assert!(v("1.1.b") > v("1.1.a"));
        assert!(v("1.1.a") > v("1.1.B"), "ids compare as bytes");
        assert!(
            Some(v("0.0.a")) > None,
            "unversioned is older than any version"
        );
    }

    #[test]
    fn refuses_what_is_not_a_version() {
        let long_id = format!("1.0.{}", "x".repeat(33));
        for text in [
            "",
            "1",
            "1.2",
            "1.2.",
            "a.2.x",
            "1.b.x",
            "+1.2.x",
            "01.2.x",
            "1.02.x",
            "1.2.x.y",
            "1.2.x y",
            "1.2.é",
            "18446744073709551616.0.x",
            "1.4294967296.x",
            &long_id,
        ] {
            let err = text.parse::<Version>().unwrap_err();
            assert!(err.to_string().starts_with("X-Kv-Version must look like"));
        }
    }
}
