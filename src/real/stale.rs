//! Run directories left behind by a supervisor that died without cleaning
//! up (a `kill -9` of `exactsim real`): every real run first looks for them
//! under the temporary directory and removes them, with whatever still runs
//! in them (a PostgreSQL server the dead supervisor had adopted; its node
//! processes die with it, `PR_SET_PDEATHSIG`).
//!
//! A run directory holds [`MARK`], its supervisor's pid, while a run is
//! live; a directory kept on purpose (`--keep`, or a run that could not be
//! set up, kept for its logs) has the mark removed, so it is never taken
//! for a stale one.

use std::path::{Path, PathBuf};

/// The file naming a live run directory's supervisor.
pub(super) const MARK: &str = "supervisor.pid";
/// The prefix of every run directory's name.
pub(super) const PREFIX: &str = "exactsim-real-";

/// Mark `dir` as the live run directory of this process.
pub(super) fn mark(dir: &Path) -> Result<(), String> {
    let path = dir.join(MARK);
    std::fs::write(&path, std::process::id().to_string()).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// `dir` is kept on purpose: no longer a live run directory.
pub(super) fn unmark(dir: &Path) {
    let _ = std::fs::remove_file(dir.join(MARK));
}

/// Whether the supervisor `pid` is gone: no such process, or the pid now
/// belongs to a process that is not exactsim.
fn supervisor_gone(pid: u32) -> bool {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Err(_) => true,
        Ok(cmd) => !String::from_utf8_lossy(&cmd).contains("exactsim"),
    }
}

/// The run directories under `temp` whose supervisor is gone.
pub(super) fn find(temp: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(temp) else { return Vec::new() };
    let mut out: Vec<PathBuf> = rd
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(PREFIX))
        .map(|e| e.path())
        .filter(|d| {
            std::fs::read_to_string(d.join(MARK))
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
                .is_some_and(|pid| pid != std::process::id() && supervisor_gone(pid))
        })
        .collect();
    out.sort();
    out
}

/// Remove every stale run directory under `temp`, stopping the PostgreSQL
/// server still running in it first; returns what was removed.
pub(super) fn sweep(temp: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    for dir in find(temp) {
        // Stopped by pid, as at the end of a run (a fast shutdown, then
        // kill -9 of what is left).
        drop(super::postgres::PgServer::adopt(&dir.join("pg")));
        if std::fs::remove_dir_all(&dir).is_ok() {
            removed.push(dir);
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("exactsim-stale-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A pid that no process has: one that just exited and was reaped.
    fn dead_pid() -> u32 {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid
    }

    #[test]
    fn only_directories_of_dead_supervisors_are_stale() {
        let temp = scratch("find");
        let dead = temp.join(format!("{PREFIX}1-2-dead"));
        let live = temp.join(format!("{PREFIX}3-4-live"));
        let kept = temp.join(format!("{PREFIX}5-6-kept"));
        let other = temp.join("not-a-run-dir");
        for d in [&dead, &live, &kept, &other] {
            std::fs::create_dir_all(d.join("logs")).unwrap();
        }
        std::fs::write(dead.join(MARK), dead_pid().to_string()).unwrap();
        // A live exactsim process: this test binary's parent is cargo, not
        // exactsim; this process itself is never stale.
        std::fs::write(live.join(MARK), std::process::id().to_string()).unwrap();
        std::fs::write(other.join(MARK), dead_pid().to_string()).unwrap();
        assert_eq!(find(&temp), vec![dead.clone()]);
        assert_eq!(sweep(&temp), vec![dead.clone()]);
        assert!(!dead.exists());
        assert!(live.exists() && kept.exists() && other.exists());
        unmark(&live);
        assert!(find(&temp).is_empty());
        let _ = std::fs::remove_dir_all(&temp);
    }
}
