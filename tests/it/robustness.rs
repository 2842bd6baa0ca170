//! The harness is never the weakest part of a campaign: a panic is a
//! finding about one seed, a stopped campaign still reports, a full disk
//! leaves no half-written file, and every corpus file replays from the
//! command line with its recorded verdict.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn exe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_exactsim"))
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("exactsim-robust-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn json(p: &Path) -> serde_json::Value {
    let t = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&t).unwrap_or_else(|e| panic!("{} is not whole JSON: {e}", p.display()))
}

/// The planted bug trips an engine assertion in every seed: the campaign
/// still runs every seed, exits 1, and leaves a complete report, JUnit
/// failures and replay files that reproduce the panic at its site.
#[test]
fn a_campaign_of_panicking_seeds_runs_every_seed_and_reports_them() {
    let d = scratch("panics");
    let rep = d.join("rep");
    let junit = d.join("junit.xml");
    let out = exe()
        .args(["campaign", "--scenario", "all", "--seeds", "6", "--profile", "chaos"])
        .args(["--mutant", "complete-before-all-acks", "--max-artifacts", "2", "--jobs", "2"])
        .arg("--report")
        .arg(&rep)
        .arg("--junit")
        .arg(&junit)
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(!all.contains("panicked at") && !all.contains("RUST_BACKTRACE"), "no backtrace per seed: {all}");
    let c = json(&rep.join("campaign.json"));
    let runs = c["runs"].as_array().unwrap();
    let planned = 6 * exactsim_scenarios::all().len();
    assert_eq!(runs.len(), planned, "every seed of every scenario ran");
    assert_eq!(c["runs_planned"], planned);
    assert_eq!(c["interrupted"], false);
    assert_eq!(c["verdict"], "fail");
    assert!(runs.iter().all(|r| r["checks_failed"] == serde_json::json!(["panic"])), "{runs:?}");
    assert!(runs
        .iter()
        .all(|r| r["message"].as_str().unwrap().contains("panic in engine code at engine/src/coordinator.rs")));
    assert_eq!(c["artifacts_written"], 2);
    assert_eq!(c["artifacts_left_out"], planned - 2);
    let with_artifacts: Vec<&serde_json::Value> = runs.iter().filter(|r| r["artifacts"].is_string()).collect();
    assert_eq!(with_artifacts.len(), 2);
    // JUnit: every case a failure, with the reproduce command.
    let x = quick_junit::Report::deserialize_from_str(&std::fs::read_to_string(&junit).unwrap()).unwrap();
    // One case per run, plus a skipped case per reachability point never
    // reached.
    let never = c["never_reached"].as_array().unwrap().len();
    assert_eq!(x.tests, planned + never);
    assert_eq!(x.failures, planned);
    assert!(std::fs::read_to_string(&junit).unwrap().contains("reproduce: cargo run --release -- run"));
    // A failing seed's replay file reproduces the panic at the same site.
    let folder = rep.join(with_artifacts[0]["artifacts"].as_str().unwrap());
    let r = json(&folder.join("replay.json"));
    assert_eq!(r["check"], "panic");
    assert!(r["panic_site"].as_str().unwrap().starts_with("engine/src/coordinator.rs:"));
    let report = json(&folder.join("report.json"));
    assert_eq!(report["panic"]["origin"], "engine");
    for file in ["replay.json", "replay.min.json"] {
        let again = exe().arg("replay").arg(folder.join(file)).output().unwrap();
        assert_eq!(again.status.code(), Some(1), "{}", text(&again));
        assert!(
            text(&again).contains("replay: recorded failure panic at engine/src/coordinator.rs"),
            "{}",
            text(&again)
        );
        assert!(text(&again).contains("reproduced") && !text(&again).contains("NOT reproduced"), "{}", text(&again));
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// A replay whose recorded failure does not come back exits 1.
#[test]
fn a_replay_that_does_not_reproduce_its_failure_exits_1() {
    let d = scratch("not-reproduced");
    let f = d.join("r.json");
    let v = serde_json::json!({
        "format": 1, "scenario": "word_count", "seed": 5, "profile": "none", "mode": "exactly-once",
        "mutant": null, "check": "P1",
        "schedule": {"safety_ms": 1500, "liveness_ms": 30000, "events": []},
        "code_version": exactsim::code_version(),
    });
    std::fs::write(&f, v.to_string()).unwrap();
    let out = exe().arg("replay").arg(&f).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("verdict=pass") && text(&out).contains("P1 NOT reproduced"), "{}", text(&out));
    let _ = std::fs::remove_dir_all(&d);
}

/// Ctrl-C: the campaign stops starting runs and writes what it has.
#[cfg(unix)]
#[test]
fn sigint_writes_a_partial_report_and_exits_130() {
    let d = scratch("sigint");
    let rep = d.join("rep");
    let junit = d.join("junit.xml");
    let child = exe()
        .args(["campaign", "--scenario", "word_count", "--seeds", "100000", "--profile", "none", "--jobs", "2"])
        .args(["--mutant", "canary"])
        .arg("--report")
        .arg(&rep)
        .arg("--junit")
        .arg(&junit)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Let it finish some runs first (a run of this canary takes a few
    // milliseconds; the wait is CPU the suite spends on both cores).
    std::thread::sleep(std::time::Duration::from_millis(400));
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(130), "{all}");
    assert!(all.contains("interrupted:"), "{all}");
    assert!(all.contains("FAIL word_count seed 0: P1"), "the failures so far are printed: {all}");
    let c = json(&rep.join("campaign.json"));
    assert_eq!(c["interrupted"], true);
    let done = c["runs"].as_array().unwrap().len();
    assert!(done > 0 && done < 100_000, "{done} runs done");
    assert_eq!(c["runs_planned"], 100_000);
    let x = quick_junit::Report::deserialize_from_str(&std::fs::read_to_string(&junit).unwrap()).unwrap();
    assert_eq!(x.tests, done + c["never_reached"].as_array().unwrap().len());
    let _ = std::fs::remove_dir_all(&d);
}

/// A report directory on a nearly full filesystem (a 96 KiB tmpfs in a
/// private mount namespace): what could be written is whole, nothing is
/// half-written, no temporary is left, and the failing verdict's exit code
/// stands.
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_leaves_no_partial_file() {
    let usable = Command::new("unshare").args(["-rm", "true"]).output().is_ok_and(|o| o.status.success());
    if !usable {
        // The same property is tested in the library with a simulated
        // failure (`artifacts::tests`); this machine cannot mount a tmpfs.
        eprintln!("NOTE: unshare -rm is not available here: the tmpfs test did not run");
        return;
    }
    let d = scratch("full");
    let mnt = d.join("mnt");
    let copy = d.join("copy");
    std::fs::create_dir_all(&mnt).unwrap();
    std::fs::create_dir_all(&copy).unwrap();
    let script = format!(
        "mount -t tmpfs -o size=96k tmpfs {m} && {exe} campaign --scenario word_count --seeds 4 --profile none \
         --mutant canary --report {m}/rep --junit {m}/junit.xml > {c}/stdout 2> {c}/stderr; echo $? > {c}/code; \
         cp -a {m}/. {c}/files",
        m = mnt.display(),
        c = copy.display(),
        exe = env!("CARGO_BIN_EXE_exactsim"),
    );
    let out = Command::new("unshare").args(["-rm", "sh", "-c", &script]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let code = std::fs::read_to_string(copy.join("code")).unwrap();
    let stderr = std::fs::read_to_string(copy.join("stderr")).unwrap();
    assert_eq!(code.trim(), "1", "the failing verdict wins over the write error: {stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    let mut files = Vec::new();
    let mut stack = vec![copy.join("files")];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                files.push(e.path());
            }
        }
    }
    assert!(!files.is_empty(), "something fitted");
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp-"), "a temporary was left: {}", f.display());
        let t = std::fs::read_to_string(f).unwrap();
        assert!(!t.is_empty(), "{} is empty", f.display());
        match f.extension().and_then(|x| x.to_str()) {
            Some("json") => {
                serde_json::from_str::<serde_json::Value>(&t).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            }
            Some("html") => assert!(t.trim_end().ends_with("</html>"), "{} is cut off", f.display()),
            Some("jsonl") => assert!(t.ends_with('\n'), "{} is cut off", f.display()),
            Some("xml") => {
                quick_junit::Report::deserialize_from_str(&t).unwrap();
            }
            _ => {}
        }
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// Every corpus file replays from the command line (other code versions
/// with a warning) and gives its recorded verdict.
#[test]
fn the_corpus_replays_from_the_command_line() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");
    let mut n = 0;
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    for path in paths.into_iter().filter(|p| p.extension().is_some_and(|x| x == "json")) {
        let recorded = json(&path);
        let out = exe().arg("replay").arg(&path).output().unwrap();
        let all = text(&out);
        let want = if recorded["check"].is_null() { 0 } else { 1 };
        assert_eq!(out.status.code(), Some(want), "{}: {all}", path.display());
        assert!(all.contains("reproduced") && !all.contains("NOT reproduced"), "{}: {all}", path.display());
        n += 1;
    }
    assert!(n >= 24, "{n} corpus files");
}
