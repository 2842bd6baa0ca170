//! The command line as a user types it, bad input included: one line, exit
//! code 2, no backtrace.

use std::process::Command;

fn exactsim(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_exactsim")).args(args).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn assert_usage_error(args: &[&str], needle: &str) {
    let (code, _out, err) = exactsim(args);
    assert_eq!(code, Some(2), "{args:?}: {err}");
    assert!(err.contains(needle), "{args:?}: expected '{needle}' in: {err}");
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "{args:?}: {err}");
}

#[test]
fn bad_names_and_numbers_are_usage_errors() {
    assert_usage_error(&["run", "--scenario", "nope", "--seed", "1"], "unknown scenario 'nope'");
    assert_usage_error(&["run", "--scenario", "word_count", "--seed", "12x"], "malformed seed '12x'");
    assert_usage_error(&["run", "--scenario", "word_count", "--seed", "0xZZ"], "malformed seed");
    assert_usage_error(
        &["run", "--scenario", "word_count", "--seed", "1", "--profile", "stormy"],
        "unknown profile 'stormy'",
    );
    assert_usage_error(&["run", "--scenario", "word_count", "--seed", "1", "--mode", "twice"], "unknown mode 'twice'");
    assert_usage_error(
        &["run", "--scenario", "word_count", "--seed", "1", "--mutant", "gremlin"],
        "unknown mutant 'gremlin'",
    );
    assert_usage_error(&["campaign", "--seeds", "ten"], "malformed seed count");
    assert_usage_error(&["campaign", "--shard", "3/2"], "malformed shard");
    assert_usage_error(&["bogus-command"], "unrecognized subcommand");
}

#[test]
fn bad_replay_files_are_usage_errors() {
    let dir = std::env::temp_dir().join(format!("exactsim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("missing.json");
    assert_usage_error(&["replay", missing.to_str().unwrap()], "cannot read replay file");
    let truncated = dir.join("truncated.json");
    std::fs::write(&truncated, "{\"format\": 1, \"scenario\": \"word_co").unwrap();
    assert_usage_error(&["replay", truncated.to_str().unwrap()], "not a valid replay file");
    let other = dir.join("other.json");
    std::fs::write(
        &other,
        r#"{"format":1,"scenario":"word_count","seed":1,"profile":"none","mode":"exactly-once","mutant":null,"check":null,
            "schedule":{"safety_ms":100,"liveness_ms":1000,"events":[]},"code_version":"0.0.0+0000000000000000"}"#,
    )
    .unwrap();
    // Other code: refused with --strict-version, else run with a warning.
    assert_usage_error(&["replay", other.to_str().unwrap(), "--strict-version"], "written by code version");
    let (code, out, err) = exactsim(&["replay", other.to_str().unwrap()]);
    assert!(err.starts_with("warning: ") && err.contains("written by code version"), "{err}");
    assert!(out.contains("replay: recorded pass"), "{out}");
    assert!(code == Some(0) || code == Some(1), "{code:?}");
    let edited = dir.join("edited.json");
    std::fs::write(
        &edited,
        format!(
            r#"{{"format":1,"scenario":"word_count","seed":1,"profile":"none","mode":"exactly-once","mutant":null,"check":null,
            "schedule":{{"safety_ms":100,"liveness_ms":1000,"events":[{{"kind":"meteor","at_ms":1}}]}},"code_version":"{}"}}"#,
            exactsim::code_version()
        ),
    )
    .unwrap();
    assert_usage_error(&["replay", edited.to_str().unwrap()], "not a valid replay file");
    let bad_profile = dir.join("bad.toml");
    std::fs::write(&bad_profile, "name = \"x\"\ncrahs = 3\n").unwrap();
    assert_usage_error(
        &["run", "--scenario", "word_count", "--seed", "1", "--profile", bad_profile.to_str().unwrap()],
        "bad profile file",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn run_prints_verdict_and_trace_hash_and_json_fields() {
    let (code, out, err) = exactsim(&["run", "--scenario", "word_count", "--seed", "5", "--profile", "none"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("verdict=pass") && out.contains("trace_hash="), "{out}");
    let (code, out, _) = exactsim(&[
        "run",
        "--scenario",
        "word_count",
        "--seed",
        "5",
        "--profile",
        "crash",
        "--mode",
        "at-least-once",
        "--json",
    ]);
    assert_eq!(code, Some(0), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    for field in [
        "scenario",
        "seed",
        "profile",
        "mode",
        "verdict",
        "trace_hash",
        "violations",
        "faults",
        "output",
        "checkpoints",
        "recoveries",
        "sim_time_ms",
        "wall_ms",
        "events",
    ] {
        assert!(v.get(field).is_some(), "missing {field}");
    }
    for field in ["expected", "committed", "duplicates", "lost"] {
        assert!(v["output"].get(field).is_some(), "missing output.{field}");
    }
}

#[test]
fn scenarios_and_mutants_list() {
    let (code, out, _) = exactsim(&["scenarios"]);
    assert_eq!(code, Some(0));
    for s in ["word_count", "inventory", "risk_scoring"] {
        assert!(out.contains(s), "{out}");
    }
    let (code, out, _) = exactsim(&["mutants", "--list"]);
    assert_eq!(code, Some(0));
    // A header, then per planted bug: name, expected check, whether it can
    // show in real mode, description; then what the real column means.
    assert_eq!(out.lines().count(), exactsim_engine::config::Mutant::ALL.len() + 2, "{out}");
    let real = |name: &str| out.lines().find(|l| l.starts_with(name)).map(|l| l.split_whitespace().nth(3));
    assert_eq!(real("ack-before-durable "), Some(Some("no")), "{out}");
    assert_eq!(real("pg-no-recover-commit "), Some(Some("yes")), "{out}");
    for m in exactsim_engine::config::Mutant::ALL {
        let line = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(m.name()))
            .unwrap_or_else(|| panic!("no line for {}: {out}", m.name()));
        assert!(line.contains(m.expected_check()) && line.ends_with(m.description()), "{line}");
    }
}

#[test]
fn mutants_story_tells_a_museum_bug_with_its_tracker_id() {
    let museum: Vec<_> = exactsim_engine::config::Mutant::ALL.into_iter().filter(|m| m.tracker().is_some()).collect();
    assert!(museum.len() >= 2);
    for m in museum {
        let (code, out, _) = exactsim(&["mutants", "--story", m.name()]);
        assert_eq!(code, Some(0), "{out}");
        let tracker = m.tracker().unwrap();
        assert!(out.contains(&format!("tracker: {tracker}")), "{out}");
        assert!(out.contains(&format!("expected check: {}", m.expected_check())), "{out}");
        assert!(out.contains(m.story()), "{out}");
        // The one-line description in `--list` names the tracker id too.
        assert!(m.description().starts_with(tracker), "{}", m.description());
    }
    // Reports and replay files name a mutant as the CLI does.
    for m in exactsim_engine::config::Mutant::ALL {
        assert_eq!(serde_json::to_string(&m).unwrap(), format!("\"{}\"", m.name()));
    }
    let (code, _, err) = exactsim(&["mutants", "--story", "nope"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("unknown mutant"), "{err}");
}

#[test]
fn canary_fails_with_exit_code_1() {
    let (code, out, _) =
        exactsim(&["run", "--scenario", "word_count", "--seed", "1", "--profile", "none", "--mutant", "canary"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("verdict=fail") && out.contains("P1") && out.contains("reproduce: cargo run --release -- run"),
        "{out}"
    );
}

/// Outputs that cannot be written (a full disk: `/dev/full`; a path under a
/// file) are a one-line error and exit code 2, and the results themselves
/// are still printed.
#[test]
fn unwritable_outputs_are_usage_errors() {
    if !std::path::Path::new("/dev/full").exists() {
        return; // not Linux: nothing to simulate a full disk with
    }
    let run = ["run", "--scenario", "word_count", "--seed", "1", "--profile", "none"];
    assert_usage_error(&[&run[..], &["--trace", "/dev/full"]].concat(), "No space left on device");
    assert_usage_error(&[&run[..], &["--timeline", "/dev/full"]].concat(), "No space left on device");
    let camp = ["campaign", "--scenario", "word_count", "--seeds", "1", "--profile", "none"];
    assert_usage_error(&[&camp[..], &["--report", "/dev/full/r"]].concat(), "cannot create /dev/full/r");
    let (code, out, err) = exactsim(&[&camp[..], &["--junit", "/dev/full"]].concat());
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cannot write /dev/full") && err.lines().count() == 1, "{err}");
    assert!(out.contains("verdict=pass"), "the results are printed all the same: {out}");
}

#[test]
fn a_scenarios_own_checks_are_listed_as_run() {
    // In the run line, the JSON report, the campaign's table and report,
    // and JUnit, whether they fail or not.
    let own = "copier/order-per-partition";
    let (code, out, err) = exactsim(&["run", "--scenario", "copier", "--seed", "1", "--profile", "none"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(&format!(" checks=P1-P11,P13-P16,P21,{own} ")), "{out}");
    let (code, out, err) = exactsim(&["run", "--scenario", "copier", "--seed", "1", "--profile", "none", "--json"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ids: Vec<&str> = v["checks"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert_eq!(ids.last(), Some(&own), "{ids:?}");
    assert!(ids.contains(&"P1") && !ids.contains(&"P12"), "{ids:?}");

    let dir = std::env::temp_dir().join(format!("exactsim-cli-checks-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (report, junit) = (dir.join("report"), dir.join("junit.xml"));
    let (code, out, err) = exactsim(&[
        "campaign",
        "--scenario",
        "copier",
        "--seeds",
        "1",
        "--profile",
        "none",
        "--report",
        report.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    let row = out.lines().find(|l| l.starts_with(own)).unwrap_or_else(|| panic!("no table row for {own}: {out}"));
    assert!(row.contains("order-per-partition") && row.contains("input order"), "{row}");
    let rep: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("campaign.json")).unwrap()).unwrap();
    let listed = rep["checks"].as_array().unwrap();
    assert!(listed.iter().any(|c| c["id"] == own && c["scenario"] == "copier"), "{listed:?}");
    assert!(listed.iter().any(|c| c["id"] == "P13" && c.get("scenario").is_none()), "{listed:?}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains(&format!(r#"<property name="checks" value="P1-P11,P13-P16,P21,{own},panic"/>"#)), "{xml}");
    assert!(xml.contains(&format!(r#"<property name="checks" value="P1-P11,P13-P16,P21,{own}"/>"#)), "{xml}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The gate runs fixed seeds and a slice of fresh ones: the JUnit file says
/// which range it ran, and each case names its seed.
#[test]
fn junit_names_the_seed_range() {
    let dir = std::env::temp_dir().join(format!("exactsim-cli-seeds-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let junit = dir.join("junit.xml");
    let (code, out, err) = exactsim(&[
        "campaign",
        "--scenario",
        "word_count",
        "--seeds",
        "2",
        "--first-seed",
        "1099511627000",
        "--profile",
        "none",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains(r#"<property name="seeds" value="1099511627000..=1099511627001"/>"#), "{xml}");
    assert!(xml.contains("word_count seed 1099511627001"), "{xml}");
    // Profile `none`: no fault, so no run had one while its job ran.
    assert!(xml.contains(r#"<property name="runs_with_effective_faults" value="0/2"/>"#), "{xml}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A campaign says how many of its faults started while the job ran and
/// how many runs had one, in its summary, its JSON report and its JUnit
/// properties; each run's report and summary line say the same.
#[test]
fn campaigns_report_effective_faults() {
    let dir = std::env::temp_dir().join(format!("exactsim-cli-effective-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let junit = dir.join("junit.xml");
    let report = dir.join("report");
    let (code, out, err) = exactsim(&[
        "campaign",
        "--scenario",
        "inventory",
        "--seeds",
        "6",
        "--profile",
        "crash",
        "--report",
        report.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    let rep: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("campaign.json")).unwrap()).unwrap();
    let runs = rep["runs"].as_array().unwrap();
    let hit = runs.iter().filter(|r| r["effective_faults"].as_u64().unwrap() > 0).count();
    assert!(hit >= 5, "crash faults start inside the job in most runs: {hit} of 6");
    let effective: u64 = runs.iter().map(|r| r["effective_faults"].as_u64().unwrap()).sum();
    let late: u64 = runs.iter().map(|r| r["late_faults"].as_u64().unwrap()).sum();
    let line = format!("effective faults (started while the job ran): {effective}, {late} more after it finished; runs with one: {hit} of 6");
    assert!(out.contains(&line), "{out}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains(&format!(r#"<property name="runs_with_effective_faults" value="{hit}/6"/>"#)), "{xml}");
    // One run: its line and its report agree with the campaign's entry.
    let seed = runs[0]["seed"].as_u64().unwrap().to_string();
    let (code, out, err) =
        exactsim(&["run", "--scenario", "inventory", "--seed", &seed, "--profile", "crash", "--json"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let one: serde_json::Value = serde_json::from_str(&out).unwrap();
    let sum: u64 = one["effective_faults"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(sum, runs[0]["effective_faults"].as_u64().unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `explore` as a user shards and resumes it: two shards write their
/// corpora and summaries, a third explorer starts from both; a corpus that
/// is missing, not a corpus, or names a scenario not explored is refused
/// with one line.
#[test]
fn explore_shards_save_their_corpora_and_a_merged_corpus_resumes() {
    let dir = std::env::temp_dir().join(format!("exactsim-explore-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut corpora = Vec::new();
    for k in ["1/2", "2/2"] {
        let out = dir.join(k.replace('/', "-of-"));
        let (code, stdout, err) = exactsim(&[
            "explore",
            "--scenario",
            "word_count",
            "--runs",
            "8",
            "--jobs",
            "2",
            "--shard",
            k,
            "--report",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, Some(0), "{stdout}{err}");
        assert!(stdout.contains("reachability points reached: "), "{stdout}");
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("explore.json")).unwrap()).unwrap();
        assert_eq!(summary["runs"], 8);
        assert!(summary["never_reached"].is_array());
        corpora.push(out.join("corpus.json"));
    }
    let c0 = corpora[0].to_str().unwrap();
    let c1 = corpora[1].to_str().unwrap();
    let (code, stdout, err) =
        exactsim(&["explore", "--scenario", "word_count", "--runs", "4", "--corpus", c0, "--corpus", c1]);
    assert_eq!(code, Some(0), "{stdout}{err}");
    let runs: u64 = stdout.split("explored runs=").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!(runs > 4, "the corpora's runs are made again before the 4 new ones: {stdout}");
    assert_usage_error(&["explore", "--corpus", dir.join("none.json").to_str().unwrap()], "corpus");
    std::fs::write(dir.join("bad.json"), "{\"runs\": 3}").unwrap();
    assert_usage_error(&["explore", "--corpus", dir.join("bad.json").to_str().unwrap()], "not a corpus file");
    assert_usage_error(&["explore", "--scenario", "inventory", "--corpus", c0], "is not among those explored");
    assert_usage_error(&["explore", "--budget", "soon"], "budget");
    let _ = std::fs::remove_dir_all(&dir);
}
