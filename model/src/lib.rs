//! The run model: what a run is and how it is judged, apart from any
//! backend. A scenario (workload, pipeline, batch reference), the seed's
//! named random streams, fault schedules and profiles, the history a run
//! records, the checks that judge it, the report, and the one function
//! every run ends in. The simulator (`exactsim-sim`) and real mode both
//! produce a [`run::RunResult`] and hand it to [`finish::finish`].
//!
//! **Architecture Invariant:** this crate knows nothing of madsim or of
//! OS processes; it uses no simulator API, so node processes, real mode and
//! scenarios depend on it without depending on the simulator.

pub mod checks;
pub mod clocks;
pub mod faults;
pub mod finish;
pub mod history;
pub mod metrics;
pub mod narrow;
pub mod panics;
pub mod report;
pub mod rng;
pub mod run;
pub mod scenario;
pub mod schedule;
