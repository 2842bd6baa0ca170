//! P12 — at-least-once mode: no loss. Duplicates are allowed, and so are
//! other values (replayed input re-applies to restored state).
//!
//! How: every out_id of the batch reference over the whole input appears at
//! least once in the final read of the output (any partition). A failed
//! final read is a violation (the output cannot be judged). The duplicate
//! count goes to `OutputCounts`, not here.

use super::{first_few, rec, Ctx, Finding};
use exactsim_engine::types::OutRecord;
use std::collections::BTreeSet;

pub fn check(c: &Ctx) -> Vec<Finding> {
    if !c.h.final_read_ok {
        return vec![Finding::new(
            None,
            "final read failed: the read of the output at the end got no answer from the broker".into(),
        )];
    }
    let seen: BTreeSet<u64> = c.h.final_output.iter().flatten().map(|o| o.out_id).collect();
    let lost: Vec<&OutRecord> = c.reference.iter().filter(|o| !seen.contains(&o.out_id)).collect();
    if lost.is_empty() {
        return vec![];
    }
    vec![Finding::new(
        None,
        format!(
            "{} of {} expected output records lost in at-least-once mode: {}",
            lost.len(),
            c.reference.len(),
            first_few(lost.iter().map(|o| format!("{} in partition {}", rec(o), c.partition_of(o))))
        ),
    )]
}
