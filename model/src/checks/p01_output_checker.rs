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

use super::{final_copies, first_few, rec, ById, Ctx, Finding};
use exactsim_engine::types::OutRecord;

pub fn check(c: &Ctx) -> Vec<Finding> {
    if !c.h.final_read_ok {
        return vec![Finding::new(
            None,
            "final read failed: the read_committed read of the output at the end got no answer from the broker".into(),
        )];
    }
    let want = ById::new(&c.reference);
    let mut wrong: Vec<(&OutRecord, &OutRecord)> = Vec::new();
    let mut unexpected: Vec<(&OutRecord, u32)> = Vec::new();
    let mut misplaced: Vec<(&OutRecord, u32, u32)> = Vec::new();
    for (p, recs) in c.h.final_output.iter().enumerate() {
        let p = p as u32;
        for o in recs {
            match want.get(o.out_id) {
                None => unexpected.push((o, p)),
                Some(w) if w != o => wrong.push((o, w)),
                _ => {}
            }
            let home = c.partition_of(o);
            if home != p {
                misplaced.push((o, p, home));
            }
        }
    }
    // The partition of each record of the final read, in read order; the
    // copies of each out_id (in read order), by out_id.
    let part_of: Vec<u32> =
        c.h.final_output.iter().enumerate().flat_map(|(p, recs)| recs.iter().map(move |_| p as u32)).collect();
    let copies = final_copies(c.h);
    let seen: Vec<&[(u64, u32)]> = copies.chunk_by(|a, b| a.0 == b.0).collect();
    let read = |id: u64| seen.binary_search_by_key(&id, |run| run[0].0).is_ok();
    let mut v = Vec::new();
    let lost: Vec<&OutRecord> = want.iter().filter(|o| !read(o.out_id)).collect();
    if !lost.is_empty() {
        v.push(Finding::new(
            None,
            format!(
                "{} of {} expected output records lost: {}",
                lost.len(),
                want.len(),
                first_few(lost.iter().map(|o| format!("{} in partition {}", rec(o), c.partition_of(o))))
            ),
        ));
    }
    let dups: Vec<(u64, Vec<u32>)> = seen
        .iter()
        .filter(|run| run.len() > 1)
        .map(|run| (run[0].0, run.iter().map(|(_, i)| part_of[*i as usize]).collect()))
        .collect();
    if !dups.is_empty() {
        v.push(Finding::new(
            None,
            format!(
                "{} out_ids committed more than once: {}",
                dups.len(),
                first_few(dups.iter().map(|(id, ps)| {
                    let key = want.get(*id).map_or("?".to_string(), |o| o.key.to_string());
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
        v.push(Finding::new(
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
        v.push(Finding::new(
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
        v.push(Finding::new(
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
