//! The adaptive checkpoint interval in whole runs (issue 27): the
//! `adaptive` profile switches it on, with input that arrives in phases,
//! and no other built-in profile changes its job; phased sources read in
//! bursts, paced and not at all; the correct controller passes P15 and the
//! planted cost bug fails it.

use crate::common::*;
use exactsim_engine::config::{JobConfig, Mutant, SourcePhase};
use exactsim_engine::observe::Event;
use exactsim_engine::types::DeliveryMode;
use exactsim_model::history::Ev;
use exactsim_model::run::derive_config;
use exactsim_model::schedule::{Schedule, PROFILE_NAMES};

const EO: DeliveryMode = DeliveryMode::ExactlyOnce;

#[test]
fn only_the_adaptive_profile_and_a_quarter_of_the_gate_change_the_job() {
    let gate = concat!(env!("CARGO_MANIFEST_DIR"), "/ci/gate.toml");
    for profile in PROFILE_NAMES.iter().copied().chain([gate]) {
        for sc in exactsim_scenarios::all() {
            for seed in 0..5 {
                let cfg = derive_config(&make(sc.name(), seed, profile, EO, None));
                // The gate gives them to one seed in four (1, 5, 9, ...).
                if profile == "adaptive" || (profile == gate && seed % 4 == 1) {
                    let a = cfg.adaptive_interval.expect("adaptive");
                    assert_eq!((a.min_ms, a.max_ms, a.replay_records), (100, 2_000, 1_000));
                    assert_eq!(cfg.source_phases.len(), 3);
                } else {
                    assert_eq!(cfg.adaptive_interval, None, "{profile}");
                    assert!(cfg.source_phases.is_empty(), "{profile}");
                }
            }
        }
    }
}

/// The offsets source 0 had reached at each checkpoint barrier: (ms, offset).
fn barriers(out: &exactsim_sim::runner::Outcome) -> Vec<(u64, u64)> {
    out.result
        .history
        .events
        .iter()
        .filter_map(|s| match &s.ev {
            Ev::Engine(Event::SourceBarrier { source: 0, offset, .. }) => Some((s.t_us / 1000, *offset)),
            _ => None,
        })
        .collect()
}

#[test]
fn phased_input_reads_in_bursts_paced_and_not_at_all() {
    // A checkpoint every 20 ms samples the source's offset; the input
    // arrives as a 300 ms burst, 600 ms of one fetch per 25 ms, 1200 ms of
    // nothing, over and over (the `adaptive` profile's phases).
    let phases = vec![
        SourcePhase { ms: 300, every_ms: 0, idle: false },
        SourcePhase { ms: 600, every_ms: 25, idle: false },
        SourcePhase { ms: 1200, every_ms: 0, idle: true },
    ];
    let cfg = JobConfig {
        parallelism: 2,
        checkpoint_interval_ms: 20,
        source_batch: 10,
        source_phases: phases,
        adaptive_interval: None,
        ..JobConfig::default()
    };
    let mut s = make("word_count", 3, "none", EO, None);
    s.config = Some(cfg);
    s.schedule = Some(Schedule { safety_ms: 500, liveness_ms: 60_000, events: vec![] });
    let out = go(s, "none");
    assert_pass(&out);
    let b = barriers(&out);
    let end = out.result.history.input[0].len() as u64;
    // Records read per second between barriers inside a phase (50 ms
    // inside its ends), by phase, while the partition lasts.
    let (mut burst, mut paced, mut idle) = (Vec::new(), Vec::new(), Vec::new());
    for w in b.windows(2) {
        let ((t0, o0), (t1, o1)) = (w[0], w[1]);
        if o1 >= end || t1 <= t0 {
            continue;
        }
        let (c0, c1) = (t0 % 2100, t1 % 2100);
        let rate = (o1 - o0) as f64 * 1000.0 / (t1 - t0) as f64;
        if c0 > c1 {
            continue; // across the cycle's end
        }
        if c0 >= 50 && c1 <= 250 {
            burst.push(rate);
        } else if c0 >= 350 && c1 <= 850 {
            paced.push(rate);
        } else if c0 >= 950 && c1 <= 2050 {
            idle.push(rate);
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    assert!(!burst.is_empty() && !paced.is_empty() && !idle.is_empty(), "{b:?}");
    assert!(idle.iter().all(|r| *r == 0.0), "nothing is read while idle: {idle:?}");
    // Paced: 10 records per 25 ms, 400 a second.
    assert!((300.0..=500.0).contains(&mean(&paced)), "paced at {:.0}/s: {paced:?}", mean(&paced));
    assert!(mean(&burst) > 2.0 * mean(&paced), "bursts ({:.0}/s) outpace the paced phase", mean(&burst));
}

#[test]
fn the_controller_passes_p15_and_the_planted_cost_bug_fails_it() {
    let mut chosen = 0;
    for sc in ["word_count", "inventory"] {
        for seed in 0..4 {
            let out = go(make(sc, seed, "adaptive", EO, None), "adaptive");
            assert_pass(&out);
            assert!(out.report.checks.iter().any(|c| c == "P15"));
            chosen += out
                .result
                .history
                .events
                .iter()
                .filter(|s| matches!(s.ev, Ev::Engine(Event::IntervalChosen { .. })))
                .count();
        }
    }
    assert!(chosen > 8, "the adaptive profile's runs choose intervals ({chosen})");
    // Seed 1 of word_count: the interval falls to 100 ms after the first
    // checkpoint, which took 68 ms.
    let m = Mutant::IntervalCostFromLastAck;
    let out = go(make("word_count", 1, "adaptive", EO, Some(m)), "adaptive");
    let failed: Vec<&str> = out.report.violations.iter().map(|v| v.check.as_str()).collect();
    assert_eq!(failed, vec![m.expected_check()], "{}", out.report.summary_line());
    assert!(
        out.report.violations[0].message.contains("of the processing time"),
        "{}",
        out.report.violations[0].message
    );
}
