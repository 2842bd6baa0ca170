//! The simulated world: cluster on madsim, simulated disk, fault schedules,
//! trace, oracles.

pub mod rng;
pub mod scenario;
