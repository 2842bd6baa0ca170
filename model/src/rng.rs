//! The one random number generator of a run. Every random choice of the
//! simulator (workload, topology, fault schedule, disk behaviour) comes from a
//! `SimRng` derived from the run's seed; probabilities are integer ratios.
//! madsim's own RNG (network latency, task order) is seeded with the same
//! seed.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// Sub-streams of a run, derived in this fixed order from the seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stream {
    Workload = 1,
    Topology = 2,
    Faults = 3,
    Network = 4,
    Disk = 5,
    Swarm = 6,
    /// Composite faults of a profile (`silent_restart`), drawn apart so
    /// that profiles without them keep their schedules.
    Composite = 7,
}

pub struct SimRng {
    inner: ChaCha8Rng,
}

impl SimRng {
    pub fn new(seed: u64) -> SimRng {
        SimRng { inner: ChaCha8Rng::seed_from_u64(seed) }
    }

    /// The independent sub-stream `s` of a run's seed.
    pub fn derive(seed: u64, s: Stream) -> SimRng {
        let mut r = ChaCha8Rng::seed_from_u64(seed);
        r.set_stream(s as u64);
        SimRng { inner: r }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// Uniform in `[0, n)`; `n > 0`. Unbiased (rejection sampling).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let x = self.next_u64();
            if x < zone {
                return x % n;
            }
        }
    }

    /// Uniform in `[lo, hi]` (inclusive).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(lo <= hi, "range({lo}, {hi})");
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `num/den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        assert!(den > 0 && num <= den, "chance({num}/{den})");
        self.below(den) < num
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        assert!(!xs.is_empty(), "pick from empty slice");
        &xs[self.below(xs.len() as u64) as usize]
    }

    pub fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            xs.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins the meaning of every seed: if a dependency upgrade changes these,
    /// every saved seed would silently mean a different run.
    #[test]
    fn first_outputs_are_pinned() {
        let mut r = SimRng::new(42);
        let got: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        let mut w = SimRng::derive(42, Stream::Workload);
        let got_w: Vec<u64> = (0..2).map(|_| w.below(1000)).collect();
        assert_eq!(got, PINNED, "ChaCha8 stream for seed 42 changed");
        assert_eq!(got_w, PINNED_W, "derived workload stream for seed 42 changed");
    }
    const PINNED: [u64; 3] = [12578764544318200737, 17529487244874322312, 7886285670807131020];
    const PINNED_W: [u64; 2] = [408, 21];

    #[test]
    fn streams_differ_and_range_is_inclusive() {
        let a = SimRng::derive(7, Stream::Faults).next_u64();
        let b = SimRng::derive(7, Stream::Disk).next_u64();
        assert_ne!(a, b);
        let mut r = SimRng::new(1);
        for _ in 0..1000 {
            let x = r.range(3, 5);
            assert!((3..=5).contains(&x));
        }
        assert!(!r.chance(0, 10));
        assert!(r.chance(10, 10));
    }
}
