//! P12 — at-least-once mode: no loss. Every record of the batch reference
//! appears at least once in the final output (duplicates allowed, and
//! values may reflect replayed state).

use super::{Ctx, Violation, MAX_PER_CHECK};
use std::collections::BTreeSet;

pub fn check(c: &Ctx) -> Vec<Violation> {
    if !c.h.final_read_ok {
        return vec![Violation::new("P12", None, "the final read of the output failed (broker unreachable)".into())];
    }
    let seen: BTreeSet<u64> = c.h.final_output.iter().flatten().map(|o| o.out_id).collect();
    let lost: Vec<&exactsim_engine::types::OutRecord> =
        c.reference.iter().filter(|o| !seen.contains(&o.out_id)).collect();
    if lost.is_empty() {
        return vec![];
    }
    let first: Vec<String> = lost
        .iter()
        .take(MAX_PER_CHECK)
        .map(|o| format!("out_id {} (key {}, input record {})", o.out_id, o.key, o.src))
        .collect();
    vec![Violation::new(
        "P12",
        None,
        format!(
            "{} of {} expected output records lost in at-least-once mode, first: {}",
            lost.len(),
            c.reference.len(),
            first.join(", ")
        ),
    )]
}
