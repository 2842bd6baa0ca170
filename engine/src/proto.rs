//! Every message that crosses nodes. All of them are serialized to bytes
//! (bincode) before they touch the network, in simulation too.

use crate::observe::TxnId;
use crate::types::{Attempt, CheckpointId, OutRecord, Record, TaskId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An item on a data channel (source -> operator).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Item {
    Record(Record),
    /// Event-time watermark of the sending source.
    Watermark(u64),
    Barrier(CheckpointId),
    EndOfInput,
}

/// Where a restore comes from: one completed checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RestorePlan {
    pub ckpt: CheckpointId,
    /// Blob name of each task's snapshot.
    pub blobs: BTreeMap<TaskId, String>,
}

impl RestorePlan {
    /// The number of chain subtasks the checkpoint was taken with.
    pub fn parallelism(&self) -> u32 {
        self.blobs.keys().filter(|t| matches!(t, TaskId::Chain(_))).count() as u32
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Msg {
    // ---- worker -> coordinator ----
    Heartbeat {
        worker: u32,
        attempt: Attempt,
        incarnation: u64,
    },
    DeployAck {
        worker: u32,
        attempt: Attempt,
        incarnation: u64,
    },
    Ack {
        attempt: Attempt,
        ckpt: CheckpointId,
        task: TaskId,
        blob: String,
        offset: Option<u64>,
        finished: bool,
        /// Incremental checkpoints: the shared files the snapshot refers to
        /// (empty otherwise).
        shared: Vec<String>,
    },
    Decline {
        attempt: Attempt,
        ckpt: CheckpointId,
        task: TaskId,
        reason: String,
    },
    NotifyAck {
        attempt: Attempt,
        ckpt: CheckpointId,
        task: TaskId,
    },
    TaskFailed {
        attempt: Attempt,
        task: TaskId,
        reason: String,
    },

    // ---- coordinator -> worker ----
    /// `fence_upto`: every checkpoint id ever issued is below it; sinks
    /// fence transactional ids up to it so late writes of older attempts
    /// cannot open transactions nobody will end.
    /// `seq` numbers the coordinator's deploys (increasing within an
    /// attempt): a worker carries the newest it has received into every
    /// `InitProducer`, which orders its producer sessions after those of a
    /// process that acted on an earlier deploy of the same attempt.
    Deploy {
        attempt: Attempt,
        seq: u64,
        restore: Option<RestorePlan>,
        fence_upto: CheckpointId,
        /// The run of the job this attempt belongs to (`JobConfig::run`
        /// until a redeploy starts a new one): the sinks' owner and fencing
        /// token.
        run: u64,
        /// The job's parallelism in this attempt (`JobConfig::parallelism`
        /// until a rescale asks for another): the chain subtasks are
        /// `0..parallelism`; a worker with a higher index runs nothing.
        parallelism: u32,
    },
    Trigger {
        attempt: Attempt,
        ckpt: CheckpointId,
    },
    Notify {
        attempt: Attempt,
        ckpt: CheckpointId,
    },

    // ---- worker -> worker (data plane) ----
    Data {
        attempt: Attempt,
        /// The sending worker's incarnation: a channel belongs to one
        /// instance of its sender (see `channel`).
        incarnation: u64,
        from: u32,
        to: u32,
        seq: u64,
        items: Vec<Item>,
    },
    DataAck {
        attempt: Attempt,
        from: u32,
        to: u32,
        seq: u64,
    },

    // ---- request/response (broker, store) ----
    Req {
        id: u64,
        body: Request,
    },
    Resp {
        id: u64,
        body: Response,
    },

    // ---- coordinator -> worker (last, so that no variant before it
    // changes its encoding) ----
    /// The job finished without this process: it restarted and then acted
    /// on a late `Deploy` of `attempt` (the finished one or an older one).
    /// It ends that attempt's tasks as a replacement does (their sinks
    /// close, aborting what they opened).
    Cancel {
        attempt: Attempt,
    },
}

impl Msg {
    /// Whether late delivery may hold this message back: single requests
    /// and control messages. Heartbeats, data and replies never are (the
    /// simulator's rule, and a real-mode node's).
    pub fn may_be_held(&self) -> bool {
        !matches!(self, Msg::Heartbeat { .. } | Msg::Data { .. } | Msg::DataAck { .. } | Msg::Resp { .. })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Request {
    // broker: input side
    FetchInput {
        partition: u32,
        offset: u64,
        max: u32,
    },
    // broker: output side
    /// `nonce` identifies this request: a retried or duplicated init with
    /// the same nonce returns the same epoch instead of bumping it again.
    /// `attempt` is the job attempt of the sender: an init from an older
    /// attempt than the id's last initializer is refused (`Fenced`), so a
    /// zombie's late request never fences the newer attempt's transaction.
    /// `run` orders runs of the same job (`JobConfig::run`): a newer run
    /// takes an id over whatever its attempt, an older one is refused.
    /// `session` orders the producer sessions of one attempt: (the newest
    /// `Msg::Deploy::seq` of the attempt the sender's process had received
    /// when its recovery try started, that try's number). A later session
    /// (a worker restarted in the middle of a deployment, or the next
    /// recovery try) owns the id, and a late init of an earlier one (its
    /// dead predecessor's, a try that gave up) is refused.
    InitProducer {
        txn: TxnId,
        nonce: u64,
        run: u64,
        attempt: u64,
        session: (u64, u64),
    },
    Append {
        txn: TxnId,
        epoch: u64,
        partition: u32,
        seq: u64,
        records: Vec<OutRecord>,
    },
    EndTxn {
        txn: TxnId,
        epoch: u64,
        commit: bool,
    },
    PlainAppend {
        partition: u32,
        records: Vec<OutRecord>,
    },
    ListOpenTxns {
        prefix: String,
    },
    /// A `read_committed` (or `read_uncommitted`) read of the output topic.
    FetchOutput {
        partition: u32,
        offset: u64,
        committed_only: bool,
    },
    // store
    PutBlob {
        name: String,
        bytes: Vec<u8>,
    },
    GetBlob {
        name: String,
    },
    DeleteBlobs {
        names: Vec<String>,
    },
    ListBlobs {
        prefix: String,
    },
    /// A request to a sink's own system (`crate::system`), in that system's
    /// encoding.
    System {
        bytes: Vec<u8>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Response {
    Input {
        records: Vec<Record>,
        end: bool,
    },
    Epoch {
        epoch: u64,
    },
    Ok,
    /// The producer epoch is older than the current one.
    Fenced {
        current: u64,
    },
    /// The transaction is not open (aborted by timeout, or unknown).
    TxnNotOpen {
        reason: String,
    },
    OpenTxns {
        txns: Vec<(TxnId, u64)>,
    },
    Output {
        records: Vec<OutRecord>,
        next_offset: u64,
        open_txns: u32,
    },
    Blob {
        bytes: Vec<u8>,
    },
    Names {
        names: Vec<String>,
    },
    NotFound,
    /// The server hit an I/O error; the caller may retry.
    IoError {
        reason: String,
    },
    /// A sink's own system answered, in its encoding.
    System {
        bytes: Vec<u8>,
    },
    /// The transactional id's producer epoch is at the broker's bound
    /// (`JobConfig::max_producer_epoch`): it cannot be initialized again.
    EpochExhausted {
        max: u64,
    },
}
