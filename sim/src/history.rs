//! The recorded history of one run: every engine event and every injected
//! fault, stamped with simulated time and node, plus the `read_committed`
//! observations of the output. The oracles read only this.

use exactsim_engine::observe::Event;
use exactsim_engine::types::{DeliveryMode, OutRecord, Record};
use serde::{Deserialize, Serialize};

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
}
