//! The oracles. Each `*_checker.rs` checks one invariant of SPEC §5 on the
//! recorded [`History`] only; it never looks inside the engine.

mod p01_output_checker;
mod p02_prefix_checker;
mod p03_visibility_checker;
mod p04_monotonic_checker;
mod p05_commit_order_checker;
mod p06_apply_once_checker;
mod p07_precommit_checker;
mod p08_open_txn_checker;
mod p09_fencing_checker;
mod p10_restore_checker;
mod p11_liveness_checker;
mod p12_at_least_once_checker;

use crate::history::{Ev, History};
use crate::scenario::Scenario;
use exactsim_engine::observe::Event;
use exactsim_engine::types::{CheckpointId, DeliveryMode, OutRecord};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq)]
pub struct Commit {
    pub t_us: u64,
    pub txn: String,
    pub epoch: u64,
    pub out: Vec<OutRecord>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Violation {
    pub check: &'static str,
    pub message: String,
    pub t_us: Option<u64>,
}

impl Violation {
    pub fn new(check: &'static str, t_us: Option<u64>, message: String) -> Violation {
        Violation { check, message, t_us }
    }
}

pub struct CheckInput<'a> {
    pub history: &'a History,
    pub scenario: &'a dyn Scenario,
}

/// Output accounting against the batch reference (SPEC §8 names).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OutputCounts {
    pub expected: u64,
    pub committed: u64,
    pub duplicates: u64,
    pub lost: u64,
    /// Present, but with another value than the reference.
    pub wrong: u64,
    /// Not in the reference at all.
    pub unexpected: u64,
}

/// Most violations a single check reports.
pub const MAX_PER_CHECK: usize = 5;

/// Shared views of the history that several checkers need.
pub struct Ctx<'a> {
    pub h: &'a History,
    pub scenario: &'a dyn Scenario,
    pub reference: Vec<OutRecord>,
    /// Completed checkpoints in completion order: (time, id, offsets).
    pub completed: Vec<(u64, CheckpointId, Vec<u64>)>,
    /// Source offsets at each checkpoint's barrier, by source (the cut),
    /// known once every source acknowledged it.
    pub cuts: BTreeMap<CheckpointId, Vec<Option<u64>>>,
    /// First-time commits in time order (announced, or found at a broker
    /// recovery without an announcement).
    pub commits: Vec<Commit>,
    /// (txn, epoch) -> checkpoint it was pre-committed for, and its records.
    pub precommits: BTreeMap<(String, u64), (CheckpointId, u64)>,
    refs: std::cell::RefCell<BTreeMap<CheckpointId, std::rc::Rc<BTreeMap<u64, OutRecord>>>>,
}

impl<'a> Ctx<'a> {
    pub fn new(h: &'a History, scenario: &'a dyn Scenario) -> Ctx<'a> {
        let full: Vec<u64> = h.input.iter().map(|p| p.len() as u64).collect();
        let reference = scenario.reference(&h.input, &full);
        let mut completed = Vec::new();
        let mut precommits = BTreeMap::new();
        let mut cuts: BTreeMap<CheckpointId, Vec<Option<u64>>> = BTreeMap::new();
        let mut commits = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for s in &h.events {
            match &s.ev {
                Ev::Engine(Event::TxnCommitted { txn, epoch, out })
                | Ev::Engine(Event::TxnCommitReplayed { txn, epoch, out }) => {
                    let first = seen.insert((txn.clone(), *epoch));
                    let replay = matches!(s.ev, Ev::Engine(Event::TxnCommitReplayed { .. }));
                    if first || !replay {
                        commits.push(Commit { t_us: s.t_us, txn: txn.clone(), epoch: *epoch, out: out.clone() });
                    }
                }
                Ev::Engine(Event::SourceBarrier { source, ckpt, offset, .. }) => {
                    cuts.entry(*ckpt).or_insert_with(|| vec![None; h.input.len()])[*source as usize] = Some(*offset);
                }
                Ev::Engine(Event::CheckpointCompleted { ckpt, offsets, .. }) => {
                    completed.push((s.t_us, *ckpt, offsets.clone()))
                }
                Ev::Engine(Event::PreCommitted { ckpt, txn, epoch, records, .. }) => {
                    precommits.insert((txn.clone(), *epoch), (*ckpt, *records));
                }
                _ => {}
            }
        }
        Ctx { h, scenario, reference, completed, precommits, cuts, commits, refs: Default::default() }
    }

    /// The reference over the input prefix of completed checkpoint `ckpt`
    /// (0: nothing processed), by out_id.
    pub fn reference_at(&self, ckpt: CheckpointId) -> std::rc::Rc<BTreeMap<u64, OutRecord>> {
        if let Some(r) = self.refs.borrow().get(&ckpt) {
            return r.clone();
        }
        let offsets = if ckpt == 0 {
            vec![0; self.h.input.len()]
        } else if let Some(c) = self.completed.iter().find(|c| c.1 == ckpt) {
            c.2.clone()
        } else {
            self.cut(ckpt).expect("a checkpoint with a known cut")
        };
        let m: BTreeMap<u64, OutRecord> =
            self.scenario.reference(&self.h.input, &offsets).into_iter().map(|o| (o.out_id, o)).collect();
        let r = std::rc::Rc::new(m);
        self.refs.borrow_mut().insert(ckpt, r.clone());
        r
    }

    /// The complete cut of a checkpoint, if every source reported it.
    pub fn cut(&self, ckpt: CheckpointId) -> Option<Vec<u64>> {
        self.cuts.get(&ckpt)?.iter().copied().collect()
    }

    /// Checkpoints completed at or before `t_us` (ids, in completion order).
    pub fn completed_by(&self, t_us: u64) -> impl Iterator<Item = CheckpointId> + '_ {
        self.completed.iter().filter(move |c| c.0 <= t_us).map(|c| c.1)
    }

    pub fn partition_of(&self, key: u64) -> u32 {
        exactsim_engine::types::key_to_subtask(key, self.h.parallelism)
    }
}

pub fn ms(t_us: u64) -> String {
    format!("{:.1}ms", t_us as f64 / 1000.0)
}

/// The subtask a transaction name belongs to (`{job}-sink-{subtask}-{n}`).
pub fn txn_subtask(name: &str) -> Option<u32> {
    let rest = &name[name.rfind("-sink-")? + 6..];
    rest.split('-').next()?.parse().ok()
}

pub fn output_counts(h: &History, reference: &[OutRecord]) -> OutputCounts {
    let want: BTreeMap<u64, &OutRecord> = reference.iter().map(|o| (o.out_id, o)).collect();
    let mut seen: BTreeMap<u64, u64> = BTreeMap::new();
    let mut c = OutputCounts { expected: reference.len() as u64, ..Default::default() };
    for o in h.final_output.iter().flatten() {
        c.committed += 1;
        let n = seen.entry(o.out_id).or_insert(0);
        *n += 1;
        match want.get(&o.out_id) {
            None => c.unexpected += 1,
            Some(w) if *n == 1 && *w != o => c.wrong += 1,
            _ => {}
        }
        if *n > 1 {
            c.duplicates += 1;
        }
    }
    c.lost = want.keys().filter(|k| !seen.contains_key(k)).count() as u64;
    c
}

pub fn check_all(input: &CheckInput) -> (Vec<Violation>, OutputCounts) {
    let ctx = Ctx::new(input.history, input.scenario);
    let counts = output_counts(input.history, &ctx.reference);
    let mut v = Vec::new();
    let eo = input.history.mode == DeliveryMode::ExactlyOnce;
    if eo {
        v.extend(p01_output_checker::check(&ctx).into_iter().take(MAX_PER_CHECK));
        v.extend(p02_prefix_checker::check(&ctx).into_iter().take(MAX_PER_CHECK));
        v.extend(p03_visibility_checker::check(&ctx).into_iter().take(MAX_PER_CHECK));
        v.extend(p05_commit_order_checker::check(&ctx).into_iter().take(MAX_PER_CHECK));
        v.extend(p06_apply_once_checker::check(&ctx).into_iter().take(MAX_PER_CHECK));
        v.extend(p07_precommit_checker::check(&ctx).into_iter().take(MAX_PER_CHECK));
        v.extend(p08_open_txn_checker::check(&ctx).into_iter().take(MAX_PER_CHECK));
        v.extend(p09_fencing_checker::check(&ctx).into_iter().take(MAX_PER_CHECK));
        v.extend(p10_restore_checker::check(&ctx).into_iter().take(MAX_PER_CHECK));
    } else {
        v.extend(p12_at_least_once_checker::check(&ctx).into_iter().take(MAX_PER_CHECK));
    }
    v.extend(p04_monotonic_checker::check(&ctx).into_iter().take(MAX_PER_CHECK));
    v.extend(p11_liveness_checker::check(&ctx).into_iter().take(MAX_PER_CHECK));
    v.sort_by(|a, b| (a.check, a.t_us).cmp(&(b.check, b.t_us)));
    (v, counts)
}

#[cfg(test)]
mod tests;
