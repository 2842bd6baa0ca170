//! exactsim's stream engine: a Flink-style checkpointing dataflow with a
//! two-phase-commit sink into a Kafka-style transactional broker. See
//! ARCHITECTURE.md for the map.

pub mod broker;
pub mod codec;
pub mod config;
pub mod net;
pub mod observe;
pub mod pipeline;
pub mod proto;
pub mod storage;
pub mod types;
pub mod aligner;
pub mod channel;
pub mod coordinator;
pub mod sink;
pub mod store;
pub mod worker;
