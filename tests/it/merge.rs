//! Campaigns beyond one machine, through the command line: shards found in
//! a scheduler's environment (`--shard auto`), merged back into one report
//! (`merge`) equal to the unsharded campaign seed by seed, and the shard
//! sets `merge` must refuse.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs exactsim with `env` on top of an environment without any scheduler
/// variable (the test may itself run under a CI that sets some).
fn exactsim(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_exactsim"));
    for v in exactsim::shard::variables() {
        cmd.env_remove(v);
    }
    let out = cmd.args(args).envs(env.iter().copied()).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("exactsim-merge-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn report(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("campaign.json")).unwrap()).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A campaign report without what depends on the machine (wall time) or on
/// how the campaign was split.
fn figures(v: &Value) -> Value {
    let mut v = v.clone();
    let o = v.as_object_mut().unwrap();
    for k in ["wall_ms", "seeds_per_sec", "shard", "merged_from"] {
        o.remove(k);
    }
    for (_, sc) in o["scenarios"].as_object_mut().unwrap() {
        sc.as_object_mut().unwrap().remove("wall_ms");
    }
    for r in o["runs"].as_array_mut().unwrap() {
        r.as_object_mut().unwrap().remove("wall_ms");
    }
    v
}

/// The runs of a report, without their wall time.
fn runs(v: &Value) -> Value {
    figures(v)["runs"].clone()
}

fn refused(args: &[&str], needle: &str) {
    let (code, out, err) = exactsim(args, &[]);
    assert_eq!(code, Some(2), "{args:?}: {out}{err}");
    assert!(err.contains(needle), "{args:?}: expected '{needle}' in: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
}

/// The four shards of a campaign, each found the way a different scheduler
/// passes it.
fn four_shards(root: &Path, common: &[&str]) -> Vec<PathBuf> {
    let envs: [&[(&str, &str)]; 4] = [
        &[("CI_NODE_INDEX", "1"), ("CI_NODE_TOTAL", "4")],
        // sbatch --array=10-16:2 runs tasks 10, 12, 14, 16
        &[
            ("SLURM_ARRAY_TASK_ID", "12"),
            ("SLURM_ARRAY_TASK_MIN", "10"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ],
        &[("JOB_COMPLETION_INDEX", "2"), ("EXACTSIM_SHARD_COUNT", "4")],
        &[("BUILDKITE_PARALLEL_JOB", "3"), ("BUILDKITE_PARALLEL_JOB_COUNT", "4")],
    ];
    let mut dirs = Vec::new();
    for (k, env) in envs.iter().enumerate() {
        let dir = root.join(format!("shard-{}", k + 1));
        let mut args = vec!["campaign", "--shard", "auto", "--report", s(&dir)];
        args.extend_from_slice(common);
        let (code, out, err) = exactsim(&args, env);
        assert!(code == Some(0) || code == Some(1), "{out}{err}");
        assert_eq!(report(&dir)["shard"], format!("{}/4", k + 1), "{env:?}");
        dirs.push(dir);
    }
    dirs
}

#[test]
fn four_shards_merge_into_the_unsharded_campaign_seed_by_seed() {
    let root = tmp("pass");
    let common = ["--seeds", "8", "--first-seed", "20", "--profile", "chaos", "--jobs", "2", "--check-determinism"];
    let dirs = four_shards(&root, &common);
    let whole = root.join("whole");
    let mut args = vec!["campaign", "--report", s(&whole)];
    args.extend_from_slice(&common);
    let (code, out, err) = exactsim(&args, &[]);
    assert_eq!(code, Some(0), "{out}{err}");
    let merged = root.join("merged");
    let junit = root.join("junit.xml");
    let mut args = vec!["merge"];
    args.extend(dirs.iter().map(|d| s(d)));
    args.extend(["--report", s(&merged), "--junit", s(&junit)]);
    let (code, out, err) = exactsim(&args, &[]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(&format!("verdict=pass runs={}", 8 * exactsim_scenarios::all().len())), "{out}");
    let (m, w) = (report(&merged), report(&whole));
    assert_eq!(m["runs"].as_array().unwrap().len(), 8 * exactsim_scenarios::all().len());
    // Seed by seed: scenario, seed, verdict, trace hash, failed checks, and
    // the determinism re-runs (the same sample of seeds).
    assert_eq!(runs(&m), runs(&w));
    assert!(m["runs"].as_array().unwrap().iter().any(|r| r["determinism"] == true), "{m}");
    assert_eq!(m["verdict"], "pass");
    // The summed figures, fault counts and coverage matrix too.
    assert_eq!(figures(&m), figures(&w));
    assert_eq!(m["merged_from"].as_array().unwrap().len(), 4);
    let xml = std::fs::read_to_string(&junit).unwrap();
    // One case per run, and one skipped case per reachability point no
    // run reached (the merged report recomputes them from the summed
    // counts: the same as the whole campaign's).
    assert_eq!(m["never_reached"], w["never_reached"]);
    let never = m["never_reached"].as_array().unwrap().len();
    assert_eq!(xml.matches("<testcase").count(), 8 * exactsim_scenarios::all().len() + never, "{xml}");
    assert_eq!(xml.matches("<skipped").count(), never, "{xml}");
    assert_eq!(xml.matches("<failure").count(), 0, "{xml}");

    // A missing shard is named; so is a foreign one.
    refused(&["merge", s(&dirs[0]), s(&dirs[1]), s(&dirs[3]), "--report", s(&root.join("m2"))], "missing shard 3/4");
    // A shard killed before it wrote its report leaves an empty directory.
    let killed = root.join("killed");
    std::fs::create_dir_all(&killed).unwrap();
    refused(
        &["merge", s(&dirs[0]), s(&dirs[1]), s(&killed), s(&dirs[3]), "--report", s(&root.join("m2"))],
        &format!(
            "missing shard 3/4 (the 3 report(s) given hold shards 1/4, 2/4, 4/4); no campaign.json in {}",
            s(&killed)
        ),
    );
    let (code, out, err) = exactsim(
        &["merge", s(&dirs[0]), s(&dirs[1]), s(&dirs[2]), s(&killed), s(&dirs[3]), "--report", s(&root.join("m9"))],
        &[],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(err.contains("holds no campaign.json"), "{err}");
    let foreign = root.join("foreign");
    let (code, out, err) = exactsim(
        &[
            "campaign",
            "--seeds",
            "10",
            "--first-seed",
            "20",
            "--profile",
            "crash",
            "--shard",
            "3/4",
            "--report",
            s(&foreign),
        ],
        &[],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    refused(
        &["merge", s(&dirs[0]), s(&dirs[1]), s(&foreign), s(&dirs[3]), "--report", s(&root.join("m3"))],
        &format!("foreign shard: {} has profile crash, ", s(&foreign)),
    );
    refused(&["merge", s(&dirs[0]), s(&whole), "--report", s(&root.join("m4"))], "has shard count 1");
    refused(
        &["merge", s(&dirs[0]), s(&root.join("nowhere")), "--report", s(&root.join("m5"))],
        "cannot read shard report",
    );
    refused(&["merge", s(&dirs[0]), "--report", s(&dirs[0])], "is one of the shard directories");
    // A shard cut short (an interrupted job) is refused for the seeds it lacks.
    let short = root.join("short");
    std::fs::create_dir_all(&short).unwrap();
    let mut r = report(&dirs[2]);
    let gone = r["runs"].as_array_mut().unwrap().pop().unwrap();
    std::fs::write(short.join("campaign.json"), r.to_string()).unwrap();
    refused(
        &["merge", s(&dirs[0]), s(&dirs[1]), s(&short), s(&dirs[3]), "--report", s(&root.join("m6"))],
        &format!("shard 3/4 lacks {} seed {}", gone["scenario"].as_str().unwrap(), gone["seed"]),
    );
    // The same shard twice (a requeued job) is fine if it ran the same runs,
    // refused if a trace hash differs.
    let args = ["merge", s(&dirs[0]), s(&dirs[1]), s(&dirs[2]), s(&dirs[3]), s(&dirs[2])];
    let (code, out, err) = exactsim(&[&args[..], &["--report", s(&root.join("m7"))]].concat(), &[]);
    assert_eq!(code, Some(0), "{out}{err}");
    let requeued = root.join("requeued");
    std::fs::create_dir_all(&requeued).unwrap();
    let mut r = report(&dirs[2]);
    r["runs"][0]["trace_hash"] = "0000000000000000".into();
    std::fs::write(requeued.join("campaign.json"), r.to_string()).unwrap();
    refused(
        &["merge", s(&dirs[0]), s(&dirs[1]), s(&dirs[2]), s(&dirs[3]), s(&requeued), "--report", s(&root.join("m8"))],
        "shard 3/4 is given twice",
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn failing_shards_merge_with_their_artifacts_and_exit_one() {
    let root = tmp("fail");
    // The canary is a planted bug that fails most seeds at once.
    let common = ["--seeds", "8", "--scenario", "word_count", "--profile", "crash", "--mutant", "canary"];
    let dirs = four_shards(&root, &common);
    let whole = root.join("whole");
    let mut args = vec!["campaign", "--report", s(&whole)];
    args.extend_from_slice(&common);
    let (code, out, err) = exactsim(&args, &[]);
    assert_eq!(code, Some(1), "{out}{err}");
    let merged = root.join("merged");
    let junit = root.join("junit.xml");
    let mut args = vec!["merge"];
    args.extend(dirs.iter().map(|d| s(d)));
    args.extend(["--report", s(&merged), "--junit", s(&junit)]);
    let (code, out, err) = exactsim(&args, &[]);
    assert_eq!(code, Some(1), "{out}{err}");
    let (m, w) = (report(&merged), report(&whole));
    assert_eq!(runs(&m), runs(&w));
    assert_eq!(figures(&m), figures(&w));
    assert_eq!(m["verdict"], "fail");
    let failing: Vec<&Value> = m["runs"].as_array().unwrap().iter().filter(|r| r["verdict"] != "pass").collect();
    assert!(!failing.is_empty());
    for r in &failing {
        let name = format!("{}-{}", r["scenario"].as_str().unwrap(), r["seed"]);
        for f in ["report.json", "trace.jsonl", "timeline.html", "replay.json"] {
            assert!(merged.join(&name).join(f).is_file(), "{name}/{f} copied");
        }
    }
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<failure").count(), failing.len(), "{xml}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn continuous_shards_merge_and_replay_as_fixed_seeds() {
    let root = tmp("budget");
    let mut dirs = Vec::new();
    for k in 1..=2 {
        let dir = root.join(format!("shard-{k}"));
        let shard = format!("{k}/2");
        let (code, out, err) = exactsim(
            &[
                "campaign",
                "--budget",
                "250ms",
                "--first-seed",
                "900",
                "--shard",
                &shard,
                "--scenario",
                "word_count",
                "--jobs",
                "1",
                "--report",
                s(&dir),
            ],
            &[],
        );
        assert_eq!(code, Some(0), "{out}{err}");
        assert!(out.contains("continuous: budget 250ms, got through --first-seed 900"), "{out}");
        assert_eq!(report(&dir)["budget"], "250ms");
        dirs.push(dir);
    }
    let merged = root.join("merged");
    let (code, out, err) = exactsim(&["merge", s(&dirs[0]), s(&dirs[1]), "--report", s(&merged)], &[]);
    assert_eq!(code, Some(0), "{out}{err}");
    let m = report(&merged);
    let merged_runs = m["runs"].as_array().unwrap();
    assert!(merged_runs.len() >= 2, "{m}");
    // Every seed a shard got through replays as a fixed campaign of the range.
    let range = m["seeds"].as_u64().unwrap().to_string();
    let fixed = root.join("fixed");
    let (code, out, err) = exactsim(
        &["campaign", "--first-seed", "900", "--seeds", &range, "--scenario", "word_count", "--report", s(&fixed)],
        &[],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    let f = report(&fixed);
    for r in merged_runs {
        let same = runs(&f).as_array().unwrap().iter().find(|x| x["seed"] == r["seed"]).unwrap().clone();
        let mut r = r.clone();
        r.as_object_mut().unwrap().remove("wall_ms");
        assert_eq!(same, r);
    }
    // A continuous shard must be told the campaign's first seed; a budget
    // needs a unit.
    refused(&["campaign", "--budget", "1s", "--shard", "1/2"], "--budget with --shard needs --first-seed");
    refused(&["campaign", "--budget", "10"], "malformed budget '10'");
    let _ = std::fs::remove_dir_all(&root);
}

/// Ctrl-C ends a continuous campaign at the next seed boundary: the report
/// is a whole range, and it merges.
#[cfg(unix)]
#[test]
fn a_continuous_campaign_stopped_by_sigint_is_a_whole_range() {
    let root = tmp("sigint");
    let dir = root.join("shard-1");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_exactsim"));
    let child = cmd
        .args(["campaign", "--budget", "10m", "--first-seed", "5", "--shard", "1/1", "--jobs", "2", "--report"])
        .arg(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Long enough for some runs of every scenario (a few milliseconds
    // each); the wait is CPU the suite spends on both cores.
    std::thread::sleep(std::time::Duration::from_millis(400));
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(130), "{text}");
    let r = report(&dir);
    assert_eq!(r["interrupted"], true);
    let n = r["runs"].as_array().unwrap().len() as u64;
    assert!(n > 0, "{text}");
    assert_eq!(
        n,
        exactsim_scenarios::all().len() as u64 * r["seeds"].as_u64().unwrap(),
        "every scenario of every seed begun: {text}"
    );
    let (code, out, err) = exactsim(&["merge", s(&dir), "--report", s(&root.join("merged"))], &[]);
    assert_eq!(code, Some(0), "{out}{err}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn shard_auto_without_a_scheduler_is_refused() {
    refused(&["campaign", "--shard", "auto"], "no shard in the environment");
    let (code, _, err) = exactsim(&["campaign", "--shard", "auto"], &[("CI_NODE_INDEX", "5"), ("CI_NODE_TOTAL", "4")]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("CI_NODE_INDEX=5 is out of range"), "{err}");
}
