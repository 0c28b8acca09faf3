//! The data file (`--data FILE`): an append-only log of every change, replayed at start.
//!
//! Every write that changes the store (a put, a delete, a tombstone, a hint stored or
//! removed, a clear, a tombstone dropped after its grace) is appended as one record,
//! under the store's write lock and *before* the change is applied in memory and the node
//! answers 200: the file's order is the memory's order, and a write that could not be
//! appended (a full disk) is refused and not applied.
//!
//! Durability, honestly: each record is handed to the operating system with one `write`
//! call and no fsync. The data survives the process being killed (even `kill -9`, the
//! OS holds the bytes), but not the machine losing power. A compaction fsyncs its new
//! file before renaming it over the old one, so a crash mid-compaction leaves one whole
//! file or the other.
//!
//! A record is `[payload length: u32 LE][checksum: u32 LE][payload]`, the checksum being
//! FNV-1a 64 of the payload folded to 32 bits. At start the records are replayed in
//! order; the first one that is short (a write torn by a crash) or fails its checksum
//! ends the replay with one warning, and the file is cut back to the last good record,
//! so the next append does not land after garbage. It never stops the node from starting.
//!
//! The log grows with every overwrite; when it passes twice the size it had after the
//! last replay or compaction (and at least 1 MiB), it is rewritten with one record per
//! copy held ([`DataFile::compact`]); after a `/clear`, at once. The rewrite runs under
//! the store's write lock, so writes wait for it: a pause proportional to the data held
//! (a fraction of a second for a classroom's keys), in exchange for a file that never
//! misses a change made during it.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::buckets::fnv1a64;
use crate::entry::{Entry, EntryRef};
use crate::version::Version;

/// A log smaller than this is never compacted: rewriting tiny files buys nothing.
const MIN_COMPACT_BYTES: u64 = 1 << 20;

/// What one write did to the store: the unit the log records and replay re-applies.
/// Records hold results, not requests, so replay applies them without checking versions
/// or limits again.
pub enum Change {
    /// This node's own copy of a key (live, or a tombstone when the value is empty).
    Own(Entry),
    /// A key removed outright, no tombstone left.
    Remove(String),
    /// A copy held for another node (hinted handoff): the node's name and the copy.
    Hint(String, Entry),
    /// A hint given back: the node it was for, and the key.
    HintRemove(String, String),
    /// Everything gone: copies, tombstones, hints.
    Clear,
}

/// The open log, where the next record goes.
pub struct DataFile {
    path: PathBuf,
    /// Opened for appending: every `write` lands at the end, whatever came before.
    file: File,
    /// The file's length: where the next record starts, and where a failed append is
    /// cut back to.
    size: u64,
    /// The length right after the last replay or compaction: the log is compacted when
    /// it has doubled since.
    base: u64,
    /// Why appends are refused, once a failed append could not be cut back off the file:
    /// writing after a torn record would lose every later record at the next replay.
    broken: Option<String>,
}

fn field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn copy_fields(out: &mut Vec<u8>, e: EntryRef<'_>) {
    field(out, e.key_bytes());
    field(out, e.version().unwrap_or("").as_bytes());
    field(out, e.value().as_bytes());
}

/// The payload of one record: a tag byte, then each field as `[u32 LE length][bytes]`.
fn payload(change: &Change) -> Vec<u8> {
    let mut out = Vec::new();
    match change {
        Change::Own(e) => {
            out.push(b'P');
            copy_fields(&mut out, e.view());
        }
        Change::Remove(key) => {
            out.push(b'R');
            field(&mut out, key.as_bytes());
        }
        Change::Hint(node, e) => {
            out.push(b'H');
            field(&mut out, node.as_bytes());
            copy_fields(&mut out, e.view());
        }
        Change::HintRemove(node, key) => {
            out.push(b'h');
            field(&mut out, node.as_bytes());
            field(&mut out, key.as_bytes());
        }
        Change::Clear => out.push(b'C'),
    }
    out
}

/// Reads fields back off a payload; `None` for anything a writer of [`payload`] would
/// not have written.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn text(&mut self) -> Option<&'a str> {
        let len = u32::from_le_bytes(self.0.get(..4)?.try_into().ok()?) as usize;
        let bytes = self.0.get(4..4 + len)?;
        self.0 = &self.0[4 + len..];
        std::str::from_utf8(bytes).ok()
    }

    fn copy(&mut self) -> Option<Entry> {
        let key = self.text().filter(|k| !k.is_empty())?;
        let version = self.text()?;
        let value = self.text()?;
        let version = match version {
            "" if value.is_empty() => return None, // unversioned tombstones do not exist
            "" => None,
            v => Some(v.parse::<Version>().ok().map(|_| v)?),
        };
        Some(Entry::versioned(key, version, value))
    }
}

fn decode(payload: &[u8]) -> Option<Change> {
    let (&tag, rest) = payload.split_first()?;
    let mut f = Fields(rest);
    let change = match tag {
        b'P' => Change::Own(f.copy()?),
        b'R' => Change::Remove(f.text()?.to_string()),
        b'H' => Change::Hint(f.text()?.to_string(), f.copy()?),
        b'h' => Change::HintRemove(f.text()?.to_string(), f.text()?.to_string()),
        b'C' => Change::Clear,
        _ => return None,
    };
    f.0.is_empty().then_some(change)
}

/// FNV-1a 64 folded to 32 bits: catches a torn or overwritten record, not an attacker.
fn checksum(payload: &[u8]) -> u32 {
    let h = fnv1a64(payload);
    (h ^ (h >> 32)) as u32
}

/// A whole record, header and payload, ready for one `write`.
fn record(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&checksum(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Reads one record at the reader's position: `Ok(None)` at a clean end of file,
/// `Err(why)` for a torn or corrupt one.
fn read_record(r: &mut impl Read) -> Result<Option<(u64, Change)>, String> {
    let mut head = [0u8; 8];
    let mut got = 0;
    while got < head.len() {
        match r.read(&mut head[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(format!("a record header cut short after {got} bytes")),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("reading failed: {e}")),
        }
    }
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as u64;
    let sum = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    // Read through `take`, so a garbage length allocates only what the file holds.
    let mut payload = Vec::new();
    r.take(len)
        .read_to_end(&mut payload)
        .map_err(|e| format!("reading failed: {e}"))?;
    if (payload.len() as u64) < len {
        return Err(format!(
            "a record of {len} bytes cut short after {}",
            payload.len()
        ));
    }
    if checksum(&payload) != sum {
        return Err("a record whose checksum does not match".into());
    }
    let change = decode(&payload).ok_or("a record that does not decode")?;
    Ok(Some((8 + len, change)))
}

impl DataFile {
    /// Opens (or creates) the log at `path` and hands every record in it to `apply`, in
    /// order. Fails only when the file cannot be opened, read from the start, or cut back.
    pub fn open(path: &Path, mut apply: impl FnMut(Change)) -> io::Result<DataFile> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let total = file.metadata()?.len();
        let mut reader = BufReader::with_capacity(1 << 16, &file);
        let (mut good, mut records) = (0u64, 0u64);
        loop {
            match read_record(&mut reader) {
                Ok(None) => break,
                Ok(Some((len, change))) => {
                    apply(change);
                    good += len;
                    records += 1;
                }
                Err(why) => {
                    tracing::warn!(
                        "data file {}: {why} at byte {good}; kept the {records} records before \
                         it and cut the file there ({} bytes dropped)",
                        path.display(),
                        total - good
                    );
                    break;
                }
            }
        }
        drop(reader);
        if good < total {
            file.set_len(good)?;
        }
        Ok(DataFile {
            path: path.to_path_buf(),
            file,
            size: good,
            base: good,
            broken: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one change with one `write` call, or says why it could not.
    pub fn append(&mut self, change: &Change) -> Result<(), String> {
        if let Some(why) = &self.broken {
            return Err(why.clone());
        }
        let bytes = record(&payload(change));
        match self.file.write_all(&bytes) {
            Ok(()) => {
                self.size += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Part of the record may be on disk: cut it off, or refuse every later
                // write rather than append after it.
                if let Err(cut) = self.file.set_len(self.size) {
                    self.broken = Some(format!("{e}, and cutting the torn record failed: {cut}"));
                }
                Err(e.to_string())
            }
        }
    }

    /// Whether the log has doubled since it was last replayed or compacted.
    pub fn wants_compaction(&self) -> bool {
        self.size > MIN_COMPACT_BYTES.max(self.base.saturating_mul(2))
    }

    /// Rewrites the log as one record per copy held: writes `FILE.compacting`, fsyncs
    /// it, renames it over `FILE` and carries on appending to the new file. On failure
    /// the old file is kept as it was (and the next attempt waits for it to double again).
    /// The copies are read where they lie (in the node's slabs): nothing is unpacked, so
    /// a compaction holds no second copy of the data.
    pub fn compact<'a>(
        &mut self,
        own: impl Iterator<Item = EntryRef<'a>>,
        hints: impl Iterator<Item = (&'a str, EntryRef<'a>)>,
    ) -> io::Result<()> {
        let result = self.rewrite(own, hints);
        if let Err(e) = &result {
            tracing::warn!("data file {}: compaction failed: {e}", self.path.display());
            self.base = self.size;
        }
        result
    }

    fn rewrite<'a>(
        &mut self,
        own: impl Iterator<Item = EntryRef<'a>>,
        hints: impl Iterator<Item = (&'a str, EntryRef<'a>)>,
    ) -> io::Result<()> {
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".compacting");
        let tmp = PathBuf::from(tmp);
        let mut out = BufWriter::new(File::create(&tmp)?);
        let mut size = 0u64;
        let mut put = |out: &mut BufWriter<File>, payload: Vec<u8>| -> io::Result<()> {
            let bytes = record(&payload);
            size += bytes.len() as u64;
            out.write_all(&bytes)
        };
        for e in own {
            let mut p = vec![b'P'];
            copy_fields(&mut p, e);
            put(&mut out, p)?;
        }
        for (node, e) in hints {
            let mut p = vec![b'H'];
            field(&mut p, node.as_bytes());
            copy_fields(&mut p, e);
            put(&mut out, p)?;
        }
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, &self.path)?;
        // The rename itself is made durable by syncing the directory (where possible).
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        tracing::info!(
            "data file {}: compacted from {} to {size} bytes",
            self.path.display(),
            self.size
        );
        self.size = size;
        self.base = size;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kv-log-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        dir
    }

    fn replay(path: &Path) -> (DataFile, Vec<String>) {
        let mut seen = Vec::new();
        let file = DataFile::open(path, |c| {
            seen.push(match c {
                Change::Own(e) => format!("P {} {:?} {}", e.key(), e.version(), e.value()),
                Change::Remove(k) => format!("R {k}"),
                Change::Hint(n, e) => format!("H {n} {} {:?}", e.key(), e.version()),
                Change::HintRemove(n, k) => format!("h {n} {k}"),
                Change::Clear => "C".into(),
            })
        })
        .unwrap();
        (file, seen)
    }

    /// Every kind of change comes back from the file as it went in, in order.
    #[test]
    fn changes_replay_in_order() {
        let path = temp("order");
        let (mut log, seen) = replay(&path);
        assert!(seen.is_empty());
        for c in [
            Change::Own(Entry::new("a", "1")),
            Change::Own(Entry::tombstone("b", "5.0.p")),
            Change::Hint("kv2".into(), Entry::versioned("c", Some("6.1.p"), "[]")),
            Change::HintRemove("kv2".into(), "c".into()),
            Change::Remove("a".into()),
            Change::Clear,
        ] {
            log.append(&c).unwrap();
        }
        let (_, seen) = replay(&path);
        assert_eq!(
            seen,
            [
                "P a None 1",
                "P b Some(\"5.0.p\") ",
                "H kv2 c Some(\"6.1.p\")",
                "h kv2 c",
                "R a",
                "C"
            ]
        );
        let _ = std::fs::remove_file(&path);
    }

    /// A torn last record, and a corrupt one in the middle, end the replay there and are
    /// cut off the file, so appends after them are read back.
    #[test]
    fn a_torn_or_corrupt_record_is_cut_off() {
        let path = temp("torn");
        let (mut log, _) = replay(&path);
        log.append(&Change::Own(Entry::new("a", "1"))).unwrap();
        log.append(&Change::Own(Entry::new("b", "2"))).unwrap();
        let good = std::fs::metadata(&path).unwrap().len();
        drop(log);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"\x00\x07torn{\"ke").unwrap();
        let (mut log, seen) = replay(&path);
        assert_eq!(seen.len(), 2);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), good);
        log.append(&Change::Own(Entry::new("c", "3"))).unwrap();
        assert_eq!(replay(&path).1.len(), 3);
        // Flip a byte of the second record's payload: only the first survives.
        let mut bytes = std::fs::read(&path).unwrap();
        let second = (good / 2) as usize + 9;
        bytes[second] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(replay(&path).1, ["P a None 1"]);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn compaction_keeps_only_what_is_held() {
        let path = temp("compact");
        let (mut log, _) = replay(&path);
        let held = Entry::versioned("k", Some("9.0.p"), &"x".repeat(1000));
        for _ in 0..1100 {
            log.append(&Change::Own(Entry::new("k", &"y".repeat(1000))))
                .unwrap();
        }
        assert!(log.wants_compaction());
        let hint = Entry::new("h", "1");
        log.compact(
            [held.view()].into_iter(),
            [("kv3", hint.view())].into_iter(),
        )
        .unwrap();
        assert!(!log.wants_compaction());
        assert!(std::fs::metadata(&path).unwrap().len() < 2000);
        log.append(&Change::Remove("h".into())).unwrap();
        let (_, seen) = replay(&path);
        assert_eq!(seen.len(), 3);
        assert!(seen[0].starts_with("P k Some(\"9.0.p\") xxx"));
        let _ = std::fs::remove_file(&path);
    }
}
