//! The README's examples work as printed. Every `cargo run --release --`
//! command in a ```sh block of README.md is run through the test build of
//! the binary, in order, in a scratch directory (with a copy of `ci/` for
//! the profile files), and must give the verdict its comment states:
//! `# verdict=pass` exits 0 and prints `verdict=pass`, `# verdict=fail: P1`
//! exits 1 and fails check P1, a command without a verdict exits 0. `cp`
//! commands are done in the scratch directory. The README's table of the
//! checks must match `exactsim_model::checks::CHECKS`, and its table of the
//! scenarios' own checks every scenario's `Scenario::checks`.
//!
//! Run with a reduced count, to keep this test's wall time to seconds:
//! - `campaign --seeds 2000` (the main job: 12,000 runs, minutes) runs
//!   `--seeds 4`, and any other campaign of more than 10 seeds runs 10
//!   (the verdict is the command's; every profile's campaigns are the
//!   `profiles` tests', and the full counts are swept by `ci/gate.sh` and
//!   `ci/sweep.sh`);
//! - `bench` (20 seeds per measurement) runs `--seeds 1` (its quick form:
//!   one round of each measurement, small sizes);
//! - `mutants --seeds 300` (every planted bug's hunt, which
//!   `mutants::every_mutant_is_detected` runs too) runs `--only` the canary
//!   and `no-recommit-on-recovery`.
//!
//! The example crate's commands (`cargo run -p
//! exactsim-example-kv --`) run through its binary, which `cargo test`
//! builds beside this one, as `cargo run -p` runs it; a failing one must
//! print its reproduce command as that cargo command. Not run: `cargo test`
//! (this suite itself, and the example's, which `cargo test` runs) and the
//! std `cargo build --release` (checked by `.ci/run`); `real` runs when
//! that build's node binary exists (pg_ledger's when PostgreSQL 15 is
//! installed too); the example's commands are skipped, saying so, when its
//! binary is missing or older than the sources (a targeted `cargo test
//! --test it`; `cargo build -p exactsim-example-kv` builds it).

use std::path::{Path, PathBuf};
use std::process::Command;

const README: &str = include_str!("../../README.md");
const CLI: &str = "cargo run --release --";
/// The example crate's binary, as the README runs it.
const EXAMPLE: &str = "cargo run -p exactsim-example-kv --";

/// One command of the README, with the comment after it.
#[derive(Debug)]
struct Example {
    line: String,
    comment: String,
}

/// The commands of the ```sh blocks, continuation lines joined.
fn examples(readme: &str) -> Vec<Example> {
    let mut out = Vec::new();
    let mut in_sh = false;
    let mut pending = String::new();
    let mut comment = String::new();
    for raw in readme.lines() {
        let t = raw.trim();
        if t.starts_with("```") {
            in_sh = !in_sh && t == "```sh";
            continue;
        }
        if !in_sh || (pending.is_empty() && (t.is_empty() || t.starts_with('#'))) {
            continue;
        }
        let (code, c) = match t.find(" #") {
            Some(i) => (t[..i].trim_end(), t[i + 2..].trim()),
            None => (t, ""),
        };
        if !c.is_empty() {
            if !comment.is_empty() {
                comment.push(' ');
            }
            comment.push_str(c);
        }
        match code.strip_suffix('\\') {
            Some(head) => {
                pending.push_str(head.trim_end());
                pending.push(' ');
            }
            None => {
                pending.push_str(code);
                out.push(Example { line: std::mem::take(&mut pending), comment: std::mem::take(&mut comment) });
            }
        }
    }
    out
}

/// The arguments a README command gives the tool, with the documented
/// reductions.
fn cli_args(line: &str) -> Vec<String> {
    let rest = line.strip_prefix(CLI).or_else(|| line.strip_prefix(EXAMPLE)).expect("a cargo run command");
    let mut args: Vec<String> = rest.split_whitespace().map(String::from).collect();
    if args[0] == "campaign" {
        if let Some(i) = args.iter().position(|a| a == "--seeds") {
            let n: u64 = args[i + 1].parse().expect("a campaign's --seeds is a number");
            if n == 2000 {
                args[i + 1] = "4".into();
            } else if n > 10 {
                args[i + 1] = "10".into();
            }
        }
    }
    if args == ["bench"] {
        args.extend(["--seeds".into(), "1".into()]);
    }
    if args[0] == "mutants" && args.len() == 3 && args[1] == "--seeds" {
        args.extend(["--only".into(), "canary,no-recommit-on-recovery".into()]);
    }
    args
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn run(dir: &Path, args: &[String]) -> (i32, String, String) {
    output(Command::new(env!("CARGO_BIN_EXE_exactsim")).args(args).current_dir(dir))
}

fn output(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// The example crate's binary, beside this one (`cargo test` builds both),
/// when it is at least as new as every source it is built from.
fn example_bin() -> Option<PathBuf> {
    let bin = Path::new(env!("CARGO_BIN_EXE_exactsim")).with_file_name("exactsim-example-kv");
    let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok()?;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    fn newest(dir: &Path) -> Option<std::time::SystemTime> {
        let mut t = None;
        for e in std::fs::read_dir(dir).ok()?.flatten() {
            let p = e.path();
            let m = if p.is_dir() { newest(&p) } else { e.metadata().and_then(|m| m.modified()).ok() };
            t = t.max(m);
        }
        t
    }
    let sources = ["src", "engine/src", "model/src", "sim/src", "scenarios/src", "pg/src", "examples/kv-sink/src"];
    let newest = sources.iter().filter_map(|d| newest(&repo.join(d))).max()?;
    (built >= newest).then_some(bin)
}

/// Run the example's binary as `cargo run -p exactsim-example-kv --` does.
fn run_example(bin: &Path, dir: &Path, args: &[String]) -> (i32, String, String) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    output(
        Command::new(bin).args(args).current_dir(dir).env("CARGO", cargo).env("CARGO_PKG_NAME", "exactsim-example-kv"),
    )
}

/// Check a command's outcome against the verdict its comment states.
fn check_verdict(ex: &Example, args: &[String], code: i32, stdout: &str, stderr: &str) {
    let ctx = || format!("README: {}\n  ran: exactsim {}\n  exit {code}\n{stdout}{stderr}", ex.line, args.join(" "));
    let json = args.iter().any(|a| a == "--json");
    let verdict_of = |stdout: &str| -> Option<String> {
        if json {
            let v: serde_json::Value = serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {}", ctx()));
            v["verdict"].as_str().map(String::from)
        } else {
            let line = stdout.lines().find(|l| l.contains("verdict="))?;
            let v = line.split_whitespace().find_map(|w| w.strip_prefix("verdict="))?;
            Some(v.to_string())
        }
    };
    if let Some(rest) = ex.comment.split("verdict=fail").nth(1) {
        assert_eq!(code, 1, "expected a failing run (exit 1): {}", ctx());
        assert_eq!(verdict_of(stdout).as_deref(), Some("fail"), "{}", ctx());
        // `verdict=fail: P1`: that check fails (named in the output).
        if let Some(check) = rest.strip_prefix(':').and_then(|r| r.split_whitespace().next()) {
            let info =
                exactsim_model::checks::info(check).unwrap_or_else(|| panic!("unknown check {check}: {}", ctx()));
            assert!(stdout.contains(&format!("  {} {}", info.id, info.name)), "expected {check} to fail: {}", ctx());
            // The next steps are printed, as commands of this README.
            assert!(
                stdout.contains("next steps:") && stdout.contains("tests/corpus/"),
                "no next steps printed: {}",
                ctx()
            );
        }
    } else {
        assert_eq!(code, 0, "expected exit 0: {}", ctx());
        if ex.comment.contains("verdict=pass") {
            assert_eq!(verdict_of(stdout).as_deref(), Some("pass"), "{}", ctx());
        }
    }
    // `bench` ends with its four headline figures (ci/nightly.sh keeps them).
    if args.first().is_some_and(|a| a == "bench") && !args.iter().any(|a| a == "--only") {
        let figures: Vec<&str> = stdout.lines().filter_map(|l| l.strip_prefix("headline ")).collect();
        let names: Vec<&str> = figures.iter().filter_map(|f| f.split_whitespace().next()).collect();
        assert_eq!(
            names,
            ["engine_cost_ratio", "production_sim_s_per_wall_s", "main_job_runs_per_s", "records_step_exponent_max"],
            "{}",
            ctx()
        );
        assert!(figures.iter().all(|f| f.ends_with(" met") || f.ends_with(" missed")), "{}", ctx());
    }
}

/// Does `.ci/run` call this script, itself or through a script it calls?
fn ci_run_calls(script: &str) -> bool {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(repo.join(script).is_file(), "README names {script}, which does not exist");
    let ci = std::fs::read_to_string(repo.join(".ci/run")).unwrap();
    // A line's command: past its variable assignments and `.ci/run`'s
    // `step` (which times it).
    let called: Vec<&str> = ci
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_whitespace().find(|w| !w.contains('=') && *w != "step"))
        .filter(|w| w.starts_with("ci/"))
        .collect();
    called.contains(&script)
        || called.iter().any(|c| std::fs::read_to_string(repo.join(c)).is_ok_and(|t| t.contains(script)))
}

#[test]
fn every_readme_command_gives_the_stated_verdict() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir: PathBuf = std::env::temp_dir().join(format!("exactsim-readme-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&repo.join("ci"), &dir.join("ci"));
    let examples = examples(README);
    let mut ran = 0;
    let mut example_ran = 0;
    let mut commands = Vec::new();
    // A `run` or `shrink` the README shows twice reads no file and the tool
    // is deterministic: its second showing is judged on the first's output.
    let mut seen: std::collections::BTreeMap<Vec<String>, (i32, String, String)> = Default::default();
    for ex in &examples {
        if ex.line.starts_with(CLI) {
            let args = cli_args(&ex.line);
            let node = repo.join("target/std/release/exactsim-node");
            if args[0] == "real" && !(node.is_file() && exactsim::real::check_node_bin(&node).is_ok()) {
                // Real mode needs the std node binary built from this code
                // (the README's command before it; ci/real.sh builds it).
                eprintln!("skipped without a current std node binary: {}", ex.line);
                continue;
            }
            if args[0] == "real"
                && args.iter().any(|a| a == "pg_ledger")
                && !Path::new("/usr/lib/postgresql/15/bin/postgres").is_file()
            {
                // pg_ledger in real mode runs a real PostgreSQL 15
                // (ci/real.sh runs it; `cargo test` needs no PostgreSQL).
                eprintln!("skipped without PostgreSQL 15: {}", ex.line);
                continue;
            }
            let (code, stdout, stderr) = match seen.get(&args) {
                Some(done) => done.clone(),
                None => run(&dir, &args),
            };
            if args[0] == "run" || args[0] == "shrink" {
                seen.insert(args.clone(), (code, stdout.clone(), stderr.clone()));
            }
            check_verdict(ex, &args, code, &stdout, &stderr);
            commands.push(args[0].clone());
            ran += 1;
        } else if ex.line.starts_with(EXAMPLE) {
            let Some(bin) = example_bin() else {
                eprintln!("skipped without a current example binary (cargo build -p exactsim-example-kv): {}", ex.line);
                continue;
            };
            let args = cli_args(&ex.line);
            let (code, stdout, stderr) = run_example(&bin, &dir, &args);
            check_verdict(ex, &args, code, &stdout, &stderr);
            if code == 1 {
                // Its commands name it as the README runs it.
                let repro = format!("reproduce: {EXAMPLE} run --scenario ");
                assert!(
                    stdout.contains(&repro) || stdout.contains(&format!("reproduce: {EXAMPLE} replay ")),
                    "{stdout}"
                );
            }
            example_ran += 1;
        } else if let Some(rest) = ex.line.strip_prefix("cp ") {
            let (from, to) = rest.split_once(' ').expect("cp FROM TO");
            let to = dir.join(to);
            let example = to.starts_with(dir.join("examples/kv-sink"));
            let example_bin = example_bin();
            if example && example_bin.is_none() {
                eprintln!("skipped without a current example binary: {}", ex.line);
                continue;
            }
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(dir.join(from), &to).unwrap_or_else(|e| panic!("README: {}: {e}", ex.line));
            // A corpus case replays to its recorded failure.
            let args = vec!["replay".to_string(), to.display().to_string()];
            let replayed = match &example_bin {
                Some(bin) if example => Some(run_example(bin, &dir, &args)),
                _ => to.starts_with(dir.join("tests/corpus")).then(|| run(&dir, &args)),
            };
            if let Some((code, stdout, stderr)) = replayed {
                assert_eq!(code, 1, "the corpus case does not fail:\n{stdout}{stderr}");
                assert!(stdout.contains("recorded failure P1 reproduced"), "{stdout}");
            }
        } else {
            assert!(
                // `ci/*.sh` scripts start real components (PostgreSQL,
                // Slurm, OS processes): `.ci/run` runs each of them.
                ex.line == "cargo test"
                    || ex.line == "cargo test -p exactsim-example-kv"
                    || ex.line.starts_with("RUSTFLAGS= ")
                    || (ex.line.starts_with("ci/") && ci_run_calls(ex.line.split_whitespace().next().unwrap())),
                "README command the test does not know how to run: {}",
                ex.line
            );
        }
    }
    // Every subcommand of the tool is exemplified, and what the examples
    // say they write is there.
    for sub in ["scenarios", "run", "campaign", "merge", "shrink", "replay", "mutants", "explore", "bench"] {
        assert!(commands.iter().any(|c| c == sub), "the README has no `{sub}` example");
    }
    for f in [
        "run.log",
        "run.html",
        "case.json",
        "min.json",
        "timeline.html",
        "target/exactsim/junit.xml",
        "target/exactsim/report/campaign.json",
        "tests/corpus/word_count-1.json",
    ] {
        assert!(dir.join(f).is_file(), "the README's commands did not write {f}");
    }
    // The timeline says what it shows, as the README describes it.
    let html = std::fs::read_to_string(dir.join("timeline.html")).unwrap();
    assert!(html.contains(
        "word_count seed 1 \u{b7} profile chaos \u{b7} exactly-once \u{b7} planted bug: no-recommit-on-recovery"
    ));
    assert!(html.contains("<code>cargo run --release -- run --scenario word_count --seed 1 "), "no reproduce command");
    assert!(ran >= 15, "only {ran} README commands found");
    if example_ran > 0 {
        assert!(example_ran >= 5, "only {example_ran} of the example's README commands ran");
        assert!(dir.join("kv-min.json").is_file(), "the README's shrink of the example wrote no kv-min.json");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_readme_table_of_checks_matches_the_code() {
    let rows: Vec<Vec<&str>> = README
        .lines()
        .filter(|l| l.starts_with("| P") || l.starts_with("| panic "))
        .map(|l| l.trim_matches('|').split(" | ").map(str::trim).collect())
        .collect();
    let checks = &exactsim_model::checks::CHECKS;
    assert_eq!(rows.len(), checks.len(), "one README row per check");
    for (row, c) in rows.iter().zip(checks.iter()) {
        assert_eq!(row.len(), 5, "{row:?}");
        assert_eq!((row[0], row[1], row[2], row[3]), (c.id, c.name, c.meaning, c.applies.name()), "README row");
        assert!(!row[4].is_empty(), "{}: which fault exposes it", c.id);
    }
}

#[test]
fn the_readme_table_of_scenario_checks_matches_the_code() {
    let rows: Vec<Vec<&str>> = README
        .lines()
        .filter(|l| {
            // A scenario check's id: `scenario/name`, one word.
            let first = l.strip_prefix("| ").and_then(|r| r.split(" | ").next()).unwrap_or(" ");
            first.contains('/') && !first.contains(' ')
        })
        .map(|l| l.trim_matches('|').split(" | ").map(str::trim).collect())
        .collect();
    let mut want = Vec::new();
    for sc in exactsim_scenarios::all() {
        for c in sc.checks() {
            want.push(vec![c.id, c.name, c.meaning, sc.name()]);
        }
    }
    assert!(!want.is_empty());
    assert_eq!(rows, want, "one README row per scenario check, in scenario order");
}

#[test]
fn the_example_parser_joins_continuations_and_keeps_comments() {
    let md = "text\n```sh\n# a note\nx --a \\\n    --b   # one\ny # verdict=fail: P1\n```\n```\nz\n```\n";
    let ex = examples(md);
    assert_eq!(ex.len(), 2, "{ex:?}");
    assert_eq!((ex[0].line.as_str(), ex[0].comment.as_str()), ("x --a --b", "one"));
    assert_eq!((ex[1].line.as_str(), ex[1].comment.as_str()), ("y", "verdict=fail: P1"));
}
