//! Artifacts kept for failing seeds: the JSON report, the trace (one event
//! a line, with every randomised parameter at the top), the HTML timeline
//! and a replay file.

use crate::replay::ReplayFile;
use exactsim_sim::runner::Outcome;
use std::path::Path;

/// The trace as text: a header with the run's parameters, then one JSON
/// event per line.
pub fn trace_text(out: &Outcome) -> String {
    let r = &out.result;
    let mut s = String::new();
    let header = serde_json::json!({
        "scenario": out.report.scenario,
        "seed": out.report.seed,
        "profile": out.report.profile,
        "mode": out.report.mode,
        "mutant": out.report.mutant,
        "trace_hash": out.report.trace_hash,
        "code_version": out.report.code_version,
        "config": r.config,
        "schedule": r.schedule,
        "input_records": r.history.input.iter().map(|p| p.len()).collect::<Vec<_>>(),
    });
    s.push_str(&format!("# {header}\n"));
    for e in &r.history.events {
        s.push_str(&serde_json::to_string(e).expect("serializable"));
        s.push('\n');
    }
    s
}

/// Write one file (creating its directory), naming what failed in the error.
pub fn write_file(path: &Path, contents: &str) -> Result<(), String> {
    if let Some(p) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir(p)?;
    }
    std::fs::write(path, contents).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Create a directory (and its parents), naming it in the error.
pub fn create_dir(path: &Path) -> Result<(), String> {
    std::fs::create_dir_all(path).map_err(|e| format!("cannot create {}: {e}", path.display()))
}

/// A failing seed's artifacts under `dir/<scenario>-<seed>/`.
pub fn write_failure(dir: &Path, out: &Outcome, replay: Option<&ReplayFile>) -> Result<(), String> {
    let base = dir.join(format!("{}-{}", out.report.scenario, out.report.seed));
    write_file(&base.join("report.json"), &serde_json::to_string_pretty(&out.report).unwrap())?;
    write_file(&base.join("trace.jsonl"), &trace_text(out))?;
    write_file(&base.join("timeline.html"), &crate::timeline::page(out))?;
    if let Some(r) = replay {
        write_file(&base.join("replay.json"), &r.to_json())?;
    }
    Ok(())
}
