//! A sink writing to a system other than the broker is judged like the
//! built-in one: the pipeline hosts its own system (`Pipeline::system`) and
//! says how a `read_committed` reader sees its output (`Pipeline::reader`).
//!
//! `KvLog` stands for a user's external store: per output partition a log
//! of committed records, staged transactions that become visible at commit,
//! fencing by job attempt. Its sink stages a transaction at pre-commit and
//! commits it on notification. A correct one passes every check under
//! chaos; the same sink with a planted 2PC bug is caught through the
//! system's own reader.

use crate::common::*;
use async_trait::async_trait;
use exactsim_engine::config::JobConfig;
use exactsim_engine::net::Net;
use exactsim_engine::observe::Event;
use exactsim_engine::pipeline::{KeyedOperator, Pipeline};
use exactsim_engine::proto::{Msg, Request, Response};
use exactsim_engine::sink::{SinkEnv, SinkError, TwoPhaseCommitSink, TxnHandle};
use exactsim_engine::storage::write_atomic;
use exactsim_engine::system::{OutputReader, ReadStep, SinkSystem, SystemEnv};
use exactsim_engine::types::{CheckpointId, DeliveryMode, OutRecord, Record};
use exactsim_sim::report::Verdict;
use exactsim_sim::rng::SimRng;
use exactsim_sim::scenario::Scenario;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

#[derive(Serialize, Deserialize)]
enum KvReq {
    Stage { name: String, partition: u32, attempt: u64, records: Vec<OutRecord> },
    Commit { name: String },
    Abort { name: String },
    Fence { partition: u32, attempt: u64 },
    Read { partition: u32, from: u64 },
    Open,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
enum KvResp {
    Ok,
    Fenced,
    Lost,
    Read { records: Vec<OutRecord>, next: u64, open: u32 },
    Open(Vec<String>),
}

#[derive(Default, Serialize, Deserialize)]
struct KvState {
    logs: Vec<Vec<OutRecord>>,
    /// name -> (partition, attempt, records)
    staged: BTreeMap<String, (u32, u64, Vec<OutRecord>)>,
    /// name -> committed (true) or aborted (false)
    done: BTreeMap<String, bool>,
    fence: BTreeMap<u32, u64>,
}

impl KvState {
    fn apply(&mut self, req: KvReq, out: &mut Vec<Event>) -> (KvResp, bool) {
        match req {
            KvReq::Stage { name, partition, attempt, records } => {
                if attempt < self.fence.get(&partition).copied().unwrap_or(0) {
                    return (KvResp::Fenced, false);
                }
                match self.done.get(&name) {
                    Some(true) => (KvResp::Ok, false),
                    Some(false) => (KvResp::Lost, false),
                    None => {
                        self.staged.insert(name, (partition, attempt, records));
                        (KvResp::Ok, true)
                    }
                }
            }
            KvReq::Commit { name } => match (self.done.get(&name), self.staged.remove(&name)) {
                (Some(true), _) => (KvResp::Ok, false),
                (None, Some((p, _, records))) => {
                    self.logs[p as usize].extend(records.iter().cloned());
                    self.done.insert(name.clone(), true);
                    out.push(Event::TxnCommitted { txn: name, epoch: 0, out: records });
                    (KvResp::Ok, true)
                }
                _ => (KvResp::Lost, false),
            },
            KvReq::Abort { name } => {
                if self.done.contains_key(&name) {
                    return (KvResp::Ok, false);
                }
                self.staged.remove(&name);
                self.done.insert(name, false);
                (KvResp::Ok, true)
            }
            KvReq::Fence { partition, attempt } => {
                let f = self.fence.entry(partition).or_insert(0);
                *f = (*f).max(attempt);
                let old: Vec<String> = self
                    .staged
                    .iter()
                    .filter(|(_, (p, a, _))| *p == partition && *a < attempt)
                    .map(|(n, _)| n.clone())
                    .collect();
                for n in old {
                    self.staged.remove(&n);
                    self.done.insert(n, false);
                }
                (KvResp::Ok, true)
            }
            KvReq::Read { partition, from } => {
                let log = &self.logs[partition as usize];
                let records = log[(from as usize).min(log.len())..].to_vec();
                (KvResp::Read { records, next: log.len() as u64, open: self.staged.len() as u32 }, false)
            }
            KvReq::Open => (KvResp::Open(self.staged.keys().cloned().collect()), false),
        }
    }
}

pub(crate) struct KvLog;

impl SinkSystem for KvLog {
    fn serve(&self, env: SystemEnv) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            let mut st: KvState = match env.storage.read("kv.state").await {
                Ok(b) => serde_json::from_slice(&b).expect("kv state"),
                Err(_) => KvState::default(),
            };
            st.logs.resize(env.cfg.parallelism as usize, Vec::new());
            loop {
                let (from, msg) = env.net.recv().await;
                let Msg::Req { id, body: Request::System { bytes } } = msg else { continue };
                let Ok(req) = serde_json::from_slice::<KvReq>(&bytes) else { continue };
                let mut events = Vec::new();
                let (resp, changed) = st.apply(req, &mut events);
                if changed && write_atomic(&*env.storage, "kv.state", &serde_json::to_vec(&st).unwrap()).await.is_err()
                {
                    continue; // no reply: the caller retries
                }
                for e in events {
                    env.obs.emit(e);
                }
                let bytes = serde_json::to_vec(&resp).unwrap();
                env.net.reply(from, id, Response::System { bytes }).await;
            }
        })
    }
}

async fn kv_call(net: &Net, at: SocketAddr, req: &KvReq, timeout: Duration) -> Option<KvResp> {
    let bytes = serde_json::to_vec(req).unwrap();
    match net.call(at, Request::System { bytes }, timeout).await {
        Some(Response::System { bytes }) => serde_json::from_slice(&bytes).ok(),
        _ => None,
    }
}

pub(crate) struct KvReader;

#[async_trait]
impl OutputReader for KvReader {
    async fn read(&self, net: &Net, at: SocketAddr, partition: u32, from: u64, t: Duration) -> Option<ReadStep> {
        match kv_call(net, at, &KvReq::Read { partition, from }, t).await? {
            KvResp::Read { records, next, open } => Some(ReadStep { records, next_offset: next, open_txns: open }),
            _ => None,
        }
    }
    async fn open_txns(&self, net: &Net, at: SocketAddr, t: Duration) -> Option<Vec<(String, u64)>> {
        match kv_call(net, at, &KvReq::Open, t).await? {
            KvResp::Open(names) => Some(names.into_iter().map(|n| (n, 0)).collect()),
            _ => None,
        }
    }
}

pub(crate) struct KvSink {
    env: SinkEnv,
    buffer: Vec<OutRecord>,
    begun: u64,
    /// Planted 2PC bug: a restored pending transaction is taken as done.
    skip_recommit: bool,
}

impl KvSink {
    pub(crate) fn new(env: SinkEnv, skip_recommit: bool) -> KvSink {
        KvSink { env, buffer: Vec::new(), begun: 0, skip_recommit }
    }

    async fn call(&self, req: KvReq) -> Result<(), SinkError> {
        let t = Duration::from_millis(self.env.cfg.rpc_timeout_ms);
        for _ in 0..=self.env.cfg.rpc_retries {
            match kv_call(&self.env.net, self.env.system, &req, t).await {
                Some(KvResp::Ok) => return Ok(()),
                Some(KvResp::Fenced) => return Err(SinkError::TxnLost("fenced".into())),
                Some(KvResp::Lost) => return Err(SinkError::TxnLost("transaction gone".into())),
                _ => {}
            }
        }
        Err(SinkError::Transient("kv store did not answer".into()))
    }
}

#[async_trait]
impl TwoPhaseCommitSink for KvSink {
    async fn begin(&mut self, hint: CheckpointId) -> Result<TxnHandle, SinkError> {
        self.begun += 1;
        self.buffer.clear();
        let name = format!("kv/{}/{}/{hint}.{}", self.env.subtask, self.env.attempt, self.begun);
        Ok(TxnHandle { name, epoch: 0, records: 0, seq: 0 })
    }
    async fn write(&mut self, txn: &mut TxnHandle, records: &[OutRecord]) -> Result<(), SinkError> {
        self.buffer.extend_from_slice(records);
        txn.records += records.len() as u64;
        Ok(())
    }
    async fn pre_commit(&mut self, txn: &mut TxnHandle) -> Result<(), SinkError> {
        if txn.records == 0 {
            return Ok(());
        }
        let records = std::mem::take(&mut self.buffer);
        let (partition, attempt) = (self.env.subtask, self.env.attempt);
        self.call(KvReq::Stage { name: txn.name.clone(), partition, attempt, records }).await
    }
    async fn commit(&mut self, txn: &TxnHandle) -> Result<(), SinkError> {
        if txn.records == 0 {
            return Ok(());
        }
        self.call(KvReq::Commit { name: txn.name.clone() }).await
    }
    async fn abort(&mut self, txn: &TxnHandle) -> Result<(), SinkError> {
        self.call(KvReq::Abort { name: txn.name.clone() }).await
    }
    async fn recover_and_commit(&mut self, txn: &TxnHandle) -> Result<(), SinkError> {
        if self.skip_recommit {
            return Ok(());
        }
        self.commit(txn).await
    }
    async fn recover_and_abort(&mut self, txn: &TxnHandle) -> Result<(), SinkError> {
        self.abort(txn).await
    }
    async fn abort_lingering(&mut self, _after: Option<CheckpointId>, _upto: CheckpointId) -> Result<(), SinkError> {
        self.call(KvReq::Fence { partition: self.env.subtask, attempt: self.env.attempt }).await
    }
}

struct KvPipeline {
    inner: Arc<dyn Pipeline>,
    buggy: bool,
}

impl Pipeline for KvPipeline {
    fn name(&self) -> &str {
        "word_count_kv"
    }
    fn create(&self, subtask: u32, parallelism: u32) -> Box<dyn KeyedOperator> {
        self.inner.create(subtask, parallelism)
    }
    fn sink(&self, env: SinkEnv) -> Box<dyn TwoPhaseCommitSink> {
        Box::new(KvSink { env, buffer: Vec::new(), begun: 0, skip_recommit: self.buggy })
    }
    fn system(&self) -> Option<Arc<dyn SinkSystem>> {
        Some(Arc::new(KvLog))
    }
    fn reader(&self) -> Arc<dyn OutputReader> {
        Arc::new(KvReader)
    }
}

struct KvScenario {
    inner: Arc<dyn Scenario>,
    buggy: bool,
}

impl Scenario for KvScenario {
    fn name(&self) -> &'static str {
        "word_count_kv"
    }
    fn description(&self) -> &'static str {
        "word_count into a key-value log system of its own"
    }
    fn tune(&self, cfg: &mut JobConfig, rng: &mut SimRng) {
        self.inner.tune(cfg, rng)
    }
    fn generate(&self, rng: &mut SimRng, partitions: u32) -> Vec<Vec<Record>> {
        self.inner.generate(rng, partitions)
    }
    fn pipeline(&self) -> Arc<dyn Pipeline> {
        Arc::new(KvPipeline { inner: self.inner.pipeline(), buggy: self.buggy })
    }
    fn reference(&self, input: &[Vec<Record>], offsets: &[u64]) -> Vec<OutRecord> {
        self.inner.reference(input, offsets)
    }
}

fn kv_run(seed: u64, profile: &str, buggy: bool) -> exactsim_sim::runner::Outcome {
    let sc = Arc::new(KvScenario { inner: exactsim::resolve_scenario("word_count").unwrap(), buggy });
    go_custom(sc, seed, profile, DeliveryMode::ExactlyOnce)
}

#[test]
fn a_sink_into_its_own_system_passes_every_check_on_chaos_seeds() {
    let mut recoveries = 0;
    for seed in test_seeds(60) {
        let out = kv_run(seed, "chaos", false);
        assert_pass(&out);
        assert_eq!(out.report.output.committed, out.report.output.expected, "seed {seed}");
        assert!(out.report.transactions.committed > 0, "seed {seed}: the system announced its commits");
        recoveries += out.report.recoveries;
    }
    assert!(recoveries > 0, "chaos caused recoveries");
}

#[test]
fn the_same_sink_skipping_recommit_is_caught_through_the_systems_reader() {
    let caught = (1..=40).find_map(|seed| {
        let out = kv_run(seed, "crash", true);
        (out.report.verdict == Verdict::Fail).then_some(out)
    });
    let out = caught.expect("skip-recommit escaped 40 crash seeds");
    let checks: Vec<&str> = out.report.violations.iter().map(|v| v.check.as_str()).collect();
    assert!(checks.contains(&"P1"), "the loss is seen by the system's reader: {checks:?}");
}
