//! Fault schedules: plain serde data derived from (seed, profile), so that a
//! schedule can be saved, replayed, edited and shrunk. Profiles compose fault
//! kinds the way FoundationDB composes workloads with `RandomClogging` and
//! `Attrition`; `chaos` is swarm testing: each seed switches on a random
//! subset of the kinds at random intensities.

use crate::disk::CrashMode;
use crate::rng::{SimRng, Stream};
use exactsim_engine::observe::FaultPoint;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultEvent {
    /// Kill `node` at `at_ms`, restart it `down_ms` later.
    Crash {
        at_ms: u64,
        node: String,
        down_ms: u64,
        disk: CrashMode,
    },
    /// Kill `node` (any node if `None`) the `nth` time it reaches `point`.
    CrashAtPoint {
        point: FaultPoint,
        node: Option<String>,
        nth: u32,
        down_ms: u64,
        disk: CrashMode,
    },
    /// Cut the link between `a` and `b` (only `a -> b` if `one_way`).
    Partition {
        at_ms: u64,
        dur_ms: u64,
        a: String,
        b: String,
        one_way: bool,
    },
    /// Cut every link of `node`.
    Isolate {
        at_ms: u64,
        dur_ms: u64,
        node: String,
    },
    PacketLoss {
        at_ms: u64,
        dur_ms: u64,
        permille: u32,
    },
    /// Network latency raised to up to `latency_ms` for a window.
    Latency {
        at_ms: u64,
        dur_ms: u64,
        latency_ms: u64,
    },
    SlowDisk {
        at_ms: u64,
        dur_ms: u64,
        node: String,
        latency_ms: u64,
    },
    DiskErrors {
        at_ms: u64,
        dur_ms: u64,
        node: String,
        permille: u32,
    },
    CorruptReads {
        at_ms: u64,
        dur_ms: u64,
        node: String,
        permille: u32,
    },
}

impl FaultEvent {
    pub fn kind(&self) -> &'static str {
        match self {
            FaultEvent::Crash { .. } => "crash",
            FaultEvent::CrashAtPoint { .. } => "crash_at_point",
            FaultEvent::Partition { .. } => "partition",
            FaultEvent::Isolate { .. } => "isolate",
            FaultEvent::PacketLoss { .. } => "packet_loss",
            FaultEvent::Latency { .. } => "latency",
            FaultEvent::SlowDisk { .. } => "slow_disk",
            FaultEvent::DiskErrors { .. } => "disk_errors",
            FaultEvent::CorruptReads { .. } => "corrupt_reads",
        }
    }

    /// When the fault begins (fault-point crashes: 0, they wait for the point).
    pub fn at_ms(&self) -> u64 {
        match self {
            FaultEvent::Crash { at_ms, .. }
            | FaultEvent::Partition { at_ms, .. }
            | FaultEvent::Isolate { at_ms, .. }
            | FaultEvent::PacketLoss { at_ms, .. }
            | FaultEvent::Latency { at_ms, .. }
            | FaultEvent::SlowDisk { at_ms, .. }
            | FaultEvent::DiskErrors { at_ms, .. }
            | FaultEvent::CorruptReads { at_ms, .. } => *at_ms,
            FaultEvent::CrashAtPoint { .. } => 0,
        }
    }

    pub fn describe(&self) -> String {
        serde_json::to_string(self).expect("serializable")
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// Faults happen in `[0, safety_ms)`; then everything heals.
    pub safety_ms: u64,
    /// After healing, the job must finish within this much simulated time.
    pub liveness_ms: u64,
    pub events: Vec<FaultEvent>,
}

/// Which fault kinds a profile injects and how hard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    #[serde(default)]
    pub crash: u32,
    #[serde(default)]
    pub crash_at_point: u32,
    #[serde(default)]
    pub partition: u32,
    #[serde(default)]
    pub packet_loss: u32,
    #[serde(default)]
    pub latency: u32,
    #[serde(default)]
    pub slow_disk: u32,
    #[serde(default)]
    pub disk_errors: u32,
    #[serde(default)]
    pub corrupt_reads: u32,
    /// Crash disk modes: lose unsynced writes / torn writes (else keep all).
    #[serde(default)]
    pub lose_unsynced: bool,
    #[serde(default)]
    pub torn_writes: bool,
    /// Swarm testing: per seed, keep a random subset of the kinds above at
    /// random intensities up to the numbers given.
    #[serde(default)]
    pub swarm: bool,
    #[serde(default = "default_safety_ms")]
    pub safety_ms: u64,
    #[serde(default = "default_liveness_ms")]
    pub liveness_ms: u64,
}

fn default_safety_ms() -> u64 {
    1_500
}
fn default_liveness_ms() -> u64 {
    30_000
}

pub const PROFILE_NAMES: [&str; 6] = ["none", "crash", "partition", "slow-disk", "disk", "chaos"];

impl Profile {
    fn base(name: &str) -> Profile {
        Profile {
            name: name.into(),
            crash: 0,
            crash_at_point: 0,
            partition: 0,
            packet_loss: 0,
            latency: 0,
            slow_disk: 0,
            disk_errors: 0,
            corrupt_reads: 0,
            lose_unsynced: false,
            torn_writes: false,
            swarm: false,
            safety_ms: default_safety_ms(),
            liveness_ms: default_liveness_ms(),
        }
    }

    /// A built-in profile by name.
    pub fn named(name: &str) -> Option<Profile> {
        let mut p = Profile::base(name);
        match name {
            "none" => {}
            "crash" => {
                p.crash = 3;
                p.crash_at_point = 2;
                p.lose_unsynced = true;
            }
            "partition" => {
                p.partition = 3;
                p.packet_loss = 1;
                p.latency = 1;
            }
            "slow-disk" => {
                p.slow_disk = 3;
                p.crash = 1;
            }
            "disk" => {
                p.crash = 2;
                p.crash_at_point = 1;
                p.disk_errors = 2;
                p.corrupt_reads = 2;
                p.lose_unsynced = true;
                p.torn_writes = true;
            }
            "chaos" => {
                p.crash = 3;
                p.crash_at_point = 2;
                p.partition = 2;
                p.packet_loss = 1;
                p.latency = 1;
                p.slow_disk = 2;
                p.disk_errors = 1;
                p.corrupt_reads = 1;
                p.lose_unsynced = true;
                p.torn_writes = true;
                p.swarm = true;
            }
            _ => return None,
        }
        Some(p)
    }

    /// A profile from a TOML file's text.
    pub fn from_toml(text: &str) -> Result<Profile, String> {
        let p: Profile = toml::from_str(text).map_err(|e| one_line(&e.to_string()))?;
        p.validate()?;
        Ok(p)
    }

    /// A name or a path to a TOML file.
    pub fn resolve(spec: &str) -> Result<Profile, String> {
        if let Some(p) = Profile::named(spec) {
            return Ok(p);
        }
        if spec.ends_with(".toml") || std::path::Path::new(spec).exists() {
            let text = read_text_capped(std::path::Path::new(spec), PROFILE_BYTES_MAX)
                .map_err(|e| format!("cannot read profile file {spec}: {e}"))?;
            return Profile::from_toml(&text).map_err(|e| format!("bad profile file {spec}: {e}"));
        }
        Err(format!("unknown profile '{spec}' (expected one of {} or a .toml file)", PROFILE_NAMES.join(", ")))
    }
}

/// Largest profile file read.
pub const PROFILE_BYTES_MAX: u64 = 1 << 20;

/// Read a UTF-8 text file of at most `max` bytes (a device such as
/// `/dev/zero` passed by mistake must not fill the memory).
pub fn read_text_capped(path: &std::path::Path, max: u64) -> Result<String, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    f.take(max + 1).read_to_end(&mut buf).map_err(|e| e.to_string())?;
    if buf.len() as u64 > max {
        return Err(format!("larger than {max} bytes"));
    }
    String::from_utf8(buf).map_err(|_| "not UTF-8 text".to_string())
}

/// An error message folded onto one line.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub fn node_names(workers: u32) -> Vec<String> {
    let mut v = vec!["coordinator".to_string(), "broker".to_string(), "store".to_string()];
    v.extend((0..workers).map(|i| format!("worker-{i}")));
    v
}

pub const DISK_NODES: [&str; 3] = ["coordinator", "broker", "store"];

/// Derive the schedule of a run from its seed and profile.
pub fn generate(seed: u64, profile: &Profile, workers: u32) -> Schedule {
    let mut rng = SimRng::derive(seed, Stream::Faults);
    let mut swarm = SimRng::derive(seed, Stream::Swarm);
    let count = |max: u32, rng_sw: &mut SimRng| -> u32 {
        if max == 0 {
            0
        } else if profile.swarm {
            if rng_sw.chance(1, 2) {
                rng_sw.range(1, max as u64) as u32
            } else {
                0
            }
        } else {
            max
        }
    };
    let n_crash = count(profile.crash, &mut swarm);
    let n_point = count(profile.crash_at_point, &mut swarm);
    let n_part = count(profile.partition, &mut swarm);
    let n_loss = count(profile.packet_loss, &mut swarm);
    let n_lat = count(profile.latency, &mut swarm);
    let n_slow = count(profile.slow_disk, &mut swarm);
    let n_err = count(profile.disk_errors, &mut swarm);
    let n_corrupt = count(profile.corrupt_reads, &mut swarm);
    let lose = profile.lose_unsynced && (!profile.swarm || swarm.chance(2, 3));
    let torn = profile.torn_writes && (!profile.swarm || swarm.chance(1, 2));

    let nodes = node_names(workers);
    let horizon = profile.safety_ms;
    let mut events = Vec::new();
    let disk_mode = |rng: &mut SimRng| -> CrashMode {
        match (lose, torn) {
            (_, true) if rng.chance(1, 2) => CrashMode::Torn,
            (true, _) => CrashMode::LoseUnsynced,
            _ => CrashMode::KeepAll,
        }
    };
    for _ in 0..n_crash {
        let at_ms = rng.range(50, horizon.saturating_sub(100).max(60));
        let node = rng.pick(&nodes).clone();
        let down_ms = rng.range(20, 400);
        let disk = disk_mode(&mut rng);
        events.push(FaultEvent::Crash { at_ms, node, down_ms, disk });
    }
    for _ in 0..n_point {
        let point = *rng.pick(&FaultPoint::ALL);
        let nth = rng.range(1, 4) as u32;
        let down_ms = rng.range(20, 300);
        let disk = disk_mode(&mut rng);
        events.push(FaultEvent::CrashAtPoint { point, node: None, nth, down_ms, disk });
    }
    for _ in 0..n_part {
        let at_ms = rng.range(0, horizon);
        let dur_ms = rng.range(50, 600);
        if rng.chance(1, 3) {
            let node = rng.pick(&nodes).clone();
            events.push(FaultEvent::Isolate { at_ms, dur_ms, node });
        } else {
            let a = rng.pick(&nodes).clone();
            let others: Vec<String> = nodes.iter().filter(|n| **n != a).cloned().collect();
            let b = rng.pick(&others).clone();
            let one_way = rng.chance(1, 3);
            events.push(FaultEvent::Partition { at_ms, dur_ms, a, b, one_way });
        }
    }
    for _ in 0..n_loss {
        let at_ms = rng.range(0, horizon);
        events.push(FaultEvent::PacketLoss { at_ms, dur_ms: rng.range(100, 800), permille: rng.range(20, 300) as u32 });
    }
    for _ in 0..n_lat {
        let at_ms = rng.range(0, horizon);
        events.push(FaultEvent::Latency { at_ms, dur_ms: rng.range(100, 800), latency_ms: rng.range(20, 200) });
    }
    for _ in 0..n_slow {
        let at_ms = rng.range(0, horizon);
        let node = rng.pick(&DISK_NODES).to_string();
        events.push(FaultEvent::SlowDisk { at_ms, dur_ms: rng.range(100, 1000), node, latency_ms: rng.range(20, 300) });
    }
    for _ in 0..n_err {
        let at_ms = rng.range(0, horizon);
        let node = rng.pick(&DISK_NODES).to_string();
        events.push(FaultEvent::DiskErrors {
            at_ms,
            dur_ms: rng.range(50, 500),
            node,
            permille: rng.range(20, 300) as u32,
        });
    }
    for _ in 0..n_corrupt {
        let at_ms = rng.range(0, horizon);
        let node = rng.pick(&DISK_NODES).to_string();
        events.push(FaultEvent::CorruptReads {
            at_ms,
            dur_ms: rng.range(100, 1000),
            node,
            permille: rng.range(50, 500) as u32,
        });
    }
    events.sort_by_key(|e| e.at_ms());
    Schedule { safety_ms: profile.safety_ms, liveness_ms: profile.liveness_ms, events }
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
    /// Highest occurrence number of a fault-point crash.
    pub const NTH_MAX: u32 = 1_000_000;
}

impl Profile {
    /// Check a profile against [`caps`]; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.safety_ms == 0 || self.safety_ms > caps::SAFETY_MS_MAX {
            return Err(format!("safety_ms = {} is out of range (1..={})", self.safety_ms, caps::SAFETY_MS_MAX));
        }
        if self.liveness_ms == 0 || self.liveness_ms > caps::LIVENESS_MS_MAX {
            return Err(format!("liveness_ms = {} is out of range (1..={})", self.liveness_ms, caps::LIVENESS_MS_MAX));
        }
        for (name, n) in [
            ("crash", self.crash),
            ("crash_at_point", self.crash_at_point),
            ("partition", self.partition),
            ("packet_loss", self.packet_loss),
            ("latency", self.latency),
            ("slow_disk", self.slow_disk),
            ("disk_errors", self.disk_errors),
            ("corrupt_reads", self.corrupt_reads),
        ] {
            if n > caps::FAULTS_PER_KIND_MAX {
                return Err(format!("{name} = {n} is more than {} faults per run", caps::FAULTS_PER_KIND_MAX));
            }
        }
        Ok(())
    }
}

impl Schedule {
    /// Check a schedule (from a replay file, or edited by hand) before it
    /// runs: every event names nodes that exist in a run with `workers`
    /// workers and can take the fault, starts inside the safety phase, and
    /// stays within [`caps`]. The error names the event by its index.
    pub fn validate(&self, workers: u32) -> Result<(), String> {
        if self.safety_ms == 0 || self.safety_ms > caps::SAFETY_MS_MAX {
            return Err(format!(
                "schedule.safety_ms = {} is out of range (1..={})",
                self.safety_ms,
                caps::SAFETY_MS_MAX
            ));
        }
        if self.liveness_ms == 0 || self.liveness_ms > caps::LIVENESS_MS_MAX {
            return Err(format!(
                "schedule.liveness_ms = {} is out of range (1..={})",
                self.liveness_ms,
                caps::LIVENESS_MS_MAX
            ));
        }
        if self.events.len() > caps::EVENTS_MAX {
            return Err(format!("schedule has {} events (at most {})", self.events.len(), caps::EVENTS_MAX));
        }
        let nodes = node_names(workers);
        for (i, e) in self.events.iter().enumerate() {
            e.validate(self.safety_ms, &nodes).map_err(|m| format!("schedule event {i} ({}): {m}", e.kind()))?;
        }
        Ok(())
    }
}

impl FaultEvent {
    fn validate(&self, safety_ms: u64, nodes: &[String]) -> Result<(), String> {
        let node = |n: &str| -> Result<(), String> {
            if nodes.iter().any(|x| x == n) {
                Ok(())
            } else {
                Err(format!("no node '{n}' in this run (nodes: {})", nodes.join(", ")))
            }
        };
        let disk_node = |n: &str| -> Result<(), String> {
            node(n)?;
            if DISK_NODES.contains(&n) {
                Ok(())
            } else {
                Err(format!("node '{n}' has no disk (disk nodes: {})", DISK_NODES.join(", ")))
            }
        };
        // An event at exactly `safety_ms` is accepted (generated schedules
        // hold some) but never starts: the liveness phase heals everything
        // at that instant.
        let window = |at_ms: u64, dur_ms: u64| -> Result<(), String> {
            if at_ms > safety_ms {
                return Err(format!("at_ms = {at_ms} is after the safety phase (0..={safety_ms})"));
            }
            if dur_ms == 0 || dur_ms > caps::DURATION_MS_MAX {
                return Err(format!("dur_ms = {dur_ms} is out of range (1..={})", caps::DURATION_MS_MAX));
            }
            Ok(())
        };
        let permille = |p: u32| -> Result<(), String> {
            if p > caps::PERMILLE_MAX {
                Err(format!("permille = {p} is more than {}", caps::PERMILLE_MAX))
            } else {
                Ok(())
            }
        };
        let latency = |l: u64| -> Result<(), String> {
            if l > caps::LATENCY_MS_MAX {
                Err(format!("latency_ms = {l} is more than {}", caps::LATENCY_MS_MAX))
            } else {
                Ok(())
            }
        };
        let down = |d: u64| -> Result<(), String> {
            if d > caps::DURATION_MS_MAX {
                Err(format!("down_ms = {d} is more than {}", caps::DURATION_MS_MAX))
            } else {
                Ok(())
            }
        };
        match self {
            FaultEvent::Crash { at_ms, node: n, down_ms, .. } => {
                if *at_ms > safety_ms {
                    return Err(format!("at_ms = {at_ms} is after the safety phase (0..={safety_ms})"));
                }
                node(n)?;
                down(*down_ms)
            }
            FaultEvent::CrashAtPoint { node: n, nth, down_ms, .. } => {
                if let Some(n) = n {
                    node(n)?;
                }
                if *nth == 0 || *nth > caps::NTH_MAX {
                    return Err(format!("nth = {nth} is out of range (1..={})", caps::NTH_MAX));
                }
                down(*down_ms)
            }
            FaultEvent::Partition { at_ms, dur_ms, a, b, .. } => {
                window(*at_ms, *dur_ms)?;
                node(a)?;
                node(b)?;
                if a == b {
                    return Err(format!("a partition needs two different nodes (both are '{a}')"));
                }
                Ok(())
            }
            FaultEvent::Isolate { at_ms, dur_ms, node: n } => {
                window(*at_ms, *dur_ms)?;
                node(n)
            }
            FaultEvent::PacketLoss { at_ms, dur_ms, permille: p } => {
                window(*at_ms, *dur_ms)?;
                permille(*p)
            }
            FaultEvent::Latency { at_ms, dur_ms, latency_ms } => {
                window(*at_ms, *dur_ms)?;
                latency(*latency_ms)
            }
            FaultEvent::SlowDisk { at_ms, dur_ms, node: n, latency_ms } => {
                window(*at_ms, *dur_ms)?;
                disk_node(n)?;
                latency(*latency_ms)
            }
            FaultEvent::DiskErrors { at_ms, dur_ms, node: n, permille: p }
            | FaultEvent::CorruptReads { at_ms, dur_ms, node: n, permille: p } => {
                window(*at_ms, *dur_ms)?;
                disk_node(n)?;
                permille(*p)
            }
        }
    }
}

/// Count of events per kind.
pub fn kinds(s: &Schedule) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for e in &s.events {
        *m.entry(e.kind().to_string()).or_insert(0) += 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_profiles_and_determinism() {
        for name in PROFILE_NAMES {
            let p = Profile::named(name).unwrap();
            let a = generate(7, &p, 3);
            let b = generate(7, &p, 3);
            assert_eq!(a, b, "{name}: same seed, same schedule");
            if name == "none" {
                assert!(a.events.is_empty());
            }
        }
        assert!(Profile::named("bogus").is_none());
        assert!(Profile::resolve("bogus").unwrap_err().contains("unknown profile"));
    }

    #[test]
    fn toml_profile_roundtrip_and_errors() {
        let p = Profile::from_toml("name = \"gate\"\ncrash = 2\npartition = 1\nlose_unsynced = true\n").unwrap();
        assert_eq!(p.crash, 2);
        assert!(!generate(1, &p, 3).events.is_empty());
        assert!(Profile::from_toml("name = \"x\"\ncrahs = 2\n").is_err());
    }

    #[test]
    fn generated_schedules_pass_validation() {
        let harsh = Profile::from_toml(
            "name = \"h\"\ncrash = 8\ncrash_at_point = 6\npartition = 6\npacket_loss = 3\nlatency = 3\nslow_disk = 4\ndisk_errors = 3\ncorrupt_reads = 3\nsafety_ms = 3000\n",
        )
        .unwrap();
        for seed in 0..300 {
            for p in PROFILE_NAMES.iter().map(|n| Profile::named(n).unwrap()).chain([harsh.clone()]) {
                for workers in 2..=4 {
                    let s = generate(seed, &p, workers);
                    assert_eq!(s.validate(workers), Ok(()), "seed {seed} profile {}", p.name);
                }
            }
        }
    }

    #[test]
    fn validation_names_the_problem() {
        let ok = |events: Vec<FaultEvent>| Schedule { safety_ms: 1_000, liveness_ms: 5_000, events };
        let err = |s: Schedule| s.validate(3).unwrap_err();
        let crash = |node: &str, at_ms: u64| FaultEvent::Crash {
            at_ms,
            node: node.into(),
            down_ms: 10,
            disk: CrashMode::KeepAll,
        };
        assert!(err(ok(vec![crash("worker-3", 5)])).contains("no node 'worker-3'"));
        assert!(err(ok(vec![crash("broker", 1_001)])).contains("after the safety phase"));
        assert_eq!(ok(vec![crash("worker-2", 1_000)]).validate(3), Ok(()));
        let slow = FaultEvent::SlowDisk { at_ms: 0, dur_ms: 10, node: "worker-0".into(), latency_ms: 5 };
        assert!(err(ok(vec![slow])).contains("has no disk"));
        let loss = FaultEvent::PacketLoss { at_ms: 0, dur_ms: 10, permille: 5_000 };
        assert!(err(ok(vec![loss])).contains("permille = 5000"));
        let part = FaultEvent::Partition { at_ms: 0, dur_ms: 10, a: "store".into(), b: "store".into(), one_way: false };
        assert!(err(ok(vec![part])).contains("two different nodes"));
        let long = FaultEvent::Isolate { at_ms: 0, dur_ms: u64::MAX, node: "store".into() };
        assert!(err(ok(vec![long])).contains("dur_ms"));
        let point = FaultEvent::CrashAtPoint {
            point: FaultPoint::ALL[0],
            node: None,
            nth: 0,
            down_ms: 5,
            disk: CrashMode::KeepAll,
        };
        assert!(err(ok(vec![point])).contains("nth = 0"));
        assert!(err(Schedule { safety_ms: 0, liveness_ms: 1, events: vec![] }).contains("safety_ms"));
        assert!(err(Schedule { safety_ms: 1, liveness_ms: u64::MAX, events: vec![] }).contains("liveness_ms"));
        assert!(Profile::from_toml("name = \"x\"\ncrash = 4294967295\n").unwrap_err().contains("crash = 4294967295"));
        assert!(Profile::from_toml("name = \"x\"\nsafety_ms = 0\n").unwrap_err().contains("safety_ms"));
    }

    #[test]
    fn schedules_serialize() {
        let s = generate(3, &Profile::named("chaos").unwrap(), 3);
        let j = serde_json::to_string(&s).unwrap();
        let back: Schedule = serde_json::from_str(&j).unwrap();
        assert_eq!(s, back);
    }
}
