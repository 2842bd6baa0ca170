//! **The target seam**: the verbs faults act through. The simulated
//! cluster (`sim/src/cluster.rs`) implements every verb; real mode's
//! `Kernel` (`src/real/player.rs`) plays node verbs with the kernel (crash
//! = `kill -9`, restart = spawn, stop = `SIGTERM`, pause = `SIGSTOP` until
//! `SIGCONT`) and network and clock windows through a control file the node
//! processes obey (their send hook and clock seam), and answers `false` to
//! disk windows, which the kind files declare as not played in real mode
//! ([`super::Real`]).

use super::common::CrashMode;

/// How a fault shows in the history: its kind and its detail (the event's
/// JSON), recorded as `FaultStarted` / `FaultEnded`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shown<'a> {
    pub kind: &'a str,
    pub detail: &'a str,
}

/// A network, disk or clock window: data the target interprets. Opened
/// and closed in pairs; overlapping windows compose (the target counts
/// them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Window<'a> {
    /// Messages from `a` to `b` are dropped (and back, unless `one_way`).
    Cut { a: &'a str, b: &'a str, one_way: bool },
    /// Every link of `node` is cut.
    Isolate { node: &'a str },
    /// This share of all messages is lost.
    Loss { permille: u32 },
    /// Messages take up to this long.
    Latency { latency_ms: u64 },
    /// `node`'s disk answers up to `latency_ms` late.
    SlowDisk { node: &'a str, latency_ms: u64 },
    /// `node`'s disk fails this share of its operations.
    DiskErrors { node: &'a str, permille: u32 },
    /// `node`'s disk corrupts this share of its reads.
    CorruptReads { node: &'a str, permille: u32 },
    /// The next `count` requests and control messages `from` sends (to
    /// `to` only, if given) leave `delay_ms` late.
    Late { from: &'a str, to: Option<&'a str>, delay_ms: u64, count: u32 },
    /// `node`'s wall clock steps by `offset_ms`; its clocks run
    /// `drift_permille` faster.
    Clock { node: &'a str, offset_ms: i64, drift_permille: i32 },
}

/// What faults act on. Node verbs answer whether they acted (`false`: the
/// node was not in a state to take it, e.g. already down).
pub trait Target {
    /// Kill `node` now; its disk keeps what `disk` says. `claimed`: whoever
    /// asked (a fault point, a fatal error) already marked the node down, so
    /// it is killed anyway; otherwise a node that is down is left alone.
    fn crash(&mut self, node: &str, cause: &str, disk: CrashMode, claimed: bool) -> bool;
    /// Bring a node that is down back up.
    fn restart(&mut self, node: &str);
    /// Shut `node` down cleanly (everything written survives): recorded as
    /// `shown`, then down.
    fn stop(&mut self, node: &str, shown: &Shown) -> bool;
    /// Submit the job again under a new job identity: the coordinator is
    /// shut down cleanly, and its next start (a `restart`) is a new run of
    /// the job that restores the old run's latest retained checkpoint.
    /// Recorded as `shown`; `false`: not played (the coordinator is down).
    fn redeploy(&mut self, shown: &Shown) -> bool;
    /// Rescale the job: the coordinator is shut down cleanly, and its next
    /// start (a `restart`) deploys the job with `parallelism` subtasks,
    /// restoring the latest retained checkpoint whatever parallelism it was
    /// taken with. Recorded as `shown`; `false`: not played.
    fn rescale(&mut self, parallelism: u32, shown: &Shown) -> bool;
    /// Freeze `node` (a node that is not up is left alone).
    fn pause(&mut self, node: &str, shown: &Shown) -> bool;
    /// Unfreeze a paused node.
    fn resume(&mut self, node: &str, shown: &Shown);
    /// Open window `index` of the schedule; `false`: not playable here.
    fn open(&mut self, index: usize, w: &Window, shown: &Shown) -> bool;
    /// Close window `index`.
    fn close(&mut self, index: usize, w: &Window, shown: &Shown);
    /// Record that a fault started (a predicate fired).
    fn note(&mut self, shown: &Shown);
    /// Close every window: the network, the disks and the clocks are true
    /// again.
    fn heal(&mut self);
}
