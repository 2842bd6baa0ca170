//! P5 — `notify_complete(n)` commits everything pending up to `n`, in
//! order: per sink subtask, nothing with a lower checkpoint id is committed
//! after a higher one (exactly-once mode).
//!
//! How: the first-time commits at the broker (`TxnCommitted`, or a
//! `TxnCommitReplayed` never announced before; a repeated commit of the same
//! (txn, epoch) is P6's business) are attributed to a sink subtask by the
//! transaction name (`{job}-sink-{subtask}-{n}`) and to a checkpoint by the
//! `PreCommitted` of that (txn, epoch). Per subtask, the checkpoint ids of
//! that sequence must not decrease. A commit with no pre-commit is not
//! ordered here (P3 reports it if it became visible too early).

use super::{ms, txn_subtask, Ctx, Violation};
use exactsim_engine::types::CheckpointId;
use std::collections::{BTreeMap, BTreeSet};

pub fn check(c: &Ctx) -> Vec<Violation> {
    let mut v = Vec::new();
    // subtask -> highest checkpoint committed so far: (ckpt, txn, epoch, time)
    let mut last: BTreeMap<u32, (CheckpointId, &str, u64, u64)> = BTreeMap::new();
    let mut seen: BTreeSet<(&str, u64)> = BTreeSet::new();
    for cm in &c.commits {
        if !seen.insert((cm.txn.as_str(), cm.epoch)) {
            continue;
        }
        let (Some(sub), Some((ck, _))) = (txn_subtask(&cm.txn), c.precommits.get(&(cm.txn.clone(), cm.epoch))) else {
            continue;
        };
        match last.get(&sub) {
            Some((prev, ptxn, pepoch, pt)) if ck < prev => v.push(Violation::new(
                "P5",
                Some(cm.t_us),
                format!(
                    "sink {sub} committed {} epoch {} (checkpoint {ck}) at {} after it committed {ptxn} epoch {pepoch} (checkpoint {prev}) at {}",
                    cm.txn,
                    cm.epoch,
                    ms(cm.t_us),
                    ms(*pt)
                ),
            )),
            _ => {
                last.insert(sub, (*ck, cm.txn.as_str(), cm.epoch, cm.t_us));
            }
        }
    }
    v
}
