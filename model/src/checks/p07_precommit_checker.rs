//! P7 — every transaction pre-committed for a checkpoint that completed is
//! eventually committed, or its loss is reported loudly, never silently
//! (exactly-once mode). Judged from what the system shows, never from the
//! sink's word: a commit the sink confirmed but the system does not show is
//! a violation of its own.
//!
//! How: for every `PreCommitted{txn, epoch, ckpt, records, out_ids}` whose
//! `ckpt` has a `CheckpointCompleted`, the system must show that
//! transaction (txn, epoch, as the engine recorded it, whatever the sink's
//! naming) committed by the end:
//! - a commit event of the system itself (`TxnCommitted` or
//!   `TxnCommitReplayed` from a node that is not a worker: the broker, or
//!   a scenario's own system such as the simulated PostgreSQL), or
//! - every one of its records (`out_ids`, the records the engine handed
//!   the sink for it) in the final `read_committed` read, for a system that
//!   announces no commits of its own.
//!
//! Not owed:
//! - an empty transaction (`records == 0`): it never reaches the system;
//! - a loss the engine reported loudly: a `CommitFailed` for that (txn,
//!   epoch). The data is then lost, and P1 reports the loss.
//!
//! The sink's `CommitConfirmed` decides nothing; when the system does not
//! back one, the finding names it ("confirmed but not committed").
//! Whether the committed records are the right ones is P1's and P2's
//! business. Judged only when the job finished: a stalled job may still owe
//! commits, and P11 reports the stall.

use super::{ms, Ctx, Finding};
use crate::history::Ev;
use exactsim_engine::observe::Event;
use std::collections::BTreeSet;

pub fn check(c: &Ctx) -> Vec<Finding> {
    if c.h.finished_at_us.is_none() {
        return vec![];
    }
    let mut shown: BTreeSet<(&str, u64)> = BTreeSet::new();
    let mut loud: BTreeSet<(&str, u64)> = BTreeSet::new();
    for s in &c.h.events {
        match &s.ev {
            // The system's own word; a worker (the sink's side) cannot
            // vouch for itself.
            Ev::Engine(Event::TxnCommitted { txn, epoch, .. })
            | Ev::Engine(Event::TxnCommitReplayed { txn, epoch, .. })
                if !s.node.starts_with("worker-") =>
            {
                shown.insert((txn.as_str(), *epoch));
            }
            Ev::Engine(Event::CommitFailed { txn, epoch, .. }) => {
                loud.insert((txn.as_str(), *epoch));
            }
            _ => {}
        }
    }
    let visible: BTreeSet<u64> =
        if c.h.final_read_ok { c.h.final_output.iter().flatten().map(|r| r.out_id).collect() } else { BTreeSet::new() };
    let mut v = Vec::new();
    for ((txn, epoch), (ck, records)) in &c.precommits {
        let Some(done_at) = c.completed_at(*ck) else { continue };
        let key = (txn.as_str(), *epoch);
        if *records == 0 || shown.contains(&key) || loud.contains(&key) {
            continue;
        }
        let ids = c.precommit_out_ids.get(&(txn.clone(), *epoch)).map_or(&[][..], |v| &v[..]);
        let missing = ids.iter().filter(|id| !visible.contains(id)).count();
        if !ids.is_empty() && missing == 0 {
            continue;
        }
        let what = format!(
            "transaction {txn} epoch {epoch} ({records} records) pre-committed for checkpoint {ck}, which completed at {}",
            ms(done_at)
        );
        let evidence = if c.h.final_read_ok {
            format!(
                "no commit of it by the system, and {missing} of its {} records are not in the final read",
                ids.len()
            )
        } else {
            "no commit of it by the system, and the final read failed".to_string()
        };
        let message = match c.confirmed.get(&(txn.clone(), *epoch)) {
            Some(t) => {
                format!("{what}, was confirmed committed by the sink at {} but not committed: {evidence}", ms(*t))
            }
            None => format!("{what}, was never committed and no CommitFailed reported the loss: {evidence}"),
        };
        v.push(Finding::new(Some(done_at), message));
    }
    v
}
