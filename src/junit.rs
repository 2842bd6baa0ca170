//! JUnit XML for CI, written with `quick-junit` (the library nextest uses):
//! one test case per (scenario, seed); a failing case carries the first
//! violation as its message and every violation plus the reproduce command
//! in its text. A run whose second execution gave another trace is a
//! failure of type `determinism`. The suite's property `checks` lists every
//! check that judged the campaign, and each case's property `checks` the
//! ones that judged its run (its scenario's own checks included), so a
//! passing case says what it passed. Every reachability point no run
//! reached is a skipped case (`reach <point>`) saying so.

use crate::campaign_report::CampaignReport;
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

pub fn render(rep: &CampaignReport) -> String {
    let mut report = Report::new("exactsim");
    report.set_time(Duration::from_millis(rep.wall_ms));
    let mut suite = TestSuite::new(format!("exactsim.{}.{}", rep.profile, rep.mode));
    suite.set_time(Duration::from_millis(rep.wall_ms));
    suite.add_property(Property::new("code_version", rep.code_version.clone()));
    if let Some(m) = &rep.mutant {
        suite.add_property(Property::new("mutant", m.clone()));
    }
    if let Some(s) = &rep.shard {
        suite.add_property(Property::new("shard", s.clone()));
    }
    // The seed range, so that a gate of fixed and commit-derived seeds says
    // which it ran (each case names its own seed too).
    if rep.seeds > 0 {
        let last = rep.first_seed.saturating_add(rep.seeds - 1);
        suite.add_property(Property::new("seeds", format!("{}..={last}", rep.first_seed)));
    }
    // How many runs had a fault while the job ran: a campaign whose
    // faults all missed the job passes without having tested anything.
    let hit = rep.runs.iter().filter(|r| r.effective_faults > 0).count();
    suite.add_property(Property::new("runs_with_effective_faults", format!("{hit}/{}", rep.runs.len())));
    let ids: Vec<&str> = rep.checks.iter().map(|c| c.id.as_str()).collect();
    if !ids.is_empty() {
        suite.add_property(Property::new("checks", exactsim_model::report::compact_ids(&ids)));
    }
    if rep.interrupted {
        suite.add_property(Property::new(
            "interrupted",
            format!("{} of {} runs done", rep.runs.len(), rep.runs_planned),
        ));
    }
    for r in &rep.runs {
        let status = if !r.failed() {
            TestCaseStatus::success()
        } else {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
            let mut body = String::new();
            if !r.verdict.is_pass() {
                match rep.failures.iter().find(|f| f.seed == r.seed && f.scenario == r.scenario) {
                    Some(f) => {
                        for v in &f.violations {
                            let at = v.t_ms.map(|t| format!(" at {t:.1}ms")).unwrap_or_default();
                            body.push_str(&format!("{}{at}: {}\n", v.label(), v.message));
                        }
                    }
                    None => body.push_str(&format!("{}\n", r.message.clone().unwrap_or_default())),
                }
                st.set_type(r.checks_failed.first().cloned().unwrap_or_else(|| "violation".into()));
                st.set_message(r.message.clone().unwrap_or_else(|| "violation".into()));
            } else {
                st.set_type("determinism");
                st.set_message(format!("nondeterministic: seed {} ran twice with different traces", r.seed));
            }
            if r.determinism == Some(false) {
                body.push_str(&format!(
                    "determinism: the second run's trace_hash is {} (first {}); find the first divergent event with: {} --check-determinism\n",
                    r.determinism_trace_hash.as_deref().unwrap_or("?"),
                    r.trace_hash,
                    r.repro.as_deref().unwrap_or("run")
                ));
            }
            if let Some(repro) = &r.repro {
                body.push_str(&format!("reproduce: {repro}\n"));
            }
            if let Some(a) = &r.artifacts {
                body.push_str(&format!("artifacts: {a}/ in the report directory\n"));
            }
            st.set_description(body);
            st
        };
        let mut case = TestCase::new(format!("{} seed {}", r.scenario, r.seed), status);
        case.set_classname(format!("exactsim.{}", r.scenario));
        let ran: Vec<&str> = rep
            .checks
            .iter()
            .filter(|c| c.id != exactsim_model::checks::PANIC_CHECK)
            .filter(|c| c.scenario.as_ref().is_none_or(|s| *s == r.scenario))
            .map(|c| c.id.as_str())
            .collect();
        if !ran.is_empty() {
            case.add_property(Property::new("checks", exactsim_model::report::compact_ids(&ran)));
        }
        case.set_time(Duration::from_millis(r.wall_ms));
        suite.add_test_case(case);
    }
    // A reachability point no run reached is a state the campaign never
    // tested: a skipped case, with the reason.
    for name in &rep.never_reached {
        let meaning = exactsim_engine::observe::Reach::parse(name).map_or("", |p| p.meaning());
        let mut st = TestCaseStatus::skipped();
        st.set_message(format!("never reached in {} runs: {meaning}", rep.runs.len()));
        let mut case = TestCase::new(format!("reach {name}"), st);
        case.set_classname("exactsim.reachability");
        suite.add_test_case(case);
    }
    report.add_test_suite(suite);
    report.to_string().expect("JUnit XML serializes")
}
