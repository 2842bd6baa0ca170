//! PostgreSQL as a two-phase-commit participant of the engine.
//!
//! - [`client`]: the seam, the statements the sink needs, typed SQLSTATEs;
//! - [`model`]: the simulated server, a plain state machine;
//! - [`node`]: the simulated server as a node: sessions over a lossy
//!   network, a write-ahead log on the node's disk;
//! - `real` (std build only): the seam on tokio-postgres;
//! - [`sink`]: the engine's two-phase-commit sink on the seam;
//! - [`drill`]: the engine's 2PC protocol with the sink, against any server.

pub mod client;
pub mod drill;
pub mod model;
pub mod node;
pub mod sink;
// Not in doctests either: rustdoc runs without `--cfg madsim`, but the
// dependencies were resolved for the simulation build.
#[cfg(all(not(madsim), not(doctest)))]
pub mod real;
