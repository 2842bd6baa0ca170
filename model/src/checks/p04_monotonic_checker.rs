//! P4 — checkpoint ids and producer epochs strictly increase, across
//! restarts too; recovery never picks a checkpoint older than one whose
//! side effects were already committed (both modes; the epoch and commit
//! parts only see events in exactly-once mode).
//!
//! How, in one pass over the events in time order:
//! - every `CheckpointTriggered` id is above every id triggered before it,
//!   whatever the attempt or coordinator incarnation;
//! - every `ProducerInit` epoch of a transactional id is above the
//!   previous epoch of that id, and, within one broker incarnation, the
//!   very next one: an epoch is consumed only by a durable init (the one
//!   before it) or a timeout abort (`TxnAborted` with the broker's
//!   `EXPIRED_REASON`, which bumps it), so an epoch skipped was consumed by
//!   a step the log never held (a new id starts at 0 in the broker's first
//!   incarnation; after a broker restart the next epoch of every id is
//!   free, since events of durable entries may have been lost in the crash;
//!   incarnations are counted by `BrokerRecovered`);
//! - a `RecoveryStarted{from}` is not older than the highest checkpoint
//!   with a commit seen before it: a sink's `CommitConfirmed{ckpt}`, or a
//!   broker commit (`TxnCommitted`, first-time `TxnCommitReplayed`) mapped
//!   to its checkpoint by the `PreCommitted` of that (txn, epoch). A fresh
//!   start (`from: None`) counts as older than any such checkpoint.

use super::{ms, Ctx, Finding};
use crate::history::Ev;
use exactsim_engine::broker::EXPIRED_REASON;
use exactsim_engine::observe::Event;
use exactsim_engine::types::CheckpointId;
use std::collections::BTreeMap;

pub fn check(c: &Ctx) -> Vec<Finding> {
    let mut v = Vec::new();
    let mut last_id: Option<(CheckpointId, u64, u64)> = None; // (id, attempt, time)
    let mut epochs: BTreeMap<&str, (u64, u64)> = BTreeMap::new(); // txn -> (epoch, time)
                                                                  // txn -> (the next epoch the log may issue, the broker incarnation
                                                                  // that said so); broker incarnations so far.
    let mut next: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    let mut incarnations = 0u64;
    // The highest checkpoint with committed side effects, and what showed it.
    let mut committed: Option<(CheckpointId, String)> = None;
    let note = |ck: CheckpointId, what: String, committed: &mut Option<(CheckpointId, String)>| {
        if committed.as_ref().is_none_or(|(m, _)| ck > *m) {
            *committed = Some((ck, what));
        }
    };
    for s in &c.h.events {
        let Ev::Engine(e) = &s.ev else { continue };
        match e {
            Event::CheckpointTriggered { attempt, ckpt } => {
                if let Some((l, la, lt)) = last_id.filter(|(l, _, _)| ckpt <= l) {
                    v.push(Finding::new(Some(s.t_us),
                        format!(
                            "checkpoint {ckpt} triggered at {} (attempt {attempt}, {}) after checkpoint {l} was triggered at {} (attempt {la}): ids must strictly increase",
                            ms(s.t_us),
                            s.node,
                            ms(lt)
                        ),
                    ));
                }
                if last_id.is_none_or(|(l, _, _)| *ckpt > l) {
                    last_id = Some((*ckpt, *attempt, s.t_us));
                }
            }
            Event::ProducerInit { txn, epoch, .. } => {
                if let Some((e0, t0)) = epochs.get(txn.as_str()).filter(|(e0, _)| epoch <= e0) {
                    v.push(Finding::new(Some(s.t_us),
                        format!(
                            "producer {txn} got epoch {epoch} at {} after it had epoch {e0} at {}: epochs must strictly increase",
                            ms(s.t_us),
                            ms(*t0)
                        ),
                    ));
                }
                if epochs.get(txn.as_str()).is_none_or(|(e0, _)| epoch > e0) {
                    epochs.insert(txn, (*epoch, s.t_us));
                }
                // Only in a history that shows the broker's incarnations.
                let expected = match next.get(txn.as_str()) {
                    Some((n, inc)) if *inc == incarnations && incarnations > 0 => Some(*n),
                    Some(_) => None,
                    None => (incarnations == 1).then_some(0),
                };
                if let Some(n) = expected.filter(|n| epoch > n) {
                    v.push(Finding::new(Some(s.t_us),
                        format!(
                            "producer {txn} got epoch {epoch} at {} ({}) where the log's next epoch was {n}: epochs {n}..{} were consumed by no durable step",
                            ms(s.t_us),
                            s.node,
                            epoch - 1
                        ),
                    ));
                }
                next.insert(txn, (epoch + 1, incarnations));
            }
            Event::TxnAborted { txn, epoch, reason } if reason == EXPIRED_REASON => {
                // The expiry took epoch + 1 (see `WalEntry::Expire`).
                next.insert(txn, (epoch + 2, incarnations));
            }
            Event::BrokerRecovered { .. } => incarnations += 1,
            Event::CommitConfirmed { task, ckpt, txn, epoch } => note(
                *ckpt,
                format!("{task} confirmed the commit of {txn} epoch {epoch} at {}", ms(s.t_us)),
                &mut committed,
            ),
            Event::TxnCommitted { txn, epoch, .. } | Event::TxnCommitReplayed { txn, epoch, .. } => {
                if let Some((ck, _)) = c.precommits.get(&(txn.clone(), *epoch)) {
                    note(*ck, format!("the broker committed {txn} epoch {epoch} at {}", ms(s.t_us)), &mut committed);
                }
            }
            Event::RecoveryStarted { attempt, from, reason } => {
                if let Some((m, what)) = committed.as_ref().filter(|(m, _)| from.is_none_or(|f| f < *m)) {
                    let from = from.map_or("no checkpoint (a fresh start)".to_string(), |f| format!("checkpoint {f}"));
                    v.push(Finding::new(Some(s.t_us),
                        format!(
                            "recovery of attempt {attempt} at {} ({reason}) restores {from}, older than checkpoint {m} whose transactions were already committed ({what})",
                            ms(s.t_us)
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    v
}
