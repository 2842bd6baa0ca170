//! Integration tests of the whole, compiled into one binary (as RisingWave
//! does) to keep link times down.

mod cli;
mod common;
mod coverage;
mod custom_sink;
mod determinism;
mod engine_recovery;
mod flink_semantics;
mod modes;
mod mutants;
mod other_system;
mod profiles;
mod renamed_sink;
mod replay;
mod snapshots;
mod step_harness;
