//! The step harness (`exactsim_sim::harness`) on the cases of Flink's
//! `TwoPhaseCommitSinkFunctionTest`, against `BrokerSink` on the simulated
//! broker: every step goes through the engine's own 2PC state machine,
//! faults happen between steps, and each case asserts what a
//! `read_committed` reader sees.

use exactsim_engine::observe::{Event, FaultPoint};
use exactsim_sim::disk::CrashMode;
use exactsim_sim::harness::{recs, run_steps, Setup, StepError};

fn ids(r: std::ops::RangeInclusive<u64>) -> Vec<u64> {
    r.collect()
}

#[test]
fn notify_of_completed_checkpoint_commits_what_it_covers() {
    run_steps(Setup::broker(), |mut h| async move {
        h.start().await.unwrap();
        h.write(recs(1..=3)).await.unwrap();
        h.snapshot(1).await.unwrap();
        h.write(recs(4..=5)).await.unwrap();
        h.snapshot(2).await.unwrap();
        h.write(recs(6..=6)).await.unwrap();
        assert!(h.committed(0).await.is_empty(), "nothing visible before a notification");
        h.notify(1).await.unwrap();
        assert_eq!(h.committed(0).await, ids(1..=3));
        h.notify(2).await.unwrap();
        assert_eq!(h.committed(0).await, ids(1..=5));
        assert_eq!(h.pending(), 0);
    });
}

#[test]
fn a_subsuming_notification_commits_all_earlier_pending_in_order() {
    run_steps(Setup::broker(), |mut h| async move {
        h.start().await.unwrap();
        h.write(recs(1..=2)).await.unwrap();
        h.snapshot(1).await.unwrap();
        h.write(recs(3..=4)).await.unwrap();
        h.snapshot(2).await.unwrap();
        h.notify(2).await.unwrap(); // notify(1) was lost
        assert_eq!(h.committed(0).await, ids(1..=4));
        let order: Vec<u64> = h
            .events()
            .into_iter()
            .filter_map(|(_, e)| match e {
                Event::CommitConfirmed { ckpt, .. } => Some(ckpt),
                _ => None,
            })
            .collect();
        assert_eq!(order, vec![1, 2]);
    });
}

#[test]
fn late_and_duplicate_notifications_change_nothing() {
    run_steps(Setup::broker(), |mut h| async move {
        h.start().await.unwrap();
        h.write(recs(1..=2)).await.unwrap();
        h.snapshot(1).await.unwrap();
        h.write(recs(3..=3)).await.unwrap();
        h.snapshot(2).await.unwrap();
        h.notify(2).await.unwrap();
        h.notify(1).await.unwrap(); // late
        h.notify(2).await.unwrap(); // duplicate
        assert_eq!(h.committed(0).await, ids(1..=3));
        h.write(recs(4..=4)).await.unwrap();
        h.snapshot(3).await.unwrap();
        h.notify(2).await.unwrap(); // late while 3 is pending: 3 stays pending
        assert_eq!(h.pending(), 1);
        assert_eq!(h.committed(0).await, ids(1..=3));
    });
}

#[test]
fn failure_before_notify_recommits_on_recovery_and_drops_the_rest() {
    run_steps(Setup::broker(), |mut h| async move {
        h.start().await.unwrap();
        h.write(recs(1..=70)).await.unwrap(); // more than a flush: at the broker
        let s1 = h.snapshot(1).await.unwrap();
        h.write(recs(71..=140)).await.unwrap(); // after the checkpoint
        h.crash_sink(); // before notify(1)
        h.restore(Some(&s1), 1).await.unwrap();
        assert_eq!(h.committed(0).await, ids(1..=70), "checkpoint 1 re-committed, the rest aborted");
        assert!(h.open_in_system().await.is_empty(), "the old open transaction is aborted");
        h.write(recs(71..=72)).await.unwrap();
        h.snapshot(2).await.unwrap();
        h.notify(2).await.unwrap();
        assert_eq!(h.committed(0).await, ids(1..=72));
    });
}

#[test]
fn a_crash_between_commits_is_repaired_by_recovery() {
    run_steps(Setup::broker(), |mut h| async move {
        h.start().await.unwrap();
        h.write(recs(1..=2)).await.unwrap();
        h.snapshot(1).await.unwrap();
        h.write(recs(3..=4)).await.unwrap();
        let s2 = h.snapshot(2).await.unwrap();
        h.crash_at(FaultPoint::BetweenCommits);
        assert_eq!(h.notify(2).await, Err(StepError::Crashed(FaultPoint::BetweenCommits)));
        assert_eq!(h.committed(0).await, ids(1..=2), "the first commit went through");
        h.restore(Some(&s2), 2).await.unwrap();
        assert_eq!(h.committed(0).await, ids(1..=4), "recovery committed the second, and the first once");
    });
}

#[test]
fn commit_after_the_server_timed_the_transaction_out_fails_the_job() {
    let setup = Setup::broker().with_cfg(|c| c.txn_timeout_ms = 200);
    run_steps(setup, |mut h| async move {
        h.start().await.unwrap();
        h.write(recs(1..=2)).await.unwrap();
        h.snapshot(1).await.unwrap();
        h.sleep(1_000).await; // the notification comes too late
        match h.notify(1).await {
            Err(StepError::Failed(reason)) => assert!(reason.contains("lost"), "{reason}"),
            other => panic!("a lost commit must fail the job: {other:?}"),
        }
        assert!(h.events().iter().any(|(_, e)| matches!(e, Event::CommitFailed { ckpt: 1, .. })));
        assert!(h.committed(0).await.is_empty());
    });
}

#[test]
fn commit_after_timeout_with_the_opt_in_continues_and_counts_the_loss() {
    let setup = Setup::broker().with_cfg(|c| {
        c.txn_timeout_ms = 200;
        c.ignore_lost_commits = true;
    });
    run_steps(setup, |mut h| async move {
        h.start().await.unwrap();
        h.write(recs(1..=2)).await.unwrap();
        h.snapshot(1).await.unwrap();
        h.sleep(1_000).await;
        h.notify(1).await.unwrap();
        assert_eq!(h.lost_commits(), 1);
        h.write(recs(3..=3)).await.unwrap();
        h.snapshot(2).await.unwrap();
        h.notify(2).await.unwrap();
        assert_eq!(h.committed(0).await, vec![3], "the job went on; checkpoint 1's data is lost");
    });
}

#[test]
fn no_transaction_after_finish() {
    run_steps(Setup::broker(), |mut h| async move {
        h.start().await.unwrap();
        h.write(recs(1..=3)).await.unwrap();
        h.end_of_input();
        h.snapshot(1).await.unwrap();
        assert!(h.open_txn().is_none(), "nothing begun after the final checkpoint");
        let s2 = h.snapshot(2).await.unwrap(); // a later checkpoint carries the pending one
        assert_eq!(s2.pending.len(), 1);
        assert!(s2.open.is_none());
        h.notify(2).await.unwrap();
        assert_eq!(h.committed(0).await, ids(1..=3));
        assert!(h.open_in_system().await.is_empty());
        let begun = h.events().iter().filter(|(_, e)| matches!(e, Event::TxnBegun { .. })).count();
        assert_eq!(begun, 1);
    });
}

#[test]
fn recovery_from_state_after_finish_begins_nothing() {
    run_steps(Setup::broker(), |mut h| async move {
        h.start().await.unwrap();
        h.write(recs(1..=3)).await.unwrap();
        h.end_of_input();
        let s1 = h.snapshot(1).await.unwrap();
        h.crash_sink(); // before notify
        h.restore_with(Some(&s1), 1, true, 1).await.unwrap();
        assert!(h.open_txn().is_none(), "a finished state restores with no open transaction");
        assert_eq!(h.committed(0).await, ids(1..=3));
        assert!(h.open_in_system().await.is_empty());
    });
}

#[test]
fn lingering_transactions_of_a_previous_run_are_aborted_and_the_new_run_takes_over() {
    run_steps(Setup::broker(), |mut h| async move {
        // Run 0 gets to attempt 3 and dies with data in open transactions.
        for _ in 0..3 {
            h.start_fencing(3).await.unwrap();
        }
        assert_eq!(h.attempt(), 3);
        h.write(recs(1..=70)).await.unwrap();
        h.snapshot(1).await.unwrap();
        h.write(recs(71..=140)).await.unwrap();
        assert_eq!(h.open_in_system().await.len(), 2);
        // A new run without the old checkpoints: attempt 1 again.
        h.new_run();
        h.start_fencing(3).await.unwrap();
        assert_eq!(h.attempt(), 1);
        assert!(h.open_in_system().await.is_empty(), "the previous run's transactions are aborted");
        h.write(recs(200..=201)).await.unwrap();
        h.snapshot(1).await.unwrap();
        h.notify(1).await.unwrap();
        assert_eq!(h.committed(0).await, vec![200, 201], "the new run writes under the same ids");
    });
}

#[test]
fn commit_is_idempotent_across_recoveries() {
    run_steps(Setup::broker(), |mut h| async move {
        h.start().await.unwrap();
        h.write(recs(1..=3)).await.unwrap();
        let s1 = h.snapshot(1).await.unwrap();
        h.notify(1).await.unwrap();
        for _ in 0..2 {
            h.crash_sink();
            h.restore(Some(&s1), 1).await.unwrap(); // re-commits checkpoint 1 again
        }
        assert_eq!(h.committed(0).await, ids(1..=3), "no duplicates");
    });
}

#[test]
fn broker_crash_between_pre_commit_and_notify_loses_nothing() {
    run_steps(Setup::broker(), |mut h| async move {
        h.start().await.unwrap();
        h.write(recs(1..=70)).await.unwrap();
        h.snapshot(1).await.unwrap();
        h.crash_broker(CrashMode::LoseUnsynced, 50).await;
        h.notify(1).await.unwrap();
        assert_eq!(h.committed(0).await, ids(1..=70));
    });
}

#[test]
fn a_partitioned_sink_fails_its_step_and_recovers_after_healing() {
    run_steps(Setup::broker(), |mut h| async move {
        h.start().await.unwrap();
        h.write(recs(1..=3)).await.unwrap();
        let s1 = h.snapshot(1).await.unwrap();
        h.write(recs(4..=5)).await.unwrap();
        h.partition_sink(true);
        assert!(matches!(h.notify(1).await, Err(StepError::Failed(r)) if r.contains("did not answer")));
        h.partition_sink(false);
        h.restore(Some(&s1), 1).await.unwrap();
        assert_eq!(h.committed(0).await, ids(1..=3));
    });
}

// ---- a user's sink under the harness ----

use async_trait::async_trait;
use exactsim_engine::sink::{BrokerSink, SinkEnv, SinkError, TwoPhaseCommitSink, TxnHandle};
use exactsim_engine::types::{CheckpointId, OutRecord};
use std::sync::Arc;

/// A user's sink: its own transaction names, optionally the classic bug
/// (a restored pending transaction is taken as committed).
struct MySink {
    inner: BrokerSink,
    skip_recommit: bool,
}

#[async_trait]
impl TwoPhaseCommitSink for MySink {
    async fn begin(&mut self, hint: CheckpointId) -> Result<TxnHandle, SinkError> {
        self.inner.begin(hint).await
    }
    async fn write(&mut self, txn: &mut TxnHandle, records: &[OutRecord]) -> Result<(), SinkError> {
        self.inner.write(txn, records).await
    }
    async fn pre_commit(&mut self, txn: &mut TxnHandle) -> Result<(), SinkError> {
        self.inner.pre_commit(txn).await
    }
    async fn commit(&mut self, txn: &TxnHandle) -> Result<(), SinkError> {
        self.inner.commit(txn).await
    }
    async fn abort(&mut self, txn: &TxnHandle) -> Result<(), SinkError> {
        self.inner.abort(txn).await
    }
    async fn recover_and_commit(&mut self, txn: &TxnHandle) -> Result<(), SinkError> {
        if self.skip_recommit {
            return Ok(());
        }
        self.inner.recover_and_commit(txn).await
    }
    async fn recover_and_abort(&mut self, txn: &TxnHandle) -> Result<(), SinkError> {
        self.inner.recover_and_abort(txn).await
    }
    async fn abort_lingering(&mut self, after: Option<CheckpointId>, upto: CheckpointId) -> Result<(), SinkError> {
        self.inner.abort_lingering(after, upto).await
    }
}

/// The README's example: a user's sink, tested step by step.
fn crash_before_notify_case(skip_recommit: bool) {
    let setup = Setup::broker().with_sink(move |env: SinkEnv| {
        let prefix = format!("mysink/{}/", env.subtask);
        Box::new(MySink { inner: BrokerSink::with_prefix(env, prefix), skip_recommit })
    });
    run_steps(setup, |mut h| async move {
        h.start().await.unwrap();
        h.write(recs(1..=3)).await.unwrap();
        let s1 = h.snapshot(1).await.unwrap(); // pre-commit, begin the next
        h.write(recs(4..=5)).await.unwrap();
        h.crash_sink(); // dies before notify(1)
        h.restore(Some(&s1), 1).await.unwrap(); // must re-commit checkpoint 1
        assert_eq!(h.committed(0).await, vec![1, 2, 3]);
        assert!(h.open_in_system().await.is_empty());
    });
}

#[test]
fn a_users_sink_passes_the_crash_before_notify_case() {
    crash_before_notify_case(false);
}

#[test]
fn the_same_sink_skipping_recommit_fails_it() {
    let r = std::panic::catch_unwind(|| crash_before_notify_case(true));
    assert!(r.is_err(), "the harness caught the skipped re-commit");
}

#[test]
fn the_harness_drives_a_sink_into_its_own_system() {
    use exactsim_example_kv::{KvLog, KvReader, KvSink};
    for skip_recommit in [false, true] {
        let setup = Setup::broker()
            .with_system(Arc::new(KvLog), Arc::new(KvReader))
            .with_sink(move |env| Box::new(KvSink::new(env, skip_recommit)));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_steps(setup, |mut h| async move {
                h.start().await.unwrap();
                h.write(recs(1..=3)).await.unwrap();
                let s1 = h.snapshot(1).await.unwrap();
                h.write(recs(4..=4)).await.unwrap();
                h.snapshot(2).await.unwrap();
                h.crash_sink();
                h.restore(Some(&s1), 1).await.unwrap();
                assert_eq!(h.committed(0).await, vec![1, 2, 3]);
                assert!(h.open_in_system().await.is_empty(), "the staged transaction 2 is aborted");
            })
        }));
        assert_eq!(r.is_err(), skip_recommit, "skip_recommit={skip_recommit}");
    }
}
