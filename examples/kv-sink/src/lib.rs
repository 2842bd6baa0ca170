//! A user's own exactly-once sink, tested with exactsim from the outside:
//! this crate uses only the public APIs of `exactsim`, `exactsim-engine` and
//! `exactsim-sim`, as a third party would.
//!
//! `KvLog` stands for a user's external store: per output partition a log
//! of committed records, staged transactions that become visible at commit,
//! fencing by job attempt. It runs as the pipeline's own system
//! (`Pipeline::system`, on its own simulated node and disk, speaking
//! `Request::System` bytes) and says how a `read_committed` reader sees its
//! output (`Pipeline::reader`). `KvSink` implements the engine's
//! two-phase-commit contract against it: it stages a transaction at
//! pre-commit and commits it on notification.
//!
//! Scenarios: `kv` (the built-in `word_count` workload into the store) and
//! the same sink and store with one planted bug each ([`KvBug`]), which
//! the oracles catch from what the store's own reader shows:
//! `kv_buggy_no_recommit` (a restored pending transaction is taken as done
//! instead of re-committed), `kv_buggy_confirm_unanswered` (a commit the
//! store never answered is confirmed: committed for the engine, not
//! applied), `kv_buggy_no_fencing` (the sink never fences older attempts)
//! and `kv_buggy_volatile_stage` (the store keeps prepared transactions in
//! memory only: prepare is not durable). `src/main.rs` is exactsim's
//! command line with all of them; `tests/` runs a campaign through
//! `exactsim::testing` and the failing-seed loop (run, shrink, replay)
//! through the binary.

use async_trait::async_trait;
use bincode::Options;
use exactsim_engine::config::JobConfig;
use exactsim_engine::net::Net;
use exactsim_engine::observe::Event;
use exactsim_engine::pipeline::{KeyedOperator, Pipeline};
use exactsim_engine::proto::{Msg, Request, Response};
use exactsim_engine::sink::{SinkEnv, SinkError, TwoPhaseCommitSink, TxnHandle};
use exactsim_engine::storage::write_atomic;
use exactsim_engine::system::{OutputReader, ReadStep, SinkSystem, SystemEnv};
use exactsim_engine::types::{CheckpointId, OutRecord, Record};
use exactsim_model::rng::SimRng;
use exactsim_model::scenario::{IncrementalReference, Scenario};
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

/// The store's server, hosted by the simulator as the pipeline's own system.
pub struct KvLog;

impl SinkSystem for KvLog {
    fn serve(&self, env: SystemEnv) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(serve(env, false))
    }
}

/// The store with the planted bug `volatile_stage`: a staged (prepared)
/// transaction is kept in memory only, so a crash of the store loses it.
pub struct VolatileKvLog;

impl SinkSystem for VolatileKvLog {
    fn serve(&self, env: SystemEnv) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(serve(env, true))
    }
}

async fn serve(env: SystemEnv, volatile_stage: bool) {
    let mut st: KvState = match env.storage.read("kv.state").await {
        Ok(b) => state_options().deserialize(&b).expect("kv state"),
        Err(_) => KvState::default(),
    };
    st.logs.resize(env.cfg.parallelism as usize, Vec::new());
    loop {
        let (from, msg) = env.net.recv().await;
        let Msg::Req { id, body: Request::System { bytes } } = msg else { continue };
        let Ok(req) = serde_json::from_slice::<KvReq>(&bytes) else { continue };
        let mut events = Vec::new();
        let stage = matches!(req, KvReq::Stage { .. });
        let (resp, changed) = st.apply(req, &mut events);
        // Planted bug: a stage is answered before it is durable (it
        // is written with the next change, if one comes first).
        let changed = changed && !(volatile_stage && stage);
        let state = || state_options().serialize(&st).expect("kv state encodes");
        if changed && write_atomic(&*env.storage, "kv.state", &state()).await.is_err() {
            continue; // no reply: the caller retries
        }
        for e in events {
            env.obs.emit(e);
        }
        let bytes = serde_json::to_vec(&resp).unwrap();
        env.net.reply(from, id, Response::System { bytes }).await;
    }
}

/// How the store encodes its state file: binary, as the store rewrites
/// the whole file on every change (JSON made a run of this store three
/// times a built-in one's CPU), with a bound on what a length read from a
/// damaged file may ask for.
fn state_options() -> impl bincode::Options {
    bincode::DefaultOptions::new().with_fixint_encoding().with_limit(1 << 28)
}

async fn kv_call(net: &Net, at: SocketAddr, req: &KvReq, timeout: Duration) -> Option<KvResp> {
    let bytes = serde_json::to_vec(req).unwrap();
    match net.call(at, Request::System { bytes }, timeout).await {
        Some(Response::System { bytes }) => serde_json::from_slice(&bytes).ok(),
        _ => None,
    }
}

/// How a `read_committed` reader sees the store's output.
pub struct KvReader;

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

/// The planted bugs of the example (one per `kv_buggy_*` scenario).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvBug {
    /// Recovery does not re-commit the pending transactions it restores.
    NoRecommit,
    /// A commit the store did not answer (after every retry) is confirmed
    /// as done: the engine counts it committed, the store never applied it.
    ConfirmUnanswered,
    /// The sink never fences older attempts: their staged transactions
    /// stay, and the store takes their late stages.
    NoFencing,
    /// The store answers a stage before it is durable (`VolatileKvLog`).
    VolatileStage,
}

impl KvBug {
    pub const ALL: [KvBug; 4] = [KvBug::NoRecommit, KvBug::ConfirmUnanswered, KvBug::NoFencing, KvBug::VolatileStage];

    /// The scenario that plants it.
    pub fn scenario_name(self) -> &'static str {
        match self {
            KvBug::NoRecommit => "kv_buggy_no_recommit",
            KvBug::ConfirmUnanswered => "kv_buggy_confirm_unanswered",
            KvBug::NoFencing => "kv_buggy_no_fencing",
            KvBug::VolatileStage => "kv_buggy_volatile_stage",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            KvBug::NoRecommit => "recovery does not re-commit the pending transactions it restores",
            KvBug::ConfirmUnanswered => "a commit the store never answered is confirmed (committed, not applied)",
            KvBug::NoFencing => "the sink never fences older attempts (their staged transactions stay)",
            KvBug::VolatileStage => "the store answers a stage before it is durable (prepare not durable)",
        }
    }
}

/// The two-phase-commit sink into the store.
pub struct KvSink {
    env: SinkEnv,
    buffer: Vec<OutRecord>,
    begun: u64,
    /// A planted bug of the sink's own, if any.
    bug: Option<KvBug>,
}

impl KvSink {
    /// The sink; `skip_recommit` plants [`KvBug::NoRecommit`].
    pub fn new(env: SinkEnv, skip_recommit: bool) -> KvSink {
        KvSink::with_bug(env, skip_recommit.then_some(KvBug::NoRecommit))
    }

    pub fn with_bug(env: SinkEnv, bug: Option<KvBug>) -> KvSink {
        KvSink { env, buffer: Vec::new(), begun: 0, bug }
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
        match self.call(KvReq::Commit { name: txn.name.clone() }).await {
            // Planted bug: no answer is taken as done.
            Err(SinkError::Transient(_)) if self.bug == Some(KvBug::ConfirmUnanswered) => Ok(()),
            r => r,
        }
    }
    async fn abort(&mut self, txn: &TxnHandle) -> Result<(), SinkError> {
        self.call(KvReq::Abort { name: txn.name.clone() }).await
    }
    async fn recover_and_commit(&mut self, txn: &TxnHandle) -> Result<(), SinkError> {
        if self.bug == Some(KvBug::NoRecommit) {
            return Ok(());
        }
        self.commit(txn).await
    }
    async fn recover_and_abort(&mut self, txn: &TxnHandle) -> Result<(), SinkError> {
        self.abort(txn).await
    }
    async fn abort_lingering(&mut self, _after: Option<CheckpointId>, _upto: CheckpointId) -> Result<(), SinkError> {
        if self.bug == Some(KvBug::NoFencing) {
            return Ok(());
        }
        self.call(KvReq::Fence { partition: self.env.subtask, attempt: self.env.attempt }).await
    }
}

struct KvPipeline {
    inner: Arc<dyn Pipeline>,
    bug: Option<KvBug>,
}

impl Pipeline for KvPipeline {
    fn name(&self) -> &str {
        "word_count_kv"
    }
    fn create(&self, subtask: u32, parallelism: u32) -> Box<dyn KeyedOperator> {
        self.inner.create(subtask, parallelism)
    }
    fn sink(&self, env: SinkEnv) -> Box<dyn TwoPhaseCommitSink> {
        Box::new(KvSink::with_bug(env, self.bug))
    }
    fn system(&self) -> Option<Arc<dyn SinkSystem>> {
        match self.bug {
            Some(KvBug::VolatileStage) => Some(Arc::new(VolatileKvLog)),
            _ => Some(Arc::new(KvLog)),
        }
    }
    fn reader(&self) -> Arc<dyn OutputReader> {
        Arc::new(KvReader)
    }
}

/// The built-in `word_count` workload (its input, operator and batch
/// reference) written through `KvSink` into `KvLog`.
pub struct KvScenario {
    inner: Arc<dyn Scenario>,
    bug: Option<KvBug>,
}

impl KvScenario {
    /// `kv`: the correct sink.
    pub fn new() -> KvScenario {
        KvScenario::with_bug(None)
    }

    /// `kv_buggy_no_recommit`: the same sink with a planted bug, recovery
    /// does not re-commit the pending transactions it restores.
    pub fn buggy_no_recommit() -> KvScenario {
        KvScenario::with_bug(Some(KvBug::NoRecommit))
    }

    /// The scenario of one planted bug (`kv` for `None`).
    pub fn with_bug(bug: Option<KvBug>) -> KvScenario {
        let inner = exactsim::registry::Registry::builtin().get("word_count").expect("a built-in scenario");
        KvScenario { inner, bug }
    }
}

impl Default for KvScenario {
    fn default() -> KvScenario {
        KvScenario::new()
    }
}

impl Scenario for KvScenario {
    fn name(&self) -> &'static str {
        self.bug.map_or("kv", KvBug::scenario_name)
    }
    fn description(&self) -> &'static str {
        "word_count into a key-value log system of its own, through a user's 2PC sink"
    }
    fn tune(&self, cfg: &mut JobConfig, rng: &mut SimRng) {
        self.inner.tune(cfg, rng)
    }
    fn generate(&self, rng: &mut SimRng, partitions: u32) -> Vec<Vec<Record>> {
        self.inner.generate(rng, partitions)
    }
    fn pipeline(&self) -> Arc<dyn Pipeline> {
        Arc::new(KvPipeline { inner: self.inner.pipeline(), bug: self.bug })
    }
    fn reference(&self, input: &[Vec<Record>], offsets: &[u64]) -> Vec<OutRecord> {
        self.inner.reference(input, offsets)
    }
    fn incremental<'a>(&self, input: &'a [Vec<Record>]) -> Option<Box<dyn IncrementalReference + 'a>> {
        self.inner.incremental(input)
    }
    fn planted_bug(&self) -> Option<&'static str> {
        self.bug.map(KvBug::description)
    }
}

/// Every scenario of the example, as the binary registers them: `kv`, then
/// one per planted bug.
pub fn scenarios() -> Vec<Arc<dyn Scenario>> {
    let mut v: Vec<Arc<dyn Scenario>> = vec![Arc::new(KvScenario::new())];
    v.extend(KvBug::ALL.map(|b| Arc::new(KvScenario::with_bug(Some(b))) as Arc<dyn Scenario>));
    v
}
