//! **The seam for the sink's system**: the external system a sink writes
//! to, as the engine's world sees it.
//!
//! - [`OutputReader`]: how a `read_committed` reader sees that system's
//!   output, per output partition, and which transactions it still holds
//!   open. The oracles judge what this reader sees. [`BrokerReader`] reads
//!   the transactional broker (the default).
//! - [`SinkSystem`]: a system other than the broker, hosted on its own node
//!   at [`SYSTEM_ADDR`] with its own disk. It speaks `Request::System` /
//!   `Response::System` (bytes in its own encoding) and records what it
//!   does through its observer: a `TxnCommitted{txn, epoch, out}` when
//!   records become visible lets the commit-level checks (early
//!   visibility, applied once) judge it too.
//!
//! What the checks need from a user's system, and what emitting more buys:
//!
//! | the system gives | checks that judge it |
//! |---|---|
//! | an [`OutputReader`] (required) | P1, P2, P3 and P12 from what readers see; P7 from the final read (every record of a pre-committed transaction of a completed checkpoint must be there); P8 from `open_txns` |
//! | `TxnCommitted{txn, epoch, out}` from the system's node, when a transaction becomes visible (and `TxnCommitReplayed` when found committed again after a restart) | P5 and P6 commit by commit, P7 from the system's own commit; without them P5 falls back on the sink's confirmations |
//! | every record back with its lineage (`OutRecord::writer`, as the sink was handed it) | P14 (fencing, on any system: nothing a superseded owner wrote becomes visible); a system that drops it is reported by P14 |
//! | `ProducerInit` / `AppendAccepted` (a transactional-id system like the broker) | P9 (the system's own fencing decisions) |
//!
//! Only events recorded by a node other than a worker count as the
//! system's word: the sink's `CommitConfirmed` is testimony, and P7 flags
//! a confirmation the system does not back.
//!
//! A pipeline names both (`Pipeline::system`, `Pipeline::reader`); the
//! sink reaches its system at `SinkEnv::system`.

use crate::config::JobConfig;
use crate::net::Net;
use crate::observe::Obs;
use crate::proto::{Request, Response};
use crate::storage::Storage;
use crate::types::OutRecord;
use async_trait::async_trait;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Where a pipeline's own sink system runs (when it has one).
pub const SYSTEM_ADDR: &str = "10.0.8.1:7000";

pub fn system_addr() -> SocketAddr {
    SYSTEM_ADDR.parse().expect("valid address")
}

/// One incremental read of an output partition.
#[derive(Clone, Debug, PartialEq)]
pub struct ReadStep {
    /// Records that became visible from the requested offset on.
    pub records: Vec<OutRecord>,
    /// Where the next read continues.
    pub next_offset: u64,
    /// Transactions open in the system at the time of the read.
    pub open_txns: u32,
}

/// How a `read_committed` reader sees a sink system's output.
#[async_trait]
pub trait OutputReader: Send + Sync {
    /// Read `partition` from `offset` (0: from the start) at the system at
    /// `at`. `None`: no answer within `timeout` (the reader retries).
    async fn read(&self, net: &Net, at: SocketAddr, partition: u32, offset: u64, timeout: Duration)
        -> Option<ReadStep>;
    /// The transactions still open in the system: (name, epoch). `None`:
    /// no answer.
    async fn open_txns(&self, net: &Net, at: SocketAddr, timeout: Duration) -> Option<Vec<(String, u64)>>;
}

/// The broker's `read_committed` consumer: reads up to the last stable
/// offset, so an open transaction holds back everything after its first
/// record.
pub struct BrokerReader;

#[async_trait]
impl OutputReader for BrokerReader {
    async fn read(
        &self,
        net: &Net,
        at: SocketAddr,
        partition: u32,
        offset: u64,
        timeout: Duration,
    ) -> Option<ReadStep> {
        match net.call(at, Request::FetchOutput { partition, offset, committed_only: true }, timeout).await {
            Some(Response::Output { records, next_offset, open_txns }) => {
                Some(ReadStep { records, next_offset, open_txns })
            }
            _ => None,
        }
    }

    async fn open_txns(&self, net: &Net, at: SocketAddr, timeout: Duration) -> Option<Vec<(String, u64)>> {
        match net.call(at, Request::ListOpenTxns { prefix: String::new() }, timeout).await {
            Some(Response::OpenTxns { txns }) => Some(txns),
            _ => None,
        }
    }
}

/// What a sink system's node is given: its endpoint, its disk (which
/// survives crashes, with the disk faults of the simulation), its observer
/// and the job configuration (the number of output partitions is
/// `cfg.parallelism`).
#[derive(Clone)]
pub struct SystemEnv {
    pub net: Arc<Net>,
    pub storage: Arc<dyn Storage>,
    pub obs: Obs,
    pub cfg: Arc<JobConfig>,
}

/// A sink's own external system. `serve` runs its server; it is called
/// again after every restart of its node, and must recover its state from
/// `storage`.
pub trait SinkSystem: Send + Sync {
    fn serve(&self, env: SystemEnv) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}
