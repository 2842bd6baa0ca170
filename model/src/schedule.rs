//! Fault schedules: plain serde data derived from (seed, profile), so that a
//! schedule can be saved, replayed, edited and shrunk. Profiles compose fault
//! kinds the way FoundationDB composes workloads with `RandomClogging` and
//! `Attrition`; `chaos` is swarm testing: each seed switches on a random
//! subset of the kinds at random intensities.

use crate::faults;
use crate::rng::{SimRng, Stream};
use exactsim_engine::config::{JobConfig, SourcePhase};
use exactsim_engine::interval::AdaptiveInterval;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use crate::faults::common::{caps, role_of, validate_trigger, CrashMode, Gen, Targets, TriggerAction, DISK_NODES};
pub use crate::faults::{FaultEvent, FaultKind, KINDS};

/// Kinds a profile sets a count for.
pub fn counted_kinds() -> impl Iterator<Item = &'static FaultKind> {
    KINDS.iter().filter(|k| k.generate.is_some())
}

pub fn kind_named(name: &str) -> Option<&'static FaultKind> {
    KINDS.iter().find(|k| k.name == name)
}

/// The timeline colour of a fault kind (grey if unknown).
pub fn colour(kind: &str) -> &'static str {
    kind_named(kind).map_or("#adb5bd", |k| k.colour)
}

impl FaultEvent {
    /// The declaration of this event's kind.
    pub fn decl(&self) -> &'static FaultKind {
        kind_named(self.kind()).expect("every event kind is declared")
    }

    /// When the fault begins (predicate faults: 0, they wait for the point
    /// or the event).
    pub fn at_ms(&self) -> u64 {
        match self.fault().timing() {
            crate::faults::Timing::At(at_ms) | crate::faults::Timing::Window { at_ms, .. } => at_ms,
            crate::faults::Timing::Predicate => 0,
        }
    }

    /// The window `(at_ms, dur_ms)` of a fault that is active for a while
    /// and then heals; `None` for node faults (their start schedules their
    /// end) and predicate faults.
    pub fn window(&self) -> Option<(u64, u64)> {
        match self.fault().timing() {
            crate::faults::Timing::Window { at_ms, dur_ms } => Some((at_ms, dur_ms)),
            crate::faults::Timing::At(_) | crate::faults::Timing::Predicate => None,
        }
    }

    /// The event as JSON (its serialized form): the detail the history
    /// records.
    pub fn describe(&self) -> String {
        serde_json::to_string(self).expect("serializable")
    }

    /// Check it against a run with these nodes and safety phase.
    fn validate(&self, safety_ms: u64, nodes: &[String]) -> Result<(), String> {
        self.fault().validate(&crate::faults::Check { safety_ms, nodes })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Faults start in `[0, safety_ms)` and last their full length (an
    /// outage may outlast the phase); then everything heals.
    pub safety_ms: u64,
    /// After healing, the job must finish within this much simulated time.
    pub liveness_ms: u64,
    pub events: Vec<FaultEvent>,
}

/// A predicate-triggered fault in a profile (`[[trigger]]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// A node name (`worker-1`), a role (`broker`, `coordinator`, `store`,
    /// `worker`: one worker picked by the seed), or absent: any node.
    #[serde(default)]
    pub node: Option<String>,
    pub event: String,
    #[serde(default = "one")]
    pub nth: u32,
    pub action: TriggerAction,
    pub dur_ms: u64,
}

fn one() -> u32 {
    1
}

/// Which fault kinds a profile injects and how hard: a count per kind
/// (`crash = 3`, `pause = 2`: the keys are the names in [`KINDS`]), the
/// roles each kind may hit (`[targets] pause = ["worker"]`), and
/// predicate-triggered faults (`[[trigger]]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub name: String,
    /// Crash disk modes: lose unsynced writes / torn writes (else keep all).
    #[serde(default)]
    pub lose_unsynced: bool,
    #[serde(default)]
    pub torn_writes: bool,
    /// Swarm testing: per seed, keep a random subset of the kinds at
    /// random intensities up to the numbers given.
    #[serde(default)]
    pub swarm: bool,
    #[serde(default = "default_safety_ms")]
    pub safety_ms: u64,
    #[serde(default = "default_liveness_ms")]
    pub liveness_ms: u64,
    /// Roles (`coordinator`, `broker`, `store`, `worker`) a kind may hit;
    /// a kind not listed hits any node it can.
    #[serde(default)]
    pub targets: BTreeMap<String, Vec<String>>,
    #[serde(default, rename = "trigger")]
    pub triggers: Vec<Trigger>,
    /// Composite faults: this many times per run, a worker cut off from
    /// the coordinator (a one-way partition: its heartbeats and its
    /// acknowledgements are lost while deployments still reach it) long
    /// enough for the coordinator to restart the job, and crashed and
    /// restarted during the cut, after it deployed the new attempt. The
    /// coordinator, still waiting for that worker's acknowledgement,
    /// deploys the same attempt to the restarted worker: two instances of
    /// its sources in one attempt. Drawn as ordinary events (a partition
    /// and a crash), so replay and shrinking treat them as any other.
    #[serde(default)]
    pub silent_restart: u32,
    /// The job's checkpoint interval adapts within these bounds
    /// (`adaptive_interval = { min_ms = 100, max_ms = 2000, replay_records
    /// = 1000 }`: `JobConfig::adaptive_interval`, engine/src/interval.rs);
    /// absent: the seed's fixed interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adaptive_interval: Option<AdaptiveInterval>,
    /// The input arrives in phases, repeated in a cycle (`input_phases =
    /// [{ ms = 300 }, { ms = 600, every_ms = 25 }, { ms = 1200, idle = true
    /// }]`: a burst, a paced stretch, an idle stretch;
    /// `JobConfig::source_phases`); empty: sources read as fast as they can.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_phases: Vec<SourcePhase>,
    /// The adaptive interval and the input phases apply to one run in this
    /// many: those whose seed leaves a remainder of 1 (`adaptive_every =
    /// 4`: seeds 1, 5, 9, ...; 1: every run); absent: every run. Seed 0, the
    /// worked examples' seed, keeps the fixed interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adaptive_every: Option<u64>,
    /// The broker sink pools its transactional ids
    /// (`JobConfig::pooled_txn_ids`, engine/src/txn_pool.rs) in every run
    /// (`txn_pool = "all"`) or in the runs of odd seeds (`"half"`, so one
    /// profile judges both namings); absent: one id per checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txn_pool: Option<TxnPool>,
    /// Incremental checkpoints (`incremental_checkpoints = true`:
    /// `JobConfig::incremental_checkpoints`, engine/src/shared_state.rs):
    /// keyed state in shared files, each checkpoint writing the changed
    /// ones. Off unless a profile says so (`zombie` and the gate
    /// do).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub incremental_checkpoints: bool,
    /// How many completed checkpoints the coordinator retains (K >= 1,
    /// `JobConfig::retained_checkpoints`); absent: the engine's default (2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retained_checkpoints: Option<usize>,
    /// Most faults of each kind per run, by kind name.
    #[serde(flatten)]
    pub counts: BTreeMap<String, u32>,
}

/// Which runs of a profile pool their transactional ids
/// ([`Profile::txn_pool`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TxnPool {
    /// The runs of odd seeds.
    Half,
    /// Every run.
    All,
}

impl TxnPool {
    /// Whether the run of `seed` pools its ids.
    pub fn pools(self, seed: u64) -> bool {
        match self {
            TxnPool::Half => seed % 2 == 1,
            TxnPool::All => true,
        }
    }
}

/// The keys of a profile file besides the fault counts.
pub const PROFILE_FIELDS: [&str; 15] = [
    "name",
    "lose_unsynced",
    "torn_writes",
    "swarm",
    "safety_ms",
    "liveness_ms",
    "targets",
    "trigger",
    "silent_restart",
    "adaptive_interval",
    "input_phases",
    "adaptive_every",
    "txn_pool",
    "incremental_checkpoints",
    "retained_checkpoints",
];

fn default_safety_ms() -> u64 {
    1_500
}
fn default_liveness_ms() -> u64 {
    30_000
}

pub const PROFILE_NAMES: [&str; 16] = [
    "none",
    "crash",
    "partition",
    "slow-disk",
    "disk",
    "chaos",
    "zombie",
    "silent-restart",
    "system-pause",
    "recovery",
    "adaptive",
    "clock",
    "late",
    "broker-disk",
    "redeploy",
    "rescale",
];

/// `rescale`: the job restarted three times a seed with 1 to its workers'
/// number of subtasks (down, then up or further down), so key groups move
/// and removed subtasks' transactions are adopted, over crashes,
/// partitions, zombies (pauses, held-back messages) and incremental
/// checkpoints, with pooled transactional ids on odd seeds.
const RESCALE_TOML: &str = r#"
name = "rescale"
rescale = 3
crash = 1
crash_at_point = 1
partition = 1
packet_loss = 1
pause = 1
late_delivery = 1
skew = 1
lose_unsynced = true
swarm = false
safety_ms = 5000
liveness_ms = 60000
txn_pool = "half"
incremental_checkpoints = true
"#;

/// `redeploy`: the job submitted again under a new job identity once a
/// seed (the coordinator stopped and started as the job's next run, which
/// restores the old run's latest retained checkpoint), over the faults
/// that test what must survive it: zombies of the old run (pauses of the
/// workers and the broker, the workers' messages held back), crashes and
/// partitions, incremental checkpoints and, on odd seeds, pooled
/// transactional ids.
const REDEPLOY_TOML: &str = r#"
name = "redeploy"
redeploy = 1
crash = 1
crash_at_point = 1
partition = 1
packet_loss = 1
pause = 1
late_delivery = 2
skew = 1
stop = 1
lose_unsynced = true
swarm = false
safety_ms = 5000
liveness_ms = 60000
txn_pool = "half"
incremental_checkpoints = true

[targets]
pause = ["broker", "worker"]
late_delivery = ["worker"]
"#;

/// `clock`: three clock faults a seed (wall-clock steps of half to six
/// times the timeout the node's clock decides, drifts from half to double
/// speed), nothing else: the hunting ground of the bugs that read the wrong
/// clock (`skewed-txn-timeout`: about 1 run in 12, against 1 in 100 under
/// `chaos`).
const CLOCK_TOML: &str = r#"
name = "clock"
skew = 3
swarm = false
safety_ms = 1500
"#;

/// `late`: requests and control messages of the workers held back and
/// delivered late, four windows a seed, with a crash and a pause: the
/// hunting ground of a broker that takes what arrives after its
/// transaction ended or its producer was fenced (`kafka-12671-hanging-txn`:
/// about 1 run in 8, against 1 in 125 under the gate).
const LATE_TOML: &str = r#"
name = "late"
late_delivery = 4
crash = 1
pause = 1
swarm = false
safety_ms = 2500
liveness_ms = 60000

[targets]
late_delivery = ["worker"]
"#;

/// `broker-disk`: failed writes and fsyncs on the broker's log, three
/// windows a seed, with a crash and a pause, and its disk full for 1.5 s
/// from its first transaction abort (a recovery's): the hunting ground of
/// a broker whose state outlives a failed log write (`kafka-9666-...`) and
/// of retries that do not back off from a system refusing at once
/// (`retry-without-backoff`).
const BROKER_DISK_TOML: &str = r#"
name = "broker-disk"
disk_errors = 3
crash = 1
pause = 1
swarm = false
safety_ms = 2500
liveness_ms = 60000

[targets]
disk_errors = ["broker"]

[[trigger]]
node = "broker"
event = "TxnAborted"
nth = 1
action = "disk_full"
dur_ms = 1500
"#;

/// `adaptive`: the adaptive checkpoint interval under `chaos`'s faults
/// (swarm testing) but one clock skew at most, on an input that arrives in
/// phases: a burst, a paced stretch, an idle stretch, repeated. One skew:
/// two overlapping slow drifts on a node add up to a clock at 1/1000 of
/// real time, and a sleep begun on it keeps that length past the heal
/// (`Clock::sleep` fixes the real duration when it starts): a worker's
/// 50 ms heartbeat sleep lasts 50 s, the coordinator restarts the job every
/// heartbeat timeout, and a job whose checkpoints are seconds apart never
/// completes one between two restarts (4 of 2,500 at-least-once runs with
/// three skews; `chaos`'s dense fixed intervals still complete one). The
/// bounds are the article's 500 ms
/// to 10 s (1:20) scaled to the simulated job: its minimum is the engine's
/// default fixed interval (100 ms; a seed draws 40 to 150 ms), its maximum
/// about one phase cycle (2 s; a scenario's input lasts one to three
/// cycles). A recovery should replay about 1,000 records (the inputs hold
/// 1,500 to 4,000). Check P15 judges the choices; `mutants` hunts
/// `interval-cost-from-last-ack` with it.
const ADAPTIVE_TOML: &str = r#"
name = "adaptive"
crash = 3
crash_at_point = 2
partition = 2
packet_loss = 1
latency = 1
slow_disk = 2
disk_errors = 1
corrupt_reads = 1
pause = 2
late_delivery = 2
skew = 1
stop = 1
lose_unsynced = true
torn_writes = true
swarm = true
adaptive_interval = { min_ms = 100, max_ms = 2000, replay_records = 1000 }
input_phases = [{ ms = 300 }, { ms = 600, every_ms = 25 }, { ms = 1200, idle = true }]
"#;

/// `recovery` (real mode's default): the fault kinds both backends play
/// (no disk faults, which need a fault-injecting file system), a random
/// subset per seed, and faults aimed at the recovery windows by engine
/// events: the coordinator crashed the instant its second checkpoint
/// completes (before any sink was told to commit it: the restored,
/// pre-committed transactions must be committed by the recovery), and a
/// worker frozen at its third pre-commit. A real run's job lasts a few
/// hundred milliseconds, so a fault drawn at a random time misses windows
/// of a few; aimed ones hit them in every run that gets that far.
const RECOVERY_TOML: &str = r#"
name = "recovery"
crash = 1
crash_at_point = 1
partition = 1
packet_loss = 1
latency = 1
pause = 1
late_delivery = 1
skew = 1
stop = 1
swarm = true
safety_ms = 2500

[[trigger]]
node = "coordinator"
event = "CheckpointCompleted"
nth = 2
action = "crash"
dur_ms = 300

[[trigger]]
node = "worker"
event = "PreCommitted"
nth = 3
action = "pause"
dur_ms = 400
"#;

/// `zombie`: every fault kind in every seed over 5 s, with pauses aimed at
/// the broker and the workers, the workers' messages held back, a worker
/// paused on its second pre-commit and the coordinator crashed on its
/// second completed checkpoint: the stalled processes and late requests
/// that fencing exists for, and a coordinator recovering retained
/// checkpoints. (The PR gate, `ci/gate.toml`, is this profile plus the
/// adaptive interval on one seed in four and a full broker disk.)
const ZOMBIE_TOML: &str = r#"
name = "zombie"
crash = 1
crash_at_point = 1
partition = 2
packet_loss = 1
latency = 1
slow_disk = 1
disk_errors = 1
corrupt_reads = 1
pause = 2
late_delivery = 4
skew = 2
stop = 1
lose_unsynced = true
torn_writes = true
swarm = false
safety_ms = 5000
liveness_ms = 60000
txn_pool = "half"
incremental_checkpoints = true

[targets]
pause = ["broker", "worker"]
late_delivery = ["worker"]

[[trigger]]
node = "worker"
event = "PreCommitted"
nth = 2
action = "pause"
dur_ms = 1500

[[trigger]]
node = "coordinator"
event = "CheckpointCompleted"
nth = 2
action = "crash"
dur_ms = 500
"#;

/// `system-pause`: `zombie` with its pauses aimed at the sink's own system
/// (a database server frozen mid-transaction, with requests queued behind
/// it) and the system paused for 2 s after its second commit: a stalled
/// worker's statements then reach the server after a newer attempt's
/// recovery has looked at it. (`pg-no-fence` is hunted with it.)
fn system_pause_toml() -> String {
    // Without zombie's held-back worker messages, its 5 s window and its
    // coordinator crash: a database server's stall is what this profile
    // is about (`pg-no-fence` is hunted here).
    ZOMBIE_TOML
        .replace("late_delivery = 4\n", "late_delivery = 2\n")
        .replace("safety_ms = 5000\n", "safety_ms = 2500\n")
        .replace("late_delivery = [\"worker\"]\n", "")
        .replace(
            "\n[[trigger]]\nnode = \"coordinator\"\nevent = \"CheckpointCompleted\"\nnth = 2\naction = \"crash\"\ndur_ms = 500\n",
            "",
        )
        .replace(r#"name = "zombie""#, r#"name = "system-pause""#)
        .replace(r#"pause = ["broker", "worker"]"#, r#"pause = ["system"]"#)
        .replace(
            "node = \"worker\"\nevent = \"PreCommitted\"\nnth = 2\naction = \"pause\"\ndur_ms = 1500",
            "node = \"system\"\nevent = \"TxnCommitted\"\nnth = 2\naction = \"pause\"\ndur_ms = 2000",
        )
}

pub const ROLES: [&str; 5] = ["coordinator", "broker", "store", "worker", "system"];

impl Profile {
    fn base(name: &str) -> Profile {
        Profile {
            name: name.into(),
            lose_unsynced: false,
            torn_writes: false,
            swarm: false,
            safety_ms: default_safety_ms(),
            liveness_ms: default_liveness_ms(),
            targets: BTreeMap::new(),
            triggers: Vec::new(),
            silent_restart: 0,
            adaptive_interval: None,
            input_phases: Vec::new(),
            adaptive_every: None,
            txn_pool: None,
            incremental_checkpoints: false,
            retained_checkpoints: None,
            counts: BTreeMap::new(),
        }
    }

    /// How many faults of `kind` the profile asks for.
    pub fn count(&self, kind: &str) -> u32 {
        self.counts.get(kind).copied().unwrap_or(0)
    }

    fn set(&mut self, kinds: &[(&str, u32)]) {
        for (k, n) in kinds {
            self.counts.insert(k.to_string(), *n);
        }
    }

    /// A built-in profile by name.
    pub fn named(name: &str) -> Option<Profile> {
        if name == "zombie" {
            return Some(Profile::from_toml(ZOMBIE_TOML).expect("the built-in zombie profile parses"));
        }
        if name == "adaptive" {
            return Some(Profile::from_toml(ADAPTIVE_TOML).expect("the built-in adaptive profile parses"));
        }
        if name == "recovery" {
            return Some(Profile::from_toml(RECOVERY_TOML).expect("the built-in recovery profile parses"));
        }
        for (n, toml) in [
            ("clock", CLOCK_TOML),
            ("late", LATE_TOML),
            ("broker-disk", BROKER_DISK_TOML),
            ("redeploy", REDEPLOY_TOML),
            ("rescale", RESCALE_TOML),
        ] {
            if name == n {
                return Some(Profile::from_toml(toml).expect("the built-in profiles parse"));
            }
        }
        if name == "system-pause" {
            let p = Profile::from_toml(&system_pause_toml()).expect("the built-in system-pause profile parses");
            assert!(p.triggers.iter().all(|t| t.node.as_deref() == Some("system")));
            return Some(p);
        }
        let mut p = Profile::base(name);
        match name {
            "none" => {}
            // Aimed: only the composite fault that deploys one attempt twice
            // to a worker (see `Profile::silent_restart`); the PR gate runs
            // it beside `ci/gate.toml`, whose broad mix reaches it in about
            // 1 of 2,000 runs.
            "silent-restart" => {
                p.silent_restart = 1;
                p.safety_ms = 2_500;
                p.liveness_ms = 60_000;
            }
            "crash" => {
                p.set(&[("crash", 3), ("crash_at_point", 2)]);
                p.lose_unsynced = true;
            }
            "partition" => p.set(&[("partition", 3), ("packet_loss", 1), ("latency", 1)]),
            "slow-disk" => p.set(&[("slow_disk", 3), ("crash", 1)]),
            "disk" => {
                p.set(&[("crash", 2), ("crash_at_point", 1), ("disk_errors", 2), ("corrupt_reads", 2)]);
                p.lose_unsynced = true;
                p.torn_writes = true;
            }
            "chaos" => {
                p.set(&[
                    ("crash", 3),
                    ("crash_at_point", 2),
                    ("partition", 2),
                    ("packet_loss", 1),
                    ("latency", 1),
                    ("slow_disk", 2),
                    ("disk_errors", 1),
                    ("corrupt_reads", 1),
                    ("pause", 2),
                    ("late_delivery", 2),
                    ("skew", 3),
                    ("stop", 1),
                ]);
                p.lose_unsynced = true;
                p.torn_writes = true;
                p.swarm = true;
                // No incremental checkpoints, no pooled ids: `chaos`'s seeds
                // carry the README's worked examples, corpus cases and
                // snapshot seeds; `zombie` and the gate run both.
            }
            _ => return None,
        }
        Some(p)
    }

    /// A profile from a TOML file's text.
    pub fn from_toml(text: &str) -> Result<Profile, String> {
        // The fault counts are a flattened map, which serde cannot close to
        // unknown keys: check the top-level keys first, so that a misspelt
        // or foreign field (`colour = "red"`) is named, not reported as a
        // count of the wrong type or dropped.
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| one_line(&e.to_string()))?;
        for key in table.keys() {
            if !PROFILE_FIELDS.contains(&key.as_str()) && kind_named(key).and_then(|k| k.generate).is_none() {
                let kinds: Vec<&str> = counted_kinds().map(|k| k.name).collect();
                return Err(format!(
                    "unknown field `{key}` (fields: {}; fault kinds: {})",
                    PROFILE_FIELDS.join(", "),
                    kinds.join(", ")
                ));
            }
        }
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

pub use crate::faults::common::SYSTEM_NODE;

/// The nodes faults can hit in a run: the engine's, and the sink's own
/// system when the scenario writes to one (`system`: crashes, pauses,
/// partitions and clean stops reach it; it has no disk faults, its disk is
/// the simulated server's own, torn or not on a crash).
pub fn run_nodes(workers: u32, system: bool) -> Vec<String> {
    let mut v = node_names(workers);
    if system {
        v.push(SYSTEM_NODE.to_string());
    }
    v
}

/// Derive the schedule of a run from its seed, profile and job
/// configuration (outage lengths are drawn against its timeouts); `system`:
/// the scenario writes to a system of its own, a node faults can hit too.
pub fn generate(seed: u64, profile: &Profile, cfg: &JobConfig, system: bool) -> Schedule {
    let rng = SimRng::derive(seed, Stream::Faults);
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
    // The first eight kinds draw their counts before the crash disk modes
    // (the order generation has always used), the newer kinds after.
    let mut counts: Vec<(&'static FaultKind, u32)> = Vec::new();
    for k in counted_kinds().take(8) {
        counts.push((k, count(profile.count(k.name), &mut swarm)));
    }
    let lose = profile.lose_unsynced && (!profile.swarm || swarm.chance(2, 3));
    let torn = profile.torn_writes && (!profile.swarm || swarm.chance(1, 2));
    for k in counted_kinds().skip(8) {
        counts.push((k, count(profile.count(k.name), &mut swarm)));
    }
    let nodes = run_nodes(cfg.parallelism, system);
    let mut g = Gen::new(rng, &profile.targets, cfg, nodes, profile.safety_ms, lose, torn);
    let mut events = Vec::new();
    for (k, n) in counts {
        g.set_kind(k.name, k.targets);
        if g.candidates().is_empty() {
            continue;
        }
        let draw = k.generate.expect("counted kinds generate");
        for _ in 0..n {
            events.push(draw(&mut g));
        }
    }
    for t in &profile.triggers {
        let node = match t.node.as_deref() {
            Some("worker") => {
                let workers: Vec<String> = g.nodes.iter().filter(|n| role_of(n) == "worker").cloned().collect();
                Some(g.rng.pick(&workers).clone())
            }
            // A node this run lacks (the sink's system, in a run of a
            // pipeline without one): the trigger cannot fire here. (A
            // single run names its nodes and is refused before; a
            // campaign's runs differ in their nodes.)
            Some(n) if !g.nodes.iter().any(|x| x == n) => continue,
            other => other.map(str::to_string),
        };
        events.push(FaultEvent::OnEvent(faults::OnEvent {
            node,
            event: t.event.clone(),
            nth: t.nth,
            action: t.action,
            dur_ms: t.dur_ms,
        }));
    }
    events.extend(silent_restarts(seed, profile, cfg, &g.nodes));
    events.sort_by_key(|e| e.at_ms());
    Schedule { safety_ms: profile.safety_ms, liveness_ms: profile.liveness_ms, events }
}

/// [`Profile::silent_restart`]: per composite, a one-way partition from a
/// worker that runs a source to the coordinator, outlasting the heartbeat
/// timeout, and a crash of that worker inside it once the coordinator has
/// noticed the silence and deployed a new attempt. The other workers that
/// run sources are down from just before that deployment until after the
/// silent worker is back: their sources then start the attempt only once,
/// so the silent worker's second chain is not left waiting for data its
/// first instance had already acknowledged, and the attempt runs and
/// checkpoints (with two instances of the silent worker's sources).
fn silent_restarts(seed: u64, profile: &Profile, cfg: &JobConfig, nodes: &[String]) -> Vec<FaultEvent> {
    let mut rng = SimRng::derive(seed, Stream::Composite);
    let hosts: Vec<&String> = nodes
        .iter()
        .filter(|n| {
            n.strip_prefix("worker-").and_then(|i| i.parse::<u32>().ok()).is_some_and(|i| !cfg.sources_of(i).is_empty())
        })
        .collect();
    let mut events = Vec::new();
    if hosts.is_empty() {
        return events;
    }
    let hb = cfg.heartbeat_timeout_ms.max(1);
    for _ in 0..profile.silent_restart {
        let w = (*rng.pick(&hosts)).clone();
        // Early: the sources must still have input to send after the
        // restart (a job of the scenarios reads its input in about a second).
        let at_ms = rng.range(30, 300);
        // The coordinator notices the silence after a heartbeat timeout and
        // deploys a new attempt; the worker deploys it (tens of ms), runs
        // its sources for a while, then crashes and is back soon. The cut
        // heals shortly after.
        let crash_at = at_ms + hb + rng.range(200, 700);
        let down_ms = *rng.pick(&[20u64, 50, 100]);
        let back_ms = crash_at + down_ms;
        let dur_ms = back_ms + rng.range(100, 400) - at_ms;
        events.push(FaultEvent::Partition(faults::Partition {
            at_ms,
            dur_ms,
            a: w.clone(),
            b: "coordinator".to_string(),
            one_way: true,
        }));
        events.push(FaultEvent::Crash(faults::Crash {
            at_ms: crash_at,
            node: w.clone(),
            down_ms,
            disk: CrashMode::KeepAll,
        }));
        for other in hosts.iter().filter(|h| ***h != w) {
            let down_at = at_ms + rng.range(0, hb / 2 + 1);
            let other_down = back_ms + rng.range(50, 300) - down_at;
            events.push(FaultEvent::Crash(faults::Crash {
                at_ms: down_at,
                node: (*other).clone(),
                down_ms: other_down,
                disk: CrashMode::KeepAll,
            }));
        }
    }
    events
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
        for (name, n) in &self.counts {
            if kind_named(name).and_then(|k| k.generate).is_none() {
                let known: Vec<&str> = counted_kinds().map(|k| k.name).collect();
                return Err(format!("unknown field `{name}` (fault kinds: {})", known.join(", ")));
            }
            if *n > caps::FAULTS_PER_KIND_MAX {
                return Err(format!("{name} = {n} is more than {} faults per run", caps::FAULTS_PER_KIND_MAX));
            }
        }
        for (kind, roles) in &self.targets {
            if kind_named(kind).is_none() {
                return Err(format!("targets: unknown fault kind `{kind}`"));
            }
            if let Some(r) = roles.iter().find(|r| !ROLES.contains(&r.as_str())) {
                return Err(format!("targets.{kind}: unknown role `{r}` (roles: {})", ROLES.join(", ")));
            }
            if kind_named(kind).is_some_and(|k| k.targets == Targets::DiskNodes)
                && !roles.iter().any(|r| DISK_NODES.contains(&r.as_str()))
            {
                return Err(format!("targets.{kind}: none of {roles:?} has a disk"));
            }
            if kind_named(kind).is_some_and(|k| k.targets == Targets::Network) {
                return Err(format!(
                    "targets.{kind}: {kind} is not aimed at a node (it acts on the whole network or job)"
                ));
            }
        }
        if self.silent_restart > caps::FAULTS_PER_KIND_MAX {
            return Err(format!(
                "silent_restart = {} is more than {} per run",
                self.silent_restart,
                caps::FAULTS_PER_KIND_MAX
            ));
        }
        if let Some(a) = &self.adaptive_interval {
            if a.min_ms == 0 || a.min_ms > a.max_ms || a.max_ms > caps::INTERVAL_MS_MAX {
                return Err(format!(
                    "adaptive_interval: min_ms = {} and max_ms = {} must satisfy 1 <= min_ms <= max_ms <= {}",
                    a.min_ms,
                    a.max_ms,
                    caps::INTERVAL_MS_MAX
                ));
            }
            if a.replay_records == 0 {
                return Err("adaptive_interval: replay_records = 0 (at least 1)".into());
            }
        }
        if let Some(n) = self.adaptive_every {
            if n == 0 {
                return Err("adaptive_every = 0 (at least 1)".into());
            }
            if self.adaptive_interval.is_none() && self.input_phases.is_empty() {
                return Err("adaptive_every without adaptive_interval or input_phases: it would choose nothing".into());
            }
        }
        if self.retained_checkpoints == Some(0) || self.retained_checkpoints.is_some_and(|k| k > caps::RETAINED_MAX) {
            return Err(format!(
                "retained_checkpoints = {} is out of range (1..={})",
                self.retained_checkpoints.unwrap_or(0),
                caps::RETAINED_MAX
            ));
        }
        if self.input_phases.len() > caps::PHASES_MAX {
            return Err(format!("{} input_phases (at most {})", self.input_phases.len(), caps::PHASES_MAX));
        }
        for (i, p) in self.input_phases.iter().enumerate() {
            if p.ms == 0 || p.ms > caps::DURATION_MS_MAX {
                return Err(format!(
                    "input_phases[{i}]: ms = {} is out of range (1..={})",
                    p.ms,
                    caps::DURATION_MS_MAX
                ));
            }
            if p.every_ms > caps::LATENCY_MS_MAX {
                return Err(format!(
                    "input_phases[{i}]: every_ms = {} is out of range (0..={})",
                    p.every_ms,
                    caps::LATENCY_MS_MAX
                ));
            }
        }
        if !self.input_phases.is_empty() && self.input_phases.iter().all(|p| p.idle) {
            return Err("input_phases: every phase is idle, so the input would never be read".into());
        }
        if self.triggers.len() > caps::FAULTS_PER_KIND_MAX as usize {
            return Err(format!("{} triggers (at most {})", self.triggers.len(), caps::FAULTS_PER_KIND_MAX));
        }
        for (i, t) in self.triggers.iter().enumerate() {
            if let Some(n) = &t.node {
                if !ROLES.contains(&n.as_str()) && !n.starts_with("worker-") {
                    return Err(format!("trigger {i}: unknown node or role `{n}`"));
                }
            }
            validate_trigger(&t.event, t.nth, t.dur_ms).map_err(|m| format!("trigger {i}: {m}"))?;
        }
        Ok(())
    }

    /// The nodes its triggers name that are not among `nodes` (a run's, see
    /// [`run_nodes`]): such a trigger would never fire. The role `worker`
    /// (one worker picked by the seed) is always there.
    pub fn missing_trigger_nodes(&self, nodes: &[String]) -> Vec<(usize, String)> {
        self.triggers
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.node.clone().map(|n| (i, n)))
            .filter(|(_, n)| n != "worker" && !nodes.contains(n))
            .collect()
    }
}

impl Schedule {
    /// Check a schedule (from a replay file, or edited by hand) before it
    /// runs: every event names nodes that exist in a run with `workers`
    /// workers and can take the fault, starts inside the safety phase, and
    /// stays within [`caps`]. The error names the event by its index.
    pub fn validate(&self, workers: u32, system: bool) -> Result<(), String> {
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
        let nodes = run_nodes(workers, system);
        for (i, e) in self.events.iter().enumerate() {
            e.validate(self.safety_ms, &nodes).map_err(|m| format!("schedule event {i} ({}): {m}", e.kind()))?;
        }
        Ok(())
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

    fn cfg(workers: u32) -> JobConfig {
        JobConfig { parallelism: workers, ..JobConfig::default() }
    }

    /// The composite deploys one attempt twice to a worker: a one-way cut
    /// from a source worker to the coordinator that outlasts the heartbeat
    /// timeout, that worker's crash inside the cut after the timeout (it
    /// has deployed the new attempt by then) and back before the cut heals,
    /// and every other source worker down from before the new deployment
    /// until after the silent worker is back.
    #[test]
    fn system_pause_keeps_the_zombie_of_a_2_5_s_window() {
        let sp = Profile::from_toml(&system_pause_toml()).unwrap();
        assert_eq!(sp.name, "system-pause");
        assert_eq!(sp.safety_ms, 2500);
        assert_eq!(sp.triggers.len(), 1, "only the system's pause: {:?}", sp.triggers);
        assert!(!sp.targets.contains_key("late_delivery"));
        let z = Profile::from_toml(ZOMBIE_TOML).unwrap();
        assert_eq!((z.safety_ms, z.triggers.len()), (5000, 2));
    }

    #[test]
    fn silent_restart_places_its_events_around_one_deployment() {
        let p = Profile::named("silent-restart").unwrap();
        for (workers, inputs) in [(2u32, 2u32), (4, 2), (3, 3), (1, 1)] {
            let c = JobConfig { parallelism: workers, input_partitions: inputs, ..JobConfig::default() };
            let hb = c.heartbeat_timeout_ms;
            for seed in 0..50 {
                let s = generate(seed, &p, &c, false);
                s.validate(workers, false).unwrap();
                let hosts = workers.min(inputs) as usize;
                assert_eq!(s.events.len(), 1 + hosts, "{:?}", s.events);
                let (cut_at, cut_end, w) = s
                    .events
                    .iter()
                    .find_map(|e| match e {
                        FaultEvent::Partition(faults::Partition { at_ms, dur_ms, a, b, one_way: true })
                            if b == "coordinator" =>
                        {
                            Some((*at_ms, at_ms + dur_ms, a.clone()))
                        }
                        _ => None,
                    })
                    .expect("the cut");
                let crash = |n: &str| {
                    s.events.iter().find_map(|e| match e {
                        FaultEvent::Crash(faults::Crash { at_ms, node, down_ms, .. }) if node == n => {
                            Some((*at_ms, at_ms + down_ms))
                        }
                        _ => None,
                    })
                };
                let (down, back) = crash(&w).expect("the silent worker's crash");
                assert!(down > cut_at + hb, "after the heartbeat timeout: {:?}", s.events);
                assert!(back < cut_end, "back before the cut heals: {:?}", s.events);
                for i in 0..hosts {
                    let other = format!("worker-{i}");
                    if other != w {
                        let (o_down, o_back) = crash(&other).expect("the other source workers are down");
                        assert!(o_down <= cut_at + hb && o_back > back, "{:?}", s.events);
                    }
                }
            }
        }
        // Profiles without it draw the schedules they always did.
        let mut with = Profile::named("chaos").unwrap();
        let without = generate(9, &with, &JobConfig::default(), false);
        with.silent_restart = 1;
        let both = generate(9, &with, &JobConfig::default(), false);
        assert!(without.events.iter().all(|e| both.events.contains(e)));
        let c = JobConfig::default();
        assert_eq!(both.events.len(), without.events.len() + 1 + c.input_partitions().min(c.parallelism) as usize);
    }

    #[test]
    fn named_profiles_and_determinism() {
        for name in PROFILE_NAMES {
            let p = Profile::named(name).unwrap();
            let a = generate(7, &p, &cfg(3), false);
            let b = generate(7, &p, &cfg(3), false);
            assert_eq!(a, b, "{name}: same seed, same schedule");
            if name == "none" {
                assert!(a.events.is_empty());
            }
        }
        assert!(Profile::named("bogus").is_none());
        assert!(Profile::resolve("bogus").unwrap_err().contains("unknown profile"));
    }

    #[test]
    fn a_profile_sets_an_adaptive_interval_and_input_phases() {
        let p = Profile::from_toml(
            "name = \"a\"\ncrash = 1\nadaptive_interval = { min_ms = 50, max_ms = 500, replay_records = 100 }\ninput_phases = [{ ms = 100 }, { ms = 50, every_ms = 5 }, { ms = 200, idle = true }]\n",
        )
        .unwrap();
        assert_eq!(p.adaptive_interval, Some(AdaptiveInterval { min_ms: 50, max_ms: 500, replay_records: 100 }));
        let phase = |ms, every_ms, idle| SourcePhase { ms, every_ms, idle };
        assert_eq!(p.input_phases, vec![phase(100, 0, false), phase(50, 5, false), phase(200, 0, true)]);
        assert_eq!(p.counts.keys().collect::<Vec<_>>(), ["crash"], "not fault counts");
        for (line, err) in [
            ("adaptive_interval = { min_ms = 0, max_ms = 5, replay_records = 1 }", "1 <= min_ms <= max_ms"),
            ("adaptive_interval = { min_ms = 9, max_ms = 5, replay_records = 1 }", "1 <= min_ms <= max_ms"),
            ("adaptive_interval = { min_ms = 1, max_ms = 900000, replay_records = 1 }", "<= 600000"),
            ("adaptive_interval = { min_ms = 1, max_ms = 5, replay_records = 0 }", "replay_records = 0"),
            ("adaptive_interval = { min_ms = 1, max_ms = 5 }", "missing field `replay_records`"),
            (
                "adaptive_interval = { min_ms = 1, max_ms = 5, replay_records = 1, colour = 2 }",
                "unknown field `colour`",
            ),
            ("input_phases = [{ ms = 0 }]", "input_phases[0]: ms = 0 is out of range"),
            ("input_phases = [{ ms = 10 }, { ms = 10, every_ms = 99999 }]", "input_phases[1]: every_ms = 99999"),
            ("input_phases = [{ ms = 10, idle = true }]", "every phase is idle"),
            ("input_phases = [{ ms = 10, pace = 3 }]", "unknown field `pace`"),
            ("input_phase = []", "unknown field `input_phase`"),
            ("adaptive_every = 4", "without adaptive_interval or input_phases"),
            (
                "adaptive_interval = { min_ms = 1, max_ms = 5, replay_records = 1 }\nadaptive_every = 0",
                "adaptive_every = 0",
            ),
        ] {
            let e = Profile::from_toml(&format!("name = \"a\"\n{line}\n")).unwrap_err();
            assert!(e.contains(err), "{line}: {e}");
        }
        // Absent, they are not serialized: a profile reads and prints as
        // before them.
        let chaos = Profile::named("chaos").unwrap();
        let json = serde_json::to_string(&chaos).unwrap();
        assert!(!json.contains("adaptive_interval") && !json.contains("input_phases"), "{json}");
        // `adaptive` is `chaos` with the job settings and one skew at most.
        let adaptive = Profile::named("adaptive").unwrap();
        assert!(adaptive.adaptive_interval.is_some() && adaptive.input_phases.len() == 3);
        let mut counts = chaos.counts.clone();
        counts.insert("skew".into(), 1);
        assert_eq!(adaptive.counts, counts);
        assert_eq!((adaptive.swarm, adaptive.lose_unsynced, adaptive.torn_writes), (true, true, true));
    }

    #[test]
    fn toml_profile_roundtrip_and_errors() {
        let p = Profile::from_toml("name = \"gate\"\ncrash = 2\npartition = 1\nlose_unsynced = true\n").unwrap();
        assert_eq!(p.count("crash"), 2);
        assert!(!generate(1, &p, &cfg(3), false).events.is_empty());
        assert!(Profile::from_toml("name = \"x\"\ncrahs = 2\n").is_err());
    }

    #[test]
    fn generated_schedules_pass_validation() {
        let harsh = Profile::from_toml(
            "name = \"h\"\ncrash = 8\ncrash_at_point = 6\npartition = 6\npacket_loss = 3\nlatency = 3\nslow_disk = 4\ndisk_errors = 3\ncorrupt_reads = 3\npause = 3\nlate_delivery = 3\nskew = 3\nstop = 3\nsafety_ms = 3000\n[[trigger]]\nnode = \"worker\"\nevent = \"PreCommitted\"\nnth = 2\naction = \"pause\"\ndur_ms = 2000\n",
        )
        .unwrap();
        for seed in 0..300 {
            for p in PROFILE_NAMES.iter().map(|n| Profile::named(n).unwrap()).chain([harsh.clone()]) {
                for workers in 2..=4 {
                    for system in [false, true] {
                        let s = generate(seed, &p, &cfg(workers), system);
                        assert_eq!(s.validate(workers, system), Ok(()), "seed {seed} profile {}", p.name);
                    }
                }
            }
        }
    }

    /// A scenario's own system is a node faults can hit (not with disk
    /// faults: its disk is the simulated server's own), and only in runs
    /// that have one.
    /// Whether a fault event names the node (as its target, a side of a
    /// partition, or a late sender or receiver).
    fn names(e: &FaultEvent, node: &str) -> bool {
        let v = serde_json::to_value(e).unwrap();
        ["node", "a", "b", "from", "to"].iter().any(|k| v.get(k).and_then(|x| x.as_str()) == Some(node))
    }

    #[test]
    fn the_sink_system_node_takes_node_faults_only_when_present() {
        let chaos = Profile::named("chaos").unwrap();
        let mut kinds = std::collections::BTreeSet::new();
        for seed in 0..200 {
            let s = generate(seed, &chaos, &cfg(3), true);
            for e in &s.events {
                if names(e, SYSTEM_NODE) {
                    assert!(!matches!(kind_named(e.kind()).unwrap().targets, Targets::DiskNodes), "{e:?}");
                    kinds.insert(e.kind());
                }
            }
            if s.events.iter().any(|e| names(e, SYSTEM_NODE)) {
                let err = s.validate(3, false).unwrap_err();
                assert!(err.contains("system"), "{err}");
            }
            assert!(generate(seed, &chaos, &cfg(3), false).events.iter().all(|e| !names(e, SYSTEM_NODE)));
        }
        for k in ["crash", "pause", "partition"] {
            assert!(kinds.contains(k), "{k} never hit the system node in 200 seeds: {kinds:?}");
        }
    }

    #[test]
    fn validation_names_the_problem() {
        let ok = |events: Vec<FaultEvent>| Schedule { safety_ms: 1_000, liveness_ms: 5_000, events };
        let err = |s: Schedule| s.validate(3, false).unwrap_err();
        let crash = |node: &str, at_ms: u64| {
            FaultEvent::Crash(faults::Crash { at_ms, node: node.into(), down_ms: 10, disk: CrashMode::KeepAll })
        };
        assert!(err(ok(vec![crash("worker-3", 5)])).contains("no node 'worker-3'"));
        assert!(err(ok(vec![crash("broker", 1_001)])).contains("after the safety phase"));
        assert_eq!(ok(vec![crash("worker-2", 1_000)]).validate(3, false), Ok(()));
        let slow =
            FaultEvent::SlowDisk(faults::SlowDisk { at_ms: 0, dur_ms: 10, node: "worker-0".into(), latency_ms: 5 });
        assert!(err(ok(vec![slow])).contains("has no disk"));
        let loss = FaultEvent::PacketLoss(faults::PacketLoss { at_ms: 0, dur_ms: 10, permille: 5_000 });
        assert!(err(ok(vec![loss])).contains("permille = 5000"));
        let part = FaultEvent::Partition(faults::Partition {
            at_ms: 0,
            dur_ms: 10,
            a: "store".into(),
            b: "store".into(),
            one_way: false,
        });
        assert!(err(ok(vec![part])).contains("two different nodes"));
        let long = FaultEvent::Isolate(faults::Isolate { at_ms: 0, dur_ms: u64::MAX, node: "store".into() });
        assert!(err(ok(vec![long])).contains("dur_ms"));
        let point = FaultEvent::CrashAtPoint(faults::CrashAtPoint {
            point: exactsim_engine::observe::FaultPoint::ALL[0],
            node: None,
            nth: 0,
            down_ms: 5,
            disk: CrashMode::KeepAll,
        });
        assert!(err(ok(vec![point])).contains("nth = 0"));
        assert!(err(Schedule { safety_ms: 0, liveness_ms: 1, events: vec![] }).contains("safety_ms"));
        assert!(err(Schedule { safety_ms: 1, liveness_ms: u64::MAX, events: vec![] }).contains("liveness_ms"));
        assert!(Profile::from_toml("name = \"x\"\ncrash = 4294967295\n").unwrap_err().contains("crash = 4294967295"));
        assert!(Profile::from_toml("name = \"x\"\nsafety_ms = 0\n").unwrap_err().contains("safety_ms"));
    }

    #[test]
    fn every_engine_event_can_be_triggered_on() {
        // From a profile's `[[trigger]]` and from a replay file's `on_event`.
        for name in exactsim_engine::observe::Event::NAMES {
            let toml = format!(
                "name = \"t\"\n[[trigger]]\nnode = \"worker\"\nevent = \"{name}\"\nnth = 1\naction = \"crash\"\ndur_ms = 5\n"
            );
            let p = Profile::from_toml(&toml).unwrap_or_else(|e| panic!("trigger on {name} refused: {e}"));
            assert_eq!(p.triggers[0].event, *name);
            let s = Schedule {
                safety_ms: 1_000,
                liveness_ms: 5_000,
                events: vec![FaultEvent::OnEvent(faults::OnEvent {
                    node: None,
                    event: name.to_string(),
                    nth: 1,
                    action: TriggerAction::Pause,
                    dur_ms: 5,
                })],
            };
            s.validate(3, false).unwrap_or_else(|e| panic!("on_event {name} refused: {e}"));
        }
        assert!(exactsim_engine::observe::Event::NAMES.contains(&"JobFailed"));
    }

    #[test]
    fn profiles_aim_at_roles_and_name_their_errors() {
        let p = Profile::from_toml(
            "name = \"aim\"\npause = 4\ncrash = 4\nskew = 3\n[targets]\npause = [\"broker\"]\ncrash = [\"worker\"]\n",
        )
        .unwrap();
        for seed in 0..50 {
            for e in generate(seed, &p, &cfg(3), false).events {
                match e {
                    FaultEvent::Pause(faults::Pause { node, .. }) => assert_eq!(node, "broker"),
                    FaultEvent::Crash(faults::Crash { node, .. }) => assert!(node.starts_with("worker-"), "{node}"),
                    _ => {}
                }
            }
        }
        let err = |t: &str| Profile::from_toml(t).unwrap_err();
        assert!(err("name = \"x\"\n[targets]\npause = [\"brokr\"]\n").contains("unknown role `brokr`"));
        assert!(err("name = \"x\"\n[targets]\nslow_disk = [\"worker\"]\n").contains("has a disk"));
        assert!(err("name = \"x\"\n[targets]\nredeploy = [\"worker\"]\n").contains("not aimed at a node"));
        assert!(err("name = \"x\"\n[targets]\npacket_loss = [\"broker\"]\n").contains("not aimed at a node"));
        assert!(err("name = \"x\"\n[[trigger]]\nevent = \"Nope\"\naction = \"pause\"\ndur_ms = 5\n")
            .contains("unknown engine event `Nope`"));
        let s = Schedule {
            safety_ms: 1_000,
            liveness_ms: 5_000,
            events: vec![FaultEvent::Skew(faults::Skew {
                at_ms: 0,
                dur_ms: 10,
                node: "broker".into(),
                offset_ms: 0,
                drift_permille: -1000,
            })],
        };
        assert!(s.validate(3, false).unwrap_err().contains("drift_permille"));
    }

    /// Outage lengths follow the job's own timeouts: some inside the retry
    /// budget, some far beyond it.
    #[test]
    fn outages_are_drawn_against_the_timeouts() {
        let p = Profile::from_toml("name = \"o\"\npartition = 20\npause = 20\n").unwrap();
        let c = cfg(3);
        let budget = c.rpc_timeout_ms * (c.rpc_retries as u64 + 1);
        let mut lens = Vec::new();
        for seed in 0..20 {
            for e in generate(seed, &p, &c, false).events {
                match e {
                    FaultEvent::Pause(faults::Pause { dur_ms, .. })
                    | FaultEvent::Partition(faults::Partition { dur_ms, .. })
                    | FaultEvent::Isolate(faults::Isolate { dur_ms, .. }) => lens.push(dur_ms),
                    _ => {}
                }
            }
        }
        assert!(lens.iter().any(|l| *l < c.rpc_timeout_ms));
        assert!(lens.iter().any(|l| *l > 4 * budget));
    }

    #[test]
    fn every_kind_is_declared_once() {
        let mut names: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), KINDS.len());
        let chaos = Profile::named("chaos").unwrap();
        // `isolate` is drawn by `partition`; a redeploy is an operator's act,
        // drawn by the profiles that ask for it (`redeploy`).
        for k in counted_kinds().filter(|k| !["isolate", "redeploy", "rescale"].contains(&k.name)) {
            assert!(chaos.count(k.name) > 0, "chaos leaves out {}", k.name);
        }
    }

    #[test]
    fn unknown_fields_are_refused_by_name() {
        let event = |json: &str| serde_json::from_str::<FaultEvent>(json).unwrap_err().to_string();
        let e =
            event(r#"{"kind": "crash", "at_ms": 1, "node": "broker", "down_ms": 5, "dow_ms": 9, "disk": "keep_all"}"#);
        assert!(e.contains("unknown field `dow_ms`"), "{e}");
        let e = event(
            r#"{"kind": "crash", "at_ms": 1, "node": "broker", "down_ms": 5, "disk": "keep_all", "permille": 500}"#,
        );
        assert!(e.contains("unknown field `permille`"), "{e}");
        let e = serde_json::from_str::<Schedule>(r#"{"safety_ms": 1, "liveness_ms": 1, "events": [], "x": 1}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `x`"), "{e}");
        let e = Profile::from_toml("name = \"x\"\ncolour = \"red\"\n").unwrap_err();
        assert!(e.starts_with("unknown field `colour`"), "{e}");
        let e = Profile::from_toml(
            "name = \"x\"\n[[trigger]]\nevent = \"PreCommitted\"\naction = \"pause\"\ndur_ms = 5\nwhen = 1\n",
        )
        .unwrap_err();
        assert!(e.contains("unknown field `when`"), "{e}");
    }

    #[test]
    fn trigger_nodes_are_checked_against_the_run() {
        let p = Profile::from_toml(
            "name = \"x\"\n[[trigger]]\nnode = \"worker-99\"\nevent = \"PreCommitted\"\naction = \"pause\"\ndur_ms = 5\n[[trigger]]\nnode = \"worker\"\nevent = \"PreCommitted\"\naction = \"pause\"\ndur_ms = 5\n[[trigger]]\nnode = \"system\"\nevent = \"PreCommitted\"\naction = \"crash\"\ndur_ms = 5\n",
        )
        .unwrap();
        assert_eq!(
            p.missing_trigger_nodes(&run_nodes(2, false)),
            vec![(0, "worker-99".to_string()), (2, "system".to_string())]
        );
        assert_eq!(p.missing_trigger_nodes(&run_nodes(100, true)), vec![]);
    }

    #[test]
    fn schedules_serialize() {
        let s = generate(3, &Profile::named("chaos").unwrap(), &cfg(3), false);
        let j = serde_json::to_string(&s).unwrap();
        let back: Schedule = serde_json::from_str(&j).unwrap();
        assert_eq!(s, back);
    }
}

/// Every fault kind, as the schedule draws it (kept here, beside
/// generation: the kinds' files do not import the schedule).
#[cfg(test)]
mod fault_kind_tests {
    use super::{generate, Profile, PROFILE_NAMES};
    use crate::faults::*;
    use exactsim_engine::config::JobConfig;

    /// One event of every kind, from the generated schedules.
    fn one_of_each() -> BTreeMap<&'static str, FaultEvent> {
        let mut m = BTreeMap::new();
        for name in PROFILE_NAMES {
            let p = Profile::named(name).unwrap();
            for seed in 0..50 {
                for e in generate(seed, &p, &JobConfig::default(), seed % 2 == 0).events {
                    m.entry(e.kind()).or_insert(e);
                }
            }
        }
        m
    }

    use std::collections::BTreeMap;

    /// The serialized form is the kind's name as `kind` beside its fields,
    /// as it was before kinds had files: every schedule file still reads.
    #[test]
    fn every_kind_serializes_under_its_name_and_reads_back() {
        let all = one_of_each();
        assert_eq!(all.len(), KINDS.len(), "generated: {:?}", all.keys());
        for (name, e) in &all {
            let v = serde_json::to_value(e).unwrap();
            assert_eq!(v["kind"], *name, "{v}");
            assert_eq!(serde_json::from_value::<FaultEvent>(v).unwrap(), *e);
            assert_eq!(e.decl().name, *name);
        }
    }

    /// Each kind's struct refuses unknown fields under the internal tag:
    /// a misspelt field, and a field of another kind.
    #[test]
    fn every_kind_refuses_unknown_fields() {
        for (name, e) in one_of_each() {
            for extra in ["dow_ms", "permille", "node", "latency_ms"] {
                let mut v = serde_json::to_value(&e).unwrap();
                let o = v.as_object_mut().unwrap();
                if o.contains_key(extra) {
                    continue;
                }
                o.insert(extra.to_string(), serde_json::json!(1));
                let err = serde_json::from_value::<FaultEvent>(v).unwrap_err().to_string();
                assert!(err.contains(&format!("unknown field `{extra}`")), "{name}: {err}");
            }
        }
        let err = serde_json::from_str::<FaultEvent>(r#"{"kind": "crush", "at_ms": 1}"#).unwrap_err().to_string();
        assert!(err.contains("unknown variant `crush`"), "{err}");
    }

    /// The optional `to` of a late delivery may be left out, as before.
    #[test]
    fn optional_fields_stay_optional() {
        let e: FaultEvent = serde_json::from_str(
            r#"{"kind": "late_delivery", "at_ms": 1, "dur_ms": 5, "from": "broker", "delay_ms": 9, "count": 1}"#,
        )
        .unwrap();
        assert!(matches!(e, FaultEvent::LateDelivery(LateDelivery { to: None, .. })));
    }

    /// What real mode does with each kind comes from the kind's file.
    #[test]
    fn real_mode_answers_come_from_the_kinds() {
        for (name, e) in one_of_each() {
            match e.fault().real() {
                Real::Plays | Real::Partly { .. } => assert!(
                    [
                        "crash",
                        "crash_at_point",
                        "pause",
                        "stop",
                        "partition",
                        "isolate",
                        "packet_loss",
                        "latency",
                        "late_delivery",
                        "skew",
                        "on_event",
                        "redeploy",
                        "rescale"
                    ]
                    .contains(&name),
                    "{name}"
                ),
                Real::Skips(reason) => {
                    assert!(!reason.is_empty());
                    assert!(["slow_disk", "disk_errors", "corrupt_reads"].contains(&name), "{name}")
                }
            }
        }
    }
}
