//! A sink writing to a system other than the broker is judged like the
//! built-in one: the pipeline hosts its own system (`Pipeline::system`) and
//! says how a `read_committed` reader sees its output (`Pipeline::reader`).
//!
//! The sink is the example crate's (`examples/kv-sink`, written against the
//! public APIs only): `KvLog`, a key-value log store with staged
//! transactions and fencing by attempt, and `KvSink` into it. A correct one
//! passes every check under chaos; the same sink with a planted 2PC bug is
//! caught through the system's own reader. A failure prints the command
//! that reproduces it through the example's binary.

use crate::common::go;
use exactsim::testing::Campaign;
use exactsim_engine::types::DeliveryMode;
use exactsim_example_kv::KvScenario;
use exactsim_model::report::Verdict;
use exactsim_model::scenario::Scenario;
use exactsim_model::schedule::Profile;
use std::sync::Arc;

/// The binary that registers the example's scenarios.
const EXAMPLE: &str = "cargo run -p exactsim-example-kv --";

#[test]
fn a_sink_into_its_own_system_passes_every_check_on_chaos_seeds() {
    let kv: Arc<dyn Scenario> = Arc::new(KvScenario::new());
    let outcomes = Campaign::new(&[kv]).profile("chaos").seeds(60).cli(EXAMPLE).run();
    for out in &outcomes {
        let seed = out.report.seed;
        assert_eq!(out.report.output.committed, out.report.output.expected, "seed {seed}");
        assert!(out.report.transactions.committed > 0, "seed {seed}: the system announced its commits");
    }
    assert!(outcomes.iter().map(|o| o.report.recoveries).sum::<u64>() > 0, "chaos caused recoveries");
}

#[test]
fn the_same_sink_skipping_recommit_is_caught_through_the_systems_reader() {
    let buggy: Arc<dyn Scenario> = Arc::new(KvScenario::buggy_no_recommit());
    let crash = Profile::named("crash").unwrap();
    let caught = (1..=40).find_map(|seed| {
        let out = go(exactsim::spec(buggy.clone(), seed, crash.clone(), DeliveryMode::ExactlyOnce, None), "crash");
        (out.report.verdict == Verdict::Fail).then_some(out)
    });
    let out = caught.expect("skip-recommit escaped 40 crash seeds");
    let checks: Vec<&str> = out.report.violations.iter().map(|v| v.check.as_str()).collect();
    assert!(checks.contains(&"P1"), "the loss is seen by the system's reader: {checks:?}");
}
