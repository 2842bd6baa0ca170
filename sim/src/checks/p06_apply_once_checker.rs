//! P6 — every transaction is applied at most once, and re-committing after
//! recovery changes nothing: no (transaction, epoch) committed twice, and no
//! output record carried by two committed transactions.

use super::{ms, Ctx, Violation};
use std::collections::BTreeMap;

pub fn check(c: &Ctx) -> Vec<Violation> {
    let mut v = Vec::new();
    let mut applied: BTreeMap<(String, u64), u64> = BTreeMap::new();
    let mut carrier: BTreeMap<u64, (String, u64)> = BTreeMap::new();
    for s in &c.commits {
        let (txn, epoch, out) = (&s.txn, &s.epoch, &s.out);
        {
            if let Some(t) = applied.insert((txn.clone(), *epoch), s.t_us) {
                v.push(Violation::new(
                    "P6",
                    Some(s.t_us),
                    format!("transaction {txn} epoch {epoch} applied twice (at {} and {})", ms(t), ms(s.t_us)),
                ));
            }
            for o in out {
                if let Some((t2, e2)) = carrier.insert(o.out_id, (txn.clone(), *epoch)) {
                    v.push(Violation::new(
                        "P6",
                        Some(s.t_us),
                        format!("out_id {} (key {}) committed by {txn} epoch {epoch} at {} was already committed by {t2} epoch {e2}", o.out_id, o.key, ms(s.t_us)),
                    ));
                    break;
                }
            }
        }
    }
    v
}
