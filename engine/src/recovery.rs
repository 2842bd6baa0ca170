//! **Owns the sink recovery's retry rule**: how many times a task's sink
//! recovery (re-commits, aborts, fencing, the first begin) is tried before
//! the job fails, as a plain state machine with no runtime.
//!
//! A recovery try that fails is retried with a fresh sink (a new sink
//! session, [`RecoveryBudget::tries`]), since its steps are idempotent,
//! after a wait that doubles with every consecutive failure
//! (`JobConfig::retry_backoff`, the rule is `backoff.rs`'s), up to
//! `JobConfig::sink_recovery_budget` consecutive failed tries. A lost transaction (`SinkTask::lost_for_good`) escalates
//! at once: retrying cannot bring it back. Escalating fails the job
//! loudly (`JobFailed`). Every failed try is a `TaskFailed` with the
//! reason `recovery: {error}` ([`events`]).
//!
//! The worker's deployment (`worker.rs`) and the step harness's
//! `Harness::restore_retrying` (`exactsim_sim::harness`) both go through it, so a
//! sink tested step by step escalates exactly as in a job.

use crate::backoff::BackoffPolicy;
use crate::config::{JobConfig, Mutant};
use crate::observe::Event;
use crate::types::{Attempt, TaskId};
use std::time::Duration;

/// The pause between two recovery tries of the planted bug
/// [`Mutant::RetryWithoutBackoff`] (the engine's rule before backoff).
const FIXED_PAUSE_MS: u64 = 100;

/// How the reason of a failed recovery try's `TaskFailed` begins: what
/// tells a recovery retry in the history from any other task failure.
pub const RETRY_REASON_PREFIX: &str = "recovery: ";

/// What to do after a failed recovery try.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Try again after this wait, with a fresh sink.
    Retry { after: Duration },
    /// Give up: the job fails, for `reason` (as `JobFailed` reports it).
    Escalate { reason: String },
}

/// The consecutive failed tries of one task's recovery, against a budget.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryBudget {
    budget: u32,
    tries: u32,
    /// Consecutive failed tries of this task's recovery, earlier
    /// deployments' included: what the backoff grows with. A job restart
    /// does not start the waits over; a recovery that succeeds does.
    streak: u32,
    backoff: BackoffPolicy,
}

impl RecoveryBudget {
    /// The budget and backoff of `cfg`: `JobConfig::sink_recovery_budget`
    /// (a budget of 0 gives up after the first failed try, as 1 does) and
    /// `JobConfig::retry_backoff`; `streak`: the failed tries the task's
    /// earlier deployments left without a success since
    /// ([`RecoveryBudget::streak`]).
    pub fn new(cfg: &JobConfig, streak: u32) -> RecoveryBudget {
        let backoff = if cfg.mutant_is(Mutant::RetryWithoutBackoff) {
            BackoffPolicy::fixed(FIXED_PAUSE_MS) // planted bug: no backoff
        } else {
            cfg.retry_backoff
        };
        RecoveryBudget { budget: cfg.sink_recovery_budget, tries: 0, streak, backoff }
    }

    /// Consecutive failed tries, earlier deployments' included: what a
    /// later deployment of the task starts from (0 once one succeeded).
    pub fn streak(&self) -> u32 {
        self.streak
    }

    /// The failed tries so far: the number of the next try, which orders
    /// its sink session after the earlier ones (`SinkEnv::session`).
    pub fn tries(&self) -> u32 {
        self.tries
    }

    /// A try failed with `err`; `fatal` when retrying cannot help (a
    /// transaction is lost for good). `draw`: a random number from the
    /// run's seed, the wait's jitter.
    pub fn failed(&mut self, fatal: bool, err: &str, draw: u64) -> Verdict {
        self.tries += 1;
        self.streak = self.streak.saturating_add(1);
        if fatal || self.tries >= self.budget {
            let why = if fatal { "a transaction was lost" } else { "the sink recovery budget is exhausted" };
            Verdict::Escalate { reason: format!("{why} after {} tries: {err}", self.tries) }
        } else {
            Verdict::Retry { after: self.backoff.delay(self.streak, draw) }
        }
    }
}

/// The history events of a failed try of `task`'s recovery in `attempt`:
/// its `TaskFailed`, then `JobFailed` when the verdict escalates.
pub fn events(attempt: Attempt, task: TaskId, err: &str, verdict: &Verdict) -> Vec<Event> {
    let mut out = vec![Event::TaskFailed { attempt, task, reason: format!("{RETRY_REASON_PREFIX}{err}") }];
    if let Verdict::Escalate { reason } = verdict {
        out.push(Event::JobFailed { attempt, task, reason: reason.clone() });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(budget: u32) -> RecoveryBudget {
        RecoveryBudget::new(&JobConfig { sink_recovery_budget: budget, ..JobConfig::default() }, 0)
    }

    fn retry(ms: u64) -> Verdict {
        Verdict::Retry { after: Duration::from_millis(ms) }
    }

    #[test]
    fn transient_failures_are_retried_until_the_budget_is_spent() {
        let mut b = budget(3);
        assert_eq!(b.tries(), 0);
        assert_eq!(b.failed(false, "x", 0), retry(100));
        assert_eq!(b.tries(), 1);
        assert_eq!(b.failed(false, "y", 0), retry(200), "the wait doubles");
        assert_eq!(
            b.failed(false, "broker did not answer", 0),
            Verdict::Escalate {
                reason: "the sink recovery budget is exhausted after 3 tries: broker did not answer".into()
            }
        );
        assert_eq!(b.tries(), 3);
    }

    #[test]
    fn a_lost_transaction_escalates_at_once() {
        let mut b = budget(50);
        assert_eq!(b.failed(false, "x", 7), retry(93), "jittered");
        assert_eq!(
            b.failed(true, "gone", 0),
            Verdict::Escalate { reason: "a transaction was lost after 2 tries: gone".into() }
        );
    }

    #[test]
    fn a_budget_of_zero_or_one_gives_up_after_the_first_try() {
        for budget in [0, 1] {
            let mut b = RecoveryBudget::new(&JobConfig { sink_recovery_budget: budget, ..JobConfig::default() }, 0);
            assert!(matches!(b.failed(false, "x", 0), Verdict::Escalate { .. }), "budget {budget}");
        }
    }

    #[test]
    fn a_new_deployment_waits_as_long_as_the_streak_it_inherits() {
        let mut b = RecoveryBudget::new(&JobConfig::default(), 4);
        assert_eq!(b.failed(false, "x", 0), retry(1_600), "the fifth failure in a row");
        assert_eq!((b.tries(), b.streak()), (1, 5), "the budget counts this deployment's tries only");
        assert_eq!(b.failed(false, "x", 0), retry(3_000), "capped");
    }

    #[test]
    fn the_planted_bug_retries_at_a_fixed_pause() {
        let cfg = JobConfig { mutant: Some(Mutant::RetryWithoutBackoff), ..JobConfig::default() };
        let mut b = RecoveryBudget::new(&cfg, 5);
        for _ in 0..10 {
            assert_eq!(b.failed(false, "x", 5), retry(100));
        }
    }

    #[test]
    fn every_failed_try_is_a_task_failure_and_escalation_fails_the_job() {
        let task = TaskId::Chain(2);
        assert_eq!(
            events(4, task, "e", &retry(100)),
            vec![Event::TaskFailed { attempt: 4, task, reason: "recovery: e".into() }]
        );
        let v = Verdict::Escalate { reason: "why".into() };
        assert_eq!(
            events(4, task, "e", &v),
            vec![
                Event::TaskFailed { attempt: 4, task, reason: "recovery: e".into() },
                Event::JobFailed { attempt: 4, task, reason: "why".into() },
            ]
        );
    }
}
