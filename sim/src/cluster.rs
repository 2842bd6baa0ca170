//! The simulated cluster: which nodes exist, whether each is up, down or
//! paused, its clocks, the messages held back for late delivery, the active
//! windowed faults. `nodes.rs` holds
//! the part the engine's observer reads while nodes run (node states,
//! clocks, late-delivery rules); [`Cluster`] owns it and is the simulated
//! [`Target`]: the verbs every fault kind (`model/src/faults/`) acts
//! through, played on madsim. When a fault acts is the play loop's
//! (`faults::Player`), not the cluster's.

#![cfg_attr(not(madsim), allow(dead_code, unused_imports))]

use crate::disk::{CrashMode, SimDisk};
use crate::history::SimEvent;
use crate::nodes::{LateRule, NodeState, Nodes};
use crate::recorder::Recorder;
use exactsim_model::faults::{Shown, Target, Window};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

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

    /// A node killed by its own fatal error in the liveness phase: down,
    /// and restarted by the caller (as a supervisor would).
    pub fn crash_fatal(&mut self, node: &str, cause: &str) {
        self.crash(node, cause, CrashMode::KeepAll, true);
    }

    fn record(&self, node: &str, ev: SimEvent) {
        self.recorder.sim(node, ev);
    }
    /// Set `node`'s clocks to the sum of its active skews.
    fn set_skew(&self, node: &str) {
        let active = self.skews.get(node).map(Vec::as_slice).unwrap_or_default();
        let (rate, offset_us) = exactsim_model::clocks::compose(active.iter().map(|s| (s.1, s.2)));
        self.nodes.set_clock(node, self.recorder.now_us(), rate, offset_us);
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

fn started(s: &Shown) -> SimEvent {
    SimEvent::FaultStarted { kind: s.kind.into(), detail: s.detail.into() }
}

fn ended(s: &Shown) -> SimEvent {
    SimEvent::FaultEnded { kind: s.kind.into(), detail: s.detail.into() }
}

#[cfg(madsim)]
impl Cluster {
    /// The job submitted again (a redeploy, a rescale): `change` says what
    /// the coordinator's next start will be, then a clean stop of the
    /// coordinator, recorded with `cause` (`false`: it was down already).
    fn resubmit(&mut self, cause: &str, shown: &Shown, change: impl FnOnce(&Nodes)) -> bool {
        if !self.nodes.take_down("coordinator") {
            return false;
        }
        change(&self.nodes);
        self.record("sim", started(shown));
        self.crash("coordinator", cause, CrashMode::KeepAll, true)
    }
}

#[cfg(madsim)]
impl Target for Cluster {
    /// Kill `node` now (its disk loses what `disk` says).
    fn crash(&mut self, node: &str, cause: &str, disk: CrashMode, claimed: bool) -> bool {
        if !claimed && !self.nodes.take_down(node) {
            return false;
        }
        self.nodes.set_state(node, NodeState::Down);
        self.handle.kill(self.ids[node]);
        let (lost, torn) = match self.disks.get(node) {
            Some(d) => {
                let r = d.crash(disk);
                (r.lost_bytes, r.torn_files)
            }
            None => (0, 0),
        };
        let ev = SimEvent::NodeCrashed {
            node: node.to_string(),
            cause: cause.to_string(),
            lost_bytes: lost,
            torn_files: torn,
        };
        self.record(node, ev);
        true
    }

    fn restart(&mut self, node: &str) {
        if !self.nodes.is_down(node) {
            return;
        }
        self.handle.restart(self.ids[node]);
        self.nodes.set_state(node, NodeState::Up);
        self.record(node, SimEvent::NodeRestarted { node: node.to_string() });
    }

    /// Graceful shutdown: the node's writes all survive (a stopping process
    /// finishes and syncs its I/O).
    fn stop(&mut self, node: &str, shown: &Shown) -> bool {
        if !self.nodes.take_down(node) {
            return false;
        }
        self.record("sim", started(shown));
        self.crash(node, "clean stop", CrashMode::KeepAll, true)
    }

    /// A clean stop of the coordinator, whose next start is the job's next
    /// run (`Nodes::redeploy`).
    fn redeploy(&mut self, shown: &Shown) -> bool {
        self.resubmit("redeploy", shown, Nodes::redeploy)
    }

    /// A clean stop of the coordinator, whose next start deploys the job
    /// with `parallelism` subtasks (`Nodes::rescale`).
    fn rescale(&mut self, parallelism: u32, shown: &Shown) -> bool {
        self.resubmit("rescale", shown, |n| n.rescale(parallelism))
    }

    /// Freeze `node` (a node that is down or paused already is left alone).
    fn pause(&mut self, node: &str, shown: &Shown) -> bool {
        if self.nodes.state(node) != NodeState::Up {
            return false;
        }
        self.handle.pause(self.ids[node]);
        self.nodes.set_state(node, NodeState::Paused);
        self.record("sim", started(shown));
        true
    }

    fn resume(&mut self, node: &str, shown: &Shown) {
        if self.nodes.state(node) != NodeState::Paused {
            return;
        }
        self.handle.resume(self.ids[node]);
        self.nodes.set_state(node, NodeState::Up);
        self.record("sim", ended(shown));
    }

    fn open(&mut self, index: usize, w: &Window, shown: &Shown) -> bool {
        let ws = &mut self.windows;
        match *w {
            Window::Cut { a, b, one_way } => {
                *ws.links.entry((a.to_string(), b.to_string())).or_insert(0) += 1;
                if !one_way {
                    *ws.links.entry((b.to_string(), a.to_string())).or_insert(0) += 1;
                }
            }
            Window::Isolate { node } => *ws.isolated.entry(node.to_string()).or_insert(0) += 1,
            Window::Loss { permille } => ws.loss.push(permille),
            Window::Latency { latency_ms } => ws.latency.push(latency_ms),
            Window::SlowDisk { node, latency_ms } => ws.slow.entry(node.to_string()).or_default().push(latency_ms),
            Window::DiskErrors { node, permille } => ws.errors.entry(node.to_string()).or_default().push(permille),
            Window::CorruptReads { node, permille } => ws.corrupt.entry(node.to_string()).or_default().push(permille),
            Window::Late { from, to, delay_ms, count } => {
                // Lands (and is counted) when a message is held.
                self.nodes.lock().late.push(LateRule {
                    index,
                    from: from.to_string(),
                    to: to.map(str::to_string),
                    delay_ms,
                    remaining: count,
                });
                return true;
            }
            Window::Clock { node, offset_ms, drift_permille } => {
                self.skews.entry(node.to_string()).or_default().push((index, offset_ms, drift_permille));
                self.set_skew(node);
            }
        }
        self.record("sim", started(shown));
        self.apply();
        true
    }

    fn close(&mut self, index: usize, w: &Window, shown: &Shown) {
        let ws = &mut self.windows;
        match *w {
            Window::Cut { a, b, one_way } => {
                dec(&mut ws.links, &(a.to_string(), b.to_string()));
                if !one_way {
                    dec(&mut ws.links, &(b.to_string(), a.to_string()));
                }
            }
            Window::Isolate { node } => dec(&mut ws.isolated, &node.to_string()),
            Window::Loss { permille } => remove_one(&mut ws.loss, &permille),
            Window::Latency { latency_ms } => remove_one(&mut ws.latency, &latency_ms),
            Window::SlowDisk { node, latency_ms } => {
                remove_one(ws.slow.entry(node.to_string()).or_default(), &latency_ms)
            }
            Window::DiskErrors { node, permille } => {
                remove_one(ws.errors.entry(node.to_string()).or_default(), &permille)
            }
            Window::CorruptReads { node, permille } => {
                remove_one(ws.corrupt.entry(node.to_string()).or_default(), &permille)
            }
            Window::Late { .. } => {
                // Messages already held still arrive late; no new ones are
                // held. Nothing of the network changes, so no `apply`.
                self.nodes.lock().late.retain(|r| r.index != index);
                self.record("sim", ended(shown));
                return;
            }
            Window::Clock { node, .. } => {
                // NTP steps the wall clock back; the rate returns to normal.
                self.skews.entry(node.to_string()).or_default().retain(|(i, _, _)| *i != index);
                self.set_skew(node);
            }
        }
        self.record("sim", ended(shown));
        self.apply();
    }

    fn note(&mut self, shown: &Shown) {
        self.record("sim", started(shown));
    }

    /// The liveness phase: every window closed, every clock true (the play
    /// loop then restarts and resumes every node). A clock is made true as
    /// NTP makes it: its wall clock steps, its monotonic clock goes on (a
    /// running process's elapsed times never turn negative).
    fn heal(&mut self) {
        self.windows = Windows::default();
        self.skews.clear();
        {
            let now_us = self.recorder.now_us();
            let mut g = self.nodes.lock();
            g.late.clear();
            for c in g.clocks.values_mut() {
                c.true_again(now_us);
            }
        }
        self.apply();
    }
}
