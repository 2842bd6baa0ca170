//! P15 — the adaptive checkpoint interval (`JobConfig::adaptive_interval`,
//! engine/src/interval.rs) keeps to its bounds and keeps checkpointing
//! under a tenth of the processing time (both modes). A run with a fixed
//! interval records no `IntervalChosen` and has nothing to judge.
//!
//! How, from the history only:
//!
//! (a) **Bounds.** Every `IntervalChosen` lies within the bounds it states
//! (`min_ms <= interval_ms <= max_ms`, `1 <= min_ms <= max_ms`), and every
//! one states the same bounds (a run has one configuration).
//!
//! (b) **Cost.** A *cycle* is the time between two consecutive
//! `CheckpointTriggered` of the same coordinator incarnation (no
//! `CoordinatorRecovered` between them) and the same attempt. Its
//! *checkpoint time* is the recent checkpoint duration as the coordinator
//! knew it when the second trigger came: the mean, over the last
//! [`WINDOW`] checkpoints of that incarnation completed before it, of
//! trigger-to-completion (`CheckpointTriggered` to `CheckpointCompleted`).
//! A cycle counts when
//! - the incarnation had completed a checkpoint before the cycle ends (the
//!   controller has measured; before that the interval is the configured
//!   fixed one),
//! - it is **fault-free**: from the trigger of the oldest checkpoint of
//!   that mean to the cycle's end, no fault is active, i.e. all of it lies
//!   before the first landed fault (`history::landed_faults`) or from
//!   [`SETTLE_US`] after the heal (`healed_at_us`) on; a fault (a slow
//!   disk, a pause, a skewed clock measuring durations) makes the cost
//!   meaningless, and the heal sets every drifted clock back to true time,
//!   so a reading the coordinator took just before it, stamped after its
//!   record was written, may lie just after it,
//! - it is **not overloaded**: `COST_FACTOR` times its checkpoint time is
//!   at most `max_ms` (slower checkpoints cannot be kept under a tenth by an
//!   interval within the bounds).
//!
//! Over the counted cycles, the checkpoint time summed must be at most a
//! tenth (`1 / COST_FACTOR`) of the cycles' length summed: checkpointing
//! stays under 10% of the processing time. Each cycle's checkpoint time is
//! taken 2 ms shorter than the history shows it: the coordinator reads
//! whole milliseconds, and stamps the trigger and the completion after
//! writing its record (without it, correct runs reach 10.08%). The mean over the last [`WINDOW`]
//! is the controller's own smoothing: a single checkpoint slower than the
//! ones before it (a burst beginning) takes more than a tenth of its one
//! cycle, which the controller could not have known (over raw durations,
//! correct runs of the `adaptive` profile reach 11.6%).

use super::{ms, Ctx, Finding};
use crate::history::{landed_faults, Ev, SimEvent};
use exactsim_engine::interval::{COST_FACTOR, WINDOW};
use exactsim_engine::observe::Event;
use std::collections::BTreeMap;

/// How much shorter the coordinator may measure a checkpoint than the
/// history shows it: it reads whole milliseconds, and it stamps the trigger
/// and the completion after writing its record.
const MEASURE_US: u64 = 2_000;

/// How long after the heal counting starts: the coordinator stamps a
/// trigger after writing its record, so a clock reading taken before the
/// heal's clock reset may be stamped after the heal (4 ms in the campaigns;
/// a tick and a record write at most, when nothing is faulted).
const SETTLE_US: u64 = 100_000;

/// One cycle that counts: (start, end, checkpoint time), in µs.
type Cycle = (u64, u64, u64);

pub fn check(c: &Ctx) -> Vec<Finding> {
    let mut v = bounds(c);
    v.extend(cost(c));
    v
}

/// (a): every choice within the bounds it states, the same bounds in all.
fn bounds(c: &Ctx) -> Vec<Finding> {
    let mut v = Vec::new();
    let mut first: Option<(u64, u64)> = None;
    for s in &c.h.events {
        let Ev::Engine(Event::IntervalChosen { interval_ms, min_ms, max_ms }) = &s.ev else { continue };
        let (i, lo, hi) = (*interval_ms, *min_ms, *max_ms);
        if lo == 0 || lo > hi {
            v.push(Finding::new(
                Some(s.t_us),
                format!("interval chosen at {} states impossible bounds [{lo}, {hi}] ms", ms(s.t_us)),
            ));
        } else if i < lo || i > hi {
            v.push(Finding::new(
                Some(s.t_us),
                format!("interval of {i} ms chosen at {} is outside its bounds [{lo}, {hi}] ms", ms(s.t_us)),
            ));
        }
        match first {
            None => first = Some((lo, hi)),
            Some(b) if b != (lo, hi) => v.push(Finding::new(
                Some(s.t_us),
                format!(
                    "interval chosen at {} states bounds [{lo}, {hi}] ms, earlier choices [{}, {}] ms",
                    ms(s.t_us),
                    b.0,
                    b.1
                ),
            )),
            Some(_) => {}
        }
    }
    v
}

/// (b): checkpoint time over the counted cycles.
fn cost(c: &Ctx) -> Vec<Finding> {
    let h = c.h;
    let Some(max_ms) = h.events.iter().find_map(|s| match &s.ev {
        Ev::Engine(Event::IntervalChosen { max_ms, .. }) => Some(*max_ms),
        _ => None,
    }) else {
        return vec![]; // a fixed interval
    };
    let first_fault = landed_faults(&h.events).first().map(|f| f.0);
    let fault_free =
        |from: u64, to: u64| first_fault.is_none_or(|f| to < f) || from >= h.healed_at_us.saturating_add(SETTLE_US);
    // The coordinator incarnation's triggers's triggers by checkpoint, and its completions so
    // far: (trigger, duration), oldest first.
    let mut triggered: BTreeMap<u64, u64> = BTreeMap::new();
    let mut done: Vec<(u64, u64)> = Vec::new();
    // The previous trigger of this incarnation: (time, attempt).
    let mut last: Option<(u64, u64)> = None;
    let mut cycles: Vec<Cycle> = Vec::new();
    for s in &h.events {
        match &s.ev {
            Ev::Engine(Event::CoordinatorRecovered { .. }) => {
                // A new coordinator, a new controller.
                triggered.clear();
                done.clear();
                last = None;
            }
            Ev::Sim(SimEvent::NodeCrashed { node, .. }) if node == "coordinator" => last = None,
            Ev::Engine(Event::CheckpointTriggered { attempt, ckpt }) => {
                if let Some((t0, a0)) = last {
                    let recent = &done[done.len().saturating_sub(WINDOW)..];
                    if a0 == *attempt && !recent.is_empty() {
                        let mean = recent.iter().map(|d| d.1).sum::<u64>() / recent.len() as u64;
                        let oldest = recent[0].0;
                        if fault_free(oldest, s.t_us) && COST_FACTOR * mean <= max_ms * 1000 {
                            cycles.push((t0, s.t_us, mean));
                        }
                    }
                }
                triggered.insert(*ckpt, s.t_us);
                last = Some((s.t_us, *attempt));
            }
            Ev::Engine(Event::CheckpointCompleted { ckpt, .. }) => {
                if let Some(t) = triggered.remove(ckpt) {
                    done.push((t, s.t_us - t));
                }
            }
            _ => {}
        }
    }
    judge(&cycles)
}

/// The rule over the counted cycles: checkpoint time ([`MEASURE_US`]
/// shorter each) at most a tenth of their length.
fn judge(cycles: &[Cycle]) -> Vec<Finding> {
    if cycles.is_empty() {
        return vec![];
    }
    let spent: u64 = cycles.iter().map(|c| c.2.saturating_sub(MEASURE_US)).sum();
    let length: u64 = cycles.iter().map(|c| c.1 - c.0).sum();
    if COST_FACTOR * spent <= length {
        return vec![];
    }
    // The cycle with the largest share, to look at first.
    let worst = cycles.iter().max_by_key(|c| c.2 * 1_000 / (c.1 - c.0).max(1)).expect("non-empty");
    vec![Finding::new(
        Some(worst.1),
        format!(
            "checkpointing took {:.1}% of the processing time over {} fault-free cycle{} ({} to {}, {}ms in all), more than 1/{COST_FACTOR}: \
             e.g. checkpoints triggered {}ms apart ({} to {}) while the recent ones took {}ms on average",
            spent as f64 * 100.0 / length.max(1) as f64,
            cycles.len(),
            if cycles.len() == 1 { "" } else { "s" },
            ms(cycles[0].0),
            ms(cycles[cycles.len() - 1].1),
            cycles.iter().map(|c| c.1 - c.0).sum::<u64>() / 1000,
            (worst.1 - worst.0) / 1000,
            ms(worst.0),
            ms(worst.1),
            worst.2 / 1000
        ),
    )]
}
