//! `exactsim real`: the engine as OS processes. These tests build nothing:
//! they run when a std node binary built from this code exists (`ci/real.sh` builds it with
//! `RUSTFLAGS= CARGO_TARGET_DIR=target/std cargo build --release -p
//! exactsim-node`) and say that they skipped otherwise. Each run takes about
//! two seconds of wall time.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn node_bin() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/std/release/exactsim-node");
    if !p.is_file() {
        eprintln!("skipped: no std node binary at {} (ci/real.sh builds it)", p.display());
        return None;
    }
    // A binary left from other code (a cached or stale `target/std`) is
    // refused by `exactsim real` (tested below); these tests need a current one.
    if let Err(e) = exactsim::real::check_node_bin(&p) {
        eprintln!("skipped: {e}");
        return None;
    }
    Some(p)
}

fn real(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_exactsim")).arg("real").args(args).output().unwrap()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("real-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Processes whose command line mentions `needle` (the run directory).
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) && cmd.contains("exactsim-node") {
                out.push(format!("{name}: {cmd}"));
            }
        }
    }
    out
}

#[test]
fn word_count_with_kills_and_pauses_passes_and_the_faults_landed() {
    let Some(bin) = node_bin() else { return };
    let dir = scratch("pass");
    let out = real(&[
        "--scenario",
        "word_count",
        "--seed",
        "2",
        "--profile",
        "crash",
        "--pauses",
        "2",
        "--keep",
        "--node-bin",
        bin.to_str().unwrap(),
        "--report",
        dir.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("verdict=pass"), "{stdout}");
    assert!(stdout.contains("not reproducible"), "{stdout}");
    let report = json(&dir.join("report.json"));
    assert_eq!(report["verdict"], "pass");
    assert_eq!(report["trace_hash"], "none(real-run)");
    assert!(report["faults"]["crash"].as_u64().unwrap_or(0) >= 1, "no crash landed: {report}");
    assert!(report["faults"]["pause"].as_u64().unwrap_or(0) >= 1, "no pause landed: {report}");
    assert!(report["output"]["committed"].as_u64().unwrap() > 0);
    // Paced sources keep the job running while the faults land.
    let effective: u64 = report["effective_faults"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert!(effective >= 1, "every fault landed after the job finished: {report}");
    assert!(stdout.contains(&format!(" effective_faults={effective} ")), "{stdout}");
    let real = json(&dir.join("real.json"));
    assert_eq!(real["reproducible"], false);
    let played = real["played"].as_array().unwrap();
    assert!(played.iter().any(|p| p["kind"] == "crash"), "{real}");
    assert!(played.iter().any(|p| p["kind"] == "restart"), "{real}");
    assert!(played.iter().any(|p| p["kind"] == "pause"), "{real}");
    // The crash profile's disk modes cannot be played: listed as skipped.
    assert!(!real["skipped"].as_array().unwrap().is_empty(), "{real}");
    // Every process the supervisor started is gone.
    let run_dir = real["run_dir"].as_str().unwrap().to_string();
    assert_eq!(processes_mentioning(&run_dir), Vec::<String>::new());
    // Every process wrote its events; the trace holds them all.
    let trace = std::fs::read_to_string(dir.join("trace.jsonl")).unwrap();
    for node in ["coordinator", "broker", "store", "worker-0", "worker-1"] {
        assert!(trace.contains(&format!("\"node\":\"{node}\"")), "no events of {node}");
    }
    let _ = std::fs::remove_dir_all(&run_dir);
}

/// The profile of network and clock faults real mode plays through its
/// control file.
const NET_PROFILE: &str = r#"
name = "net-and-clocks"
partition = 3        # a third isolate a node
packet_loss = 1
latency = 1
late_delivery = 2
skew = 2
swarm = false
safety_ms = 2500

[targets]            # senders of requests and control messages (not only replies)
late_delivery = ["coordinator", "worker"]
"#;

/// The kinds of `NET_PROFILE`, as the history names them.
const NET_KINDS: [&str; 6] = ["partition", "isolate", "packet_loss", "latency", "late_delivery", "skew"];

/// The first seed whose word_count schedule under `profile` has every one
/// of `NET_KINDS` start while the paced job surely runs (before 1.8 s):
/// picked from the generator, so the test does not depend on its draws.
fn seed_with_every_net_kind(profile: &exactsim_model::schedule::Profile) -> u64 {
    let sc = exactsim::resolve_scenario("word_count").unwrap();
    (1..500)
        .find(|&seed| {
            let spec = exactsim::spec(
                sc.clone(),
                seed,
                profile.clone(),
                exactsim_engine::types::DeliveryMode::ExactlyOnce,
                None,
            );
            let cfg = exactsim_model::run::derive_config(&spec);
            let events = exactsim_model::schedule::generate(seed, profile, &cfg, false).events;
            NET_KINDS.iter().all(|k| events.iter().any(|e| e.kind() == *k && e.at_ms() < 1800))
        })
        .expect("a seed with every kind")
}

/// Partitions, isolation, packet loss, latency, late delivery and clock
/// skew are played for real: the supervisor opens each window (history
/// `FaultStarted`; a late delivery's with each message held), the node
/// processes apply it (their `applied` lines in what was played), nothing
/// of the profile is skipped, and exactly-once holds.
#[test]
fn word_count_with_network_and_clock_faults_passes_and_every_window_landed() {
    let Some(bin) = node_bin() else { return };
    let dir = scratch("net");
    std::fs::create_dir_all(&dir).unwrap();
    let profile_path = dir.join("net.toml");
    std::fs::write(&profile_path, NET_PROFILE).unwrap();
    let profile = exactsim_model::schedule::Profile::from_toml(NET_PROFILE).unwrap();
    let seed = seed_with_every_net_kind(&profile).to_string();
    let report_dir = dir.join("report");
    let out = real(&[
        "--scenario",
        "word_count",
        "--seed",
        &seed,
        "--profile",
        profile_path.to_str().unwrap(),
        "--node-bin",
        bin.to_str().unwrap(),
        "--report",
        report_dir.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("verdict=pass"), "{stdout}");
    let report = json(&report_dir.join("report.json"));
    assert_eq!(report["verdict"], "pass");
    let real = json(&report_dir.join("real.json"));
    assert_eq!(real["skipped"].as_array().unwrap().len(), 0, "every kind of the profile is played: {real}");
    let played = real["played"].as_array().unwrap();
    let trace = std::fs::read_to_string(report_dir.join("trace.jsonl")).unwrap();
    for kind in NET_KINDS {
        // Opened by the supervisor.
        assert!(played.iter().any(|p| p["kind"] == kind), "{kind} never opened: {stdout}");
        // A late delivery lands only if its sender sends a request to its
        // receiver while it is open (as in simulation): timing decides.
        if kind == "late_delivery" {
            continue;
        }
        // Started, as the history shows it.
        assert!(report["faults"][kind].as_u64().unwrap_or(0) >= 1, "no {kind} landed: {stdout}");
        assert!(trace.contains(&format!("\"FaultStarted\":{{\"kind\":\"{kind}\"")), "no FaultStarted of {kind}");
        // Applied by a node process.
        let applied = |p: &&serde_json::Value| {
            p["kind"] == "applied" && p["detail"].as_str().unwrap().starts_with(&format!("{kind} (event"))
        };
        assert!(played.iter().any(|p| applied(&p)), "no node applied {kind}: {stdout}");
    }
    let details: Vec<&str> =
        played.iter().filter(|p| p["kind"] == "applied").filter_map(|p| p["detail"].as_str()).collect();
    if report["faults"]["late_delivery"].as_u64().unwrap_or(0) > 0 {
        assert!(details.iter().any(|d| d.contains("held a message to")), "no message held back: {stdout}");
    }
    assert!(details.iter().any(|d| d.contains("dropped a message to")), "no message dropped: {stdout}");
    assert!(details.iter().any(|d| d.starts_with("skew") && d.contains("clocks skewed")), "{stdout}");
    assert!(played.iter().any(|p| p["kind"] == "heal"), "{stdout}");
    let run_dir = real["run_dir"].as_str().unwrap().to_string();
    assert_eq!(processes_mentioning(&run_dir), Vec::<String>::new());
}

#[test]
fn a_planted_bug_is_caught_in_real_mode() {
    let Some(bin) = node_bin() else { return };
    // The coordinator kills itself after its first completion record,
    // before notifying: recovery must re-commit the restored transactions.
    let schedule = Path::new(env!("CARGO_MANIFEST_DIR")).join("ci/real-planted-bug.json");
    let out = real(&[
        "--scenario",
        "word_count",
        "--seed",
        "1",
        "--mutant",
        "no-recommit-on-recovery",
        "--schedule",
        schedule.to_str().unwrap(),
        "--node-bin",
        bin.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("verdict=fail"), "{stdout}");
    assert!(
        stdout.contains("coordinator  kill -9 (fault point after_completion_before_notify)"),
        "the point crash did not land: {stdout}"
    );
    // The printed reproduce line plays the same schedule again.
    assert!(stdout.contains(&format!("--schedule {}", schedule.display())), "{stdout}");
    assert!(stdout.contains("  P1 ") || stdout.contains("  P7 "), "{stdout}");
}

#[test]
fn ctrl_c_stops_the_run_and_kills_every_process() {
    let Some(bin) = node_bin() else { return };
    let profile = scratch("sigint").with_extension("toml");
    std::fs::create_dir_all(profile.parent().unwrap()).unwrap();
    std::fs::write(&profile, "name = \"long\"\nsafety_ms = 60000\nliveness_ms = 60000\n").unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_exactsim"))
        .args(["real", "--scenario", "word_count", "--seed", "3", "--keep", "--profile"])
        .arg(&profile)
        .arg("--node-bin")
        .arg(&bin)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // SAFETY: a signal to our own child.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    let t0 = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(t0.elapsed() < std::time::Duration::from_secs(10), "the run did not stop promptly");
    assert_eq!(out.status.code(), Some(130));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("verdict=interrupted"), "{stdout}");
    let run_dir = stdout.lines().find_map(|l| l.trim().strip_prefix("run directory kept: ")).unwrap().to_string();
    assert_eq!(processes_mentioning(&run_dir), Vec::<String>::new());
    let _ = std::fs::remove_dir_all(&run_dir);
}

#[test]
fn a_missing_node_binary_is_one_line_and_exit_2() {
    let out = real(&["--scenario", "word_count", "--seed", "1", "--node-bin", "/nonexistent/exactsim-node"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("no node binary at /nonexistent/exactsim-node"), "{err}");
}

/// A node binary built from other sources (a stale `target/std` after a
/// change) is refused before anything starts, naming the rebuild command.
#[test]
fn a_node_binary_from_other_code_is_refused() {
    let dir = std::env::temp_dir().join(format!("exactsim-stale-node-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fake = dir.join("exactsim-node");
    std::fs::write(&fake, "#!/bin/sh\necho 00000000deadbeef\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = real(&["--scenario", "word_count", "--seed", "1", "--node-bin", fake.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("is built from other code (sources 00000000deadbeef"), "{err}");
    assert!(err.contains("cargo build --release -p exactsim-node"), "{err}");
}

#[test]
fn pg_kills_are_refused_for_a_scenario_without_postgresql() {
    // Refused before anything starts: any file does as the node binary.
    let any = env!("CARGO_BIN_EXE_exactsim");
    let out = real(&["--scenario", "word_count", "--seed", "1", "--pg-kills", "1", "--node-bin", any]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("--pg-kills: scenario 'word_count' does not write to PostgreSQL"), "{err}");
    for (flag, bad) in [("--pg-kills", "21"), ("--pg-kills", "x"), ("--source-poll-ms", "0")] {
        let out = real(&["--scenario", "pg_ledger", "--seed", "1", flag, bad, "--node-bin", any]);
        assert_eq!(out.status.code(), Some(2), "{flag} {bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(&format!("'{bad}'")), "{err}");
    }
}

/// PostgreSQL 15's binaries, where `ci/postgres.sh` looks for them.
fn postgres_installed() -> bool {
    let bin = std::env::var("EXACTSIM_PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
    let ok = Path::new(&bin).join("postgres").is_file();
    if !ok {
        eprintln!("skipped: no PostgreSQL 15 in {bin} (ci/postgres.sh installs it; ci/real.sh runs pg_ledger)");
    }
    ok
}

fn postgres_processes_mentioning(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) && cmd.contains("postgres") {
                out.push(cmd);
            }
        }
    }
    out
}

#[test]
fn pg_ledger_against_a_real_postgresql_with_kills_of_it_passes() {
    let Some(bin) = node_bin() else { return };
    if !postgres_installed() {
        return;
    }
    let dir = scratch("pg");
    let out = real(&[
        "--scenario",
        "pg_ledger",
        "--seed",
        "2",
        "--profile",
        "crash",
        "--pg-kills",
        "1",
        "--source-poll-ms",
        "50",
        "--keep",
        "--node-bin",
        bin.to_str().unwrap(),
        "--report",
        dir.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let report = json(&dir.join("report.json"));
    assert_eq!(report["verdict"], "pass");
    assert_eq!(report["faults"]["pg_kill"], 1, "the kill of PostgreSQL did not land: {report}");
    let real = json(&dir.join("real.json"));
    assert!(real["postgres"].as_str().unwrap().contains("host=127.0.0.1"), "{real}");
    assert_eq!(real["pg_kills"].as_array().unwrap().len(), 1);
    let played = real["played"].as_array().unwrap();
    for kind in ["pg_kill", "pg_restart", "pg_up"] {
        assert!(played.iter().any(|p| p["kind"] == kind && p["node"] == "system"), "no {kind}: {real}");
    }
    // The server's commits are in the history, as in simulation.
    let trace = std::fs::read_to_string(dir.join("trace.jsonl")).unwrap();
    assert!(trace.contains("\"node\":\"system\",\"ev\":{\"Engine\":{\"TxnCommitted\""), "no server commits");
    assert!(report["output"]["committed"].as_u64().unwrap() > 0);
    // Nothing left running: neither the nodes nor PostgreSQL.
    let run_dir = real["run_dir"].as_str().unwrap().to_string();
    assert_eq!(processes_mentioning(&run_dir), Vec::<String>::new());
    assert_eq!(postgres_processes_mentioning(&run_dir), Vec::<String>::new());
    let _ = std::fs::remove_dir_all(&run_dir);
}

/// `real --seeds`: a campaign of real runs, with the campaign's report and
/// JUnit; correct code passes every run.
#[test]
fn a_real_campaign_writes_the_campaign_report_and_passes_on_correct_code() {
    let Some(bin) = node_bin() else { return };
    let dir = scratch("campaign");
    let junit = dir.join("junit.xml");
    let out = real(&[
        "--scenario",
        "word_count",
        "--seeds",
        "3",
        "--first-seed",
        "10",
        "--jobs",
        "2",
        "--report",
        dir.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
        "--node-bin",
        bin.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("verdict=pass runs=3 failed=0"), "{stdout}");
    let rep = json(&dir.join("campaign.json"));
    let seeds: Vec<u64> = rep["runs"].as_array().unwrap().iter().map(|r| r["seed"].as_u64().unwrap()).collect();
    assert_eq!(seeds, [10, 11, 12]);
    assert!(rep["runs"].as_array().unwrap().iter().all(|r| r["trace_hash"] == "none(real-run)"));
    let junit = std::fs::read_to_string(&junit).unwrap();
    for seed in seeds {
        assert!(junit.contains(&format!("<testcase name=\"word_count seed {seed}\"")), "{junit}");
    }
}

/// A real campaign's failing run gets the artifacts of a simulated one plus
/// `real.json` (what was played), and next steps that play its schedule
/// again for real and in simulation.
#[test]
fn a_real_campaign_keeps_a_failing_runs_schedule_and_what_was_played() {
    let Some(bin) = node_bin() else { return };
    let dir = scratch("campaign-fail");
    let out = real(&[
        "--scenario",
        "word_count",
        "--seeds",
        "2",
        "--jobs",
        "2",
        "--profile",
        "crash",
        "--mutant",
        "canary",
        "--report",
        dir.to_str().unwrap(),
        "--node-bin",
        bin.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for seed in [0, 1] {
        let run = dir.join(format!("word_count-{seed}"));
        for f in ["report.json", "real.json", "replay.json", "trace.jsonl", "timeline.html"] {
            assert!(run.join(f).is_file(), "{} missing: {stdout}", run.join(f).display());
        }
    }
    let replay = dir.join("word_count-0/replay.json");
    assert!(stdout.contains(&format!("--mutant canary --schedule {}", replay.display())), "{stdout}");
    assert!(stdout.contains(&format!("replay {}", replay.display())), "{stdout}");
}

/// A campaign of real runs refuses what only one run can take, in one line.
#[test]
fn a_real_campaign_refuses_one_runs_schedule() {
    let out = real(&["--scenario", "word_count", "--seeds", "2", "--schedule", "x.json"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--schedule plays one schedule"), "{err}");
    let out = real(&["--scenario", "word_count"]);
    assert_eq!(out.status.code(), Some(2), "neither --seed nor --seeds");
}

/// A supervisor killed with `kill -9` cleans nothing up: its node processes
/// die with it (`PR_SET_PDEATHSIG`), and the next real run finds its run
/// directory (still marked with the dead supervisor's pid) and removes it.
#[test]
fn the_next_run_removes_what_a_killed_supervisor_left() {
    let Some(bin) = node_bin() else { return };
    let profile = scratch("sigkill").with_extension("toml");
    std::fs::create_dir_all(profile.parent().unwrap()).unwrap();
    std::fs::write(&profile, "name = \"long\"\nsafety_ms = 60000\nliveness_ms = 60000\n").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_exactsim"))
        .args(["real", "--scenario", "word_count", "--seed", "3", "--profile"])
        .arg(&profile)
        .arg("--node-bin")
        .arg(&bin)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let prefix = format!("exactsim-real-{}-3-", child.id());
    let find = || {
        std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .flatten()
            .find(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .map(|e| e.path())
    };
    let t0 = std::time::Instant::now();
    let run_dir = loop {
        if let Some(d) = find().filter(|d| d.join("spec.json").is_file()) {
            break d;
        }
        assert!(t0.elapsed() < std::time::Duration::from_secs(20), "no run directory appeared");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    std::thread::sleep(std::time::Duration::from_millis(800));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(run_dir.join("supervisor.pid").is_file(), "the dead supervisor's directory is still marked");
    let t0 = std::time::Instant::now();
    while !processes_mentioning(&run_dir.to_string_lossy()).is_empty() {
        assert!(t0.elapsed() < std::time::Duration::from_secs(5), "node processes outlived their supervisor");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = real(&["--scenario", "copier", "--seed", "1", "--profile", "none", "--node-bin", bin.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!run_dir.exists(), "{} is still there", run_dir.display());
    assert!(stderr.contains(&format!("note: removed {}", run_dir.display())), "{stderr}");
}

/// Two Ctrl-C 50 ms apart: the second does not leave the run's processes
/// or files behind (real mode stops them before it exits).
#[test]
fn a_second_ctrl_c_still_cleans_up() {
    let Some(bin) = node_bin() else { return };
    let profile = scratch("sigint2").with_extension("toml");
    std::fs::create_dir_all(profile.parent().unwrap()).unwrap();
    std::fs::write(&profile, "name = \"long\"\nsafety_ms = 60000\nliveness_ms = 60000\n").unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_exactsim"))
        .args(["real", "--scenario", "word_count", "--seed", "5", "--profile"])
        .arg(&profile)
        .arg("--node-bin")
        .arg(&bin)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let prefix = format!("exactsim-real-{}-5-", child.id());
    std::thread::sleep(std::time::Duration::from_millis(1500));
    for _ in 0..2 {
        // SAFETY: a signal to our own child.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGINT);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    // (The second signal may find the run already stopped: then there is
    // no "stopping:" line, and nothing must be left either way.)
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert_eq!(processes_mentioning(&prefix), Vec::<String>::new());
}

/// The schedule a real run plays, checked against a simulated run of the
/// same (scenario, seed, profile): the same events, the sink's system node
/// included; real mode leaves out only what its kinds say it cannot play
/// (with the kind's reason) and what was due on a node that was down.
fn same_schedule_as_simulation(bin: &Path, scenario: &str, seed: &str, profile: &str) -> serde_json::Value {
    let dir = scratch(&format!("same-{scenario}-{seed}"));
    std::fs::create_dir_all(&dir).unwrap();
    let replay = dir.join("sim-replay.json");
    let sim = Command::new(env!("CARGO_BIN_EXE_exactsim"))
        .args(["run", "--scenario", scenario, "--seed", seed, "--profile", profile, "--save-replay"])
        .arg(&replay)
        .output()
        .unwrap();
    assert_eq!(sim.status.code(), Some(0), "{}", String::from_utf8_lossy(&sim.stdout));
    let report = dir.join("real");
    let out = real(&[
        "--scenario",
        scenario,
        "--seed",
        seed,
        "--profile",
        profile,
        "--node-bin",
        bin.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let real = json(&report.join("real.json"));
    let sim_schedule = json(&replay)["schedule"].clone();
    assert_eq!(real["schedule"], sim_schedule, "real mode drew another schedule than simulation");
    let schedule: exactsim_model::schedule::Schedule = serde_json::from_value(sim_schedule).unwrap();
    let cannot = exactsim::real::skipped_faults(&schedule);
    let skipped = real["skipped"].as_array().unwrap();
    for s in skipped {
        let reason = s["reason"].as_str().unwrap();
        let declared = cannot.iter().any(|c| c.event == s["event"] && c.reason == reason);
        assert!(declared || reason == exactsim::real::DOWN_REASON, "skipped for no declared reason: {s}");
    }
    for c in &cannot {
        assert!(skipped.iter().any(|s| s["event"] == c.event.as_str()), "not listed as skipped: {}", c.event);
    }
    let _ = std::fs::remove_dir_all(&dir);
    real
}

#[test]
fn a_real_run_plays_the_schedule_a_simulated_run_plays() {
    let Some(bin) = node_bin() else { return };
    // Seed 5 of `recovery`: a crash at a fault point, triggers on the
    // coordinator and a worker, a partition, a skew, late delivery, a
    // pause, loss, latency and a crash of the broker.
    let real = same_schedule_as_simulation(&bin, "word_count", "5", "recovery");
    assert!(!real["played"].as_array().unwrap().is_empty(), "{real}");
    if !postgres_installed() {
        return;
    }
    // The sink's system is a node of the schedule: its crash and pause are
    // a kill -9 and a SIGSTOP of the real PostgreSQL (seed 5: crashed at
    // 466 ms for 200 ms, paused at 1187 ms).
    let dir = scratch("system-profile");
    std::fs::create_dir_all(&dir).unwrap();
    let profile = dir.join("system.toml");
    std::fs::write(
        &profile,
        "name = \"system\"\ncrash = 1\npause = 1\n[targets]\ncrash = [\"system\"]\npause = [\"system\"]\n",
    )
    .unwrap();
    let real = same_schedule_as_simulation(&bin, "pg_ledger", "5", profile.to_str().unwrap());
    let played = real["played"].as_array().unwrap();
    for kind in ["crash", "pause", "resume", "restart", "pg_up"] {
        assert!(played.iter().any(|p| p["kind"] == kind && p["node"] == "system"), "no {kind} of the system: {real}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
