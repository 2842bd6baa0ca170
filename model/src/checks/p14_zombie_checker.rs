//! P14 — a fenced writer stays invisible, on any system (exactly-once
//! mode): once a newer owner of a sink subtask has started, nothing the
//! older owner writes from then on becomes visible.
//!
//! How: the engine stamps every output record it hands a sink with its
//! writer (`OutRecord::writer`: owner = run, job attempt and producer
//! session; sink subtask; transaction tag), and the sink's system stores
//! and returns it with the record. The owner of a subtask is the one whose
//! `SinkOpened` came last: an owner is superseded when another owner of
//! the subtask starts after it, in the order the history shows the starts
//! (not the order of the owners' numbers: a deployment delivered late to a
//! restarted worker starts an owner with a smaller session number after a
//! larger one, and that later start is the subtask's owner). But a start
//! of an older job attempt (or run) after a newer one's supersedes
//! nothing: that owner is a zombie from its start (a worker frozen with
//! an old deployment queued, adopting a removed subtask of a rescaled job
//! after the newer attempt's own subtask opened). A record a reader saw, during the run or in the final read, is
//! accounted for only by a `PreCommitted` of the same writer (owner,
//! subtask, transaction instance: name and epoch) that lists its `out_id`,
//! recorded before that owner was superseded, for a checkpoint that a
//! completed checkpoint (itself or a later one) covered before then: only
//! such a transaction may still be committed, by the owner's notification
//! or by the newer owner's restore. Anything else got through from a
//! zombie: written or pre-committed after its owner was fenced, written
//! into a transaction its owner never pre-committed (a newer owner
//! committed it), or written late into another instance of a transaction
//! whose own checkpoint the fence left uncompleted.
//!
//! Nothing here reads the system's or the sink's word: only the readers'
//! records, their lineage and the engine's own pre-commit and start events.
//! A visible record without a writer means the system dropped the lineage;
//! that is reported too (the check cannot judge such a system). A history
//! without any `SinkOpened` (built by hand) has nothing to judge by.

use super::{ms, Ctx, Finding, MAX_PER_CHECK};
use crate::history::Ev;
use exactsim_engine::observe::Event;
use exactsim_engine::types::{CheckpointId, OutRecord, Owner, Writer};
use std::collections::{BTreeMap, BTreeSet};

pub fn check(c: &Ctx) -> Vec<Finding> {
    // (out_id, writer) pre-committed, with the event's index; owners'
    // starts per subtask, with their index and time. Keyed by the record
    // first: its id decides nearly every comparison.
    let mut precommitted: BTreeMap<(u64, Writer), (usize, CheckpointId)> = BTreeMap::new();
    // The first event index at which each checkpoint was known complete.
    let mut completed: BTreeMap<CheckpointId, usize> = BTreeMap::new();
    let mut opened: BTreeMap<u32, Vec<(Owner, usize, u64)>> = BTreeMap::new();
    for (i, s) in c.h.events.iter().enumerate() {
        let Ev::Engine(e) = &s.ev else { continue };
        match e {
            Event::PreCommitted { writer, out_ids, ckpt, .. } => {
                for id in out_ids {
                    precommitted.entry((*id, *writer)).or_insert((i, *ckpt));
                }
            }
            Event::CheckpointCompleted { ckpt, .. } => {
                completed.entry(*ckpt).or_insert(i);
            }
            Event::CoordinatorRecovered { completed: found, .. } => {
                for ck in found {
                    completed.entry(*ck).or_insert(i);
                }
            }
            Event::SinkOpened { task, owner } => opened.entry(task.subtask()).or_default().push((*owner, i, s.t_us)),
            _ => {}
        }
    }
    if opened.is_empty() {
        // Not recorded by an engine that stamps lineage (a history built
        // by hand): nothing to judge by.
        return Vec::new();
    }
    // When (event index, time) another owner of `w`'s subtask started
    // after `w`'s own start that was current at event `at` (its last start
    // before `at`; its first start when `at` is unknown): the moment `w`
    // was superseded. An owner whose start was never recorded is
    // superseded by the first start of a newer owner (the owners' order).
    let superseded = |w: &Writer, at: Option<usize>| -> Option<(usize, u64, Owner)> {
        let starts = opened.get(&w.subtask)?;
        let own = match at {
            Some(p) => starts.iter().rev().find(|(o, i, _)| *o == w.owner && *i <= p),
            None => starts.iter().find(|(o, _, _)| *o == w.owner),
        };
        // The job's order of owners: run, then attempt (sessions of one
        // attempt are ordered by their starts).
        let attempt = |o: &Owner| (o.run, o.attempt);
        let next = match own {
            Some(&(_, from, t)) => {
                if let Some((newer, _, _)) = starts.iter().find(|(o, i, _)| *i < from && attempt(o) > attempt(&w.owner))
                {
                    // A newer attempt's owner had started already.
                    return Some((from, t, *newer));
                }
                starts.iter().find(|(o, i, _)| *i > from && *o != w.owner && attempt(o) >= attempt(&w.owner))
            }
            None => starts.iter().find(|(o, _, _)| *o > w.owner),
        };
        next.map(|(o, i, t)| (*i, *t, *o))
    };
    // Visible while its owner still owned the subtask (never superseded,
    // or seen by a reader before the newer owner started).
    let seen_before = |t_us: Option<u64>, fenced: Option<(usize, u64, Owner)>| match fenced {
        None => true,
        Some((_, f, _)) => t_us.is_some_and(|t| t < f),
    };
    let mut v = Vec::new();
    let mut judged: BTreeSet<(u64, Writer)> = BTreeSet::new();
    let mut unknown: BTreeSet<u64> = BTreeSet::new();
    let mut judge = |r: &OutRecord, seen: Seen, v: &mut Vec<Finding>, t_us: Option<u64>| {
        if r.writer.is_unknown() {
            unknown.insert(r.out_id);
            return;
        }
        if !judged.insert((r.out_id, r.writer)) {
            return;
        }
        let w = &r.writer;
        let pre = precommitted.get(&(r.out_id, *w)).copied();
        let fenced = superseded(w, pre.map(|(p, _)| p));
        let fenced_at = fenced.map_or(usize::MAX, |f| f.0);
        // Committable while its owner owned the subtask: a checkpoint at or
        // after its own completed before the owner was superseded (the
        // owner's notification, or the newer owner's restore, commits it).
        let covered = |ckpt: CheckpointId| completed.range(ckpt..).any(|(_, i)| *i < fenced_at);
        let newer = |(_, t, o): (usize, u64, Owner)| format!("had completed before {o} started at {}", ms(t));
        let why = match pre {
            None => "never pre-committed it in that transaction".to_string(),
            Some((p, _)) if p > fenced_at => {
                let (_, t, o) = fenced.expect("superseded");
                format!("pre-committed it at {}, after {o} had started at {}", ms(c.h.events[p].t_us), ms(t))
            }
            // Seen before the fence: its owner committed it while it owned
            // the subtask (whether that was early is P3's to judge).
            Some((_, ckpt)) if !covered(ckpt) && !seen_before(t_us, fenced) => {
                format!(
                    "pre-committed it for checkpoint {ckpt}, and no checkpoint from {ckpt} on {}",
                    newer(fenced.expect("superseded"))
                )
            }
            _ => return,
        };
        if v.len() < MAX_PER_CHECK {
            v.push(Finding::new(
                t_us,
                format!(
                    "record {} (key {}) became visible {}, written by {} of subtask {} (transaction tag {:016x}), which {why}",
                    r.out_id,
                    r.key,
                    seen.describe(),
                    w.owner,
                    w.subtask,
                    w.txn
                ),
            ));
        }
    };
    for o in &c.h.observations {
        for r in &o.new_records {
            judge(r, Seen::Read(o.t_us, o.partition), &mut v, Some(o.t_us));
        }
    }
    for (p, part) in c.h.final_output.iter().enumerate() {
        for r in part {
            judge(r, Seen::Final(p), &mut v, None);
        }
    }
    if !unknown.is_empty() && v.len() < MAX_PER_CHECK {
        v.push(Finding::new(
            None,
            format!(
                "{} visible records carry no writer: the sink's system drops the records' lineage, so fencing cannot be judged",
                unknown.len()
            ),
        ));
    }
    v
}

/// Where a record became visible: said only in a finding (every visible
/// record is judged, and formatting each one's place cost more than the
/// judging).
#[derive(Clone, Copy)]
enum Seen {
    /// By a reader at this time, in this partition.
    Read(u64, u32),
    /// In the final read of this partition.
    Final(usize),
}

impl Seen {
    fn describe(self) -> String {
        match self {
            Seen::Read(t_us, partition) => format!("at {} in partition {partition}", ms(t_us)),
            Seen::Final(p) => format!("in the final read of partition {p}"),
        }
    }
}
