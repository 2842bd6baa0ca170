//! The recorded history of one run: every engine event and every injected
//! fault, stamped with simulated time and node, plus the `read_committed`
//! observations of the output. The oracles read only this.

use exactsim_engine::observe::{Event, Reach};
use exactsim_engine::types::{DeliveryMode, OutRecord, Record};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Something the simulator did to the world.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SimEvent {
    RunStarted,
    FaultStarted {
        kind: String,
        detail: String,
    },
    FaultEnded {
        kind: String,
        detail: String,
    },
    NodeCrashed {
        node: String,
        cause: String,
        lost_bytes: u64,
        torn_files: u32,
    },
    NodeRestarted {
        node: String,
    },
    /// Every fault healed, every node up: the liveness phase begins.
    Healed,
    /// A fault point was reached (counted, not stamped in the history).
    Observed {
        partition: u32,
        new_records: u64,
        open_txns: u32,
    },
    RunEnded,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Ev {
    Engine(Event),
    Sim(SimEvent),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stamped {
    pub t_us: u64,
    pub node: String,
    pub ev: Ev,
}

/// One incremental `read_committed` read of an output partition: the
/// records that became visible since the previous read of that partition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub t_us: u64,
    pub partition: u32,
    pub new_records: Vec<OutRecord>,
    pub open_txns: u32,
}

/// Everything the checkers need.
#[derive(Clone, Debug)]
pub struct History {
    pub scenario: String,
    pub seed: u64,
    pub mode: DeliveryMode,
    pub parallelism: u32,
    /// Output partitions of the sink's topic.
    pub output_partitions: u32,
    pub input: Vec<Vec<Record>>,
    pub events: Vec<Stamped>,
    pub observations: Vec<Observation>,
    /// What a `read_committed` reader sees at the end, per partition.
    pub final_output: Vec<Vec<OutRecord>>,
    /// Whether the final read succeeded (the broker answered).
    pub final_read_ok: bool,
    /// Open transactions at the broker at the end (name, epoch).
    pub final_open_txns: Vec<(String, u64)>,
    /// When the liveness phase began (all faults healed, all nodes up).
    pub healed_at_us: u64,
    /// The liveness bound: the job must finish by then.
    pub deadline_us: u64,
    /// When the coordinator declared the job finished, if it did.
    pub finished_at_us: Option<u64>,
    /// The reachability points the run reached, in order (beside the
    /// events, never in the trace hash; in real mode, as the processes
    /// logged them).
    pub reached: Vec<Reached>,
}

/// A reachability point reached: when, on which node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reached {
    pub t_us: u64,
    pub node: String,
    pub point: Reach,
}

impl History {
    /// How many times the run reached each point it reached.
    pub fn reach_counts(&self) -> BTreeMap<Reach, u64> {
        let mut m = BTreeMap::new();
        for r in &self.reached {
            *m.entry(r.point).or_insert(0) += 1;
        }
        m
    }
}

/// Whether a node went down as part of a fault that counts itself by its
/// own `FaultStarted` (a clean stop, the coordinator's stop in a
/// redeploy or a rescale), not as a crash of its own.
pub fn stopped_by_a_fault(cause: &str) -> bool {
    cause == "clean stop" || cause == "redeploy" || cause == "rescale"
}

/// The kinds whose window ends when their node is back up (a clean stop,
/// a redeploy, a rescale): the timeline closes their band at the node's
/// restart.
pub const ENDS_AT_RESTART: [&str; 3] = ["stop", "redeploy", "rescale"];

/// The faults the history shows landing, in order, as `(t_us, kind)`: a
/// window opened, a node paused or cleanly stopped, a node crashed (a
/// scheduled crash, a crash at a fault point or on an engine event). Not a
/// fault: a trigger's own marker (`on_event`: its action is listed), nor a
/// crash the harness made after a fatal error, nor (real mode) a node's own
/// panic or exit. A fault aimed at a node already down is never recorded,
/// so it is not here.
pub fn landed_faults(events: &[Stamped]) -> Vec<(u64, String)> {
    let mut v = Vec::new();
    for e in events {
        match &e.ev {
            Ev::Sim(SimEvent::FaultStarted { kind, .. }) if kind != "on_event" => v.push((e.t_us, kind.clone())),
            Ev::Sim(SimEvent::NodeCrashed { cause, .. }) => {
                if stopped_by_a_fault(cause) || ["fatal", "panic at", "exited"].iter().any(|p| cause.starts_with(p)) {
                    continue;
                }
                let kind = if cause.starts_with("fault point") {
                    "crash_at_point"
                } else if cause.ends_with("of PostgreSQL") {
                    // Real mode's own stream of server kills (`--pg-kills`).
                    "pg_kill"
                } else {
                    "crash"
                };
                v.push((e.t_us, kind.to_string()));
            }
            _ => {}
        }
    }
    v
}

/// The fault tallies of a run, by kind, as its history shows them: every
/// landed fault ([`landed_faults`]), every trigger that fired (`on_event`,
/// whatever its action then did), and what crashes did to the disks
/// (`lost_unsynced`: a crash lost unsynced writes; `torn_write`: it tore a
/// file). What faults did inside a disk (operations failed, corrupted or
/// slowed) is not in the history: the simulated disks count it
/// (`disk::effects`).
pub fn fault_tallies(events: &[Stamped]) -> BTreeMap<String, u64> {
    let mut m: BTreeMap<String, u64> = BTreeMap::new();
    for (_, kind) in landed_faults(events) {
        *m.entry(kind).or_insert(0) += 1;
    }
    let mut count = |kind: &str, yes: bool| {
        if yes {
            *m.entry(kind.to_string()).or_insert(0) += 1;
        }
    };
    for e in events {
        match &e.ev {
            Ev::Sim(SimEvent::FaultStarted { kind, .. }) => count("on_event", kind == "on_event"),
            Ev::Sim(SimEvent::NodeCrashed { lost_bytes, torn_files, .. }) => {
                count("lost_unsynced", *lost_bytes > 0);
                count("torn_write", *torn_files > 0);
            }
            _ => {}
        }
    }
    m
}

impl History {
    /// Effective faults by kind: the landed faults that started while the
    /// job ran, that is before the coordinator declared it finished (all
    /// of them if it never did). A fault after the finish tests nothing.
    pub fn effective_faults(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for (t, kind) in landed_faults(&self.events) {
            if self.finished_at_us.is_none_or(|f| t < f) {
                *m.entry(kind).or_insert(0) += 1;
            }
        }
        m
    }

    /// Landed faults that started after the job had finished.
    pub fn late_faults(&self) -> u64 {
        let Some(f) = self.finished_at_us else { return 0 };
        landed_faults(&self.events).iter().filter(|(t, _)| *t >= f).count() as u64
    }
}

/// FNV-1a, 64 bit: a stable hash for the trace chain (the simulator folds
/// every event into it as it is recorded; real mode over its sorted events).
pub fn fnv1a(h: u64, bytes: &[u8]) -> u64 {
    let mut h = h;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

/// Where every trace hash chain starts.
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// Folds whatever is written to it into an FNV-1a hash, as [`fnv1a`] of
/// the concatenated bytes: a value serialized into it is hashed without
/// its bytes being allocated (the simulator hashes every event it records).
pub struct Fnv1aWriter(pub u64);

impl std::io::Write for Fnv1aWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 = fnv1a(self.0, buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t_us: u64, ev: SimEvent) -> Stamped {
        Stamped { t_us, node: "sim".into(), ev: Ev::Sim(ev) }
    }

    #[test]
    fn the_hashing_writer_equals_fnv1a_of_the_concatenated_bytes() {
        use std::io::Write;
        let mut w = Fnv1aWriter(FNV_OFFSET);
        w.write_all(b"exactly").unwrap();
        w.write_all(b"").unwrap();
        w.write_all(b" once").unwrap();
        assert_eq!(w.0, fnv1a(FNV_OFFSET, b"exactly once"));
        assert_ne!(w.0, fnv1a(FNV_OFFSET, b"exactly twice"));
        // Pinned: a change of the hash changes every trace hash.
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    fn crash(t_us: u64, cause: &str) -> Stamped {
        at(t_us, SimEvent::NodeCrashed { node: "worker-0".into(), cause: cause.into(), lost_bytes: 0, torn_files: 0 })
    }

    fn started(t_us: u64, kind: &str) -> Stamped {
        at(t_us, SimEvent::FaultStarted { kind: kind.into(), detail: String::new() })
    }

    fn history(events: Vec<Stamped>, finished_at_us: Option<u64>) -> History {
        History {
            scenario: "s".into(),
            seed: 0,
            mode: DeliveryMode::ExactlyOnce,
            parallelism: 1,
            output_partitions: 1,
            input: Vec::new(),
            events,
            observations: Vec::new(),
            final_output: Vec::new(),
            final_read_ok: true,
            final_open_txns: Vec::new(),
            healed_at_us: 0,
            deadline_us: 0,
            finished_at_us,
            reached: Vec::new(),
        }
    }

    /// Only faults that began before the job finished count; a trigger's
    /// marker is not a fault of its own, nor a crash after a fatal error.
    #[test]
    fn effective_faults_are_the_ones_before_the_finish() {
        let events = vec![
            started(10, "partition"),
            started(20, "on_event"),
            started(20, "pause"),
            crash(30, "fault point after_snapshot_before_ack"),
            crash(40, "fatal: state checksum"),
            crash(41, "panic at engine/src/worker.rs:1:1: boom"),
            crash(42, "exited: signal: 9 (SIGKILL)"),
            started(50, "stop"),
            crash(50, "clean stop"),
            crash(60, "on event PreCommitted #2"),
            crash(70, "scheduled kill -9 of PostgreSQL"),
            started(100, "latency"),
            crash(120, "scheduled crash"),
        ];
        let h = history(events.clone(), Some(100));
        let eff = h.effective_faults();
        let want: BTreeMap<String, u64> =
            [("partition", 1), ("pause", 1), ("crash_at_point", 1), ("stop", 1), ("crash", 1), ("pg_kill", 1)]
                .into_iter()
                .map(|(k, n)| (k.to_string(), n))
                .collect();
        assert_eq!(eff, want);
        assert_eq!(h.late_faults(), 2, "the latency window and the crash after the finish");
        let never = history(events, None);
        assert_eq!(never.effective_faults().values().sum::<u64>(), 8);
        assert_eq!(never.late_faults(), 0);
    }

    /// The tallies: the landed faults, the triggers that fired, and what
    /// crashes did to the disks.
    #[test]
    fn fault_tallies_are_read_from_the_history() {
        let lost = |t_us: u64, lost_bytes: u64, torn_files: u32| {
            at(
                t_us,
                SimEvent::NodeCrashed {
                    node: "broker".into(),
                    cause: "scheduled crash".into(),
                    lost_bytes,
                    torn_files,
                },
            )
        };
        let events = vec![
            started(10, "partition"),
            started(20, "on_event"),
            crash(20, "on event PreCommitted #2"),
            started(25, "on_event"),
            lost(30, 120, 0),
            lost(40, 10, 1),
            crash(50, "fatal: state checksum"),
            started(60, "stop"),
            crash(60, "clean stop"),
        ];
        let want: BTreeMap<String, u64> =
            [("partition", 1), ("on_event", 2), ("crash", 3), ("lost_unsynced", 2), ("torn_write", 1), ("stop", 1)]
                .into_iter()
                .map(|(k, n)| (k.to_string(), n))
                .collect();
        assert_eq!(fault_tallies(&events), want);
    }
}
