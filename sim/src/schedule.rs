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
        let p: Profile = toml::from_str(text).map_err(|e| e.to_string().replace('\n', " "))?;
        if p.safety_ms == 0 || p.liveness_ms == 0 {
            return Err("safety_ms and liveness_ms must be positive".into());
        }
        Ok(p)
    }

    /// A name or a path to a TOML file.
    pub fn resolve(spec: &str) -> Result<Profile, String> {
        if let Some(p) = Profile::named(spec) {
            return Ok(p);
        }
        if spec.ends_with(".toml") || std::path::Path::new(spec).exists() {
            let text = std::fs::read_to_string(spec).map_err(|e| format!("cannot read profile file {spec}: {e}"))?;
            return Profile::from_toml(&text).map_err(|e| format!("bad profile file {spec}: {e}"));
        }
        Err(format!("unknown profile '{spec}' (expected one of {} or a .toml file)", PROFILE_NAMES.join(", ")))
    }
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
    fn schedules_serialize() {
        let s = generate(3, &Profile::named("chaos").unwrap(), 3);
        let j = serde_json::to_string(&s).unwrap();
        let back: Schedule = serde_json::from_str(&j).unwrap();
        assert_eq!(s, back);
    }
}
