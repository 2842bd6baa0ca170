//! What the supervisor and the node processes of a real-mode run exchange
//! through files: the run's specification, the event logs, the final read.

use exactsim_engine::config::JobConfig;
use exactsim_engine::observe::FaultPoint;
use exactsim_engine::types::OutRecord;
use exactsim_model::faults::arming::Rule;
use exactsim_model::history::{Observation, Reached, Stamped};
use exactsim_model::schedule::TriggerAction;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Everything a node process needs, written once by the supervisor.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeSpec {
    pub scenario: String,
    pub seed: u64,
    pub config: JobConfig,
    pub coordinator: SocketAddr,
    pub broker: SocketAddr,
    pub store: SocketAddr,
    pub workers: Vec<SocketAddr>,
    /// The polling `read_committed` reader.
    pub reader: SocketAddr,
    /// The one-shot final read.
    pub final_reader: SocketAddr,
    pub run_dir: PathBuf,
    /// Unix time (µs) of the run's start: every process stamps its events
    /// with microseconds since then.
    pub start_unix_us: u64,
    /// Armed predicates (crashes at fault points, faults on engine events)
    /// fire only before this (ms since the start).
    pub safety_ms: u64,
    /// The schedule's armed predicates: the process counts their
    /// occurrences in the run's shared counters ([`counters_file`]) and
    /// acts on itself when one fires.
    pub rules: Vec<Rule>,
    /// Every received message is held back this many ms (lo, hi), drawn
    /// per message: a simulated run's network latency.
    pub latency_ms: (u64, u64),
    /// The real PostgreSQL server a pipeline with its own sink system
    /// writes to (a libpq-style connection string), when it has one.
    #[serde(default)]
    pub pg_url: Option<String>,
    /// Where each engine node serves its metrics (`GET /metrics`, on
    /// loopback), by node name; empty: no metrics served.
    #[serde(default)]
    pub metrics: Vec<(String, SocketAddr)>,
}

/// One line of a process's log (`events/<node>.jsonl`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum LogLine {
    /// A history event (engine events only).
    Event(Stamped),
    /// A fault point reached (coverage).
    Point { t_us: u64, node: String, point: FaultPoint },
    /// An armed predicate fired (the schedule's event `index`): the
    /// process is about to act on itself (crash: `SIGKILL`; pause:
    /// `SIGSTOP`, resumed by the supervisor; stop: a clean exit).
    Fired { t_us: u64, node: String, index: usize, cause: String, action: TriggerAction },
    /// A fatal error: the process exits and asks to be restarted.
    Fatal { t_us: u64, node: String, reason: String },
    /// A panic: the process aborts. One whose message starts with
    /// [`BIND_FAILED`] is an environment problem (a port taken), not a
    /// finding.
    Panic { t_us: u64, node: String, message: String, site: String },
    /// The reader's incremental read of one output partition.
    Observed(Observation),
    /// A reachability point reached (`observe::Reach`).
    Reach(Reached),
    /// Proof that a network or clock window landed on this process: the
    /// first time it applied window `index` of the schedule (of kind
    /// `kind`), or the first message it dropped or held back under it
    /// (`what` says which).
    Applied { t_us: u64, node: String, index: usize, kind: String, what: String },
    /// A message held back by a late-delivery window: it lands as a
    /// `FaultStarted` with this detail, one per message, as in simulation.
    Held { t_us: u64, node: String, detail: String },
}

/// What the final `read_committed` read saw (`final.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FinalRead {
    pub output: Vec<Vec<OutRecord>>,
    pub ok: bool,
    pub open_txns: Vec<(String, u64)>,
    /// The sink system's commits as the server recorded them (PostgreSQL:
    /// each committed prepared transaction, at its commit timestamp), for
    /// the commit-level checks. Empty for the broker, whose node records
    /// its own.
    #[serde(default)]
    pub commits: Vec<SystemCommit>,
}

/// One commit of a sink system: `TxnCommitted{txn, epoch, out}` at `t_us`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SystemCommit {
    pub t_us: u64,
    pub txn: String,
    pub epoch: u64,
    pub out: Vec<OutRecord>,
}

pub fn events_file(run_dir: &Path, node: &str) -> PathBuf {
    run_dir.join("events").join(format!("{node}.jsonl"))
}

pub fn data_dir(run_dir: &Path, node: &str) -> PathBuf {
    run_dir.join("data").join(node)
}

pub fn final_file(run_dir: &Path) -> PathBuf {
    run_dir.join("final.json")
}

/// The run's shared predicate counters (see `counters.rs`).
pub fn counters_file(run_dir: &Path) -> PathBuf {
    run_dir.join("counters")
}

/// Create the run's counters file: `n` zeroed counters.
pub fn create_counters(run_dir: &Path, n: usize) -> std::io::Result<()> {
    std::fs::write(counters_file(run_dir), vec![0u8; n * 8])
}

/// Parse the complete lines of a log (a process killed mid-line leaves a
/// partial last line, which is skipped).
pub fn parse_log(text: &str) -> Vec<LogLine> {
    text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// How a node's panic starts when its address cannot be bound (another
/// process holds the port): the supervisor reports the run as not set up
/// (exit 2), not as a finding.
pub const BIND_FAILED: &str = "cannot bind";
