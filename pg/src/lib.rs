//! PostgreSQL as a two-phase-commit participant of the engine.
//!
//! - [`client`]: the seam, the statements the sink needs, typed SQLSTATEs;
//! - [`model`]: the simulated server, a plain state machine;
//! - `real` (std build only): the seam on tokio-postgres.

pub mod client;
pub mod model;
// Not in doctests either: rustdoc runs without `--cfg madsim`, but the
// dependencies were resolved for the simulation build.
#[cfg(all(not(madsim), not(doctest)))]
pub mod real;
