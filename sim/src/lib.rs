//! The simulated world: the cluster on madsim, the simulated disk, fault
//! injection, the trace recorder, the step harness. The run model it
//! simulates (scenarios, schedules, histories, checks, reports) is the
//! `exactsim-model` crate; its modules are visible here under their own
//! names for the simulator's code.

pub mod cluster;
pub mod disk;
pub mod harness;
pub mod nodes;
pub mod recorder;
pub mod runner;
pub mod world;

pub(crate) use exactsim_model::{checks, finish, history, panics, rng, schedule};

/// Whether the calling thread runs inside a simulation (for
/// `exactsim_model::panics::explain_context_lines`).
pub fn in_simulation() -> bool {
    #[cfg(madsim)]
    return madsim::runtime::Handle::try_current().is_ok();
    #[cfg(not(madsim))]
    false
}
