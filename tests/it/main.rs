//! Integration tests of the whole, compiled into one binary (as RisingWave
//! does) to keep link times down.

mod adaptive;
mod bad_input;
mod bad_input_edges;
mod cli;
mod common;
mod coverage;
mod custom_sink;
mod determinism;
mod engine_recovery;
mod faults;
mod flink_semantics;
mod merge;
mod modes;
mod mutants;
mod oracles;
mod other_system;
mod pacing;
mod pg_ledger;
mod profiles;
mod readme;
mod real;
mod renamed_sink;
mod replay;
mod robustness;
mod snapshots;
mod step_harness;
