//! The cluster's node table, shared by the cluster (which changes it) and
//! the recorder (which the engine calls while nodes run): each node's state
//! (up, down, paused), its clocks, the messages held back for late
//! delivery. Its own module so that
//! the cluster and the recorder both depend on it and not on each other.

#![cfg_attr(not(madsim), allow(dead_code))]

use exactsim_engine::clock::ClockReading;
use exactsim_engine::proto::Msg;
use exactsim_model::clocks::ClockModel;
use exactsim_model::faults::late_delivery::held_detail;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    Up,
    /// Killed or stopped (or about to be: a crash was requested).
    Down,
    /// Frozen by a pause.
    Paused,
}

/// A late-delivery rule while its window is open.
#[derive(Clone, Debug)]
pub(crate) struct LateRule {
    pub(crate) index: usize,
    pub(crate) from: String,
    pub(crate) to: Option<String>,
    pub(crate) delay_ms: u64,
    pub(crate) remaining: u32,
}

#[derive(Default)]
pub(crate) struct NodesInner {
    pub(crate) state: BTreeMap<String, NodeState>,
    pub(crate) clocks: BTreeMap<String, ClockModel>,
    pub(crate) late: Vec<LateRule>,
    pub(crate) names: BTreeMap<SocketAddr, String>,
    /// Redeploys so far: the coordinator starts as run `JobConfig::run +
    /// redeploys` (a redeploy is a new submission of the job).
    pub(crate) redeploys: u64,
    /// The parallelism a rescale asked for: the coordinator's next starts
    /// deploy the job with it (`None`: the submission's).
    pub(crate) parallelism: Option<u32>,
}

/// Node states, clocks and late-delivery rules, shared by the cluster (which
/// changes them) and the recorder (which the engine calls).
#[derive(Default)]
pub struct Nodes {
    inner: Mutex<NodesInner>,
}

impl Nodes {
    pub fn new(addrs: &exactsim_engine::net::Addrs) -> Nodes {
        Nodes { inner: Mutex::new(NodesInner { names: addrs.names(), ..Default::default() }) }
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, NodesInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many times the job was redeployed (a new job identity each).
    pub fn redeploys(&self) -> u64 {
        self.lock().redeploys
    }

    /// The job is submitted again under a new job identity: the
    /// coordinator's next start is a new run.
    pub fn redeploy(&self) {
        self.lock().redeploys += 1;
    }

    /// The parallelism the coordinator deploys the job with, if a rescale
    /// asked for one.
    pub fn parallelism(&self) -> Option<u32> {
        self.lock().parallelism
    }

    /// The job is rescaled: the coordinator's next start deploys it with
    /// `parallelism` subtasks.
    pub fn rescale(&self, parallelism: u32) {
        self.lock().parallelism = Some(parallelism);
    }

    pub fn state(&self, node: &str) -> NodeState {
        self.lock().state.get(node).copied().unwrap_or(NodeState::Up)
    }

    pub fn set_state(&self, node: &str, s: NodeState) {
        self.lock().state.insert(node.to_string(), s);
    }

    pub fn is_down(&self, node: &str) -> bool {
        self.state(node) == NodeState::Down
    }

    /// Mark `node` down unless it is already; `true` if this call did.
    pub fn take_down(&self, node: &str) -> bool {
        let mut g = self.lock();
        if g.state.get(node) == Some(&NodeState::Down) {
            return false;
        }
        g.state.insert(node.to_string(), NodeState::Down);
        true
    }

    pub fn clock(&self, node: &str, t_us: u64) -> ClockReading {
        self.lock().clocks.get(node).copied().unwrap_or_default().reading(t_us)
    }

    pub(crate) fn set_clock(&self, node: &str, t_us: u64, rate: u64, offset_us: i64) {
        self.lock().clocks.entry(node.to_string()).or_default().set(t_us, rate, offset_us);
    }

    /// Whether `from` must hold `msg` to `dst` back, and for how long (and
    /// a description of what was held). Heartbeats, data and replies are
    /// never held: a rule holds single requests and control messages.
    pub fn hold(&self, from: &str, dst: SocketAddr, msg: &Msg) -> Option<(Duration, String)> {
        if !msg.may_be_held() {
            return None;
        }
        let mut g = self.lock();
        // Runs for every message sent: no allocation until a rule matches.
        let NodesInner { late, names, .. } = &mut *g;
        let to = names.get(&dst).map(String::as_str);
        let rule =
            late.iter_mut().find(|r| r.remaining > 0 && r.from == from && (r.to.is_none() || r.to.as_deref() == to))?;
        rule.remaining -= 1;
        let (delay, index) = (rule.delay_ms, rule.index);
        Some((Duration::from_millis(delay), held_detail(index, from, to, msg, delay)))
    }
}
