//! **Owns the retry backoff rule**: how long to wait before the next try of
//! something that keeps failing, as a plain function of the number of
//! failures so far and a random draw (no runtime, no clock, no RNG of its
//! own: the caller passes the draw, which in a run comes from the run's
//! seed).
//!
//! Exponential backoff with jitter, as operators of Flink and Kafka are told
//! to run it ("1 s doubling to 30 s"): the n-th consecutive failure waits
//! `min(initial * 2^(n-1), max)`, less up to `jitter_percent` of it drawn at
//! random, so that tasks that failed together do not retry together. The
//! engine's timeouts are a tenth of a production job's or less, so the
//! default policy is the same curve scaled by a tenth: 100 ms doubling to
//! 3 s, 20 % jitter ([`BackoffPolicy::default`]).
//!
//! With it, a task that fails without pause (a system that refuses at once)
//! retries at most [`BackoffPolicy::max_tries_in`] times in a window: under
//! the default policy 7 in the scaled minute of 6 s, then one every 2.4 s or
//! more — below the usual health threshold of 10 retries a minute a task
//! (`RETRY_WINDOW_MS`, check P21).

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The threshold's "minute", scaled like the default policy (a tenth): the
/// window over which a task's retries are counted.
pub const RETRY_WINDOW_MS: u64 = 6_000;

/// Fewer than this many retries of one task in any [`RETRY_WINDOW_MS`]
/// (the usual health threshold: under 10 retries a minute a task).
pub const MAX_RETRIES_PER_WINDOW: usize = 10;

/// An exponential backoff with jitter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackoffPolicy {
    /// The wait after the first failure, before jitter.
    pub initial_ms: u64,
    /// The largest wait, before jitter.
    pub max_ms: u64,
    /// Up to this share of a wait is taken off at random (0..=100).
    pub jitter_percent: u64,
}

impl Default for BackoffPolicy {
    /// 100 ms doubling to 3 s, 20 % jitter: the usual 1 s to 30 s at
    /// the engine's timescale.
    fn default() -> Self {
        BackoffPolicy { initial_ms: 100, max_ms: 3_000, jitter_percent: 20 }
    }
}

impl BackoffPolicy {
    /// The pause between re-sends of one request whose reply did not come
    /// ([`crate::net::Net::call_retry`]): the Kafka client's own defaults
    /// (`retry.backoff.ms` 100 ms doubling to `retry.backoff.max.ms` 1 s,
    /// 20 % jitter) scaled by the same tenth as [`BackoffPolicy::default`]:
    /// 10 ms doubling to 100 ms. A re-send has already waited out its
    /// timeout, so this only spreads re-sends that failed together.
    pub const fn rpc() -> Self {
        BackoffPolicy { initial_ms: 10, max_ms: 100, jitter_percent: 20 }
    }

    /// A fixed pause, no growth, no jitter.
    pub fn fixed(ms: u64) -> Self {
        BackoffPolicy { initial_ms: ms, max_ms: ms, jitter_percent: 0 }
    }

    /// Why this policy cannot be used, if it cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.initial_ms == 0 {
            return Err("retry backoff: initial_ms must be at least 1".into());
        }
        if self.max_ms < self.initial_ms {
            return Err(format!("retry backoff: max_ms ({}) is below initial_ms ({})", self.max_ms, self.initial_ms));
        }
        if self.jitter_percent > 100 {
            return Err(format!("retry backoff: jitter_percent ({}) is above 100", self.jitter_percent));
        }
        Ok(())
    }

    /// The wait before jitter after the `failures`-th consecutive failure
    /// (1 for the first).
    pub fn base_ms(&self, failures: u32) -> u64 {
        let doublings = failures.saturating_sub(1);
        let grown = if doublings >= self.initial_ms.leading_zeros() { u64::MAX } else { self.initial_ms << doublings };
        grown.min(self.max_ms).max(self.initial_ms)
    }

    /// The wait after the `failures`-th consecutive failure, jittered by
    /// `draw` (any u64; uniform draws give uniform jitter).
    pub fn delay(&self, failures: u32, draw: u64) -> Duration {
        let base = self.base_ms(failures);
        let span = base * self.jitter_percent.min(100) / 100;
        let off = if span == 0 { 0 } else { draw % (span + 1) };
        Duration::from_millis((base - off).max(1))
    }

    /// The most tries a task that fails at once can make in `window_ms`,
    /// counting the first failure at the window's start: what the shortest
    /// waits allow.
    pub fn max_tries_in(&self, window_ms: u64) -> usize {
        let mut t = 0u64;
        let mut tries = 1;
        for failures in 1.. {
            let shortest = self.base_ms(failures) - self.base_ms(failures) * self.jitter_percent.min(100) / 100;
            t = t.saturating_add(shortest.max(1));
            if t > window_ms {
                break;
            }
            tries += 1;
        }
        tries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_default_doubles_from_100_ms_to_3_s() {
        let p = BackoffPolicy::default();
        let bases: Vec<u64> = (1..=8).map(|n| p.base_ms(n)).collect();
        assert_eq!(bases, vec![100, 200, 400, 800, 1_600, 3_000, 3_000, 3_000]);
        assert_eq!(p.base_ms(0), 100, "no failure yet reads as the first");
        assert_eq!(p.base_ms(u32::MAX), 3_000, "no overflow");
    }

    #[test]
    fn jitter_takes_off_at_most_its_share() {
        let p = BackoffPolicy::default();
        assert_eq!(p.delay(1, 0), Duration::from_millis(100));
        assert_eq!(p.delay(1, 20), Duration::from_millis(80));
        assert_eq!(p.delay(1, 21), Duration::from_millis(100), "draws wrap");
        assert_eq!(p.delay(6, 600), Duration::from_millis(2_400));
        assert_eq!(BackoffPolicy::fixed(100).delay(9, 12345), Duration::from_millis(100));
    }

    #[test]
    fn the_default_stays_under_the_threshold_and_a_fixed_pause_does_not() {
        let p = BackoffPolicy::default();
        assert_eq!(p.max_tries_in(RETRY_WINDOW_MS), 7);
        assert!(p.max_tries_in(RETRY_WINDOW_MS) < MAX_RETRIES_PER_WINDOW);
        assert_eq!(BackoffPolicy::fixed(100).max_tries_in(RETRY_WINDOW_MS), 61);
    }

    #[test]
    fn request_re_sends_double_from_10_ms_to_100_ms() {
        let p = BackoffPolicy::rpc();
        assert!(p.validate().is_ok());
        let bases: Vec<u64> = (1..=6).map(|n| p.base_ms(n)).collect();
        assert_eq!(bases, vec![10, 20, 40, 80, 100, 100]);
        assert_eq!(p.delay(1, 2), Duration::from_millis(8));
    }

    #[test]
    fn bad_policies_are_refused_with_their_reason() {
        assert!(BackoffPolicy::default().validate().is_ok());
        let e = BackoffPolicy { initial_ms: 0, ..Default::default() }.validate().unwrap_err();
        assert!(e.contains("initial_ms"), "{e}");
        let e = BackoffPolicy { max_ms: 50, ..Default::default() }.validate().unwrap_err();
        assert!(e.contains("below initial_ms"), "{e}");
        let e = BackoffPolicy { jitter_percent: 101, ..Default::default() }.validate().unwrap_err();
        assert!(e.contains("jitter_percent"), "{e}");
    }

    proptest! {
        #[test]
        fn waits_grow_stay_within_bounds_and_jitter(
            initial in 1u64..1_000, extra in 0u64..10_000, jitter in 0u64..=100,
            draws in proptest::collection::vec(any::<u64>(), 1..40),
        ) {
            let p = BackoffPolicy { initial_ms: initial, max_ms: initial + extra, jitter_percent: jitter };
            prop_assert!(p.validate().is_ok());
            let mut last_base = 0;
            for (i, d) in draws.iter().enumerate() {
                let n = i as u32 + 1;
                let base = p.base_ms(n);
                prop_assert!(base >= last_base, "the base never shrinks");
                prop_assert!(base >= p.initial_ms);
                prop_assert!(base <= p.max_ms);
                let w = p.delay(n, *d).as_millis() as u64;
                prop_assert!(w <= base);
                prop_assert!(w >= base - base * jitter / 100);
                last_base = base;
            }
        }

        #[test]
        fn no_schedule_of_waits_beats_max_tries_in(
            jitter in 0u64..=100, draws in proptest::collection::vec(any::<u64>(), 1..80), window in 1u64..20_000,
        ) {
            let p = BackoffPolicy { jitter_percent: jitter, ..Default::default() };
            // A task failing at once after every wait: its tries in the window.
            let (mut t, mut tries) = (0u64, 1usize);
            for (i, d) in draws.iter().enumerate() {
                t += p.delay(i as u32 + 1, *d).as_millis() as u64;
                if t > window { break; }
                tries += 1;
            }
            prop_assert!(tries <= p.max_tries_in(window));
        }
    }
}
