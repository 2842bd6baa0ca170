//! P2 — at every observation during the run, what a `read_committed`
//! reader sees in an output partition equals the batch reference over the
//! input prefix of some checkpoint completed by then (restricted to that
//! partition), and that checkpoint never goes backwards (exactly-once mode).
//!
//! How: per stream, the `new_records` of the observations are
//! concatenated into the visible set (out_id -> record). A stream is what
//! one sink subtask writes into one output partition (the subtask that
//! handled the record's key): transactions of different subtasks commit
//! independently, so a partition written by several subtasks shows each
//! one's prefix, possibly of different checkpoints. With one partition per
//! subtask (the default partitioner) a stream is a partition.
//!
//! In a partition written by several subtasks, `read_committed` stops at
//! the first record of the earliest open transaction of any of them (the
//! last stable offset), so a reader may see a committed transaction in
//! part until the other writer's transaction ends. There a stream that
//! matches no checkpoint exactly is accepted when everything visible is in
//! the latest completed checkpoint's reference, with the reference's
//! values, and an exact match there says nothing about going backwards (P1
//! judges the final output in full, P3 early visibility; a visible record
//! that disappears is still reported). At each
//! observation time the candidates are the checkpoints completed by then
//! (plus "none": the empty prefix); the match is the highest candidate
//! whose expected set (the reference over its offsets, restricted to the
//! stream) equals the visible set, values included. Violations:
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
//!
//! Cost: every set carries a fingerprint (its size and a wrapping sum of a
//! mixing hash of each record), kept up to date as records become visible.
//! Sets are compared record by record only when their fingerprints agree,
//! so an observation costs O(candidates), not O(candidates x records).

use super::{first_few, ms, rec, Ctx, Violation};
use exactsim_engine::types::{CheckpointId, OutRecord};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

/// An order-independent summary of a set of records: equal sets have equal
/// fingerprints; unequal ones almost never do, and a match is confirmed by
/// a full comparison anyway.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Fingerprint {
    len: u64,
    sum: u64,
}

impl Fingerprint {
    fn add(&mut self, o: &OutRecord) {
        self.len += 1;
        self.sum = self.sum.wrapping_add(mix(o));
    }
}

/// splitmix64 over the record's fields.
fn mix(o: &OutRecord) -> u64 {
    let mut h = 0x9e37_79b9_7f4a_7c15u64;
    for x in [o.out_id, o.key, o.value as u64, o.src] {
        h ^= x;
        h = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
        h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^= h >> 31;
    }
    h
}

pub fn check(c: &Ctx) -> Vec<Violation> {
    let mut v = Vec::new();
    // Streams: (output partition, writing subtask), numbered p * w + s.
    let w = c.h.parallelism.max(1);
    let n = c.h.output_partitions * w;
    let stream_of = |o: &OutRecord| c.partition_of(o) * w + c.writer_of(o);
    // Partitions the reference has written by more than one subtask.
    let mut writers: BTreeMap<u32, BTreeSet<u32>> = BTreeMap::new();
    for o in &c.reference {
        writers.entry(c.partition_of(o)).or_default().insert(c.writer_of(o));
    }
    let shared = |s: usize| writers.get(&(s as u32 / w)).is_some_and(|ws| ws.len() > 1);
    let label = |s: usize| {
        let (p, sub) = (s as u32 / w, s as u32 % w);
        if p == sub {
            format!("partition {p}")
        } else {
            format!("partition {p} (records of sink {sub})")
        }
    };
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
    // Per candidate: its reference (by out_id), and per (partition,
    // candidate) the fingerprint of the expected records. The expected set
    // itself is walked only to confirm a fingerprint match, and built as a
    // map only for a violation message.
    let mut refs: BTreeMap<CheckpointId, Rc<BTreeMap<u64, OutRecord>>> = BTreeMap::new();
    let mut fingerprints: BTreeMap<(u32, CheckpointId), Fingerprint> = BTreeMap::new();
    for &(_, ck) in &cands {
        if refs.contains_key(&ck) {
            continue;
        }
        let r = c.reference_at(ck);
        let mut per_p = vec![Fingerprint::default(); n as usize];
        for o in r.values() {
            per_p[stream_of(o) as usize].add(o);
        }
        for (p, fp) in per_p.into_iter().enumerate() {
            fingerprints.insert((p as u32, ck), fp);
        }
        refs.insert(ck, r);
    }
    // The same fingerprints by candidate index and partition, for the hot
    // loop below (no map lookup per observation and candidate).
    let cand_fps: Vec<Vec<Fingerprint>> =
        cands.iter().map(|&(_, ck)| (0..n).map(|p| fingerprints[&(p, ck)]).collect()).collect();
    let in_p = |p: u32| move |o: &&OutRecord| stream_of(o) == p;
    let fp_of = |p: u32, ck: CheckpointId| fingerprints.get(&(p, ck)).copied().unwrap_or_default();
    // Whether the expected set of (p, ck) equals `set`: fingerprint first,
    // then record by record, once per distinct (p, ck, set) (a set that
    // only grows has a new fingerprint whenever it changes).
    let confirmed: RefCell<BTreeSet<(u32, CheckpointId, Fingerprint)>> = RefCell::default();
    let equals = |p: u32, ck: CheckpointId, set: &BTreeMap<u64, OutRecord>, set_fp: Fingerprint| {
        if fp_of(p, ck) != set_fp {
            return false;
        }
        if confirmed.borrow().contains(&(p, ck, set_fp)) {
            return true;
        }
        let same = refs[&ck].values().filter(in_p(p)).eq(set.values());
        if same {
            confirmed.borrow_mut().insert((p, ck, set_fp));
        }
        same
    };
    let want_of = |p: u32, ck: CheckpointId| -> BTreeMap<u64, OutRecord> {
        let r = refs.get(&ck).cloned().unwrap_or_else(|| c.reference_at(ck));
        r.values().filter(in_p(p)).map(|o| (o.out_id, o.clone())).collect()
    };

    let np = (n as usize).max(c.h.final_output.len() * w as usize);
    let mut visible: Vec<BTreeMap<u64, OutRecord>> = vec![BTreeMap::new(); np];
    let mut visible_fp: Vec<Fingerprint> = vec![Fingerprint::default(); np];
    let mut since: Vec<BTreeMap<u64, u64>> = vec![BTreeMap::new(); np];
    let mut last_match: Vec<Option<CheckpointId>> = vec![None; np];
    let mut bad: BTreeSet<usize> = BTreeSet::new();
    // Each observation, split into the streams of its partition.
    let split = c.h.observations.iter().flat_map(|obs| {
        let mut by: BTreeMap<usize, Vec<&OutRecord>> = BTreeMap::new();
        for o in &obs.new_records {
            by.entry((obs.partition * w + c.writer_of(o)) as usize).or_default().push(o);
        }
        by.into_iter().map(move |(s, recs)| (obs.t_us, s, recs))
    });
    for (t_us, p, new_records) in split {
        if p >= np || bad.contains(&p) {
            continue;
        }
        let mut twice = Vec::new();
        for o in new_records {
            if let Some(first) = visible[p].insert(o.out_id, o.clone()) {
                twice.push(format!("{} (first seen at {} as value {})", rec(o), ms(since[p][&o.out_id]), first.value));
            } else {
                since[p].insert(o.out_id, t_us);
                visible_fp[p].add(o);
            }
        }
        if !twice.is_empty() {
            v.push(Violation::new(
                "P2",
                Some(t_us),
                format!("{} at {}: {} records visible twice: {}", label(p), ms(t_us), twice.len(), first_few(twice)),
            ));
            bad.insert(p);
            continue;
        }
        let fp = visible_fp[p];
        let best = cands
            .iter()
            .zip(&cand_fps)
            .filter(|((t, _), fps)| *t <= t_us && fps.get(p).copied().unwrap_or_default() == fp)
            .map(|((_, ck), _)| *ck)
            .filter(|ck| equals(p as u32, *ck, &visible[p], fp))
            .max();
        match (best, last_match[p]) {
            (None, _) => {
                let latest = c.latest_completed(t_us);
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
                if shared(p) && beyond.is_empty() && differ.is_empty() {
                    continue; // a transaction seen in part behind the last stable offset
                }
                v.push(Violation::new(
                    "P2",
                    Some(t_us),
                    format!(
                        "{} at {}: the {} visible records match no completed checkpoint's prefix; against the latest completed checkpoint {latest}: {} beyond it [{}], {} of it missing [{}], {} with other values [{}]",
                        label(p),
                        ms(t_us),
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
            (Some(ck), Some(prev))
                if ck < prev && !shared(p) && !equals(p as u32, prev, &want_of(p as u32, ck), fp_of(p as u32, ck)) =>
            {
                v.push(Violation::new(
                    "P2",
                    Some(t_us),
                    format!(
                        "{} at {}: the visible prefix went back from checkpoint {prev} to checkpoint {ck}",
                        label(p),
                        ms(t_us)
                    ),
                ));
                bad.insert(p);
            }
            (Some(ck), prev) => last_match[p] = Some(prev.map_or(ck, |l| l.max(ck))),
        }
    }
    // The visible prefix never shrinks: what a reader saw stays visible.
    if c.h.final_read_ok {
        for p in 0..np {
            let Some(fin) = c.h.final_output.get(p / w as usize) else { continue };
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
                        "{}: {} records visible during the run are gone from the final read: {}",
                        label(p),
                        gone.len(),
                        first_few(gone.iter().map(|o| format!("{} visible since {}", rec(o), ms(since[p][&o.out_id]))))
                    ),
                ));
            }
        }
    }
    v
}
