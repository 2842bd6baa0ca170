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
