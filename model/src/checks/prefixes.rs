//! The batch reference over the input prefix of every checkpoint the
//! oracles ask about, built in one pass over the input per lineage instead
//! of one whole `Scenario::reference` per checkpoint.
//!
//! The checkpoints' prefixes (their offset vectors, see
//! [`Ctx::offsets_of`]) are split into lineages: chains in which each
//! prefix contains the one before it, partition by partition (a run without
//! recovery has one; a recovery that restores an older checkpoint starts
//! another next to the abandoned cuts). A lineage is walked with the
//! scenario's incremental reference (`Scenario::incremental`), which only
//! adds records as the prefix grows, so every expected record has a birth:
//! the first position in the lineage whose prefix expects it, and the
//! expected set at position `j` is exactly the records born at or before
//! `j`. Membership of a record in a checkpoint's reference is then one
//! lookup, and two positions of a lineage expect the same records of any
//! subset exactly when they expect as many.
//!
//! Without an incremental reference, or when a checkpoint's offsets lie
//! beyond its input (then the whole reference is left to report it), there
//! are no lineages and the oracles fall back to [`Ctx::reference_at`].

use super::Ctx;
use exactsim_engine::types::{CheckpointId, OutRecord};
use std::collections::BTreeMap;

/// The lineages of a run's checkpoint prefixes.
pub struct Prefixes {
    /// Checkpoint -> (lineage, position in it).
    at: BTreeMap<CheckpointId, (usize, usize)>,
    pub lineages: Vec<Lineage>,
}

/// One chain of growing prefixes.
pub struct Lineage {
    /// Every record the lineage expects with its birth position, by
    /// out_id (unique).
    pub born: Vec<(OutRecord, usize)>,
    /// `born`'s out_ids, in the same order: the lookups' search runs over
    /// 8 bytes an entry instead of a whole record (a large run's records
    /// no longer fit the cache, and every probe was a miss).
    ids: Vec<u64>,
    /// Positions (distinct prefixes) in the lineage.
    pub positions: usize,
}

impl Lineage {
    fn new(born: Vec<(OutRecord, usize)>, positions: usize) -> Lineage {
        let ids: Vec<u64> = born.iter().map(|(o, _)| o.out_id).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "a lineage is sorted by out_id, each once");
        Lineage { born, ids, positions }
    }

    /// The expected record with this out_id and its birth position.
    pub fn get(&self, out_id: u64) -> Option<&(OutRecord, usize)> {
        self.ids.binary_search(&out_id).ok().map(|i| &self.born[i])
    }
}

impl Prefixes {
    /// The lineages of the prefixes of `ckpts`; `None` without an
    /// incremental reference, or when a prefix cannot be walked.
    pub fn build(c: &Ctx, ckpts: impl IntoIterator<Item = CheckpointId>) -> Option<Prefixes> {
        let input = &c.h.input;
        // Distinct prefixes, ordered by size: a prefix can only extend a
        // smaller one.
        let mut by_prefix: BTreeMap<(u64, Vec<u64>), Vec<CheckpointId>> = BTreeMap::new();
        for ck in ckpts {
            let offsets = c.offsets_of(ck)?;
            if offsets.len() != input.len() || offsets.iter().zip(input).any(|(o, p)| *o > p.len() as u64) {
                return None;
            }
            by_prefix.entry((offsets.iter().sum(), offsets)).or_default().push(ck);
        }
        // Greedy chains: each prefix extends the first lineage whose last
        // prefix it contains.
        let mut chains: Vec<Vec<(Vec<u64>, Vec<CheckpointId>)>> = Vec::new();
        for ((_, offsets), cks) in by_prefix {
            let home = chains
                .iter_mut()
                .find(|ch| ch.last().is_some_and(|(l, _)| l.iter().zip(&offsets).all(|(a, b)| a <= b)));
            match home {
                Some(ch) => ch.push((offsets, cks)),
                None => chains.push(vec![(offsets, cks)]),
            }
        }
        let mut at = BTreeMap::new();
        let mut lineages = Vec::with_capacity(chains.len());
        for (k, chain) in chains.into_iter().enumerate() {
            let mut acc = c.scenario.incremental(input)?;
            let mut taken = vec![0u64; input.len()];
            let mut born: Vec<(OutRecord, usize)> = Vec::new();
            let mut out = Vec::new();
            let positions = chain.len();
            for (j, (offsets, cks)) in chain.into_iter().enumerate() {
                for (p, &to) in offsets.iter().enumerate() {
                    while taken[p] < to {
                        acc.advance(p, &mut out);
                        taken[p] += 1;
                    }
                }
                born.extend(out.drain(..).map(|o| (o, j)));
                for ck in cks {
                    at.insert(ck, (k, j));
                }
            }
            born.sort_unstable_by_key(|(o, _)| o.out_id);
            if born.windows(2).any(|x| x[0].0.out_id == x[1].0.out_id) {
                return None; // an out_id expected twice: not a growing reference
            }
            lineages.push(Lineage::new(born, positions));
        }
        Some(Prefixes { at, lineages })
    }

    /// (lineage, position) of a checkpoint built in.
    pub fn at(&self, ck: CheckpointId) -> Option<(usize, usize)> {
        self.at.get(&ck).copied()
    }

    /// Whether the reference over `ck`'s prefix has an out_id, as a
    /// function of the out_id.
    pub fn covers(&self, ck: CheckpointId) -> impl Fn(u64) -> bool + '_ {
        let (k, j) = self.at[&ck];
        move |out_id| self.lineages[k].get(out_id).is_some_and(|(_, b)| *b <= j)
    }

    /// The reference over `ck`'s prefix, in out_id order.
    pub fn expected(&self, ck: CheckpointId) -> impl Iterator<Item = &OutRecord> + '_ {
        let (k, j) = self.at[&ck];
        self.lineages[k].born.iter().filter(move |(_, b)| *b <= j).map(|(o, _)| o)
    }
}
