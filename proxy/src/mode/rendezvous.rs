//! Rendezvous (highest random weight): every node scores the key, the highest wins (see
//! [`crate::placement::rendezvous`]). When the class changes, only the keys the new node
//! now scores highest on move, or those of the node that left.

use std::sync::Arc;

use super::{Mode, Params};
use crate::placement::rendezvous::Rendezvous as Scores;
use crate::placement::Placement;

pub struct Rendezvous;

impl Mode for Rendezvous {
    fn name(&self) -> &'static str {
        "rendezvous"
    }

    fn rule(&self) -> &'static str {
        "every node scores each key with SHA-256 of its name and the key; the highest score holds it"
    }

    fn placement(&self, names: Vec<String>, _params: &Params) -> Arc<dyn Placement> {
        Arc::new(Scores { names })
    }
}
