//! P21 — no retry storm: fewer than [`MAX_RETRIES_PER_WINDOW`] (10) retries
//! of one task in any [`RETRY_WINDOW_MS`] of simulated time, during an
//! outage and after it (the usual health threshold: under 10 retries a minute a
//! task; the window is that minute scaled like the engine's timeouts,
//! `engine/src/backoff.rs`).
//!
//! How, from the history only: a *retry* is a failed try of a task's sink
//! recovery, a `TaskFailed` whose reason begins with
//! `recovery::RETRY_REASON_PREFIX` (each one is followed by another try or
//! by `JobFailed`). For every task and every process that ran it (a
//! node's life from one `NodeStarted` to the next: a process that crashed
//! and restarted starts its waits over, as any client does), over all the
//! job attempts it served, a window slides over its retries' times; the
//! first window holding ten is a violation, reported once per task and
//! process. An engine that backs off (100 ms doubling to 3 s, 20 %
//! jitter, not started over by a job restart) makes at most 7 tries in a
//! window however fast its system refuses; one that retries at a fixed
//! pause makes one every pause.
//!
//! The bound does not depend on the configured policy: it is the
//! operator's threshold, which a policy (or its absence) meets or not.

use super::{ms, Ctx, Finding};
use crate::history::Ev;
use exactsim_engine::backoff::{MAX_RETRIES_PER_WINDOW, RETRY_WINDOW_MS};
use exactsim_engine::observe::Event;
use exactsim_engine::recovery::RETRY_REASON_PREFIX;
use exactsim_engine::types::TaskId;
use std::collections::BTreeMap;

pub fn check(c: &Ctx) -> Vec<Finding> {
    // (task, node, the node's process) -> retry times.
    let mut retries: BTreeMap<(TaskId, &str, u32), Vec<u64>> = BTreeMap::new();
    let mut process: BTreeMap<&str, u32> = BTreeMap::new();
    for s in &c.h.events {
        match &s.ev {
            Ev::Engine(Event::NodeStarted) => *process.entry(&s.node).or_default() += 1,
            Ev::Engine(Event::TaskFailed { task, reason, .. }) if reason.starts_with(RETRY_REASON_PREFIX) => {
                let p = process.get(s.node.as_str()).copied().unwrap_or(0);
                retries.entry((*task, &s.node, p)).or_default().push(s.t_us);
            }
            _ => {}
        }
    }
    let window_us = RETRY_WINDOW_MS * 1_000;
    let mut v = Vec::new();
    for ((task, node, _), times) in retries {
        // Times are in history order, which is time order.
        let storm = (MAX_RETRIES_PER_WINDOW - 1..times.len())
            .map(|last| (times[last + 1 - MAX_RETRIES_PER_WINDOW], times[last]))
            .find(|(first, last)| last - first < window_us);
        if let Some((first, last)) = storm {
            v.push(Finding::new(
                Some(last),
                format!(
                    "{task} retried its recovery {MAX_RETRIES_PER_WINDOW} times between {} and {} on {node} (within {} s; \
                     {} retries by that process): a retry storm",
                    ms(first),
                    ms(last),
                    RETRY_WINDOW_MS / 1_000,
                    times.len()
                ),
            ));
        }
    }
    v
}
