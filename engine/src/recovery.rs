//! **Owns the sink recovery's retry rule**: how many times a task's sink
//! recovery (re-commits, aborts, fencing, the first begin) is tried before
//! the job fails, as a plain state machine with no runtime.
//!
//! A recovery try that fails is retried with a fresh sink (a new sink
//! session, [`RecoveryBudget::tries`]) after [`RETRY_PAUSE`], since its
//! steps are idempotent, up to `JobConfig::sink_recovery_budget` consecutive
//! failed tries. A lost transaction (`SinkTask::lost_for_good`) escalates
//! at once: retrying cannot bring it back. Escalating fails the job
//! loudly (`JobFailed`). Every failed try is a `TaskFailed` with the
//! reason `recovery: {error}` ([`events`]).
//!
//! The worker's deployment (`worker.rs`) and the step harness's
//! `Harness::restore_retrying` (`exactsim_sim::harness`) both go through it, so a
//! sink tested step by step escalates exactly as in a job.

use crate::observe::Event;
use crate::types::{Attempt, TaskId};
use std::time::Duration;

/// The pause between two recovery tries.
pub const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// What to do after a failed recovery try.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Try again after [`RETRY_PAUSE`], with a fresh sink.
    Retry,
    /// Give up: the job fails, for `reason` (as `JobFailed` reports it).
    Escalate { reason: String },
}

/// The consecutive failed tries of one task's recovery, against a budget.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryBudget {
    budget: u32,
    tries: u32,
}

impl RecoveryBudget {
    /// `budget`: `JobConfig::sink_recovery_budget` (a budget of 0 gives up
    /// after the first failed try, as 1 does).
    pub fn new(budget: u32) -> RecoveryBudget {
        RecoveryBudget { budget, tries: 0 }
    }

    /// The failed tries so far: the number of the next try, which orders
    /// its sink session after the earlier ones (`SinkEnv::session`).
    pub fn tries(&self) -> u32 {
        self.tries
    }

    /// A try failed with `err`; `fatal` when retrying cannot help (a
    /// transaction is lost for good).
    pub fn failed(&mut self, fatal: bool, err: &str) -> Verdict {
        self.tries += 1;
        if fatal || self.tries >= self.budget {
            let why = if fatal { "a transaction was lost" } else { "the sink recovery budget is exhausted" };
            Verdict::Escalate { reason: format!("{why} after {} tries: {err}", self.tries) }
        } else {
            Verdict::Retry
        }
    }
}

/// The history events of a failed try of `task`'s recovery in `attempt`:
/// its `TaskFailed`, then `JobFailed` when the verdict escalates.
pub fn events(attempt: Attempt, task: TaskId, err: &str, verdict: &Verdict) -> Vec<Event> {
    let mut out = vec![Event::TaskFailed { attempt, task, reason: format!("recovery: {err}") }];
    if let Verdict::Escalate { reason } = verdict {
        out.push(Event::JobFailed { attempt, task, reason: reason.clone() });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_failures_are_retried_until_the_budget_is_spent() {
        let mut b = RecoveryBudget::new(3);
        assert_eq!(b.tries(), 0);
        assert_eq!(b.failed(false, "x"), Verdict::Retry);
        assert_eq!(b.tries(), 1);
        assert_eq!(b.failed(false, "y"), Verdict::Retry);
        assert_eq!(
            b.failed(false, "broker did not answer"),
            Verdict::Escalate {
                reason: "the sink recovery budget is exhausted after 3 tries: broker did not answer".into()
            }
        );
        assert_eq!(b.tries(), 3);
    }

    #[test]
    fn a_lost_transaction_escalates_at_once() {
        let mut b = RecoveryBudget::new(50);
        assert_eq!(b.failed(false, "x"), Verdict::Retry);
        assert_eq!(
            b.failed(true, "gone"),
            Verdict::Escalate { reason: "a transaction was lost after 2 tries: gone".into() }
        );
    }

    #[test]
    fn a_budget_of_zero_or_one_gives_up_after_the_first_try() {
        for budget in [0, 1] {
            let mut b = RecoveryBudget::new(budget);
            assert!(matches!(b.failed(false, "x"), Verdict::Escalate { .. }), "budget {budget}");
        }
    }

    #[test]
    fn every_failed_try_is_a_task_failure_and_escalation_fails_the_job() {
        let task = TaskId::Chain(2);
        assert_eq!(
            events(4, task, "e", &Verdict::Retry),
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
