//! What a job computes: a keyed operator, supplied by a scenario. The engine
//! routes records by key, aligns barriers, snapshots the operator's state and
//! restores it; the operator only sees records, watermarks and end of input.

use crate::sink::{BrokerSink, SinkEnv, TwoPhaseCommitSink};
use crate::system::{BrokerReader, OutputReader, SinkSystem};
use crate::types::{key_to_subtask, OutRecord, Record};
use std::sync::Arc;

/// A keyed stateful operator subtask. All state lives inside and is captured
/// by `snapshot`; `restore` must bring back exactly that state.
pub trait KeyedOperator: Send {
    /// Process one record (all records of a key arrive in input order).
    fn process(&mut self, rec: &Record, out: &mut Vec<OutRecord>);
    /// The event-time watermark advanced to `wm_ms` (min over all inputs).
    fn on_watermark(&mut self, _wm_ms: u64, _out: &mut Vec<OutRecord>) {}
    /// Every input ended. Flush what is left.
    fn on_end_of_input(&mut self, _out: &mut Vec<OutRecord>) {}
    /// Serialize the state.
    fn snapshot(&self) -> Vec<u8>;
    /// Replace the state with a snapshot taken by `snapshot`.
    fn restore(&mut self, bytes: &[u8]) -> Result<(), String>;
    /// Rescaling: add to the current state the state of the keys for which
    /// `keep` holds, out of a snapshot taken by `snapshot` (of another
    /// subtask, at another parallelism). A restored subtask of a rescaled
    /// job starts empty and is called once per old subtask whose key
    /// groups it takes over (`types::rescale_sources`); the key sets are
    /// disjoint. The default refuses: an operator that does not implement
    /// it cannot be rescaled, and its restore fails the task.
    fn restore_keys(&mut self, _bytes: &[u8], _keep: &dyn Fn(u64) -> bool) -> Result<(), String> {
        Err("this operator cannot be rescaled (KeyedOperator::restore_keys)".into())
    }
}

pub use crate::sink::Route;

/// The route of a pipeline over `partitions` output partitions.
pub fn route(pipeline: Arc<dyn Pipeline>, partitions: u32) -> Route {
    Arc::new(move |r: &OutRecord| pipeline.output_partition(r, partitions))
}

/// Creates operator subtasks. Shared by all nodes of a job.
pub trait Pipeline: Send + Sync {
    fn name(&self) -> &str;
    fn create(&self, subtask: u32, parallelism: u32) -> Box<dyn KeyedOperator>;
    /// Creates the two-phase-commit sink of one chain subtask, called again
    /// at every deployment (a fresh sink per attempt, restored from the
    /// checkpoint's `SinkSnapshot` by the engine). The default is the
    /// transactional broker producer; override it to drive your own
    /// implementation of [`TwoPhaseCommitSink`] through the same campaigns.
    fn sink(&self, env: SinkEnv) -> Box<dyn TwoPhaseCommitSink> {
        Box::new(BrokerSink::new(env))
    }
    /// The output partition of a record, out of `partitions`
    /// (`JobConfig::output_partitions`). The default hashes the key like
    /// the shuffle does, so with one partition per sink subtask each
    /// subtask writes its own partition. The oracles place records with the
    /// same function.
    fn output_partition(&self, rec: &OutRecord, partitions: u32) -> u32 {
        key_to_subtask(rec.key, partitions)
    }
    /// The sink's own external system, hosted on its own node (see
    /// [`crate::system`]). `None` (the default): the sink writes to the
    /// transactional broker.
    fn system(&self) -> Option<Arc<dyn SinkSystem>> {
        None
    }
    /// How a `read_committed` reader sees the sink system's output; the
    /// oracles judge what it sees. The default reads the broker.
    fn reader(&self) -> Arc<dyn OutputReader> {
        Arc::new(BrokerReader)
    }
    /// Align barriers in at-least-once mode too, so the operator state is
    /// exactly once while deliveries are not (Spark's route: an idempotent
    /// upsert table whose versions come from the state, `crate::upsert`).
    /// `false` (the default): at-least-once mode never blocks an input, and
    /// a restored state may count records after the barrier again.
    fn exactly_once_state(&self) -> bool {
        false
    }
}
