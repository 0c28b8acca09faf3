//! Slabs: where the node's own copies live, packed end to end in blocks of 1 MiB.
//!
//! A copy in an allocation of its own pays for the allocator: glibc puts an 8-byte
//! header before each block and rounds it up to 16 bytes, so a 119-byte copy (16-byte
//! key, 100-byte value) takes 128. In a slab it takes its bytes plus a 4-byte length,
//! and the map that finds it holds an 8-byte [`Loc`] instead of a 16-byte pointer.
//!
//! A copy is written once and never changed in place: storing a key again appends the
//! new copy and leaves the old one **dead** (counted, not reused). A slab more than half
//! dead is queued for compaction: [`crate::copies`], which knows which copies are still
//! the live ones, appends those anew and releases the slab. A compaction moves at most
//! half a slab, paid for by at least half a slab of dead bytes: O(1) per write on
//! average, and never more than one slab's copying at once (no pause that grows with
//! the node).
//!
//! A copy bigger than a quarter of a slab gets a slab of its own, exactly its size, so
//! a large value never leaves most of a slab empty and is freed as soon as it dies.

/// How many bytes an ordinary slab holds. Reserved, not touched: a node with three keys
/// has 1 MiB of address space and one memory page of it in use.
const SLAB: usize = 1 << 20;

/// Copies bigger than this get a slab of their own.
const BIG: usize = SLAB / 4;

/// The length written before each copy in an ordinary slab (a `u32`, little-endian).
const LEN: usize = 4;

/// Where a copy lies: which slab, and how far into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    slab: u32,
    offset: u32,
}

#[derive(Default)]
struct Slab {
    /// `[u32 length][copy]`, end to end; or, for a big copy, the copy alone.
    bytes: Vec<u8>,
    /// Bytes of copies that were replaced or removed since.
    dead: usize,
    /// Holds one big copy, with no length in front: the slab's length is the copy's.
    big: bool,
    /// Waiting in [`Slabs::wasteful`], so it is queued once.
    queued: bool,
}

/// Every slab, the one being filled, and those worth compacting.
#[derive(Default)]
pub struct Slabs {
    /// Indexed by [`Loc::slab`]; a released slab stays as an empty `Slab` until reused.
    slabs: Vec<Slab>,
    /// Released slots, reused before the vector grows.
    free: Vec<u32>,
    /// The ordinary slab new copies are appended to.
    open: Option<u32>,
    /// Slabs more than half dead, for the owner to compact.
    wasteful: Vec<u32>,
}

impl Slabs {
    /// Stores `copy` and answers where it lies.
    pub fn append(&mut self, copy: &[u8]) -> Loc {
        if copy.len() > BIG {
            let slab = self.add(Slab {
                bytes: copy.to_vec(),
                big: true,
                ..Slab::default()
            });
            return Loc { slab, offset: 0 };
        }
        let room = |s: &Slab| s.bytes.capacity() - s.bytes.len();
        let slab = match self.open {
            Some(open) if room(&self.slabs[open as usize]) >= LEN + copy.len() => open,
            _ => self.open_another(),
        };
        let bytes = &mut self.slabs[slab as usize].bytes;
        // Both fit in a u32: an ordinary slab is 1 MiB and this copy at most a quarter of it.
        let offset = bytes.len() as u32;
        bytes.extend_from_slice(&(copy.len() as u32).to_le_bytes());
        bytes.extend_from_slice(copy);
        Loc { slab, offset }
    }

    /// The copy at `loc`, as [`Slabs::append`] was given it.
    pub fn get(&self, loc: Loc) -> &[u8] {
        let slab = &self.slabs[loc.slab as usize];
        if slab.big {
            return &slab.bytes;
        }
        let at = loc.offset as usize;
        let mut len = [0; LEN];
        len.copy_from_slice(&slab.bytes[at..at + LEN]);
        let start = at + LEN;
        &slab.bytes[start..start + u32::from_le_bytes(len) as usize]
    }

    /// Marks the copy at `loc` dead (it was replaced or removed), queueing its slab for
    /// compaction when more than half of it is.
    pub fn kill(&mut self, loc: Loc) {
        let slab = &self.slabs[loc.slab as usize];
        let len = self.get(loc).len() + if slab.big { 0 } else { LEN };
        self.slabs[loc.slab as usize].dead += len;
        if self.open != Some(loc.slab) {
            self.queue_if_wasteful(loc.slab);
        }
    }

    /// A slab more than half dead, to compact: the owner moves its live copies with
    /// [`Slabs::append`], then hands it back with [`Slabs::release`].
    pub fn next_wasteful(&mut self) -> Option<u32> {
        self.wasteful.pop()
    }

    /// Where every copy in `slab` lies, live or dead.
    pub fn locs(&self, slab: u32) -> Vec<Loc> {
        let s = &self.slabs[slab as usize];
        let mut locs = Vec::new();
        let mut at = 0;
        while at < s.bytes.len() {
            let loc = Loc {
                slab,
                offset: at as u32,
            };
            locs.push(loc);
            at += if s.big {
                s.bytes.len()
            } else {
                LEN + self.get(loc).len()
            };
        }
        locs
    }

    /// Frees a slab whose live copies were moved; its slot is reused later.
    pub fn release(&mut self, slab: u32) {
        self.slabs[slab as usize] = Slab::default();
        self.free.push(slab);
    }

    /// Slabs holding memory (for tests: compaction gives it back).
    pub fn in_use(&self) -> usize {
        self.slabs.len() - self.free.len()
    }

    /// Starts a fresh ordinary slab; the one it replaces is full, and is queued if it
    /// is mostly dead already (it could not be while it was open).
    fn open_another(&mut self) -> u32 {
        if let Some(full) = self.open.take() {
            self.queue_if_wasteful(full);
        }
        let slab = self.add(Slab {
            bytes: Vec::with_capacity(SLAB),
            ..Slab::default()
        });
        self.open = Some(slab);
        slab
    }

    fn add(&mut self, slab: Slab) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.slabs[i as usize] = slab;
                i
            }
            None => {
                self.slabs.push(slab);
                (self.slabs.len() - 1) as u32
            }
        }
    }

    fn queue_if_wasteful(&mut self, slab: u32) {
        let s = &mut self.slabs[slab as usize];
        if !s.queued && s.dead * 2 > s.bytes.len() {
            s.queued = true;
            self.wasteful.push(slab);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gives_back_what_it_was_given() {
        let mut slabs = Slabs::default();
        let small = slabs.append(b"abc");
        let empty = slabs.append(b"");
        let big = slabs.append(&vec![7; BIG + 1]);
        assert_eq!(slabs.get(small), b"abc");
        assert_eq!(slabs.get(empty), b"");
        assert_eq!(slabs.get(big), &vec![7; BIG + 1][..]);
        assert_eq!(slabs.locs(small.slab), vec![small, empty]);
        assert_eq!(slabs.in_use(), 2);
    }

    /// A full slab starts another; once more than half of a full one is dead, it is
    /// queued, once; a released slot is reused.
    #[test]
    fn queues_mostly_dead_slabs() {
        let mut slabs = Slabs::default();
        let copy = vec![1; 1000];
        let locs: Vec<Loc> = (0..2000).map(|_| slabs.append(&copy)).collect();
        let first = locs[0].slab;
        assert_ne!(locs[1999].slab, first, "1 MiB holds about 1040 such copies");
        let in_first: Vec<Loc> = locs.iter().copied().filter(|l| l.slab == first).collect();
        for loc in &in_first[..in_first.len() / 2] {
            slabs.kill(*loc);
        }
        assert_eq!(
            slabs.next_wasteful(),
            None,
            "half dead is not more than half"
        );
        slabs.kill(in_first[in_first.len() - 1]);
        slabs.kill(in_first[in_first.len() - 2]);
        assert_eq!(slabs.next_wasteful(), Some(first));
        assert_eq!(slabs.next_wasteful(), None);
        slabs.release(first);
        let big = slabs.append(&vec![2; BIG + 1]);
        assert_eq!(big.slab, first);
        slabs.kill(big);
        assert_eq!(
            slabs.next_wasteful(),
            Some(first),
            "a dead big copy frees its slab"
        );
    }
}
