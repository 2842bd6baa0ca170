//! P4 — checkpoint ids and producer epochs strictly increase, across
//! restarts too; recovery never picks a checkpoint older than one whose
//! transactions were already committed.

use super::{ms, Ctx, Violation};
use crate::history::Ev;
use exactsim_engine::observe::Event;
use std::collections::BTreeMap;

pub fn check(c: &Ctx) -> Vec<Violation> {
    let mut v = Vec::new();
    let mut last_id: Option<u64> = None;
    let mut epochs: BTreeMap<String, u64> = BTreeMap::new();
    let mut committed_max: Option<u64> = None;
    for s in &c.h.events {
        match &s.ev {
            Ev::Engine(Event::CheckpointTriggered { ckpt, .. }) => {
                if let Some(l) = last_id.filter(|l| ckpt <= l) {
                    v.push(Violation::new(
                        "P4",
                        Some(s.t_us),
                        format!(
                            "checkpoint id {ckpt} triggered at {} after id {l}: ids must strictly increase",
                            ms(s.t_us)
                        ),
                    ));
                }
                last_id = Some(last_id.map_or(*ckpt, |l| l.max(*ckpt)));
            }
            Ev::Engine(Event::ProducerInit { txn, epoch, .. }) => {
                if let Some(e) = epochs.get(txn).filter(|e| epoch <= e) {
                    v.push(Violation::new(
                        "P4",
                        Some(s.t_us),
                        format!("producer {txn} got epoch {epoch} at {} after epoch {e}", ms(s.t_us)),
                    ));
                }
                epochs.insert(txn.clone(), *epoch);
            }
            Ev::Engine(Event::TxnCommitted { txn, epoch, .. })
            | Ev::Engine(Event::TxnCommitReplayed { txn, epoch, .. }) => {
                if let Some((ck, _)) = c.precommits.get(&(txn.clone(), *epoch)) {
                    committed_max = Some(committed_max.map_or(*ck, |m| m.max(*ck)));
                }
            }
            Ev::Engine(Event::RecoveryStarted { attempt, from, .. }) => {
                if let Some(m) = committed_max {
                    if from.is_none_or(|f| f < m) {
                        v.push(Violation::new(
                            "P4",
                            Some(s.t_us),
                            format!("recovery of attempt {attempt} at {} restores checkpoint {from:?}, older than checkpoint {m} whose transactions were committed", ms(s.t_us)),
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    v
}
