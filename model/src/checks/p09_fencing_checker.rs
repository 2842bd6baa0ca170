//! P9 — after fencing, nothing from an older producer epoch or an older job
//! attempt is accepted or becomes visible (exactly-once mode).
//!
//! How: in event order, remember per transactional id the newest
//! `ProducerInit` epoch and the newest owner that initialized it: (run of
//! the job, job attempt, producer session), ordered in that order. A later
//! `AppendAccepted` or `TxnCommitted` for that id with a lower epoch is a
//! zombie write that got through; a later `ProducerInit` from an older
//! owner is a zombie that took the id back: a replaced attempt's process
//! (late, or resumed from a pause), an earlier session of the same attempt
//! (a process a later deploy replaced, a recovery try that gave up), or an
//! older run of the job.
//! (A `TxnCommitReplayed` re-announces a marker made durable earlier, so it
//! is not a new acceptance.)

use super::{ms, Ctx, Finding};
use crate::history::Ev;
use exactsim_engine::observe::Event;
use std::collections::BTreeMap;

/// Who initialized a transactional id. Field order is the order of owners:
/// a newer run takes an id over whatever its attempt, a newer attempt
/// whatever its session.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Owner {
    run: u64,
    attempt: u64,
    session: (u64, u64),
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (deploy, try_) = self.session;
        write!(f, "job attempt {} (run {}, session: deploy {deploy}, try {try_})", self.attempt, self.run)
    }
}

pub fn check(c: &Ctx) -> Vec<Finding> {
    let mut v = Vec::new();
    let mut current: BTreeMap<&str, (u64, u64)> = BTreeMap::new(); // txn -> (epoch, time)
    let mut owner: BTreeMap<&str, (Owner, u64)> = BTreeMap::new(); // txn -> (owner, time)
    for s in &c.h.events {
        let Ev::Engine(e) = &s.ev else { continue };
        let (txn, epoch, what) = match e {
            Event::ProducerInit { txn, epoch, run, attempt, session, .. } => {
                let claim = Owner { run: *run, attempt: *attempt, session: *session };
                if let Some((newer, t)) = owner.get(txn.as_str()).filter(|(o, _)| claim < *o) {
                    v.push(Finding::new(Some(s.t_us),
                        format!(
                            "{txn}: the broker accepted a producer init of {claim} (epoch {epoch}) at {}, after {newer} took the id over at {}",
                            ms(s.t_us),
                            ms(*t)
                        ),
                    ));
                } else {
                    owner.insert(txn.as_str(), (claim, s.t_us));
                }
                current.insert(txn.as_str(), (*epoch, s.t_us));
                continue;
            }
            Event::AppendAccepted { txn, epoch, partition, records } => {
                (txn, epoch, format!("an append of {records} records to partition {partition}"))
            }
            Event::TxnCommitted { txn, epoch, out } => (txn, epoch, format!("a commit of {} records", out.len())),
            _ => continue,
        };
        if let Some((cur, t)) = current.get(txn.as_str()).filter(|(cur, _)| epoch < cur) {
            v.push(Finding::new(Some(s.t_us),
                format!(
                    "{txn}: the broker accepted {what} with epoch {epoch} at {}, after the producer was fenced by epoch {cur} at {}",
                    ms(s.t_us),
                    ms(*t)
                ),
            ));
        }
    }
    v
}
