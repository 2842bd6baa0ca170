//! P8 — after recovery and quiescence no transaction is left open (a
//! lingering transaction blocks `read_committed` readers at its first
//! offset).

use super::{Ctx, Violation};

pub fn check(c: &Ctx) -> Vec<Violation> {
    if c.h.finished_at_us.is_none() || c.h.final_open_txns.is_empty() {
        return vec![];
    }
    let names: Vec<String> = c.h.final_open_txns.iter().take(5).map(|(t, e)| format!("{t} epoch {e}")).collect();
    vec![Violation::new(
        "P8",
        None,
        format!("{} transactions still open after the job finished: {}", c.h.final_open_txns.len(), names.join(", ")),
    )]
}
