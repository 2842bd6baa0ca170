//! Flink's `TwoPhaseCommitSinkFunction` semantics in whole runs: a commit
//! that finds its transaction gone fails the job loudly (`JobFailed`, the
//! job never finishes) unless the job opts in to continue and count the
//! loss, and a sink whose recovery keeps failing "transiently" fails the
//! job after a bounded budget instead of redeploying forever.

use crate::common::*;
use async_trait::async_trait;
use exactsim_engine::config::JobConfig;
use exactsim_engine::observe::Event;
use exactsim_engine::pipeline::{KeyedOperator, Pipeline};
use exactsim_engine::sink::{BrokerSink, SinkEnv, SinkError, TwoPhaseCommitSink, TxnHandle};
use exactsim_engine::types::{CheckpointId, DeliveryMode, OutRecord, Record};
use exactsim_model::history::Ev;
use exactsim_model::rng::SimRng;
use exactsim_model::scenario::Scenario;
use std::sync::Arc;

#[derive(Clone, Copy, PartialEq)]
enum Failing {
    /// Every commit finds its transaction gone.
    Lost,
    /// Every commit times out.
    Transient,
}

struct FailingSink {
    inner: BrokerSink,
    how: Failing,
}

#[async_trait]
impl TwoPhaseCommitSink for FailingSink {
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
        if txn.records == 0 {
            return Ok(());
        }
        Err(match self.how {
            Failing::Lost => SinkError::TxnLost(format!("{} timed out at the server", txn.name)),
            Failing::Transient => SinkError::Transient("the server did not answer".into()),
        })
    }
    async fn abort(&mut self, txn: &TxnHandle) -> Result<(), SinkError> {
        self.inner.abort(txn).await
    }
    async fn recover_and_abort(&mut self, txn: &TxnHandle) -> Result<(), SinkError> {
        self.inner.recover_and_abort(txn).await
    }
    async fn abort_lingering(&mut self, after: Option<CheckpointId>, upto: CheckpointId) -> Result<(), SinkError> {
        self.inner.abort_lingering(after, upto).await
    }
}

struct P {
    inner: Arc<dyn Pipeline>,
    how: Failing,
}

impl Pipeline for P {
    fn name(&self) -> &str {
        "word_count_failing_commit"
    }
    fn create(&self, subtask: u32, parallelism: u32) -> Box<dyn KeyedOperator> {
        self.inner.create(subtask, parallelism)
    }
    fn sink(&self, env: SinkEnv) -> Box<dyn TwoPhaseCommitSink> {
        Box::new(FailingSink { inner: BrokerSink::new(env), how: self.how })
    }
}

struct S {
    inner: Arc<dyn Scenario>,
    how: Failing,
    ignore_lost: bool,
    txn_timeout_ms: Option<u64>,
}

impl Scenario for S {
    fn name(&self) -> &'static str {
        "word_count_failing_commit"
    }
    fn description(&self) -> &'static str {
        "word_count through a sink whose commits fail"
    }
    fn tune(&self, cfg: &mut JobConfig, rng: &mut SimRng) {
        self.inner.tune(cfg, rng);
        cfg.ignore_lost_commits = self.ignore_lost;
        cfg.sink_recovery_budget = 10;
        if let Some(t) = self.txn_timeout_ms {
            cfg.txn_timeout_ms = t;
        }
    }
    fn generate(&self, rng: &mut SimRng, partitions: u32) -> Vec<Vec<Record>> {
        self.inner.generate(rng, partitions)
    }
    fn pipeline(&self) -> Arc<dyn Pipeline> {
        Arc::new(P { inner: self.inner.pipeline(), how: self.how })
    }
    fn reference(&self, input: &[Vec<Record>], offsets: &[u64]) -> Vec<OutRecord> {
        self.inner.reference(input, offsets)
    }
}

fn failing_run(how: Failing, ignore_lost: bool) -> exactsim_sim::runner::Outcome {
    failing_run_with_timeout(how, ignore_lost, None)
}

fn failing_run_with_timeout(
    how: Failing,
    ignore_lost: bool,
    txn_timeout_ms: Option<u64>,
) -> exactsim_sim::runner::Outcome {
    let sc = Arc::new(S { inner: exactsim::resolve_scenario("word_count").unwrap(), how, ignore_lost, txn_timeout_ms });
    go_custom(sc, first_seed(), "none", DeliveryMode::ExactlyOnce)
}

fn job_failed(out: &exactsim_sim::runner::Outcome) -> Option<String> {
    out.result.history.events.iter().find_map(|s| match &s.ev {
        Ev::Engine(Event::JobFailed { reason, .. }) => Some(reason.clone()),
        _ => None,
    })
}

fn checks(out: &exactsim_sim::runner::Outcome) -> Vec<String> {
    out.report.violations.iter().map(|v| v.check.clone()).collect()
}

#[test]
fn a_lost_transaction_at_commit_fails_the_job_loudly() {
    let out = failing_run(Failing::Lost, false);
    let reason = job_failed(&out).expect("the job failed");
    assert!(reason.contains("a transaction was lost"), "{reason}");
    assert!(out.result.history.finished_at_us.is_none(), "a failed job never reports finished");
    assert!(checks(&out).contains(&"P11".to_string()), "{:?}", checks(&out));
    assert!(out.report.violations.iter().any(|v| v.message.contains("the job failed")));
}

/// With the opt-in, a transaction lost once its timeout has passed is
/// forgiven: the job goes on and the loss is counted (and P1 reports the
/// lost data, loudly).
#[test]
fn with_the_opt_in_a_loss_after_the_timeout_is_forgiven_and_counted() {
    let out = failing_run_with_timeout(Failing::Lost, true, Some(300));
    assert!(job_failed(&out).is_none(), "{:?}", job_failed(&out));
    assert!(out.result.history.finished_at_us.is_some(), "the job finished");
    assert!(out.report.transactions.commit_failed > 0, "the losses are counted");
    let c = checks(&out);
    assert!(c.contains(&"P1".to_string()) && !c.contains(&"P7".to_string()), "loss reported by P1, loudly: {c:?}");
}

/// The opt-in does not forgive a transaction lost before its timeout
/// (Flink's `ignoreFailuresAfterTransactionTimeout`): that loss was not an
/// expiry, and the job fails.
#[test]
fn with_the_opt_in_a_loss_before_the_timeout_still_fails_the_job() {
    let out = failing_run(Failing::Lost, true);
    assert!(job_failed(&out).is_some(), "the job failed");
    let reasons: Vec<&String> = out
        .result
        .history
        .events
        .iter()
        .filter_map(|s| match &s.ev {
            Ev::Engine(Event::TaskFailed { reason, .. }) => Some(reason),
            _ => None,
        })
        .collect();
    assert!(reasons.iter().any(|r| r.contains("before its transaction timeout")), "{reasons:?}");
    assert!(out.result.history.finished_at_us.is_none(), "a failed job never reports finished");
}

#[test]
fn transient_commit_errors_escalate_after_the_budget() {
    let out = failing_run(Failing::Transient, false);
    let reason = job_failed(&out).expect("the job failed instead of redeploying forever");
    assert!(reason.contains("budget is exhausted after 10 tries"), "{reason}");
    let mut per_task: std::collections::BTreeMap<String, u32> = Default::default();
    for s in &out.result.history.events {
        if let Ev::Engine(Event::TaskFailed { task, reason, .. }) = &s.ev {
            if reason.starts_with("recovery") {
                *per_task.entry(task.to_string()).or_default() += 1;
            }
        }
    }
    assert!(!per_task.is_empty());
    assert!(per_task.values().all(|n| *n == 10), "each chain tried exactly its budget: {per_task:?}");
}
