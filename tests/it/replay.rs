//! Replay files: a shrunk failure replays to the same check; the regression
//! corpus in `tests/corpus/` replays with its frozen schedules.

use crate::common::*;
use exactsim::replay::{shrink, ReplayFile};
use exactsim_engine::config::Mutant;
use exactsim_engine::types::DeliveryMode;
use exactsim_model::faults;
use exactsim_model::report::Verdict;

#[test]
fn shrink_then_replay_reproduces_the_same_check() {
    // The first seed that fails with the planted bug (which seed that is
    // depends on the code; `mutants` guarantees one within its budget).
    let mutant = Some(Mutant::NoRecommitOnRecovery);
    let seed = (0..80)
        .find(|s| {
            go(make("word_count", *s, "chaos", DeliveryMode::ExactlyOnce, mutant), "chaos").report.verdict
                == Verdict::Fail
        })
        .expect("the mutant fails some seed within 80");
    let spec = make("word_count", seed, "chaos", DeliveryMode::ExactlyOnce, mutant);
    let r = match shrink(spec, "chaos", 200, 1) {
        Ok(r) => r,
        Err(e) => panic!("seed {seed} failed with the mutant, so it must shrink: {e}"),
    };
    assert!(r.file.schedule.events.len() <= 3, "shrunk schedule too big: {:?}", r.file.schedule.events);
    let text = r.file.to_json();
    let back = ReplayFile::parse(&text, "test").unwrap();
    let out = go(back.to_spec().unwrap(), &back.profile);
    let check = r.file.check.clone().unwrap();
    assert!(
        out.report.violations.iter().any(|v| v.check == check),
        "replay did not fail {check}: {}",
        out.report.summary_line()
    );
    // One at a time, every run made is charged: the runs made are the runs
    // charged plus the last (the shrunk schedule's trace).
    assert_eq!(r.runs_made, r.runs + 1, "{} runs charged", r.runs);
}

/// The shrinker narrows, not only removes: the gate profile's silent
/// restart on copier seed 1208 (the gate of 2.5 s, `tests/profiles/gate-2500.toml`) (18 fault events, planted bug
/// `accept-restarted-sender`) comes down to the three faults the bug needs
/// — the other source worker crashed at its first snapshot (retargeted
/// from "any node", `nth` lowered from 2), the one-way cut that silences
/// worker-1 (moved when the latency spike that delayed it was dropped),
/// and worker-1's restart inside the cut, a 10 ms clean stop where the
/// seed had a 200 ms crash.
#[test]
fn shrink_narrows_the_gates_silent_restart_to_three_faults() {
    let profile = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/profiles/gate-2500.toml");
    let spec = make("copier", 1208, profile, DeliveryMode::ExactlyOnce, Some(Mutant::AcceptRestartedSender));
    let r = shrink(spec, profile, 600, 2).expect("copier 1208 fails with the planted bug");
    assert_eq!(r.original_events, 18);
    let ev = &r.file.schedule.events;
    assert!(ev.len() <= 3, "{} runs left {ev:?}", r.runs);
    let kinds: Vec<&str> = ev.iter().map(|e| e.kind()).collect();
    assert!(kinds.contains(&"partition"), "{ev:?}");
    assert!(
        ev.iter().any(|e| matches!(e, exactsim_model::schedule::FaultEvent::Stop(faults::Stop { down_ms: 10, .. }))),
        "the restart is narrowed to the shortest clean stop: {ev:?}"
    );
    assert!(
        ev.iter().any(|e| matches!(
            e,
            exactsim_model::schedule::FaultEvent::CrashAtPoint(faults::CrashAtPoint { node: Some(_), nth: 1, .. })
        )),
        "the point crash is retargeted to one node and its first occurrence: {ev:?}"
    );
    assert_eq!(r.file.check.as_deref(), Some("P1"));
}

/// Frozen regression cases. Each file stores its explicit schedule; the
/// code version is not required to match (the schedule, not the seed, is
/// what is frozen), but the expected verdict is.
#[test]
fn corpus_replays() {
    let outs = exactsim::testing::replay_corpus(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus"), &[]);
    assert!(!outs.is_empty(), "the corpus is empty");
}

/// The session order is judged, not only kept: the corpus case where a
/// paused broker delivers an earlier session's init late (same attempt),
/// replayed on a broker that does not order owners (planted bug
/// `relaxed-attempt-fence`), fails the fencing check P9 and not only the
/// loss it causes.
#[test]
fn an_earlier_sessions_late_init_is_p9_when_the_broker_lets_it_through() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/late-init-same-attempt-after-pause.json");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["code_version"] = serde_json::Value::String(exactsim::code_version().into());
    v["mutant"] = serde_json::Value::String(Mutant::RelaxedAttemptFence.name().into());
    let f = ReplayFile::parse(&v.to_string(), path).unwrap();
    let out = go(f.to_spec().unwrap(), &f.profile);
    let p9: Vec<_> = out.report.violations.iter().filter(|v| v.check == "P9").collect();
    assert!(!p9.is_empty(), "expected P9: {}", out.report.summary_line());
    // One of them is an init of the same attempt as the owner's: an
    // earlier session, which a check comparing attempts alone would pass.
    let same_attempt = |m: &str| {
        (1..100).any(|a| {
            m.contains(&format!("init of job attempt {a} (")) && m.contains(&format!("after job attempt {a} ("))
        })
    };
    assert!(p9.iter().any(|v| same_attempt(&v.message)), "{p9:?}");
}

/// The corpus case of a late `Deploy` reaching a worker that restarted
/// after the job finished: the finished job ends that attempt (`Cancel`),
/// the run passes (P13: the transaction the late deployment began is
/// aborted), and the path is marked as reached, so the case is known to
/// exercise it.
#[test]
fn a_late_deploy_after_the_finish_is_cancelled_on_the_restarted_worker() {
    use exactsim_engine::observe::Event;
    use exactsim_model::history::Ev;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/late-deploy-after-finish-restart.json");
    let f = ReplayFile::parse(&std::fs::read_to_string(path).unwrap(), path).unwrap();
    let out = go(f.to_spec().unwrap(), &f.profile);
    assert_eq!(out.report.verdict, Verdict::Pass, "{}", out.report.summary_line());
    assert_eq!(out.report.reached.get("attempt_cancelled"), Some(&1), "{:?}", out.report.reached);
    let h = &out.result.history.events;
    let finished = h
        .iter()
        .find(|s| matches!(s.ev, Ev::Engine(Event::JobFinished { .. })))
        .map(|s| s.t_us)
        .expect("the job finished");
    let begun_after: Vec<_> = h
        .iter()
        .filter(|s| s.t_us > finished)
        .filter_map(|s| match &s.ev {
            Ev::Engine(Event::TxnBegun { txn, .. }) => Some(txn),
            _ => None,
        })
        .collect();
    assert!(!begun_after.is_empty(), "the late deployment began a transaction after the finish");
    for txn in begun_after {
        assert!(
            h.iter().any(
                |s| s.t_us > finished && matches!(&s.ev, Ev::Engine(Event::SinkAborted { txn: t, .. }) if t == txn)
            ),
            "{txn} begun after the finish is aborted"
        );
    }
}
