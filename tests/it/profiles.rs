//! The engine holds exactly-once under every profile, for every scenario,
//! for the seeds `EXACTSIM_SEEDS`/`EXACTSIM_SEED` select.

use crate::common::*;
use exactsim_engine::types::DeliveryMode;

fn campaign(profile: &str) {
    for sc in exactsim_scenarios::all() {
        for seed in seed_range() {
            let out = go(make(sc.name(), seed, profile, DeliveryMode::ExactlyOnce, None), profile);
            assert_pass(&out);
            assert!(out.report.output.expected > 0, "{}: the workload is not empty", sc.name());
            assert_eq!(out.report.output.committed, out.report.output.expected);
            assert!(out.report.checkpoints.completed > 0, "{}", out.report.summary_line());
        }
    }
}

#[test]
fn profile_none() {
    campaign("none");
}
#[test]
fn profile_crash() {
    campaign("crash");
}
#[test]
fn profile_partition() {
    campaign("partition");
}
#[test]
fn profile_slow_disk() {
    campaign("slow-disk");
}
#[test]
fn profile_disk() {
    campaign("disk");
}
#[test]
fn profile_chaos() {
    campaign("chaos");
}
#[test]
fn profile_adaptive() {
    campaign("adaptive");
}
#[test]
fn profile_ci_gate_file() {
    campaign(concat!(env!("CARGO_MANIFEST_DIR"), "/ci/gate.toml"));
}
#[test]
fn profile_redeploy() {
    campaign("redeploy");
}

/// A redeploy lands while the job runs, and the new run restores the old
/// run's latest completed checkpoint: every sink of an attempt deployed
/// after it opens as an owner of the new run (the deployments carry it),
/// and the
/// reachability point says a checkpoint of the old run was restored.
#[test]
fn a_redeploy_restores_the_old_run_and_its_sinks_open_under_the_new_run() {
    use exactsim_engine::observe::Event;
    use exactsim_model::history::Ev;
    let mut restored = 0;
    for seed in 0..12 {
        let out = go(make("word_count", seed, "redeploy", DeliveryMode::ExactlyOnce, None), "redeploy");
        assert_pass(&out);
        let ev = &out.result.history.events;
        let Some((i, from)) = ev.iter().enumerate().find_map(|(i, s)| match &s.ev {
            Ev::Engine(Event::Redeployed { run: 1, from }) => Some((i, *from)),
            _ => None,
        }) else {
            continue;
        };
        let last_done = ev[..i].iter().rev().find_map(|s| match &s.ev {
            Ev::Engine(Event::CheckpointCompleted { ckpt, .. }) => Some(*ckpt),
            _ => None,
        });
        assert_eq!(from, last_done, "seed {seed}: the new run restores the old run's latest completed checkpoint");
        // Sinks of the attempts the new run deployed (a zombie of the old
        // run may still open one of its own, which fencing is for).
        let opened = |from: usize, to: usize| {
            ev[from..to].iter().filter_map(|s| match &s.ev {
                Ev::Engine(Event::SinkOpened { owner, .. }) => Some(*owner),
                _ => None,
            })
        };
        let old_attempt = opened(0, i).map(|o| o.attempt).max().unwrap_or(0);
        let owners: Vec<(u64, u64)> =
            opened(i, ev.len()).filter(|o| o.attempt > old_attempt).map(|o| (o.run, o.attempt)).collect();
        assert!(!owners.is_empty() && owners.iter().all(|(r, _)| *r == 1), "seed {seed}: {owners:?}");
        if from.is_some() {
            assert!(out.report.reached.contains_key("restored_under_new_run"), "seed {seed}");
            restored += 1;
        }
    }
    assert!(restored >= 3, "only {restored} of 12 redeploys restored a checkpoint of the old run");
}

#[test]
fn profile_rescale() {
    campaign("rescale");
}

/// A rescale restores a checkpoint taken with another parallelism: the
/// attempt restores exactly its new chain subtasks (whose state, judged
/// by the batch recomputation, came from the old subtasks' key groups),
/// and each removed subtask is adopted by exactly one survivor, subtask
/// `k mod new`. Seeds rescale both down and (after a first rescale) up:
/// about 1 word_count seed in 15 scales up from a checkpoint taken at a
/// lower parallelism.
#[test]
fn a_rescale_moves_key_groups_and_the_survivors_adopt_the_removed_subtasks() {
    use exactsim_engine::observe::Event;
    use exactsim_engine::types::TaskId;
    use exactsim_model::history::Ev;
    let (mut down, mut up) = (0, 0);
    for seed in 0..100 {
        if down >= 3 && up >= 1 {
            break;
        }
        let out = go(make("word_count", seed, "rescale", DeliveryMode::ExactlyOnce, None), "rescale");
        assert_pass(&out);
        let ev = &out.result.history.events;
        for s in ev {
            let Ev::Engine(Event::Rescaled { attempt, from, to, ckpt: Some(_) }) = &s.ev else { continue };
            // The attempt's own events (a deployment may finish after the
            // next recovery started).
            let mut chains = std::collections::BTreeSet::new();
            let mut adopted = std::collections::BTreeMap::new();
            for s in ev {
                match &s.ev {
                    Ev::Engine(Event::TaskRestored { attempt: a, task: TaskId::Chain(c), .. }) if a == attempt => {
                        chains.insert(*c);
                    }
                    Ev::Engine(Event::SubtaskAdopted {
                        attempt: a,
                        task: TaskId::Chain(by),
                        adopted: TaskId::Chain(k),
                    }) if a == attempt => {
                        assert!(
                            adopted.insert(*k, *by).is_none_or(|b| b == *by),
                            "seed {seed}: chain-{k} adopted twice"
                        );
                    }
                    _ => {}
                }
            }
            assert!(chains.iter().all(|c| c < to), "seed {seed}: attempt {attempt} restores {chains:?} of {to}");
            if to < from {
                down += 1;
                for (k, by) in &adopted {
                    assert!(*k >= *to && *by == k % to, "seed {seed}: chain-{k} adopted by chain-{by}");
                }
                if chains.len() == *to as usize {
                    assert!((*to..*from).all(|k| adopted.contains_key(&k)), "seed {seed}: {adopted:?}");
                }
            } else {
                up += 1;
            }
        }
    }
    assert!(down >= 3 && up >= 1, "restored rescales: {down} down, {up} up");
}
