//! P3 — no output becomes visible before a completed checkpoint covers it:
//! every record of a committed transaction (and every record a reader
//! sees) is in the reference over the input prefix of a checkpoint
//! completed by then.

use super::{ms, Ctx, Violation};

pub fn check(c: &Ctx) -> Vec<Violation> {
    let mut v = Vec::new();
    let latest = |t: u64| c.completed_by(t).max().unwrap_or(0);
    for cm in &c.commits {
        let (txn, epoch, out, s) = (&cm.txn, &cm.epoch, &cm.out, cm);
        {
            let ck = latest(s.t_us);
            let covered = c.reference_at(ck);
            if let Some(o) = out.iter().find(|o| !covered.contains_key(&o.out_id)) {
                let pre = c.precommits.get(&(txn.clone(), *epoch)).map(|x| x.0);
                v.push(Violation::new(
                    "P3",
                    Some(s.t_us),
                    format!(
                        "transaction {txn} epoch {epoch} (pre-committed for checkpoint {pre:?}) made out_id {} (key {}) visible at {} but the latest completed checkpoint {ck} does not cover it",
                        o.out_id,
                        o.key,
                        ms(s.t_us)
                    ),
                ));
            }
        }
    }
    for obs in &c.h.observations {
        let ck = latest(obs.t_us);
        let covered = c.reference_at(ck);
        if let Some(o) = obs.new_records.iter().find(|o| !covered.contains_key(&o.out_id)) {
            v.push(Violation::new(
                "P3",
                Some(obs.t_us),
                format!("reader saw out_id {} at {} not covered by completed checkpoint {ck}", o.out_id, ms(obs.t_us)),
            ));
        }
    }
    v
}
