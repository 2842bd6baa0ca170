//! The step harness (`exactsim_sim::harness`) on the cases of Flink's
//! `TwoPhaseCommitSinkFunctionTest`: every step goes through the engine's
//! own 2PC state machine, faults happen between steps, and each case
//! asserts what a `read_committed` reader sees.
//!
//! The cases that hold for any 2PC system run against both systems
//! ([`on_each_system`]): `BrokerSink` on the simulated broker, and the
//! example crate's `KvSink` into its own system `KvLog`. The rest are the
//! broker's (transaction timeouts, epochs, a new run taking over
//! transactional ids), each saying why. Then a system crash, a zombie
//! sink process, and recovery with its retry budget, each with a sink or
//! system that gets it wrong and must fail the same test body.

use async_trait::async_trait;
use exactsim_engine::config::Mutant;
use exactsim_engine::observe::{Event, FaultPoint};
use exactsim_engine::sink::{BrokerSink, SinkEnv, SinkError, TwoPhaseCommitSink, TxnHandle};
use exactsim_engine::storage::Storage;
use exactsim_engine::system::{SinkSystem, SystemEnv};
use exactsim_engine::types::{CheckpointId, OutRecord};
use exactsim_example_kv::{KvLog, KvReader, KvSink};
use exactsim_sim::disk::CrashMode;
use exactsim_sim::harness::{recs, run_steps, Harness, Setup, StepError};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;

fn ids(r: std::ops::RangeInclusive<u64>) -> Vec<u64> {
    r.collect()
}

/// The example's key-value store as the sink's own system, `KvSink` into it.
fn kv() -> Setup {
    Setup::broker().with_system(Arc::new(KvLog), Arc::new(KvReader)).with_sink(|env| Box::new(KvSink::new(env, false)))
}

/// Both systems, by name.
fn systems() -> Vec<(&'static str, Setup)> {
    vec![("broker", Setup::broker()), ("kv", kv())]
}

fn panic_text(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
}

/// Run `body` on each setup; a failure names the setup.
fn on_each<F, Fut>(setups: Vec<(&'static str, Setup)>, body: F)
where
    F: FnOnce(Harness) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    for (name, setup) in setups {
        let body = body.clone();
        if let Err(e) = catch_unwind(AssertUnwindSafe(|| run_steps(setup, body))) {
            panic!("on the {name} setup: {}", panic_text(&*e));
        }
    }
}

/// Run `body` against both systems (each setup changed by `tweak`).
fn on_each_system<F, Fut>(tweak: impl Fn(Setup) -> Setup, body: F)
where
    F: FnOnce(Harness) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    on_each(systems().into_iter().map(|(n, s)| (n, tweak(s))).collect(), body)
}

/// `body` must fail on each of these (bad) setups: the harness catches them.
fn fails_on_each<F, Fut>(setups: Vec<(&'static str, Setup)>, body: F)
where
    F: FnOnce(Harness) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    for (name, setup) in setups {
        let body = body.clone();
        match catch_unwind(AssertUnwindSafe(|| run_steps(setup, body))) {
            Ok(()) => panic!("the {name} setup must fail the test, and passed it"),
            Err(e) => eprintln!("the {name} setup failed the test, as it must: {}", panic_text(&*e)),
        }
    }
}

fn same(s: Setup) -> Setup {
    s
}

#[test]
fn notify_of_completed_checkpoint_commits_what_it_covers() {
    on_each_system(same, |mut h| async move {
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
    on_each_system(same, |mut h| async move {
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
    on_each_system(same, |mut h| async move {
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
    on_each_system(same, |mut h| async move {
        h.start().await.unwrap();
        h.write(recs(1..=70)).await.unwrap(); // more than a flush: at the broker (kv: in the sink)
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
    on_each_system(same, |mut h| async move {
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

// Broker only: `KvLog` never times a transaction out.
#[test]
fn a_write_after_the_broker_expired_the_open_transaction_is_fenced_and_recovery_redoes_it() {
    let setup = Setup::broker().with_cfg(|c| c.txn_timeout_ms = 200);
    run_steps(setup, |mut h| async move {
        h.start().await.unwrap();
        h.write(recs(1..=2)).await.unwrap();
        let s1 = h.snapshot(1).await.unwrap();
        h.notify(1).await.unwrap();
        h.write(recs(3..=70)).await.unwrap(); // a flush: the transaction is open at the broker
        h.sleep(1_000).await; // the broker expires it
                              // The producer learns it on its next request: fenced, the task fails.
        match h.write(recs(71..=140)).await {
            Err(StepError::Failed(reason)) => assert!(reason.contains("fenced"), "{reason}"),
            other => panic!("a write after the expiry must be fenced: {other:?}"),
        }
        assert!(h.events().iter().any(|(_, e)| matches!(
            e,
            Event::TxnAborted { reason, .. } if reason == exactsim_engine::broker::EXPIRED_REASON
        )));
        assert_eq!(h.committed(0).await, ids(1..=2), "nothing of the expired transaction is visible");
        // Recovery from checkpoint 1 redoes the rest under a new epoch.
        h.restore(Some(&s1), 1).await.unwrap();
        h.write(recs(3..=140)).await.unwrap();
        h.snapshot(2).await.unwrap();
        h.notify(2).await.unwrap();
        assert_eq!(h.committed(0).await, ids(1..=140));
    });
}

/// A pooled transactional id reused since the restored checkpoint: the
/// restored pre-commit (committed before the crash) is recognized as
/// committed, and the failed attempt's newer transaction under the same id
/// is aborted, never committed (`flink-40626-recommit-reused-id` commits
/// it). Then a transaction left open above a gap in the ids is aborted too
/// (`flink-23854-lingering-gap` misses it).
async fn pooled_ids_recover_after_reuse(mut h: Harness) {
    h.start().await.unwrap(); // p0
    h.write(recs(1..=2)).await.unwrap();
    let s1 = h.snapshot(1).await.unwrap(); // p0 pending, p1 open
    h.notify(1).await.unwrap(); // p0 committed: free again
    h.write(recs(3..=4)).await.unwrap();
    h.snapshot(2).await.unwrap(); // p1 pending, p0 reused
    h.write(recs(5..=70)).await.unwrap(); // flushed: p0 open at the broker
    assert_eq!(h.open_txn().map(|t| t.name.as_str()), Some("job-sink-0-p0"), "the committed id is reused");
    h.crash_sink();
    h.restore(Some(&s1), 1).await.unwrap(); // checkpoint 2 never completed
    assert_eq!(h.committed(0).await, ids(1..=2), "nothing of the unfinished checkpoints is visible");
    assert!(h.open_in_system().await.is_empty(), "the reused id's newer transaction is aborted");
    h.write(recs(3..=140)).await.unwrap();
    let s3 = h.snapshot(3).await.unwrap(); // p0 pending, p1 open
    h.notify(3).await.unwrap(); // p0 free
    h.write(recs(141..=210)).await.unwrap();
    h.snapshot(4).await.unwrap(); // p1 pending, p0 reused
    h.write(recs(211..=280)).await.unwrap();
    h.snapshot(5).await.unwrap(); // p0 pending, p2 open
    h.write(recs(281..=350)).await.unwrap(); // p0, p1, p2 open at the broker
    h.crash_sink();
    // Checkpoints 4 and 5 never completed. Recovery fences the restored
    // open p1: p0 (reused) and p2 are left, with p1 a gap between them.
    h.restore(Some(&s3), 3).await.unwrap();
    assert!(h.open_in_system().await.is_empty(), "the transaction above the gap is aborted");
    h.write(recs(141..=350)).await.unwrap();
    h.snapshot(6).await.unwrap();
    h.notify(6).await.unwrap();
    assert_eq!(h.committed(0).await, ids(1..=350));
}

// Broker only: the pool is the broker sink's.
#[test]
fn pooled_ids_reused_since_the_restored_checkpoint_recover_exactly_once() {
    run_steps(Setup::broker().with_cfg(|c| c.pooled_txn_ids = true), pooled_ids_recover_after_reuse);
}

#[test]
fn pooled_id_recovery_bugs_fail_the_reuse_case() {
    let planted = |m| {
        Setup::broker().with_cfg(move |c| {
            c.pooled_txn_ids = true;
            c.mutant = Some(m);
        })
    };
    fails_on_each(
        vec![
            ("flink-40626-recommit-reused-id", planted(Mutant::Flink40626RecommitReusedId)),
            ("flink-23854-lingering-gap", planted(Mutant::Flink23854LingeringGap)),
        ],
        pooled_ids_recover_after_reuse,
    );
}

// Broker only: `KvLog` never times a transaction out.
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

// Broker only: `KvLog` never times a transaction out.
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
    on_each_system(same, |mut h| async move {
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
    on_each_system(same, |mut h| async move {
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

// Broker only: a new run taking over transactional ids is the broker's
// ownership by (run, attempt); `KvLog` fences by attempt alone, and its
// sink stages only at pre-commit (no transaction is open in it before).
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
    on_each_system(same, |mut h| async move {
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
    on_each_system(same, |mut h| async move {
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

// ---- a crash of the sink's system ----

/// A pre-committed transaction must survive a crash of the sink's system
/// that loses what it had not synced (`crash_system`: the broker, or the
/// pipeline's own system).
async fn system_crash_case(mut h: Harness) {
    h.start().await.unwrap();
    h.write(recs(1..=70)).await.unwrap();
    h.snapshot(1).await.unwrap(); // pre-committed: durable from here on
    h.write(recs(71..=72)).await.unwrap();
    h.crash_system(CrashMode::LoseUnsynced, 50).await;
    h.notify(1).await.unwrap();
    assert_eq!(h.committed(0).await, ids(1..=70));
    h.snapshot(2).await.unwrap();
    h.notify(2).await.unwrap();
    assert_eq!(h.committed(0).await, ids(1..=72));
}

#[test]
fn a_pre_committed_transaction_survives_a_crash_of_the_system() {
    on_each_system(same, system_crash_case);
}

/// A storage that acknowledges `fsync` without syncing anything: the system
/// on it acknowledges a pre-commit before it is durable.
struct NoFsync(Arc<dyn Storage>);

#[async_trait]
impl Storage for NoFsync {
    async fn write(&self, path: &str, data: &[u8]) -> std::io::Result<()> {
        self.0.write(path, data).await
    }
    async fn append(&self, path: &str, data: &[u8]) -> std::io::Result<()> {
        self.0.append(path, data).await
    }
    async fn fsync(&self, _path: &str) -> std::io::Result<()> {
        Ok(())
    }
    async fn rename(&self, from: &str, to: &str) -> std::io::Result<()> {
        self.0.rename(from, to).await
    }
    async fn fsync_dir(&self) -> std::io::Result<()> {
        Ok(())
    }
    async fn read(&self, path: &str) -> std::io::Result<Vec<u8>> {
        self.0.read(path).await
    }
    async fn list(&self, prefix: &str) -> std::io::Result<Vec<String>> {
        self.0.list(prefix).await
    }
    async fn remove(&self, path: &str) -> std::io::Result<()> {
        self.0.remove(path).await
    }
}

/// `KvLog` writing its state without fsync: a staged (pre-committed)
/// transaction lives in the page cache only.
struct UnsyncedKvLog;

impl SinkSystem for UnsyncedKvLog {
    fn serve(&self, env: SystemEnv) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        KvLog.serve(SystemEnv { storage: Arc::new(NoFsync(env.storage.clone())), ..env })
    }
}

#[test]
fn a_system_that_does_not_sync_its_pre_commits_fails_the_system_crash_case() {
    let unsynced = Setup::broker()
        .with_system(Arc::new(UnsyncedKvLog), Arc::new(KvReader))
        .with_sink(|env| Box::new(KvSink::new(env, false)));
    fails_on_each(vec![("kv without fsync", unsynced)], system_crash_case);
}

// ---- a zombie: a stale sink process that keeps writing ----

/// The sink process is given up on after checkpoint 1 but lives on beside
/// its replacement, and keeps writing, pre-committing and committing.
/// Nothing it writes may become visible.
async fn zombie_case(mut h: Harness) {
    h.start().await.unwrap();
    h.write(recs(1..=3)).await.unwrap();
    let s1 = h.snapshot(1).await.unwrap();
    h.write(recs(101..=170)).await.unwrap(); // into its open transaction
    let z = h.detach_zombie();
    h.restore(Some(&s1), 1).await.unwrap(); // the replacement, a later attempt
    h.write(recs(4..=5)).await.unwrap();
    let zw = h.zombie_write(z, recs(171..=240)).await;
    let zs = h.zombie_snapshot(z, 2).await.map(|_| ());
    let zn = h.zombie_notify(z, 2).await;
    h.snapshot(2).await.unwrap();
    h.notify(2).await.unwrap();
    assert_eq!(h.committed(0).await, ids(1..=5), "nothing the zombie wrote is visible");
    let refused = [&zw, &zs, &zn].into_iter().find_map(|r| r.clone().err());
    assert!(matches!(refused, Some(StepError::Failed(_))), "the zombie is refused: {zw:?} {zs:?} {zn:?}");
    assert!(!h.zombie_running(z), "a refused zombie's task fails");
    assert!(h.open_in_system().await.is_empty());
}

#[test]
fn a_fencing_sink_refuses_its_zombie() {
    on_each_system(same, zombie_case);
}

/// A sink that does not fence: recovery neither aborts (fences) the
/// restored open transaction nor lingering ones, and (on the broker) its
/// transactional ids are new at every attempt, so that no later begin
/// fences an earlier attempt's either.
struct Unfenced(Box<dyn TwoPhaseCommitSink>);

#[async_trait]
impl TwoPhaseCommitSink for Unfenced {
    async fn begin(&mut self, hint: CheckpointId) -> Result<TxnHandle, SinkError> {
        self.0.begin(hint).await
    }
    async fn write(&mut self, txn: &mut TxnHandle, records: &[OutRecord]) -> Result<(), SinkError> {
        self.0.write(txn, records).await
    }
    async fn pre_commit(&mut self, txn: &mut TxnHandle) -> Result<(), SinkError> {
        self.0.pre_commit(txn).await
    }
    async fn commit(&mut self, txn: &TxnHandle) -> Result<(), SinkError> {
        self.0.commit(txn).await
    }
    async fn abort(&mut self, txn: &TxnHandle) -> Result<(), SinkError> {
        self.0.abort(txn).await
    }
    async fn recover_and_abort(&mut self, _txn: &TxnHandle) -> Result<(), SinkError> {
        Ok(())
    }
    async fn abort_lingering(&mut self, _after: Option<CheckpointId>, _upto: CheckpointId) -> Result<(), SinkError> {
        Ok(())
    }
}

#[test]
fn a_sink_without_fencing_lets_its_zombie_through_and_fails_the_zombie_case() {
    let broker = Setup::broker().with_sink(|env: SinkEnv| {
        let prefix = format!("unfenced-{}-{}-", env.subtask, env.attempt);
        Box::new(Unfenced(Box::new(BrokerSink::with_prefix(env, prefix))))
    });
    let kv = kv().with_sink(|env| Box::new(Unfenced(Box::new(KvSink::new(env, false)))));
    // And the engine's planted bug: recovery resumes the restored open
    // transaction without bumping its epoch (the zombie keeps writing into it).
    let no_epoch_bump = Setup::broker().with_cfg(|c| c.mutant = Some(Mutant::NoEpochBump));
    fails_on_each(
        vec![("broker without fencing", broker), ("kv without fencing", kv), ("no-epoch-bump", no_epoch_bump)],
        zombie_case,
    );
}

// ---- recovery with its retry budget ----

fn recovery_failures(h: &Harness) -> usize {
    h.events()
        .iter()
        .filter(|(_, e)| matches!(e, Event::TaskFailed { reason, .. } if reason.starts_with("recovery: ")))
        .count()
}

fn job_failures(h: &Harness) -> Vec<String> {
    h.events()
        .into_iter()
        .filter_map(|(_, e)| match e {
            Event::JobFailed { reason, .. } => Some(reason),
            _ => None,
        })
        .collect()
}

#[test]
fn recovery_retries_through_an_outage_shorter_than_its_budget() {
    on_each_system(
        |s| s.with_cfg(|c| c.sink_recovery_budget = 5),
        |mut h| async move {
            h.start().await.unwrap();
            h.write(recs(1..=3)).await.unwrap();
            let s1 = h.snapshot(1).await.unwrap();
            h.crash_sink();
            h.partition_sink_for(1_000); // a try takes 700 ms when cut off
            h.restore_retrying(Some(&s1), 1).await.unwrap();
            let failed = recovery_failures(&h);
            assert!((1..5).contains(&failed), "retried, within the budget: {failed} failed tries");
            assert!(job_failures(&h).is_empty());
            assert_eq!(h.committed(0).await, ids(1..=3));
        },
    );
}

#[test]
fn recovery_escalates_after_exactly_the_budget_when_the_system_stays_unreachable() {
    on_each_system(
        |s| s.with_cfg(|c| c.sink_recovery_budget = 3),
        |mut h| async move {
            h.start().await.unwrap();
            h.write(recs(1..=3)).await.unwrap();
            let s1 = h.snapshot(1).await.unwrap();
            h.crash_sink();
            h.partition_sink(true);
            let r = h.restore_retrying(Some(&s1), 1).await;
            let Err(StepError::Escalated(reason)) = r else { panic!("recovery must give up: {r:?}") };
            assert!(reason.starts_with("the sink recovery budget is exhausted after 3 tries: "), "{reason}");
            assert_eq!(recovery_failures(&h), 3);
            assert_eq!(job_failures(&h), vec![reason]);
            assert!(h.open_txn().is_none(), "no sink process runs");
        },
    );
}

// Broker only: the transaction is lost by the broker's transaction timeout
// (`KvLog` has none).
#[test]
fn a_lost_transaction_escalates_recovery_at_once() {
    let setup = Setup::broker().with_cfg(|c| c.txn_timeout_ms = 200);
    run_steps(setup, |mut h| async move {
        h.start().await.unwrap();
        h.write(recs(1..=70)).await.unwrap();
        let s1 = h.snapshot(1).await.unwrap();
        h.crash_sink();
        h.sleep(1_000).await; // the broker aborts the pre-committed transaction
        let r = h.restore_retrying(Some(&s1), 1).await;
        let Err(StepError::Escalated(reason)) = r else { panic!("a lost transaction fails the job: {r:?}") };
        assert!(reason.starts_with("a transaction was lost after 1 tries: "), "{reason}");
        assert_eq!(recovery_failures(&h), 1);
        assert_eq!(job_failures(&h), vec![reason]);
        assert!(h.committed(0).await.is_empty());
    });
}

// ---- a user's sink under the harness ----

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
