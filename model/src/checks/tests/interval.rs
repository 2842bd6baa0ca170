//! P15: the adaptive checkpoint interval.

use super::*;

// ---- P15: the adaptive interval ----

/// A coordinator's events only, times in ms: what P15 reads.
pub(super) fn coordinator_only(events: Vec<Stamped>) -> History {
    History {
        input: vec![vec![]],
        events,
        observations: vec![],
        final_output: vec![vec![]],
        finished_at_us: None,
        ..good()
    }
}
fn trig_ms(t_ms: u64, attempt: u64, ckpt: u64) -> Stamped {
    at(t_ms * 1000, "coordinator", Event::CheckpointTriggered { attempt, ckpt })
}
fn done_ms(t_ms: u64, attempt: u64, ckpt: u64) -> Stamped {
    at(t_ms * 1000, "coordinator", Event::CheckpointCompleted { attempt, ckpt, offsets: vec![0], finished: false })
}
fn chosen_ms(t_ms: u64, interval_ms: u64) -> Stamped {
    at(t_ms * 1000, "coordinator", Event::IntervalChosen { interval_ms, min_ms: 100, max_ms: 2000 })
}
fn sim_ms(t_ms: u64, e: SimEvent) -> Stamped {
    Stamped { t_us: t_ms * 1000, node: "sim".into(), ev: Ev::Sim(e) }
}
/// Checkpoints of `dur` ms every `gap` ms from `from` ms, ids from `first`,
/// attempt 1, each completion with its choice (`gap`).
fn cycles_ms(from: u64, first: u64, n: u64, gap: u64, dur: u64) -> Vec<Stamped> {
    let mut v = Vec::new();
    for i in 0..n {
        let t = from + i * gap;
        v.extend([trig_ms(t, 1, first + i), done_ms(t + dur, 1, first + i), chosen_ms(t + dur, gap)]);
    }
    v
}
/// P15's messages on a history.
fn p15(h: &History) -> Vec<String> {
    super::p15_interval_checker::check(&Ctx::new(h, &Echo)).into_iter().map(|f| f.message).collect()
}

#[test]
fn an_adaptive_interval_within_bounds_and_a_tenth_passes_p15() {
    // 50 ms checkpoints every 480 ms: 48 ms counted (2 ms for the
    // coordinator's whole milliseconds), exactly a tenth.
    let h = coordinator_only(cycles_ms(100, 1, 6, 480, 50));
    assert_eq!(p15(&h), Vec::<String>::new());
    // A fixed interval (no choice): nothing to judge, however dense.
    let mut fixed = coordinator_only(cycles_ms(100, 1, 6, 60, 50));
    fixed.events.retain(|s| !matches!(s.ev, Ev::Engine(Event::IntervalChosen { .. })));
    assert_eq!(p15(&fixed), Vec::<String>::new());
    // Through the whole table: a good run with an adaptive interval.
    let mut g = good();
    push(&mut g, at(20, "coordinator", Event::IntervalChosen { interval_ms: 100, min_ms: 100, max_ms: 2000 }));
    assert_eq!(checks(&g), NONE);
}

#[test]
fn an_interval_outside_its_bounds_is_p15() {
    let mut h = good();
    push(&mut h, at(20, "coordinator", Event::IntervalChosen { interval_ms: 2500, min_ms: 100, max_ms: 2000 }));
    assert_eq!(checks(&h), vec!["P15"]);
    assert_mentions(&msgs(&h, "P15"), &["interval of 2500 ms chosen at 0.0ms is outside its bounds [100, 2000] ms"]);
    let mut h = good();
    push(&mut h, at(20, "coordinator", Event::IntervalChosen { interval_ms: 40, min_ms: 100, max_ms: 2000 }));
    assert_eq!(checks(&h), vec!["P15"]);
    // Bounds that change within a run, or cannot hold anything.
    let mut h = coordinator_only(cycles_ms(100, 1, 3, 600, 50));
    push(&mut h, at(5_000_000, "coordinator", Event::IntervalChosen { interval_ms: 600, min_ms: 100, max_ms: 3000 }));
    push(&mut h, at(6_000_000, "coordinator", Event::IntervalChosen { interval_ms: 600, min_ms: 700, max_ms: 300 }));
    let m = p15(&h);
    assert_mentions(&m, &["states bounds [100, 3000] ms, earlier choices [100, 2000] ms"]);
    assert_mentions(&m, &["states impossible bounds [700, 300] ms"]);
}

#[test]
fn checkpointing_over_a_tenth_of_the_processing_time_is_p15() {
    // 50 ms checkpoints every 200 ms: 24%.
    let h = coordinator_only(cycles_ms(100, 1, 6, 200, 50));
    let m = p15(&h);
    assert_eq!(m.len(), 1, "{m:?}");
    assert_mentions(&m, &["checkpointing took 24.0% of the processing time over 5 fault-free cycles", "200ms apart"]);
    // Just over the tenth.
    assert_eq!(p15(&coordinator_only(cycles_ms(100, 1, 6, 479, 50))).len(), 1);
    // Through the whole table: the one check that fires.
    let mut g = good();
    g.events.retain(|s| !matches!(s.ev, Ev::Engine(Event::CheckpointTriggered { .. })));
    push(&mut g, at(1, "coordinator", Event::CheckpointTriggered { attempt: 1, ckpt: 1 }));
    push(&mut g, at(21, "coordinator", Event::IntervalChosen { interval_ms: 100, min_ms: 100, max_ms: 2000 }));
    push(&mut g, at(40, "coordinator", Event::CheckpointTriggered { attempt: 1, ckpt: 2 }));
    // In milliseconds instead of microseconds: checkpoint 1 took 19 ms,
    // the next came 39 ms after it.
    for s in &mut g.events {
        s.t_us *= 1000;
    }
    for o in &mut g.observations {
        o.t_us *= 1000;
    }
    g.finished_at_us = Some(70_000);
    assert_eq!(checks(&g), vec!["P15"]);
}

#[test]
fn p15_counts_only_unfaulted_measured_unoverloaded_cycles_of_one_coordinator_and_attempt() {
    let bad = cycles_ms(100, 1, 6, 200, 50);
    // A fault from 50 ms that heals at 2 s: nothing counts.
    let mut h = coordinator_only(bad.clone());
    push(&mut h, sim_ms(50, SimEvent::FaultStarted { kind: "slow_disk".into(), detail: "{}".into() }));
    h.healed_at_us = 2_000_000;
    assert_eq!(p15(&h), Vec::<String>::new());
    // Healed at 200 ms: the cycles whose span and whose measured
    // checkpoints (the last three) lie 100 ms after it or later count: not
    // 500-700, whose mean has the checkpoint triggered at 100 ms in it.
    h.healed_at_us = 200_000;
    assert_mentions(&p15(&h), &["over 2 fault-free cycles (700.0ms to 1100.0ms"]);
    // Healed at 250 ms: the checkpoint triggered at 300 ms is too close (a
    // clock read before the heal set it back may be stamped after it).
    h.healed_at_us = 250_000;
    assert_mentions(&p15(&h), &["over 1 fault-free cycle (900.0ms to 1100.0ms"]);
    // The fault begins after the third cycle: the first two count.
    let mut h = coordinator_only(bad.clone());
    push(
        &mut h,
        sim_ms(
            550,
            SimEvent::NodeCrashed {
                node: "store".into(),
                cause: "scheduled crash".into(),
                lost_bytes: 0,
                torn_files: 0,
            },
        ),
    );
    h.healed_at_us = 5_000_000;
    assert_mentions(&p15(&h), &["over 2 fault-free cycles (100.0ms to 500.0ms"]);
    // Overloaded: 250 ms checkpoints cannot be kept under a tenth within
    // a 2 s bound; they do not count.
    assert_eq!(p15(&coordinator_only(cycles_ms(100, 1, 6, 1000, 250))), Vec::<String>::new());
    // Before the controller measured anything (no completion), and across
    // a coordinator restart or a new attempt, no cycle.
    let h = coordinator_only(vec![
        trig_ms(100, 1, 1),
        trig_ms(200, 1, 2), // nothing measured yet
        done_ms(250, 1, 1),
        chosen_ms(250, 100),
        at(260_000, "coordinator", Event::RecoveryStarted { attempt: 2, from: Some(1), reason: "test".into() }),
        trig_ms(300, 2, 3), // another attempt
        at(310_000, "coordinator", Event::CoordinatorRecovered { next_checkpoint: 4, attempt: 2, completed: vec![1] }),
        trig_ms(400, 2, 4), // another coordinator, nothing measured by it
        done_ms(450, 2, 4),
        chosen_ms(450, 100),
    ]);
    assert_eq!(p15(&h), Vec::<String>::new());
    // The same without the breaks: 150 ms of checkpoints in 300 ms.
    let h = coordinator_only(vec![
        trig_ms(100, 1, 1),
        done_ms(250, 1, 1),
        chosen_ms(250, 100),
        trig_ms(300, 1, 3),
        trig_ms(400, 1, 4),
    ]);
    assert_mentions(&p15(&h), &["over 2 fault-free cycles"]);
}
