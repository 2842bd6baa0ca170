//! The simulated world: cluster on madsim, simulated disk, fault schedules,
//! trace, oracles.

pub mod checks;
pub mod cluster;
pub mod disk;
pub mod finish;
pub mod harness;
pub mod history;
pub mod narrow;
pub mod nodes;
pub mod panics;
pub mod recorder;
pub mod report;
pub mod rng;
pub mod runner;
pub mod scenario;
pub mod schedule;
pub mod world;
