//! The example's planted bugs, each caught by a named check within 200
//! seeds of the default campaign (profile `chaos`, exactly-once), from what
//! the store's own reader shows; and the correct sink judged by the
//! lineage check P14 (its store keeps every record's writer).

use exactsim_example_kv::{KvBug, KvScenario};
use exactsim_model::scenario::Scenario;
use std::sync::Arc;

/// The check expected to name each bug.
fn expected(bug: KvBug) -> &'static str {
    match bug {
        KvBug::NoRecommit => "P1",
        // The engine was told "committed": P7 judges by the store's reader.
        KvBug::ConfirmUnanswered => "P7",
        // Older attempts' staged transactions are what the store shows open.
        KvBug::NoFencing => "P8",
        // A stage lost with a crash of the store: a completed checkpoint's
        // output is gone.
        KvBug::VolatileStage => "P1",
    }
}

#[test]
fn every_planted_bug_is_caught_within_200_default_seeds() {
    // Each bug's hunt on its own thread (the hunts are independent; a run
    // is deterministic whatever thread it is on).
    let hunt = |bug: KvBug| {
        let sc: Arc<dyn Scenario> = Arc::new(KvScenario::with_bug(Some(bug)));
        (0..200u64).find_map(|seed| {
            let o = exactsim::testing::Campaign::new(std::slice::from_ref(&sc)).first_seed(seed).seeds(1).outcomes();
            let checks: Vec<String> = o[0].report.violations.iter().map(|v| v.check.clone()).collect();
            (!checks.is_empty()).then_some((seed, checks))
        })
    };
    let hits: Vec<_> = std::thread::scope(|s| {
        let hunts: Vec<_> = KvBug::ALL.iter().map(|&bug| s.spawn(move || hunt(bug))).collect();
        hunts.into_iter().map(|h| h.join().expect("a hunt panicked")).collect()
    });
    let mut found = Vec::new();
    for (bug, hit) in KvBug::ALL.iter().copied().zip(hits) {
        let (seed, checks) = hit.unwrap_or_else(|| panic!("{} escaped 200 chaos seeds", bug.scenario_name()));
        assert!(checks.iter().any(|c| c == expected(bug)), "{}: seed {seed} failed {checks:?}", bug.scenario_name());
        found.push(format!("{} seed {seed} {checks:?}", bug.scenario_name()));
    }
    println!("{}", found.join("\n"));
}

#[test]
fn the_store_keeps_every_records_lineage_for_p14() {
    let sc: Arc<dyn Scenario> = Arc::new(KvScenario::new());
    for o in exactsim::testing::Campaign::new(&[sc]).seeds(5).outcomes() {
        assert!(o.report.checks.iter().any(|c| c == "P14"), "P14 judges the kv store");
        assert!(o.violations.is_empty(), "seed {}: {:?}", o.report.seed, o.violations);
        let out = &o.result.history.final_output;
        assert!(out.iter().flatten().count() > 0);
        assert!(out.iter().flatten().all(|r| !r.writer.is_unknown()), "every visible record names its writer");
    }
}
