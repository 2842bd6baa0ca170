//! The fault kinds that make zombies and outlast timeouts: they land, the
//! correct engine survives them, a predicate-triggered pause replays to the
//! same trace, and the planted bugs they exist for are caught by checks
//! (the corpus holds one frozen case of each: `relaxed-attempt-fence.json`,
//! `commit-retry-new-session.json`, `skewed-txn-timeout.json`).

use crate::common::*;
use exactsim::replay::ReplayFile;
use exactsim_engine::config::Mutant;
use exactsim_engine::observe::Event;
use exactsim_engine::types::DeliveryMode;
use exactsim_model::faults;
use exactsim_model::history::{Ev, SimEvent};
use exactsim_model::report::Verdict;
use exactsim_model::schedule::{FaultEvent, TriggerAction};

const PAUSE_CASE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/predicate-pause-worker-on-precommit.json");

/// "Pause worker-1 when it pre-commits for the second time": the pause
/// starts right after that event, and the replay is the run it froze.
#[test]
fn predicate_triggered_pause_replays_its_run() {
    let text = std::fs::read_to_string(PAUSE_CASE).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let frozen = v["trace_hash"].as_str().expect("the file records its trace hash").to_string();
    let same_code = v["code_version"] == exactsim::code_version();
    v["code_version"] = serde_json::Value::String(exactsim::code_version().into());
    let f = ReplayFile::parse(&v.to_string(), PAUSE_CASE).unwrap();
    assert!(matches!(f.schedule.events[0], FaultEvent::OnEvent(faults::OnEvent { action: TriggerAction::Pause, .. })));
    let a = go(f.to_spec().unwrap(), &f.profile);
    let b = go(f.to_spec().unwrap(), &f.profile);
    assert_pass(&a);
    assert_eq!(a.report.trace_hash, b.report.trace_hash, "a replay is deterministic");
    if same_code {
        assert_eq!(a.report.trace_hash, frozen, "the replay is the frozen run");
    }
    let ev = &a.result.history.events;
    let second = ev
        .iter()
        .enumerate()
        .filter(|(_, s)| s.node == "worker-1" && matches!(s.ev, Ev::Engine(Event::PreCommitted { .. })))
        .nth(1)
        .map(|(i, _)| i)
        .expect("worker-1 pre-committed twice");
    let paused = ev
        .iter()
        .position(|s| matches!(&s.ev, Ev::Sim(SimEvent::FaultStarted { kind, .. }) if kind == "pause"))
        .expect("the pause landed");
    assert!(paused > second, "paused after the trigger");
    assert_eq!(ev[paused].t_us, ev[second].t_us, "at the same instant");
    assert_eq!(a.report.faults.get("pause"), Some(&1));
    assert!(a.report.recoveries >= 1, "a 2.5 s pause outlasts the heartbeat timeout");
}

/// A pause longer than every timeout, a message held back past a recovery,
/// a broker clock stepped past the transaction timeout, and a clean stop:
/// the correct engine passes.
#[test]
fn the_correct_engine_survives_zombies() {
    let events = vec![
        FaultEvent::Pause(faults::Pause { at_ms: 200, node: "worker-0".into(), dur_ms: 2_000 }),
        FaultEvent::LateDelivery(faults::LateDelivery {
            at_ms: 100,
            dur_ms: 800,
            from: "worker-1".into(),
            to: Some("broker".into()),
            delay_ms: 3_000,
            count: 2,
        }),
        FaultEvent::Skew(faults::Skew {
            at_ms: 300,
            dur_ms: 900,
            node: "broker".into(),
            offset_ms: 180_000,
            drift_permille: 500,
        }),
        FaultEvent::Skew(faults::Skew {
            at_ms: 100,
            dur_ms: 900,
            node: "coordinator".into(),
            offset_ms: -800,
            drift_permille: -500,
        }),
        FaultEvent::Stop(faults::Stop { at_ms: 900, node: "broker".into(), down_ms: 700 }),
    ];
    for scenario in ["word_count", "inventory"] {
        let out = go(fixed(scenario, 4, DeliveryMode::ExactlyOnce, events.clone()), "none");
        assert_pass(&out);
        for kind in ["pause", "late_delivery", "skew", "stop"] {
            assert!(
                out.report.faults.get(kind).copied().unwrap_or(0) > 0,
                "{kind} did not land: {:?}",
                out.report.faults
            );
        }
        // The late-delivery window ends at its end (100 + 800 ms, on the cluster's next tick), so the
        // timeline's band does not run on to the healing.
        let ended = out.result.history.events.iter().find_map(|e| match &e.ev {
            Ev::Sim(SimEvent::FaultEnded { kind, .. }) if kind == "late_delivery" => Some(e.t_us),
            _ => None,
        });
        assert!(ended.is_some_and(|t| (900_000..910_000).contains(&t)), "{scenario}: {ended:?}");
    }
}

/// The same broker clock step catches the planted bug that measures
/// transaction ages on the wall clock.
#[test]
fn a_clock_step_catches_the_skewed_timeout() {
    let events = vec![FaultEvent::Skew(faults::Skew {
        at_ms: 300,
        dur_ms: 1_100,
        node: "broker".into(),
        offset_ms: 90_000,
        drift_permille: 0,
    })];
    let mut spec = fixed("word_count", 3, DeliveryMode::ExactlyOnce, events);
    spec.mutant = Some(Mutant::SkewedTxnTimeout);
    let out = go(spec.clone(), "none");
    assert_eq!(out.report.verdict, Verdict::Fail, "{}", out.report.summary_line());
    spec.mutant = None;
    assert_pass(&go(spec, "none"));
}

/// The PR gate adds to the default campaign: fewer than 5% of its
/// (scenario, seed) runs have the trace hash of the same chaos run.
#[test]
fn the_gate_is_not_chaos_again() {
    let mut same = 0;
    let mut total = 0;
    for scenario in ["word_count", "inventory", "risk_scoring"] {
        for seed in 0..12 {
            let a = go(make(scenario, seed, "chaos", DeliveryMode::ExactlyOnce, None), "chaos");
            let b = go(make(scenario, seed, "ci/gate.toml", DeliveryMode::ExactlyOnce, None), "ci/gate.toml");
            total += 1;
            same += usize::from(a.report.trace_hash == b.report.trace_hash);
        }
    }
    assert!(same * 20 < total, "{same} of {total} gate runs are chaos runs");
}
