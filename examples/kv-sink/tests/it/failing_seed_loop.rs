//! The example as its user runs it: a campaign from `cargo test`, and the
//! failing-seed loop through this crate's own binary (run, shrink, replay),
//! each command taken verbatim from what the previous one printed.
//!
//! Printed commands start with `cargo run -p exactsim-example-kv --`, the
//! cargo command that runs this binary; the test runs the rest of each
//! line through the binary cargo built for it (`CARGO_BIN_EXE_...`), with
//! the environment `cargo run -p exactsim-example-kv` gives it.

use exactsim_example_kv::{scenarios, KvScenario};
use exactsim_model::scenario::Scenario;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

const CLI: &str = "cargo run -p exactsim-example-kv --";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("exactsim-example-kv-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Run the binary in `dir`; (exit code, stdout, stderr).
fn tool(dir: &Path, args: &[String]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_exactsim-example-kv"))
        .args(args)
        .current_dir(dir)
        .env("CARGO", std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .env("CARGO_PKG_NAME", "exactsim-example-kv")
        .output()
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
}

fn words(args: &str) -> Vec<String> {
    args.split_whitespace().map(String::from).collect()
}

/// The command after `label` on a line of `text`, which must be this
/// binary's cargo command: its arguments.
fn printed(text: &str, label: &str) -> Vec<String> {
    let line = text
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .unwrap_or_else(|| panic!("no '{label}' in:\n{text}"));
    // A note after the command (`   (open timeline.html)`) is not part of it.
    let command = line.trim().split("   ").next().unwrap();
    let rest = command.strip_prefix(CLI).unwrap_or_else(|| panic!("'{command}' does not start with '{CLI}'"));
    words(rest)
}

fn trace_hash(stdout: &str) -> &str {
    stdout.split_whitespace().find_map(|w| w.strip_prefix("trace_hash=")).expect("a run line")
}

#[test]
fn the_correct_sink_passes_a_chaos_campaign() {
    let outcomes = exactsim::testing::campaign(&[Arc::new(KvScenario::new())], "chaos", 20);
    for o in &outcomes {
        assert_eq!(o.report.output.committed, o.report.output.expected, "seed {}", o.report.seed);
        assert!(o.report.transactions.committed > 0, "seed {}: the store announced its commits", o.report.seed);
    }
    assert!(outcomes.iter().map(|o| o.report.recoveries).sum::<u64>() > 0, "chaos caused recoveries");
}

/// The planted bug fails the test with one line per failing seed, and the
/// command on each line reproduces that run through the binary.
#[test]
fn the_planted_bug_fails_the_campaign_with_commands_that_reproduce_it() {
    let buggy: Arc<dyn Scenario> = Arc::new(KvScenario::buggy_no_recommit());
    let campaign = exactsim::testing::Campaign::new(&[buggy]).profile("crash").seeds(8);
    let outcomes = campaign.outcomes();
    let lines = exactsim::testing::failure_lines(&outcomes);
    assert!(!lines.is_empty(), "the planted bug escaped seeds {:?}", campaign.seed_range());
    // `Campaign::run` is `outcomes` and then this.
    let fail = || exactsim::testing::assert_all_pass(&outcomes);
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(fail)).expect_err("a failing campaign panics");
    let message = panic.downcast_ref::<String>().expect("a formatted message");
    assert!(message.contains(&lines.join("\n")), "{message}");
    let failed = outcomes.iter().find(|o| !o.report.verdict.is_pass()).unwrap();
    let want = format!(
        "FAIL kv_buggy_no_recommit seed {}: P1 exactly-once-output (seed = {}) ",
        failed.report.seed, failed.report.seed
    );
    assert!(lines[0].starts_with(&want), "{}", lines[0]);
    let args = printed(lines[0].split(" | ").nth(1).unwrap(), "reproduce: ");
    assert_eq!(args[..2], ["run".to_string(), "--scenario".to_string()]);
    let dir = scratch("campaign");
    let (code, stdout, stderr) = tool(&dir, &args);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert_eq!(trace_hash(&stdout), failed.report.trace_hash, "the same run");
    let _ = std::fs::remove_dir_all(&dir);
}

/// run -> shrink -> replay, each command pasted from the one before, and
/// the reports and the timeline name this binary too.
#[test]
fn run_shrink_replay_as_printed() {
    let dir = scratch("loop");
    let run = words("run --scenario kv_buggy_no_recommit --seed 1 --profile crash");
    let (code, first, err) = tool(&dir, &run);
    assert_eq!(code, 1, "{first}{err}");
    assert!(first.contains("  P1 exactly-once-output: "), "{first}");

    let again = printed(&first, "reproduce: ");
    let (code, out, err) = tool(&dir, &again);
    assert_eq!((code, trace_hash(&out)), (1, trace_hash(&first)), "{out}{err}");

    let (code, out, err) = tool(&dir, &printed(&first, "see the timeline: "));
    assert_eq!(code, 1, "{out}{err}");
    let html = std::fs::read_to_string(dir.join("timeline.html")).unwrap();
    assert!(html.contains(&format!("<code>{CLI} run --scenario kv_buggy_no_recommit --seed 1 ")), "timeline");

    let (code, shrunk, err) = tool(&dir, &printed(&first, "shrink the faults: "));
    assert_eq!(code, 0, "{shrunk}{err}");
    assert!(shrunk.contains("check P1 still fails"), "{shrunk}");
    assert_eq!(printed(&shrunk, "replay with: "), printed(&first, "replay the minimum: "));

    let (code, out, err) = tool(&dir, &printed(&shrunk, "replay with: "));
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("replay: recorded failure P1 reproduced"), "{out}");
    assert_eq!(printed(&out, "reproduce: "), words("replay min.json"));

    // A campaign's stored commands (campaign.json, JUnit) name it as well.
    let camp = words("campaign --scenario kv_buggy_no_recommit --seeds 2 --profile crash --report r --junit j.xml");
    let (code, out, err) = tool(&dir, &camp);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(
        printed(&out, "reproduce: "),
        words("run --scenario kv_buggy_no_recommit --seed 1 --profile crash --mode exactly-once")
    );
    let report = std::fs::read_to_string(dir.join("r/campaign.json")).unwrap();
    assert!(report.contains(&format!("\"{CLI} run --scenario kv_buggy_no_recommit --seed 1 ")), "campaign.json");
    let junit = std::fs::read_to_string(dir.join("j.xml")).unwrap();
    assert!(junit.contains(&format!("reproduce: {CLI} run --scenario kv_buggy_no_recommit")), "{junit}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Failures frozen with `shrink` and copied here replay to their verdict.
#[test]
fn the_corpus_replays() {
    let outcomes = exactsim::testing::replay_corpus(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus"), &scenarios());
    assert!(!outcomes.is_empty(), "the corpus is empty");
}

#[test]
fn bad_input_names_this_binarys_scenarios() {
    let dir = scratch("bad");
    let (code, out, err) = tool(&dir, &words("run --scenario nope --seed 1"));
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("unknown scenario 'nope' (expected one of: word_count,"), "{err}");
    assert!(
        err.contains(
            ", kv, kv_buggy_no_recommit, kv_buggy_confirm_unanswered, kv_buggy_no_fencing, kv_buggy_volatile_stage)"
        ),
        "{err}"
    );

    let (code, _, err) = tool(&dir, &words("real --scenario kv --seed 1"));
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("real mode runs the built-in scenarios only"), "{err}");
    assert!(err.contains(&format!("{CLI} run --scenario kv --seed 1")), "{err}");

    let (code, out, _) = tool(&dir, &words("scenarios"));
    assert_eq!(code, 0);
    assert!(out.lines().any(|l| l.starts_with("kv ")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("kv_buggy_no_recommit ") && l.contains("(planted bug: ")), "{out}");

    // A scenario named like a built-in one: one line, exit 2, before any
    // argument is read.
    let word_count = exactsim::registry::Registry::builtin().get("word_count").unwrap();
    let code = exactsim::cli::main_with(vec![Arc::new(KvScenario::new()), word_count]);
    assert_eq!(format!("{code:?}"), format!("{:?}", std::process::ExitCode::from(2)));
    let _ = std::fs::remove_dir_all(&dir);
}
