//! The oracles. Each `*_checker.rs` checks one invariant on the recorded
//! [`History`] only; it never looks inside the engine.
//!
//! [`CHECKS`] is the one table of the checks: each row holds the id, short
//! name, one-line meaning, the delivery mode it applies to and the oracle
//! that judges a history (`Judge::History`), so a check is declared, named
//! and run from one place. The run line, the JSON report, the campaign
//! table, the timeline and the README all read it, and an oracle reports
//! what it finds without naming its id ([`Finding`]): the row it ran from
//! gives the id.
//!
//! [`check_all`] builds one [`Ctx`] (the batch reference, the completed
//! checkpoints, the first-time commits, the pre-commits) and runs every
//! check that applies to the run's delivery mode ([`checks_for`]):
//! exactly-once runs P1–P11, P13–P16 and P21, at-least-once runs P4 (ids),
//! P11, P12, P15, P16 and P21 (and P17, P18 in a run of an upsert scenario,
//! which is always at-least-once); then the scenario's own checks (`Scenario::checks`), in every run.
//! [`ids_for`] lists them all, as every report does.
//!
//! Messages are one line each and name the records, keys, checkpoints,
//! transactions and simulated times involved; a check reports at most
//! [`MAX_PER_CHECK`] violations (the first ones).

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
mod p13_finish_checker;
mod p14_zombie_checker;
mod p15_interval_checker;
mod p16_retained_checker;
mod p17_upsert_final_checker;
mod p18_upsert_monotonic_checker;
mod p21_retry_checker;
mod prefixes;

use crate::history::{Ev, History};
use crate::scenario::{Scenario, ScenarioCheck};
use exactsim_engine::observe::Event;
use exactsim_engine::types::{CheckpointId, DeliveryMode, OutRecord};
use serde::{Deserialize, Serialize};
use std::cell::{OnceCell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

/// A transaction's records becoming visible at the broker: a `TxnCommitted`,
/// or a `TxnCommitReplayed` for a (txn, epoch) never announced before (its
/// marker was durable but the broker crashed before announcing it).
#[derive(Clone, Debug, PartialEq)]
pub struct Commit {
    pub t_us: u64,
    pub txn: String,
    pub epoch: u64,
    pub out: Vec<OutRecord>,
}

/// Which delivery mode a check applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applies {
    ExactlyOnce,
    AtLeastOnce,
    /// Both modes.
    Both,
    /// Runs of an upsert scenario (`Scenario::upsert_table`), which are
    /// at-least-once.
    UpsertTable,
}

impl Applies {
    pub fn name(self) -> &'static str {
        match self {
            Applies::ExactlyOnce => "exactly-once",
            Applies::AtLeastOnce => "at-least-once",
            Applies::Both => "both",
            Applies::UpsertTable => "upsert runs",
        }
    }

    pub fn covers(self, mode: DeliveryMode) -> bool {
        match self {
            Applies::Both => true,
            Applies::ExactlyOnce => mode == DeliveryMode::ExactlyOnce,
            Applies::AtLeastOnce => mode == DeliveryMode::AtLeastOnce,
            Applies::UpsertTable => false,
        }
    }

    /// Whether a check applies to a run of `scenario` in `mode`.
    pub fn covers_run(self, scenario: &dyn Scenario, mode: DeliveryMode) -> bool {
        match self {
            Applies::UpsertTable => scenario.upsert_table(),
            _ => self.covers(mode),
        }
    }
}

/// How a check judges a run.
#[derive(Clone, Copy, Debug)]
pub enum Judge {
    /// An oracle over the recorded history: what it finds, each with its
    /// time and message (the table row gives the check id).
    History(fn(&Ctx) -> Vec<Finding>),
    /// Not an oracle: the runner reports a panic or failed assertion inside
    /// the run (or inside a check) under this check.
    Panic,
}

/// One check: what a user reads about it (id, name, meaning, mode) and how
/// it judges a run. An oracle's function sits in its row, so it cannot be
/// declared without running.
#[derive(Clone, Copy, Debug)]
pub struct CheckInfo {
    /// "P1" ..= "P16", or "panic".
    pub id: &'static str,
    /// A short name without spaces (`exactly-once-output`).
    pub name: &'static str,
    /// What the check asserts, in one line.
    pub meaning: &'static str,
    pub applies: Applies,
    pub judge: Judge,
}

/// The check id of a panic or failed assertion inside a run.
pub const PANIC_CHECK: &str = "panic";

/// Every check, in report order. `panic` is not an oracle over the history:
/// the runner reports a panic or failed assertion inside the run with it.
pub const CHECKS: [CheckInfo; 20] = [
    CheckInfo {
        id: "P1",
        name: "exactly-once-output",
        meaning: "at the end, the committed output equals the batch recomputation: nothing lost, duplicated or wrong",
        applies: Applies::ExactlyOnce,
        judge: Judge::History(p01_output_checker::check),
    },
    CheckInfo {
        id: "P2",
        name: "consistent-prefix",
        meaning:
            "during the run, a read_committed reader always sees the output of a completed checkpoint, never going back",
        applies: Applies::ExactlyOnce,
        judge: Judge::History(p02_prefix_checker::check),
    },
    CheckInfo {
        id: "P3",
        name: "no-early-visibility",
        meaning: "no output becomes visible before a completed checkpoint covers it",
        applies: Applies::ExactlyOnce,
        judge: Judge::History(p03_visibility_checker::check),
    },
    CheckInfo {
        id: "P4",
        name: "monotonic-ids",
        meaning:
            "checkpoint ids and producer epochs increase (epochs one by one); recovery never restarts before committed output",
        applies: Applies::Both,
        judge: Judge::History(p04_monotonic_checker::check),
    },
    CheckInfo {
        id: "P5",
        name: "commit-order",
        meaning: "each sink commits its pending transactions in checkpoint order",
        applies: Applies::ExactlyOnce,
        judge: Judge::History(p05_commit_order_checker::check),
    },
    CheckInfo {
        id: "P6",
        name: "apply-once",
        meaning: "every transaction is applied at most once; re-committing after recovery changes nothing",
        applies: Applies::ExactlyOnce,
        judge: Judge::History(p06_apply_once_checker::check),
    },
    CheckInfo {
        id: "P7",
        name: "precommit-committed",
        meaning: "a transaction pre-committed for a completed checkpoint is committed, as the system shows it, or its loss is reported",
        applies: Applies::ExactlyOnce,
        judge: Judge::History(p07_precommit_checker::check),
    },
    CheckInfo {
        id: "P8",
        name: "no-open-txn",
        meaning: "no transaction is left open after the job finished",
        applies: Applies::ExactlyOnce,
        judge: Judge::History(p08_open_txn_checker::check),
    },
    CheckInfo {
        id: "P9",
        name: "fencing",
        meaning: "after fencing, nothing from an older producer epoch, job attempt or producer session is accepted",
        applies: Applies::ExactlyOnce,
        judge: Judge::History(p09_fencing_checker::check),
    },
    CheckInfo {
        id: "P10",
        name: "consistent-restore",
        meaning: "restored state, source offsets and pending transactions all come from the same completed checkpoint",
        applies: Applies::ExactlyOnce,
        judge: Judge::History(p10_restore_checker::check),
    },
    CheckInfo {
        id: "P11",
        name: "liveness",
        meaning: "after the faults heal, the job commits all its input and finishes within the bound",
        applies: Applies::Both,
        judge: Judge::History(p11_liveness_checker::check),
    },
    CheckInfo {
        id: "P12",
        name: "no-loss",
        meaning: "every expected record is in the output at least once (duplicates allowed)",
        applies: Applies::AtLeastOnce,
        judge: Judge::History(p12_at_least_once_checker::check),
    },
    CheckInfo {
        id: "P13",
        name: "finish",
        meaning: "when the job reports finished, all its output is committed and no transaction is open",
        applies: Applies::ExactlyOnce,
        judge: Judge::History(p13_finish_checker::check),
    },
    CheckInfo {
        id: "P14",
        name: "fenced-writer",
        meaning: "once a newer owner of a sink subtask starts, nothing the older one writes becomes visible (any system)",
        applies: Applies::ExactlyOnce,
        judge: Judge::History(p14_zombie_checker::check),
    },
    CheckInfo {
        id: "P15",
        name: "adaptive-interval",
        meaning: "an adaptive checkpoint interval stays within its bounds and keeps checkpointing under 10% of unfaulted processing time",
        applies: Applies::Both,
        judge: Judge::History(p15_interval_checker::check),
    },
    CheckInfo {
        id: "P16",
        name: "retained-restorable",
        meaning: "every file a retained completed checkpoint refers to is in the checkpoint store, at every moment",
        applies: Applies::Both,
        judge: Judge::History(p16_retained_checker::check),
    },
    CheckInfo {
        id: "P17",
        name: "upsert-final",
        meaning: "at the end, the upsert table holds each key's final value of the batch recomputation, although deliveries duplicate",
        applies: Applies::UpsertTable,
        judge: Judge::History(p17_upsert_final_checker::check),
    },
    CheckInfo {
        id: "P18",
        name: "upsert-monotonic",
        meaning: "no reader of the upsert table ever sees a key's version go back",
        applies: Applies::UpsertTable,
        judge: Judge::History(p18_upsert_monotonic_checker::check),
    },
    CheckInfo {
        id: "P21",
        name: "no-retry-storm",
        meaning: "fewer than 10 retries of a task's recovery in any 6 s (10 a minute, scaled), in an outage and after",
        applies: Applies::Both,
        judge: Judge::History(p21_retry_checker::check),
    },
    CheckInfo {
        id: PANIC_CHECK,
        name: "panic",
        meaning: "a panic or failed assertion inside the run",
        applies: Applies::Both,
        judge: Judge::Panic,
    },
];

/// The table entry of a check id ("P1", "panic").
pub fn info(id: &str) -> Option<&'static CheckInfo> {
    CHECKS.iter().find(|c| c.id == id)
}

/// The short name of a check id, or "" for an unknown id.
pub fn name_of(id: &str) -> &'static str {
    info(id).map_or("", |c| c.name)
}

/// The oracles that run on a history of this mode, in report order
/// (`panic` is always watched, but is not an oracle).
pub fn checks_for(mode: DeliveryMode) -> impl Iterator<Item = &'static CheckInfo> {
    CHECKS.iter().filter(move |c| matches!(c.judge, Judge::History(_)) && c.applies.covers(mode))
}

/// The ids of every check that judges a run of `scenario` in `mode`, in
/// report order: the table's oracles for the mode, then the scenario's own
/// checks. Reports list these, so a scenario's checks show as run before
/// they ever fail.
pub fn ids_for(scenario: &dyn Scenario, mode: DeliveryMode) -> Vec<&'static str> {
    checks_for_run(scenario, mode).map(|c| c.id).chain(scenario.checks().iter().map(|c| c.id)).collect()
}

/// The oracles that run on a history of `scenario` in this mode, in report
/// order: [`checks_for`] and, for an upsert scenario, P17 and P18.
pub fn checks_for_run(scenario: &dyn Scenario, mode: DeliveryMode) -> impl Iterator<Item = &'static CheckInfo> + '_ {
    CHECKS.iter().filter(move |c| matches!(c.judge, Judge::History(_)) && c.applies.covers_run(scenario, mode))
}

/// The short name and the meaning of a check id in a run of `scenario`: a
/// table check's, or one of the scenario's own.
pub fn describe_in(scenario: &dyn Scenario, id: &str) -> Option<(&'static str, &'static str)> {
    match info(id) {
        Some(c) => Some((c.name, c.meaning)),
        None => scenario.checks().iter().find(|c| c.id == id).map(|c| (c.name, c.meaning)),
    }
}

/// The short name of a check id in a run of `scenario` ([`describe_in`]);
/// "" for an unknown id.
pub fn name_in(scenario: &dyn Scenario, id: &str) -> &'static str {
    describe_in(scenario, id).map_or("", |d| d.0)
}

/// What an oracle found: one broken invariant, before the table row it was
/// run from names its check (so the id is written in the table only).
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// One line naming what is wrong and the ids involved.
    pub message: String,
    /// Simulated time of the violation, when it has one.
    pub t_us: Option<u64>,
}

impl Finding {
    pub fn new(t_us: Option<u64>, message: String) -> Finding {
        assert!(!message.contains('\n'), "violation messages are one line");
        Finding { message, t_us }
    }
}

/// One broken invariant.
#[derive(Clone, Debug, PartialEq)]
pub struct Violation {
    /// A [`CHECKS`] id ("P1" ..= "P16", or "panic"), or the id of a
    /// scenario's own check (e.g. "inventory/no-oversell").
    pub check: &'static str,
    /// One line naming what is wrong and the ids involved.
    pub message: String,
    /// Simulated time of the violation, when it has one.
    pub t_us: Option<u64>,
}

impl Violation {
    pub fn new(check: &'static str, t_us: Option<u64>, message: String) -> Violation {
        assert!(!message.contains('\n'), "violation messages are one line");
        Violation { check, message, t_us }
    }
}

pub struct CheckInput<'a> {
    pub history: &'a History,
    pub scenario: &'a dyn Scenario,
}

/// Output accounting against the batch reference.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OutputCounts {
    /// Records in the batch reference over the whole input.
    pub expected: u64,
    /// Records a `read_committed` reader sees at the end.
    pub committed: u64,
    /// Extra copies of an out_id (a record seen 3 times counts 2).
    pub duplicates: u64,
    /// Reference out_ids not seen at all.
    pub lost: u64,
    /// Present, but with another key, value or source than the reference.
    pub wrong: u64,
    /// Not in the reference at all.
    pub unexpected: u64,
}

/// Most violations a single check reports.
pub const MAX_PER_CHECK: usize = 5;
/// Most ids a message lists before "(+N more)".
pub const MAX_LISTED: usize = 5;

/// Shared views of the history that several checkers need.
pub struct Ctx<'a> {
    pub h: &'a History,
    pub scenario: &'a dyn Scenario,
    /// The batch reference over the whole input.
    pub reference: Vec<OutRecord>,
    /// Completed checkpoints in the order they became known: (time, id,
    /// offsets). From `CheckpointCompleted`, and from the `completed` list
    /// of `CoordinatorRecovered` for a completion record that became
    /// durable but was never announced (then at the time of that event and
    /// at the checkpoint's cut).
    pub completed: Vec<(u64, CheckpointId, Vec<u64>)>,
    /// Source offsets at each checkpoint's barrier, by source (the cut),
    /// from `SourceBarrier` events.
    pub cuts: BTreeMap<CheckpointId, Vec<Option<u64>>>,
    /// Commits in time order: every `TxnCommitted`, and a replay only when
    /// its (txn, epoch) was not announced before.
    pub commits: Vec<Commit>,
    /// (txn, epoch) -> checkpoint it was pre-committed for, and its records,
    /// from the engine's `PreCommitted` (the transaction handle as the
    /// engine recorded it, whatever the sink's naming).
    pub precommits: BTreeMap<(String, u64), (CheckpointId, u64)>,
    /// (txn, epoch) -> the sink subtask that pre-committed it (from the
    /// `PreCommitted` event's task, never parsed out of a name).
    pub precommit_subtask: BTreeMap<(String, u64), u32>,
    /// (txn, epoch) -> the `out_id`s the engine handed the sink for it
    /// (`PreCommitted::out_ids`): what to look for in the system's output.
    pub precommit_out_ids: BTreeMap<(String, u64), Vec<u64>>,
    /// (txn, epoch) -> the first time the engine recorded a confirmed commit
    /// of that handle (`CommitConfirmed`).
    pub confirmed: BTreeMap<(String, u64), u64>,
    /// `completed` by time, each with the highest id completed up to it:
    /// [`Ctx::latest_completed`] by binary search (it is asked for every
    /// commit and every observation, and a scan made the checks quadratic
    /// in the run's length).
    latest: Vec<(u64, CheckpointId)>,
    refs: RefCell<BTreeMap<CheckpointId, Rc<BTreeMap<u64, OutRecord>>>>,
    /// The references of every candidate prefix ([`Ctx::candidates`]),
    /// walked incrementally; built on first use. `None` inside: the
    /// scenario has no incremental reference (or `whole_references`).
    prefixes: OnceCell<Option<prefixes::Prefixes>>,
    /// Compute each prefix's reference with the whole `Scenario::reference`
    /// (the oracle the incremental path is tested against).
    whole_references: bool,
    /// The scenario's pipeline: where each record belongs
    /// (`Pipeline::output_partition`).
    pipeline: std::sync::Arc<dyn exactsim_engine::pipeline::Pipeline>,
    /// The writer classes of the output ([`Ctx::writer_of`]): the job's
    /// parallelism, or with rescales the least common multiple of every
    /// parallelism the history shows (`Event::Rescaled`).
    pub writers: u32,
}

/// The least common multiple of the parallelisms a run deployed: keys
/// with the same key group modulo it were written by one subtask at every
/// moment of the run.
fn writer_classes(h: &History) -> u32 {
    fn gcd(a: u32, b: u32) -> u32 {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }
    let mut l = h.parallelism.max(1);
    for s in &h.events {
        if let Ev::Engine(Event::Rescaled { from, to, .. }) = &s.ev {
            for p in [*from, *to] {
                let p = p.max(1);
                l = l / gcd(l, p) * p;
            }
        }
    }
    l
}

impl<'a> Ctx<'a> {
    pub fn new(h: &'a History, scenario: &'a dyn Scenario) -> Ctx<'a> {
        let full: Vec<u64> = h.input.iter().map(|p| p.len() as u64).collect();
        let reference = scenario.reference(&h.input, &full);
        let mut completed = Vec::new();
        let mut precommits = BTreeMap::new();
        let mut precommit_subtask = BTreeMap::new();
        let mut precommit_out_ids = BTreeMap::new();
        let mut confirmed = BTreeMap::new();
        let mut cuts: BTreeMap<CheckpointId, Vec<Option<u64>>> = BTreeMap::new();
        let mut commits = Vec::new();
        let mut seen = BTreeSet::new();
        for s in &h.events {
            let Ev::Engine(e) = &s.ev else { continue };
            match e {
                Event::TxnCommitted { txn, epoch, out } => {
                    seen.insert((txn.clone(), *epoch));
                    commits.push(Commit { t_us: s.t_us, txn: txn.clone(), epoch: *epoch, out: out.clone() });
                }
                Event::TxnCommitReplayed { txn, epoch, out } if !seen.contains(&(txn.clone(), *epoch)) => {
                    seen.insert((txn.clone(), *epoch));
                    commits.push(Commit { t_us: s.t_us, txn: txn.clone(), epoch: *epoch, out: out.clone() });
                }
                Event::SourceBarrier { source, ckpt, offset, .. } => {
                    let cut = cuts.entry(*ckpt).or_insert_with(|| vec![None; h.input.len()]);
                    if let Some(slot) = cut.get_mut(*source as usize) {
                        *slot = Some(*offset);
                    }
                }
                Event::CheckpointCompleted { ckpt, offsets, .. } => completed.push((s.t_us, *ckpt, offsets.clone())),
                Event::CoordinatorRecovered { completed: found, .. } => {
                    // A completion record made durable without its event
                    // (the coordinator died between persisting and
                    // announcing it): complete from now on, at its cut.
                    for ck in found {
                        if completed.iter().any(|c| c.1 == *ck) {
                            continue;
                        }
                        let cut: Option<Vec<u64>> = cuts.get(ck).and_then(|c| c.iter().copied().collect());
                        if let Some(offsets) = cut {
                            completed.push((s.t_us, *ck, offsets));
                        }
                    }
                }
                Event::PreCommitted { task, ckpt, txn, epoch, records, out_ids, .. } => {
                    precommits.insert((txn.clone(), *epoch), (*ckpt, *records));
                    precommit_subtask.insert((txn.clone(), *epoch), task.subtask());
                    precommit_out_ids.insert((txn.clone(), *epoch), out_ids.clone());
                }
                Event::CommitConfirmed { txn, epoch, .. } => {
                    confirmed.entry((txn.clone(), *epoch)).or_insert(s.t_us);
                }
                _ => {}
            }
        }
        let mut latest: Vec<(u64, CheckpointId)> = completed.iter().map(|c| (c.0, c.1)).collect();
        latest.sort_by_key(|x| x.0); // stable: ties keep their order
        let mut highest = 0;
        for x in &mut latest {
            highest = highest.max(x.1);
            x.1 = highest;
        }
        Ctx {
            h,
            scenario,
            reference,
            latest,
            completed,
            precommits,
            precommit_subtask,
            precommit_out_ids,
            confirmed,
            cuts,
            commits,
            refs: Default::default(),
            prefixes: OnceCell::new(),
            whole_references: false,
            pipeline: scenario.pipeline(),
            writers: writer_classes(h),
        }
    }

    /// The input offsets of checkpoint `ckpt`'s prefix (0: nothing
    /// processed): the offsets of its completion record, or its complete
    /// cut if it never completed; `None` for neither.
    pub fn offsets_of(&self, ckpt: CheckpointId) -> Option<Vec<u64>> {
        if ckpt == 0 {
            Some(vec![0; self.h.input.len()])
        } else if let Some(c) = self.completed.iter().find(|c| c.1 == ckpt) {
            Some(c.2.clone())
        } else {
            self.cut(ckpt)
        }
    }

    /// The consistent cuts a reader may see, with the time from which each
    /// may be seen: (valid from, id). 0 (the empty prefix) from the start;
    /// each completed checkpoint from its completion; and a checkpoint that
    /// never completed itself but has a complete cut and a completed later
    /// checkpoint (which subsumed it: its pending transactions commit with
    /// the later one's notification) from the first such completion.
    pub fn candidates(&self) -> Vec<(u64, CheckpointId)> {
        let mut cands: Vec<(u64, CheckpointId)> = vec![(0, 0)];
        cands.extend(self.completed.iter().map(|x| (x.0, x.1)));
        for ck in self.cuts.keys() {
            if self.completed_at(*ck).is_some() || self.cut(*ck).is_none() {
                continue;
            }
            if let Some(t) = self.completed.iter().filter(|x| x.1 > *ck).map(|x| x.0).min() {
                cands.push((t, *ck));
            }
        }
        cands
    }

    /// The candidates' references as lineages of growing prefixes, when the
    /// scenario computes its reference incrementally (see `prefixes`).
    pub fn prefixes(&self) -> Option<&prefixes::Prefixes> {
        self.prefixes
            .get_or_init(|| {
                if self.whole_references {
                    return None;
                }
                prefixes::Prefixes::build(self, self.candidates().into_iter().map(|c| c.1))
            })
            .as_ref()
    }

    /// Whether the reference over the prefix of `ckpt` (a candidate, see
    /// [`Ctx::candidates`]) has an out_id, as a function of the out_id.
    pub fn covers(&self, ckpt: CheckpointId) -> Box<dyn Fn(u64) -> bool + '_> {
        match self.prefixes() {
            Some(px) if px.at(ckpt).is_some() => Box::new(px.covers(ckpt)),
            _ => {
                let r = self.reference_at(ckpt);
                Box::new(move |out_id| r.contains_key(&out_id))
            }
        }
    }

    /// The reference over the input prefix of checkpoint `ckpt` (0: nothing
    /// processed), by out_id: the offsets of its completion record, or its
    /// cut if it never completed. Computed once per checkpoint.
    pub fn reference_at(&self, ckpt: CheckpointId) -> Rc<BTreeMap<u64, OutRecord>> {
        if let Some(r) = self.refs.borrow().get(&ckpt) {
            return r.clone();
        }
        let offsets = self.offsets_of(ckpt).expect("reference_at: a checkpoint that completed or has a complete cut");
        let m: BTreeMap<u64, OutRecord> =
            self.scenario.reference(&self.h.input, &offsets).into_iter().map(|o| (o.out_id, o)).collect();
        let r = Rc::new(m);
        self.refs.borrow_mut().insert(ckpt, r.clone());
        r
    }

    /// The complete cut of a checkpoint, if every source reported it.
    pub fn cut(&self, ckpt: CheckpointId) -> Option<Vec<u64>> {
        self.cuts.get(&ckpt)?.iter().copied().collect()
    }

    /// The highest checkpoint id completed at or before `t_us` (0: none).
    pub fn latest_completed(&self, t_us: u64) -> CheckpointId {
        let n = self.latest.partition_point(|x| x.0 <= t_us);
        if n == 0 {
            0
        } else {
            self.latest[n - 1].1
        }
    }

    /// When checkpoint `ckpt` completed (the first completion record).
    pub fn completed_at(&self, ckpt: CheckpointId) -> Option<u64> {
        self.completed.iter().find(|c| c.1 == ckpt).map(|c| c.0)
    }

    /// The transactions whose commits carried `out_id`, as "txn epoch e".
    pub fn carriers(&self, out_id: u64) -> Vec<String> {
        self.commits
            .iter()
            .filter(|c| c.out.iter().any(|o| o.out_id == out_id))
            .map(|c| format!("{} epoch {}", c.txn, c.epoch))
            .collect()
    }

    /// The writer class of a record: the sink subtask its key is routed
    /// to (out of [`Ctx::writers`]). With rescales, a class of the key
    /// groups that one subtask wrote at every moment (each parallelism
    /// divides the class count, and a key group's owner is its number
    /// modulo the parallelism).
    pub fn writer_of(&self, o: &OutRecord) -> u32 {
        exactsim_engine::types::key_to_subtask(o.key, self.writers)
    }

    /// The output partition a record belongs to.
    pub fn partition_of(&self, o: &OutRecord) -> u32 {
        self.pipeline.output_partition(o, self.h.output_partitions)
    }
}

/// Simulated time in milliseconds, for messages.
pub fn ms(t_us: u64) -> String {
    format!("{:.1}ms", t_us as f64 / 1000.0)
}

/// The first [`MAX_LISTED`] items joined, with "(+N more)" for the rest.
pub fn first_few<I: IntoIterator<Item = String>>(items: I) -> String {
    let mut shown = Vec::new();
    let mut rest = 0usize;
    for s in items {
        if shown.len() < MAX_LISTED {
            shown.push(s);
        } else {
            rest += 1;
        }
    }
    let mut out = shown.join(", ");
    if rest > 0 {
        out.push_str(&format!(" (+{rest} more)"));
    }
    out
}

/// A record for messages: `out_id 7 (key 3, value 1, src 7)`.
pub fn rec(o: &OutRecord) -> String {
    format!("out_id {} (key {}, value {}, src {})", o.out_id, o.key, o.value, o.src)
}

/// Records by out_id, sorted, for lookups by binary search: of records
/// sharing an out_id, the last (as collecting them into a map would keep).
pub(crate) struct ById<'r>(Vec<&'r OutRecord>, Vec<u64>);

impl<'r> ById<'r> {
    pub(crate) fn new(records: &'r [OutRecord]) -> ById<'r> {
        let mut v: Vec<&OutRecord> = records.iter().collect();
        v.sort_by_key(|o| o.out_id); // stable: equal out_ids in input order
        let mut out: Vec<&OutRecord> = Vec::with_capacity(v.len());
        for o in v {
            match out.last_mut() {
                Some(l) if l.out_id == o.out_id => *l = o,
                _ => out.push(o),
            }
        }
        // The out_ids again, side by side: a lookup's search then reads 8
        // bytes an entry instead of following a pointer to a record.
        let ids = out.iter().map(|o| o.out_id).collect();
        ById(out, ids)
    }
    pub(crate) fn get(&self, out_id: u64) -> Option<&'r OutRecord> {
        self.1.binary_search(&out_id).ok().map(|i| self.0[i])
    }
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
    /// In out_id order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &'r OutRecord> + '_ {
        self.0.iter().copied()
    }
}

/// Every record of the final read as (out_id, position in the read),
/// sorted: the copies of an out_id together, in the order they were read.
pub(crate) fn final_copies(h: &History) -> Vec<(u64, u32)> {
    let mut v: Vec<(u64, u32)> =
        h.final_output.iter().flatten().enumerate().map(|(i, o)| (o.out_id, i as u32)).collect();
    v.sort_unstable();
    v
}

/// Count the final committed output against the reference.
pub fn output_counts(h: &History, reference: &[OutRecord]) -> OutputCounts {
    let want = ById::new(reference);
    let read: Vec<&OutRecord> = h.final_output.iter().flatten().collect();
    let copies = final_copies(h);
    let mut c = OutputCounts { expected: want.len() as u64, committed: read.len() as u64, ..Default::default() };
    let mut found = 0u64;
    for run in copies.chunk_by(|a, b| a.0 == b.0) {
        c.duplicates += run.len() as u64 - 1;
        match want.get(run[0].0) {
            None => c.unexpected += run.len() as u64,
            Some(w) => {
                found += 1;
                if w != read[run[0].1 as usize] {
                    c.wrong += 1;
                }
            }
        }
    }
    c.lost = want.len() as u64 - found;
    c
}

/// Run every check that applies to the run's mode. Violations are sorted
/// by (check, time); at most [`MAX_PER_CHECK`] per check.
pub fn check_all(input: &CheckInput) -> (Vec<Violation>, OutputCounts) {
    check_all_in(Ctx::new(input.history, input.scenario), input)
}

/// [`check_all`] with every prefix's reference computed by the whole
/// `Scenario::reference`, never incrementally: the oracle the incremental
/// path is tested against (it must find the same violations).
pub fn check_all_by_whole_references(input: &CheckInput) -> (Vec<Violation>, OutputCounts) {
    let mut ctx = Ctx::new(input.history, input.scenario);
    ctx.whole_references = true;
    check_all_in(ctx, input)
}

fn check_all_in(ctx: Ctx, input: &CheckInput) -> (Vec<Violation>, OutputCounts) {
    let counts = output_counts(input.history, &ctx.reference);
    let v = judge_all(&ctx, &input.scenario.checks(), &mut Vec::new());
    (v, counts)
}

/// Run the table's oracles for the history's mode, then `own` (the
/// scenario's checks), noting in `ran` each check that ran, in order.
/// Violations are sorted by (check, time), at most [`MAX_PER_CHECK`] per
/// check.
fn judge_all(ctx: &Ctx, own: &[ScenarioCheck], ran: &mut Vec<&'static str>) -> Vec<Violation> {
    let mut v = Vec::new();
    for c in CHECKS.iter().filter(|c| c.applies.covers_run(ctx.scenario, ctx.h.mode)) {
        let Judge::History(check) = c.judge else { continue };
        let mut found = check(ctx);
        found.sort_by_key(|x| x.t_us); // stable: the first ones in time
        v.extend(found.into_iter().take(MAX_PER_CHECK).map(|f| Violation::new(c.id, f.t_us, f.message)));
        ran.push(c.id);
    }
    for sc in own {
        let found = (sc.check)(ctx.h);
        v.extend(found.into_iter().take(MAX_PER_CHECK).map(|m| Violation::new(sc.id, None, m)));
        ran.push(sc.id);
    }
    // In the order the checks ran, which is the table's ("P10" after "P9",
    // not after "P1"), the scenario's own checks last.
    let order = |id: &str| ran.iter().position(|r| *r == id).unwrap_or(usize::MAX);
    v.sort_by_key(|a| (order(a.check), a.t_us));
    v
}

#[cfg(test)]
mod tests;
