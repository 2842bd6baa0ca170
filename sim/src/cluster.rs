//! The simulated cluster: which nodes exist, whether each is up, down or
//! paused, its clocks, the messages held back for late delivery, the active
//! windowed faults. `nodes.rs` holds
//! the part the engine's observer reads while nodes run (node states,
//! clocks, late-delivery rules); [`Cluster`] owns it and applies every
//! fault kind declared in `schedule.rs` to madsim.

#![cfg_attr(not(madsim), allow(dead_code, unused_imports))]

use crate::disk::{CrashMode, SimDisk};
use crate::history::SimEvent;
use crate::nodes::{LateRule, NodeState, Nodes};
use crate::recorder::Recorder;
use crate::schedule::FaultEvent;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// What the cluster does at a future instant.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Wakeup {
    Restart(String),
    /// The node and the pause's description (ends its timeline band).
    Resume(String, String),
}

/// Active windowed faults, reference-counted so overlapping windows heal
/// correctly.
#[derive(Default)]
struct Windows {
    links: BTreeMap<(String, String), u32>,
    isolated: BTreeMap<String, u32>,
    loss: Vec<u32>,
    latency: Vec<u64>,
    slow: BTreeMap<String, Vec<u64>>,
    errors: BTreeMap<String, Vec<u32>>,
    corrupt: BTreeMap<String, Vec<u32>>,
}

/// The nodes of a run and every fault applied to them.
#[cfg(madsim)]
pub struct Cluster {
    handle: madsim::runtime::Handle,
    net: Arc<madsim::net::NetSim>,
    recorder: Arc<Recorder>,
    pub nodes: Arc<Nodes>,
    ids: BTreeMap<String, madsim::task::NodeId>,
    pub disks: BTreeMap<String, Arc<SimDisk>>,
    windows: Windows,
    /// Active clock skews per node: (event index, offset ms, drift permille);
    /// overlapping skews add up.
    skews: BTreeMap<String, Vec<(usize, i64, i32)>>,
    /// (ms since start, sequence) -> what happens then.
    wakeups: BTreeMap<(u64, u64), Wakeup>,
    seq: u64,
}

#[cfg(madsim)]
impl Cluster {
    pub fn new(
        handle: madsim::runtime::Handle,
        recorder: Arc<Recorder>,
        nodes: Arc<Nodes>,
        disks: BTreeMap<String, Arc<SimDisk>>,
    ) -> Cluster {
        Cluster {
            handle,
            net: madsim::net::NetSim::current(),
            recorder,
            nodes,
            ids: BTreeMap::new(),
            disks,
            windows: Windows::default(),
            skews: BTreeMap::new(),
            wakeups: BTreeMap::new(),
            seq: 0,
        }
    }

    pub fn add(&mut self, name: &str, id: madsim::task::NodeId) {
        self.ids.insert(name.to_string(), id);
    }

    /// Kill every node once the run is over. A node's tasks hold the
    /// runtime's handles (and the runtime holds the tasks), so a node left
    /// alive keeps the run's whole world in memory after the runtime is
    /// dropped: about 1 MB a run, which a long campaign cannot afford.
    pub fn kill_all(&self) {
        for id in self.ids.values() {
            self.handle.kill(*id);
        }
    }

    fn wake_at(&mut self, ms: u64, w: Wakeup) {
        self.seq += 1;
        self.wakeups.insert((ms, self.seq), w);
    }

    /// When the next wakeup is due.
    pub fn next_wakeup(&self) -> Option<u64> {
        self.wakeups.keys().next().map(|k| k.0)
    }

    /// Run every wakeup due by `now_ms`.
    pub fn wake(&mut self, now_ms: u64) {
        while let Some((&(t, s), _)) = self.wakeups.first_key_value() {
            if t > now_ms {
                break;
            }
            let w = self.wakeups.remove(&(t, s)).expect("present");
            match w {
                Wakeup::Restart(n) => self.restart(&n),
                Wakeup::Resume(n, d) => self.resume(&n, &d),
            }
        }
    }

    /// Kill `node` now (its disk loses what `mode` says) and restart it
    /// `down_ms` later. `claimed`: the node was already marked down by the
    /// recorder (a fault point or a fatal error asked for this crash).
    pub fn crash(&mut self, node: &str, cause: &str, mode: CrashMode, down_ms: u64, now_ms: u64, claimed: bool) {
        if !claimed && !self.nodes.take_down(node) {
            return;
        }
        self.nodes.set_state(node, NodeState::Down);
        self.handle.kill(self.ids[node]);
        let (lost, torn) = match self.disks.get(node) {
            Some(d) => {
                let r = d.crash(mode);
                (r.lost_bytes, r.torn_files)
            }
            None => (0, 0),
        };
        self.recorder.sim(
            node,
            SimEvent::NodeCrashed {
                node: node.to_string(),
                cause: cause.to_string(),
                lost_bytes: lost,
                torn_files: torn,
            },
        );
        self.wake_at(now_ms.saturating_add(down_ms), Wakeup::Restart(node.to_string()));
    }

    /// A predicate-triggered fault fired on `node`.
    pub fn note_trigger(&self, node: &str, e: &FaultEvent, cause: &str) {
        let detail = format!("{{\"node\":\"{node}\",\"cause\":\"{cause}\",\"fault\":{}}}", e.describe());
        self.recorder.sim("sim", SimEvent::FaultStarted { kind: "on_event".into(), detail });
    }

    /// Graceful shutdown: the node's writes all survive (a stopping process
    /// finishes and syncs its I/O), then it is down for `down_ms`.
    pub fn stop(&mut self, node: &str, e: &FaultEvent, down_ms: u64, now_ms: u64) {
        if !self.nodes.take_down(node) {
            return;
        }
        self.recorder.sim("sim", SimEvent::FaultStarted { kind: "stop".into(), detail: e.describe() });
        self.crash(node, "clean stop", CrashMode::KeepAll, down_ms, now_ms, true);
    }

    pub fn restart(&mut self, node: &str) {
        if !self.nodes.is_down(node) {
            return;
        }
        self.handle.restart(self.ids[node]);
        self.nodes.set_state(node, NodeState::Up);
        self.recorder.sim(node, SimEvent::NodeRestarted { node: node.to_string() });
    }

    /// Freeze `node` for `dur_ms` (a node that is down or paused already
    /// is left alone).
    pub fn pause(&mut self, node: &str, e: &FaultEvent, dur_ms: u64, now_ms: u64) {
        if self.nodes.state(node) != NodeState::Up {
            return;
        }
        self.handle.pause(self.ids[node]);
        self.nodes.set_state(node, NodeState::Paused);
        self.recorder.sim("sim", SimEvent::FaultStarted { kind: "pause".into(), detail: e.describe() });
        self.wake_at(now_ms.saturating_add(dur_ms), Wakeup::Resume(node.to_string(), e.describe()));
    }

    pub fn resume(&mut self, node: &str, detail: &str) {
        if self.nodes.state(node) != NodeState::Paused {
            return;
        }
        self.handle.resume(self.ids[node]);
        self.nodes.set_state(node, NodeState::Up);
        self.recorder.sim("sim", SimEvent::FaultEnded { kind: "pause".into(), detail: detail.to_string() });
    }

    /// Start a scheduled fault (not a predicate fault: those come as
    /// requests from the recorder).
    pub fn start(&mut self, index: usize, e: &FaultEvent, now_ms: u64) {
        match e {
            FaultEvent::Crash { node, down_ms, disk, .. } => {
                if self.nodes.take_down(node) {
                    self.crash(node, "scheduled crash", *disk, *down_ms, now_ms, true);
                }
            }
            FaultEvent::Stop { node, down_ms, .. } => self.stop(node, e, *down_ms, now_ms),
            FaultEvent::Pause { node, dur_ms, .. } => self.pause(node, e, *dur_ms, now_ms),
            FaultEvent::CrashAtPoint { .. } | FaultEvent::OnEvent { .. } => {}
            FaultEvent::Partition { .. }
            | FaultEvent::Isolate { .. }
            | FaultEvent::PacketLoss { .. }
            | FaultEvent::Latency { .. }
            | FaultEvent::SlowDisk { .. }
            | FaultEvent::DiskErrors { .. }
            | FaultEvent::CorruptReads { .. }
            | FaultEvent::LateDelivery { .. }
            | FaultEvent::Skew { .. } => self.start_window(index, e),
        }
    }

    fn start_window(&mut self, index: usize, e: &FaultEvent) {
        let w = &mut self.windows;
        match e {
            FaultEvent::Partition { a, b, one_way, .. } => {
                *w.links.entry((a.clone(), b.clone())).or_insert(0) += 1;
                if !one_way {
                    *w.links.entry((b.clone(), a.clone())).or_insert(0) += 1;
                }
            }
            FaultEvent::Isolate { node, .. } => *w.isolated.entry(node.clone()).or_insert(0) += 1,
            FaultEvent::PacketLoss { permille, .. } => w.loss.push(*permille),
            FaultEvent::Latency { latency_ms, .. } => w.latency.push(*latency_ms),
            FaultEvent::SlowDisk { node, latency_ms, .. } => w.slow.entry(node.clone()).or_default().push(*latency_ms),
            FaultEvent::DiskErrors { node, permille, .. } => w.errors.entry(node.clone()).or_default().push(*permille),
            FaultEvent::CorruptReads { node, permille, .. } => {
                w.corrupt.entry(node.clone()).or_default().push(*permille)
            }
            FaultEvent::LateDelivery { from, to, delay_ms, count, .. } => {
                // Lands (and is counted) when a message is held.
                self.nodes.lock().late.push(LateRule {
                    index,
                    from: from.clone(),
                    to: to.clone(),
                    delay_ms: *delay_ms,
                    remaining: *count,
                });
                return;
            }
            FaultEvent::Skew { node, offset_ms, drift_permille, .. } => {
                self.skews.entry(node.clone()).or_default().push((index, *offset_ms, *drift_permille));
                self.set_skew(node);
            }
            FaultEvent::Crash { .. }
            | FaultEvent::CrashAtPoint { .. }
            | FaultEvent::Pause { .. }
            | FaultEvent::Stop { .. }
            | FaultEvent::OnEvent { .. } => unreachable!("not a windowed fault: {e:?}"),
        }
        self.recorder.sim("sim", SimEvent::FaultStarted { kind: e.kind().into(), detail: e.describe() });
        self.apply();
    }

    /// End a windowed fault.
    pub fn end(&mut self, index: usize, e: &FaultEvent) {
        fn dec<K: Ord + Clone>(m: &mut BTreeMap<K, u32>, k: &K) {
            if let Some(v) = m.get_mut(k) {
                *v -= 1;
                if *v == 0 {
                    m.remove(k);
                }
            }
        }
        fn remove_one<T: PartialEq>(v: &mut Vec<T>, x: &T) {
            if let Some(i) = v.iter().position(|y| y == x) {
                v.remove(i);
            }
        }
        let w = &mut self.windows;
        match e {
            FaultEvent::Partition { a, b, one_way, .. } => {
                dec(&mut w.links, &(a.clone(), b.clone()));
                if !one_way {
                    dec(&mut w.links, &(b.clone(), a.clone()));
                }
            }
            FaultEvent::Isolate { node, .. } => dec(&mut w.isolated, node),
            FaultEvent::PacketLoss { permille, .. } => remove_one(&mut w.loss, permille),
            FaultEvent::Latency { latency_ms, .. } => remove_one(&mut w.latency, latency_ms),
            FaultEvent::SlowDisk { node, latency_ms, .. } => {
                remove_one(w.slow.entry(node.clone()).or_default(), latency_ms)
            }
            FaultEvent::DiskErrors { node, permille, .. } => {
                remove_one(w.errors.entry(node.clone()).or_default(), permille)
            }
            FaultEvent::CorruptReads { node, permille, .. } => {
                remove_one(w.corrupt.entry(node.clone()).or_default(), permille)
            }
            FaultEvent::LateDelivery { .. } => {
                // Messages already held still arrive late; no new ones are
                // held. Nothing of the network changes, so no `apply`.
                self.nodes.lock().late.retain(|r| r.index != index);
                self.recorder.sim("sim", SimEvent::FaultEnded { kind: e.kind().into(), detail: e.describe() });
                return;
            }
            FaultEvent::Skew { node, .. } => {
                // NTP steps the wall clock back; the rate returns to normal.
                self.skews.entry(node.clone()).or_default().retain(|(i, _, _)| *i != index);
                self.set_skew(node);
            }
            // Node faults end by a restart or a resume (timed wakeups).
            FaultEvent::Crash { .. }
            | FaultEvent::CrashAtPoint { .. }
            | FaultEvent::Pause { .. }
            | FaultEvent::Stop { .. }
            | FaultEvent::OnEvent { .. } => return,
        }
        self.recorder.sim("sim", SimEvent::FaultEnded { kind: e.kind().into(), detail: e.describe() });
        self.apply();
    }

    /// Set `node`'s clocks to the sum of its active skews.
    fn set_skew(&self, node: &str) {
        let active = self.skews.get(node).map(Vec::as_slice).unwrap_or_default();
        let offset_ms: i64 = active.iter().map(|s| s.1).fold(0, i64::saturating_add);
        let drift: i64 = active.iter().map(|s| s.2 as i64).sum();
        let rate = (1000 + drift).max(1) as u64;
        self.nodes.set_clock(node, self.recorder.now_us(), rate, offset_ms.saturating_mul(1000));
    }

    /// The liveness phase: every window closed, every clock true, every
    /// node resumed and restarted.
    pub fn heal_all(&mut self) {
        self.windows = Windows::default();
        self.skews.clear();
        {
            let mut g = self.nodes.lock();
            g.late.clear();
            g.clocks.clear();
        }
        self.apply();
        for (_, w) in std::mem::take(&mut self.wakeups) {
            match w {
                Wakeup::Restart(n) => self.restart(&n),
                Wakeup::Resume(n, d) => self.resume(&n, &d),
            }
        }
        let paused: Vec<String> =
            self.ids.keys().filter(|n| self.nodes.state(n) == NodeState::Paused).cloned().collect();
        for n in paused {
            self.resume(&n, "");
        }
    }

    /// Make the network and disks match the active windows.
    fn apply(&self) {
        let w = &self.windows;
        for (a, ida) in &self.ids {
            if w.isolated.contains_key(a) {
                self.net.clog_node(*ida);
            } else {
                self.net.unclog_node(*ida);
            }
            for (b, idb) in &self.ids {
                if a == b {
                    continue;
                }
                if w.links.contains_key(&(a.clone(), b.clone())) {
                    self.net.clog_link(*ida, *idb);
                } else {
                    self.net.unclog_link(*ida, *idb);
                }
            }
        }
        let loss = w.loss.iter().copied().max().unwrap_or(0);
        let lat = w.latency.iter().copied().max().unwrap_or(5).max(5);
        self.net.update_config(|cfg| {
            cfg.packet_loss_rate = loss as f64 / 1000.0;
            cfg.send_latency = Duration::from_millis(1)..Duration::from_millis(lat);
        });
        for (name, d) in &self.disks {
            d.set_slow(w.slow.get(name).and_then(|v| v.iter().copied().max()));
            d.set_error_permille(w.errors.get(name).and_then(|v| v.iter().copied().max()).unwrap_or(0));
            d.set_corrupt_permille(w.corrupt.get(name).and_then(|v| v.iter().copied().max()).unwrap_or(0));
        }
    }
}
