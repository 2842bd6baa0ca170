//! Bad input that is not a one-line refusal: what the tool prints when a
//! replay does not reproduce, how it names itself in the commands it
//! prints, what its help says, and what it says about a panicking run.

use std::path::PathBuf;
use std::process::{Command, Output};

fn exe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_exactsim"))
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("exactsim-edges-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A replay file recorded by this code, whose trace hash was changed: the
/// replay names both hashes and says the verdict is the recorded one.
#[test]
fn a_replay_with_another_trace_hash_says_what_differs() {
    let d = scratch("hash");
    let file = d.join("r.json");
    let saved = exe()
        .args(["run", "--scenario", "word_count", "--seed", "1", "--profile", "none", "--save-replay"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(saved.status.code(), Some(0), "{}{}", stdout(&saved), stderr(&saved));
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let real = v["trace_hash"].as_str().unwrap().to_string();
    v["trace_hash"] = "0123456789abcdef".into();
    std::fs::write(&file, v.to_string()).unwrap();
    let out = exe().arg("replay").arg(&file).output().unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    let line = text.lines().find(|l| l.starts_with("replay: ")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.starts_with("replay: recorded pass NOT reproduced: "), "{line}");
    assert!(line.contains(&format!("trace_hash {real} differs from the recorded 0123456789abcdef")), "{line}");
    assert!(line.contains("the verdict is the recorded one"), "{line}");
    assert!(stderr(&out).is_empty(), "same code version: no warning: {}", stderr(&out));
    let _ = std::fs::remove_dir_all(&d);
}

/// Run directly (not by cargo), a failing run's reproduce command and next
/// steps name the binary as it was invoked; the next step that copies
/// `min.json` says it is written by the shrink.
#[test]
fn a_binary_run_directly_prints_itself_in_its_commands() {
    let bin = env!("CARGO_BIN_EXE_exactsim");
    let out = exe()
        .env_remove("CARGO")
        .args(["run", "--scenario", "word_count", "--seed", "1", "--mutant", "no-recommit-on-recovery"])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(!text.contains("cargo run"), "{text}");
    assert!(text.contains(&format!("reproduce: {bin} run --scenario word_count --seed 1 ")), "{text}");
    assert!(text.contains(&format!("{bin} shrink --scenario word_count --seed 1 ")), "{text}");
    assert!(text.contains("cp min.json tests/corpus/word_count-1.json   (once shrink has written min.json"), "{text}");
    // Run by cargo (as `cargo test` runs it), the commands are the README's.
    let out = exe()
        .env("CARGO", "cargo")
        .args(["run", "--scenario", "word_count", "--seed", "1", "--mutant", "no-recommit-on-recovery"])
        .output()
        .unwrap();
    assert!(stdout(&out).contains("reproduce: cargo run --release -- run --scenario word_count"), "{}", stdout(&out));
}

/// `--profile`'s help names every built-in profile.
#[test]
fn the_profile_help_names_every_profile() {
    for sub in ["run", "campaign", "shrink", "real"] {
        let out = exe().args([sub, "--help"]).output().unwrap();
        let help = stdout(&out);
        // The flag's line and the next (clap wraps long help onto it).
        let line: String = help.lines().skip_while(|l| !l.contains("--profile")).take(2).collect::<Vec<_>>().join(" ");
        for p in exactsim_model::schedule::PROFILE_NAMES {
            assert!(line.contains(p), "{sub} --help: --profile does not name {p}: {line}");
        }
    }
}

/// A panicking run prints, once, what madsim's `context:` line is, before
/// it; the verdict names the panic.
#[test]
fn a_panicking_run_explains_the_context_line() {
    let out = exe()
        .args(["run", "--scenario", "word_count", "--seed", "1", "--mutant", "complete-before-all-acks"])
        .output()
        .unwrap();
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{text}{err}");
    assert!(text.contains("first_violation=panic"), "{text}");
    let note = err.find("note: a run panicked").unwrap_or_else(|| panic!("no note: {err}"));
    assert_eq!(err.matches("note: a run panicked").count(), 1, "{err}");
    if let Some(context) = err.find("context: node=") {
        assert!(note < context, "the note comes first: {err}");
    }
}
