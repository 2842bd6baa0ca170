//! P1 — at the end, committed output equals the batch reference: no loss,
//! no duplicate, no wrong value, nothing unexpected, every record in the
//! partition of its key (exactly-once mode).

use super::{Ctx, Violation, MAX_PER_CHECK};
use std::collections::BTreeMap;

pub fn check(c: &Ctx) -> Vec<Violation> {
    let mut v = Vec::new();
    if !c.h.final_read_ok {
        v.push(Violation::new(
            "P1",
            None,
            "the final read_committed read of the output failed (broker unreachable)".into(),
        ));
        return v;
    }
    let want: BTreeMap<u64, _> = c.reference.iter().map(|o| (o.out_id, o)).collect();
    let mut seen: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    let mut wrong = Vec::new();
    let mut unexpected = Vec::new();
    let mut misplaced = Vec::new();
    for (p, recs) in c.h.final_output.iter().enumerate() {
        for o in recs {
            seen.entry(o.out_id).or_default().push(p as u32);
            match want.get(&o.out_id) {
                None => unexpected.push(o.clone()),
                Some(w) if *w != o => wrong.push((o.clone(), (*w).clone())),
                _ => {}
            }
            if c.partition_of(o.key) != p as u32 {
                misplaced.push((o.out_id, p));
            }
        }
    }
    let dups: Vec<(u64, usize)> = seen.iter().filter(|(_, ps)| ps.len() > 1).map(|(k, ps)| (*k, ps.len())).collect();
    let lost: Vec<u64> = want.keys().filter(|k| !seen.contains_key(k)).copied().collect();
    if !lost.is_empty() {
        let first: Vec<String> = lost
            .iter()
            .take(MAX_PER_CHECK)
            .map(|id| {
                let o = want[id];
                format!("out_id {id} (key {}, input record {})", o.key, o.src)
            })
            .collect();
        v.push(Violation::new(
            "P1",
            None,
            format!("{} of {} expected output records lost, first: {}", lost.len(), want.len(), first.join(", ")),
        ));
    }
    if !dups.is_empty() {
        let first: Vec<String> = dups.iter().take(MAX_PER_CHECK).map(|(id, n)| format!("out_id {id} x{n}")).collect();
        v.push(Violation::new(
            "P1",
            None,
            format!("{} output records committed more than once, first: {}", dups.len(), first.join(", ")),
        ));
    }
    if !wrong.is_empty() {
        let first: Vec<String> = wrong
            .iter()
            .take(MAX_PER_CHECK)
            .map(|(g, w)| format!("out_id {} key {} value {} (expected {})", g.out_id, g.key, g.value, w.value))
            .collect();
        v.push(Violation::new(
            "P1",
            None,
            format!("{} output records with wrong values, first: {}", wrong.len(), first.join(", ")),
        ));
    }
    if !unexpected.is_empty() {
        let first: Vec<String> =
            unexpected.iter().take(MAX_PER_CHECK).map(|o| format!("out_id {} key {}", o.out_id, o.key)).collect();
        v.push(Violation::new(
            "P1",
            None,
            format!("{} output records not in the reference, first: {}", unexpected.len(), first.join(", ")),
        ));
    }
    if !misplaced.is_empty() {
        v.push(Violation::new(
            "P1",
            None,
            format!(
                "{} output records in the wrong partition, first: {:?}",
                misplaced.len(),
                &misplaced[..misplaced.len().min(3)]
            ),
        ));
    }
    v
}
