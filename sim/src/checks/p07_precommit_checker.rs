//! P7 — every transaction pre-committed for a checkpoint that completed is
//! eventually committed, or its loss is reported loudly (`CommitFailed`),
//! never silently.

use super::{Ctx, Violation};
use crate::history::Ev;
use exactsim_engine::observe::Event;
use std::collections::BTreeSet;

pub fn check(c: &Ctx) -> Vec<Violation> {
    if c.h.finished_at_us.is_none() {
        return vec![]; // P11 reports the stall; pending work may be legitimately outstanding
    }
    let completed: BTreeSet<u64> = c.completed.iter().map(|x| x.1).collect();
    let mut committed = BTreeSet::new();
    let mut loud = BTreeSet::new();
    for s in &c.h.events {
        match &s.ev {
            Ev::Engine(Event::TxnCommitted { txn, epoch, .. })
            | Ev::Engine(Event::TxnCommitReplayed { txn, epoch, .. }) => {
                committed.insert((txn.clone(), *epoch));
            }
            Ev::Engine(Event::CommitFailed { txn, .. }) => {
                loud.insert(txn.clone());
            }
            _ => {}
        }
    }
    c.precommits
        .iter()
        .filter(|((txn, epoch), (ck, records))| {
            *records > 0 && completed.contains(ck) && !committed.contains(&(txn.clone(), *epoch)) && !loud.contains(txn)
        })
        .map(|((txn, epoch), (ck, records))| {
            Violation::new("P7", None, format!("transaction {txn} epoch {epoch} ({records} records) of completed checkpoint {ck} was never committed, and no loss was reported"))
        })
        .collect()
}
