//! Consistent hashing: keys and node tokens on one ring; a key goes to the first token
//! clockwise from it (see [`crate::placement::ring`] for the arithmetic). When the class
//! changes, only the keys on the arcs the new (or gone) node's tokens cover move.

use std::sync::Arc;

use super::{Mode, Params};
use crate::placement::ring::Ring;
use crate::placement::Placement;

pub struct ConsistentHashing;

impl Mode for ConsistentHashing {
    fn name(&self) -> &'static str {
        "consistent-hashing"
    }

    fn rule(&self) -> &'static str {
        "each key goes to the first node token clockwise from its hash on a ring; a new node takes only its arcs"
    }

    fn placement(&self, names: Vec<String>, params: &Params) -> Arc<dyn Placement> {
        Arc::new(Ring::new(names, params.vnodes))
    }
}
