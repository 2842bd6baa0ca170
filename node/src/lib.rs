//! Real mode: one engine node as an OS process. The supervisor
//! (`exactsim real`, `src/real/` of the root package) writes a
//! [`wire::NodeSpec`], starts one `exactsim-node` process per node, plays
//! faults on them with signals and through a control file of open network
//! and clock windows ([`control`]), and reads back the JSON lines each
//! process appends ([`wire::LogLine`]).
//!
//! Everything here is harness code outside any simulation: it reads the
//! wall clock (timestamps of history events) and runs on tokio. The wire
//! formats compile in both builds; the processes only in the std build.

pub mod control;
pub mod wire;

#[cfg(not(madsim))]
pub mod counters;
#[cfg(not(madsim))]
pub mod metrics;
#[cfg(not(madsim))]
pub mod process;
