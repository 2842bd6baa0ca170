//! # inventory
//!
//! ## What it models
//! An e-commerce order stream deducting stock per SKU: an order is accepted
//! when the SKU has enough stock left and deducts its quantity, else it is
//! rejected. Initial stock of SKU `s` is `10 + s % 20`.
//!
//! Output per order: `out_id` = order id, `key` = SKU, `value` = the stock
//! left after the order if accepted, or `-(stock + 1)` if rejected (stock
//! unchanged): both the decision and the stock are recoverable.
//!
//! ## Invariants checked
//! P1–P13 as every scenario, plus its own check `inventory/no-oversell`
//! ([`check_no_oversell`], in every exactly-once run): the accepted quantity of a SKU
//! never exceeds its initial stock. A replayed order deducted twice shows
//! up as a wrong decision or stock (P1).
//!
//! ## Fault points it expects to reach
//! All of them; the stateful decisions make lost or doubled state visible
//! after during_recovery and between_commits.

use crate::gen::layout;
use exactsim_engine::pipeline::{KeyedOperator, Pipeline};
use exactsim_engine::types::{OutRecord, Record};
use exactsim_model::history::History;
use exactsim_model::rng::SimRng;
use exactsim_model::scenario::{IncrementalReference, Scenario, ScenarioCheck};
use std::collections::BTreeMap;
use std::sync::Arc;

pub struct Inventory;

pub fn initial_stock(sku: u64) -> i64 {
    10 + (sku % 20) as i64
}

struct Op {
    stock: BTreeMap<u64, i64>,
}

impl KeyedOperator for Op {
    fn process(&mut self, rec: &Record, out: &mut Vec<OutRecord>) {
        let s = self.stock.entry(rec.key).or_insert_with(|| initial_stock(rec.key));
        let value = if *s >= rec.value {
            *s -= rec.value;
            *s
        } else {
            -(*s + 1)
        };
        out.push(OutRecord::new(rec.id, rec.key, value, rec.id));
    }
    fn snapshot(&self) -> Vec<u8> {
        bincode::serialize(&self.stock).expect("serializable")
    }
    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.stock = bincode::deserialize(bytes).map_err(|e| format!("inventory state: {e}"))?;
        Ok(())
    }
    fn restore_keys(&mut self, bytes: &[u8], keep: &dyn Fn(u64) -> bool) -> Result<(), String> {
        crate::restore_keys(&mut self.stock, bytes, keep, |k| *k, "inventory")
    }
}

struct P;
impl Pipeline for P {
    fn name(&self) -> &str {
        "inventory"
    }
    fn create(&self, _subtask: u32, _parallelism: u32) -> Box<dyn KeyedOperator> {
        Box::new(Op { stock: BTreeMap::new() })
    }
}

impl Scenario for Inventory {
    fn name(&self) -> &'static str {
        "inventory"
    }
    fn description(&self) -> &'static str {
        "orders deduct stock per SKU, accepted or rejected; no oversell"
    }
    fn generate(&self, rng: &mut SimRng, partitions: u32) -> Vec<Vec<Record>> {
        let n = rng.range(2000, 4000);
        let skus = rng.range(30, 100);
        let draws = (0..n).map(|_| (rng.below(skus), rng.range(1, 5) as i64)).collect();
        layout(rng, partitions, draws, 3)
    }
    fn pipeline(&self) -> Arc<dyn Pipeline> {
        Arc::new(P)
    }
    fn checks(&self) -> Vec<ScenarioCheck> {
        vec![ScenarioCheck {
            id: "inventory/no-oversell",
            name: "no-oversell",
            meaning: "in exactly-once runs, no SKU's accepted orders exceed its initial stock",
            check: no_oversell,
        }]
    }
    fn reference(&self, input: &[Vec<Record>], offsets: &[u64]) -> Vec<OutRecord> {
        let mut out = Vec::new();
        for (p, recs) in input.iter().enumerate() {
            let mut left: BTreeMap<u64, i64> = BTreeMap::new();
            for r in &recs[..offsets[p] as usize] {
                let s = left.entry(r.key).or_insert(initial_stock(r.key));
                let accepted = *s >= r.value;
                if accepted {
                    *s -= r.value;
                }
                out.push(OutRecord::new(r.id, r.key, if accepted { *s } else { -(*s + 1) }, r.id));
            }
        }
        out
    }
    fn incremental<'a>(&self, input: &'a [Vec<Record>]) -> Option<Box<dyn IncrementalReference + 'a>> {
        Some(crate::per_record::per_record(input, |left: &mut BTreeMap<u64, i64>, r: &Record| {
            let s = left.entry(r.key).or_insert(initial_stock(r.key));
            let accepted = *s >= r.value;
            if accepted {
                *s -= r.value;
            }
            OutRecord::new(r.id, r.key, if accepted { *s } else { -(*s + 1) }, r.id)
        }))
    }
}

/// `check_no_oversell` over the final committed output of an exactly-once
/// run. (At-least-once mode replays records into state restored without
/// alignment, so a replayed order can be decided differently: the output
/// then mixes two timelines and is not judged.)
fn no_oversell(h: &History) -> Vec<String> {
    if h.mode != exactsim_engine::types::DeliveryMode::ExactlyOnce {
        return Vec::new();
    }
    let out: Vec<OutRecord> = h.final_output.iter().flatten().cloned().collect();
    check_no_oversell(&h.input, &out).err().into_iter().collect()
}

/// No SKU sells more than its initial stock, judged from committed output.
pub fn check_no_oversell(input: &[Vec<Record>], outputs: &[OutRecord]) -> Result<(), String> {
    let qty: BTreeMap<u64, i64> = input.iter().flatten().map(|r| (r.id, r.value)).collect();
    let mut sold: BTreeMap<u64, i64> = BTreeMap::new();
    // One decision per order: a duplicate (at-least-once mode) sells nothing more.
    let mut seen = std::collections::BTreeSet::new();
    for o in outputs.iter().filter(|o| o.value >= 0 && seen.insert(o.out_id)) {
        *sold.entry(o.key).or_default() += qty.get(&o.src).copied().unwrap_or(0);
    }
    for (sku, s) in sold {
        if s > initial_stock(sku) {
            return Err(format!("SKU {sku} oversold: {s} accepted of {} in stock", initial_stock(sku)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_never_oversells_and_operator_agrees() {
        let input = Inventory.generate(&mut SimRng::new(3), 2);
        let full: Vec<u64> = input.iter().map(|p| p.len() as u64).collect();
        let want = Inventory.reference(&input, &full);
        check_no_oversell(&input, &want).unwrap();
        let mut op = P.create(0, 1);
        let mut got = Vec::new();
        for r in input[1].iter().chain(input[0].iter()) {
            op.process(r, &mut got);
        }
        got.sort();
        let mut want = want;
        want.sort();
        assert_eq!(got, want);
        // Accepting every order twice (as new decisions) oversells.
        let mut doubled = want.clone();
        doubled.extend(
            want.iter().filter(|o| o.value >= 0).map(|o| OutRecord { out_id: o.out_id + 1_000_000, ..o.clone() }),
        );
        assert!(check_no_oversell(&input, &doubled).is_err());
        // A duplicate of the same decision (at-least-once mode) sells nothing more.
        let mut dup = want.clone();
        dup.extend(want.iter().cloned());
        check_no_oversell(&input, &dup).unwrap();
    }

    #[test]
    fn incremental_reference_matches_reference() {
        for seed in 0..4 {
            let input = Inventory.generate(&mut SimRng::new(seed), 3);
            exactsim_model::scenario::check_incremental(&Inventory, &input, &mut SimRng::new(seed), 6).unwrap();
        }
    }
}
