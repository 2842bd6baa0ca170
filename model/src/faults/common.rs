//! What every fault kind's file draws on, and nothing of the schedule's:
//! what a crash leaves on disk, what a trigger does, the caps on input,
//! the nodes with a disk and a node's role, generation's context (`Gen`)
//! and shrinking's vocabulary (`Narrowing`, `Size` and the smaller
//! values a narrowing proposes). A leaf: the kinds, the registry
//! (`faults/mod.rs`), the schedule and shrinking all import it, and it
//! imports none of them, so the fault kinds and the schedule that composes
//! them form no import circle.

use crate::rng::SimRng;
use exactsim_engine::config::JobConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::Add;

/// Which nodes a fault kind can hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Targets {
    /// Every node of the run.
    AnyNode,
    /// Nodes with a disk (`DISK_NODES`).
    DiskNodes,
    /// The whole network (no node).
    Network,
}

/// What survives a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrashMode {
    /// Unsynced data is lost.
    LoseUnsynced,
    /// A strict prefix of an in-flight append survives; other unsynced data
    /// is lost.
    Torn,
    /// The page cache survived (a process crash, not a power loss).
    KeepAll,
}

/// The node that hosts a scenario's own sink system (the simulated
/// PostgreSQL of `pg_ledger`; in real mode the real server), when it has
/// one.
pub const SYSTEM_NODE: &str = "system";

/// What a predicate-triggered fault does to its node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerAction {
    Crash,
    Pause,
    Stop,
    /// The node's disk fails every operation for the hold (a full disk, a
    /// log directory gone offline): its server answers at once with an
    /// I/O error, for as long as it lasts.
    DiskFull,
}

impl TriggerAction {
    pub fn kind(self) -> &'static str {
        match self {
            TriggerAction::Crash => "crash",
            TriggerAction::Pause => "pause",
            TriggerAction::Stop => "stop",
            TriggerAction::DiskFull => "disk_errors",
        }
    }
}

/// The role of a node (`worker-2` -> `worker`).
pub fn role_of(node: &str) -> &str {
    if node.starts_with("worker-") {
        "worker"
    } else {
        node
    }
}

pub const DISK_NODES: [&str; 3] = ["coordinator", "broker", "store"];

/// What generation draws from: the fault stream, the run's nodes, the
/// profile, and the job configuration whose timeouts outage lengths are
/// drawn against.
pub struct Gen<'a> {
    pub rng: SimRng,
    /// The profile's role targets per kind (`[targets]`).
    pub targets: &'a BTreeMap<String, Vec<String>>,
    pub cfg: &'a JobConfig,
    pub nodes: Vec<String>,
    pub horizon: u64,
    lose: bool,
    torn: bool,
    kind: &'static str,
    kind_targets: Targets,
}

impl<'a> Gen<'a> {
    /// Drawing from `rng` for a run with these nodes; crashes lose unsynced
    /// writes (`lose`) or tear them (`torn`) as the profile says.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        rng: SimRng,
        targets: &'a BTreeMap<String, Vec<String>>,
        cfg: &'a JobConfig,
        nodes: Vec<String>,
        horizon: u64,
        lose: bool,
        torn: bool,
    ) -> Gen<'a> {
        Gen { rng, targets, cfg, nodes, horizon, lose, torn, kind: "crash", kind_targets: Targets::AnyNode }
    }

    /// The kind drawn next, and the nodes it can hit.
    pub(crate) fn set_kind(&mut self, kind: &'static str, targets: Targets) {
        self.kind = kind;
        self.kind_targets = targets;
    }

    /// The nodes the current kind may hit: its targets, narrowed to the
    /// profile's roles for it.
    pub(crate) fn candidates(&self) -> Vec<String> {
        let mut v: Vec<String> = match self.kind_targets {
            Targets::DiskNodes => DISK_NODES.iter().map(|s| s.to_string()).collect(),
            _ => self.nodes.clone(),
        };
        if let Some(roles) = self.targets.get(self.kind) {
            v.retain(|n| roles.iter().any(|r| r == role_of(n)));
        }
        v
    }

    pub fn node(&mut self) -> String {
        let c = self.candidates();
        self.rng.pick(&c).clone()
    }

    pub fn at(&mut self) -> u64 {
        self.rng.range(0, self.horizon)
    }

    pub fn disk_mode(&mut self) -> CrashMode {
        match (self.lose, self.torn) {
            (_, true) if self.rng.chance(1, 2) => CrashMode::Torn,
            (true, _) => CrashMode::LoseUnsynced,
            _ => CrashMode::KeepAll,
        }
    }

    /// A start within the first `limit_ms` of the run (from 50 ms, at most
    /// 100 ms before the limit or the horizon): while a standard seed's job
    /// still runs (it reads its input in 1 to 2.5 simulated seconds). For
    /// the faults aimed at the whole job (a redeploy, a rescale).
    pub fn early_at(&mut self, limit_ms: u64) -> u64 {
        self.rng.range(50, self.horizon.min(limit_ms).saturating_sub(100).max(60))
    }

    /// An outage length drawn against the engine's own timeouts and retry
    /// budgets: one of an RPC timeout, a whole retry budget, the heartbeat
    /// timeout and the checkpoint timeout, times a factor from a quarter
    /// (well inside it) to eight (far beyond it).
    pub fn outage(&mut self) -> u64 {
        let c = self.cfg;
        let budgets = [
            c.rpc_timeout_ms,
            c.rpc_timeout_ms.saturating_mul(c.rpc_retries as u64 + 1),
            c.heartbeat_timeout_ms,
            c.checkpoint_timeout_ms,
        ];
        let base = *self.rng.pick(&budgets);
        let factor = *self.rng.pick(&[250u64, 500, 900, 1_100, 2_000, 4_000, 8_000]);
        (base.saturating_mul(factor) / 1000).clamp(10, caps::DURATION_MS_MAX)
    }
}

/// Caps on what a profile or a replay file may ask for. Beyond them a run
/// would not finish in useful time or memory (or its time arithmetic would
/// overflow), so input past a cap is refused with a one-line error.
pub mod caps {
    /// Longest safety phase (simulated).
    pub const SAFETY_MS_MAX: u64 = 600_000;
    /// Longest liveness bound (simulated).
    pub const LIVENESS_MS_MAX: u64 = 3_600_000;
    /// Most fault events of one kind a profile asks for per run.
    pub const FAULTS_PER_KIND_MAX: u32 = 1_000;
    /// Most fault events in one schedule.
    pub const EVENTS_MAX: usize = 10_000;
    /// Longest fault window or crash-down time.
    pub const DURATION_MS_MAX: u64 = 600_000;
    /// Highest network or disk latency.
    pub const LATENCY_MS_MAX: u64 = 10_000;
    /// Probabilities are in permille.
    pub const PERMILLE_MAX: u32 = 1_000;
    /// Highest occurrence number of a fault-point crash or an event trigger.
    pub const NTH_MAX: u32 = 1_000_000;
    /// Largest clock step.
    pub const SKEW_MS_MAX: u64 = 3_600_000;
    /// Fastest clock drift (permille faster than real time).
    pub const DRIFT_PERMILLE_MAX: i32 = 10_000;
    /// Longest adaptive checkpoint interval bound (a profile's
    /// `adaptive_interval.max_ms`).
    pub const INTERVAL_MS_MAX: u64 = 600_000;
    /// Most phases of a profile's `input_phases` cycle.
    pub const PHASES_MAX: usize = 64;
    /// Most completed checkpoints a profile may retain.
    pub const RETAINED_MAX: usize = 16;
}

pub fn validate_trigger(event: &str, nth: u32, dur_ms: u64) -> Result<(), String> {
    let names = exactsim_engine::observe::Event::NAMES;
    if !names.contains(&event) {
        return Err(format!("unknown engine event `{event}` (events: {})", names.join(", ")));
    }
    if nth == 0 || nth > caps::NTH_MAX {
        return Err(format!("nth = {nth} is out of range (1..={})", caps::NTH_MAX));
    }
    if dur_ms == 0 || dur_ms > caps::DURATION_MS_MAX {
        return Err(format!("dur_ms = {dur_ms} is out of range (1..={})", caps::DURATION_MS_MAX));
    }
    Ok(())
}

/// The shortest window, outage or delay a narrowing proposes.
pub const DUR_MIN_MS: u64 = 10;

/// What narrowing needs to know about the run: the end of its safety
/// phase (no window may start after it) and the nodes a fault can be
/// retargeted to.
pub struct Narrowing<'a> {
    pub safety_ms: u64,
    pub nodes: &'a [String],
}

/// How big an event is, compared field by field in this order: how much of
/// the cluster it reaches and how harshly, the sum of its magnitudes
/// (milliseconds, permille, counts: only ever compared with the same
/// event's narrowings), and how late it starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Size {
    pub breadth: u64,
    pub magnitude: u64,
    pub start: u64,
}

impl Add for Size {
    type Output = Size;
    fn add(self, o: Size) -> Size {
        Size {
            breadth: self.breadth + o.breadth,
            magnitude: self.magnitude.saturating_add(o.magnitude),
            start: self.start.saturating_add(o.start),
        }
    }
}

/// Smaller values than `x`, no smaller than `min`, most aggressive first:
/// the minimum, a half, three quarters.
pub fn smaller(x: u64, min: u64) -> Vec<u64> {
    let mut v = Vec::new();
    for c in [min, x / 2, x - x / 4] {
        if c >= min && c < x && !v.contains(&c) {
            v.push(c);
        }
    }
    v
}

/// Earlier starts than `at`: the beginning, a half, three quarters.
pub fn earlier(at: u64) -> Vec<u64> {
    smaller(at, 0)
}

/// The narrowings of a node outage that starts at `at_ms` and lasts
/// `down_ms`: each shorter outage, then each earlier start, made by
/// `with(at_ms, down_ms)`.
pub fn shorter_or_earlier<T>(at_ms: u64, down_ms: u64, with: impl Fn(u64, u64) -> T) -> Vec<T> {
    let shorter = smaller(down_ms, DUR_MIN_MS).into_iter().map(|d| with(at_ms, d));
    shorter.chain(earlier(at_ms).into_iter().map(|a| with(a, down_ms))).collect()
}

/// Magnitudes toward zero for a signed quantity.
pub fn toward_zero(x: i64) -> Vec<i64> {
    let mut v = Vec::new();
    for c in [0, x / 2] {
        if c.unsigned_abs() < x.unsigned_abs() && !v.contains(&c) {
            v.push(c);
        }
    }
    v
}

/// Narrower windows `(at_ms, dur_ms)`: shorter (end earlier), cut from the
/// start (end kept), then moved earlier.
pub fn windows(at: u64, dur: u64, safety_ms: u64) -> Vec<(u64, u64)> {
    let mut v: Vec<(u64, u64)> = smaller(dur, DUR_MIN_MS).into_iter().map(|d| (at, d)).collect();
    let cut = dur / 2;
    if cut > 0 && dur - cut >= DUR_MIN_MS && at + cut <= safety_ms {
        v.push((at + cut, dur - cut));
    }
    v.extend(earlier(at).into_iter().map(|a| (a, dur)));
    v
}

/// The narrowings of a window with one magnitude (a rate or a latency),
/// for the kinds that have just that: the magnitude smaller (down to 1),
/// then narrower windows ([`windows`]). `with` builds the kind's event
/// from `(at_ms, dur_ms, magnitude)`.
pub fn magnitude_window<T>(
    (at_ms, dur_ms): (u64, u64),
    magnitude: u64,
    safety_ms: u64,
    with: impl Fn(u64, u64, u64) -> T,
) -> Vec<T> {
    let mut v: Vec<T> = smaller(magnitude, 1).into_iter().map(|m| with(at_ms, dur_ms, m)).collect();
    v.extend(windows(at_ms, dur_ms, safety_ms).into_iter().map(|(a, d)| with(a, d, magnitude)));
    v
}

pub fn crash_breadth(disk: CrashMode) -> u64 {
    match disk {
        CrashMode::LoseUnsynced | CrashMode::Torn => 3,
        CrashMode::KeepAll => 2,
    }
}

pub fn action_breadth(a: TriggerAction) -> u64 {
    match a {
        TriggerAction::Crash => 2,
        TriggerAction::Pause | TriggerAction::Stop | TriggerAction::DiskFull => 1,
    }
}

/// How far a re-aimed fault moves, in milliseconds, either way.
pub const SHIFTS_MS: [u64; 7] = [10, 25, 50, 100, 200, 400, 800];
