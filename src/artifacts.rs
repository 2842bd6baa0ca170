//! Every file the command line writes, and the artifacts kept for failing
//! seeds: the JSON report, the trace (one event a line, with every
//! randomised parameter at the top), the HTML timeline and a replay file.
//!
//! Files are written atomically: to a temporary name in the same directory,
//! flushed to disk, then renamed over the target. A full disk or a crash
//! leaves either the old file or the complete new one, never a cut-off
//! one; on failure the temporary is removed.

use crate::replay::ReplayFile;
use exactsim_sim::runner::Outcome;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

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
        "panic": out.report.panic,
    });
    s.push_str(&format!("# {header}\n"));
    for e in &r.history.events {
        s.push_str(&serde_json::to_string(e).expect("serializable"));
        s.push('\n');
    }
    s
}

/// Write one file atomically (creating its directory), naming what failed
/// in the error.
pub fn write_file(path: &Path, contents: &str) -> Result<(), String> {
    write_file_with(path, contents.as_bytes(), |f, bytes| f.write_all(bytes))
}

/// [`write_file`] with the byte writer as a parameter, so a test can make
/// the disk fill up part-way.
pub fn write_file_with(
    path: &Path,
    bytes: &[u8],
    mut write: impl FnMut(&mut std::fs::File, &[u8]) -> std::io::Result<()>,
) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    if let Some(p) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir(p)?;
    }
    // A device or a pipe (`/dev/stdout`, `/dev/full`) cannot be replaced by
    // a rename: write to it directly.
    if let Ok(m) = std::fs::metadata(path) {
        if !m.is_file() {
            if m.is_dir() {
                return Err(format!("cannot write {}: it is a directory", path.display()));
            }
            let mut f = std::fs::OpenOptions::new().write(true).open(path).map_err(fail)?;
            return write(&mut f, bytes).and_then(|_| f.flush()).map_err(fail);
        }
    }
    let tmp = temp_name(path);
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        write(&mut f, bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(())
}

/// `dir/.name.tmp-<pid>-<n>`: hidden, unique per process and call.
fn temp_name(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// Create a directory (and its parents), naming it in the error.
pub fn create_dir(path: &Path) -> Result<(), String> {
    std::fs::create_dir_all(path).map_err(|e| format!("cannot create {}: {e}", path.display()))
}

/// The folder of a failing seed's artifacts under a report directory.
pub fn failure_dir(dir: &Path, scenario: &str, seed: u64) -> PathBuf {
    dir.join(format!("{scenario}-{seed}"))
}

/// A failing seed's artifacts under `dir/<scenario>-<seed>/`. Every file is
/// attempted; the errors of those that could not be written are returned.
pub fn write_failure(dir: &Path, out: &Outcome, replay: Option<&ReplayFile>) -> Vec<String> {
    let base = failure_dir(dir, &out.report.scenario, out.report.seed);
    let mut files: Vec<(&str, String)> = vec![
        ("report.json", serde_json::to_string_pretty(&out.report).expect("serializable")),
        ("trace.jsonl", trace_text(out)),
        ("timeline.html", crate::timeline::page(out)),
    ];
    if let Some(r) = replay {
        files.push(("replay.json", r.to_json()));
    }
    files.into_iter().filter_map(|(name, text)| write_file(&base.join(name), &text).err()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("exactsim-artifacts-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn entries(d: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn a_write_that_fails_part_way_leaves_nothing_behind() {
        let d = scratch("partial");
        let target = d.join("report.json");
        let mut budget = 10usize;
        let err = write_file_with(&target, &[b'x'; 100], |f, bytes| {
            // The disk fills up after 10 bytes.
            f.write_all(&bytes[..budget])?;
            budget = 0;
            Err(std::io::Error::new(std::io::ErrorKind::StorageFull, "No space left on device"))
        })
        .unwrap_err();
        assert!(err.contains("cannot write") && err.contains("No space left"), "{err}");
        assert!(entries(&d).is_empty(), "no partial file and no temporary: {:?}", entries(&d));
    }

    #[test]
    fn a_failed_rewrite_keeps_the_old_file_whole() {
        let d = scratch("rewrite");
        let target = d.join("campaign.json");
        write_file(&target, "old and complete").unwrap();
        let r = write_file_with(&target, b"new", |_, _| Err(std::io::Error::other("disk error")));
        assert!(r.is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old and complete");
        assert_eq!(entries(&d), vec!["campaign.json".to_string()]);
        write_file(&target, "new").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        assert_eq!(entries(&d), vec!["campaign.json".to_string()]);
    }

    #[test]
    fn a_directory_is_not_a_file() {
        let d = scratch("dir");
        let err = write_file(&d, "x").unwrap_err();
        assert!(err.contains("is a directory"), "{err}");
    }
}
