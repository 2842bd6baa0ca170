//! A source subtask: reads its partitions of the input topic from the
//! broker, sends records and barriers down its channels, snapshots its
//! offset at a checkpoint's trigger.

use super::upload::{upload_and_ack, Files, Uploads};
use super::{Ctx, SourceCtl, SourceSnapshot};
use crate::channel::ChannelSender;
use crate::codec;
use crate::config::SourcePhase;
use crate::observe::{Event, FaultPoint};
use crate::proto::{Item, Msg, Request, Response};
use crate::types::{key_to_subtask, CheckpointId, TaskId};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

pub(super) struct Source {
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
    pub(super) fn new(ctx: Ctx, index: u32, offset: u64) -> Self {
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

    pub(super) async fn run(mut self, mut rx: UnboundedReceiver<SourceCtl>) {
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
