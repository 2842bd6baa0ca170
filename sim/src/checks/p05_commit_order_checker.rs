//! P5 — `notify_complete(n)` commits everything pending up to `n` in order:
//! per sink subtask, transactions become committed in non-decreasing
//! checkpoint order; nothing with a lower id is committed after a higher
//! one.

use super::{ms, txn_subtask, Ctx, Violation};
use std::collections::BTreeMap;

pub fn check(c: &Ctx) -> Vec<Violation> {
    let mut v = Vec::new();
    let mut last: BTreeMap<u32, (u64, String)> = BTreeMap::new();
    for s in &c.commits {
        let (txn, epoch) = (&s.txn, &s.epoch);
        {
            let (Some(sub), Some((ck, _))) = (txn_subtask(txn), c.precommits.get(&(txn.clone(), *epoch))) else {
                continue;
            };
            if let Some((prev, prev_txn)) = last.get(&sub) {
                if ck < prev {
                    v.push(Violation::new(
                        "P5",
                        Some(s.t_us),
                        format!(
                            "sink {sub} committed {txn} (checkpoint {ck}) at {} after {prev_txn} (checkpoint {prev})",
                            ms(s.t_us)
                        ),
                    ));
                }
            }
            if last.get(&sub).is_none_or(|(p, _)| ck >= p) {
                last.insert(sub, (*ck, txn.clone()));
            }
        }
    }
    v
}
