//! The simulated world: cluster on madsim, simulated disk, fault schedules,
//! trace, oracles.

pub mod rng;
pub mod scenario;
pub mod history;
pub mod recorder;
pub mod schedule;
pub mod world;
pub mod report;
pub mod runner;
