//! What a real run records: the run's clock, every process's event log read
//! as it grows, what the supervisor played, and at the end one `History`
//! over all of it (the same the oracles read after a simulated run).

use exactsim_engine::observe::{Event, FaultPoint};
use exactsim_engine::types::{DeliveryMode, Record};
use exactsim_model::history::{Ev, History, Observation, SimEvent, Stamped};
use exactsim_model::panics::{PanicOrigin, PanicReport};
use exactsim_model::schedule::TriggerAction;
use exactsim_node::wire::{self, FinalRead, LogLine};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Supervisor poll period.
pub(super) const TICK: Duration = Duration::from_millis(2);

/// Something the supervisor did to a process, or a process did on its own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Played {
    /// Wall ms since the start.
    pub at_ms: u64,
    /// `crash`, `crash_at_point`, `pause`, `resume`, `restart`, `exit`;
    /// a window's kind when it opens or closes (`partition`, `isolate`,
    /// `packet_loss`, `latency`, `late_delivery`, `skew`; `heal` closes
    /// them all), `applied` when a process shows it landed (its first
    /// application of the window, or the first message it dropped or held
    /// back under it); for PostgreSQL `pg_kill`, `pg_restart` (begun) and
    /// `pg_up`.
    pub kind: String,
    pub node: String,
    pub detail: String,
}

/// Microseconds since the run's start, on the same clock the nodes use.
pub(super) struct Clock {
    t0: Instant,
}

impl Clock {
    /// The run's clock, started now.
    pub(super) fn start() -> Clock {
        Clock { t0: Instant::now() }
    }

    pub(super) fn us(&self) -> u64 {
        self.t0.elapsed().as_micros() as u64
    }

    pub(super) fn ms(&self) -> u64 {
        self.us() / 1000
    }
}

/// Incremental reader of one process's log: only complete lines.
struct Tail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl Tail {
    fn poll(&mut self) -> Vec<LogLine> {
        let Ok(mut f) = std::fs::File::open(&self.path) else { return Vec::new() };
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).is_err() {
            return Vec::new();
        }
        self.offset += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') else { return Vec::new() };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        wire::parse_log(&String::from_utf8_lossy(&complete))
    }
}

/// Everything gathered while the run goes on.
pub(super) struct Gather {
    tails: BTreeMap<String, Tail>,
    sim: Vec<Stamped>,
    engine: Vec<Stamped>,
    observations: Vec<Observation>,
    coverage: BTreeMap<(String, FaultPoint), u64>,
    /// Last reason a process gave for going away, per role: (µs, cause,
    /// the schedule index of the predicate that crashed or stopped it).
    pub(super) last_words: BTreeMap<String, (u64, String, Option<usize>)>,
    panic: Option<PanicReport>,
    /// A process could not bind its address: the run was not set up.
    environment: Option<String>,
    pub(super) finished_at_us: Option<u64>,
    pub(super) played: Vec<Played>,
    /// Reachability points the processes logged.
    reached: Vec<exactsim_model::history::Reached>,
    /// Armed predicates that fired in a process (it acted on itself), not
    /// yet handed to the play loop.
    pub(super) fired: Vec<FiredLine>,
}

/// A process's report that one of the schedule's armed predicates fired.
pub(super) struct FiredLine {
    pub node: String,
    /// The schedule's event.
    pub index: usize,
    pub cause: String,
    pub action: TriggerAction,
}

/// What the history of a real run is framed by: known before it starts, or
/// by the supervisor when it healed.
pub(super) struct Frame {
    pub scenario: String,
    pub seed: u64,
    pub mode: DeliveryMode,
    pub parallelism: u32,
    pub output_partitions: u32,
    pub input: Vec<Vec<Record>>,
    pub healed_at_us: u64,
    pub deadline_us: u64,
}

/// Everything recorded, at the end of a run.
pub(super) struct Collected {
    pub history: History,
    /// Informational only: a real run is not reproducible.
    pub trace_hash: u64,
    pub coverage: BTreeMap<(String, FaultPoint), u64>,
    pub panic: Option<PanicReport>,
    /// Why the run could not be set up (a port taken), if so: no verdict.
    pub environment: Option<String>,
    /// What was played, in time order.
    pub played: Vec<Played>,
}

impl Gather {
    /// Reading the logs of `roles` under `run_dir`.
    pub(super) fn new<'a>(run_dir: &Path, roles: impl IntoIterator<Item = &'a str>) -> Gather {
        let tails = roles
            .into_iter()
            .map(|r| (r.to_string(), Tail { path: wire::events_file(run_dir, r), offset: 0, partial: Vec::new() }))
            .collect();
        Gather {
            tails,
            sim: Vec::new(),
            engine: Vec::new(),
            observations: Vec::new(),
            coverage: BTreeMap::new(),
            last_words: BTreeMap::new(),
            panic: None,
            environment: None,
            finished_at_us: None,
            played: Vec::new(),
            reached: Vec::new(),
            fired: Vec::new(),
        }
    }

    /// Read what the logs gained since the last poll.
    pub(super) fn poll(&mut self) {
        for (role, t) in self.tails.iter_mut() {
            for line in t.poll() {
                match line {
                    LogLine::Event(s) => {
                        if let Ev::Engine(Event::JobFinished { .. }) = &s.ev {
                            self.finished_at_us.get_or_insert(s.t_us);
                        }
                        self.engine.push(s);
                    }
                    LogLine::Point { node, point, .. } => *self.coverage.entry((node, point)).or_insert(0) += 1,
                    LogLine::Fired { t_us, node, index, cause, action } => {
                        if action != TriggerAction::Pause {
                            self.last_words.insert(role.clone(), (t_us, cause.clone(), Some(index)));
                        }
                        self.fired.push(FiredLine { node, index, cause, action });
                    }
                    LogLine::Fatal { t_us, reason, .. } => {
                        self.last_words.insert(role.clone(), (t_us, format!("fatal: {reason}"), None));
                    }
                    LogLine::Panic { node, message, .. } if message.starts_with(wire::BIND_FAILED) => {
                        self.environment.get_or_insert(format!("{message} (on {node})"));
                    }
                    LogLine::Panic { t_us, node, message, site } => {
                        self.last_words.insert(role.clone(), (t_us, format!("panic at {site}: {message}"), None));
                        let origin = if site.contains("scenarios/") {
                            PanicOrigin::Scenario
                        } else if site.contains("engine/") {
                            PanicOrigin::Engine
                        } else {
                            PanicOrigin::Harness
                        };
                        self.panic.get_or_insert(PanicReport {
                            message: format!("{message} (on {node})"),
                            site,
                            origin,
                        });
                    }
                    LogLine::Observed(o) => self.observations.push(o),
                    LogLine::Reach(r) => self.reached.push(r),
                    // A window landed on a process: shown with what was
                    // played (the history has its start from the supervisor).
                    LogLine::Applied { t_us, node, index, kind, what } => self.played.push(Played {
                        at_ms: t_us / 1000,
                        kind: "applied".into(),
                        node,
                        detail: format!("{kind} (event {index}): {what}"),
                    }),
                    // A message held back lands as the simulator records it.
                    LogLine::Held { t_us, detail, .. } => self.sim.push(Stamped {
                        t_us,
                        node: "sim".into(),
                        ev: Ev::Sim(SimEvent::FaultStarted { kind: "late_delivery".into(), detail }),
                    }),
                }
            }
        }
    }

    /// Record what the supervisor saw or did to the world, at `t_us`.
    pub(super) fn sim(&mut self, t_us: u64, node: &str, ev: SimEvent) {
        self.sim.push(Stamped { t_us, node: node.to_string(), ev: Ev::Sim(ev) });
    }

    /// Record a step of what was played.
    pub(super) fn played(&mut self, at_ms: u64, kind: &str, node: &str, detail: String) {
        self.played.push(Played { at_ms, kind: kind.into(), node: node.into(), detail });
    }

    /// One history over all processes, once every process is stopped and
    /// its log read: the sink system's commits (from the final read, as its
    /// server recorded them) join the engine's events, the run ends at
    /// `end_us`.
    pub(super) fn collect(mut self, mut fin: FinalRead, end_us: u64, frame: Frame) -> Collected {
        for c in std::mem::take(&mut fin.commits) {
            self.engine.push(Stamped {
                t_us: c.t_us,
                node: "system".into(),
                ev: Ev::Engine(Event::TxnCommitted { txn: c.txn, epoch: c.epoch, out: c.out }),
            });
        }
        self.sim(end_us, "sim", SimEvent::RunEnded);
        let mut events = std::mem::take(&mut self.engine);
        events.append(&mut self.sim);
        // One timeline over all processes: stamps share one clock; the sort
        // is stable, so each process keeps its own order.
        events.sort_by_key(|s| s.t_us);
        let mut observations = std::mem::take(&mut self.observations);
        observations.sort_by_key(|o| o.t_us);
        let mut trace_hash = exactsim_model::history::FNV_OFFSET;
        for e in &events {
            trace_hash = exactsim_model::history::fnv1a(trace_hash, &event_bytes(e));
        }
        let history = History {
            scenario: frame.scenario,
            seed: frame.seed,
            mode: frame.mode,
            parallelism: frame.parallelism,
            output_partitions: frame.output_partitions,
            input: frame.input,
            events,
            observations,
            final_output: fin.output,
            final_read_ok: fin.ok,
            final_open_txns: fin.open_txns,
            healed_at_us: frame.healed_at_us,
            deadline_us: frame.deadline_us,
            finished_at_us: self.finished_at_us,
            reached: {
                let mut r = std::mem::take(&mut self.reached);
                r.sort_by_key(|x| x.t_us);
                r
            },
        };
        let mut played = std::mem::take(&mut self.played);
        played.sort_by_key(|p| p.at_ms);
        Collected {
            history,
            trace_hash,
            coverage: self.coverage,
            panic: self.panic,
            environment: self.environment,
            played,
        }
    }
}

/// Bytes of an event for the (informational) trace hash.
fn event_bytes(e: &Stamped) -> Vec<u8> {
    serde_json::to_vec(e).expect("serializable")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node that cannot bind its port makes the run one that was not set
    /// up (an environment problem), not one that panicked (a finding).
    #[test]
    fn a_port_taken_is_an_environment_problem_not_a_panic() {
        let dir = std::env::temp_dir().join(format!("exactsim-record-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("events")).unwrap();
        let line = |message: &str| {
            let l =
                LogLine::Panic { t_us: 5, node: "broker".into(), message: message.into(), site: "node/x.rs:1".into() };
            serde_json::to_string(&l).unwrap() + "\n"
        };
        let taken = format!("{} 127.0.0.1:4000: Address already in use", wire::BIND_FAILED);
        std::fs::write(wire::events_file(&dir, "broker"), line(&taken)).unwrap();
        std::fs::write(wire::events_file(&dir, "store"), line("index out of bounds")).unwrap();
        let mut g = Gather::new(&dir, ["broker", "store"]);
        g.poll();
        assert_eq!(g.environment.as_deref(), Some(format!("{taken} (on broker)").as_str()));
        let p = g.panic.as_ref().expect("the other panic is a finding");
        assert!(p.message.starts_with("index out of bounds"), "{}", p.message);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
