//! `kill -9` during batch enrolment: every acknowledged write survives,
//! nothing is half-written.
//!
//! The parent re-runs this test binary as a child (selected by an env var)
//! that enrols and replaces subjects forever, printing one line per write
//! after the store has acknowledged it. The parent reads some acks, SIGKILLs
//! the child wherever it happens to be (often inside a transaction), and
//! checks the reopened file.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use sinhtrac_store::{NewSubject, Store, DEFAULT_BATCH_GROUP};

const CHILD_ENV: &str = "SINHTRAC_STORE_CRASH_CHILD";
const ROUND_ENV: &str = "SINHTRAC_STORE_CRASH_ROUND";
const TENANT: &str = "crash";
/// Delete victims are `start / 2 + 3`: never a replace victim (`start / 2`,
/// a multiple of 8), always already enrolled.
const DELETE_OFFSET: usize = 3;

fn may_be_deleted(i: usize) -> bool {
    i % 8 == DELETE_OFFSET
}

/// Templates per subject vary so transactions differ in size.
fn templates_for(i: usize) -> usize {
    1 + i % 4
}

fn crash_subject(round: u32, i: usize, version: u32) -> NewSubject {
    let id = format!("R{round}-{i:06}");
    let mut s = subject(&id, version, templates_for(i));
    // Larger templates: a group's transaction spans many pages and fsyncs.
    for (j, t) in s.templates.iter_mut().enumerate() {
        t.data = template_bytes(&id, version, j, 4096);
    }
    s
}

/// The child's body: runs only when re-invoked by `kill_9_loses_no_acknowledged_write`.
#[test]
fn crash_child_process() {
    let (Ok(path), Ok(round)) = (std::env::var(CHILD_ENV), std::env::var(ROUND_ENV)) else {
        return;
    };
    let round: u32 = round.parse().expect("round");
    let store = Store::open(&path).expect("child open");
    let out = std::io::stdout();
    let batch = 16;
    // Bounded so a parent that stops reading cannot leave it running forever.
    for start in (0..100_000).step_by(batch) {
        let items: Vec<NewSubject> = (start..start + batch)
            .map(|i| crash_subject(round, i, 1))
            .collect();
        store
            .enroll_batch(TENANT, &items, DEFAULT_BATCH_GROUP.min(8), |i, r| {
                r.expect("enrol");
                let mut o = out.lock();
                writeln!(o, "ACK {}", items[i].subject_id).expect("stdout");
                o.flush().expect("flush");
            })
            .expect("batch");
        // Replace one earlier subject per batch: a replace is also all-or-nothing.
        let victim = start / 2;
        store
            .replace(TENANT, &crash_subject(round, victim, 2))
            .expect("replace");
        let mut o = out.lock();
        writeln!(o, "REPLACED R{round}-{victim:06}").expect("stdout");
        o.flush().expect("flush");
        drop(o);
        // Delete one subject per batch and compact now and then, so kills
        // also land in deletes, tombstone purges and VACUUM.
        let victim = start / 2 + DELETE_OFFSET;
        store
            .delete(TENANT, &format!("R{round}-{victim:06}"))
            .expect("delete");
        let mut o = out.lock();
        writeln!(o, "DELETED R{round}-{victim:06}").expect("stdout");
        o.flush().expect("flush");
        drop(o);
        if (start / batch) % 4 == 3 {
            store.compact().expect("compact");
        }
    }
}

struct Acks {
    enrolled: BTreeSet<String>,
    replaced: BTreeSet<String>,
    deleted: BTreeSet<String>,
}

/// Runs one child, kills it after `kill_after` acks, returns every ack it printed.
fn run_child(path: &std::path::Path, round: u32, kill_after: usize) -> Acks {
    let mut child = Command::new(std::env::current_exe().expect("test exe"))
        .args([
            "crash_child_process",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, path)
        .env(ROUND_ENV, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let pid = child.id();
    // Watchdog: a hung child must fail the test, not hang it.
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(Duration::from_secs(300)).is_err() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    });
    let mut acks = Acks {
        enrolled: BTreeSet::new(),
        replaced: BTreeSet::new(),
        deleted: BTreeSet::new(),
    };
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let record = |line: &str, acks: &mut Acks| {
        if let Some(id) = line.strip_prefix("ACK ") {
            acks.enrolled.insert(id.to_owned());
        } else if let Some(id) = line.strip_prefix("REPLACED ") {
            acks.replaced.insert(id.to_owned());
        } else if let Some(id) = line.strip_prefix("DELETED ") {
            acks.deleted.insert(id.to_owned());
        }
    };
    while acks.enrolled.len() < kill_after {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("child exited after {} acks", acks.enrolled.len()))
            .expect("read");
        record(&line, &mut acks);
    }
    // SIGKILL: no destructors, no flush, wherever the child is.
    child.kill().expect("kill");
    let status = child.wait().expect("wait");
    assert!(!status.success(), "child was killed, not finished");
    // Lines already in the pipe were acknowledged before the kill: count them too.
    for line in lines {
        record(&line.expect("read"), &mut acks);
    }
    let _ = done_tx.send(());
    watchdog.join().expect("watchdog");
    acks
}

#[test]
fn kill_9_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let mut all_enrolled = BTreeSet::new();
    let mut all_replaced = BTreeSet::new();
    let mut all_deleted = BTreeSet::new();
    // Different kill points: the first write, inside the first groups, later.
    for (round, kill_after) in [1usize, 5, 37, 120, 301].into_iter().enumerate() {
        let round = round as u32;
        let acks = run_child(&path, round, kill_after);
        assert!(acks.enrolled.len() >= kill_after);
        all_enrolled.extend(acks.enrolled);
        all_replaced.extend(acks.replaced);
        all_deleted.extend(acks.deleted);

        let store = Store::open(&path).expect("reopen after kill -9");
        store.integrity_check().expect("integrity after kill -9");
        let present: BTreeSet<String> = list_all(&store, TENANT, 500).into_iter().collect();
        for id in &all_enrolled {
            if all_deleted.contains(id) {
                assert!(!present.contains(id), "acknowledged delete of {id} lost");
                continue;
            }
            let i: usize = id
                .rsplit('-')
                .next()
                .and_then(|i| i.parse().ok())
                .expect("id shape");
            // A delete victim may be gone through a delete that committed
            // but was killed before its acknowledgement was printed.
            if !may_be_deleted(i) {
                assert!(
                    present.contains(id),
                    "acknowledged {id} lost (round {round})"
                );
            }
        }
        // Every subject on disk, acknowledged or not, is whole: exactly its
        // v1 templates, or exactly its v2 templates after a replace.
        let mut versions = BTreeMap::new();
        for id in &present {
            let (r, i) = id[1..].split_once('-').expect("id shape");
            let (r, i): (u32, usize) = (r.parse().unwrap(), i.parse().unwrap());
            let got = store.get(TENANT, id).unwrap();
            let version: u32 = got.metadata["version"].parse().unwrap();
            let expected = crash_subject(r, i, version);
            assert_eq!(
                got.templates.len(),
                expected.templates.len(),
                "{id} half-written"
            );
            for (g, e) in got.templates.iter().zip(&expected.templates) {
                assert_eq!(g.data, e.data, "{id} template bytes");
                assert_eq!(g.modality, e.modality);
            }
            versions.insert(id.clone(), version);
        }
        for id in &all_replaced {
            assert_eq!(
                versions.get(id),
                Some(&2),
                "acknowledged replace of {id} lost"
            );
        }
        // The counters behind stats agree with what is listed
        // (integrity_check above compared them with the rows).
        assert_eq!(
            store.stats(TENANT).unwrap().subjects as usize,
            present.len()
        );
        store.close().unwrap();
    }
    assert!(all_enrolled.len() >= 1 + 5 + 37 + 120 + 301);
    assert!(!all_deleted.is_empty() && !all_replaced.is_empty());
}
