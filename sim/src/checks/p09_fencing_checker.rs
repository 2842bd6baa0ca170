//! P9 — after fencing, nothing from an older producer epoch becomes
//! visible: once a transactional id got epoch `e`, no append or commit with
//! an epoch below `e` is accepted for it.

use super::{ms, Ctx, Violation};
use crate::history::Ev;
use exactsim_engine::observe::Event;
use std::collections::BTreeMap;

pub fn check(c: &Ctx) -> Vec<Violation> {
    let mut v = Vec::new();
    let mut current: BTreeMap<String, u64> = BTreeMap::new();
    for s in &c.h.events {
        match &s.ev {
            Ev::Engine(Event::ProducerInit { txn, epoch, .. }) => {
                current.insert(txn.clone(), *epoch);
            }
            Ev::Engine(Event::AppendAccepted { txn, epoch, .. })
            | Ev::Engine(Event::TxnCommitted { txn, epoch, .. }) => {
                if let Some(cur) = current.get(txn).filter(|cur| epoch < cur) {
                    v.push(Violation::new(
                        "P9",
                        Some(s.t_us),
                        format!("{txn}: epoch {epoch} accepted at {} after it was fenced by epoch {cur}", ms(s.t_us)),
                    ));
                }
            }
            _ => {}
        }
    }
    v
}
