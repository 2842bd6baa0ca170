//! The oracles' incremental references (lineages of growing prefixes, see
//! `checks::prefixes`) find exactly what the whole batch references find:
//! the same violations, messages included, on fault-free, chaos and
//! planted-bug runs of every scenario.

use exactsim::{run_one, spec};
use exactsim_engine::config::Mutant;
use exactsim_engine::types::DeliveryMode;
use exactsim_model::checks::{check_all, check_all_by_whole_references, CheckInput};
use exactsim_model::schedule::Profile;

#[test]
fn incremental_references_judge_like_whole_references() {
    let scenarios = exactsim_scenarios::all();
    let mut specs = Vec::new();
    for seed in crate::common::seed_range() {
        for profile in ["none", "chaos"] {
            for s in &scenarios {
                specs.push((
                    spec(s.clone(), seed, Profile::named(profile).unwrap(), DeliveryMode::ExactlyOnce, None),
                    profile,
                ));
            }
        }
    }
    // Every planted bug, on two seeds of the profile it is hunted with.
    for (i, m) in Mutant::ALL.iter().enumerate() {
        let profile = m.hunt_profile();
        for k in 0..2u64 {
            let sc = &scenarios[(i + k as usize) % scenarios.len()];
            specs.push((
                spec(sc.clone(), k, Profile::named(profile).unwrap(), DeliveryMode::ExactlyOnce, Some(*m)),
                profile,
            ));
        }
    }
    let mut prefix_violations = 0;
    for (sp, profile) in specs {
        let label = format!(
            "{} seed {} profile {profile} mutant {:?}",
            sp.scenario.name(),
            sp.seed,
            sp.mutant.map(|m| m.name())
        );
        let scenario = sp.scenario.clone();
        let out = run_one(sp, profile);
        if out.result.panic.is_some() {
            continue;
        }
        let input = CheckInput { history: &out.result.history, scenario: &*scenario };
        let fast = check_all(&input);
        let whole = check_all_by_whole_references(&input);
        assert_eq!(fast, whole, "{label}: lineages vs whole references");
        prefix_violations += fast.0.iter().filter(|v| v.check == "P2" || v.check == "P3").count();
    }
    assert!(prefix_violations > 0, "the planted bugs give P2 or P3 something to find");
}
