//! P5 — `notify_complete(n)` commits everything pending up to `n`, in
//! order: per sink subtask, nothing with a lower checkpoint id is committed
//! after a higher one (exactly-once mode).
//!
//! How: every transaction the engine pre-committed (`PreCommitted{task,
//! ckpt, txn, epoch}`: the subtask and checkpoint as the engine recorded
//! them, never parsed out of the transaction's name) gets the time of its
//! first commit: the earlier of the sink's first `CommitConfirmed` for that
//! (txn, epoch) and the first commit of that (txn, epoch) by the sink's
//! system (`TxnCommitted`, or a `TxnCommitReplayed` never announced before;
//! a repeated commit is P6's business). Per subtask, in the order of those
//! first commits, the checkpoint ids must not decrease.

use super::{ms, Ctx, Finding};
use exactsim_engine::types::CheckpointId;
use std::collections::BTreeMap;

pub fn check(c: &Ctx) -> Vec<Finding> {
    // (txn, epoch) -> first commit time, over both sources.
    let mut first: BTreeMap<(&str, u64), u64> = BTreeMap::new();
    for cm in &c.commits {
        first.entry((cm.txn.as_str(), cm.epoch)).or_insert(cm.t_us);
    }
    for ((txn, epoch), t) in &c.confirmed {
        let e = first.entry((txn.as_str(), *epoch)).or_insert(*t);
        *e = (*e).min(*t);
    }
    // (subtask) -> [(time, ckpt, txn, epoch)] of the pre-committed ones.
    let mut per: BTreeMap<u32, Vec<(u64, CheckpointId, &str, u64)>> = BTreeMap::new();
    for ((txn, epoch), (ck, _)) in &c.precommits {
        let (Some(t), Some(sub)) =
            (first.get(&(txn.as_str(), *epoch)), c.precommit_subtask.get(&(txn.clone(), *epoch)))
        else {
            continue;
        };
        per.entry(*sub).or_default().push((*t, *ck, txn.as_str(), *epoch));
    }
    let mut v = Vec::new();
    for (sub, mut seq) in per {
        seq.sort();
        let mut last: Option<(u64, CheckpointId, &str, u64)> = None;
        for (t, ck, txn, epoch) in seq {
            match last {
                Some((pt, prev, ptxn, pepoch)) if ck < prev => v.push(Finding::new(Some(t),
                    format!(
                        "sink {sub} committed {txn} epoch {epoch} (checkpoint {ck}) at {} after it committed {ptxn} epoch {pepoch} (checkpoint {prev}) at {}",
                        ms(t),
                        ms(pt)
                    ),
                )),
                _ => last = Some((t, ck, txn, epoch)),
            }
        }
    }
    v
}
