//! # risk_scoring
//!
//! ## What it models
//! Payment risk scoring: per user, event-time tumbling windows of
//! [`WINDOW_MS`] over payment amounts, closed by watermarks; a window whose
//! sum exceeds [`THRESHOLD`] flags the user. Watermarks come from the
//! sources (the last event time read, per source) and an operator's
//! watermark is the minimum over its inputs, so which windows have fired at
//! a barrier is a function of the checkpoint's source offsets.
//!
//! Output per flagged (user, window): `out_id` = `1 << 40 | user << 20 |
//! window index`, `key` = user, `value` = the window's sum, `src` = the id
//! of the window's first record.
//!
//! ## Invariants checked
//! P1–P12; window state and watermarks are checkpointed, so a lost or
//! doubled window sum shows up as a wrong or missing flag.
//!
//! ## Fault points it expects to reach
//! All of them; in particular output produced at end of input (the final
//! watermark) is committed by the last checkpoints, exercising
//! after_completion_before_notify and during_recovery late in the run.

use crate::gen::layout;
use exactsim_engine::pipeline::{KeyedOperator, Pipeline};
use exactsim_engine::types::{OutRecord, Record};
use exactsim_model::rng::SimRng;
use exactsim_model::scenario::{IncrementalReference, Scenario};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub struct RiskScoring;

pub const WINDOW_MS: u64 = 250;
pub const THRESHOLD: i64 = 550;

pub fn out_id(user: u64, window_start: u64) -> u64 {
    let w = window_start / WINDOW_MS;
    assert!(user < (1 << 20) && w < (1 << 20));
    (1 << 40) | (user << 20) | w
}

#[derive(Default)]
struct Op {
    /// (user, window start) -> (sum, first record id)
    windows: BTreeMap<(u64, u64), (i64, u64)>,
}

impl Op {
    fn fire(&mut self, wm: u64, out: &mut Vec<OutRecord>) {
        let due: Vec<(u64, u64)> = self.windows.keys().filter(|(_, s)| s + WINDOW_MS <= wm).copied().collect();
        for k in due {
            let (sum, first) = self.windows.remove(&k).expect("due window exists");
            if sum > THRESHOLD {
                out.push(OutRecord::new(out_id(k.0, k.1), k.0, sum, first));
            }
        }
    }
}

impl KeyedOperator for Op {
    fn process(&mut self, rec: &Record, _out: &mut Vec<OutRecord>) {
        let start = rec.ts_ms / WINDOW_MS * WINDOW_MS;
        let e = self.windows.entry((rec.key, start)).or_insert((0, rec.id));
        e.0 += rec.value;
    }
    fn on_watermark(&mut self, wm: u64, out: &mut Vec<OutRecord>) {
        self.fire(wm, out);
    }
    fn on_end_of_input(&mut self, out: &mut Vec<OutRecord>) {
        self.fire(u64::MAX, out);
    }
    fn snapshot(&self) -> Vec<u8> {
        bincode::serialize(&self.windows).expect("serializable")
    }
    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.windows = bincode::deserialize(bytes).map_err(|e| format!("risk_scoring state: {e}"))?;
        Ok(())
    }
    fn restore_keys(&mut self, bytes: &[u8], keep: &dyn Fn(u64) -> bool) -> Result<(), String> {
        crate::restore_keys(&mut self.windows, bytes, keep, |(user, _)| *user, "risk_scoring")
    }
}

struct P;
impl Pipeline for P {
    fn name(&self) -> &str {
        "risk_scoring"
    }
    fn create(&self, _subtask: u32, _parallelism: u32) -> Box<dyn KeyedOperator> {
        Box::new(Op::default())
    }
}

impl Scenario for RiskScoring {
    fn name(&self) -> &'static str {
        "risk_scoring"
    }
    fn description(&self) -> &'static str {
        "per-user event-time tumbling windows with watermarks; flag sums over a threshold"
    }
    fn generate(&self, rng: &mut SimRng, partitions: u32) -> Vec<Vec<Record>> {
        let n = rng.range(2000, 3500);
        let users = rng.range(20, 60);
        let draws = (0..n).map(|_| (rng.below(users), rng.range(1, 100) as i64)).collect();
        layout(rng, partitions, draws, 4)
    }
    fn pipeline(&self) -> Arc<dyn Pipeline> {
        Arc::new(P)
    }
    fn reference(&self, input: &[Vec<Record>], offsets: &[u64]) -> Vec<OutRecord> {
        let wm = input
            .iter()
            .zip(offsets)
            .map(|(recs, &o)| match o as usize {
                o if o == recs.len() => u64::MAX,
                0 => 0,
                o => recs[o - 1].ts_ms,
            })
            .min()
            .unwrap_or(0);
        let mut sums: BTreeMap<(u64, u64), (i64, u64)> = BTreeMap::new();
        for (recs, &o) in input.iter().zip(offsets) {
            for r in &recs[..o as usize] {
                let start = r.ts_ms - r.ts_ms % WINDOW_MS;
                let e = sums.entry((r.key, start)).or_insert((0, r.id));
                e.0 += r.value;
            }
        }
        sums.into_iter()
            .filter(|((_, start), (sum, _))| start.saturating_add(WINDOW_MS) <= wm && *sum > THRESHOLD)
            .map(|((user, start), (sum, first))| OutRecord::new(out_id(user, start), user, sum, first))
            .collect()
    }
    fn incremental<'a>(&self, input: &'a [Vec<Record>]) -> Option<Box<dyn IncrementalReference + 'a>> {
        Some(Box::new(Windows {
            input,
            taken: vec![0; input.len()],
            marks: input.iter().map(|p| if p.is_empty() { u64::MAX } else { 0 }).collect(),
            wm: 0,
            sums: BTreeMap::new(),
            open: BTreeSet::new(),
        }))
    }
}

/// A window's first record in `reference`'s order (partition by
/// partition): (partition, index, id).
type First = (usize, usize, u64);

/// `reference` one record at a time. A window closed by the watermark (the
/// minimum over the partitions of the last event time taken, `u64::MAX`
/// for a partition taken to its end) gets no more records (event times
/// never decrease within a partition), so its sum is final when it closes.
struct Windows<'a> {
    input: &'a [Vec<Record>],
    taken: Vec<usize>,
    /// Per partition: its contribution to the watermark.
    marks: Vec<u64>,
    wm: u64,
    /// (user, window start) -> (sum, the first record).
    sums: BTreeMap<(u64, u64), (i64, First)>,
    /// Windows not closed yet: (end, user, start).
    open: BTreeSet<(u64, u64, u64)>,
}

impl IncrementalReference for Windows<'_> {
    fn advance(&mut self, p: usize, out: &mut Vec<OutRecord>) {
        let i = self.taken[p];
        let r = &self.input[p][i];
        self.taken[p] += 1;
        let start = r.ts_ms - r.ts_ms % WINDOW_MS;
        let e = self.sums.entry((r.key, start)).or_insert((0, (p, i, r.id)));
        e.0 += r.value;
        e.1 = e.1.min((p, i, r.id));
        self.open.insert((start.saturating_add(WINDOW_MS), r.key, start));
        self.marks[p] = if self.taken[p] == self.input[p].len() { u64::MAX } else { r.ts_ms };
        self.wm = self.marks.iter().copied().min().unwrap_or(0);
        while let Some(&(end, user, start)) = self.open.first() {
            if end > self.wm {
                break;
            }
            self.open.pop_first();
            let (sum, (_, _, first)) = self.sums[&(user, start)];
            if sum > THRESHOLD {
                out.push(OutRecord::new(out_id(user, start), user, sum, first));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_some_but_not_all_windows_and_operator_agrees() {
        let input = RiskScoring.generate(&mut SimRng::new(4), 2);
        let full: Vec<u64> = input.iter().map(|p| p.len() as u64).collect();
        let mut want = RiskScoring.reference(&input, &full);
        assert!(!want.is_empty());
        let mut op = Op::default();
        let mut got = Vec::new();
        for r in input.iter().flatten() {
            op.process(r, &mut got);
        }
        op.on_end_of_input(&mut got);
        got.sort();
        want.sort();
        assert_eq!(got, want);
        // A prefix with an unended source fires only closed windows.
        let half: Vec<u64> = input.iter().map(|p| p.len() as u64 / 2).collect();
        assert!(RiskScoring.reference(&input, &half).len() < want.len());
    }

    #[test]
    fn incremental_reference_matches_reference() {
        for seed in 0..4 {
            let input = RiskScoring.generate(&mut SimRng::new(seed), 3);
            exactsim_model::scenario::check_incremental(&RiskScoring, &input, &mut SimRng::new(seed), 6).unwrap();
        }
    }
}
