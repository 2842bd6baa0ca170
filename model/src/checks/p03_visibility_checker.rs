//! P3 — no output becomes visible before a completed checkpoint covers it
//! (exactly-once mode).
//!
//! How: "covered at time t" means the out_id is in the batch reference over
//! the offsets of the highest checkpoint completed at or before t (nothing
//! is covered before the first completion). Checked for every record of
//! every commit at the broker (`TxnCommitted`, or a first-time
//! `TxnCommitReplayed`), at the time of the event, naming the transaction
//! and the checkpoint it was pre-committed for; and for every record a
//! `read_committed` reader saw, at the time of the observation, naming the
//! transaction that committed it.

use super::{first_few, ms, rec, Ctx, Finding};
use exactsim_engine::types::OutRecord;

pub fn check(c: &Ctx) -> Vec<Finding> {
    let mut v = Vec::new();
    for cm in &c.commits {
        let ck = c.latest_completed(cm.t_us);
        let covers = c.covers(ck);
        let early: Vec<&OutRecord> = cm.out.iter().filter(|o| !covers(o.out_id)).collect();
        if early.is_empty() {
            continue;
        }
        let pre = match c.precommits.get(&(cm.txn.clone(), cm.epoch)) {
            Some((p, _)) => format!("pre-committed for checkpoint {p}"),
            None => "never pre-committed".to_string(),
        };
        v.push(Finding::new(Some(cm.t_us),
            format!(
                "transaction {} epoch {} ({pre}) made {} records visible at {} that the latest completed checkpoint {ck} does not cover: {}",
                cm.txn,
                cm.epoch,
                early.len(),
                ms(cm.t_us),
                first_few(early.iter().map(|o| rec(o)))
            ),
        ));
    }
    for obs in &c.h.observations {
        let ck = c.latest_completed(obs.t_us);
        let covers = c.covers(ck);
        let early: Vec<&OutRecord> = obs.new_records.iter().filter(|o| !covers(o.out_id)).collect();
        if early.is_empty() {
            continue;
        }
        v.push(Finding::new(Some(obs.t_us),
            format!(
                "a reader of partition {} saw {} records at {} that the latest completed checkpoint {ck} does not cover: {}",
                obs.partition,
                early.len(),
                ms(obs.t_us),
                first_few(early.iter().map(|o| format!("{} from [{}]", rec(o), c.carriers(o.out_id).join("; "))))
            ),
        ));
    }
    v
}
