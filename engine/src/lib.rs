//! exactsim's stream engine: a Flink-style checkpointing dataflow with a
//! two-phase-commit sink into a Kafka-style transactional broker. See
//! ARCHITECTURE.md for the map.

pub mod aligner;
pub mod backoff;
pub mod broker;
pub mod broker_sink;
pub mod channel;
pub mod clock;
pub mod codec;
pub mod config;
pub mod coordinator;
pub mod interval;
pub mod net;
pub mod observe;
pub mod pipeline;
pub mod proto;
pub mod recovery;
pub mod shared_state;
pub mod sink;
pub mod sink_task;
pub mod storage;
pub mod store;
pub mod system;
pub mod txn_pool;
pub mod types;
pub mod upsert;
pub mod worker;
