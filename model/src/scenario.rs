//! What a scenario supplies: an input generator driven by the seed, the
//! pipeline (a keyed operator), and a batch reference computed from the
//! input alone, by code independent of the operator.

use crate::history::History;
use crate::rng::SimRng;
use exactsim_engine::config::JobConfig;
use exactsim_engine::pipeline::Pipeline;
use exactsim_engine::types::{OutRecord, Record};
use std::sync::Arc;

pub trait Scenario: Send + Sync {
    fn name(&self) -> &'static str;
    /// One line for `exactsim scenarios`.
    fn description(&self) -> &'static str;
    /// Adjust job parameters (pacing, parallelism) from the topology stream.
    fn tune(&self, _cfg: &mut JobConfig, _rng: &mut SimRng) {}
    /// The input topic: `partitions` partitions. Records of one key must all
    /// sit in one partition, `ts_ms` non-decreasing within a partition, ids
    /// unique.
    fn generate(&self, rng: &mut SimRng, partitions: u32) -> Vec<Vec<Record>>;
    fn pipeline(&self) -> Arc<dyn Pipeline>;
    /// The expected output after processing exactly the first `offsets[i]`
    /// records of each partition `i` (`offsets[i] == input[i].len()` means
    /// that source has ended). `out_id`s are unique in the result.
    fn reference(&self, input: &[Vec<Record>], offsets: &[u64]) -> Vec<OutRecord>;
    /// The same reference computed one input record at a time, when it only
    /// grows with the prefix (a record once expected stays expected, with
    /// the same fields): the oracles then follow a run's checkpoints in
    /// time linear in the input instead of calling `reference` once per
    /// checkpoint. The contract, property-tested against `reference`: for
    /// every `offsets`, the records pushed while advancing each partition
    /// `i` from 0 to `offsets[i]`, in any interleaving of the partitions,
    /// are exactly `reference(input, offsets)` (and nothing is expected
    /// before the first record). `None` (the default): the oracles call
    /// `reference` for each prefix they need.
    fn incremental<'a>(&self, _input: &'a [Vec<Record>]) -> Option<Box<dyn IncrementalReference + 'a>> {
        None
    }
    /// This workload's own invariants, checked in every run (every
    /// campaign, replay and shrink) after the engine-wide checks.
    fn checks(&self) -> Vec<ScenarioCheck> {
        Vec::new()
    }
    /// Planted bugs that live in this scenario's own code (its sink or its
    /// system): other scenarios never run that code, so `mutants` hunts
    /// such a bug only on the scenarios that name it.
    fn own_mutants(&self) -> Vec<exactsim_engine::config::Mutant> {
        Vec::new()
    }
    /// `Some(what is wrong)` for a scenario that carries a bug planted in
    /// its own code where `Mutant` cannot name it (a variant of a user's
    /// sink with a known 2PC bug, registered beside the correct one): it
    /// fails by design, so it runs only when named (`--scenario`), and
    /// `all` leaves it out. `None` (the default): an ordinary scenario.
    fn planted_bug(&self) -> Option<&'static str> {
        None
    }
    /// `true` for a scenario whose output is a keyed table of versioned
    /// upserts (`exactsim_engine::upsert`): its runs are at-least-once
    /// whatever mode the campaign asks for (no 2PC: deliveries duplicate and
    /// the version guard makes them harmless), judged by P17 (the final
    /// table) and P18 (no reader sees a key's version go back) besides the
    /// at-least-once checks. Its `reference` is the final row per key.
    fn upsert_table(&self) -> bool {
        false
    }
}

/// The delivery mode a run of `scenario` runs in when `asked`: an upsert
/// scenario's runs are at-least-once ([`Scenario::upsert_table`]).
pub fn mode_of(
    scenario: &dyn Scenario,
    asked: exactsim_engine::types::DeliveryMode,
) -> exactsim_engine::types::DeliveryMode {
    if scenario.upsert_table() {
        exactsim_engine::types::DeliveryMode::AtLeastOnce
    } else {
        asked
    }
}

/// A scenario's batch reference over a growing input prefix (see
/// [`Scenario::incremental`]).
pub trait IncrementalReference {
    /// Take the next record of input partition `partition` (the first not
    /// taken yet; the caller never advances past the partition's end) and
    /// push the output records that become expected.
    fn advance(&mut self, partition: usize, out: &mut Vec<OutRecord>);
}

/// A scenario's own check, declared like a row of `checks::CHECKS` so the
/// reports list it among the checks that ran (the run line's `checks=`, the
/// JSON report, JUnit, the campaign's table of checks), not only once it
/// fails.
#[derive(Clone, Copy)]
pub struct ScenarioCheck {
    /// Unique among every scenario's checks and the engine's: the scenario's
    /// name, a slash and the check's name (`inventory/no-oversell`).
    pub id: &'static str,
    /// A short name without spaces (`no-oversell`).
    pub name: &'static str,
    /// What the check asserts, in one line.
    pub meaning: &'static str,
    /// The check: one message per violation, found in the history alone.
    pub check: fn(&History) -> Vec<String>,
}

/// [`check_order_per_partition`] as a scenario's check with id `id`
/// (`copier/order-per-partition`): the reusable check carries its own name
/// and meaning, so each scenario only names its id.
pub const fn order_per_partition(id: &'static str) -> ScenarioCheck {
    ScenarioCheck {
        id,
        name: "order-per-partition",
        meaning: "in exactly-once runs, the records of each key appear in input order within every output partition",
        check: check_order_per_partition,
    }
}

/// A reusable scenario check: in exactly-once mode, within every output
/// partition of the final output, the records of each key appear in input
/// order (`src` increasing). Records of one key are handled by one
/// subtask and committed in checkpoint order, so a reorder means a commit
/// came out of order. (At-least-once mode replays, so it is not judged.)
pub fn check_order_per_partition(h: &History) -> Vec<String> {
    if h.mode != exactsim_engine::types::DeliveryMode::ExactlyOnce {
        return Vec::new();
    }
    let mut v = Vec::new();
    for (p, recs) in h.final_output.iter().enumerate() {
        let mut last: std::collections::BTreeMap<u64, u64> = std::collections::BTreeMap::new();
        for o in recs {
            if let Some(prev) = last.insert(o.key, o.src) {
                if o.src <= prev {
                    v.push(format!(
                        "partition {p}: key {} has src {} after src {prev}: out of input order",
                        o.key, o.src
                    ));
                }
            }
        }
    }
    v
}

/// The property test of a scenario's [`Scenario::incremental`] against its
/// `reference` on one input: `rounds` walks, each advancing the partitions
/// in a random interleaving towards random offsets (the last walk to the
/// end of every partition), comparing what was pushed so far with
/// `reference` over the offsets reached at random moments and at the end
/// of the walk. `Err` names the walk, the offsets and the first difference.
/// `Ok` when the scenario has no incremental reference.
pub fn check_incremental(s: &dyn Scenario, input: &[Vec<Record>], rng: &mut SimRng, rounds: u32) -> Result<(), String> {
    for round in 0..rounds {
        let Some(mut acc) = s.incremental(input) else { return Ok(()) };
        let target: Vec<u64> = input
            .iter()
            .map(|p| if round + 1 == rounds { p.len() as u64 } else { rng.range(0, p.len() as u64) })
            .collect();
        let mut at = vec![0u64; input.len()];
        let mut got = Vec::new();
        let compare = |at: &[u64], got: &[OutRecord]| -> Result<(), String> {
            let mut want = s.reference(input, at);
            let mut have = got.to_vec();
            want.sort();
            have.sort();
            if want == have {
                return Ok(());
            }
            let first = want.iter().zip(&have).position(|(a, b)| a != b).unwrap_or(want.len().min(have.len()));
            Err(format!(
                "{}: walk {round} at offsets {at:?}: the incremental reference has {} records, `reference` {}; first difference at sorted index {first}: {:?} vs {:?}",
                s.name(),
                have.len(),
                want.len(),
                have.get(first),
                want.get(first)
            ))
        };
        compare(&at, &got)?;
        loop {
            let open: Vec<usize> = (0..input.len()).filter(|&p| at[p] < target[p]).collect();
            if open.is_empty() {
                break;
            }
            let p = *rng.pick(&open);
            acc.advance(p, &mut got);
            at[p] += 1;
            if rng.chance(1, 64) {
                compare(&at, &got)?;
            }
        }
        compare(&at, &got)?;
    }
    Ok(())
}
