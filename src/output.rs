//! What the command line prints after a run or a campaign: the run line
//! (verdict, the fault kinds that landed, the checks that ran), each
//! violation with its check's name, and after a failure the next steps as
//! commands that work as printed from the repository root.

use crate::campaign::{summary_table, CampaignReport};
use exactsim_model::report::RunReport;
use exactsim_sim::runner::Outcome;
use std::fmt::Write;
use std::path::Path;

/// How the README and the commands stored in reports (`repro`, JUnit, the
/// timeline) invoke the tool: from the repository root, through cargo.
pub const CLI: &str = "cargo run --release --";

/// How this process was invoked, for the commands it prints: [`CLI`] when
/// cargo ran the project's own binary (cargo sets `CARGO` for what it runs,
/// and its binaries live under `target/`); for a user's binary that cargo
/// ran (`cargo run -p my-crate --`, `cargo run --example my_harness --`),
/// the cargo command that runs it again, from `CARGO_PKG_NAME` (cargo sets
/// it for what it runs) and the binary's path; else the program as it was
/// typed (`./exactsim`, `target/release/my-harness`), so that a pasted next
/// step runs the same binary.
pub fn invocation() -> &'static str {
    static CACHED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    CACHED.get_or_init(|| {
        let package = std::env::var("CARGO_PKG_NAME").ok();
        invocation_of(&argv0(), std::env::var_os("CARGO").is_some(), package.as_deref())
    })
}

fn argv0() -> String {
    std::env::args_os().next().map(|a| a.to_string_lossy().into_owned()).unwrap_or_default()
}

/// [`invocation`] from its inputs: the program's path, whether cargo ran
/// it, and the package cargo ran it for.
pub fn invocation_of(argv0: &str, run_by_cargo: bool, package: Option<&str>) -> String {
    let under_target = Path::new(argv0).components().any(|c| c.as_os_str() == "target");
    if argv0.is_empty() {
        return CLI.to_string();
    }
    if run_by_cargo && under_target {
        return cargo_command(Path::new(argv0), package);
    }
    if argv0.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c)) {
        argv0.to_string()
    } else {
        format!("'{}'", argv0.replace('\'', r"'\''"))
    }
}

/// The binary's name and whether it is an example (`target/<profile>/examples/`).
fn binary_of(path: &Path) -> (String, bool) {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let name = name.strip_suffix(".exe").map(str::to_string).unwrap_or(name);
    let example = path.parent().and_then(Path::file_name).is_some_and(|d| d == "examples");
    (name, example)
}

/// The cargo command that runs the binary at `path` (under `target/`) of
/// `package`: [`CLI`] for the project's own `exactsim`, else `cargo run`
/// with the build profile (the directory the binary sits in: `debug`,
/// `release` or a custom profile's), the package, and `--example` or
/// `--bin` when the binary is not the package's own.
fn cargo_command(path: &Path, package: Option<&str>) -> String {
    let (name, example) = binary_of(path);
    if name == "exactsim" && !example && package.is_none_or(|p| p == "exactsim") {
        return CLI.to_string();
    }
    let dir = if example { path.parent().and_then(Path::parent) } else { path.parent() };
    let mut s = String::from("cargo run");
    match dir.and_then(Path::file_name).and_then(|d| d.to_str()) {
        None | Some("debug") => {}
        Some("release") => s.push_str(" --release"),
        Some(profile) => {
            let _ = write!(s, " --profile {profile}");
        }
    }
    if let Some(p) = package {
        let _ = write!(s, " -p {p}");
    }
    if example {
        let _ = write!(s, " --example {name}");
    } else if package != Some(name.as_str()) {
        let _ = write!(s, " --bin {name}");
    }
    s.push_str(" --");
    s
}

static USER_REPORT_CLI: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Called by `cli::main_with`: when this process is a user's binary (not
/// the project's `exactsim`), the commands stored in its reports name it
/// as it was invoked ([`invocation`]) instead of [`CLI`].
pub fn install_report_cli() {
    let (name, example) = binary_of(Path::new(&argv0()));
    if name != "exactsim" || example {
        let _ = USER_REPORT_CLI.set(invocation().to_string());
    }
}

/// The prefix of the commands stored in reports when this process is a
/// user's binary run through `main_with`; `None` for the project's own.
pub fn user_report_cli() -> Option<&'static str> {
    USER_REPORT_CLI.get().map(String::as_str)
}

/// The prefix of the commands stored in reports: [`CLI`], or a user's
/// binary's ([`user_report_cli`]).
pub fn report_cli() -> &'static str {
    user_report_cli().unwrap_or(CLI)
}

/// A stored command without its prefix (the project's [`CLI`] or a user
/// binary's).
fn strip_cli(command: &str) -> Option<&str> {
    command.strip_prefix(CLI).or_else(|| command.strip_prefix(user_report_cli()?))
}

/// A stored command (`cargo run --release -- run ...`) as `cli` runs it.
pub fn as_invoked(command: &str, cli: &str) -> String {
    match strip_cli(command) {
        Some(rest) => format!("{cli}{rest}"),
        None => command.to_string(),
    }
}

/// What keeps a replay file in a corpus: the project's `cargo test`, or a
/// user's test calling `exactsim::testing::replay_corpus`.
fn corpus_note() -> &'static str {
    if user_report_cli().is_some() {
        "a test calling exactsim::testing::replay_corpus replays it"
    } else {
        "cargo test replays it"
    }
}

/// The replay file a run came from, when its reproduce command is a replay.
fn replay_source(r: &RunReport) -> Option<&str> {
    strip_cli(&r.repro)?.trim_start().strip_prefix("replay ")
}

/// The options that select a seed's run: `--scenario .. --seed .. --profile
/// .. --mode ..` and `--mutant ..` when there is one.
fn run_options(r: &RunReport) -> String {
    let mut s = format!("--scenario {} --seed {} --profile {} --mode {}", r.scenario, r.seed, r.profile, r.mode);
    if let Some(m) = &r.mutant {
        let _ = write!(s, " --mutant {m}");
    }
    s
}

/// One violation, as printed under the run line.
pub fn violation_line(v: &exactsim_model::report::ViolationReport) -> String {
    let t = v.t_ms.map(|t| format!(" at {t:.1}ms")).unwrap_or_default();
    format!("  {}{}: {}", v.label(), t, v.message)
}

/// The commands to run after a failure (timeline, shrink, replay, corpus),
/// as `cli` invokes the tool.
pub fn next_steps(r: &RunReport, cli: &str) -> String {
    let mut s = String::from("next steps:\n");
    let corpus = format!("tests/corpus/{}-{}.json", r.scenario, r.seed);
    if let Some(file) = replay_source(r) {
        let _ = writeln!(s, "  re-run it:          {cli} replay {file}");
        let _ = writeln!(s, "  add to the corpus:  cp {file} {corpus}   ({})", corpus_note());
        return s;
    }
    let opts = run_options(r);
    let _ = writeln!(s, "  see the timeline:   {cli} run {opts} --timeline timeline.html   (open timeline.html)");
    let _ = writeln!(s, "  shrink the faults:  {cli} shrink {opts} --out min.json");
    let _ = writeln!(s, "  replay the minimum: {cli} replay min.json");
    let _ = writeln!(
        s,
        "  then keep it:       cp min.json {corpus}   (once shrink has written min.json; {})",
        corpus_note()
    );
    s
}

/// The text `run` (and `replay`) prints without `--json`, its commands as
/// `cli` invokes the tool.
pub fn outcome_text(r: &RunReport, cli: &str) -> String {
    let mut s = r.summary_line();
    s.push('\n');
    for v in &r.violations {
        s.push_str(&violation_line(v));
        s.push('\n');
    }
    if !r.violations.is_empty() {
        let _ = writeln!(s, "reproduce: {}", as_invoked(&r.repro, cli));
        s.push_str(&next_steps(r, cli));
    }
    s
}

pub fn print_outcome(out: &Outcome, json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(&out.report).unwrap());
    } else {
        print!("{}", outcome_text(&out.report, invocation()));
    }
}

/// The text `campaign` prints without `--json`: the summary table, the
/// first failures with their reproduce commands, and where the report is.
/// Failing runs whose reproduce command a campaign prints (every failing
/// run gets its one line; campaign.json has them all).
pub const MAX_REPRO_LINES: usize = 20;

pub fn campaign_text(rep: &CampaignReport, report_dir: Option<&Path>, cli: &str) -> String {
    let mut s = summary_table(rep);
    for (i, r) in rep.runs.iter().filter(|r| r.failed()).enumerate() {
        let what = match rep.failures.iter().find(|f| f.scenario == r.scenario && f.seed == r.seed) {
            Some(f) => format!("{} {}", f.violations[0].label(), f.violations[0].message),
            None => "nondeterministic: a second run gave another trace".to_string(),
        };
        let _ = writeln!(s, "FAIL {} seed {}: {}", r.scenario, r.seed, what);
        if i < MAX_REPRO_LINES {
            let _ = writeln!(s, "  reproduce: {}", r.repro.as_deref().map_or("?".into(), |c| as_invoked(c, cli)));
        }
    }
    let first = rep.failures.first();
    match (report_dir, first) {
        (Some(dir), f) => {
            let _ = writeln!(
                s,
                "report: {}/campaign.json ({} failing run(s) with artifacts, {} left out by --max-artifacts {})",
                dir.display(),
                rep.artifacts_written,
                rep.artifacts_left_out,
                rep.max_artifacts
            );
            let with_artifacts = rep
                .runs
                .iter()
                .filter(|r| r.artifacts.is_some())
                .find_map(|r| rep.failures.iter().find(|f| f.scenario == r.scenario && f.seed == r.seed));
            if let Some(f) = with_artifacts.or(f.filter(|_| rep.artifacts_written > 0)) {
                s.push_str(&artifact_steps(dir, f, cli));
            } else if let Some(f) = f {
                s.push_str(&next_steps(f, cli));
            }
        }
        (None, Some(f)) => {
            s.push_str(&next_steps(f, cli));
            let _ = writeln!(s, "(add --report <DIR> to keep the timeline and replay files of the failing seeds)");
        }
        (None, None) => {}
    }
    if rep.interrupted {
        let _ =
            writeln!(s, "interrupted: {} of {} runs done; the report holds those", rep.runs.len(), rep.runs_planned);
    }
    s
}

/// Next steps for a campaign's first failure, from the files its report
/// folder holds (`replay.min.json` when the campaign shrank it).
fn artifact_steps(dir: &Path, f: &RunReport, cli: &str) -> String {
    let base = dir.join(format!("{}-{}", f.scenario, f.seed));
    let min = base.join("replay.min.json");
    let replay = if min.exists() { min } else { base.join("replay.json") };
    let mut s = format!("first failure: {}/ (report.json, trace.jsonl, timeline.html, replay files)\n", base.display());
    let _ = writeln!(s, "next steps:");
    let _ = writeln!(s, "  see the timeline:   {}   (open it in a browser)", base.join("timeline.html").display());
    if f.is_real() {
        // The same schedule played again by real processes; the schedule
        // replayed in simulation (another interleaving, deterministic).
        let again = as_invoked(f.repro_command(), cli);
        let _ = writeln!(s, "  play it again:      {again} --schedule {}", replay.display());
        let _ = writeln!(s, "  in simulation:      {cli} replay {}", replay.display());
        return s;
    }
    let _ = writeln!(s, "  replay it:          {cli} replay {}", replay.display());
    let _ = writeln!(
        s,
        "  add to the corpus:  cp {} tests/corpus/{}-{}.json   ({})",
        replay.display(),
        f.scenario,
        f.seed,
        corpus_note()
    );
    s
}

/// The lines printed after a real run.
pub fn real_summary(out: &crate::real::RealOutcome) -> String {
    let mut s = out.report().summary_line();
    s.push_str(&format!(" wall_ms={} skipped={}", out.real.wall_ms, out.real.skipped.len()));
    s.push_str("\n  real run: not reproducible bit for bit (no trace hash); played:");
    for p in &out.real.played {
        s.push_str(&format!("\n    {:>6} ms {:<14} {:<12} {}", p.at_ms, p.kind, p.node, p.detail));
    }
    if !out.real.skipped.is_empty() {
        s.push_str("\n  skipped (cannot be played for real):");
        for k in &out.real.skipped {
            s.push_str(&format!("\n    {}: {} ({})", k.kind, k.event, k.reason));
        }
    }
    for v in &out.report().violations {
        s.push('\n');
        s.push_str(&violation_line(v));
    }
    if !out.report().violations.is_empty() {
        let r = out.report();
        let cli = invocation();
        s.push_str(&format!("\nreproduce: {}", as_invoked(&r.repro, cli)));
        let sim = exactsim_model::finish::repro_command(
            exactsim_model::finish::SIM_COMMAND,
            &r.scenario,
            r.seed,
            &r.profile,
            &r.mode,
            r.mutant.as_deref(),
            &[],
        );
        let sim = as_invoked(&sim, cli);
        s.push_str(&format!("\nin simulation (deterministic; the same seed's schedule, another interleaving): {sim}"));
    }
    s
}

pub fn print_campaign(rep: &CampaignReport, json: bool, report_dir: Option<&Path>) {
    if json {
        println!("{}", serde_json::to_string_pretty(rep).unwrap());
    } else {
        print!("{}", campaign_text(rep, report_dir, invocation()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exactsim_model::report::ViolationReport;

    fn report(violations: Vec<ViolationReport>) -> RunReport {
        let json = serde_json::json!({
            "scenario": "word_count", "seed": 8, "profile": "chaos", "mode": "exactly-once",
            "mutant": "no-recommit-on-recovery", "verdict": if violations.is_empty() { "pass" } else { "fail" },
            "violations": violations, "checks": ["P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9", "P10", "P11"],
            "trace_hash": "00", "faults": {"crash": 2, "latency": 1},
            "output": {"expected": 1, "committed": 1, "duplicates": 0, "lost": 0, "wrong": 0, "unexpected": 0},
            "checkpoints": {"triggered": 1, "completed": 1, "failed": 0, "duration_ms_avg": 0.0, "duration_ms_max": 0.0},
            "recoveries": 0, "recovery_time_ms_avg": 0.0, "recovery_time_ms_max": 0.0,
            "transactions": {"committed": 0, "aborted": 0, "commit_failed": 0},
            "state_size_bytes_max": 0, "retries": 0, "sim_time_ms": 1, "wall_ms": 1, "events": 1,
            "net_messages": 1, "coverage": [], "fault_points": {}, "parallelism": 3,
            "checkpoint_interval_ms": 100, "job_finished_ms": null,
            "repro": "cargo run --release -- run --scenario word_count --seed 8 --profile chaos --mode exactly-once --mutant no-recommit-on-recovery",
            "code_version": "x"
        });
        serde_json::from_value(json).unwrap()
    }

    fn p1() -> ViolationReport {
        ViolationReport { check: "P1".into(), name: "exactly-once-output".into(), message: "3 lost".into(), t_ms: None }
    }

    #[test]
    fn a_passing_line_says_what_landed_and_what_ran() {
        let text = outcome_text(&report(vec![]), CLI);
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains(" faults=crash:2,latency:1 "), "{text}");
        assert!(text.contains(" checks=P1-P11 "), "{text}");
        assert!(!text.contains("next steps"));
    }

    #[test]
    fn a_failing_run_names_the_check_and_prints_next_steps() {
        let text = outcome_text(&report(vec![p1()]), CLI);
        assert!(text.contains("first_violation=P1:exactly-once-output"), "{text}");
        assert!(text.contains("  P1 exactly-once-output: 3 lost\n"), "{text}");
        let opts =
            "--scenario word_count --seed 8 --profile chaos --mode exactly-once --mutant no-recommit-on-recovery";
        assert!(text.contains(&format!("cargo run --release -- run {opts} --timeline timeline.html")), "{text}");
        assert!(text.contains(&format!("cargo run --release -- shrink {opts} --out min.json")), "{text}");
        assert!(text.contains("cargo run --release -- replay min.json"), "{text}");
        assert!(text.contains("cp min.json tests/corpus/word_count-8.json"), "{text}");
    }

    #[test]
    fn checks_and_faults_are_compact() {
        let mut r = report(vec![]);
        r.checks = vec!["P4".into(), "P11".into(), "P12".into()];
        r.faults.clear();
        let line = r.summary_line();
        assert!(line.contains(" faults=none effective_faults=0 checks=P4,P11,P12 "), "{line}");
        let panic = ViolationReport { check: "panic".into(), name: "panic".into(), message: "x".into(), t_ms: None };
        assert_eq!(panic.label(), "panic");
        let r = report(vec![panic]);
        assert!(r.summary_line().ends_with(" first_violation=panic"), "{}", r.summary_line());
    }

    #[test]
    fn a_replayed_failure_points_at_its_file() {
        let mut r = report(vec![p1()]);
        r.repro = "cargo run --release -- replay case.json".into();
        let text = outcome_text(&r, CLI);
        assert!(text.contains("re-run it:          cargo run --release -- replay case.json"), "{text}");
        assert!(text.contains("cp case.json tests/corpus/word_count-8.json"), "{text}");
        assert!(!text.contains("shrink"), "{text}");
    }

    #[test]
    fn printed_commands_run_the_binary_as_it_was_invoked() {
        assert_eq!(invocation_of("/home/u/exactsim/target/release/exactsim", true, Some("exactsim")), CLI);
        assert_eq!(invocation_of("target/debug/exactsim", true, None), CLI);
        assert_eq!(invocation_of("target/release/exactsim", false, None), "target/release/exactsim");
        assert_eq!(invocation_of("./exactsim", false, None), "./exactsim");
        assert_eq!(invocation_of("/usr/local/bin/exactsim", true, None), "/usr/local/bin/exactsim");
        assert_eq!(invocation_of("/opt/my tools/exactsim", false, None), "'/opt/my tools/exactsim'");
        let text = outcome_text(&report(vec![p1()]), "./exactsim");
        assert!(!text.contains("cargo run"), "{text}");
        assert!(text.contains("reproduce: ./exactsim run --scenario word_count --seed 8 "), "{text}");
        assert!(text.contains("./exactsim shrink --scenario word_count"), "{text}");
        assert!(text.contains("once shrink has written min.json"), "{text}");
    }

    /// A user's binary (`cli::main_with`) run by cargo prints the cargo
    /// command that runs it again: its package, its profile, and the
    /// binary when it is not the package's own.
    #[test]
    fn a_users_binary_is_named_by_its_cargo_command() {
        let kv = Some("exactsim-example-kv");
        let of = |p: &str, pkg| invocation_of(p, true, pkg);
        assert_eq!(of("/w/target/debug/exactsim-example-kv", kv), "cargo run -p exactsim-example-kv --");
        assert_eq!(of("/w/target/release/exactsim-example-kv", kv), "cargo run --release -p exactsim-example-kv --");
        assert_eq!(of("target/debug/examples/my_harness", Some("mine")), "cargo run -p mine --example my_harness --");
        assert_eq!(of("target/release/examples/h", Some("mine")), "cargo run --release -p mine --example h --");
        assert_eq!(of("target/debug/harness", Some("mine")), "cargo run -p mine --bin harness --");
        assert_eq!(of("target/fast/harness", None), "cargo run --profile fast --bin harness --");
        assert_eq!(of("/w/target/debug/exactsim", Some("mine")), "cargo run -p mine --bin exactsim --");
        // Not run by cargo: the path as typed, whatever the binary.
        assert_eq!(invocation_of("target/debug/exactsim-example-kv", false, kv), "target/debug/exactsim-example-kv");
        let cli = "cargo run -p exactsim-example-kv --";
        let mut r = report(vec![p1()]);
        r.repro = as_invoked(&r.repro, cli);
        assert!(r.repro.starts_with("cargo run -p exactsim-example-kv -- run --scenario word_count"), "{}", r.repro);
    }
}
