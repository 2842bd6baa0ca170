//! P2 — at every observation during the run, what a `read_committed`
//! reader sees in an output partition equals the batch reference over the
//! input prefix of some checkpoint completed by then (restricted to that
//! partition), and that checkpoint never goes backwards (exactly-once mode).
//!
//! How: per partition, the `new_records` of the observations are
//! concatenated into the visible set (out_id -> record). At each
//! observation time the candidates are the checkpoints completed by then
//! (plus "none": the empty prefix); the match is the highest candidate
//! whose expected set (the reference over its offsets, filtered by
//! `key_to_subtask`) equals the visible set, values included. Violations:
//! an out_id visible twice; no candidate matching; a match whose expected
//! set differs from, and is older than, an earlier match (went backwards);
//! and a record visible during the run that is gone from the final read
//! (the visible prefix shrank). A partition is not judged further after its
//! first violation, to report the cause and not its echoes.
//!
//! While a sink commits the pending transactions of one notification one
//! by one, the reader may see the cut of a checkpoint that never completed
//! itself but was subsumed by a completed later one (its barrier passed
//! every source, see `SourceBarrier`). That is a consistent cut too, so it
//! is a candidate from the time the covering checkpoint completed. The
//! reference of each candidate is computed once.

use super::{first_few, ms, rec, Ctx, Violation};
use exactsim_engine::types::{CheckpointId, OutRecord};
use std::collections::{BTreeMap, BTreeSet};

pub fn check(c: &Ctx) -> Vec<Violation> {
    let mut v = Vec::new();
    let n = c.h.parallelism;
    // Candidate checkpoints: (valid from, id). 0 is the empty prefix.
    let mut cands: Vec<(u64, CheckpointId)> = vec![(0, 0)];
    cands.extend(c.completed.iter().map(|x| (x.0, x.1)));
    for ck in c.cuts.keys() {
        if c.completed_at(*ck).is_some() || c.cut(*ck).is_none() {
            continue;
        }
        if let Some(t) = c.completed.iter().filter(|x| x.1 > *ck).map(|x| x.0).min() {
            cands.push((t, *ck));
        }
    }
    // Per (partition, candidate): the expected records.
    let mut expected: BTreeMap<(u32, CheckpointId), BTreeMap<u64, OutRecord>> = BTreeMap::new();
    for &(_, ck) in &cands {
        if expected.contains_key(&(0, ck)) {
            continue;
        }
        for p in 0..n {
            expected.insert((p, ck), BTreeMap::new());
        }
        for (id, o) in c.reference_at(ck).iter() {
            let p = c.partition_of(o.key);
            expected.entry((p, ck)).or_default().insert(*id, o.clone());
        }
    }
    let empty = BTreeMap::new();
    let want_of = |p: u32, ck: CheckpointId| expected.get(&(p, ck)).unwrap_or(&empty);

    let np = (n as usize).max(c.h.final_output.len());
    let mut visible: Vec<BTreeMap<u64, OutRecord>> = vec![BTreeMap::new(); np];
    let mut since: Vec<BTreeMap<u64, u64>> = vec![BTreeMap::new(); np];
    let mut last_match: Vec<Option<CheckpointId>> = vec![None; np];
    let mut bad: BTreeSet<usize> = BTreeSet::new();
    for obs in &c.h.observations {
        let p = obs.partition as usize;
        if p >= np || bad.contains(&p) {
            continue;
        }
        let mut twice = Vec::new();
        for o in &obs.new_records {
            if let Some(first) = visible[p].insert(o.out_id, o.clone()) {
                twice.push(format!("{} (first seen at {} as value {})", rec(o), ms(since[p][&o.out_id]), first.value));
            } else {
                since[p].insert(o.out_id, obs.t_us);
            }
        }
        if !twice.is_empty() {
            v.push(Violation::new(
                "P2",
                Some(obs.t_us),
                format!(
                    "partition {p} at {}: {} records visible twice: {}",
                    ms(obs.t_us),
                    twice.len(),
                    first_few(twice)
                ),
            ));
            bad.insert(p);
            continue;
        }
        let now: Vec<CheckpointId> = cands.iter().filter(|(t, _)| *t <= obs.t_us).map(|x| x.1).collect();
        let best = now.iter().copied().filter(|ck| *want_of(p as u32, *ck) == visible[p]).max();
        match (best, last_match[p]) {
            (None, _) => {
                let latest = c.latest_completed(obs.t_us);
                let want = want_of(p as u32, latest);
                let beyond: Vec<String> =
                    visible[p].values().filter(|o| !want.contains_key(&o.out_id)).map(rec).collect();
                let missing: Vec<String> =
                    want.values().filter(|o| !visible[p].contains_key(&o.out_id)).map(rec).collect();
                let differ: Vec<String> = visible[p]
                    .values()
                    .filter_map(|o| {
                        want.get(&o.out_id)
                            .filter(|w| *w != o)
                            .map(|w| format!("{} expected value {}", rec(o), w.value))
                    })
                    .collect();
                v.push(Violation::new(
                    "P2",
                    Some(obs.t_us),
                    format!(
                        "partition {p} at {}: the {} visible records match no completed checkpoint's prefix; against the latest completed checkpoint {latest}: {} beyond it [{}], {} of it missing [{}], {} with other values [{}]",
                        ms(obs.t_us),
                        visible[p].len(),
                        beyond.len(),
                        first_few(beyond.iter().cloned()),
                        missing.len(),
                        first_few(missing.iter().cloned()),
                        differ.len(),
                        first_few(differ.iter().cloned()),
                    ),
                ));
                bad.insert(p);
            }
            (Some(ck), Some(prev)) if ck < prev && want_of(p as u32, ck) != want_of(p as u32, prev) => {
                v.push(Violation::new(
                    "P2",
                    Some(obs.t_us),
                    format!(
                        "partition {p} at {}: the visible prefix went back from checkpoint {prev} to checkpoint {ck}",
                        ms(obs.t_us)
                    ),
                ));
                bad.insert(p);
            }
            (Some(ck), prev) => last_match[p] = Some(prev.map_or(ck, |l| l.max(ck))),
        }
    }
    // The visible prefix never shrinks: what a reader saw stays visible.
    if c.h.final_read_ok {
        for (p, fin) in c.h.final_output.iter().enumerate() {
            if bad.contains(&p) {
                continue;
            }
            let at_end: BTreeSet<u64> = fin.iter().map(|o| o.out_id).collect();
            let gone: Vec<&OutRecord> = visible[p].values().filter(|o| !at_end.contains(&o.out_id)).collect();
            if let Some(t) = gone.iter().map(|o| since[p][&o.out_id]).min() {
                v.push(Violation::new(
                    "P2",
                    Some(t),
                    format!(
                        "partition {p}: {} records visible during the run are gone from the final read: {}",
                        gone.len(),
                        first_few(gone.iter().map(|o| format!("{} visible since {}", rec(o), ms(since[p][&o.out_id]))))
                    ),
                ));
            }
        }
    }
    v
}
