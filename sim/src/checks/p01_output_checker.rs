//! P1 — at the end, committed output equals the batch reference
//! (exactly-once mode).
//!
//! How: the final `read_committed` read of every output partition, taken as
//! a multiset of out_ids, is compared with the batch reference over the
//! whole input. Reported, one violation per kind, naming the first records
//! (and the transactions that committed them): lost out_ids, out_ids
//! committed more than once, records whose key, value or source differ from
//! the reference, out_ids the reference does not have, and records sitting
//! in another partition than `key_to_subtask(key)`. A failed final read is a
//! violation of its own (nothing else can be judged then).

use super::{first_few, rec, Ctx, Violation};
use exactsim_engine::types::OutRecord;
use std::collections::BTreeMap;

pub fn check(c: &Ctx) -> Vec<Violation> {
    if !c.h.final_read_ok {
        return vec![Violation::new(
            "P1",
            None,
            "final read failed: the read_committed read of the output at the end got no answer from the broker".into(),
        )];
    }
    let want: BTreeMap<u64, &OutRecord> = c.reference.iter().map(|o| (o.out_id, o)).collect();
    let mut seen: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    let mut wrong: Vec<(&OutRecord, &OutRecord)> = Vec::new();
    let mut unexpected: Vec<(&OutRecord, u32)> = Vec::new();
    let mut misplaced: Vec<(&OutRecord, u32, u32)> = Vec::new();
    for (p, recs) in c.h.final_output.iter().enumerate() {
        let p = p as u32;
        for o in recs {
            seen.entry(o.out_id).or_default().push(p);
            match want.get(&o.out_id) {
                None => unexpected.push((o, p)),
                Some(w) if *w != o => wrong.push((o, w)),
                _ => {}
            }
            let home = c.partition_of(o);
            if home != p {
                misplaced.push((o, p, home));
            }
        }
    }
    let mut v = Vec::new();
    let lost: Vec<&OutRecord> = want.iter().filter(|(id, _)| !seen.contains_key(id)).map(|(_, o)| *o).collect();
    if !lost.is_empty() {
        v.push(Violation::new(
            "P1",
            None,
            format!(
                "{} of {} expected output records lost: {}",
                lost.len(),
                want.len(),
                first_few(lost.iter().map(|o| format!("{} in partition {}", rec(o), c.partition_of(o))))
            ),
        ));
    }
    let dups: Vec<(u64, &Vec<u32>)> = seen.iter().filter(|(_, ps)| ps.len() > 1).map(|(k, ps)| (*k, ps)).collect();
    if !dups.is_empty() {
        v.push(Violation::new(
            "P1",
            None,
            format!(
                "{} out_ids committed more than once: {}",
                dups.len(),
                first_few(dups.iter().map(|(id, ps)| {
                    let key = want.get(id).map_or("?".to_string(), |o| o.key.to_string());
                    format!(
                        "out_id {id} (key {key}) x{} in partitions {ps:?} by [{}]",
                        ps.len(),
                        c.carriers(*id).join("; ")
                    )
                }))
            ),
        ));
    }
    if !wrong.is_empty() {
        v.push(Violation::new(
            "P1",
            None,
            format!(
                "{} output records differ from the reference: {}",
                wrong.len(),
                first_few(wrong.iter().map(|(g, w)| format!(
                    "{} expected (key {}, value {}, src {})",
                    rec(g),
                    w.key,
                    w.value,
                    w.src
                )))
            ),
        ));
    }
    if !unexpected.is_empty() {
        v.push(Violation::new(
            "P1",
            None,
            format!(
                "{} output records not in the reference: {}",
                unexpected.len(),
                first_few(
                    unexpected.iter().map(|(o, p)| {
                        format!("{} in partition {p} by [{}]", rec(o), c.carriers(o.out_id).join("; "))
                    })
                )
            ),
        ));
    }
    if !misplaced.is_empty() {
        v.push(Violation::new(
            "P1",
            None,
            format!(
                "{} output records in the wrong partition: {}",
                misplaced.len(),
                first_few(
                    misplaced.iter().map(|(o, p, home)| format!("{} in partition {p}, key routes to {home}", rec(o)))
                )
            ),
        ));
    }
    v
}
