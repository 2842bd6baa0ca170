//! Snapshot of fixed seeds' run summaries per scenario: a determinism
//! tripwire. A change to engine, simulator or scenarios that changes a run
//! shows up here; review it with `cargo insta review` and commit.

use crate::common::*;
use exactsim_engine::types::DeliveryMode;

#[test]
fn fixed_seed_summaries() {
    let mut lines = Vec::new();
    for sc in ["word_count", "inventory", "risk_scoring"] {
        for (seed, profile) in [(7u64, "none"), (7, "chaos")] {
            let out = go(make(sc, seed, profile, DeliveryMode::ExactlyOnce, None), profile);
            lines.push(out.report.summary_line());
        }
    }
    insta::assert_snapshot!(lines.join("\n"));
}
