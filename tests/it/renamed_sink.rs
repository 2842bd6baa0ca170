//! The oracles judge a sink by what the engine records, never by the names
//! it gives its transactions: a sink naming them `mysink/{subtask}/{n}`
//! passes every check on chaos seeds, and the same sink with a planted 2PC
//! bug (it commits at pre-commit, before the checkpoint completes) is
//! caught.
//!
//! `cargo test` runs `EXACTSIM_TEST_SEEDS` chaos seeds (default 60, about
//! 2 s in the test build; `ci/nightly.sh` runs 1,000).

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
use std::sync::Arc;

/// Transactions named `mysink/{subtask}/{n}`; optionally the planted bug.
struct MySink {
    inner: BrokerSink,
    commit_at_precommit: bool,
}

#[async_trait]
impl TwoPhaseCommitSink for MySink {
    async fn begin(&mut self, hint: CheckpointId) -> Result<TxnHandle, SinkError> {
        let t = self.inner.begin(hint).await?;
        assert!(t.name.starts_with("mysink/"), "the sink's own naming: {}", t.name);
        Ok(t)
    }
    async fn write(&mut self, txn: &mut TxnHandle, records: &[OutRecord]) -> Result<(), SinkError> {
        self.inner.write(txn, records).await
    }
    async fn pre_commit(&mut self, txn: &mut TxnHandle) -> Result<(), SinkError> {
        self.inner.pre_commit(txn).await?;
        if self.commit_at_precommit {
            // The planted 2PC bug: visible before the checkpoint completes.
            self.inner.commit(txn).await?;
        }
        Ok(())
    }
    async fn commit(&mut self, txn: &TxnHandle) -> Result<(), SinkError> {
        self.inner.commit(txn).await
    }
    async fn abort(&mut self, txn: &TxnHandle) -> Result<(), SinkError> {
        self.inner.abort(txn).await
    }
    async fn recover_and_commit(&mut self, txn: &TxnHandle) -> Result<(), SinkError> {
        self.inner.recover_and_commit(txn).await
    }
    async fn recover_and_abort(&mut self, txn: &TxnHandle) -> Result<(), SinkError> {
        self.inner.recover_and_abort(txn).await
    }
    async fn abort_lingering(&mut self, after: Option<CheckpointId>, upto: CheckpointId) -> Result<(), SinkError> {
        self.inner.abort_lingering(after, upto).await
    }
}

struct MyPipeline {
    inner: Arc<dyn Pipeline>,
    buggy: bool,
}

impl Pipeline for MyPipeline {
    fn name(&self) -> &str {
        "word_count_mysink"
    }
    fn create(&self, subtask: u32, parallelism: u32) -> Box<dyn KeyedOperator> {
        self.inner.create(subtask, parallelism)
    }
    fn sink(&self, env: SinkEnv) -> Box<dyn TwoPhaseCommitSink> {
        let prefix = format!("mysink/{}/", env.subtask);
        Box::new(MySink { inner: BrokerSink::with_prefix(env, prefix), commit_at_precommit: self.buggy })
    }
}

struct MyScenario {
    inner: Arc<dyn Scenario>,
    buggy: bool,
}

impl Scenario for MyScenario {
    fn name(&self) -> &'static str {
        "word_count_mysink"
    }
    fn description(&self) -> &'static str {
        "word_count through a sink with its own transaction names"
    }
    fn tune(&self, cfg: &mut JobConfig, rng: &mut SimRng) {
        self.inner.tune(cfg, rng)
    }
    fn generate(&self, rng: &mut SimRng, partitions: u32) -> Vec<Vec<Record>> {
        self.inner.generate(rng, partitions)
    }
    fn pipeline(&self) -> Arc<dyn Pipeline> {
        Arc::new(MyPipeline { inner: self.inner.pipeline(), buggy: self.buggy })
    }
    fn reference(&self, input: &[Vec<Record>], offsets: &[u64]) -> Vec<OutRecord> {
        self.inner.reference(input, offsets)
    }
}

fn my_scenario(buggy: bool) -> Arc<MyScenario> {
    Arc::new(MyScenario { inner: exactsim::resolve_scenario("word_count").unwrap(), buggy })
}

fn my_run(seed: u64, buggy: bool) -> exactsim_sim::runner::Outcome {
    go_custom(my_scenario(buggy), seed, "chaos", DeliveryMode::ExactlyOnce)
}

#[test]
fn a_sink_with_its_own_transaction_names_passes_every_check_on_chaos_seeds() {
    let mut committed = 0u64;
    for seed in test_seeds(60) {
        let out = my_run(seed, false);
        assert_pass(&out);
        assert_eq!(out.report.output.committed, out.report.output.expected, "seed {seed}");
        committed += out.report.transactions.committed;
    }
    assert!(committed > 0, "the runs committed transactions");
}

#[test]
fn the_same_sink_with_a_planted_2pc_bug_is_caught() {
    let caught = (1..=20).find_map(|seed| {
        let out = my_run(seed, true);
        (out.report.verdict == Verdict::Fail).then_some(out)
    });
    let out = caught.expect("commit-at-pre-commit escaped 20 chaos seeds");
    let checks: Vec<&str> = out.report.violations.iter().map(|v| v.check.as_str()).collect();
    assert!(checks.contains(&"P3"), "early visibility is P3: {checks:?}");
    assert!(out.report.violations.iter().any(|v| v.message.contains("mysink/")), "messages name the sink's txns");
    // A scenario defined in a test shrinks and replays like a registered one.
    let spec = exactsim::spec(
        my_scenario(true),
        out.report.seed,
        Profile::resolve("chaos").unwrap(),
        DeliveryMode::ExactlyOnce,
        None,
    );
    let shrunk = exactsim::replay::shrink(spec, "chaos", 100, 1).expect("the failing run shrinks");
    let file = exactsim::replay::ReplayFile::parse(&shrunk.file.to_json(), "shrunk").unwrap();
    let replayed = go(file.to_spec_with(my_scenario(true)).unwrap(), "chaos");
    assert_eq!(
        replayed.report.violations.first().map(|v| v.check.clone()),
        file.check,
        "the replay fails the same check"
    );
    assert!(file.to_spec_with(my_scenario(false)).is_ok());
    assert!(file.to_spec_with(exactsim::resolve_scenario("word_count").unwrap()).is_err(), "another scenario's file");
}
