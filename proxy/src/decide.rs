//! What the nodes' answers add up to: the decision part of carrying out a plan, apart
//! from the HTTP, so it reads (and is tested) as plain rules.
//!
//! - A write (to every home at once) is **done** when at least one node stored it; when
//!   every node gave the same client error (404 for a delete of a missing key), that is
//!   the answer; otherwise the nodes **failed**: 504 when every one timed out, else 502.
//! - A read (the homes one after the other) **ends** at the first 200. When none gave
//!   one, the key is **not found** only if every node said 404: a node that did not
//!   answer may hold it, so then the read is unknown (failed: 502, or 504 when every
//!   failure was a timeout).

use hyper::StatusCode;

use crate::upstream::{Answer, Failure, NodeError};

/// What one node said, as far as the decision goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Said {
    Answered(StatusCode),
    TimedOut,
    /// Refused, reset, TLS failed, the answer broke off.
    Failed,
}

impl Said {
    pub fn of(result: &Result<Answer, NodeError>) -> Said {
        match result {
            Ok(a) => Said::Answered(a.status),
            Err(NodeError {
                failure: Failure::Timeout(_),
                ..
            }) => Said::TimedOut,
            Err(_) => Said::Failed,
        }
    }
}

/// What the request comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It worked on this many nodes.
    Done(usize),
    /// Every node gave this same client error: that is the answer.
    Refused(StatusCode),
    /// Every node said the key is not there.
    NotFound,
    /// The nodes failed: 504 when every one timed out, else 502.
    Failed(StatusCode),
}

/// A write sent to every home at once.
pub fn write(said: &[Said]) -> Verdict {
    let stored = said
        .iter()
        .filter(|s| matches!(s, Said::Answered(st) if st.is_success()))
        .count();
    if stored > 0 {
        return Verdict::Done(stored);
    }
    match said.first() {
        Some(&Said::Answered(first))
            if first.is_client_error() && said.iter().all(|s| *s == Said::Answered(first)) =>
        {
            Verdict::Refused(first)
        }
        _ => Verdict::Failed(failure(said)),
    }
}

/// A read ends at the first node that has the key.
pub fn read_ends(said: Said) -> bool {
    said == Said::Answered(StatusCode::OK)
}

/// A read that asked every home and none had it: not found, or unknown.
pub fn read(said: &[Said]) -> Verdict {
    if said
        .iter()
        .all(|s| *s == Said::Answered(StatusCode::NOT_FOUND))
    {
        Verdict::NotFound
    } else {
        Verdict::Failed(failure(said))
    }
}

/// 504 when every node timed out (slow nodes or black holes), else 502.
fn failure(said: &[Said]) -> StatusCode {
    if !said.is_empty() && said.iter().all(|s| *s == Said::TimedOut) {
        StatusCode::GATEWAY_TIMEOUT
    } else {
        StatusCode::BAD_GATEWAY
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Said::*;

    const OK: Said = Answered(StatusCode::OK);
    const MISSING: Said = Answered(StatusCode::NOT_FOUND);
    const BROKEN: Said = Answered(StatusCode::INTERNAL_SERVER_ERROR);

    #[test]
    fn a_write_is_done_when_one_node_stored_it() {
        assert_eq!(write(&[OK, TimedOut, Failed]), Verdict::Done(1));
        assert_eq!(write(&[OK, OK]), Verdict::Done(2));
    }

    #[test]
    fn the_same_client_error_everywhere_is_the_answer() {
        assert_eq!(
            write(&[MISSING, MISSING]),
            Verdict::Refused(StatusCode::NOT_FOUND)
        );
        assert_eq!(
            write(&[MISSING, Failed]),
            Verdict::Failed(StatusCode::BAD_GATEWAY)
        );
        assert_eq!(
            write(&[BROKEN, BROKEN]),
            Verdict::Failed(StatusCode::BAD_GATEWAY)
        );
    }

    #[test]
    fn timeouts_everywhere_are_a_504() {
        assert_eq!(
            write(&[TimedOut, TimedOut]),
            Verdict::Failed(StatusCode::GATEWAY_TIMEOUT)
        );
        assert_eq!(
            read(&[TimedOut]),
            Verdict::Failed(StatusCode::GATEWAY_TIMEOUT)
        );
        assert_eq!(
            read(&[TimedOut, Failed]),
            Verdict::Failed(StatusCode::BAD_GATEWAY)
        );
    }

    #[test]
    fn a_read_is_not_found_only_when_every_node_says_so() {
        assert!(read_ends(OK) && !read_ends(MISSING) && !read_ends(TimedOut));
        assert_eq!(read(&[MISSING, MISSING]), Verdict::NotFound);
        assert_eq!(
            read(&[MISSING, TimedOut]),
            Verdict::Failed(StatusCode::BAD_GATEWAY)
        );
        assert_eq!(
            read(&[Failed, MISSING]),
            Verdict::Failed(StatusCode::BAD_GATEWAY)
        );
    }
}
