//! A user's own two-phase-commit sink, plugged in through
//! `Pipeline::sink`, runs through the same campaigns and checks as the
//! built-in one (see "Testing your own sink" in README.md).
//!
//! `UserSink` stands for a user's implementation: it keeps its own
//! transaction bookkeeping on top of the broker client and counts every
//! call the engine makes. A correct one passes every check under crashes;
//! the same sink with a classic bug (a restored pending transaction is
//! "already done", so recovery skips its commit) is caught.

use crate::common::*;
use async_trait::async_trait;
use exactsim_engine::config::JobConfig;
use exactsim_engine::pipeline::{KeyedOperator, Pipeline};
use exactsim_engine::sink::{BrokerSink, SinkEnv, SinkError, TwoPhaseCommitSink, TxnHandle};
use exactsim_engine::types::{CheckpointId, DeliveryMode, OutRecord, Record};
use exactsim_model::report::Verdict;
use exactsim_model::rng::SimRng;
use exactsim_model::scenario::Scenario;
use exactsim_model::schedule::Profile;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Calls the engine made into the user's sink, over a whole run.
#[derive(Default)]
struct Calls {
    begin: AtomicU64,
    pre_commit: AtomicU64,
    commit: AtomicU64,
    recover_and_commit: AtomicU64,
    recover_and_abort: AtomicU64,
}

struct UserSink {
    inner: BrokerSink,
    calls: Arc<Calls>,
    skip_recommit: bool,
}

#[async_trait]
impl TwoPhaseCommitSink for UserSink {
    async fn begin(&mut self, hint: CheckpointId) -> Result<TxnHandle, SinkError> {
        self.calls.begin.fetch_add(1, Ordering::Relaxed);
        self.inner.begin(hint).await
    }
    async fn write(&mut self, txn: &mut TxnHandle, records: &[OutRecord]) -> Result<(), SinkError> {
        self.inner.write(txn, records).await
    }
    async fn pre_commit(&mut self, txn: &mut TxnHandle) -> Result<(), SinkError> {
        self.calls.pre_commit.fetch_add(1, Ordering::Relaxed);
        self.inner.pre_commit(txn).await
    }
    async fn commit(&mut self, txn: &TxnHandle) -> Result<(), SinkError> {
        self.calls.commit.fetch_add(1, Ordering::Relaxed);
        self.inner.commit(txn).await
    }
    async fn abort(&mut self, txn: &TxnHandle) -> Result<(), SinkError> {
        self.inner.abort(txn).await
    }
    async fn recover_and_commit(&mut self, txn: &TxnHandle) -> Result<(), SinkError> {
        self.calls.recover_and_commit.fetch_add(1, Ordering::Relaxed);
        if self.skip_recommit {
            // The user's bug: "it was pre-committed, so it is as good as
            // committed".
            return Ok(());
        }
        self.inner.recover_and_commit(txn).await
    }
    async fn recover_and_abort(&mut self, txn: &TxnHandle) -> Result<(), SinkError> {
        self.calls.recover_and_abort.fetch_add(1, Ordering::Relaxed);
        self.inner.recover_and_abort(txn).await
    }
    async fn abort_lingering(&mut self, after: Option<CheckpointId>, upto: CheckpointId) -> Result<(), SinkError> {
        self.inner.abort_lingering(after, upto).await
    }
}

struct UserPipeline {
    inner: Arc<dyn Pipeline>,
    calls: Arc<Calls>,
    skip_recommit: bool,
}

impl Pipeline for UserPipeline {
    fn name(&self) -> &str {
        "word_count_user_sink"
    }
    fn create(&self, subtask: u32, parallelism: u32) -> Box<dyn KeyedOperator> {
        self.inner.create(subtask, parallelism)
    }
    fn sink(&self, env: SinkEnv) -> Box<dyn TwoPhaseCommitSink> {
        Box::new(UserSink { inner: BrokerSink::new(env), calls: self.calls.clone(), skip_recommit: self.skip_recommit })
    }
}

/// word_count's workload and reference, with the user's sink.
struct UserScenario {
    inner: Arc<dyn Scenario>,
    calls: Arc<Calls>,
    skip_recommit: bool,
}

impl Scenario for UserScenario {
    fn name(&self) -> &'static str {
        "word_count_user_sink"
    }
    fn description(&self) -> &'static str {
        "word_count through a user-supplied 2PC sink"
    }
    fn tune(&self, cfg: &mut JobConfig, rng: &mut SimRng) {
        self.inner.tune(cfg, rng)
    }
    fn generate(&self, rng: &mut SimRng, partitions: u32) -> Vec<Vec<Record>> {
        self.inner.generate(rng, partitions)
    }
    fn pipeline(&self) -> Arc<dyn Pipeline> {
        Arc::new(UserPipeline {
            inner: self.inner.pipeline(),
            calls: self.calls.clone(),
            skip_recommit: self.skip_recommit,
        })
    }
    fn reference(&self, input: &[Vec<Record>], offsets: &[u64]) -> Vec<OutRecord> {
        self.inner.reference(input, offsets)
    }
}

fn user_run(seed: u64, skip_recommit: bool, calls: &Arc<Calls>) -> exactsim_sim::runner::Outcome {
    user_run_in(seed, skip_recommit, calls, DeliveryMode::ExactlyOnce)
}

fn user_run_in(
    seed: u64,
    skip_recommit: bool,
    calls: &Arc<Calls>,
    mode: DeliveryMode,
) -> exactsim_sim::runner::Outcome {
    let sc = Arc::new(UserScenario {
        inner: exactsim::resolve_scenario("word_count").unwrap(),
        calls: calls.clone(),
        skip_recommit,
    });
    let spec = exactsim::spec(sc, seed, Profile::resolve("crash").unwrap(), mode, None);
    go(spec, "crash")
}

#[test]
fn a_correct_user_sink_passes_and_is_driven_through_the_trait() {
    let calls = Arc::new(Calls::default());
    let mut recoveries = 0;
    for seed in seed_range() {
        let out = user_run(seed, false, &calls);
        assert_pass(&out);
        assert_eq!(out.report.output.committed, out.report.output.expected);
        recoveries += out.report.recoveries;
    }
    assert!(recoveries > 0, "the crash profile caused no recovery");
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    assert!(get(&calls.begin) > 0);
    assert!(get(&calls.pre_commit) > 0);
    assert!(get(&calls.commit) > 0);
    assert!(get(&calls.recover_and_abort) > 0, "recovery went through the user's sink");
}

#[test]
fn a_user_sink_that_skips_recommit_is_caught() {
    let calls = Arc::new(Calls::default());
    let caught = (1..=40).find_map(|seed| {
        let out = user_run(seed, true, &calls);
        (out.report.verdict == Verdict::Fail).then_some((seed, out))
    });
    let (seed, out) = caught.expect("the buggy user sink escaped 40 crash seeds");
    let checks: Vec<&str> = out.report.violations.iter().map(|v| v.check.as_str()).collect();
    assert!(checks.contains(&"P1") || checks.contains(&"P7"), "seed {seed}: {checks:?}");
    assert!(calls.recover_and_commit.load(Ordering::Relaxed) > 0);
}

/// At-least-once mode drives a user sink through the trait's default
/// `append` (a transaction per batch, committed at once): no loss under
/// crashes, and the duplicates the mode allows are counted.
#[test]
fn a_user_sink_in_at_least_once_mode_loses_nothing() {
    let calls = Arc::new(Calls::default());
    let mut duplicates = 0;
    for seed in 1..=6 {
        let out = user_run_in(seed, false, &calls, DeliveryMode::AtLeastOnce);
        assert_pass(&out);
        assert_eq!(out.report.output.lost, 0);
        duplicates += out.report.output.duplicates;
    }
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    assert!(get(&calls.begin) > 0 && get(&calls.commit) > 0, "the default append went through the user's sink");
    assert_eq!(get(&calls.recover_and_commit), 0, "no 2PC recovery in at-least-once mode");
    assert!(duplicates > 0, "crashes in at-least-once mode replay some output");
}
