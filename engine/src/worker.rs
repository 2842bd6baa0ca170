//! A worker node: runs source subtask `i` and operator+sink chain `i` for
//! the current attempt, restores them from the checkpoint the coordinator
//! names, and drops them when a newer attempt is deployed. A deployment at
//! another parallelism than the restored checkpoint's (a rescale) restores
//! the chain from the old subtasks that held its key groups, and recovers
//! the sink transactions of the removed subtasks it adopts
//! ([`Restored`]); a worker beyond the parallelism runs nothing.
//!
//! The protocol logic lives in [`crate::aligner`], [`crate::channel`] and
//! [`crate::sink_task`] (the sink's 2PC sequencing, whose steps the chain
//! executes); this file is the async glue.

use crate::aligner::{Aligner, Outcome};
use crate::channel::{ChannelReceiver, ChannelSender, SenderRestarted};
use crate::codec;
use crate::config::{JobConfig, Mutant, SourcePhase};
use crate::coordinator::blob_name;
use crate::net::{Addrs, Net};
use crate::observe::{Event, FaultPoint, Obs, Reach};
use crate::pipeline::{KeyedOperator, Pipeline};
use crate::proto::{Item, Msg, Request, Response, RestorePlan};
use crate::recovery::{self, RecoveryBudget, Verdict};
use crate::shared_state::{IncrementalBase, Manifest};
use crate::sink::{SinkEnv, SinkSnapshot, TwoPhaseCommitSink};
use crate::sink_task::{drive, execute, CallResult, Done, SinkTask, Step, StepEnv};
use crate::types::{
    adopter_of, key_to_subtask, rescale_sources, Attempt, CheckpointId, DeliveryMode, OutRecord, TaskId,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceSnapshot {
    pub ckpt: CheckpointId,
    pub offset: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChainSnapshot {
    pub ckpt: CheckpointId,
    pub op: Vec<u8>,
    pub wms: Vec<u64>,
    pub ended: Vec<bool>,
    pub eoi_done: bool,
    pub emitted_wm: u64,
    pub sink: SinkSnapshot,
}

enum SourceCtl {
    Trigger(CheckpointId),
    Ack { to: u32, seq: u64 },
}

enum ChainCtl {
    Data {
        from: u32,
        incarnation: u64,
        seq: u64,
        items: Vec<Item>,
    },
    Notify(CheckpointId),
    /// A newer attempt was deployed on this live process: close the sink
    /// (`SinkTask::close`) and stop.
    Close,
}

/// How long a replaced attempt's chain may take to close its sink, in
/// calls that exhaust their retries: then it is aborted wherever it is.
const CLOSE_GRACE_CALLS: u64 = 4;

pub struct WorkerNode {
    pub index: u32,
    pub net: Arc<Net>,
    pub obs: Obs,
    pub cfg: Arc<JobConfig>,
    pub addrs: Addrs,
    pub pipeline: Arc<dyn Pipeline>,
}

#[derive(Default)]
struct Slots {
    attempt: Attempt,
    /// The parallelism of the attempt (its chain subtasks).
    parallelism: u32,
    ready: bool,
    handles: Vec<madsim::task::JoinHandle<()>>,
    /// The sources this worker runs, by input partition.
    source_tx: Vec<(u32, UnboundedSender<SourceCtl>)>,
    chain_tx: Option<UnboundedSender<ChainCtl>>,
    /// The chain's task: on a newer deployment it is closed, not aborted.
    chain: Option<madsim::task::JoinHandle<()>>,
    /// The newest `Msg::Deploy::seq` of this attempt received.
    deploy_seq: Arc<AtomicU64>,
    /// Set when this attempt's tasks end on this live process (a newer
    /// deployment, or `Msg::Cancel`): the chain takes no more input.
    ended: Arc<AtomicBool>,
}

/// Shared by the tasks of one attempt on one worker.
#[derive(Clone)]
struct Ctx {
    index: u32,
    attempt: Attempt,
    /// This worker process's random incarnation (new at every restart).
    incarnation: u64,
    /// The newest `Msg::Deploy::seq` of this attempt received: a recovery
    /// try's sink session starts from it (`SinkEnv::session`).
    deploy_seq: Arc<AtomicU64>,
    net: Arc<Net>,
    obs: Obs,
    cfg: Arc<JobConfig>,
    addrs: Addrs,
    clock: crate::clock::Clock,
    /// The worker process's sink recovery failures in a row, across its
    /// deployments: what the recovery's backoff grows with.
    recovery_streak: Arc<AtomicU32>,
    /// The worker nodes (the submission's parallelism): the subtasks that
    /// can have existed.
    nodes: u32,
    /// Set when this attempt's tasks end on this live process
    /// (`Slots::ended`).
    ended: Arc<AtomicBool>,
}

impl Ctx {
    fn now_ms(&self) -> u64 {
        self.clock.mono_ms()
    }
    /// The clock for the input's phases: read only when there are phases
    /// (a run without them reads its clock as it always did).
    fn now_ms_if_phased(&self) -> u64 {
        if self.cfg.source_phases.is_empty() {
            0
        } else {
            self.now_ms()
        }
    }
    fn rpc_timeout(&self) -> Duration {
        Duration::from_millis(self.cfg.rpc_timeout_ms)
    }
    async fn to_coordinator(&self, msg: Msg) {
        self.net.send(self.addrs.coordinator, &msg).await;
    }
    /// A task failed: tell the coordinator (repeatedly, datagrams get lost)
    /// and stop making progress until the attempt is replaced.
    async fn fail(&self, task: TaskId, reason: String) -> ! {
        self.obs.emit(Event::TaskFailed { attempt: self.attempt, task, reason: reason.clone() });
        loop {
            self.to_coordinator(Msg::TaskFailed { attempt: self.attempt, task, reason: reason.clone() }).await;
            madsim::time::sleep(Duration::from_millis(100)).await;
        }
    }
    async fn put_blob(&self, name: String, bytes: Vec<u8>) -> Result<(), String> {
        let req = Request::PutBlob { name, bytes };
        match self.net.call_retry(self.addrs.store, req, self.rpc_timeout(), self.cfg.rpc_retries).await {
            Some(Response::Ok) => Ok(()),
            Some(other) => Err(format!("store: {other:?}")),
            None => Err("store did not answer".into()),
        }
    }
    /// Fetch and verify a snapshot blob. Corrupted reads are retried;
    /// a missing blob is an error.
    async fn get_blob<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T, String> {
        let mut last = String::new();
        for _ in 0..20 {
            let req = Request::GetBlob { name: name.to_string() };
            match self.net.call(self.addrs.store, req, self.rpc_timeout()).await {
                Some(Response::Blob { bytes }) => match codec::decode_framed(&bytes) {
                    Ok(v) => return Ok(v),
                    Err(e) => {
                        self.obs.emit(Event::BlobCorrupt { name: name.to_string() });
                        last = e;
                    }
                },
                Some(Response::NotFound) => return Err(format!("blob {name} missing")),
                Some(other) => last = format!("{other:?}"),
                None => last = "store did not answer".into(),
            }
            madsim::time::sleep(Duration::from_millis(20)).await;
        }
        Err(format!("blob {name}: {last}"))
    }
}

pub async fn run_worker(node: WorkerNode) {
    node.obs.emit(Event::NodeStarted);
    let incarnation: u64 = madsim::rand::random();
    let slots = Arc::new(Mutex::new(Slots::default()));
    let attempt_now = Arc::new(AtomicU64::new(0));
    // The sink recovery's failed tries in a row, across deployments (the
    // backoff's, `recovery::RecoveryBudget::streak`); a restarted process
    // starts over.
    let recovery_streak = Arc::new(AtomicU32::new(0));
    {
        let (net, addrs, cfg, attempt_now, index) =
            (node.net.clone(), node.addrs.clone(), node.cfg.clone(), attempt_now.clone(), node.index);
        // Heartbeats are paced by this node's clock (a slow clock sends them late).
        let clock = crate::clock::Clock::new(&node.obs);
        madsim::task::spawn(async move {
            loop {
                let attempt = attempt_now.load(Ordering::Relaxed);
                net.send(addrs.coordinator, &Msg::Heartbeat { worker: index, attempt, incarnation }).await;
                clock.sleep(Duration::from_millis(cfg.heartbeat_interval_ms)).await;
            }
        });
    }
    {
        // The data plane has its own receive loop (see `net`).
        let (net, slots, addrs, index) = (node.net.clone(), slots.clone(), node.addrs.clone(), node.index);
        madsim::task::spawn(async move {
            loop {
                let (from, msg) = net.recv_data().await;
                let s = slots.lock().unwrap();
                match msg {
                    Msg::Data { attempt, incarnation, from: f, to, seq, items }
                        if to == index
                            && attempt == s.attempt
                            && addrs.worker_index(from) == Some(f % s.parallelism.max(1)) =>
                    {
                        if let Some(tx) = &s.chain_tx {
                            let _ = tx.send(ChainCtl::Data { from: f, incarnation, seq, items });
                        }
                    }
                    Msg::DataAck { attempt, from: f, to, seq } if attempt == s.attempt => {
                        if let Some((_, tx)) = s.source_tx.iter().find(|(j, _)| *j == f) {
                            let _ = tx.send(SourceCtl::Ack { to, seq });
                        }
                    }
                    _ => {}
                }
            }
        });
    }
    loop {
        let (_from, msg) = node.net.recv().await;
        match msg {
            Msg::Deploy { attempt, seq, restore, fence_upto, run, parallelism } => {
                let resend_ack = {
                    let mut s = slots.lock().unwrap();
                    if attempt > s.attempt {
                        end_tasks(&mut s, &node.cfg);
                        *s = Slots { attempt, parallelism, ..Slots::default() };
                        s.deploy_seq.store(seq, Ordering::Relaxed);
                        attempt_now.store(attempt, Ordering::Relaxed);
                        if node.index >= parallelism {
                            // Beyond the parallelism of a downscaled job:
                            // this worker runs nothing in this attempt.
                            continue;
                        }
                        let ctx = Ctx {
                            index: node.index,
                            attempt,
                            incarnation,
                            deploy_seq: s.deploy_seq.clone(),
                            net: node.net.clone(),
                            obs: node.obs.clone(),
                            // The attempt's run (a redeploy's new job
                            // identity): what its sinks own and fence by;
                            // and its parallelism (a rescale's).
                            cfg: if run == node.cfg.run && parallelism == node.cfg.parallelism {
                                node.cfg.clone()
                            } else {
                                Arc::new(JobConfig { run, ..node.cfg.rescaled(parallelism) })
                            },
                            addrs: node.addrs.clone(),
                            clock: crate::clock::Clock::new(&node.obs),
                            recovery_streak: recovery_streak.clone(),
                            nodes: node.cfg.parallelism,
                            ended: s.ended.clone(),
                        };
                        let h =
                            madsim::task::spawn(deploy(ctx, restore, fence_upto, node.pipeline.clone(), slots.clone()));
                        s.handles.push(h);
                        false
                    } else {
                        if attempt == s.attempt {
                            s.deploy_seq.fetch_max(seq, Ordering::Relaxed);
                        }
                        attempt == s.attempt && s.ready
                    }
                };
                if resend_ack {
                    node.net
                        .send(node.addrs.coordinator, &Msg::DeployAck { worker: node.index, attempt, incarnation })
                        .await;
                }
            }
            Msg::Cancel { attempt } => {
                let mut s = slots.lock().unwrap();
                if attempt == s.attempt {
                    end_tasks(&mut s, &node.cfg);
                }
            }
            Msg::Trigger { attempt, ckpt } => {
                let s = slots.lock().unwrap();
                if attempt == s.attempt {
                    for (_, tx) in &s.source_tx {
                        let _ = tx.send(SourceCtl::Trigger(ckpt));
                    }
                }
            }
            Msg::Notify { attempt, ckpt } => {
                let s = slots.lock().unwrap();
                if attempt == s.attempt {
                    if let Some(tx) = &s.chain_tx {
                        let _ = tx.send(ChainCtl::Notify(ckpt));
                    }
                }
            }
            _ => {}
        }
    }
}

/// End the tasks of `s`'s attempt on this live process: the sources at
/// once, the chain closing its sink as Flink's cancellation does, within a
/// grace period, and taking no more input (`Slots::ended`).
fn end_tasks(s: &mut Slots, cfg: &JobConfig) {
    s.ended.store(true, Ordering::Relaxed);
    for h in s.handles.drain(..) {
        h.abort();
    }
    if let (Some(tx), Some(h)) = (s.chain_tx.take(), s.chain.take()) {
        let _ = tx.send(ChainCtl::Close);
        let calls = cfg.rpc_retries as u64 + 1;
        let grace = Duration::from_millis(cfg.rpc_timeout_ms * calls * CLOSE_GRACE_CALLS);
        madsim::task::spawn(async move {
            madsim::time::sleep(grace).await;
            h.abort();
        });
    }
}

/// Restore both tasks of this worker from the plan, start them, and
/// acknowledge the deployment.
async fn deploy(
    ctx: Ctx,
    plan: Option<RestorePlan>,
    fence_upto: CheckpointId,
    pipeline: Arc<dyn Pipeline>,
    slots: Arc<Mutex<Slots>>,
) {
    let i = ctx.index;
    // Source state, for each source this worker runs.
    let mut sources = Vec::new();
    for j in ctx.cfg.sources_of(i) {
        let mut offset = 0;
        let mut offsets_ckpt = None;
        let mut source_from = plan.as_ref().map(|p| (p.ckpt, p.blobs.get(&TaskId::Source(j)).cloned()));
        if ctx.cfg.mutant_is(Mutant::OffsetsFromOtherCheckpoint) {
            // Planted bug: offsets from the newest stored checkpoint before
            // the restored one (found by listing the store).
            if let Some(p) = &plan {
                if let Some(older) = older_source_blob(&ctx, j, p.ckpt).await {
                    source_from = Some(older);
                }
            }
        }
        if let Some((_, name)) = &source_from {
            let name = name.clone().expect("plan names every task");
            let snap: SourceSnapshot = restore_blob(&ctx, TaskId::Source(j), &name).await;
            offset = snap.offset;
            offsets_ckpt = Some(snap.ckpt);
        }
        ctx.obs.emit(Event::TaskRestored {
            attempt: ctx.attempt,
            task: TaskId::Source(j),
            state_ckpt: offsets_ckpt,
            offsets_ckpt,
            offset: Some(offset),
            pending_txns: vec![],
            open_txn: None,
        });
        sources.push((j, offset));
    }
    // Chain state.
    let mut incr = ctx.cfg.incremental_checkpoints.then(Incremental::default);
    let restored = Restored::read(&ctx, plan.as_ref(), &mut incr).await;
    // Sink recovery talks to the sink's system; while it cannot, keep trying
    // (the steps are idempotent), up to the configured budget of
    // consecutive failures. A lost transaction, or an exhausted budget,
    // fails the job loudly: recovery cannot succeed any more (the rule is
    // `recovery::RecoveryBudget`'s).
    let mut budget = RecoveryBudget::new(&ctx.cfg, ctx.recovery_streak.load(Ordering::Relaxed));
    let mut chain = loop {
        match Chain::restore(ctx.clone(), &pipeline, &restored, fence_upto, budget.tries()).await {
            Ok(mut c) => {
                c.incr = incr;
                ctx.recovery_streak.store(0, Ordering::Relaxed);
                break c;
            }
            Err((e, fatal)) => {
                let verdict = budget.failed(fatal, &e, madsim::rand::random());
                ctx.recovery_streak.store(budget.streak(), Ordering::Relaxed);
                for ev in recovery::events(ctx.attempt, TaskId::Chain(i), &e, &verdict) {
                    ctx.obs.emit(ev);
                }
                match verdict {
                    Verdict::Retry { after } => {
                        ctx.obs.reach(Reach::SinkRecoveryRetried);
                        madsim::time::sleep(after).await
                    }
                    Verdict::Escalate { .. } => return,
                }
            }
        }
    };
    ctx.obs.point(FaultPoint::DuringRecovery).await;
    let mut hs = Vec::new();
    let mut stxs = Vec::new();
    for (j, offset) in sources {
        let (stx, srx) = unbounded_channel();
        hs.push(madsim::task::spawn(Source::new(ctx.clone(), j, offset).run(srx)));
        stxs.push((j, stx));
    }
    let (ctx_tx, crx) = unbounded_channel();
    let hc = madsim::task::spawn(async move { chain.run(crx).await });
    {
        let mut s = slots.lock().unwrap();
        if s.attempt != ctx.attempt {
            for h in hs {
                h.abort();
            }
            hc.abort();
            return;
        }
        if ctx.ended.load(Ordering::Relaxed) {
            // Cancelled while restoring (`Msg::Cancel`): the chain sees it
            // at its first turn and closes its sink; the sources never run.
            for h in hs {
                h.abort();
            }
            return;
        }
        s.handles.extend(hs);
        s.chain = Some(hc);
        s.source_tx = stxs;
        s.chain_tx = Some(ctx_tx);
        s.ready = true;
    }
    ctx.to_coordinator(Msg::DeployAck { worker: i, attempt: ctx.attempt, incarnation: ctx.incarnation }).await;
}

/// What a chain restores: its own snapshot, or (the job rescaled) one
/// merged from the old subtasks that held its key groups, with the sink
/// state of the removed subtasks it adopts.
#[derive(Clone, Default)]
struct Restored {
    /// The chain's snapshot; when rescaled, its operator state is empty
    /// (`keyed` holds it), its inputs' progress is the old subtasks'
    /// least, and its sink state is the old same-numbered subtask's.
    snap: Option<ChainSnapshot>,
    /// Rescaled: the operator states of the old subtasks whose key groups
    /// this subtask takes over (`types::rescale_sources`), restored key
    /// by key (`KeyedOperator::restore_keys`).
    keyed: Option<Vec<Vec<u8>>>,
    /// The removed subtasks this one adopts (`types::adopter_of`), with
    /// their sink state in the restored checkpoint if they had one.
    adopted: Vec<(u32, Option<SinkSnapshot>)>,
}

impl Restored {
    async fn read(ctx: &Ctx, plan: Option<&RestorePlan>, incr: &mut Option<Incremental>) -> Restored {
        let (i, now) = (ctx.index, ctx.cfg.parallelism);
        let exactly_once = ctx.cfg.mode == DeliveryMode::ExactlyOnce;
        let adopters: Vec<u32> =
            if exactly_once { (now..ctx.nodes).filter(|k| adopter_of(*k, now) == i).collect() } else { vec![] };
        let Some(p) = plan else {
            return Restored { adopted: adopters.into_iter().map(|k| (k, None)).collect(), ..Restored::default() };
        };
        let then = p.parallelism();
        if then == now {
            let name = p.blobs.get(&TaskId::Chain(i)).expect("plan names every task");
            let mut snap: ChainSnapshot = restore_blob(ctx, TaskId::Chain(i), name).await;
            // Incremental checkpoints: the snapshot names the shared files of
            // the operator's state; read them back, and base the next
            // checkpoints on them.
            if let Some(incr) = incr {
                let (manifest, files, state) = read_incremental(ctx, &snap.op).await;
                incr.base = IncrementalBase::restored(&manifest, &state);
                incr.durable.lock().unwrap().extend(files.into_keys());
                snap.op = state;
            }
            let adopted = adopters.into_iter().map(|k| (k, None)).collect();
            return Restored { snap: Some(snap), keyed: None, adopted };
        }
        // Rescaled: read every old subtask this one takes key groups from
        // (the adopted ones among them). The next checkpoints write their
        // state afresh (an empty incremental base).
        let mut parts: BTreeMap<u32, ChainSnapshot> = BTreeMap::new();
        for k in rescale_sources(then, now, i) {
            let name = p.blobs.get(&TaskId::Chain(k)).expect("plan names every task");
            let mut snap: ChainSnapshot = restore_blob(ctx, TaskId::Chain(k), name).await;
            if incr.is_some() {
                snap.op = read_incremental(ctx, &snap.op).await.2;
            }
            parts.insert(k, snap);
        }
        let first = parts.values().next().expect("a subtask takes key groups from at least one old one");
        let inputs = first.wms.len();
        assert!(parts.values().all(|s| s.ckpt == p.ckpt && s.wms.len() == inputs && s.ended.len() == inputs));
        let merged = ChainSnapshot {
            ckpt: p.ckpt,
            op: Vec::new(),
            wms: (0..inputs).map(|j| parts.values().map(|s| s.wms[j]).min().unwrap_or(0)).collect(),
            ended: (0..inputs).map(|j| parts.values().all(|s| s.ended[j])).collect(),
            eoi_done: parts.values().all(|s| s.eoi_done),
            emitted_wm: parts.values().map(|s| s.emitted_wm).min().unwrap_or(0),
            sink: parts.get(&i).map(|s| s.sink.clone()).unwrap_or_default(),
        };
        let adopted = adopters
            .into_iter()
            .map(|k| {
                let sink = parts.get(&k).map(|s| s.sink.clone());
                assert!(k >= then || sink.is_some(), "an adopted subtask of the checkpoint was read");
                (k, sink)
            })
            .collect();
        let keyed = parts.into_values().map(|s| s.op).collect();
        Restored { snap: Some(merged), keyed: Some(keyed), adopted }
    }
}

/// An incremental snapshot's operator state: its manifest, the shared
/// files it names (read back) and the state they assemble.
async fn read_incremental(ctx: &Ctx, op: &[u8]) -> (Manifest, BTreeMap<String, Vec<u8>>, Vec<u8>) {
    let task = TaskId::Chain(ctx.index);
    let manifest: Manifest = match codec::decode(op) {
        Ok(m) => m,
        Err(e) => ctx.fail(task, format!("restore: manifest: {e}")).await,
    };
    let mut files = BTreeMap::new();
    for f in manifest.files() {
        let bytes: Vec<u8> = restore_blob(ctx, task, &f).await;
        files.insert(f, bytes);
    }
    let state = match manifest.assemble(&files) {
        Ok(s) => s,
        Err(e) => ctx.fail(task, format!("restore: {e}")).await,
    };
    (manifest, files, state)
}

/// Planted bug [`Mutant::OffsetsFromOtherCheckpoint`]: the newest source
/// blob of `source` stored for a checkpoint older than `ckpt`.
async fn older_source_blob(ctx: &Ctx, source: u32, ckpt: CheckpointId) -> Option<(CheckpointId, Option<String>)> {
    let req = Request::ListBlobs { prefix: "ckpt-".into() };
    let Some(Response::Names { names }) = ctx.net.call_retry(ctx.addrs.store, req, ctx.rpc_timeout(), 3).await else {
        return None;
    };
    names
        .into_iter()
        .filter_map(|n| crate::coordinator::parse_blob_name(&n).map(|(c, t)| (c, t, n)))
        .filter(|(c, t, _)| *c < ckpt && *t == TaskId::Source(source))
        .max_by_key(|(c, _, _)| *c)
        .map(|(c, _, n)| (c, Some(n)))
}

/// Fetch a snapshot; a blob that cannot be read blocks the deployment (the
/// coordinator keeps waiting; the liveness check reports it).
async fn restore_blob<T: serde::de::DeserializeOwned>(ctx: &Ctx, task: TaskId, name: &str) -> T {
    loop {
        match ctx.get_blob::<T>(name).await {
            Ok(v) => return v,
            Err(e) => {
                ctx.obs.emit(Event::TaskFailed { attempt: ctx.attempt, task, reason: format!("restore: {e}") });
                madsim::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

struct Source {
    ctx: Ctx,
    /// The input partition it reads.
    index: u32,
    offset: u64,
    ended: bool,
    last_trigger: CheckpointId,
    out: Vec<ChannelSender>,
    uploads: Uploads,
}

impl Source {
    fn new(ctx: Ctx, index: u32, offset: u64) -> Self {
        let n = ctx.cfg.parallelism as usize;
        Source {
            ctx,
            index,
            offset,
            ended: false,
            last_trigger: 0,
            out: (0..n).map(|_| ChannelSender::default()).collect(),
            uploads: Uploads::default(),
        }
    }

    fn task(&self) -> TaskId {
        TaskId::Source(self.index)
    }

    async fn flush(&mut self) {
        let now = self.ctx.now_ms();
        for to in 0..self.out.len() {
            let mut msgs: Vec<(u64, Vec<Item>)> = self.out[to].seal(now).into_iter().collect();
            msgs.extend(self.out[to].due(now));
            msgs.sort_by_key(|(s, _)| *s);
            msgs.dedup_by_key(|(s, _)| *s);
            for (seq, items) in msgs {
                let msg = Msg::Data {
                    attempt: self.ctx.attempt,
                    incarnation: self.ctx.incarnation,
                    from: self.index,
                    to: to as u32,
                    seq,
                    items,
                };
                self.ctx.net.send(self.ctx.addrs.workers[to], &msg).await;
            }
        }
    }

    async fn run(mut self, mut rx: UnboundedReceiver<SourceCtl>) {
        let poll_ms = self.ctx.cfg.source_poll_ms;
        let n = self.ctx.cfg.parallelism;
        // Paced sources (`source_interval_ms`): the next fetch's time.
        let fixed_interval = self.ctx.cfg.source_interval_ms;
        let mut next_fetch = 0;
        loop {
            while let Ok(c) = rx.try_recv() {
                self.control(c).await;
            }
            // The input's phase (`source_phases`), if it has phases: its
            // pace replaces the fixed one, and an idle phase fetches nothing.
            let phase = SourcePhase::at(&self.ctx.cfg.source_phases, self.ctx.now_ms_if_phased());
            let interval = phase.map_or(fixed_interval, |p| p.every_ms);
            let idle = phase.is_some_and(|p| p.idle);
            let blocked = self.out.iter().any(|c| c.window_full());
            let now = if interval > 0 { self.ctx.now_ms() } else { 0 };
            // A burst (no interval) fetches whenever it can, whatever the
            // paced phase before it planned.
            let due = interval == 0 || now >= next_fetch;
            if !self.ended && !blocked && !idle && due {
                if interval > 0 {
                    next_fetch = now + interval;
                }
                let req =
                    Request::FetchInput { partition: self.index, offset: self.offset, max: self.ctx.cfg.source_batch };
                let resp = self
                    .ctx
                    .net
                    .call_retry(self.ctx.addrs.broker, req, self.ctx.rpc_timeout(), self.ctx.cfg.rpc_retries)
                    .await;
                match resp {
                    Some(Response::Input { records, end }) => {
                        self.ctx.obs.point(FaultPoint::SourceAfterRead).await;
                        // Triggers that arrived during the fetch come after
                        // this batch: the batch is already read.
                        let last_ts = records.last().map(|r| r.ts_ms);
                        self.offset += records.len() as u64;
                        for r in records {
                            let to = key_to_subtask(r.key, n) as usize;
                            self.out[to].stage(Item::Record(r));
                        }
                        if let Some(ts) = last_ts {
                            for c in self.out.iter_mut() {
                                c.stage(Item::Watermark(ts));
                            }
                        }
                        if end {
                            self.ended = true;
                            self.ctx.obs.emit(Event::SourceEnded {
                                attempt: self.ctx.attempt,
                                source: self.index,
                                offset: self.offset,
                            });
                            for c in self.out.iter_mut() {
                                c.stage(Item::EndOfInput);
                            }
                        }
                    }
                    other => self.ctx.fail(self.task(), format!("fetch input: {other:?}")).await,
                }
            }
            self.flush().await;
            // A paced source sleeps until its next fetch, at most a poll.
            let wait = if interval > 0 {
                next_fetch.saturating_sub(self.ctx.now_ms()).clamp(1, poll_ms.max(1))
            } else {
                poll_ms
            };
            tokio::select! {
                biased;
                c = rx.recv() => match c {
                    Some(c) => self.control(c).await,
                    None => return,
                },
                _ = madsim::time::sleep(Duration::from_millis(wait)) => {}
            }
        }
    }

    async fn control(&mut self, c: SourceCtl) {
        match c {
            SourceCtl::Ack { to, seq } => {
                let now = self.ctx.now_ms();
                if let Some(ch) = self.out.get_mut(to as usize) {
                    ch.ack(seq, now);
                }
            }
            SourceCtl::Trigger(ckpt) => {
                if ckpt <= self.last_trigger {
                    return; // a retried trigger
                }
                self.last_trigger = ckpt;
                let src = self.index;
                self.ctx.obs.emit(Event::SourceBarrier {
                    attempt: self.ctx.attempt,
                    source: src,
                    ckpt,
                    offset: self.offset,
                });
                for c in self.out.iter_mut() {
                    c.stage(Item::Barrier(ckpt));
                }
                self.flush().await;
                let snap = SourceSnapshot { ckpt, offset: self.offset };
                let (offset, ended) = (Some(self.offset), self.ended);
                let upload = upload_and_ack(
                    self.ctx.clone(),
                    self.task(),
                    ckpt,
                    codec::encode_framed(&snap),
                    offset,
                    ended,
                    Files::default(),
                );
                self.uploads.spawn(upload);
            }
        }
    }
}

/// The asynchronous part of a snapshot: store the blob durably, then
/// acknowledge the checkpoint (or decline it). The task goes on processing
/// meanwhile; nothing depends on the upload but the acknowledgement.
async fn upload_and_ack(
    ctx: Ctx,
    task: TaskId,
    ckpt: CheckpointId,
    bytes: Vec<u8>,
    offset: Option<u64>,
    finished: bool,
    files: Files,
) {
    let name = blob_name(ckpt, ctx.attempt, task);
    let mut size = bytes.len() as u64;
    // The new shared files first: the main blob refers to them.
    for (f, data) in files.new {
        size += data.len() as u64;
        if let Err(e) = ctx.put_blob(f.clone(), codec::encode_framed(&data)).await {
            return ctx.to_coordinator(Msg::Decline { attempt: ctx.attempt, ckpt, task, reason: e }).await;
        }
        if let Some(d) = &files.durable {
            d.lock().unwrap().insert(f);
        }
    }
    match ctx.put_blob(name.clone(), bytes).await {
        Ok(()) => {
            if ctx.cfg.incremental_checkpoints {
                let all = std::iter::once(name.clone()).chain(files.shared.iter().cloned()).collect();
                ctx.obs.emit(Event::SnapshotFiles { attempt: ctx.attempt, task, ckpt, files: all });
            }
            ctx.obs.emit(Event::SnapshotStored { attempt: ctx.attempt, task, ckpt, bytes: size });
            ctx.obs.point(FaultPoint::AfterSnapshotBeforeAck).await;
            ctx.obs.emit(Event::CheckpointAcked { attempt: ctx.attempt, task, ckpt, offset });
            let shared = files.shared;
            ctx.to_coordinator(Msg::Ack { attempt: ctx.attempt, ckpt, task, blob: name, offset, finished, shared })
                .await;
        }
        Err(e) => ctx.to_coordinator(Msg::Decline { attempt: ctx.attempt, ckpt, task, reason: e }).await,
    }
}

/// The shared files of an incremental snapshot: the ones it writes and
/// the ones it refers to (all of its manifest's); empty otherwise.
#[derive(Default)]
struct Files {
    new: Vec<(String, Vec<u8>)>,
    shared: Vec<String>,
    durable: Option<Arc<Mutex<BTreeSet<String>>>>,
}

/// A chain's incremental-checkpoint state: the previous checkpoint's files
/// and which shared files are known durable (written by a finished upload
/// of this attempt, or read back at the restore). A file is referred to
/// again only once durable: an upload that failed leaves no reference to
/// the file it did not write.
#[derive(Default)]
struct Incremental {
    base: IncrementalBase,
    durable: Arc<Mutex<BTreeSet<String>>>,
}

/// The name of a shared file: unique per task, checkpoint and attempt.
pub fn shared_file_name(ckpt: CheckpointId, attempt: Attempt, task: TaskId) -> String {
    format!("shared-{task}-c{ckpt:012}-a{attempt}")
}

/// Background uploads of one task. They belong to the task's attempt: when
/// the task is dropped (its attempt replaced), they are aborted with it.
#[derive(Default)]
struct Uploads(Vec<madsim::task::JoinHandle<()>>);

impl Uploads {
    fn spawn(&mut self, f: impl std::future::Future<Output = ()> + Send + 'static) {
        self.0.retain(|h| !h.is_finished());
        self.0.push(madsim::task::spawn(f));
    }
}

impl Drop for Uploads {
    fn drop(&mut self) {
        for h in self.0.drain(..) {
            h.abort();
        }
    }
}

/// The chain's side of the sink steps: events and fault points.
struct ObsSteps<'a>(&'a Obs, &'a crate::clock::Clock);

#[async_trait]
impl StepEnv for ObsSteps<'_> {
    fn emit(&mut self, e: Event) {
        self.0.emit(e);
    }
    async fn point(&mut self, p: FaultPoint) {
        self.0.point(p).await;
    }
    fn now_ms(&self) -> u64 {
        self.1.epoch_ms()
    }
    fn reach(&mut self, p: Reach) {
        self.0.reach(p);
    }
}

/// A sink call in flight: the sink moves into the call's future and comes
/// back with its result, so the chain keeps processing meanwhile.
type SinkCallFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = (Box<dyn TwoPhaseCommitSink>, CallResult)> + Send>>;

/// The most output records a chain queues for its sink before it stops
/// taking input (backpressure towards the sources).
const MAX_SINK_BACKLOG: usize = 4 * crate::sink::FLUSH_RECORDS;

/// A checkpoint's operator state, taken at the barrier, waiting for the
/// sink's part (`Done::Barrier`).
struct Taken {
    ckpt: CheckpointId,
    op: Vec<u8>,
    wms: Vec<u64>,
    ended: Vec<bool>,
    eoi_done: bool,
    emitted_wm: u64,
}

struct Chain {
    ctx: Ctx,
    op: Box<dyn KeyedOperator>,
    inputs: Vec<ChannelReceiver>,
    queues: Vec<VecDeque<Item>>,
    aligner: Aligner,
    wms: Vec<u64>,
    ended: Vec<bool>,
    eoi_done: bool,
    emitted_wm: u64,
    /// The sink, when no call is in flight.
    sink: Option<Box<dyn TwoPhaseCommitSink>>,
    in_flight: Option<SinkCallFuture>,
    steps: SinkTask,
    /// Checkpoints whose barrier was handled by the operator and whose sink
    /// part is not done yet, oldest first.
    taken: VecDeque<Taken>,
    rr: usize,
    out: Vec<OutRecord>,
    uploads: Uploads,
    /// Incremental checkpoints, when configured.
    incr: Option<Incremental>,
}

impl Chain {
    fn task(&self) -> TaskId {
        TaskId::Chain(self.ctx.index)
    }

    /// `Err((reason, fatal))`: `fatal` when retrying cannot help (a
    /// restored transaction is lost, without `ignore_lost_commits`). `try_no` counts the failed tries
    /// before this one: each try is a new sink session.
    async fn restore(
        ctx: Ctx,
        pipeline: &Arc<dyn Pipeline>,
        restored: &Restored,
        fence_upto: CheckpointId,
        try_no: u32,
    ) -> Result<Chain, (String, bool)> {
        let p = ctx.cfg.parallelism;
        let i = ctx.index;
        let mut op = pipeline.create(i, p);
        // One input per source (input partition).
        let n = ctx.cfg.input_partitions() as usize;
        let exactly_once = ctx.cfg.mode == DeliveryMode::ExactlyOnce;
        let aligned = (exactly_once || pipeline.exactly_once_state()) && !ctx.cfg.mutant_is(Mutant::SkipAlignment);
        let session = (ctx.deploy_seq.load(Ordering::Relaxed), try_no as u64);
        let env = |subtask| SinkEnv {
            net: ctx.net.clone(),
            broker: ctx.addrs.broker,
            system: if pipeline.system().is_some() { crate::system::system_addr() } else { ctx.addrs.broker },
            cfg: ctx.cfg.clone(),
            subtask,
            route: crate::pipeline::route(pipeline.clone(), ctx.cfg.output_partitions()),
            obs: ctx.obs.clone(),
            attempt: ctx.attempt,
            incarnation: ctx.incarnation,
            session,
        };
        let mut sink = pipeline.sink(env(i));
        let snap = &restored.snap;
        let mut chain_state = (vec![0; n], vec![false; n], false, 0);
        let mut restored_ckpt = None;
        let mut pending_txns = Vec::new();
        if let Some(s) = snap {
            match &restored.keyed {
                None => op.restore(&s.op).map_err(|e| (e, false))?,
                Some(parts) => {
                    let keep = |key: u64| key_to_subtask(key, p) == i;
                    for part in parts {
                        op.restore_keys(part, &keep).map_err(|e| (e, false))?;
                    }
                }
            }
            assert_eq!(s.wms.len(), n);
            chain_state = (s.wms.clone(), s.ended.clone(), s.eoi_done, s.emitted_wm);
            restored_ckpt = Some(s.ckpt);
            pending_txns = s.sink.pending.iter().map(|(c, t)| (*c, t.name.clone())).collect();
        }
        // A rescaled job's survivors first end what the removed subtasks
        // they adopt left (each in a sink of that subtask), then their own.
        for (k, adopted) in &restored.adopted {
            let mut sink = pipeline.sink(env(*k));
            let mut steps = SinkTask::new(*k, ctx.attempt, &ctx.cfg).with_session(session);
            steps.adopt(adopted.as_ref(), restored_ckpt, fence_upto);
            if let Err(e) = drive(&mut steps, &mut *sink, &mut ObsSteps(&ctx.obs, &ctx.clock)).await {
                return Err((format!("adopting chain-{k}: {e}"), steps.lost_for_good()));
            }
            if let Some(s) = adopted {
                pending_txns.extend(s.pending.iter().map(|(c, t)| (*c, t.name.clone())));
                ctx.obs.reach(Reach::RemovedSubtaskAdopted);
            }
            ctx.obs.emit(Event::SubtaskAdopted {
                attempt: ctx.attempt,
                task: TaskId::Chain(i),
                adopted: TaskId::Chain(*k),
            });
        }
        let mut steps = SinkTask::new(i, ctx.attempt, &ctx.cfg).with_session(session);
        steps.restore(snap.as_ref().map(|s| &s.sink), restored_ckpt, chain_state.2, fence_upto);
        if let Err(e) = drive(&mut steps, &mut *sink, &mut ObsSteps(&ctx.obs, &ctx.clock)).await {
            // A lost transaction is final without the opt-in; with it, a
            // loss before the transaction's timeout is retried, and forgiven
            // once the timeout has passed (Flink's restarts do the same).
            return Err((e, steps.lost_for_good()));
        }
        ctx.obs.emit(Event::TaskRestored {
            attempt: ctx.attempt,
            task: TaskId::Chain(i),
            state_ckpt: restored_ckpt,
            offsets_ckpt: None,
            offset: None,
            pending_txns,
            open_txn: steps.open().map(|t| (t.name.clone(), t.epoch)),
        });
        let (wms, ended, eoi_done, emitted_wm) = chain_state;
        Ok(Chain {
            ctx,
            op,
            inputs: (0..n).map(|_| ChannelReceiver::default()).collect(),
            queues: (0..n).map(|_| VecDeque::new()).collect(),
            aligner: Aligner::new(n, aligned),
            wms,
            ended,
            eoi_done,
            emitted_wm,
            sink: Some(sink),
            in_flight: None,
            steps,
            taken: VecDeque::new(),
            rr: 0,
            out: Vec::new(),
            uploads: Uploads::default(),
            incr: None,
        })
    }

    /// Take the sink steps that need no waiting, and start the next sink
    /// call unless one is in flight. The operator does not wait for the
    /// call: records after a barrier queue up for the next transaction
    /// while the pre-commit and the next begin are in flight.
    async fn pump(&mut self) {
        while self.in_flight.is_none() {
            match self.steps.next_step() {
                Step::Idle => return,
                Step::Call(call) => {
                    let mut sink = self.sink.take().expect("the sink is here when no call is in flight");
                    self.in_flight = Some(Box::pin(async move {
                        let r = execute(&mut *sink, call).await;
                        (sink, r)
                    }));
                }
                Step::Emit(e) => self.ctx.obs.emit(e),
                Step::Reach(p) => self.ctx.obs.reach(p),
                Step::Point(p) => self.ctx.obs.point(p).await,
                Step::Fail(e) => self.ctx.fail(self.task(), e).await,
                Step::Done(Done::Barrier(ckpt)) => self.snapshot_done(ckpt),
                Step::Done(Done::Notify(ckpt)) => {
                    let ack = Msg::NotifyAck { attempt: self.ctx.attempt, ckpt, task: self.task() };
                    self.ctx.to_coordinator(ack).await;
                }
            }
        }
    }

    async fn run(&mut self, mut rx: UnboundedReceiver<ChainCtl>) {
        loop {
            if self.ctx.ended.load(Ordering::Relaxed) {
                // Replaced by a newer deployment on this process, or
                // cancelled: as Flink's cancellation, the chain takes no
                // more input (what is queued before `ChainCtl::Close`
                // included) and only closes its sink. A frozen process
                // that resumes would otherwise align and pre-commit its
                // queued barriers after the new attempt's sink looked for
                // lingering transactions.
                return self.close().await;
            }
            self.drain().await;
            self.pump().await;
            // Above the backlog bound the chain waits for its sink (a call is
            // in flight then: the backlog is what the sink has not taken).
            let listen = self.in_flight.is_none() || self.steps.backlog() < MAX_SINK_BACKLOG;
            tokio::select! {
                biased;
                (sink, r) = async { self.in_flight.as_mut().expect("a call in flight").await }, if self.in_flight.is_some() => {
                    self.in_flight = None;
                    self.sink = Some(sink);
                    self.steps.tick(self.ctx.clock.epoch_ms());
                    self.steps.done(r);
                }
                c = rx.recv(), if listen => match c {
                    Some(ChainCtl::Data { from, incarnation, seq, items }) => {
                        // Planted bug: every sender instance looks the same.
                        let sender = if self.ctx.cfg.mutant_is(Mutant::AcceptRestartedSender) { 0 } else { incarnation };
                        let (items, ack) = match self.inputs[from as usize].receive(sender, seq, items) {
                            Ok(r) => r,
                            Err(SenderRestarted { was, now }) => {
                                self.ctx.obs.reach(Reach::SenderRestartedRefused);
                                let why = format!(
                                    "input from source-{from} came from a restarted instance (incarnation {was:x}, \
                                     then {now:x}) within attempt {}: the channel cannot be resumed",
                                    self.ctx.attempt
                                );
                                self.ctx.fail(self.task(), why).await
                            }
                        };
                        self.queues[from as usize].extend(items);
                        if let Some(seq) = ack {
                            let msg = Msg::DataAck { attempt: self.ctx.attempt, from, to: self.ctx.index, seq };
                            let host = from % self.ctx.cfg.parallelism.max(1);
                            self.ctx.net.send(self.ctx.addrs.workers[host as usize], &msg).await;
                        }
                    }
                    Some(ChainCtl::Notify(ckpt)) => self.steps.notify(ckpt),
                    Some(ChainCtl::Close) => return self.close().await,
                    None => return,
                },
            }
        }
    }

    /// Closed by a newer deployment on this live process: finish the sink
    /// call in flight, then the sink's close steps (`SinkTask::close`),
    /// and nothing else. A chain that failed is stuck in `Ctx::fail` and
    /// is never closed (the grace period's abort ends it).
    async fn close(&mut self) {
        if let Some(call) = self.in_flight.take() {
            let (sink, r) = call.await;
            self.sink = Some(sink);
            self.steps.done(r);
        }
        self.steps.close();
        loop {
            match self.steps.next_step() {
                Step::Call(call) => {
                    let sink = self.sink.as_mut().expect("the sink is here when no call is in flight");
                    let r = execute(&mut **sink, call).await;
                    self.steps.done(r);
                }
                Step::Emit(e) => self.ctx.obs.emit(e),
                Step::Reach(p) => self.ctx.obs.reach(p),
                Step::Idle => return,
                Step::Point(_) | Step::Fail(_) | Step::Done(_) => {}
            }
        }
    }

    /// Process every item that is not held back by alignment.
    async fn drain(&mut self) {
        let n = self.queues.len();
        loop {
            let pick =
                (0..n).map(|k| (self.rr + k) % n).find(|&i| !self.queues[i].is_empty() && !self.aligner.is_blocked(i));
            let Some(i) = pick else { return };
            self.rr = (i + 1) % n;
            let item = self.queues[i].pop_front().expect("non-empty queue");
            self.handle(i, item);
        }
    }

    fn handle(&mut self, input: usize, item: Item) {
        match item {
            Item::Record(r) => {
                self.op.process(&r, &mut self.out);
                self.emit_out();
            }
            Item::Watermark(w) => {
                self.wms[input] = self.wms[input].max(w);
                self.advance_watermark();
            }
            Item::EndOfInput => {
                self.ended[input] = true;
                self.wms[input] = u64::MAX;
                self.advance_watermark();
                if !self.eoi_done && self.ended.iter().all(|e| *e) {
                    self.eoi_done = true;
                    self.op.on_end_of_input(&mut self.out);
                    self.emit_out();
                    self.steps.end_of_input();
                }
            }
            Item::Barrier(ckpt) => {
                // Another input blocked by this alignment with records
                // waiting behind its barrier.
                let held = (0..self.queues.len())
                    .any(|i| i != input && self.aligner.is_blocked(i) && !self.queues[i].is_empty());
                for o in self.aligner.on_barrier(input, ckpt) {
                    if let Outcome::Snapshot(c) = o {
                        if held {
                            self.ctx.obs.reach(Reach::AlignedWithBlockedInput);
                        }
                        self.ctx.obs.emit(Event::BarrierAligned {
                            attempt: self.ctx.attempt,
                            task: self.task(),
                            ckpt: c,
                        });
                        self.checkpoint(c);
                    }
                }
            }
        }
    }

    fn advance_watermark(&mut self) {
        let wm = self.wms.iter().copied().min().unwrap_or(0);
        if wm > self.emitted_wm {
            self.emitted_wm = wm;
            self.op.on_watermark(wm, &mut self.out);
            self.emit_out();
        }
    }

    fn emit_out(&mut self) {
        if self.out.is_empty() {
            return;
        }
        self.steps.records(std::mem::take(&mut self.out));
    }

    /// The barrier of `ckpt` is aligned: take the operator's state now; the
    /// sink pre-commits (and begins the next transaction) in the background
    /// and the snapshot is stored and acknowledged once that is done
    /// ([`Chain::snapshot_done`]): an acknowledged checkpoint's transaction
    /// is always durable.
    fn checkpoint(&mut self, ckpt: CheckpointId) {
        self.taken.push_back(Taken {
            ckpt,
            op: self.op.snapshot(),
            wms: self.wms.clone(),
            ended: self.ended.clone(),
            eoi_done: self.eoi_done,
            emitted_wm: self.emitted_wm,
        });
        self.steps.barrier(ckpt);
    }

    /// The sink's part of `ckpt` is done: store the snapshot and acknowledge
    /// it in the background.
    fn snapshot_done(&mut self, ckpt: CheckpointId) {
        let t = self.taken.pop_front().expect("a barrier's operator state is taken before its sink part");
        assert_eq!(t.ckpt, ckpt, "sink parts are done in barrier order");
        let mut files = Files::default();
        let (attempt, task) = (self.ctx.attempt, self.task());
        let op = match &mut self.incr {
            Some(incr) => {
                let durable = incr.durable.lock().unwrap().clone();
                // A base file not (yet) durable is not referred to: its
                // chunk is written again.
                incr.base.forget_unless(|f| durable.contains(f));
                let split = incr.base.split(&t.op, shared_file_name(ckpt, attempt, task));
                files = Files {
                    new: split.new_file.into_iter().collect(),
                    shared: split.manifest.files(),
                    durable: Some(incr.durable.clone()),
                };
                codec::encode(&split.manifest)
            }
            None => t.op,
        };
        let snap = ChainSnapshot {
            ckpt,
            op,
            wms: t.wms,
            ended: t.ended,
            eoi_done: t.eoi_done,
            emitted_wm: t.emitted_wm,
            sink: self.steps.snapshot(),
        };
        let upload =
            upload_and_ack(self.ctx.clone(), self.task(), ckpt, codec::encode_framed(&snap), None, t.eoi_done, files);
        self.uploads.spawn(upload);
    }
}
