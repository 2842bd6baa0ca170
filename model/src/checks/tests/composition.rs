//! How the checks compose, and a scenario's own checks.

use super::upsert::{upsert_good, Table};
use super::*;

// ---- composition ----

#[test]
fn at_most_five_per_check_the_first_ones_in_check_order() {
    let mut h = good();
    for i in 0..8 {
        push(&mut h, init(100 + i, 1, 0));
    }
    h.final_open_txns = vec![(txn(3), 1)];
    let (v, _) = run(&h);
    let p4: Vec<u64> = v.iter().filter(|x| x.check == "P4").map(|x| x.t_us.unwrap()).collect();
    assert_eq!(p4, vec![100, 101, 102, 103, 104]);
    assert_eq!(checks(&h), vec!["P4", "P8"]);
    // P10 sorts after P2, not between P1 and P2.
    let mut h = good();
    h.observations = vec![obs(35, &[2]), obs(65, &[1, 3, 4])];
    push(&mut h, recovery(80, 2, Some(2)));
    push(&mut h, restored(81, 2, TaskId::Source(0), Some(1), vec![]));
    assert_eq!(checks(&h), vec!["P2", "P10"]);
}

#[test]
fn output_counts_count_each_kind() {
    let mut h = good();
    h.final_output = vec![vec![out(1), out(1), out(1), OutRecord { value: 5, ..out(2) }, out(7)]];
    let reference = Echo.reference(&h.input, &[4]);
    assert_eq!(
        output_counts(&h, &reference),
        OutputCounts { expected: 4, committed: 5, duplicates: 2, lost: 2, wrong: 1, unexpected: 1 }
    );
}

#[test]
fn completion_found_only_at_coordinator_recovery_counts_from_then() {
    // The completion record of 2 became durable, then the coordinator died
    // before announcing it; the restarted coordinator finds it and recovers
    // from it, and the sink re-commits its transaction.
    let mut h = good();
    h.events.retain(|s| {
        !matches!(&s.ev, Ev::Engine(Event::CheckpointCompleted { ckpt: 2, .. }) | Ev::Engine(Event::JobFinished { .. }))
    });
    for s in [
        at(41, "worker-0", Event::SourceBarrier { attempt: 1, source: 0, ckpt: 2, offset: 4 }),
        at(52, "coordinator", Event::CoordinatorRecovered { next_checkpoint: 3, attempt: 1, completed: vec![1, 2] }),
        recovery(53, 2, Some(2)),
        restored(54, 2, TaskId::Source(0), Some(2), vec![]),
        restored(55, 2, TaskId::Chain(0), Some(2), vec![(2, txn(2))]),
        at(66, "coordinator", Event::CheckpointTriggered { attempt: 2, ckpt: 3 }),
        at(68, "coordinator", Event::CheckpointCompleted { attempt: 2, ckpt: 3, offsets: vec![4], finished: true }),
        at(70, "coordinator", Event::JobFinished { attempt: 2, ckpt: 3 }),
    ] {
        push(&mut h, s);
    }
    assert_eq!(checks(&h), NONE);
    // Without that evidence, 2 never completed: its commit is early, the
    // reader sees no completed prefix, and the recovery restores garbage.
    h.events.retain(|s| !matches!(&s.ev, Ev::Engine(Event::CoordinatorRecovered { .. })));
    assert_eq!(checks(&h), vec!["P2", "P3", "P10"]);
}

#[test]
fn the_check_table_is_complete_and_consistent() {
    let ids: BTreeSet<&str> = CHECKS.iter().map(|c| c.id).collect();
    let names: BTreeSet<&str> = CHECKS.iter().map(|c| c.name).collect();
    assert_eq!(ids.len(), CHECKS.len(), "ids are unique");
    assert_eq!(names.len(), CHECKS.len(), "names are unique");
    for c in &CHECKS {
        assert!(!c.name.contains(' ') && !c.name.is_empty(), "{}: one word", c.name);
        assert!(!c.meaning.contains('\n') && c.meaning.len() < 120, "{}: one line", c.id);
        // Every id but `panic` has an oracle behind it.
        assert_eq!(matches!(c.judge, Judge::History(_)), c.id != PANIC_CHECK, "{}", c.id);
    }
    assert_eq!(info("P7").map(|c| c.name), Some("precommit-committed"));
    assert_eq!(name_of("panic"), "panic");
    assert_eq!(name_of("P99"), "");
    let eo: Vec<&str> = checks_for(DeliveryMode::ExactlyOnce).map(|c| c.id).collect();
    assert_eq!(
        eo,
        ["P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9", "P10", "P11", "P13", "P14", "P15", "P16", "P21"]
    );
    let alo: Vec<&str> = checks_for(DeliveryMode::AtLeastOnce).map(|c| c.id).collect();
    assert_eq!(alo, ["P4", "P11", "P12", "P15", "P16", "P21"]);
}

#[test]
fn violations_carry_table_ids_in_table_order() {
    // A history breaking several checks at once: the ids are the table's,
    // sorted as in the table (P10 after P9).
    let mut h = good();
    h.final_output = vec![vec![]];
    h.finished_at_us = None;
    let (v, _) = run(&h);
    assert!(!v.is_empty());
    let pos: Vec<usize> = v.iter().map(|x| CHECKS.iter().position(|c| c.id == x.check).expect("table id")).collect();
    assert!(pos.windows(2).all(|w| w[0] <= w[1]), "{:?}", v.iter().map(|x| x.check).collect::<Vec<_>>());
}

// ---- a scenario's own checks ----

/// Echo with the per-partition order check of its own.
struct OrderedEcho;
impl Scenario for OrderedEcho {
    fn name(&self) -> &'static str {
        "ordered_echo"
    }
    fn description(&self) -> &'static str {
        "test: echo with an order check"
    }
    fn generate(&self, r: &mut SimRng, p: u32) -> Vec<Vec<Record>> {
        Echo.generate(r, p)
    }
    fn pipeline(&self) -> Arc<dyn Pipeline> {
        Echo.pipeline()
    }
    fn reference(&self, input: &[Vec<Record>], offsets: &[u64]) -> Vec<OutRecord> {
        Echo.reference(input, offsets)
    }
    fn checks(&self) -> Vec<crate::scenario::ScenarioCheck> {
        vec![
            crate::scenario::order_per_partition("echo/order"),
            crate::scenario::ScenarioCheck {
                id: "echo/counted",
                name: "counted",
                meaning: "test: counts its calls",
                check: counted,
            },
        ]
    }
}

#[test]
fn a_scenarios_own_check_runs_with_the_others_and_sorts_last() {
    let h = good();
    assert!(check_all(&CheckInput { history: &h, scenario: &OrderedEcho }).0.is_empty());
    let mut h = good();
    h.final_output = vec![outs(&[1, 3, 2, 4])];
    let (v, _) = check_all(&CheckInput { history: &h, scenario: &OrderedEcho });
    let names: Vec<&str> = v.iter().map(|x| x.check).collect();
    assert_eq!(names.last(), Some(&"echo/order"), "{names:?}");
    assert_mentions(
        &v.iter().filter(|x| x.check == "echo/order").map(|x| x.message.clone()).collect::<Vec<_>>(),
        &["partition 0: key 0 has src 2 after src 3"],
    );
}

thread_local! {
    /// How often `counted` ran on this thread.
    static COUNTED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// A scenario check that only counts its calls and finds nothing.
fn counted(_h: &History) -> Vec<String> {
    COUNTED.with(|c| c.set(c.get() + 1));
    Vec::new()
}

#[test]
fn every_declared_check_runs() {
    // Over both modes, every oracle of the table and each of the scenario's
    // own checks is called, once per run, in the order the reports list
    // them (`ids_for`).
    let mut everything_ran: BTreeSet<&str> = BTreeSet::new();
    for mode in [DeliveryMode::ExactlyOnce, DeliveryMode::AtLeastOnce] {
        let mut h = good();
        h.mode = mode;
        let ctx = Ctx::new(&h, &OrderedEcho);
        let before = COUNTED.with(|c| c.get());
        let mut ran = Vec::new();
        judge_all(&ctx, &OrderedEcho.checks(), &mut ran);
        assert_eq!(COUNTED.with(|c| c.get()), before + 1, "the scenario's own check was called once");
        assert_eq!(ran, ids_for(&OrderedEcho, mode), "{mode:?}: what ran is what the reports list");
        let want: Vec<&str> = checks_for(mode).map(|c| c.id).chain(["echo/order", "echo/counted"]).collect();
        assert_eq!(ran, want, "{mode:?}");
        everything_ran.extend(ran);
    }
    // An upsert scenario's runs (at least once) run P17 and P18 too.
    let h = upsert_good();
    let ctx = Ctx::new(&h, &Table);
    let mut ran = Vec::new();
    judge_all(&ctx, &[], &mut ran);
    assert_eq!(ran, ids_for(&Table, DeliveryMode::AtLeastOnce), "upsert: what ran is what the reports list");
    everything_ran.extend(ran);
    for c in &CHECKS {
        assert_eq!(everything_ran.contains(c.id), matches!(c.judge, Judge::History(_)), "{} runs in some mode", c.id);
    }
    // And a scenario's own checks are described like the table's.
    assert_eq!(name_in(&OrderedEcho, "echo/order"), "order-per-partition");
    assert_eq!(name_in(&OrderedEcho, "P7"), "precommit-committed");
    assert_eq!(name_in(&OrderedEcho, "nope"), "");
}
