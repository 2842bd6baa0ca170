//! P16 — retained checkpoints are restorable: at every moment, every file a
//! retained completed checkpoint refers to is in the checkpoint store
//! (incremental checkpoints, `JobConfig::incremental_checkpoints`).
//!
//! How, from the history alone: the store's `BlobStored` (a durable write)
//! and `BlobsDeleted` (a durable delete) replayed in order give the files
//! present at every moment; a task's `SnapshotFiles{ckpt, files}` (its
//! main blob and the shared files its manifest names, emitted once all are
//! stored) gives what checkpoint `ckpt` refers to. The retained set: a
//! checkpoint joins it at its `CheckpointCompleted` (or when a restarted
//! coordinator's `CoordinatorRecovered` lists it: a completion record made
//! durable just before a crash), leaves it at its `CheckpointDiscarded`,
//! and a `CoordinatorRecovered` replaces it by the checkpoints it lists.
//! Violations: a retained checkpoint refers to a file missing when it
//! completes; a delete removes a file a retained checkpoint refers to; at
//! the end of the history a retained checkpoint refers to a missing file.
//! Runs without `SnapshotFiles` (full snapshots) have nothing to judge.
//! The present files are the replay of the store's own events, not the
//! coordinator's bookkeeping: a registry that miscounts shows here.

use super::{ms, Ctx, Finding};
use crate::history::Ev;
use exactsim_engine::observe::Event;
use exactsim_engine::types::CheckpointId;
use std::collections::{BTreeMap, BTreeSet};

pub fn check(c: &Ctx) -> Vec<Finding> {
    let mut v = Vec::new();
    // What each checkpoint refers to (ids are unique across attempts).
    let mut refs: BTreeMap<CheckpointId, BTreeSet<String>> = BTreeMap::new();
    let mut present: BTreeSet<String> = BTreeSet::new();
    let mut retained: BTreeSet<CheckpointId> = BTreeSet::new();
    let mut any = false;
    let missing = |refs: &BTreeMap<CheckpointId, BTreeSet<String>>, present: &BTreeSet<String>, ck| -> Vec<String> {
        refs.get(&ck).map(|f| f.iter().filter(|f| !present.contains(*f)).cloned().collect()).unwrap_or_default()
    };
    for s in &c.h.events {
        let Ev::Engine(e) = &s.ev else { continue };
        match e {
            Event::BlobStored { name, .. } => {
                present.insert(name.clone());
            }
            Event::SnapshotFiles { ckpt, files, .. } => {
                any = true;
                refs.entry(*ckpt).or_default().extend(files.iter().cloned());
            }
            Event::CheckpointCompleted { ckpt, .. } => {
                retained.insert(*ckpt);
                let gone = missing(&refs, &present, *ckpt);
                if !gone.is_empty() {
                    v.push(Finding::new(
                        Some(s.t_us),
                        format!(
                            "checkpoint {ckpt} completed at {} referring to {} files not in the store: {}",
                            ms(s.t_us),
                            gone.len(),
                            gone.join(", ")
                        ),
                    ));
                }
            }
            Event::CheckpointDiscarded { ckpt } => {
                retained.remove(ckpt);
            }
            Event::CoordinatorRecovered { completed, .. } => {
                retained = completed.iter().copied().collect();
            }
            Event::BlobsDeleted { names } => {
                for n in names {
                    present.remove(n);
                    let holders: Vec<String> = retained
                        .iter()
                        .filter(|ck| refs.get(ck).is_some_and(|f| f.contains(n)))
                        .map(|ck| ck.to_string())
                        .collect();
                    if !holders.is_empty() {
                        v.push(Finding::new(
                            Some(s.t_us),
                            format!(
                                "{n} deleted at {} while retained checkpoint {} refers to it",
                                ms(s.t_us),
                                holders.join(", ")
                            ),
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    if any {
        for ck in &retained {
            let gone = missing(&refs, &present, *ck);
            if !gone.is_empty() {
                v.push(Finding::new(
                    None,
                    format!(
                        "at the end, retained checkpoint {ck} refers to {} files not in the store: {}",
                        gone.len(),
                        gone.join(", ")
                    ),
                ));
            }
        }
    }
    v
}
