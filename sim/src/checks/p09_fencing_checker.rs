//! P9 — after fencing, nothing from an older producer epoch or an older job
//! attempt is accepted or becomes visible (exactly-once mode).
//!
//! How: in event order, remember per transactional id the newest
//! `ProducerInit` epoch and the newest job attempt that initialized it
//! (its owner). A later `AppendAccepted` or `TxnCommitted` for that id with
//! a lower epoch is a zombie write that got through; a later
//! `ProducerInit` from an older attempt than the owner's is a zombie of a
//! replaced attempt (late, or resumed from a pause) that took the id back.
//! (A `TxnCommitReplayed` re-announces a marker made durable earlier, so it
//! is not a new acceptance.)

use super::{ms, Ctx, Violation};
use crate::history::Ev;
use exactsim_engine::observe::Event;
use std::collections::BTreeMap;

pub fn check(c: &Ctx) -> Vec<Violation> {
    let mut v = Vec::new();
    let mut current: BTreeMap<&str, (u64, u64)> = BTreeMap::new(); // txn -> (epoch, time)
    let mut owner: BTreeMap<&str, (u64, u64)> = BTreeMap::new(); // txn -> (attempt, time)
    for s in &c.h.events {
        let Ev::Engine(e) = &s.ev else { continue };
        let (txn, epoch, what) = match e {
            Event::ProducerInit { txn, epoch, attempt, .. } => {
                if let Some((newer, t)) = owner.get(txn.as_str()).filter(|(a, _)| attempt < a) {
                    v.push(Violation::new(
                        "P9",
                        Some(s.t_us),
                        format!(
                            "{txn}: the broker accepted a producer init of job attempt {attempt} (epoch {epoch}) at {}, after attempt {newer} took the id over at {}",
                            ms(s.t_us),
                            ms(*t)
                        ),
                    ));
                } else {
                    owner.insert(txn.as_str(), (*attempt, s.t_us));
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
            v.push(Violation::new(
                "P9",
                Some(s.t_us),
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
