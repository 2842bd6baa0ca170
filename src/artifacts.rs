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
    let guard = TempGuard::register(&tmp);
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
    drop(guard);
    Ok(())
}

/// The temporaries being written, for a second Ctrl-C: the signal handler
/// exits at once and must not leave hidden `.name.tmp-PID-N` files behind.
/// Fixed slots of C strings, so that the handler only swaps atomics and
/// calls `unlink`, both async-signal-safe. A temporary that finds no free
/// slot (more than this many written at once) is not covered.
#[cfg(unix)]
static TEMPS: [std::sync::atomic::AtomicPtr<libc::c_char>; 256] =
    [const { std::sync::atomic::AtomicPtr::new(std::ptr::null_mut()) }; 256];

/// A temporary's slot in [`TEMPS`], freed when the temporary is renamed
/// into place or removed.
struct TempGuard {
    #[cfg(unix)]
    slot: Option<usize>,
}

impl TempGuard {
    #[cfg(unix)]
    fn register(path: &Path) -> TempGuard {
        use std::os::unix::ffi::OsStrExt;
        let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else { return TempGuard { slot: None } };
        let ptr = c.into_raw();
        for (i, s) in TEMPS.iter().enumerate() {
            if s.compare_exchange(std::ptr::null_mut(), ptr, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                return TempGuard { slot: Some(i) };
            }
        }
        // SAFETY: `ptr` came from `into_raw` above and was stored nowhere.
        drop(unsafe { std::ffi::CString::from_raw(ptr) });
        TempGuard { slot: None }
    }

    #[cfg(not(unix))]
    fn register(_path: &Path) -> TempGuard {
        TempGuard {}
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(i) = self.slot {
            let p = TEMPS[i].swap(std::ptr::null_mut(), Ordering::SeqCst);
            if !p.is_null() {
                // SAFETY: only `register` stores pointers, from `into_raw`;
                // the swap made this the only owner.
                drop(unsafe { std::ffi::CString::from_raw(p) });
            }
        }
    }
}

/// Remove every temporary being written. Async-signal-safe (atomic swaps
/// and `unlink`): the second Ctrl-C calls it just before `_exit`. The
/// strings are leaked, the process is about to end.
pub fn remove_temps_now() {
    #[cfg(unix)]
    for s in &TEMPS {
        let p = s.swap(std::ptr::null_mut(), Ordering::SeqCst);
        if !p.is_null() {
            // SAFETY: a NUL-terminated string from `register`, owned now.
            unsafe { libc::unlink(p) };
        }
    }
}

/// Write several files, all or none: each goes to its temporary first
/// (devices such as `/dev/stdout` are written after every temporary is
/// complete), and only when every one is complete are they renamed into
/// place. On failure the temporaries, and the directories made for them,
/// are removed, so a command that exits 2 on an unwritable output leaves
/// none of its other outputs either. The error names the first file that
/// failed.
pub fn write_all(files: &[(&Path, &str)]) -> Result<(), String> {
    let mut made_dirs: Vec<PathBuf> = Vec::new();
    let mut temps: Vec<(PathBuf, &Path)> = Vec::new();
    // Registered until renamed or removed, for a second Ctrl-C.
    let mut guards: Vec<TempGuard> = Vec::new();
    let result = (|| -> Result<(), String> {
        let mut devices: Vec<(&Path, &str)> = Vec::new();
        for &(path, contents) in files {
            let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
            if let Some(p) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                create_dir_recorded(p, &mut made_dirs)?;
            }
            if let Ok(m) = std::fs::metadata(path) {
                if m.is_dir() {
                    return Err(format!("cannot write {}: it is a directory", path.display()));
                }
                if !m.is_file() {
                    devices.push((path, contents));
                    continue;
                }
            }
            let tmp = temp_name(path);
            guards.push(TempGuard::register(&tmp));
            let written = (|| -> std::io::Result<()> {
                let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
                temps.push((tmp.clone(), path));
                f.write_all(contents.as_bytes())?;
                f.sync_all()
            })();
            written.map_err(fail)?;
        }
        for (path, contents) in devices {
            let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
            let mut f = std::fs::OpenOptions::new().write(true).open(path).map_err(fail)?;
            f.write_all(contents.as_bytes()).and_then(|_| f.flush()).map_err(fail)?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        for (tmp, _) in &temps {
            let _ = std::fs::remove_file(tmp);
        }
        for d in made_dirs.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
        return Err(e);
    }
    for (i, (tmp, path)) in temps.iter().enumerate() {
        if let Err(e) = std::fs::rename(tmp, path) {
            for (t, _) in &temps[i..] {
                let _ = std::fs::remove_file(t);
            }
            return Err(format!("cannot write {}: {e}", path.display()));
        }
    }
    drop(guards);
    Ok(())
}

/// Create `path` and its missing parents, recording the ones made (in the
/// order made) so that a failed [`write_all`] can remove them again.
fn create_dir_recorded(path: &Path, made: &mut Vec<PathBuf>) -> Result<(), String> {
    let mut missing = Vec::new();
    let mut p = Some(path);
    while let Some(d) = p.filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        missing.push(d.to_path_buf());
        p = d.parent();
    }
    create_dir(path)?;
    made.extend(missing.into_iter().rev());
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

    /// A scratch directory, removed when the test is done with it.
    struct Scratch(PathBuf);

    impl std::ops::Deref for Scratch {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn scratch(name: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("exactsim-artifacts-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
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

    #[test]
    fn several_files_are_written_all_or_none() {
        let d = scratch("all");
        let (a, b) = (d.join("new/a.txt"), d.join("b.txt"));
        write_all(&[(&a, "a"), (&b, "b")]).unwrap();
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "a");
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "b");
        let e = scratch("none");
        let (a, bad) = (e.join("deep/er/a.txt"), e.join("dir"));
        std::fs::create_dir(&bad).unwrap();
        let err = write_all(&[(&a, "a"), (&bad, "b")]).unwrap_err();
        assert!(err.contains("is a directory"), "{err}");
        assert_eq!(entries(&e), vec!["dir".to_string()], "no file, no temporary, no directory made for them");
        #[cfg(unix)]
        {
            let err = write_all(&[(&a, "a"), (Path::new("/dev/full"), "b")]).unwrap_err();
            assert!(err.contains("/dev/full"), "{err}");
            assert_eq!(entries(&e), vec!["dir".to_string()]);
        }
    }

    /// A second Ctrl-C while a file is being written exits at once and
    /// removes the temporary. Run in a child process (this test binary,
    /// this test alone): the signal ends it.
    #[cfg(unix)]
    #[test]
    fn a_second_signal_while_writing_leaves_no_temporary() {
        const CHILD: &str = "EXACTSIM_TEST_SECOND_SIGNAL_DIR";
        if let Some(dir) = std::env::var_os(CHILD) {
            crate::interrupt::install();
            let _ = write_file_with(&Path::new(&dir).join("campaign.json"), b"{}", |f, bytes| {
                f.write_all(bytes)?;
                unsafe {
                    libc::raise(libc::SIGINT);
                    libc::raise(libc::SIGINT);
                }
                Ok(())
            });
            unreachable!("the second signal exits");
        }
        let d = scratch("signal");
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "artifacts::tests::a_second_signal_while_writing_leaves_no_temporary", "--nocapture"])
            .env(CHILD, &*d)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(crate::interrupt::EXIT_INTERRUPTED as i32), "{out:?}");
        assert!(entries(&d).is_empty(), "left behind: {:?}", entries(&d));
    }
}
