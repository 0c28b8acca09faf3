//! The store's rules, without a server: budgets, versions, tombstones, hints, digests,
//! churn in the slabs, and a store brought back from its data file.

use super::*;

fn v(text: &str) -> Version {
    text.parse().unwrap()
}

#[test]
fn a_full_node_refuses_new_keys_but_updates_old_ones() {
    let db = Db::new(1, DEFAULT_MAX_BYTES);
    assert_eq!(db.put("a", "1"), Ok(true));
    assert_eq!(db.put("b", "2"), Err(WriteError::Full { max_keys: 1 }));
    assert_eq!(db.put("a", "3"), Ok(false));
    assert_eq!(db.get("a").as_deref(), Some("3"));
    assert_eq!(db.get("b"), None);
}

#[test]
fn sorted_is_sorted_and_bounded() {
    let db = Db::new(100, DEFAULT_MAX_BYTES);
    for k in ["c", "a", "b"] {
        db.put(k, "null").unwrap();
    }
    let keys: Vec<String> = db.sorted(2).into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["a", "b"]);
    for i in (0..50).rev() {
        db.put(&format!("k{i:02}"), "1").unwrap();
    }
    let first = db.first(5);
    let keys: Vec<&str> = first.pairs.iter().map(|p| p.key.as_str()).collect();
    assert_eq!((first.count, keys), (53, vec!["a", "b", "c", "k00", "k01"]));
    assert_eq!(db.first(0).pairs.len(), 0);
    assert_eq!(db.first(1000).pairs.len(), 53);
    assert_eq!(db.clear(), Ok(53));
    assert!(db.is_empty());
    assert_eq!(db.bytes().0, 0);
}

/// The digest follows the data: the same pairs give the same digest whatever the
/// order they came in, and any change (value, version, tombstone) changes it.
#[test]
fn the_digest_follows_the_data() {
    let (a, b) = (Db::new(10, 1000), Db::new(10, 1000));
    assert_eq!(a.digest(), 0);
    a.put("x", "1").unwrap();
    a.put("y", "2").unwrap();
    b.put("y", "2").unwrap();
    b.put("x", "0").unwrap();
    assert_ne!(a.digest(), b.digest());
    b.put("x", "1").unwrap();
    assert_eq!(a.digest(), b.digest());
    a.put_versioned("x", "1", Some(&v("1.0.p"))).unwrap();
    assert_ne!(a.digest(), b.digest(), "a version is part of the copy");
    b.put_versioned("x", "1", Some(&v("1.0.p"))).unwrap();
    assert_eq!(a.digest(), b.digest());
    a.delete_versioned("x", &v("2.0.p")).unwrap();
    assert_ne!(a.digest(), b.digest());
    b.delete_versioned("x", &v("2.0.p")).unwrap();
    assert_eq!(a.digest(), b.digest());
    a.delete("y").unwrap();
    assert_ne!(a.digest(), b.digest());
    b.delete("y").unwrap();
    assert_eq!(a.digest(), b.digest());
    assert_ne!(a.digest(), 0, "the tombstone of x is still held");
}

/// The byte budget counts keys and values, refuses what would pass it, lets a value
/// shrink or be replaced within it, and gives bytes back on delete.
#[test]
fn the_byte_budget_holds() {
    let db = Db::new(100, 10);
    assert_eq!(db.put("ab", "1234"), Ok(true)); // 6 bytes
    assert_eq!(
        db.put("cd", "123456"),
        Err(WriteError::OverBudget {
            used: 6,
            max_bytes: 10
        })
    );
    assert_eq!(db.put("ab", "12345678"), Ok(false)); // 10 bytes, replacing 6
    assert_eq!(db.bytes(), (10, 10));
    assert_eq!(db.get("cd"), None);
    assert_eq!(db.delete("ab"), Ok(true));
    assert_eq!(db.bytes().0, 0);
    assert_eq!(db.put("cd", "123456"), Ok(true));
}

/// Newer wins, older is kept, unversioned loses to any version, and a tombstone
/// stops an older write from bringing its key back.
#[test]
fn the_newest_version_wins() {
    let db = Db::new(100, DEFAULT_MAX_BYTES);
    db.put("k", "0").unwrap();
    let done = db.put_versioned("k", "1", Some(&v("5.0.p"))).unwrap();
    assert!(done.applied && done.was_live);
    let kept = db.put_versioned("k", "2", Some(&v("4.9.p"))).unwrap();
    assert_eq!(
        (kept.applied, kept.version.as_deref()),
        (false, Some("5.0.p"))
    );
    assert_eq!(db.get("k").as_deref(), Some("1"));
    let gone = db.delete_versioned("k", &v("6.0.p")).unwrap();
    assert!(gone.applied && gone.was_live && !gone.live);
    assert!(
        !db.put_versioned("k", "3", Some(&v("5.5.p")))
            .unwrap()
            .applied
    );
    assert_eq!(
        db.lookup("k"),
        Lookup::Deleted {
            version: Some("6.0.p".into())
        }
    );
    let counts = db.counts();
    assert_eq!((counts.live, counts.tombstones), (0, 1));
    assert!(
        db.put_versioned("k", "4", Some(&v("7.0.p")))
            .unwrap()
            .applied
    );
    assert_eq!(db.len(), 1);
    // Unversioned replaces whatever is held, as the classroom original did.
    db.put("k", "5").unwrap();
    assert_eq!(
        db.lookup("k"),
        Lookup::Live {
            value: "5".into(),
            version: None
        }
    );
}

/// Tombstones older than the cut-off go; newer ones and live values stay.
#[test]
fn old_tombstones_are_dropped() {
    let db = Db::new(100, DEFAULT_MAX_BYTES);
    db.delete_versioned("old", &v("1000.0.p")).unwrap();
    db.delete_versioned("new", &v("3000.0.p")).unwrap();
    db.put_versioned("live", "1", Some(&v("1.0.p"))).unwrap();
    assert_eq!(db.drop_tombstones_before(2000), Ok(1));
    assert_eq!(db.lookup("old"), Lookup::Missing);
    assert!(matches!(db.lookup("new"), Lookup::Deleted { .. }));
    assert_eq!(db.len(), 1);
}

/// Hints are kept apart from the node's own data, but weigh in its budget.
#[test]
fn hints_are_not_own_data() {
    let db = Db::new(1, 100);
    db.put("a", "1").unwrap();
    db.put_hint("kv2", "b", "22", Some(&v("2.0.p"))).unwrap();
    assert_eq!(db.get("b"), None);
    let counts = db.counts();
    assert_eq!(
        (counts.live, counts.hints, counts.bytes),
        (1, 1, 2 + 1 + 2 + 5)
    );
    assert!(
        !db.put_hint("kv2", "b", "3", Some(&v("1.0.p")))
            .unwrap()
            .applied
    );
    assert!(
        db.put_hint("kv2", "b", "", Some(&v("3.0.p")))
            .unwrap()
            .applied
    );
    assert_eq!(
        db.remove_hint("kv2", "b", Some(&v("2.0.p"))),
        Ok(HintRemoval::Changed {
            held: Some("3.0.p".into())
        })
    );
    assert_eq!(
        db.remove_hint("kv2", "b", Some(&v("3.0.p"))),
        Ok(HintRemoval::Removed)
    );
    assert_eq!(db.remove_hint("kv2", "b", None), Ok(HintRemoval::Missing));
    assert_eq!(db.bytes().0, 2);
}

/// Copies rewritten, deleted and removed many times over (so slabs are compacted
/// under them) read back, count and digest as the same final copies written once.
#[test]
fn churn_leaves_the_same_data_as_writing_it_once() {
    let (churned, once) = (
        Db::new(10_000, DEFAULT_MAX_BYTES),
        Db::new(10_000, DEFAULT_MAX_BYTES),
    );
    for round in 1..=20u64 {
        for k in 0..3000 {
            let value = format!("[{round}, \"{}\"]", "x".repeat(k % 200));
            churned
                .put_versioned(&format!("k{k}"), &value, Some(&v(&format!("{round}.0.p"))))
                .unwrap();
        }
    }
    for k in 0..3000 {
        let key = format!("k{k}");
        match k % 3 {
            0 => assert!(
                churned
                    .delete_versioned(&key, &v("99.0.p"))
                    .unwrap()
                    .applied
            ),
            1 => assert!(churned.delete(&key).unwrap()),
            _ => {}
        }
    }
    for k in 0..3000 {
        let key = format!("k{k}");
        match k % 3 {
            0 => {
                once.delete_versioned(&key, &v("99.0.p")).unwrap();
            }
            1 => {}
            _ => {
                let value = format!("[20, \"{}\"]", "x".repeat(k % 200));
                once.put_versioned(&key, &value, Some(&v("20.0.p")))
                    .unwrap();
            }
        }
    }
    assert_eq!(churned.counts(), once.counts());
    assert_eq!(churned.digests(), once.digests());
    assert_eq!(churned.first(5000), once.first(5000));
    assert_eq!(churned.lookup("k2"), once.lookup("k2"));
    assert_eq!(churned.lookup("k3"), once.lookup("k3"));
}

/// Everything a store holds comes back from its data file, and a clear is replayed too.
#[test]
fn a_store_comes_back_from_its_data_file() {
    let path = std::env::temp_dir().join(format!("kv-db-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let db = Db::open(100, DEFAULT_MAX_BYTES, Some(&path)).unwrap();
    db.put("a", "1").unwrap();
    db.put_versioned("b", "2", Some(&v("9.0.p"))).unwrap();
    db.delete_versioned("c", &v("8.0.p")).unwrap();
    db.put_hint("kv3", "d", "4", None).unwrap();
    let digest = db.digest();
    drop(db);
    let back = Db::open(100, DEFAULT_MAX_BYTES, Some(&path)).unwrap();
    assert_eq!(back.digest(), digest);
    assert_eq!(
        back.counts(),
        Counts {
            live: 2,
            tombstones: 1,
            hints: 1,
            bytes: 2 + 7 + 6 + 2
        }
    );
    back.clear().unwrap();
    drop(back);
    let cleared = Db::open(100, DEFAULT_MAX_BYTES, Some(&path)).unwrap();
    assert_eq!(cleared.counts().live + cleared.counts().hints, 0);
    let _ = std::fs::remove_file(&path);
}
