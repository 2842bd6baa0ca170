//! Bad input, table-driven: command-line flags, profile files and replay
//! files (truncated, bit-flipped, wrong types, impossible nodes, huge or
//! zero values). Every case must exit 2 with exactly one line on stderr,
//! no panic, and no file left behind.

use std::path::{Path, PathBuf};
use std::process::Command;

struct Case {
    name: &'static str,
    /// `{d}` is replaced by the case's scratch directory.
    args: Vec<String>,
    /// Files created in the scratch directory before the run.
    files: Vec<(&'static str, Vec<u8>)>,
    /// Text the one-line error must contain.
    needle: &'static str,
}

fn case(name: &'static str, args: &[&str], needle: &'static str) -> Case {
    Case { name, args: args.iter().map(|s| s.to_string()).collect(), files: vec![], needle }
}

fn with_file(mut c: Case, file: &'static str, contents: impl Into<Vec<u8>>) -> Case {
    c.files.push((file, contents.into()));
    c
}

/// A valid replay file as JSON, to be broken by each case.
fn good_replay() -> serde_json::Value {
    serde_json::json!({
        "format": 1,
        "scenario": "word_count",
        "seed": 1,
        "profile": "chaos",
        "mode": "exactly-once",
        "mutant": null,
        "check": null,
        "schedule": {
            "safety_ms": 1500,
            "liveness_ms": 30000,
            "events": [
                {"kind": "crash", "at_ms": 100, "node": "worker-0", "down_ms": 50, "disk": "keep_all"},
                {"kind": "slow_disk", "at_ms": 200, "dur_ms": 300, "node": "broker", "latency_ms": 40}
            ]
        },
        "code_version": exactsim::code_version(),
    })
}

/// A shard report as `campaign --report` writes it (one scenario, two seeds,
/// shard 1/1), to be broken by each case.
fn good_shard() -> serde_json::Value {
    let run = |seed: u64| {
        serde_json::json!({
            "scenario": "word_count", "seed": seed, "verdict": "pass", "trace_hash": "00",
            "checks_failed": [], "determinism": null, "determinism_trace_hash": null, "wall_ms": 1,
            "message": null, "repro": null, "artifacts": null
        })
    };
    serde_json::json!({
        "profile": "chaos", "mode": "exactly-once", "mutant": null, "first_seed": 0, "seeds": 2,
        "shard": "1/1", "scenario_names": ["word_count"], "budget": null,
        "code_version": exactsim::code_version(), "verdict": "pass", "interrupted": false,
        "runs_planned": 2, "wall_ms": 1, "seeds_per_sec": 1.0, "faults": {}, "coverage": {},
        "scenarios": {}, "determinism_failures": 0, "max_artifacts": 20, "artifacts_written": 0,
        "artifacts_left_out": 0, "runs": [run(0), run(1)]
    })
}

/// A merge case: the good shard report edited by `edit`.
fn shard_case(name: &'static str, needle: &'static str, edit: impl Fn(&mut serde_json::Value)) -> Case {
    let mut v = good_shard();
    edit(&mut v);
    with_file(case(name, &["merge", "{d}/shard.json", "--report", "{d}/out"], needle), "shard.json", v.to_string())
}

/// A replay case: the good file edited by `edit`.
fn replay(name: &'static str, needle: &'static str, edit: impl Fn(&mut serde_json::Value)) -> Case {
    let mut v = good_replay();
    edit(&mut v);
    with_file(case(name, &["replay", "{d}/r.json"], needle), "r.json", v.to_string())
}

fn event(v: &mut serde_json::Value, i: usize) -> &mut serde_json::Value {
    &mut v["schedule"]["events"][i]
}

/// A profile-file case, run through `run` and through `campaign`.
fn profile(name: &'static str, text: &'static str, needle: &'static str) -> Vec<Case> {
    vec![
        with_file(
            case(name, &["run", "--scenario", "word_count", "--seed", "1", "--profile", "{d}/p.toml"], needle),
            "p.toml",
            text,
        ),
        with_file(
            case(name, &["campaign", "--seeds", "1", "--profile", "{d}/p.toml", "--report", "{d}/out"], needle),
            "p.toml",
            text,
        ),
    ]
}

fn cases() -> Vec<Case> {
    let run = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> =
            ["run", "--trace", "{d}/t.jsonl", "--timeline", "{d}/t.html", "--save-replay", "{d}/s.json"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run_case = |name: &'static str, extra: &[&str], needle: &'static str| Case {
        name,
        args: run(extra),
        files: vec![],
        needle,
    };
    let camp = |name: &'static str, extra: &[&str], needle: &'static str| {
        let mut args = vec!["campaign", "--junit", "{d}/j.xml", "--report", "{d}/rep"];
        args.extend_from_slice(extra);
        case(name, &args, needle)
    };
    let mut v = vec![
        // Command-line flags of `run`.
        run_case("unknown scenario", &["--scenario", "nope", "--seed", "1"], "unknown scenario 'nope'"),
        run_case("seed with letters", &["--scenario", "word_count", "--seed", "12x"], "malformed seed '12x'"),
        run_case("bad hex seed", &["--scenario", "word_count", "--seed", "0xZZ"], "malformed seed"),
        run_case("negative seed", &["--scenario", "word_count", "--seed=-1"], "malformed seed"),
        run_case("seed past u64", &["--scenario", "word_count", "--seed", "18446744073709551616"], "malformed seed"),
        run_case("empty seed", &["--scenario", "word_count", "--seed", ""], "malformed seed"),
        run_case(
            "unknown profile",
            &["--scenario", "word_count", "--seed", "1", "--profile", "stormy"],
            "unknown profile 'stormy'",
        ),
        run_case(
            "unknown mode",
            &["--scenario", "word_count", "--seed", "1", "--mode", "twice"],
            "unknown mode 'twice'",
        ),
        run_case(
            "unknown mutant",
            &["--scenario", "word_count", "--seed", "1", "--mutant", "gremlin"],
            "unknown mutant 'gremlin'",
        ),
        run_case("missing seed", &["--scenario", "word_count"], "--seed"),
        run_case(
            "profile is /dev/zero",
            &["--scenario", "word_count", "--seed", "1", "--profile", "/dev/zero"],
            "larger than",
        ),
        // `campaign`.
        camp("seed count in words", &["--seeds", "ten"], "malformed seed count 'ten'"),
        camp("zero seeds", &["--seeds", "0"], "seed count 0 is out of range"),
        camp("a trillion seeds", &["--seeds", "1000000000000"], "out of range"),
        camp("negative seeds", &["--seeds=-5"], "malformed seed count"),
        camp("zero jobs", &["--jobs", "0"], "job count 0 is out of range"),
        camp("a billion jobs", &["--jobs", "1000000000"], "out of range"),
        camp("jobs in words", &["--jobs", "x"], "malformed job count"),
        camp("shard past its count", &["--shard", "3/2"], "malformed shard"),
        camp("shard zero", &["--shard", "0/2"], "malformed shard"),
        camp("shard of zero", &["--shard", "1/0"], "malformed shard"),
        camp("shard in words", &["--shard", "abc"], "malformed shard"),
        camp("bad first seed", &["--first-seed", "nope"], "malformed seed"),
        camp("unknown campaign scenario", &["--scenario", "nope"], "unknown scenario"),
        camp("unknown campaign profile", &["--profile", "nope"], "unknown profile"),
        camp("unknown campaign mode", &["--mode", "nope"], "unknown mode"),
        camp("unknown campaign mutant", &["--mutant", "nope"], "unknown mutant"),
        camp("negative artifact cap", &["--max-artifacts", "x"], "invalid value"),
        case(
            "report under a file",
            &["campaign", "--seeds", "1", "--report", "/dev/null/r"],
            "cannot create /dev/null/r",
        ),
        case("junit is a directory", &["campaign", "--seeds", "1", "--junit", "{d}"], "is a directory"),
        // Other commands.
        case("mutants zero seeds", &["mutants", "--seeds", "0"], "out of range"),
        case("mutants seeds in words", &["mutants", "--seeds", "x"], "malformed seed count"),
        case("mutants unknown scenario", &["mutants", "--scenario", "nope"], "unknown scenario"),
        case("bench zero seeds", &["bench", "--seeds", "0"], "out of range"),
        case(
            "shrink zero runs",
            &["shrink", "--scenario", "word_count", "--seed", "1", "--out", "{d}/m.json", "--max-runs", "0"],
            "out of range",
        ),
        case(
            "shrink runs in words",
            &["shrink", "--scenario", "word_count", "--seed", "1", "--out", "{d}/m.json", "--max-runs", "many"],
            "malformed run budget",
        ),
        case(
            "shrink a passing seed",
            &["shrink", "--scenario", "word_count", "--seed", "1", "--profile", "none", "--out", "{d}/m.json"],
            "nothing to shrink",
        ),
        case(
            "shrink a missing schedule",
            &["shrink", "--scenario", "word_count", "--seed", "1", "--out", "{d}/m.json", "--schedule", "{d}/no.json"],
            "cannot read schedule file",
        ),
        with_file(
            case(
                "shrink a schedule naming a missing node",
                &["shrink", "--scenario", "word_count", "--seed", "1", "--out", "{d}/m.json", "--schedule", "{d}/s.json"],
                "no node 'worker-99'",
            ),
            "s.json",
            r#"{"safety_ms":2500,"liveness_ms":60000,"events":[{"kind":"pause","at_ms":1,"node":"worker-99","dur_ms":5}]}"#
                .to_string(),
        ),
        case("unknown subcommand", &["bogus-command"], "unrecognized subcommand"),
        case("unknown flag", &["run", "--scenario", "word_count", "--seed", "1", "--colour"], "unexpected argument"),
        case("replay of a missing file", &["replay", "{d}/missing.json"], "cannot read replay file"),
        case("replay of a directory", &["replay", "{d}"], "cannot read replay file"),
        // Replay files.
        with_file(case("empty replay file", &["replay", "{d}/r.json"], "not a valid replay file"), "r.json", ""),
        with_file(
            case("truncated replay file", &["replay", "{d}/r.json"], "not a valid replay file"),
            "r.json",
            "{\"format\": 1, \"scenario\": \"word_co",
        ),
        with_file(case("binary replay file", &["replay", "{d}/r.json"], "not UTF-8"), "r.json", vec![0xff, 0xfe, 0, 1]),
        replay("unknown fault kind", "not a valid replay file", |v| {
            *event(v, 0) = serde_json::json!({"kind": "meteor", "at_ms": 1})
        }),
        replay("seed as a word", "not a valid replay file", |v| v["seed"] = "one".into()),
        replay("negative seed in file", "not a valid replay file", |v| v["seed"] = (-1).into()),
        replay("unknown top-level field", "not a valid replay file", |v| v["colour"] = "red".into()),
        replay("future format", "replay format 2 is not supported", |v| v["format"] = 2.into()),
        replay("unknown scenario in file", "unknown scenario", |v| v["scenario"] = "nope".into()),
        replay("unknown mutant in file", "unknown mutant", |v| v["mutant"] = "nope".into()),
        replay("unknown mode in file", "unknown mode", |v| v["mode"] = "twice".into()),
        replay("crash of a node that does not exist", "no node 'worker-9'", |v| {
            event(v, 0)["node"] = "worker-9".into()
        }),
        replay("crash of a node with no name", "no node ''", |v| event(v, 0)["node"] = "".into()),
        replay("slow disk on a diskless node", "has no disk", |v| event(v, 1)["node"] = "worker-0".into()),
        replay("fault after the safety phase", "after the safety phase", |v| event(v, 1)["at_ms"] = 1_000_000.into()),
        replay("crash after the safety phase", "after the safety phase", |v| event(v, 0)["at_ms"] = 1_501.into()),
        replay("zero safety phase", "safety_ms = 0", |v| v["schedule"]["safety_ms"] = 0.into()),
        replay("zero liveness bound", "liveness_ms = 0", |v| v["schedule"]["liveness_ms"] = 0.into()),
        replay("huge safety phase", "safety_ms", |v| v["schedule"]["safety_ms"] = u64::MAX.into()),
        replay("huge liveness bound", "liveness_ms", |v| v["schedule"]["liveness_ms"] = (u64::MAX - 5).into()),
        replay("endless slow disk", "dur_ms", |v| event(v, 1)["dur_ms"] = u64::MAX.into()),
        replay("zero-length slow disk", "dur_ms = 0", |v| event(v, 1)["dur_ms"] = 0.into()),
        replay("endless crash", "down_ms", |v| event(v, 0)["down_ms"] = u64::MAX.into()),
        replay("huge disk latency", "latency_ms", |v| event(v, 1)["latency_ms"] = 1_000_000_000u64.into()),
        replay("packet loss over 100%", "permille = 5000", |v| {
            *event(v, 1) = serde_json::json!({"kind": "packet_loss", "at_ms": 10, "dur_ms": 100, "permille": 5000})
        }),
        replay(
            "partition of a node with itself",
            "two different nodes",
            |v| *event(v, 1) = serde_json::json!({"kind": "partition", "at_ms": 10, "dur_ms": 100, "a": "store", "b": "store", "one_way": false}),
        ),
        replay("isolating a ghost", "no node 'ghost'", |v| {
            *event(v, 1) = serde_json::json!({"kind": "isolate", "at_ms": 10, "dur_ms": 100, "node": "ghost"})
        }),
        replay(
            "point crash at occurrence zero",
            "nth = 0",
            |v| *event(v, 1) = serde_json::json!({"kind": "crash_at_point", "point": "before_completion_record", "node": null, "nth": 0, "down_ms": 10, "disk": "keep_all"}),
        ),
        replay(
            "unknown fault point",
            "not a valid replay file",
            |v| *event(v, 1) = serde_json::json!({"kind": "crash_at_point", "point": "after_lunch", "node": null, "nth": 1, "down_ms": 10, "disk": "keep_all"}),
        ),
        replay("unknown disk crash mode", "not a valid replay file", |v| event(v, 0)["disk"] = "melted".into()),
        replay("too many events", "events (at most", |v| {
            let e = event(v, 0).clone();
            v["schedule"]["events"] = serde_json::Value::Array(vec![e; 10_001]);
        }),
        replay("time as a string", "not a valid replay file", |v| event(v, 0)["at_ms"] = "soon".into()),
        {
            let mut c = replay("other code with --strict-version", "--strict-version", |v| {
                v["code_version"] = "0.0.0+0000000000000000".into()
            });
            c.args.push("--strict-version".into());
            c
        },
    ];
    v.extend([
        // Fields inside a fault event: misspelt, or another kind's.
        replay("misspelt field in an event", "unknown field `dow_ms`", |v| event(v, 0)["dow_ms"] = 9.into()),
        replay("another kind's field in an event", "unknown field `permille`", |v| {
            event(v, 0)["permille"] = 500.into()
        }),
        replay("unknown field in the schedule", "unknown field `seed`", |v| v["schedule"]["seed"] = 1.into()),
        // The file's profile: a name, or a .toml file that exists and parses.
        replay("profile that is no profile", "\"profile\": 'nope' is neither", |v| v["profile"] = "nope".into()),
        replay("profile that is a system file", "\"profile\": '/etc/passwd' is neither", |v| {
            v["profile"] = "/etc/passwd".into()
        }),
        replay("profile file that is missing", "cannot read profile file", |v| {
            v["profile"] = "/nonexistent/gate.toml".into()
        }),
        replay("refused file from other code", "no node 'worker-9'", |v| {
            v["code_version"] = "0.0.0+0000000000000000".into();
            event(v, 0)["node"] = "worker-9".into();
        }),
        // Shard reports.
        shard_case("a trillion shards", "\"shard\": \"1/1000000000000\" has a shard count out of range", |v| {
            v["shard"] = "1/1000000000000".into()
        }),
        shard_case("ten trillion seeds", "\"seeds\": 10000000000000 is out of range", |v| {
            v["seeds"] = 10_000_000_000_000u64.into()
        }),
        shard_case("a shard report that is no report", "not a campaign report", |v| v["runs"] = "none".into()),
        case("merge of /dev/zero", &["merge", "/dev/zero", "--report", "{d}/out"], "larger than"),
        case(
            "merge into a junit directory",
            &["merge", "{d}", "--report", "{d}/out", "--junit", "{d}"],
            "is a directory",
        ),
        camp("a hundred thousand shards", &["--shard", "1/100000"], "shard count 100000 is out of range"),
        // Outputs of `run`: all or none, one line.
        case(
            "determinism check with an unwritable trace",
            &[
                "run",
                "--scenario",
                "word_count",
                "--seed",
                "1",
                "--profile",
                "none",
                "--check-determinism",
                "--timeline",
                "{d}/t.html",
                "--trace",
                "/dev/full",
            ],
            "cannot write /dev/full",
        ),
        case(
            "one unwritable output among others",
            &[
                "run",
                "--scenario",
                "word_count",
                "--seed",
                "1",
                "--profile",
                "none",
                "--save-replay",
                "/dev/full",
                "--trace",
                "{d}/new/t.jsonl",
                "--timeline",
                "{d}/t.html",
            ],
            "cannot write /dev/full",
        ),
        case(
            "an output that is a directory",
            &["run", "--scenario", "word_count", "--seed", "1", "--trace", "{d}/t.jsonl", "--timeline", "{d}"],
            "is a directory",
        ),
        // Other commands.
        case("bench part with a csv", &["bench", "--only", "floor", "--csv", "{d}/b.csv"], "--csv"),
        case("mutants list of an unknown scenario", &["mutants", "--scenario", "nope", "--list"], "unknown scenario"),
        case("no subcommand", &[], "no subcommand given"),
    ]);
    // A bit-flipped file: one byte of a key changed.
    let mut flipped = good_replay().to_string().into_bytes();
    let at = flipped.windows(8).position(|w| w == b"schedule").unwrap();
    flipped[at] ^= 0x01;
    v.push(with_file(
        case("bit-flipped replay file", &["replay", "{d}/r.json"], "not a valid replay file"),
        "r.json",
        flipped,
    ));
    // Profile files, through `run` and `campaign`.
    v.extend(profile("misspelt profile field", "name = \"x\"\ncrahs = 3\n", "bad profile file"));
    v.extend(profile("four billion crashes", "name = \"x\"\ncrash = 4294967295\n", "crash = 4294967295"));
    v.extend(profile("a hundred million partitions", "name = \"x\"\npartition = 100000000\n", "partition = 100000000"));
    v.extend(profile("zero safety phase", "name = \"x\"\nsafety_ms = 0\n", "safety_ms = 0"));
    v.extend(profile("zero liveness bound", "name = \"x\"\nliveness_ms = 0\n", "liveness_ms = 0"));
    v.extend(profile("huge safety phase", "name = \"x\"\nsafety_ms = 9000000000000\n", "safety_ms"));
    v.extend(profile("crash count as a word", "name = \"x\"\ncrash = \"three\"\n", "bad profile file"));
    v.extend(profile("negative crash count", "name = \"x\"\ncrash = -1\n", "bad profile file"));
    v.extend(profile("not TOML", "this is not toml ][", "bad profile file"));
    v.extend(profile("no name", "crash = 1\n", "bad profile file"));
    v.extend(profile("foreign profile field", "name = \"x\"\ncolour = \"red\"\n", "unknown field `colour`"));
    v.extend(profile(
        "trigger on a node no run has",
        "name = \"x\"\n[[trigger]]\nnode = \"worker-99\"\nevent = \"PreCommitted\"\naction = \"pause\"\ndur_ms = 100\n",
        "names node 'worker-99', which is not in",
    ));
    // Only the run: a campaign over every scenario has pg_ledger's system.
    v.push(profile(
        "trigger on the system of a run without one",
        "name = \"x\"\n[[trigger]]\nnode = \"system\"\nevent = \"PreCommitted\"\naction = \"crash\"\ndur_ms = 100\n",
        "names node 'system'",
    )
    .swap_remove(0));
    v
}

/// Every file under `d`, recursively, with its size.
fn listing(d: &Path) -> Vec<(PathBuf, u64)> {
    let mut v = Vec::new();
    let mut stack = vec![d.to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            }
            v.push((e.path(), if m.is_dir() { 0 } else { m.len() }));
        }
    }
    v.sort();
    v
}

#[test]
fn bad_input_is_one_line_and_exit_2_with_nothing_left_behind() {
    let cases = cases();
    assert!(cases.len() >= 60, "the table holds {} cases", cases.len());
    let root = std::env::temp_dir().join(format!("exactsim-bad-input-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let d = root.join(format!("case-{i}"));
        std::fs::create_dir_all(&d).unwrap();
        for (name, contents) in &c.files {
            std::fs::write(d.join(name), contents).unwrap();
        }
        let before = listing(&d);
        let args: Vec<String> = c.args.iter().map(|a| a.replace("{d}", d.to_str().unwrap())).collect();
        let out = Command::new(env!("CARGO_BIN_EXE_exactsim")).args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        let mut problems = Vec::new();
        if out.status.code() != Some(2) {
            problems.push(format!("exit {:?}", out.status.code()));
        }
        if err.trim_end().lines().count() != 1 {
            problems.push(format!("{} lines on stderr", err.trim_end().lines().count()));
        }
        if !err.contains(c.needle) {
            problems.push(format!("no '{}'", c.needle));
        }
        if err.contains("panicked") || err.contains("RUST_BACKTRACE") {
            problems.push("a panic".into());
        }
        let after = listing(&d);
        if after != before {
            problems.push(format!("files changed: {after:?}"));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{} ({}): {}\n    stderr: {}",
                c.name,
                args.join(" "),
                problems.join("; "),
                err.trim_end()
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&root);
    assert!(
        failures.is_empty(),
        "{} of {} bad inputs mishandled:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
