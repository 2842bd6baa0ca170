//! Counters shared by every process of a real run: one `u64` per armed
//! predicate of the schedule ([`exactsim_model::faults::arming::Rule`]),
//! in a file of the run directory mapped into each process (`MAP_SHARED`)
//! and incremented atomically. A count goes on across a node's restarts and,
//! for a rule without a node, over every node, as the simulator's recorder
//! counts; exactly one occurrence sees a rule's count reach its `nth`, so a
//! rule fires once over the whole run without any other coordination.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct Counters {
    ptr: *mut AtomicU64,
    len: usize,
}

// SAFETY: the mapping lives as long as the value and is only accessed
// through atomics.
unsafe impl Send for Counters {}
unsafe impl Sync for Counters {}

impl Counters {
    /// Map the run's counters file (created, zeroed, by the supervisor:
    /// [`crate::wire::create_counters`]). No rules: nothing is mapped.
    pub fn open(path: &Path, len: usize) -> std::io::Result<Counters> {
        if len == 0 {
            return Ok(Counters { ptr: std::ptr::null_mut(), len: 0 });
        }
        let f = std::fs::OpenOptions::new().read(true).write(true).open(path)?;
        let bytes = len * 8;
        if (f.metadata()?.len() as usize) < bytes {
            return Err(std::io::Error::other(format!("{} is shorter than {bytes} bytes", path.display())));
        }
        use std::os::unix::io::AsRawFd;
        // SAFETY: a shared read-write mapping of a file at least `bytes`
        // long; the file may be closed once mapped.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Counters { ptr: p.cast(), len })
    }

    /// Count one occurrence for rule `i`; the count after it.
    pub fn incr(&self, i: usize) -> u64 {
        assert!(i < self.len, "counter {i} of {}", self.len);
        // SAFETY: in bounds of the mapping; page-aligned base, 8-byte slots.
        unsafe { (*self.ptr.add(i)).fetch_add(1, Ordering::SeqCst) + 1 }
    }
}

impl Drop for Counters {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: the mapping made in `open`.
            unsafe {
                libc::munmap(self.ptr.cast(), self.len * 8);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_mappings_count_together() {
        let dir = std::env::temp_dir().join(format!("exactsim-counters-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        crate::wire::create_counters(&dir, 3).unwrap();
        let path = crate::wire::counters_file(&dir);
        let a = Counters::open(&path, 3).unwrap();
        let b = Counters::open(&path, 3).unwrap();
        assert_eq!(a.incr(1), 1);
        assert_eq!(b.incr(1), 2);
        assert_eq!(b.incr(2), 1);
        assert_eq!(a.incr(1), 3);
        assert!(Counters::open(&path, 4).is_err(), "a file too short is refused");
        drop((a, b));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
