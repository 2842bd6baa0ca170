//! A worker node: runs source subtask `i` and operator+sink chain `i` for
//! the current attempt, restores them from the checkpoint the coordinator
//! names, and ends them when a newer attempt is deployed or the finished
//! job cancels them (`Msg::Cancel`, [`end_tasks`]). A deployment at
//! another parallelism than the restored checkpoint's (a rescale) restores
//! the chain from the old subtasks that held its key groups, and recovers
//! the sink transactions of the removed subtasks it adopts
//! ([`Restored`]); a worker beyond the parallelism runs nothing.
//!
//! The protocol logic lives in [`crate::aligner`], [`crate::channel`] and
//! [`crate::sink_task`] (the sink's 2PC sequencing, whose steps the chain
//! executes); this file is the async glue.

use crate::codec;
use crate::config::{JobConfig, Mutant};
use crate::net::{Addrs, Net};
use crate::observe::{Event, FaultPoint, Obs, Reach};
use crate::pipeline::Pipeline;
use crate::proto::{Item, Msg, Request, Response, RestorePlan};
use crate::recovery::{self, RecoveryBudget, Verdict};
use crate::sink::SinkSnapshot;
use crate::types::{Attempt, CheckpointId, TaskId};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

mod chain;
mod restore;
mod source;
mod upload;

use chain::Chain;
use restore::{older_source_blob, restore_blob, Restored};
use source::Source;
pub use upload::shared_file_name;
use upload::Incremental;

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
    /// The attempt ended on this live process (a newer one was deployed,
    /// or `Msg::Cancel`): close the sink (`SinkTask::close`) and stop.
    Close,
}

/// How long an ended attempt's chain may take to close its sink, in
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
                if attempt == s.attempt && !s.ended.load(Ordering::Relaxed) {
                    node.obs.reach(Reach::AttemptCancelled);
                    end_tasks(&mut s, &node.cfg);
                    // The heartbeat says this process runs nothing, so the
                    // coordinator stops cancelling; `s.attempt` stays, so
                    // a copy of the late `Deploy` deploys nothing again.
                    attempt_now.store(0, Ordering::Relaxed);
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
