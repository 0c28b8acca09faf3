//! `GET /events`: the page's live stream (server-sent events). Each sweep of the nodes
//! is pushed as one `data:` line holding the same JSON as `/state.json`, so an open
//! page updates the moment a sweep lands and asks nothing itself. A comment line every
//! 15 s keeps proxies on the way (ngrok) from closing an idle stream. Pages fall back
//! to polling `/state.json` when the stream fails.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Frame;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use storage::http::Response;
use tokio::sync::mpsc;

use crate::snapshot::Snapshots;

/// How often an idle stream says it is alive.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The stream's body: frames handed over by the task that follows the sweeps.
struct Stream(mpsc::Receiver<Bytes>);

impl hyper::body::Body for Stream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|next| next.map(|b| Ok(Frame::data(b))))
    }
}

/// Opens a stream of sweeps: the latest at once, then each new one.
pub fn stream(snapshots: &Snapshots) -> Response {
    let mut sweeps = snapshots.subscribe();
    let closed = snapshots.closed();
    let (tx, rx) = mpsc::channel::<Bytes>(2);
    tokio::spawn(async move {
        tokio::pin!(closed);
        let mut sent = None;
        loop {
            let latest = sweeps.borrow_and_update().clone();
            if let Some(sweep) = latest.filter(|s| sent != Some(s.number)) {
                sent = Some(sweep.number);
                let mut line = Vec::with_capacity(sweep.json.len() + 8);
                line.extend_from_slice(b"data: ");
                line.extend_from_slice(&sweep.json);
                line.extend_from_slice(b"\n\n");
                if tx.send(Bytes::from(line)).await.is_err() {
                    return; // the page went away
                }
            }
            tokio::select! {
                _ = &mut closed => return, // the proxy stops: end the stream
                changed = sweeps.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(KEEP_ALIVE) => {
                    if tx.send(Bytes::from_static(b": still here\n\n")).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    let mut res = hyper::Response::new(Stream(rx).boxed());
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}
