//! Students' nodes joining and leaving the class: `POST /join` and `POST /leave`.

use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use storage::http::{HttpError, Response};

use crate::Proxy;

/// What changes for the keys when the number of nodes changes, in words.
pub fn placement_note(before: usize, after: usize) -> String {
    format!(
        "the number of nodes changed from {before} to {after}: SHA-256 mod {after} now places \
         most keys on another node than mod {before} did, so keys written before may be looked \
         for on a node that does not have them"
    )
}

impl Proxy {
    pub(crate) async fn join(&self, _req: Request<Incoming>, _peer: SocketAddr) -> Result<Response, HttpError> {
        Err(HttpError::new(StatusCode::FORBIDDEN, "joining is not built yet"))
    }

    pub(crate) async fn leave(&self, _req: Request<Incoming>) -> Result<Response, HttpError> {
        Err(HttpError::new(StatusCode::FORBIDDEN, "joining is not built yet"))
    }
}
