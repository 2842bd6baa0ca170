//! A node's clocks. Every place the engine reads time (transaction
//! timeouts, heartbeats, failure detection, retransmissions) goes through a
//! [`Clock`], so the simulator can skew and drift each node's clocks (see
//! [`Observer::local_clock`]); outside simulation both clocks are the
//! process's monotonic clock. Protocol state machines still take time as an
//! input: the clock lives in the async loops.
//!
//! - `mono_ms`: milliseconds since the clock was created, as this node
//!   counts them. Drift (a clock running fast or slow) applies; it never
//!   jumps. Timeouts must be measured on it.
//! - `wall_ms`: the node's wall clock, which an operator or NTP may step
//!   forward or back at any moment. Nothing in the engine may time out on it
//!   (the planted bug `skewed-txn-timeout` does).

use crate::observe::Obs;
use std::time::Duration;

/// What a node's clocks read (declared with the observer that answers it,
/// so that `observe` does not depend on this module).
pub use crate::observe::ClockReading;

#[derive(Clone)]
pub struct Clock {
    obs: Obs,
    start: madsim::time::Instant,
    base: Option<ClockReading>,
}

impl Clock {
    pub fn new(obs: &Obs) -> Clock {
        Clock { obs: obs.clone(), start: madsim::time::Instant::now(), base: obs.inner.local_clock(&obs.node) }
    }

    fn reading(&self) -> Option<ClockReading> {
        self.obs.inner.local_clock(&self.obs.node)
    }

    /// Monotonic milliseconds since this clock was created (drift applies).
    pub fn mono_ms(&self) -> u64 {
        match (self.base, self.reading()) {
            (Some(b), Some(r)) => r.mono_us.saturating_sub(b.mono_us) / 1000,
            _ => self.start.elapsed().as_millis() as u64,
        }
    }

    /// The node's wall clock as a date: milliseconds since an origin every
    /// node and every restart shares (the start of the simulation; the Unix
    /// epoch outside it), so a time written into a checkpoint by one
    /// process can be compared with another process's reading. It steps
    /// with the node's wall clock, so it is for bookkeeping that must
    /// survive a restart (when a transaction began), never for a timeout.
    pub fn epoch_ms(&self) -> u64 {
        match self.reading() {
            Some(r) => (r.wall_us.max(0) / 1000) as u64,
            // Outside simulation: the process's real wall clock (this seam
            // is the one place the engine reads it). Inside a madsim runtime
            // with an observer that gives no readings (the step harness, a
            // user's observer), madsim answers `clock_gettime` with its
            // simulated clock, whose origin it draws from the run's seed:
            // deterministic, never the machine's time.
            #[allow(clippy::disallowed_methods)]
            None => {
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
            }
        }
    }

    /// Wall-clock milliseconds since this clock was created: steps with the
    /// node's wall clock.
    pub fn wall_ms(&self) -> u64 {
        match (self.base, self.reading()) {
            (Some(b), Some(r)) => (r.wall_us.saturating_sub(b.wall_us).max(0) / 1000) as u64,
            _ => self.start.elapsed().as_millis() as u64,
        }
    }

    /// Real time that passes while this node's clock counts `d`.
    pub fn real(&self, d: Duration) -> Duration {
        match self.reading() {
            Some(r) if r.rate_permille > 0 => {
                Duration::from_micros((d.as_micros() as u64).saturating_mul(1000) / r.rate_permille)
            }
            _ => d,
        }
    }

    /// Sleep for `d` as this node's clock counts it.
    pub async fn sleep(&self, d: Duration) {
        madsim::time::sleep(self.real(d)).await
    }
}
