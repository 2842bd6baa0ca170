//! The simulator's [`Observer`]: stamps engine events with simulated time
//! and node, folds every event into the trace hash chain, counts fault-point
//! coverage, and turns scheduled fault-point crashes and fatal errors into
//! crash requests for the supervisor; fires predicate-triggered faults
//! (`OnEvent`) when a node emits their event; reads each node's skewed
//! clocks from the cluster's node table ([`Nodes`]).

use crate::history::{Ev, Fnv1aWriter, Reached, SimEvent, Stamped, FNV_OFFSET};
use crate::nodes::Nodes;
use crate::schedule::{FaultEvent, TriggerAction};
use exactsim_engine::clock::ClockReading;
use exactsim_engine::observe::{Event, FaultPoint, Observer, Reach};
use exactsim_model::faults::arming::{rules, On, Rule};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::UnboundedSender;

/// A request to the supervisor: crash (or pause, or stop) `node` now.
#[derive(Debug, Clone)]
pub struct CrashRequest {
    pub node: String,
    pub cause: String,
    /// Index into the schedule's events, for point crashes and triggers.
    pub schedule_index: Option<usize>,
    pub action: TriggerAction,
}

/// An armed `OnEvent` fault and the occurrences of its event seen so far.
type ArmedTrigger = (Rule, u64);

struct Inner {
    start: Option<RunClock>,
    events: Vec<Stamped>,
    hash: u64,
    /// Hash after each event, for finding where two runs diverge.
    chain: Vec<u64>,
    coverage: BTreeMap<(String, FaultPoint), u64>,
    /// Reachability points reached (not hashed: they are no part of the trace).
    reached: Vec<Reached>,
    /// Point-crash rules still armed.
    armed: Vec<Rule>,
    triggers: Vec<ArmedTrigger>,
    safety: bool,
    finished_at_us: Option<u64>,
}

/// The simulated time since the run's clock started. Read through the
/// runtime's time handle, kept from the start: the same value as
/// `Instant::elapsed`, without a `clock_gettime` call that looks the
/// runtime up again (every event and every clock reading of a node asks
/// for it; that lookup was about 1.6% of a campaign's instructions).
struct RunClock {
    #[cfg(madsim)]
    time: madsim::time::TimeHandle,
    #[cfg(madsim)]
    start: std::time::Duration,
    #[cfg(not(madsim))]
    start: madsim::time::Instant,
}

impl RunClock {
    fn now() -> Self {
        #[cfg(madsim)]
        {
            let time = madsim::time::TimeHandle::current();
            let start = time.elapsed();
            RunClock { time, start }
        }
        #[cfg(not(madsim))]
        RunClock { start: madsim::time::Instant::now() }
    }

    fn elapsed(&self) -> std::time::Duration {
        #[cfg(madsim)]
        return self.time.elapsed() - self.start;
        #[cfg(not(madsim))]
        self.start.elapsed()
    }
}

impl Inner {
    /// Microseconds since the run's clock started (0 before).
    fn now_us(&self) -> u64 {
        self.start.as_ref().map_or(0, |s| s.elapsed().as_micros() as u64)
    }
}

pub struct Recorder {
    inner: Mutex<Inner>,
    nodes: Arc<Nodes>,
    crash_tx: UnboundedSender<CrashRequest>,
    keep_chain: bool,
}

impl Recorder {
    pub fn new(
        schedule: &[FaultEvent],
        nodes: Arc<Nodes>,
        crash_tx: UnboundedSender<CrashRequest>,
        keep_chain: bool,
    ) -> Recorder {
        let (armed, triggers): (Vec<Rule>, Vec<Rule>) =
            rules(schedule).into_iter().partition(|r| matches!(r.on, On::Point(_)));
        let triggers = triggers.into_iter().map(|r| (r, 0)).collect();
        Recorder {
            inner: Mutex::new(Inner {
                start: None,
                events: Vec::new(),
                hash: FNV_OFFSET,
                chain: Vec::new(),
                coverage: BTreeMap::new(),
                reached: Vec::new(),
                armed,
                triggers,
                safety: true,
                finished_at_us: None,
            }),
            nodes,
            crash_tx,
            keep_chain,
        }
    }

    pub fn start_clock(&self) {
        self.inner.lock().unwrap().start = Some(RunClock::now());
    }

    pub fn now_us(&self) -> u64 {
        let g = self.inner.lock().unwrap();
        g.now_us()
    }

    fn push(&self, node: &str, ev: Ev) {
        let mut g = self.inner.lock().unwrap();
        let t_us = g.now_us();
        if let Ev::Engine(Event::JobFinished { .. }) = &ev {
            if g.finished_at_us.is_none() {
                g.finished_at_us = Some(t_us);
            }
        }
        let st = Stamped { t_us, node: node.to_string(), ev };
        // The event's bincode bytes, folded into the chain as they are
        // produced (not allocated: events carry their records' ids).
        let mut hash = Fnv1aWriter(g.hash);
        bincode::serialize_into(&mut hash, &st).expect("serializable");
        g.hash = hash.0;
        if self.keep_chain {
            let h = g.hash;
            g.chain.push(h);
        }
        g.events.push(st);
    }

    pub fn sim(&self, node: &str, ev: SimEvent) {
        self.push(node, Ev::Sim(ev));
    }

    pub fn end_safety(&self) {
        let mut g = self.inner.lock().unwrap();
        g.safety = false;
        g.armed.clear();
        g.triggers.clear();
    }

    /// Fire the armed triggers of `event` on `node`.
    fn triggers(&self, node: &str, event: &Event) {
        let mut g = self.inner.lock().unwrap();
        if g.triggers.is_empty() || !g.safety {
            return;
        }
        let on = On::Event(event.name().to_string());
        let mut fire = Vec::new();
        g.triggers.retain_mut(|(rule, seen)| {
            if !rule.counts(node, &on) {
                return true;
            }
            *seen += 1;
            if !rule.fires_at(*seen) {
                return true;
            }
            fire.push((rule.index, rule.cause()));
            false
        });
        drop(g);
        for (i, cause) in fire {
            let _ = self.crash_tx.send(CrashRequest {
                node: node.to_string(),
                cause,
                schedule_index: Some(i),
                action: TriggerAction::Crash, // the supervisor reads the event's own action
            });
        }
    }

    pub fn finished_at_us(&self) -> Option<u64> {
        self.inner.lock().unwrap().finished_at_us
    }

    pub fn hash(&self) -> u64 {
        self.inner.lock().unwrap().hash
    }

    /// The reachability points reached so far, handed over (also after a
    /// panic: the lock may be poisoned, what it guards is consistent).
    pub fn take_reached(&self) -> Vec<Reached> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut g.reached)
    }

    /// Everything recorded: (events, hash chain, fault-point coverage, final hash).
    pub fn take(&self) -> Recorded {
        let mut g = self.inner.lock().unwrap();
        (std::mem::take(&mut g.events), std::mem::take(&mut g.chain), std::mem::take(&mut g.coverage), g.hash)
    }
}

impl Recorder {
    /// Everything recorded before a panic. The lock may be poisoned (the
    /// panic may have fired while it was held): what it guards is still
    /// a consistent prefix, since every update completes under the lock
    /// before anything can panic.
    pub fn take_after_panic(&self) -> Recorded {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        (std::mem::take(&mut g.events), std::mem::take(&mut g.chain), std::mem::take(&mut g.coverage), g.hash)
    }
}

/// What [`Recorder::take`] hands over at the end of a run.
pub type Recorded = (Vec<Stamped>, Vec<u64>, BTreeMap<(String, FaultPoint), u64>, u64);

impl Observer for Recorder {
    fn emit(&self, node: &str, event: Event) {
        self.triggers(node, &event);
        self.push(node, Ev::Engine(event));
    }

    fn reach(&self, node: &str, point: Reach) {
        let mut g = self.inner.lock().unwrap();
        let t_us = g.now_us();
        g.reached.push(Reached { t_us, node: node.to_string(), point });
    }

    fn local_clock(&self, node: &str) -> Option<ClockReading> {
        Some(self.nodes.clock(node, self.now_us()))
    }

    fn fault_point(&self, node: &str, point: FaultPoint) -> bool {
        if self.nodes.is_down(node) {
            return true; // a dying node makes no progress
        }
        let mut g = self.inner.lock().unwrap();
        let hits = {
            let c = g.coverage.entry((node.to_string(), point)).or_insert(0);
            *c += 1;
            *c
        };
        if !g.safety {
            return false;
        }
        // Occurrences are counted per point over all nodes for rules
        // without a node, per (node, point) otherwise.
        let total: u64 = g.coverage.iter().filter(|((_, p), _)| *p == point).map(|(_, c)| *c).sum();
        let on = On::Point(point);
        let fire =
            g.armed.iter().position(|r| r.counts(node, &on) && r.fires_at(if r.node.is_some() { hits } else { total }));
        if let Some(k) = fire {
            let rule = g.armed.remove(k);
            drop(g);
            self.nodes.take_down(node);
            let _ = self.crash_tx.send(CrashRequest {
                node: node.to_string(),
                cause: rule.cause(),
                schedule_index: Some(rule.index),
                action: TriggerAction::Crash,
            });
            return true;
        }
        false
    }

    fn fatal(&self, node: &str, reason: &str) {
        if !self.nodes.take_down(node) {
            return;
        }
        let _ = self.crash_tx.send(CrashRequest {
            node: node.to_string(),
            cause: format!("fatal: {reason}"),
            schedule_index: None,
            action: TriggerAction::Crash,
        });
    }
}
