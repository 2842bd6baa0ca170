//! The network and clock windows of a real-mode run: what the supervisor
//! opens (`src/real/player.rs`, `Kernel::open`) reaches the node processes
//! through one control file in the run directory ([`control_file`],
//! written whole: temporary name, then rename), and each process obeys it:
//! its send hook asks [`NodeFaults::decide`] about every message it sends
//! (now, later or never), its observer answers the clock seam from
//! [`NodeFaults::reading`].
//!
//! Runtime-free (both builds, tested as data): the process
//! (`process.rs`) only reads the file, passes what it read to
//! [`NodeFaults::install`], and logs the proofs that a window landed.
//!
//! What each window does, on the messages between engine nodes only (the
//! harness's reader and final read are not engine nodes; messages to them
//! are never touched), decided by the sender:
//! - `Cut {a, b, one_way}`: `a` drops what it sends to `b`; `b` what it
//!   sends to `a`, unless one way.
//! - `Isolate {node}`: `node` drops everything it sends, every other node
//!   what it sends to `node`.
//! - `Loss {permille}`: every sender drops that share of its messages, at
//!   random (the largest open loss counts, as in simulation).
//! - `Latency {latency_ms}`: every message leaves up to that much later
//!   (the largest open latency).
//! - `Late {from, to, delay_ms, count}`: the next `count` requests and
//!   control messages `from` sends (to `to` only, if given; the
//!   simulator's filter, [`Msg::may_be_held`]) leave `delay_ms` late. The
//!   count holds across restarts of `from`: each held message claims one
//!   of the window's `count` slots (the process claims them by creating
//!   files, as fault-point crash rules are claimed).
//! - `Clock {node, offset_ms, drift_permille}`: `node`'s wall clock steps
//!   by the offset and its clocks drift, as the simulator's
//!   ([`exactsim_model::clocks`]); overlapping skews add up.
//!
//! A decision is taken once, when the message is sent: a message held
//! back is not dropped by a partition that opens meanwhile (in simulation
//! it would be).

use exactsim_engine::clock::ClockReading;
use exactsim_engine::net::Sending;
use exactsim_engine::proto::Msg;
use exactsim_model::clocks::{compose, ClockModel};
use exactsim_model::faults::late_delivery::held_detail;
use exactsim_model::faults::Window;
use exactsim_model::rng::SimRng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The control file of a run: the windows open now.
pub fn control_file(run_dir: &Path) -> PathBuf {
    run_dir.join("control.json")
}

/// How many times the supervisor redeployed the job (the fault kind
/// `redeploy`): a coordinator process starts as run `JobConfig::run` plus
/// this, as a new submission of the job would name it. Absent: none.
pub fn redeploys_file(run_dir: &Path) -> PathBuf {
    run_dir.join("redeploys")
}

/// The redeploys so far ([`redeploys_file`]; 0 when absent or unreadable).
pub fn redeploys(run_dir: &Path) -> u64 {
    std::fs::read_to_string(redeploys_file(run_dir)).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

/// Record `n` redeploys, whole (written aside, then renamed).
pub fn set_redeploys(run_dir: &Path, n: u64) -> std::io::Result<()> {
    let tmp = run_dir.join("redeploys.tmp");
    std::fs::write(&tmp, format!("{n}\n"))?;
    std::fs::rename(tmp, redeploys_file(run_dir))
}

/// The parallelism the supervisor rescaled the job to (the fault kind
/// `rescale`): a coordinator process deploys the job with it. Absent: the
/// submission's (`JobConfig::parallelism`).
pub fn parallelism_file(run_dir: &Path) -> PathBuf {
    run_dir.join("parallelism")
}

/// The parallelism a rescale asked for ([`parallelism_file`]), if any.
pub fn parallelism(run_dir: &Path) -> Option<u32> {
    std::fs::read_to_string(parallelism_file(run_dir)).ok().and_then(|s| s.trim().parse().ok())
}

/// Record a rescale to `p` subtasks, whole (written aside, then renamed).
pub fn set_parallelism(run_dir: &Path, p: u32) -> std::io::Result<()> {
    let tmp = run_dir.join("parallelism.tmp");
    std::fs::write(&tmp, format!("{p}\n"))?;
    std::fs::rename(tmp, parallelism_file(run_dir))
}

/// The file whose exclusive creation claims slot `k` of late-delivery
/// window `index` (one held message per slot, across restarts).
pub fn late_claim_file(run_dir: &Path, index: usize, k: u32) -> PathBuf {
    run_dir.join("claims").join(format!("late-{index}-{k}"))
}

/// A network or clock window, owned: the control file's form of
/// [`Window`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetWindow {
    Cut { a: String, b: String, one_way: bool },
    Isolate { node: String },
    Loss { permille: u32 },
    Latency { latency_ms: u64 },
    Late { from: String, to: Option<String>, delay_ms: u64, count: u32 },
    Clock { node: String, offset_ms: i64, drift_permille: i32 },
}

impl NetWindow {
    /// The owned form of a network or clock window; `None` for a disk
    /// window (real mode has no fault-injecting file system).
    pub fn of(w: &Window) -> Option<NetWindow> {
        Some(match *w {
            Window::Cut { a, b, one_way } => NetWindow::Cut { a: a.into(), b: b.into(), one_way },
            Window::Isolate { node } => NetWindow::Isolate { node: node.into() },
            Window::Loss { permille } => NetWindow::Loss { permille },
            Window::Latency { latency_ms } => NetWindow::Latency { latency_ms },
            Window::Late { from, to, delay_ms, count } => {
                NetWindow::Late { from: from.into(), to: to.map(Into::into), delay_ms, count }
            }
            Window::Clock { node, offset_ms, drift_permille } => {
                NetWindow::Clock { node: node.into(), offset_ms, drift_permille }
            }
            Window::SlowDisk { .. } | Window::DiskErrors { .. } | Window::CorruptReads { .. } => return None,
        })
    }

    /// Which nodes it is about, for what was played: `a->b`, `a<->b`, a
    /// node, or `network`.
    pub fn label(&self) -> String {
        match self {
            NetWindow::Cut { a, b, one_way: true } => format!("{a}->{b}"),
            NetWindow::Cut { a, b, one_way: false } => format!("{a}<->{b}"),
            NetWindow::Isolate { node } | NetWindow::Clock { node, .. } => node.clone(),
            NetWindow::Late { from, .. } => from.clone(),
            NetWindow::Loss { .. } | NetWindow::Latency { .. } => "network".into(),
        }
    }

    /// Whether `node` has a part in it: an end of a cut, the isolated or
    /// skewed node, the sender of late messages; every node for loss and
    /// latency. (Every node obeys an isolation: it drops what it sends to
    /// the isolated node.)
    fn concerns(&self, node: &str) -> bool {
        match self {
            NetWindow::Cut { a, b, .. } => a == node || b == node,
            NetWindow::Isolate { node: n } | NetWindow::Clock { node: n, .. } => n == node,
            NetWindow::Late { from, .. } => from == node,
            NetWindow::Loss { .. } | NetWindow::Latency { .. } => true,
        }
    }
}

/// One open window: its index in the schedule, its kind's name (the
/// history's), the window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenWindow {
    pub index: usize,
    pub kind: String,
    pub window: NetWindow,
}

/// The control file's content: the windows open now, in the order they
/// opened. `version` grows with every write.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Control {
    pub version: u64,
    pub windows: Vec<OpenWindow>,
}

/// Proof that a window landed on this node: the first time the node
/// applied it, or the first message it dropped or held back under it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proof {
    pub index: usize,
    pub kind: String,
    pub what: String,
}

/// What becomes of one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub sending: Sending,
    /// The first message this node dropped or held back under a window.
    pub proof: Option<Proof>,
    /// A message held by a late-delivery window: the detail of the
    /// `FaultStarted` it lands as ([`held_detail`]).
    pub held: Option<String>,
}

impl Decision {
    fn now() -> Decision {
        Decision { sending: Sending::Now, proof: None, held: None }
    }
}

/// What one node process obeys: the open windows, its clocks, and what it
/// has shown of them.
pub struct NodeFaults {
    me: String,
    /// Engine nodes by address; anything else is never touched.
    names: BTreeMap<SocketAddr, String>,
    version: Option<u64>,
    windows: Vec<OpenWindow>,
    /// Per late-delivery window, the next slot to claim.
    late_next: BTreeMap<usize, u32>,
    /// Windows whose installation was shown.
    installed: BTreeSet<usize>,
    /// Windows that dropped or held a message here (shown once each).
    acted: BTreeSet<usize>,
    rng: SimRng,
    clock: ClockModel,
}

impl NodeFaults {
    /// Node `me`, with the engine nodes' addresses; its random draws (loss,
    /// latency) come from `seed` (the run's, mixed with the node's name).
    pub fn new(me: &str, names: BTreeMap<SocketAddr, String>, seed: u64) -> NodeFaults {
        let salt = exactsim_model::history::fnv1a(exactsim_model::history::FNV_OFFSET, me.as_bytes());
        NodeFaults {
            me: me.to_string(),
            names,
            version: None,
            windows: Vec::new(),
            late_next: BTreeMap::new(),
            installed: BTreeSet::new(),
            acted: BTreeSet::new(),
            rng: SimRng::new(seed ^ salt),
            clock: ClockModel::default(),
        }
    }

    /// Obey `control`, read at `t_us` (the process's clock): a skew takes
    /// effect from `t_us` on, the monotonic clock going on from what it
    /// reads then. Returns the windows this node has a part in that it
    /// had not applied before. A control file already obeyed changes
    /// nothing.
    pub fn install(&mut self, control: Control, t_us: u64) -> Vec<Proof> {
        if self.version == Some(control.version) {
            return Vec::new();
        }
        self.version = Some(control.version);
        self.windows = control.windows;
        let open: BTreeSet<usize> = self.windows.iter().map(|w| w.index).collect();
        self.late_next.retain(|i, _| open.contains(i));
        let me = self.me.clone();
        let skews = self.windows.iter().filter_map(|w| match &w.window {
            NetWindow::Clock { node, offset_ms, drift_permille } if *node == me => Some((*offset_ms, *drift_permille)),
            _ => None,
        });
        let (rate, offset_us) = compose(skews);
        if self.clock.setting() != (rate, offset_us) {
            self.clock.set(t_us, rate, offset_us);
        }
        let mut proofs = Vec::new();
        for w in &self.windows {
            if w.window.concerns(&self.me) && self.installed.insert(w.index) {
                let what = match &w.window {
                    NetWindow::Clock { .. } => {
                        format!("clocks skewed: rate {rate} permille, wall offset {} ms", offset_us / 1000)
                    }
                    _ => format!("window applied ({})", w.window.label()),
                };
                proofs.push(Proof { index: w.index, kind: w.kind.clone(), what });
            }
        }
        proofs
    }

    /// The node's clocks at `t_us` (the process's clock, µs since the
    /// run's start); the wall clock as a date since the Unix epoch, with
    /// `origin_unix_us` the run's start.
    pub fn reading(&self, t_us: u64, origin_unix_us: u64) -> ClockReading {
        let r = self.clock.reading(t_us);
        ClockReading { wall_us: r.wall_us.saturating_add(origin_unix_us as i64), ..r }
    }

    /// What becomes of `msg`, sent by this node to `dst`. `claim(index, k)`
    /// claims slot `k` of late-delivery window `index` (false: taken
    /// before, by an earlier incarnation of this node).
    pub fn decide(&mut self, dst: SocketAddr, msg: &Msg, mut claim: impl FnMut(usize, u32) -> bool) -> Decision {
        if self.windows.is_empty() {
            return Decision::now();
        }
        let Some(to) = self.names.get(&dst) else { return Decision::now() };
        let me = self.me.as_str();
        let cut = self.windows.iter().find(|w| match &w.window {
            NetWindow::Cut { a, b, one_way } => (a == me && b == to) || (!one_way && b == me && a == to),
            NetWindow::Isolate { node } => node == me || node == to,
            _ => false,
        });
        if let Some(w) = cut {
            let (index, kind) = (w.index, w.kind.clone());
            return self.acted(index, kind, Sending::Drop, format!("dropped a message to {to}"), None);
        }
        let loss = self
            .windows
            .iter()
            .filter_map(|w| match w.window {
                NetWindow::Loss { permille } if permille > 0 => Some((permille, w.index, &w.kind)),
                _ => None,
            })
            .max_by_key(|x| x.0);
        if let Some((permille, index, kind)) = loss {
            let kind = kind.clone();
            if self.rng.below(1000) < u64::from(permille) {
                return self.acted(index, kind, Sending::Drop, format!("lost a message to {to}"), None);
            }
        }
        let latency = self
            .windows
            .iter()
            .filter_map(|w| match w.window {
                NetWindow::Latency { latency_ms } if latency_ms > 0 => Some((latency_ms, w.index, w.kind.clone())),
                _ => None,
            })
            .max_by_key(|x| x.0);
        let extra_ms = match &latency {
            Some((ms, ..)) => self.rng.below(ms.saturating_add(1)),
            None => 0,
        };
        if msg.may_be_held() {
            let to = to.clone();
            let rules: Vec<(usize, String, u64, u32)> = self
                .windows
                .iter()
                .filter_map(|w| match &w.window {
                    NetWindow::Late { from, to: only, delay_ms, count }
                        if from == me && only.as_ref().is_none_or(|t| *t == to) =>
                    {
                        Some((w.index, w.kind.clone(), *delay_ms, *count))
                    }
                    _ => None,
                })
                .collect();
            for (index, kind, delay_ms, count) in rules {
                let next = self.late_next.entry(index).or_insert(0);
                let mut got = false;
                while *next < count && !got {
                    got = claim(index, *next);
                    *next += 1;
                }
                if got {
                    let held = held_detail(index, &self.me, Some(&to), msg, delay_ms);
                    let sending = Sending::Later(Duration::from_millis(delay_ms.saturating_add(extra_ms)));
                    let what = format!("held a message to {to} back {delay_ms} ms");
                    return self.acted(index, kind, sending, what, Some(held));
                }
            }
        }
        match latency {
            Some((_, index, kind)) if extra_ms > 0 => {
                let what = format!("delayed a message to {to} by {extra_ms} ms");
                self.acted(index, kind, Sending::Later(Duration::from_millis(extra_ms)), what, None)
            }
            _ => Decision::now(),
        }
    }

    fn acted(&mut self, index: usize, kind: String, sending: Sending, what: String, held: Option<String>) -> Decision {
        let proof = self.acted.insert(index).then_some(Proof { index, kind, what });
        Decision { sending, proof, held }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exactsim_engine::proto::Request;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// coordinator :1, broker :2, store :3, worker-0 :10, worker-1 :11; the
    /// reader (:99) is no engine node.
    fn names() -> BTreeMap<SocketAddr, String> {
        [(1, "coordinator"), (2, "broker"), (3, "store"), (10, "worker-0"), (11, "worker-1")]
            .into_iter()
            .map(|(p, n)| (addr(p), n.to_string()))
            .collect()
    }

    const READER: u16 = 99;

    fn port(name: &str) -> u16 {
        names().iter().find(|(_, n)| *n == name).expect("a node").0.port()
    }

    fn node(me: &str, windows: Vec<(usize, &str, NetWindow)>) -> NodeFaults {
        let mut f = NodeFaults::new(me, names(), 7);
        f.install(control(1, windows), 0);
        f
    }

    fn control(version: u64, windows: Vec<(usize, &str, NetWindow)>) -> Control {
        let windows =
            windows.into_iter().map(|(index, kind, window)| OpenWindow { index, kind: kind.into(), window }).collect();
        Control { version, windows }
    }

    fn req() -> Msg {
        Msg::Req { id: 1, body: Request::ListOpenTxns { prefix: String::new() } }
    }

    fn heartbeat() -> Msg {
        Msg::Heartbeat { worker: 0, attempt: 1, incarnation: 1 }
    }

    fn send(f: &mut NodeFaults, to: &str, msg: &Msg) -> Sending {
        let dst = if to == "reader" { addr(READER) } else { addr(port(to)) };
        f.decide(dst, msg, |_, _| true).sending
    }

    #[test]
    fn nothing_open_sends_everything_now() {
        let mut f = node("broker", vec![]);
        assert_eq!(send(&mut f, "coordinator", &req()), Sending::Now);
    }

    #[test]
    fn a_cut_drops_both_ways_between_its_ends_only() {
        let cut = || NetWindow::Cut { a: "worker-0".into(), b: "broker".into(), one_way: false };
        let mut w0 = node("worker-0", vec![(3, "partition", cut())]);
        assert_eq!(send(&mut w0, "broker", &req()), Sending::Drop);
        assert_eq!(send(&mut w0, "coordinator", &req()), Sending::Now);
        let mut b = node("broker", vec![(3, "partition", cut())]);
        assert_eq!(send(&mut b, "worker-0", &req()), Sending::Drop);
        assert_eq!(send(&mut b, "worker-1", &req()), Sending::Now);
        let mut w1 = node("worker-1", vec![(3, "partition", cut())]);
        assert_eq!(send(&mut w1, "broker", &req()), Sending::Now);
    }

    #[test]
    fn a_one_way_cut_drops_from_a_to_b_only() {
        let cut = || NetWindow::Cut { a: "worker-0".into(), b: "broker".into(), one_way: true };
        assert_eq!(send(&mut node("worker-0", vec![(0, "partition", cut())]), "broker", &req()), Sending::Drop);
        assert_eq!(send(&mut node("broker", vec![(0, "partition", cut())]), "worker-0", &req()), Sending::Now);
    }

    #[test]
    fn an_isolated_node_neither_sends_nor_receives_but_the_reader_is_no_engine_node() {
        let iso = || NetWindow::Isolate { node: "store".into() };
        let mut s = node("store", vec![(1, "isolate", iso())]);
        for to in ["coordinator", "broker", "worker-0"] {
            assert_eq!(send(&mut s, to, &heartbeat()), Sending::Drop, "{to}");
        }
        let mut w = node("worker-1", vec![(1, "isolate", iso())]);
        assert_eq!(send(&mut w, "store", &req()), Sending::Drop);
        assert_eq!(send(&mut w, "broker", &req()), Sending::Now);
        let mut b = node("broker", vec![(1, "isolate", NetWindow::Isolate { node: "broker".into() })]);
        assert_eq!(send(&mut b, "reader", &req()), Sending::Now, "the harness's reader is not cut off");
    }

    #[test]
    fn loss_drops_its_share_at_random() {
        let mut all = node("broker", vec![(2, "packet_loss", NetWindow::Loss { permille: 1000 })]);
        assert!((0..100).all(|_| send(&mut all, "worker-0", &req()) == Sending::Drop));
        let mut half = node("broker", vec![(2, "packet_loss", NetWindow::Loss { permille: 500 })]);
        let lost = (0..1000).filter(|_| send(&mut half, "worker-0", &req()) == Sending::Drop).count();
        assert!((400..600).contains(&lost), "{lost}");
        // The largest open loss counts.
        let mut both = node(
            "broker",
            vec![
                (2, "packet_loss", NetWindow::Loss { permille: 0 }),
                (5, "packet_loss", NetWindow::Loss { permille: 1000 }),
            ],
        );
        let d = both.decide(addr(port("store")), &req(), |_, _| true);
        assert_eq!((d.sending, d.proof.map(|p| p.index)), (Sending::Drop, Some(5)));
    }

    #[test]
    fn latency_holds_messages_up_to_its_bound() {
        let mut f = node("coordinator", vec![(4, "latency", NetWindow::Latency { latency_ms: 30 })]);
        let mut later = 0;
        for _ in 0..200 {
            match send(&mut f, "worker-1", &heartbeat()) {
                Sending::Later(d) => {
                    assert!(d <= Duration::from_millis(30), "{d:?}");
                    later += 1;
                }
                Sending::Now => {}
                Sending::Drop => panic!("latency drops nothing"),
            }
        }
        assert!(later > 150, "{later}");
    }

    #[test]
    fn late_delivery_holds_the_next_count_requests_of_its_sender_to_its_destination() {
        let late = || NetWindow::Late { from: "worker-0".into(), to: Some("broker".into()), delay_ms: 700, count: 2 };
        let mut f = node("worker-0", vec![(6, "late_delivery", late())]);
        // Heartbeats, data and replies are never held; other destinations neither.
        assert_eq!(send(&mut f, "broker", &heartbeat()), Sending::Now);
        assert_eq!(
            send(&mut f, "broker", &Msg::Resp { id: 1, body: exactsim_engine::proto::Response::Ok }),
            Sending::Now
        );
        assert_eq!(send(&mut f, "coordinator", &req()), Sending::Now);
        let d = f.decide(addr(port("broker")), &req(), |_, _| true);
        assert_eq!(d.sending, Sending::Later(Duration::from_millis(700)));
        assert_eq!(d.held.as_deref(), Some(held_detail(6, "worker-0", Some("broker"), &req(), 700).as_str()));
        assert!(d.held.unwrap().contains("\"message\":\"ListOpenTxns\""));
        assert_eq!(d.proof.map(|p| (p.index, p.kind)), Some((6, "late_delivery".to_string())));
        let second = f.decide(addr(port("broker")), &req(), |_, _| true);
        assert_eq!(second.sending, Sending::Later(Duration::from_millis(700)));
        assert_eq!(second.proof, None, "shown once");
        assert!(second.held.is_some(), "every held message lands");
        assert_eq!(send(&mut f, "broker", &req()), Sending::Now, "count used up");
        // Another node is not the sender.
        assert_eq!(send(&mut node("worker-1", vec![(6, "late_delivery", late())]), "broker", &req()), Sending::Now);
    }

    #[test]
    fn a_restarted_sender_holds_only_the_slots_left() {
        let late = || NetWindow::Late { from: "coordinator".into(), to: None, delay_ms: 50, count: 3 };
        let mut taken = BTreeSet::new();
        let mut claim = |i: usize, k: u32| taken.insert((i, k));
        let mut first = node("coordinator", vec![(0, "late_delivery", late())]);
        let d = first.decide(addr(port("worker-0")), &req(), &mut claim);
        assert!(matches!(d.sending, Sending::Later(_)));
        // The node restarts: the slot it used is claimed.
        let mut again = node("coordinator", vec![(0, "late_delivery", late())]);
        let held = (0..5)
            .filter(|_| matches!(again.decide(addr(port("store")), &req(), &mut claim).sending, Sending::Later(_)))
            .count();
        assert_eq!(held, 2);
    }

    #[test]
    fn installing_shows_each_window_a_node_has_a_part_in_once() {
        let mut f = NodeFaults::new("worker-0", names(), 1);
        let cut = NetWindow::Cut { a: "worker-0".into(), b: "broker".into(), one_way: true };
        let other = NetWindow::Cut { a: "worker-1".into(), b: "broker".into(), one_way: true };
        let loss = NetWindow::Loss { permille: 10 };
        let ws = vec![(0, "partition", cut.clone()), (1, "partition", other.clone()), (2, "packet_loss", loss.clone())];
        let proofs = f.install(control(1, ws.clone()), 0);
        assert_eq!(proofs.iter().map(|p| p.index).collect::<Vec<_>>(), vec![0, 2]);
        assert_eq!(proofs[0].what, "window applied (worker-0->broker)");
        assert!(f.install(control(1, ws.clone()), 5).is_empty(), "the same version again");
        assert!(f.install(control(2, ws), 5).is_empty(), "already shown");
        assert!(f.install(control(3, vec![]), 6).is_empty());
        assert_eq!(send(&mut f, "broker", &req()), Sending::Now, "closed");
    }

    #[test]
    fn a_skew_steps_the_wall_clock_and_drifts_without_a_monotonic_jump() {
        let origin = 1_700_000_000_000_000u64;
        let mut f = NodeFaults::new("broker", names(), 1);
        assert_eq!(f.reading(1_000, origin).mono_us, 1_000);
        assert_eq!(f.reading(1_000, origin).wall_us, (origin + 1_000) as i64);
        let skew = NetWindow::Clock { node: "broker".into(), offset_ms: -5_000, drift_permille: 1_000 };
        let proofs = f.install(control(1, vec![(8, "skew", skew)]), 2_000);
        assert_eq!(proofs[0].what, "clocks skewed: rate 2000 permille, wall offset -5000 ms");
        let r = f.reading(2_000, origin);
        assert_eq!((r.mono_us, r.rate_permille), (2_000, 2000));
        assert_eq!(r.wall_us, (origin + 2_000) as i64 - 5_000_000, "stepped back 5 s");
        assert_eq!(f.reading(3_000, origin).mono_us, 4_000, "double speed");
        // Closed: the rate is normal again, the monotonic clock goes on.
        f.install(control(2, vec![]), 3_000);
        let mut last = 0;
        for t in (3_000..10_000).step_by(500) {
            let m = f.reading(t, origin).mono_us;
            assert!(m >= last);
            last = m;
        }
        assert_eq!(
            f.reading(4_000, origin),
            ClockReading { mono_us: 5_000, wall_us: (origin + 5_000) as i64, rate_permille: 1000 }
        );
        // Another node's skew leaves this one alone.
        let mut g = NodeFaults::new("store", names(), 1);
        let skew = NetWindow::Clock { node: "broker".into(), offset_ms: 9, drift_permille: 9 };
        assert!(g.install(control(1, vec![(8, "skew", skew)]), 10).is_empty());
        assert_eq!(g.reading(20, 0).rate_permille, 1000);
    }

    #[test]
    fn windows_convert_from_the_schedules_and_disk_windows_are_not_played() {
        let w = Window::Late { from: "broker", to: None, delay_ms: 5, count: 1 };
        assert_eq!(NetWindow::of(&w), Some(NetWindow::Late { from: "broker".into(), to: None, delay_ms: 5, count: 1 }));
        assert_eq!(NetWindow::of(&Window::SlowDisk { node: "broker", latency_ms: 5 }), None);
        let c =
            control(3, vec![(1, "skew", NetWindow::Clock { node: "store".into(), offset_ms: -1, drift_permille: 2 })]);
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Control>(&text).unwrap(), c);
    }
}
