//! P2 — at every observation, what a `read_committed` reader sees in each
//! output partition equals the batch reference over the input prefix of
//! some checkpoint completed by then (restricted to that partition), with
//! no duplicates, and the matched checkpoint never goes backwards.
//!
//! While a sink commits the pending transactions of a notification one by
//! one, the reader may see the cut of a checkpoint that was subsumed by the
//! completed one (its barrier passed every source, and a completed
//! checkpoint after it covers it). That is a consistent cut too, so it is
//! accepted, from the time the covering checkpoint completed.

use super::{ms, Ctx, Violation};
use exactsim_engine::types::OutRecord;
use std::collections::BTreeMap;

pub fn check(c: &Ctx) -> Vec<Violation> {
    let mut v = Vec::new();
    let n = c.h.parallelism;
    // Per partition, per candidate checkpoint: the expected records.
    let mut cands: Vec<(u64, u64)> = vec![(0, 0)]; // (valid from, ckpt)
    cands.extend(c.completed.iter().map(|x| (x.0, x.1)));
    for ck in c.cuts.keys() {
        if c.completed.iter().any(|x| x.1 == *ck) || c.cut(*ck).is_none() {
            continue;
        }
        if let Some(t) = c.completed.iter().filter(|x| x.1 > *ck).map(|x| x.0).min() {
            cands.push((t, *ck));
        }
    }
    let mut expected: BTreeMap<(u32, u64), BTreeMap<u64, OutRecord>> = BTreeMap::new();
    for &(_, ck) in &cands {
        let r = c.reference_at(ck);
        for p in 0..n {
            expected.insert((p, ck), BTreeMap::new());
        }
        for (id, o) in r.iter() {
            expected.get_mut(&(c.partition_of(o.key), ck)).expect("partition exists").insert(*id, o.clone());
        }
    }
    let mut visible: Vec<BTreeMap<u64, OutRecord>> = (0..n).map(|_| BTreeMap::new()).collect();
    let mut last_match: Vec<u64> = vec![0; n as usize];
    let mut bad_partitions = vec![false; n as usize];
    for obs in &c.h.observations {
        let p = obs.partition as usize;
        if bad_partitions[p] {
            continue;
        }
        for o in &obs.new_records {
            if visible[p].insert(o.out_id, o.clone()).is_some() {
                v.push(Violation::new(
                    "P2",
                    Some(obs.t_us),
                    format!("partition {p}: out_id {} visible twice at {}", o.out_id, ms(obs.t_us)),
                ));
                bad_partitions[p] = true;
            }
        }
        if bad_partitions[p] {
            continue;
        }
        let best = cands
            .iter()
            .filter(|(t, _)| *t <= obs.t_us)
            .filter(|(_, ck)| expected[&(p as u32, *ck)] == visible[p])
            .map(|(_, ck)| *ck)
            .max();
        match best {
            None => {
                let latest = cands.iter().filter(|(t, _)| *t <= obs.t_us).map(|x| x.1).max().unwrap_or(0);
                let want = &expected[&(p as u32, latest)];
                let extra: Vec<u64> = visible[p].keys().filter(|k| !want.contains_key(k)).take(3).copied().collect();
                let missing = want.keys().filter(|k| !visible[p].contains_key(k)).count();
                v.push(Violation::new(
                    "P2",
                    Some(obs.t_us),
                    format!(
                        "partition {p} at {}: {} visible records match no completed checkpoint's prefix (latest completed {latest}: {} beyond it e.g. {extra:?}, {missing} of it missing)",
                        ms(obs.t_us),
                        visible[p].len(),
                        visible[p].keys().filter(|k| !want.contains_key(k)).count()
                    ),
                ));
                bad_partitions[p] = true;
            }
            Some(ck) if ck < last_match[p] && expected[&(p as u32, ck)] != expected[&(p as u32, last_match[p])] => {
                v.push(Violation::new(
                    "P2",
                    Some(obs.t_us),
                    format!(
                        "partition {p}: visible prefix went back from checkpoint {} to {ck} at {}",
                        last_match[p],
                        ms(obs.t_us)
                    ),
                ));
                bad_partitions[p] = true;
            }
            Some(ck) => last_match[p] = last_match[p].max(ck),
        }
    }
    v
}
