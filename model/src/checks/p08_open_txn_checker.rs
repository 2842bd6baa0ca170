//! P8 — after recovery and quiescence no transaction is left open: a
//! lingering transaction holds back the last stable offset, so
//! `read_committed` readers stop at its first record (exactly-once mode).
//!
//! How: when the job finished (`finished_at_us` is set), the broker's list
//! of open transactions at the end (`final_open_txns`) must be empty. When
//! the job did not finish, P11 reports that instead.

use super::{first_few, Ctx, Finding};

pub fn check(c: &Ctx) -> Vec<Finding> {
    let Some(fin) = c.h.finished_at_us else { return vec![] };
    if c.h.final_open_txns.is_empty() {
        return vec![];
    }
    vec![Finding::new(
        None,
        format!(
            "{} transactions still open at the end, after the job finished at {}: {}",
            c.h.final_open_txns.len(),
            super::ms(fin),
            first_few(c.h.final_open_txns.iter().map(|(t, e)| format!("{t} epoch {e}")))
        ),
    )]
}
