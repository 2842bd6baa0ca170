//! P13 — when the job reports finished, all its output is committed and no
//! transaction is open (exactly-once mode; Flink's
//! `TwoPhaseCommitSinkFunction` begins no transaction after the final
//! checkpoint, nor after restoring a finished state).
//!
//! How: at the first `JobFinished{attempt, ckpt}` (time `t`):
//! - every non-empty `PreCommitted` for a checkpoint `<= ckpt` that
//!   completed is committed by `t` (the sink's `CommitConfirmed` of that
//!   handle, or its system's commit of it), or its loss was reported
//!   (`CommitFailed`);
//! - no transaction of the finishing attempt is open: per chain task, from
//!   its last `TaskRestored` of that attempt (a worker restarted within an
//!   attempt restores again; what its dead process had open is fenced by
//!   the recovery), the transaction it restored open (`open_txn`) and
//!   every later `TxnBegun` of that attempt is ended by the end of the run,
//!   by a `PreCommitted` or a `SinkAborted` of the same handle. Judged from
//!   the engine's records, whatever the sink's system (P8 judges the
//!   broker's own list).

use super::{first_few, ms, Ctx, Finding};
use crate::history::Ev;
use exactsim_engine::observe::Event;
use std::collections::{BTreeMap, BTreeSet};

pub fn check(c: &Ctx) -> Vec<Finding> {
    let Some((t, attempt, fin)) = c.h.events.iter().find_map(|s| match &s.ev {
        Ev::Engine(Event::JobFinished { attempt, ckpt }) => Some((s.t_us, *attempt, *ckpt)),
        _ => None,
    }) else {
        return vec![];
    };
    let mut v = Vec::new();
    let mut committed: BTreeSet<(&str, u64)> = BTreeSet::new();
    // task -> open handles of its live instance in the finishing attempt:
    // (txn, epoch) -> time begun
    let mut open: BTreeMap<String, BTreeMap<(&str, u64), u64>> = BTreeMap::new();
    for s in &c.h.events {
        let Ev::Engine(e) = &s.ev else { continue };
        match e {
            Event::TxnCommitted { txn, epoch, .. }
            | Event::TxnCommitReplayed { txn, epoch, .. }
            | Event::CommitConfirmed { txn, epoch, .. }
            | Event::CommitFailed { txn, epoch, .. }
                if s.t_us <= t =>
            {
                committed.insert((txn.as_str(), *epoch));
            }
            Event::TaskRestored { attempt: a, task, open_txn, .. } if *a == attempt => {
                let live = open.entry(task.to_string()).or_default();
                live.clear();
                if let Some((txn, epoch)) = open_txn {
                    live.insert((txn.as_str(), *epoch), s.t_us);
                }
            }
            Event::TxnBegun { attempt: a, task, txn, epoch } if *a == attempt => {
                if let Some(live) = open.get_mut(&task.to_string()) {
                    live.insert((txn.as_str(), *epoch), s.t_us);
                }
            }
            Event::PreCommitted { task, txn, epoch, .. } => {
                if let Some(live) = open.get_mut(&task.to_string()) {
                    live.remove(&(txn.as_str(), *epoch));
                }
            }
            Event::SinkAborted { task, txn } => {
                if let Some(live) = open.get_mut(&task.to_string()) {
                    live.retain(|(n, _), _| *n != txn.as_str());
                }
            }
            _ => {}
        }
    }
    let mut uncommitted = Vec::new();
    for ((txn, epoch), (ck, records)) in &c.precommits {
        if *ck > fin || *records == 0 || c.completed_at(*ck).is_none_or(|at| at > t) {
            continue;
        }
        if !committed.contains(&(txn.as_str(), *epoch)) {
            uncommitted.push(format!("{txn} epoch {epoch} (checkpoint {ck}, {records} records)"));
        }
    }
    if !uncommitted.is_empty() {
        v.push(Finding::new(Some(t),
            format!(
                "the job reported finished (attempt {attempt}, checkpoint {fin}) at {} with {} pre-committed transactions of completed checkpoints not committed: {}",
                ms(t),
                uncommitted.len(),
                first_few(uncommitted)
            ),
        ));
    }
    let open: Vec<String> = open
        .iter()
        .flat_map(|(task, live)| {
            live.iter().map(move |((txn, epoch), at)| format!("{txn} epoch {epoch} of {task} begun at {}", ms(*at)))
        })
        .collect();
    if !open.is_empty() {
        v.push(Finding::new(Some(t),
            format!(
                "the job reported finished (attempt {attempt}, checkpoint {fin}) at {} with {} transactions of that attempt still open: {}",
                ms(t),
                open.len(),
                first_few(open)
            ),
        ));
    }
    v
}
