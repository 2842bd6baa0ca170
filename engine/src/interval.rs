//! The adaptive checkpoint interval: the coordinator picks the time to the
//! next checkpoint from what it observes, within configured bounds (the
//! article's 500 ms to 10 s, scaled to the simulated job), as a plain state
//! machine fed at every completed checkpoint.
//!
//! Three observations, three rules, in this order:
//! - **Checkpoint cost.** Checkpointing should take under a tenth of the
//!   processing time: the interval is at least [`COST_FACTOR`] times the
//!   recent checkpoints' duration (trigger to completion record).
//! - **Throughput.** A busy job checkpoints more often, so that a recovery
//!   replays at most about `replay_records` records: the interval is about
//!   `replay_records` over the recent input rate (records per ms summed
//!   over the sources, from the offsets the completions record).
//! - **Idle.** No input read since the last completion: the interval
//!   doubles (backlog is nil; a checkpoint would snapshot nothing new).
//!
//! Then the result is clamped to `[min_ms, max_ms]`. Time is passed in;
//! nothing here reads a clock.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// The interval is at least this many times the recent checkpoint
/// duration: checkpointing stays under 1/COST_FACTOR of processing time.
pub const COST_FACTOR: u64 = 10;
/// Completions the controller averages over (the recent checkpoint
/// duration is the mean of the last `WINDOW`).
pub const WINDOW: usize = 3;

/// The bounds and the goal of an adaptive interval (`JobConfig`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdaptiveInterval {
    pub min_ms: u64,
    pub max_ms: u64,
    /// Input records a recovery should replay at most (over all sources).
    pub replay_records: u64,
}

impl Default for AdaptiveInterval {
    /// The usual 500 ms to 10 s, scaled like the engine's timeouts (a
    /// tenth or so): 100 ms to 2 s, replaying about 1,000 records after a
    /// crash (what `ci/gate.toml` and the `adaptive` profile run).
    fn default() -> Self {
        AdaptiveInterval { min_ms: 100, max_ms: 2_000, replay_records: 1_000 }
    }
}

/// What one completed checkpoint tells the controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    pub now_ms: u64,
    /// From its trigger to its completion record; `None` when the clock
    /// went back in between (a drifted clock set back to true time, as
    /// NTP steps one): that elapsed time measured nothing, and a zero
    /// taken for it would drag the cost rule's average down.
    pub duration_ms: Option<u64>,
    /// The sum of the sources' offsets it covers.
    pub offsets_sum: u64,
}

#[derive(Clone, Debug)]
pub struct IntervalController {
    bounds: AdaptiveInterval,
    current_ms: u64,
    durations: VecDeque<u64>,
    /// (time, offsets) of the completions in the window, oldest first.
    progress: VecDeque<(u64, u64)>,
}

impl IntervalController {
    /// Starting from `initial_ms` (clamped to the bounds).
    pub fn new(bounds: AdaptiveInterval, initial_ms: u64) -> IntervalController {
        assert!(bounds.min_ms >= 1, "a zero interval would trigger on every tick");
        assert!(bounds.min_ms <= bounds.max_ms, "min_ms {} > max_ms {}", bounds.min_ms, bounds.max_ms);
        IntervalController {
            bounds,
            current_ms: initial_ms.clamp(bounds.min_ms, bounds.max_ms),
            durations: VecDeque::new(),
            progress: VecDeque::new(),
        }
    }

    /// The interval to wait after the last trigger.
    pub fn current_ms(&self) -> u64 {
        self.current_ms
    }

    pub fn bounds(&self) -> AdaptiveInterval {
        self.bounds
    }

    /// A checkpoint completed: choose the next interval, and return it.
    pub fn on_completed(&mut self, c: Completion) -> u64 {
        if let Some(d) = c.duration_ms {
            self.durations.push_back(d);
            if self.durations.len() > WINDOW {
                self.durations.pop_front();
            }
        }
        let idle = self.progress.back().is_some_and(|&(_, o)| c.offsets_sum <= o);
        self.progress.push_back((c.now_ms, c.offsets_sum));
        if self.progress.len() > WINDOW + 1 {
            self.progress.pop_front();
        }
        let sum = self.durations.iter().fold(0u64, |a, d| a.saturating_add(*d));
        let cost_floor = COST_FACTOR.saturating_mul(sum) / (self.durations.len() as u64).max(1);
        let wanted = if idle {
            self.current_ms.saturating_mul(2)
        } else {
            match (self.progress.front(), self.progress.back()) {
                (Some(&(t0, o0)), Some(&(t1, o1))) if t1 > t0 && o1 > o0 => {
                    // records/ms = (o1-o0)/(t1-t0); ms = replay / rate.
                    self.bounds.replay_records.saturating_mul(t1 - t0) / (o1 - o0)
                }
                // One completion so far: keep the interval.
                _ => self.current_ms,
            }
        };
        self.current_ms = wanted.max(cost_floor).clamp(self.bounds.min_ms, self.bounds.max_ms);
        assert!(self.current_ms >= self.bounds.min_ms);
        assert!(self.current_ms <= self.bounds.max_ms);
        self.current_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const B: AdaptiveInterval = AdaptiveInterval { min_ms: 50, max_ms: 1000, replay_records: 400 };

    fn done(now_ms: u64, duration_ms: u64, offsets_sum: u64) -> Completion {
        Completion { now_ms, duration_ms: Some(duration_ms), offsets_sum }
    }

    #[test]
    fn a_busy_job_checkpoints_often_enough_to_bound_replay() {
        let mut c = IntervalController::new(B, 200);
        assert_eq!(c.on_completed(done(200, 5, 1_000)), 200, "one completion: no rate yet");
        // 2,000 records in 200 ms = 10/ms: 400 records every 40 ms, but
        // never under min_ms.
        assert_eq!(c.on_completed(done(400, 5, 3_000)), 50);
        // 1 record/ms: 400 ms.
        let mut c = IntervalController::new(B, 200);
        c.on_completed(done(0, 5, 0));
        assert_eq!(c.on_completed(done(300, 5, 300)), 400);
    }

    #[test]
    fn an_idle_job_backs_off_to_the_maximum() {
        let mut c = IntervalController::new(B, 100);
        c.on_completed(done(0, 5, 500));
        let steps: Vec<u64> = (1..=6).map(|i| c.on_completed(done(i * 100, 5, 500))).collect();
        assert_eq!(steps, [200, 400, 800, 1000, 1000, 1000]);
    }

    #[test]
    fn slow_checkpoints_stretch_the_interval_to_ten_times_their_duration() {
        let mut c = IntervalController::new(B, 100);
        c.on_completed(done(0, 60, 0));
        // A fast input (wants 50 ms) but checkpoints taking 60 ms: 600 ms.
        assert_eq!(c.on_completed(done(100, 60, 10_000)), 600);
        // Beyond the bound: the bound.
        assert_eq!(c.on_completed(done(200, 300, 20_000)), 1000);
    }

    #[test]
    fn a_completion_whose_clock_went_back_measures_no_cost() {
        let mut c = IntervalController::new(B, 100);
        c.on_completed(done(0, 60, 0));
        assert_eq!(c.on_completed(done(100, 60, 10_000)), 600);
        // The clock was set back between trigger and completion: no
        // duration. The cost rule keeps the 60 ms it measured (a zero
        // would have made it 400 ms, and two more the minimum).
        let unknown = Completion { now_ms: 150, duration_ms: None, offsets_sum: 20_000 };
        assert_eq!(c.on_completed(unknown), 600);
        // With no measure at all, only the throughput rule speaks.
        let mut c = IntervalController::new(B, 100);
        c.on_completed(Completion { now_ms: 0, duration_ms: None, offsets_sum: 0 });
        assert_eq!(c.on_completed(Completion { now_ms: 100, duration_ms: None, offsets_sum: 10_000 }), 50);
    }

    proptest! {
        /// Whatever it observes, the interval stays within the bounds and
        /// at least ten times the latest duration unless the bound caps it.
        #[test]
        fn always_within_bounds(steps in prop::collection::vec((1u64..500, 0u64..400, 0u64..5_000), 1..40)) {
            let mut c = IntervalController::new(B, 100);
            let (mut now, mut offsets) = (0u64, 0u64);
            for (dt, dur, read) in steps {
                now += dt;
                offsets += read;
                let ms = c.on_completed(done(now, dur, offsets));
                prop_assert!((B.min_ms..=B.max_ms).contains(&ms));
                prop_assert!(ms >= (COST_FACTOR * dur / WINDOW as u64).min(B.max_ms));
            }
        }
    }
}
