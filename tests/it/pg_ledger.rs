//! The PostgreSQL scenario: `pg_ledger` writes through the PostgreSQL 2PC
//! sink to the simulated server hosted as its own system. It passes chaos
//! seeds with the server announcing its `COMMIT PREPARED`s, and its planted
//! bug (`pg-no-recover-commit`) is caught through the server's reader.

use crate::common::*;
use exactsim_engine::config::Mutant;
use exactsim_engine::types::DeliveryMode;
use exactsim_model::history::{Ev, SimEvent};
use exactsim_model::report::Verdict;

#[test]
fn pg_ledger_passes_chaos_seeds_with_commits_announced_by_the_server() {
    let (mut recoveries, mut committed, mut server_crashes) = (0, 0, 0);
    for seed in test_seeds(30) {
        let out = go(make("pg_ledger", seed, "chaos", DeliveryMode::ExactlyOnce, None), "chaos");
        assert_pass(&out);
        // The simulated server is a node the schedule hits like the engine's.
        server_crashes += out
            .result
            .history
            .events
            .iter()
            .filter(|e| matches!(&e.ev, Ev::Sim(SimEvent::NodeCrashed { node, .. }) if node == "system"))
            .count();
        assert_eq!(out.report.output.committed, out.report.output.expected, "seed {seed}");
        assert!(out.report.transactions.committed > 0, "seed {seed}: the server announced its COMMIT PREPAREDs");
        recoveries += out.report.recoveries;
        committed += out.report.transactions.committed;
    }
    println!("pg_ledger: {recoveries} recoveries, {committed} prepared transactions committed, {server_crashes} server crashes");
    assert!(recoveries > 0, "chaos caused recoveries");
    assert!(server_crashes > 0, "chaos crashed the simulated PostgreSQL server");
}

/// Gate seed 11000002947 (the gate of 2.5 s, `tests/profiles/gate-2500.toml`): worker-0's deployment of attempt 3 is delivered
/// late (3.2 s), after the worker was stopped and restarted, so a session
/// numbered 16 starts after session 19 died with the worker. The later
/// start owns the subtask; P14 once took it for a zombie by its number.
#[test]
fn a_late_deployment_to_a_restarted_worker_owns_its_subtask() {
    let gate = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/profiles/gate-2500.toml");
    let out = go(make("pg_ledger", 11_000_002_947, gate, DeliveryMode::ExactlyOnce, None), gate);
    assert_pass(&out);
    let sessions: Vec<(u64, u64)> = out
        .result
        .history
        .events
        .iter()
        .filter_map(|e| match &e.ev {
            Ev::Engine(exactsim_engine::observe::Event::SinkOpened { task, owner })
                if task.subtask() == 0 && owner.attempt == 3 =>
            {
                Some(owner.session)
            }
            _ => None,
        })
        .collect();
    assert_eq!(sessions, [(19, 0), (16, 0)], "the run no longer shows the late deployment");
}

#[test]
fn pg_ledger_at_least_once_passes() {
    for seed in test_seeds(10) {
        assert_pass(&go(make("pg_ledger", seed, "chaos", DeliveryMode::AtLeastOnce, None), "chaos"));
    }
}

#[test]
fn pg_no_recover_commit_is_caught_in_pg_ledger_and_only_there() {
    let m = Some(Mutant::PgNoRecoverCommit);
    let caught = (0..80).find_map(|seed| {
        let out = go(make("pg_ledger", seed, "chaos", DeliveryMode::ExactlyOnce, m), "chaos");
        (out.report.verdict == Verdict::Fail).then_some(out)
    });
    let out = caught.expect("pg-no-recover-commit escaped 80 chaos seeds of pg_ledger");
    let checks: Vec<&str> = out.report.violations.iter().map(|v| v.check.as_str()).collect();
    assert!(checks.contains(&Mutant::PgNoRecoverCommit.expected_check()), "{checks:?}");
    // The broker's sink does not have the bug: the same seed of word_count passes.
    let other = go(make("word_count", out.report.seed, "chaos", DeliveryMode::ExactlyOnce, m), "chaos");
    assert_pass(&other);
}
