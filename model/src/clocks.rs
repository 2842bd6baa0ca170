//! A node's clocks under `skew` windows, as both backends model them: the
//! simulator's node table (`sim/src/nodes.rs`) and a real-mode node
//! process (`node/src/control.rs`) answer `Observer::local_clock` from a
//! [`ClockModel`], and compose the node's open skews with [`compose`].
//!
//! The monotonic clock never jumps: a change of rate starts a new segment
//! where the old one ended. The wall clock is the monotonic one plus an
//! offset, so it steps when the offset changes (and keeps what drift did
//! to the monotonic clock).

use exactsim_engine::clock::ClockReading;

/// A node's clocks: a monotonic clock running at `rate` permille of real
/// time since `t0_us` (when it read `l0_us`), and a wall clock `offset_us`
/// away from it. Times are microseconds of the backend's own clock (the
/// simulation's; a real run's, since its start).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockModel {
    t0_us: u64,
    l0_us: u64,
    rate: u64,
    offset_us: i64,
}

impl Default for ClockModel {
    fn default() -> Self {
        ClockModel { t0_us: 0, l0_us: 0, rate: 1000, offset_us: 0 }
    }
}

impl ClockModel {
    /// The monotonic clock at `t_us`.
    pub fn mono(&self, t_us: u64) -> u64 {
        self.l0_us.saturating_add(t_us.saturating_sub(self.t0_us).saturating_mul(self.rate) / 1000)
    }

    /// From `t_us` on, run at `rate` permille with the wall clock
    /// `offset_us` away: the monotonic clock goes on from what it reads at
    /// `t_us`.
    pub fn set(&mut self, t_us: u64, rate: u64, offset_us: i64) {
        self.l0_us = self.mono(t_us);
        self.t0_us = t_us;
        self.rate = rate;
        self.offset_us = offset_us;
    }

    /// From `t_us` on, true again (the faults healed): real rate, and the
    /// wall clock stepped to true time, as NTP steps it. The monotonic
    /// clock goes on from what it reads at `t_us`: it never jumps back, so
    /// an elapsed time measured across the heal is not negative.
    pub fn true_again(&mut self, t_us: u64) {
        let mono_us = self.mono(t_us);
        self.set(t_us, 1000, t_us as i64 - mono_us as i64);
    }

    /// The current rate and wall offset.
    pub fn setting(&self) -> (u64, i64) {
        (self.rate, self.offset_us)
    }

    /// What the clocks read at `t_us`.
    pub fn reading(&self, t_us: u64) -> ClockReading {
        let mono_us = self.mono(t_us);
        ClockReading { mono_us, wall_us: (mono_us as i64).saturating_add(self.offset_us), rate_permille: self.rate }
    }
}

/// The rate (permille of real time) and wall offset (µs) of a node under
/// its open skews, each `(offset_ms, drift_permille)`: offsets and drifts
/// add up; the rate is at least 1.
pub fn compose(skews: impl IntoIterator<Item = (i64, i32)>) -> (u64, i64) {
    let (mut offset_ms, mut drift) = (0i64, 0i64);
    for (o, d) in skews {
        offset_ms = offset_ms.saturating_add(o);
        drift += d as i64;
    }
    ((1000 + drift).max(1) as u64, offset_ms.saturating_mul(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_made_true_again_keeps_its_monotonic_reading_and_steps_its_wall_clock() {
        let mut c = ClockModel::default();
        c.set(1_000, 1500, 600_000); // fast, and 600 ms ahead
        let before = c.reading(3_000);
        assert_eq!(before.mono_us, 4_000);
        c.true_again(3_000);
        let r = c.reading(3_000);
        assert_eq!(r.mono_us, before.mono_us, "the monotonic clock does not jump back");
        assert_eq!(r.wall_us, 3_000, "the wall clock is true");
        assert_eq!(r.rate_permille, 1000);
        let later = c.reading(5_000);
        assert_eq!((later.mono_us, later.wall_us), (6_000, 5_000));
    }

    #[test]
    fn a_rate_change_continues_the_monotonic_clock_and_an_offset_steps_the_wall_clock() {
        let mut c = ClockModel::default();
        assert_eq!(c.reading(5_000), ClockReading { mono_us: 5_000, wall_us: 5_000, rate_permille: 1000 });
        c.set(10_000, 2000, -3_000_000);
        let r = c.reading(10_000);
        assert_eq!((r.mono_us, r.wall_us), (10_000, -2_990_000), "no jump of mono; wall stepped back 3 s");
        assert_eq!(c.reading(11_000).mono_us, 12_000, "double speed");
        c.set(11_000, 1000, 0);
        assert_eq!(c.reading(12_000), ClockReading { mono_us: 13_000, wall_us: 13_000, rate_permille: 1000 });
    }

    #[test]
    fn skews_compose_by_adding_up() {
        assert_eq!(compose([]), (1000, 0));
        assert_eq!(compose([(5, 200), (-2, 300)]), (1500, 3_000));
        assert_eq!(compose([(0, -999), (0, -500)]), (1, 0), "a rate never reaches zero");
    }
}
