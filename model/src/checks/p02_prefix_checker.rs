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
//! Cost: the expected sets come from [`Ctx::prefixes`], the candidates'
//! references as lineages of growing prefixes in which every expected
//! record has a birth position. Per stream and lineage the checker keeps
//! how many visible records are not expected at all (or with other values,
//! or in another stream) and the latest birth among the others; the
//! visible set equals a candidate's expected set exactly when none is
//! unexpected, the latest birth is at or before the candidate's position
//! and the candidate expects as many records in the stream as are visible.
//! So an observation costs O(candidates) and the whole check is linear in
//! the input (times a logarithm), whatever the number of checkpoints.
//!
//! Without lineages (a scenario without an incremental reference) every
//! candidate's reference is computed whole ([`Ctx::reference_at`]), and
//! each set carries a fingerprint (its size and a wrapping sum of a mixing
//! hash of each record), kept up to date as records become visible; sets
//! are compared record by record only when their fingerprints agree.

use super::prefixes::Prefixes;
use super::{first_few, ms, rec, Ctx, Finding};
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

/// What P2 asks about the expected sets: one stream `s` (output partition
/// times parallelism plus writing subtask), one candidate checkpoint.
trait Expected {
    /// A record became visible in stream `s` (its first time).
    fn seen(&mut self, s: usize, o: &OutRecord);
    /// Whether `visible` (everything seen in `s`) equals the expected set
    /// of `ck` in `s`, values included.
    fn equals(&self, s: usize, ck: CheckpointId, visible: &BTreeMap<u64, OutRecord>) -> bool;
    /// Whether candidates `a` and `b` expect the same records in `s`.
    fn same(&self, s: usize, a: CheckpointId, b: CheckpointId) -> bool;
    /// Whether every record of `visible` is in the expected set of `ck` in
    /// `s`, with its values.
    fn within(&self, s: usize, ck: CheckpointId, visible: &BTreeMap<u64, OutRecord>) -> bool;
    /// The expected set of `ck` in `s`, by out_id (for messages).
    fn want(&self, s: usize, ck: CheckpointId) -> BTreeMap<u64, OutRecord>;
}

/// The stream numbering: (output partition, writing subtask) as p * w + s.
struct Streams<'c, 'a> {
    c: &'c Ctx<'a>,
    w: u32,
    /// Streams the reference can write: output partitions times w.
    n: u32,
}

impl Streams<'_, '_> {
    fn of(&self, o: &OutRecord) -> usize {
        (self.c.partition_of(o) * self.w + self.c.writer_of(o)) as usize
    }
}

pub fn check(c: &Ctx) -> Vec<Finding> {
    let w = c.writers.max(1);
    let streams = Streams { c, w, n: c.h.output_partitions * w };
    let cands = c.candidates();
    match c.prefixes() {
        Some(px) => judge(c, &streams, &cands, &mut ByLineages::new(&streams, px)),
        None => judge(c, &streams, &cands, &mut ByReferences::new(&streams, &cands)),
    }
}

fn judge(c: &Ctx, st: &Streams, cands: &[(u64, CheckpointId)], ex: &mut impl Expected) -> Vec<Finding> {
    let mut v = Vec::new();
    let w = st.w;
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

    let by_time = ByTime::new(cands);
    let np = (st.n as usize).max(c.h.final_output.len() * w as usize);
    let mut visible: Vec<BTreeMap<u64, OutRecord>> = vec![BTreeMap::new(); np];
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
                ex.seen(p, o);
            }
        }
        if !twice.is_empty() {
            v.push(Finding::new(
                Some(t_us),
                format!("{} at {}: {} records visible twice: {}", label(p), ms(t_us), twice.len(), first_few(twice)),
            ));
            bad.insert(p);
            continue;
        }
        let best = best_match(&by_time, t_us, |ck| ex.equals(p, ck, &visible[p]));
        match (best, last_match[p]) {
            (None, _) => {
                let latest = c.latest_completed(t_us);
                if shared(p) && ex.within(p, latest, &visible[p]) {
                    continue; // a transaction seen in part behind the last stable offset
                }
                let want = ex.want(p, latest);
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
                v.push(Finding::new(Some(t_us),
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
            (Some(ck), Some(prev)) if ck < prev && !shared(p) && !ex.same(p, prev, ck) => {
                v.push(Finding::new(
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
        let at_end: Vec<BTreeSet<u64>> =
            c.h.final_output.iter().map(|fin| fin.iter().map(|o| o.out_id).collect()).collect();
        for p in 0..np {
            let Some(at_end) = at_end.get(p / w as usize) else { continue };
            if bad.contains(&p) {
                continue;
            }
            let gone: Vec<&OutRecord> = visible[p].values().filter(|o| !at_end.contains(&o.out_id)).collect();
            if let Some(t) = gone.iter().map(|o| since[p][&o.out_id]).min() {
                v.push(Finding::new(
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

/// The expected sets from the lineages of growing prefixes.
struct ByLineages<'x, 's, 'c, 'a> {
    st: &'s Streams<'c, 'a>,
    px: &'x Prefixes,
    /// Per lineage, stream and position: how many records the prefix at
    /// that position expects in the stream.
    counts: Vec<Vec<Vec<u32>>>,
    /// Per lineage and stream: visible records the lineage does not expect
    /// there with those values, and the latest birth of the others.
    unexpected: Vec<Vec<u32>>,
    latest_birth: Vec<Vec<Option<usize>>>,
}

impl<'x, 's, 'c, 'a> ByLineages<'x, 's, 'c, 'a> {
    fn new(st: &'s Streams<'c, 'a>, px: &'x Prefixes) -> Self {
        let n = st.n as usize;
        let counts = px
            .lineages
            .iter()
            .map(|l| {
                let mut per = vec![vec![0u32; l.positions]; n];
                for (o, b) in &l.born {
                    per[st.of(o)][*b] += 1;
                }
                for row in per.iter_mut() {
                    for j in 1..row.len() {
                        row[j] += row[j - 1];
                    }
                }
                per
            })
            .collect();
        let np = px.lineages.len();
        ByLineages { st, px, counts, unexpected: vec![Vec::new(); np], latest_birth: vec![Vec::new(); np] }
    }

    fn count(&self, s: usize, k: usize, j: usize) -> usize {
        self.counts[k].get(s).map_or(0, |row| row[j] as usize)
    }

    /// (unexpected, latest birth) of stream `s` in lineage `k`.
    fn stats(&self, s: usize, k: usize) -> (u32, Option<usize>) {
        (self.unexpected[k].get(s).copied().unwrap_or(0), self.latest_birth[k].get(s).copied().flatten())
    }
}

impl Expected for ByLineages<'_, '_, '_, '_> {
    fn seen(&mut self, s: usize, o: &OutRecord) {
        let home = self.st.of(o);
        for (k, l) in self.px.lineages.iter().enumerate() {
            if self.unexpected[k].len() <= s {
                self.unexpected[k].resize(s + 1, 0);
                self.latest_birth[k].resize(s + 1, None);
            }
            match l.get(o.out_id) {
                Some((u, b)) if u == o && home == s => {
                    let lb = &mut self.latest_birth[k][s];
                    *lb = Some(lb.map_or(*b, |x| x.max(*b)));
                }
                _ => self.unexpected[k][s] += 1,
            }
        }
    }

    fn equals(&self, s: usize, ck: CheckpointId, visible: &BTreeMap<u64, OutRecord>) -> bool {
        let Some((k, j)) = self.px.at(ck) else { return false };
        let (unexpected, latest) = self.stats(s, k);
        unexpected == 0 && latest.is_none_or(|b| b <= j) && self.count(s, k, j) == visible.len()
    }

    fn same(&self, s: usize, a: CheckpointId, b: CheckpointId) -> bool {
        match (self.px.at(a), self.px.at(b)) {
            (Some((ka, ja)), Some((kb, jb))) if ka == kb => self.count(s, ka, ja) == self.count(s, kb, jb),
            _ => self.want(s, a) == self.want(s, b),
        }
    }

    fn within(&self, s: usize, ck: CheckpointId, _visible: &BTreeMap<u64, OutRecord>) -> bool {
        let Some((k, j)) = self.px.at(ck) else { return false };
        let (unexpected, latest) = self.stats(s, k);
        unexpected == 0 && latest.is_none_or(|b| b <= j)
    }

    fn want(&self, s: usize, ck: CheckpointId) -> BTreeMap<u64, OutRecord> {
        if self.px.at(ck).is_none() {
            let r = self.st.c.reference_at(ck);
            return r.values().filter(|o| self.st.of(o) == s).map(|o| (o.out_id, o.clone())).collect();
        }
        self.px.expected(ck).filter(|o| self.st.of(o) == s).map(|o| (o.out_id, o.clone())).collect()
    }
}

/// The candidates by the time from which they may be seen, each with the
/// highest id among it and the ones before it.
struct ByTime {
    cands: Vec<(u64, CheckpointId)>,
    highest: Vec<CheckpointId>,
}

impl ByTime {
    fn new(cands: &[(u64, CheckpointId)]) -> ByTime {
        let mut by_time = cands.to_vec();
        by_time.sort_by_key(|x| x.0); // stable: ties keep their order
        let highest = by_time
            .iter()
            .scan(0, |m, x| {
                *m = (*m).max(x.1);
                Some(*m)
            })
            .collect();
        ByTime { cands: by_time, highest }
    }
}

/// The highest candidate that may be seen at `t_us` and `matches`: the
/// latest candidates are tried first, and the search stops once no
/// earlier one could be higher than the match found (an observation
/// usually matches one of the last few, and trying every candidate made
/// the check quadratic in the run's length).
fn best_match(c: &ByTime, t_us: u64, mut matches: impl FnMut(CheckpointId) -> bool) -> Option<CheckpointId> {
    let n = c.cands.partition_point(|x| x.0 <= t_us);
    let mut best: Option<CheckpointId> = None;
    for i in (0..n).rev() {
        if best.is_some_and(|b| c.highest[i] <= b) {
            break;
        }
        let ck = c.cands[i].1;
        if best.is_none_or(|b| ck > b) && matches(ck) {
            best = Some(ck);
        }
    }
    best
}

/// The expected sets from each candidate's whole reference
/// ([`Ctx::reference_at`]), compared through fingerprints.
struct ByReferences<'s, 'c, 'a> {
    st: &'s Streams<'c, 'a>,
    refs: BTreeMap<CheckpointId, Rc<BTreeMap<u64, OutRecord>>>,
    /// Per (stream, candidate): the fingerprint of the expected records.
    fingerprints: BTreeMap<(usize, CheckpointId), Fingerprint>,
    /// Per stream: the fingerprint of the visible records.
    visible_fp: Vec<Fingerprint>,
    /// (stream, candidate, visible fingerprint) found equal record by
    /// record (a set that only grows has a new fingerprint whenever it
    /// changes).
    confirmed: RefCell<BTreeSet<(usize, CheckpointId, Fingerprint)>>,
}

impl<'s, 'c, 'a> ByReferences<'s, 'c, 'a> {
    fn new(st: &'s Streams<'c, 'a>, cands: &[(u64, CheckpointId)]) -> Self {
        let mut refs = BTreeMap::new();
        let mut fingerprints = BTreeMap::new();
        for &(_, ck) in cands {
            if refs.contains_key(&ck) {
                continue;
            }
            let r = st.c.reference_at(ck);
            let mut per = vec![Fingerprint::default(); st.n as usize];
            for o in r.values() {
                per[st.of(o)].add(o);
            }
            for (s, fp) in per.into_iter().enumerate() {
                fingerprints.insert((s, ck), fp);
            }
            refs.insert(ck, r);
        }
        ByReferences { st, refs, fingerprints, visible_fp: Vec::new(), confirmed: RefCell::default() }
    }

    fn fp_of(&self, s: usize, ck: CheckpointId) -> Fingerprint {
        self.fingerprints.get(&(s, ck)).copied().unwrap_or_default()
    }

    fn expected(&self, s: usize, ck: CheckpointId) -> impl Iterator<Item = &OutRecord> + '_ {
        self.refs.get(&ck).into_iter().flat_map(|r| r.values()).filter(move |o| self.st.of(o) == s)
    }
}

impl Expected for ByReferences<'_, '_, '_> {
    fn seen(&mut self, s: usize, o: &OutRecord) {
        if self.visible_fp.len() <= s {
            self.visible_fp.resize(s + 1, Fingerprint::default());
        }
        self.visible_fp[s].add(o);
    }

    fn equals(&self, s: usize, ck: CheckpointId, visible: &BTreeMap<u64, OutRecord>) -> bool {
        let fp = self.visible_fp.get(s).copied().unwrap_or_default();
        if self.fp_of(s, ck) != fp {
            return false;
        }
        if self.confirmed.borrow().contains(&(s, ck, fp)) {
            return true;
        }
        let same = self.expected(s, ck).eq(visible.values());
        if same {
            self.confirmed.borrow_mut().insert((s, ck, fp));
        }
        same
    }

    fn same(&self, s: usize, a: CheckpointId, b: CheckpointId) -> bool {
        self.fp_of(s, a) == self.fp_of(s, b) && self.expected(s, a).eq(self.expected(s, b))
    }

    fn within(&self, s: usize, ck: CheckpointId, visible: &BTreeMap<u64, OutRecord>) -> bool {
        let want = self.want(s, ck);
        visible.values().all(|o| want.get(&o.out_id) == Some(o))
    }

    fn want(&self, s: usize, ck: CheckpointId) -> BTreeMap<u64, OutRecord> {
        let r = self.refs.get(&ck).cloned().unwrap_or_else(|| self.st.c.reference_at(ck));
        r.values().filter(|o| self.st.of(o) == s).map(|o| (o.out_id, o.clone())).collect()
    }
}

#[cfg(test)]
mod best_match_tests {
    use super::*;

    #[test]
    fn the_best_match_is_the_highest_matching_candidate_seen_by_then() {
        // Candidates out of id order in time (a subsumed checkpoint may be
        // seen from a later completion), ties in time, and a time before
        // any: the search answers as trying every candidate does.
        let cands = [(0, 0), (20, 1), (50, 2), (50, 4), (60, 3), (90, 6), (95, 5)];
        let by_time = ByTime::new(&cands);
        for t in 0..100 {
            for mask in 0u32..128 {
                let m = |ck: u64| mask & (1 << ck) != 0;
                let scan = cands.iter().filter(|(ct, ck)| *ct <= t && m(*ck)).map(|c| c.1).max();
                assert_eq!(best_match(&by_time, t, m), scan, "t {t} mask {mask:b}");
            }
        }
    }
}
