//! P10 — restored state, source offsets and pending transactions all come
//! from the same checkpoint: the one the recovery chose, which has a
//! completion record (exactly-once mode).
//!
//! How: `RecoveryStarted{attempt, from}` fixes the checkpoint of an attempt
//! (the latest such event per attempt wins); `from` must be known complete
//! before that event (a `CheckpointCompleted`, or listed as completed by a
//! `CoordinatorRecovered`: a completion record made durable just before a
//! crash, never announced). Every `TaskRestored` of that
//! attempt must then agree, as read from the restored blobs themselves: a
//! source's `offsets_ckpt` and a chain's `state_ckpt` equal `from` (both
//! `None` on a fresh start), and every pending transaction `(ckpt, txn)` a
//! chain restored was pre-committed (`PreCommitted`) for that `ckpt`, with
//! `ckpt <= from`. Task restores of an attempt without a `RecoveryStarted`
//! are not judged.

use super::{ms, Ctx, Finding};
use crate::history::Ev;
use exactsim_engine::observe::Event;
use exactsim_engine::types::{CheckpointId, TaskId};
use std::collections::{BTreeMap, BTreeSet};

fn show(c: &Option<CheckpointId>) -> String {
    c.map_or("none (fresh start)".to_string(), |c| format!("checkpoint {c}"))
}

pub fn check(c: &Ctx) -> Vec<Finding> {
    let mut v = Vec::new();
    let precommitted: BTreeSet<(&str, CheckpointId)> =
        c.precommits.iter().map(|((txn, _), (ck, _))| (txn.as_str(), *ck)).collect();
    let mut chosen: BTreeMap<u64, Option<CheckpointId>> = BTreeMap::new();
    for s in &c.h.events {
        let Ev::Engine(e) = &s.ev else { continue };
        let completed = |ck: &CheckpointId| c.completed_at(*ck).is_some_and(|t| t <= s.t_us);
        match e {
            Event::RecoveryStarted { attempt, from, reason } => {
                if let Some(f) = from.filter(|f| !completed(f)) {
                    v.push(Finding::new(Some(s.t_us),
                        format!(
                            "recovery of attempt {attempt} at {} ({reason}) restores checkpoint {f}, which has no completion record",
                            ms(s.t_us)
                        ),
                    ));
                }
                chosen.insert(*attempt, *from);
            }
            Event::TaskRestored { attempt, task, state_ckpt, offsets_ckpt, pending_txns, .. } => {
                let Some(want) = chosen.get(attempt) else { continue };
                let (got, what) = match task {
                    TaskId::Source(_) => (offsets_ckpt, "offsets"),
                    TaskId::Chain(_) => (state_ckpt, "state"),
                };
                if got != want {
                    v.push(Finding::new(Some(s.t_us),
                        format!(
                            "attempt {attempt}: {task} on {} restored its {what} from {} at {}, but the recovery chose {}",
                            s.node,
                            show(got),
                            ms(s.t_us),
                            show(want)
                        ),
                    ));
                } else if let Some(g) = got.filter(|g| !completed(g)) {
                    v.push(Finding::new(Some(s.t_us),
                        format!(
                            "attempt {attempt}: {task} restored its {what} from checkpoint {g} at {}, which has no completion record",
                            ms(s.t_us)
                        ),
                    ));
                }
                let foreign: Vec<String> = pending_txns
                    .iter()
                    .filter(|(ck, txn)| want.is_none_or(|w| *ck > w) || !precommitted.contains(&(txn.as_str(), *ck)))
                    .map(|(ck, txn)| format!("{txn} for checkpoint {ck}"))
                    .collect();
                if !foreign.is_empty() {
                    v.push(Finding::new(Some(s.t_us),
                        format!(
                            "attempt {attempt}: {task} restored {} pending transactions that do not belong to {} (not pre-committed for that checkpoint, or newer): {}",
                            foreign.len(),
                            show(want),
                            super::first_few(foreign)
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    v
}
