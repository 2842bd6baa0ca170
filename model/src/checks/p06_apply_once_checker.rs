//! P6 — every transaction is applied at most once, and re-committing after
//! recovery changes nothing (exactly-once mode).
//!
//! How: over the commits at the broker in time order (every `TxnCommitted`,
//! and a `TxnCommitReplayed` only when that (txn, epoch) was never
//! announced: a replay of an announced commit is the same application), no
//! (txn, epoch) is committed twice, no out_id appears twice within one
//! committed transaction, and no out_id is carried by two committed
//! transactions. Each violation names the out_ids (first few, with the
//! count), both transactions with their epochs and the times.

use super::{first_few, ms, rec, Ctx, Finding};
use std::collections::{BTreeMap, BTreeSet};

pub fn check(c: &Ctx) -> Vec<Finding> {
    let mut v = Vec::new();
    let mut applied: BTreeMap<(&str, u64), u64> = BTreeMap::new();
    // out_id -> (txn, epoch, time) of the commit that first carried it
    let mut carrier: BTreeMap<u64, (&str, u64, u64)> = BTreeMap::new();
    for cm in &c.commits {
        if let Some(t) = applied.insert((cm.txn.as_str(), cm.epoch), cm.t_us) {
            v.push(Finding::new(
                Some(cm.t_us),
                format!(
                    "transaction {} epoch {} applied twice: at {} and again at {} ({} records)",
                    cm.txn,
                    cm.epoch,
                    ms(t),
                    ms(cm.t_us),
                    cm.out.len()
                ),
            ));
            continue; // its records are the same application's
        }
        let mut within = Vec::new();
        let mut across: BTreeMap<(&str, u64, u64), Vec<String>> = BTreeMap::new();
        let mut mine: BTreeSet<u64> = BTreeSet::new();
        for o in &cm.out {
            if !mine.insert(o.out_id) {
                within.push(rec(o));
                continue;
            }
            if let Some(prev) = carrier.get(&o.out_id) {
                across.entry(*prev).or_default().push(rec(o));
            } else {
                carrier.insert(o.out_id, (cm.txn.as_str(), cm.epoch, cm.t_us));
            }
        }
        if !within.is_empty() {
            v.push(Finding::new(
                Some(cm.t_us),
                format!(
                    "transaction {} epoch {} committed at {} carries {} out_ids twice: {}",
                    cm.txn,
                    cm.epoch,
                    ms(cm.t_us),
                    within.len(),
                    first_few(within)
                ),
            ));
        }
        for ((ptxn, pepoch, pt), recs) in across {
            v.push(Finding::new(Some(cm.t_us),
                format!(
                    "transaction {} epoch {} committed at {} re-applies {} out_ids already committed by {ptxn} epoch {pepoch} at {}: {}",
                    cm.txn,
                    cm.epoch,
                    ms(cm.t_us),
                    recs.len(),
                    ms(pt),
                    first_few(recs)
                ),
            ));
        }
    }
    v
}
