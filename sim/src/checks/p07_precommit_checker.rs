//! P7 — every transaction pre-committed for a checkpoint that completed is
//! eventually committed, or its loss is reported loudly, never silently
//! (exactly-once mode).
//!
//! How: for every `PreCommitted{txn, epoch, ckpt, records}` whose `ckpt`
//! has a `CheckpointCompleted`, that transaction handle (txn, epoch, as the
//! engine recorded it, whatever the sink's naming) must be committed by the
//! end: a `CommitConfirmed` of the sink for it, or a commit of it by the
//! sink's system (`TxnCommitted`/`TxnCommitReplayed` of the broker), unless
//! - it is empty (`records == 0`): empty transactions never reach the broker
//!   and need no commit; or
//! - the engine said so loudly: a `CommitFailed` for that (txn, epoch). The
//!   data is then lost, and P1 reports the loss; that is not a P7 violation.
//!
//! Whether a confirmed commit really made the records visible is P1's and
//! P2's business (they read what a `read_committed` reader sees).
//! Judged only when the job finished: a stalled job may still owe commits,
//! and P11 reports the stall.

use super::{ms, Ctx, Finding};
use crate::history::Ev;
use exactsim_engine::observe::Event;
use std::collections::BTreeSet;

pub fn check(c: &Ctx) -> Vec<Finding> {
    if c.h.finished_at_us.is_none() {
        return vec![];
    }
    let mut committed: BTreeSet<(&str, u64)> = BTreeSet::new();
    let mut loud: BTreeSet<(&str, u64)> = BTreeSet::new();
    for s in &c.h.events {
        match &s.ev {
            Ev::Engine(Event::TxnCommitted { txn, epoch, .. })
            | Ev::Engine(Event::TxnCommitReplayed { txn, epoch, .. })
            | Ev::Engine(Event::CommitConfirmed { txn, epoch, .. }) => {
                committed.insert((txn.as_str(), *epoch));
            }
            Ev::Engine(Event::CommitFailed { txn, epoch, .. }) => {
                loud.insert((txn.as_str(), *epoch));
            }
            _ => {}
        }
    }
    let mut v = Vec::new();
    for ((txn, epoch), (ck, records)) in &c.precommits {
        let Some(done_at) = c.completed_at(*ck) else { continue };
        let key = (txn.as_str(), *epoch);
        if *records == 0 || committed.contains(&key) || loud.contains(&key) {
            continue;
        }
        v.push(Finding::new(Some(done_at),
            format!(
                "transaction {txn} epoch {epoch} ({records} records) pre-committed for checkpoint {ck}, which completed at {}, was never committed and no CommitFailed reported the loss",
                ms(done_at)
            ),
        ));
    }
    v
}
