//! The operator+sink chain: aligns barriers across its input channels,
//! runs the keyed operator, snapshots at aligned barriers, and executes
//! the sink's 2PC steps ([`crate::sink_task`]) without waiting for them.

use super::restore::Restored;
use super::upload::{shared_file_name, upload_and_ack, Files, Incremental, Uploads};
use super::{ChainCtl, ChainSnapshot, Ctx};
use crate::aligner::{Aligner, Outcome};
use crate::channel::{ChannelReceiver, SenderRestarted};
use crate::codec;
use crate::config::Mutant;
use crate::observe::{Event, FaultPoint, Obs, Reach};
use crate::pipeline::{KeyedOperator, Pipeline};
use crate::proto::{Item, Msg};
use crate::sink::{SinkEnv, TwoPhaseCommitSink};
use crate::sink_task::{drive, execute, CallResult, Done, SinkTask, Step, StepEnv};
use crate::types::{key_to_subtask, CheckpointId, DeliveryMode, OutRecord, TaskId};
use async_trait::async_trait;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedReceiver;

/// The chain's side of the sink steps: events and fault points.
pub(super) struct ObsSteps<'a>(&'a Obs, &'a crate::clock::Clock);

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
pub(super) const MAX_SINK_BACKLOG: usize = 4 * crate::sink::FLUSH_RECORDS;

/// A checkpoint's operator state, taken at the barrier, waiting for the
/// sink's part (`Done::Barrier`).
pub(super) struct Taken {
    ckpt: CheckpointId,
    op: Vec<u8>,
    wms: Vec<u64>,
    ended: Vec<bool>,
    eoi_done: bool,
    emitted_wm: u64,
}

pub(super) struct Chain {
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
    pub(super) incr: Option<Incremental>,
}

impl Chain {
    fn task(&self) -> TaskId {
        TaskId::Chain(self.ctx.index)
    }

    /// `Err((reason, fatal))`: `fatal` when retrying cannot help (a
    /// restored transaction is lost, without `ignore_lost_commits`). `try_no` counts the failed tries
    /// before this one: each try is a new sink session.
    pub(super) async fn restore(
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

    pub(super) async fn run(&mut self, mut rx: UnboundedReceiver<ChainCtl>) {
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
