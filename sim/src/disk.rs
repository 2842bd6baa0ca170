//! The simulated disk: one per node that has storage, outliving the node's
//! restarts. madsim's own `fs` keeps unsynced data across a kill and models
//! no latency or errors, so the simulator provides this disk behind the
//! engine's [`Storage`] trait.
//!
//! Model (strict POSIX): every file is an inode with its current `data` and
//! the `synced` contents as of its last `fsync`. Names live in a directory
//! with a current and a durable namespace; creates, renames and removes are
//! durable only after `fsync_dir`. So to be durable the engine must fsync
//! the file and then the directory (`write_atomic`).
//!
//! Faults: latency with slow windows, injected write/fsync errors, transient
//! corrupted reads, a capacity limit, and at a crash: lost unsynced writes,
//! torn writes (a strict prefix of an in-flight append survives), or
//! everything kept (a process crash with the page cache intact).

use crate::rng::SimRng;
use async_trait::async_trait;
use exactsim_engine::storage::Storage;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io;
use std::sync::Mutex;
use std::time::Duration;

/// What survives a crash (a parameter of the crash fault, so it lives
/// with the schedule in the run model).
pub use exactsim_model::schedule::CrashMode;

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CrashReport {
    pub lost_bytes: u64,
    pub torn_files: u32,
    pub files_reverted: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DiskStats {
    pub ops: u64,
    pub fsyncs: u64,
    pub slow_ops: u64,
    pub injected_errors: u64,
    pub corrupted_reads: u64,
    pub crashes: u64,
    pub lost_bytes: u64,
    pub torn_files: u64,
}

#[derive(Clone, Debug, Default)]
struct Inode {
    /// What reads see now.
    data: Vec<u8>,
    /// What a crash that loses unsynced data leaves.
    synced: Synced,
}

/// The durable contents of a file. Appends only grow `data`, so while a file
/// is only appended to, its durable contents are a prefix of `data` and an
/// fsync costs O(1) instead of a copy of the whole file (the broker's WAL is
/// fsynced after every entry).
#[derive(Clone, Debug)]
enum Synced {
    /// The first `n` bytes of `data`.
    Prefix(usize),
    /// A copy, taken when `data` was overwritten after the last fsync.
    Copy(Vec<u8>),
}

impl Default for Synced {
    fn default() -> Self {
        Synced::Prefix(0)
    }
}

impl Inode {
    fn synced(&self) -> &[u8] {
        match &self.synced {
            Synced::Prefix(n) => &self.data[..*n],
            Synced::Copy(v) => v,
        }
    }
    fn in_sync(&self) -> bool {
        match &self.synced {
            Synced::Prefix(n) => *n == self.data.len(),
            Synced::Copy(v) => *v == self.data,
        }
    }
    fn mark_synced(&mut self) {
        self.synced = Synced::Prefix(self.data.len());
    }
    /// `data` is about to be replaced: keep the durable bytes apart.
    fn before_overwrite(&mut self) {
        if let Synced::Prefix(n) = self.synced {
            self.synced = Synced::Copy(self.data[..n].to_vec());
        }
    }
    /// Back to the durable contents.
    fn revert(&mut self) {
        match std::mem::take(&mut self.synced) {
            Synced::Prefix(n) => self.data.truncate(n),
            Synced::Copy(v) => self.data = v,
        }
        self.mark_synced();
    }
}

struct Inner {
    rng: SimRng,
    inodes: BTreeMap<u64, Inode>,
    next_ino: u64,
    names: BTreeMap<String, u64>,
    names_durable: BTreeMap<String, u64>,
    slow_ms: Option<u64>,
    error_permille: u32,
    corrupt_permille: u32,
    capacity: Option<u64>,
    stats: DiskStats,
}

impl Inner {
    /// The inode named `path`, created empty (name not yet durable) if missing.
    fn file_mut(&mut self, path: &str) -> &mut Inode {
        let ino = match self.names.get(path) {
            Some(ino) => *ino,
            None => {
                let ino = self.next_ino;
                self.next_ino += 1;
                self.inodes.insert(ino, Inode::default());
                self.names.insert(path.to_string(), ino);
                ino
            }
        };
        self.inodes.get_mut(&ino).expect("named inode exists")
    }
}

/// What the faults did inside `disks`, summed by kind: operations failed
/// (`io_error`), reads corrupted (`corrupt_read`), operations slowed
/// (`slow_disk_op`); a kind with none is left out. The history does not show
/// these; every other fault tally is read from it.
pub fn effects<'a>(disks: impl IntoIterator<Item = &'a std::sync::Arc<SimDisk>>) -> BTreeMap<String, u64> {
    let mut t = BTreeMap::new();
    for d in disks {
        let s = d.stats();
        for (k, n) in
            [("io_error", s.injected_errors), ("corrupt_read", s.corrupted_reads), ("slow_disk_op", s.slow_ops)]
        {
            if n > 0 {
                *t.entry(k.to_string()).or_insert(0) += n;
            }
        }
    }
    t
}

pub struct SimDisk {
    name: String,
    inner: Mutex<Inner>,
}

const BASE_IO: Duration = Duration::from_micros(20);
const BASE_SYNC: Duration = Duration::from_micros(500);

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Write,
    Sync,
    Read,
}

impl SimDisk {
    pub fn new(name: &str, rng: SimRng) -> SimDisk {
        SimDisk {
            name: name.to_string(),
            inner: Mutex::new(Inner {
                rng,
                inodes: BTreeMap::new(),
                next_ino: 1,
                names: BTreeMap::new(),
                names_durable: BTreeMap::new(),
                slow_ms: None,
                error_permille: 0,
                corrupt_permille: 0,
                capacity: None,
                stats: DiskStats::default(),
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn set_slow(&self, latency_ms: Option<u64>) {
        self.inner.lock().unwrap().slow_ms = latency_ms;
    }
    pub fn set_error_permille(&self, p: u32) {
        assert!(p <= 1000);
        self.inner.lock().unwrap().error_permille = p;
    }
    pub fn set_corrupt_permille(&self, p: u32) {
        assert!(p <= 1000);
        self.inner.lock().unwrap().corrupt_permille = p;
    }
    pub fn set_capacity(&self, bytes: Option<u64>) {
        self.inner.lock().unwrap().capacity = bytes;
    }
    /// Its counters; also after a panic inside the run (a poisoned lock:
    /// counters are whole numbers at any moment).
    pub fn stats(&self) -> DiskStats {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).stats.clone()
    }

    /// What would survive a crash that loses unsynced data.
    pub fn durable_files(&self) -> BTreeMap<String, Vec<u8>> {
        let g = self.inner.lock().unwrap();
        g.names_durable.iter().map(|(n, ino)| (n.clone(), g.inodes[ino].synced().to_vec())).collect()
    }

    pub fn current_files(&self) -> BTreeMap<String, Vec<u8>> {
        let g = self.inner.lock().unwrap();
        g.names.iter().map(|(n, ino)| (n.clone(), g.inodes[ino].data.clone())).collect()
    }

    /// Latency of one operation, then whether an error is injected.
    async fn io(&self, op: Op, bytes: usize) -> io::Result<()> {
        let (delay, fail) = {
            let mut g = self.inner.lock().unwrap();
            g.stats.ops += 1;
            let base = match op {
                Op::Sync => BASE_SYNC,
                _ => BASE_IO + Duration::from_nanos(bytes as u64),
            };
            let extra = match (op, g.slow_ms) {
                (Op::Read, _) | (_, None) => Duration::ZERO,
                (Op::Sync, Some(ms)) => Duration::from_millis(ms),
                (Op::Write, Some(ms)) => Duration::from_millis(ms / 4),
            };
            if extra > Duration::ZERO {
                g.stats.slow_ops += 1;
            }
            let p = g.error_permille as u64;
            let fail = op != Op::Read && p > 0 && g.rng.chance(p, 1000);
            if fail {
                g.stats.injected_errors += 1;
            }
            (base + extra, fail)
        };
        madsim::time::sleep(delay).await;
        if fail {
            return Err(io::Error::other(format!("injected I/O error on {}", self.name)));
        }
        Ok(())
    }

    fn used(g: &Inner) -> u64 {
        g.inodes.values().map(|i| i.data.len().max(i.synced().len()) as u64).sum()
    }

    fn check_space(g: &Inner, extra: usize) -> io::Result<()> {
        if let Some(cap) = g.capacity {
            if Self::used(g) + extra as u64 > cap {
                return Err(io::Error::other("no space left on device"));
            }
        }
        Ok(())
    }

    fn not_found(path: &str) -> io::Error {
        io::Error::new(io::ErrorKind::NotFound, format!("{path}: no such file"))
    }

    /// Power loss or process kill: see [`CrashMode`].
    pub fn crash(&self, mode: CrashMode) -> CrashReport {
        let mut g = self.inner.lock().unwrap();
        let g = &mut *g;
        let mut r = CrashReport::default();
        g.stats.crashes += 1;
        if mode != CrashMode::KeepAll {
            g.names = g.names_durable.clone();
        } else {
            g.names_durable = g.names.clone();
        }
        let live: std::collections::BTreeSet<u64> = g.names.values().copied().collect();
        g.inodes.retain(|ino, _| live.contains(ino));
        for inode in g.inodes.values_mut() {
            if inode.in_sync() {
                continue;
            }
            let (len, synced_len) = (inode.data.len(), inode.synced().len());
            match mode {
                CrashMode::KeepAll => inode.mark_synced(),
                CrashMode::LoseUnsynced => {
                    r.lost_bytes += len.abs_diff(synced_len).max(1) as u64;
                    r.files_reverted += 1;
                    inode.revert();
                }
                CrashMode::Torn => {
                    if len > synced_len && inode.data.starts_with(inode.synced()) {
                        let tail = len - synced_len;
                        let keep = g.rng.below(tail as u64) as usize; // strict prefix
                        r.lost_bytes += (tail - keep) as u64;
                        if keep > 0 {
                            r.torn_files += 1;
                        }
                        inode.data.truncate(synced_len + keep);
                        inode.mark_synced();
                    } else {
                        r.lost_bytes += len.abs_diff(synced_len).max(1) as u64;
                        r.files_reverted += 1;
                        inode.revert();
                    }
                }
            }
            assert!(inode.in_sync(), "after a crash all data is on disk");
        }
        g.stats.lost_bytes += r.lost_bytes;
        g.stats.torn_files += r.torn_files as u64;
        r
    }
}

#[async_trait]
impl Storage for SimDisk {
    async fn write(&self, path: &str, data: &[u8]) -> io::Result<()> {
        self.io(Op::Write, data.len()).await?;
        let mut g = self.inner.lock().unwrap();
        let old = g.names.get(path).map(|i| g.inodes[i].data.len()).unwrap_or(0);
        Self::check_space(&g, data.len().saturating_sub(old))?;
        let inode = g.file_mut(path);
        inode.before_overwrite();
        inode.data.clear();
        inode.data.extend_from_slice(data);
        Ok(())
    }

    async fn append(&self, path: &str, data: &[u8]) -> io::Result<()> {
        self.io(Op::Write, data.len()).await?;
        let mut g = self.inner.lock().unwrap();
        Self::check_space(&g, data.len())?;
        g.file_mut(path).data.extend_from_slice(data);
        Ok(())
    }

    async fn fsync(&self, path: &str) -> io::Result<()> {
        self.io(Op::Sync, 0).await?;
        let mut g = self.inner.lock().unwrap();
        g.stats.fsyncs += 1;
        let ino = *g.names.get(path).ok_or_else(|| Self::not_found(path))?;
        let inode = g.inodes.get_mut(&ino).expect("named inode exists");
        inode.mark_synced();
        Ok(())
    }

    async fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.io(Op::Write, 0).await?;
        let mut g = self.inner.lock().unwrap();
        let ino = g.names.remove(from).ok_or_else(|| Self::not_found(from))?;
        g.names.insert(to.to_string(), ino);
        Ok(())
    }

    async fn fsync_dir(&self) -> io::Result<()> {
        self.io(Op::Sync, 0).await?;
        let mut g = self.inner.lock().unwrap();
        g.stats.fsyncs += 1;
        g.names_durable = g.names.clone();
        Ok(())
    }

    async fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        self.io(Op::Read, 0).await?;
        let mut g = self.inner.lock().unwrap();
        let ino = *g.names.get(path).ok_or_else(|| Self::not_found(path))?;
        let mut data = g.inodes[&ino].data.clone();
        let p = g.corrupt_permille as u64;
        if p > 0 && !data.is_empty() && g.rng.chance(p, 1000) {
            let i = g.rng.below(data.len() as u64) as usize;
            data[i] ^= 0x5A;
            g.stats.corrupted_reads += 1;
        }
        Ok(data)
    }

    async fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        self.io(Op::Read, 0).await?;
        let g = self.inner.lock().unwrap();
        Ok(g.names.keys().filter(|n| n.starts_with(prefix)).cloned().collect())
    }

    async fn remove(&self, path: &str) -> io::Result<()> {
        self.io(Op::Write, 0).await?;
        self.inner.lock().unwrap().names.remove(path);
        Ok(())
    }
}

#[cfg(all(test, madsim))]
mod tests {
    use super::*;
    use exactsim_engine::storage::write_atomic;

    fn disk() -> SimDisk {
        SimDisk::new("t", SimRng::new(9))
    }

    fn block<F: std::future::Future>(f: F) -> F::Output {
        madsim::runtime::Runtime::new().block_on(f)
    }

    #[test]
    fn unsynced_data_is_lost_and_synced_kept() {
        block(async {
            let d = disk();
            d.write("a", b"one").await.unwrap();
            d.fsync("a").await.unwrap();
            d.fsync_dir().await.unwrap();
            d.append("a", b"-two").await.unwrap();
            let r = d.crash(CrashMode::LoseUnsynced);
            assert!(r.lost_bytes > 0);
            assert_eq!(d.read("a").await.unwrap(), b"one");
        });
    }

    #[test]
    fn created_file_without_dir_fsync_vanishes() {
        block(async {
            let d = disk();
            d.write("a", b"x").await.unwrap();
            d.fsync("a").await.unwrap();
            d.crash(CrashMode::LoseUnsynced);
            assert_eq!(d.read("a").await.unwrap_err().kind(), io::ErrorKind::NotFound);
        });
    }

    #[test]
    fn write_atomic_leaves_old_or_new_at_every_step() {
        block(async {
            // Crash after each of the four steps of write_atomic.
            for steps in 0..=4 {
                let d = disk();
                write_atomic(&d, "m", b"old").await.unwrap();
                let tmp = "m.tmp";
                if steps >= 1 {
                    d.write(tmp, b"new").await.unwrap();
                }
                if steps >= 2 {
                    d.fsync(tmp).await.unwrap();
                }
                if steps >= 3 {
                    d.rename(tmp, "m").await.unwrap();
                }
                if steps >= 4 {
                    d.fsync_dir().await.unwrap();
                }
                d.crash(CrashMode::LoseUnsynced);
                let got = d.read("m").await.unwrap();
                assert!(got == b"old" || got == b"new", "step {steps}: {got:?}");
                if steps == 4 {
                    assert_eq!(got, b"new");
                }
            }
        });
    }

    #[test]
    fn torn_write_keeps_a_strict_prefix() {
        block(async {
            let d = SimDisk::new("t", SimRng::new(3));
            write_atomic(&d, "log", b"head").await.unwrap();
            d.append("log", b"0123456789").await.unwrap();
            d.crash(CrashMode::Torn);
            let got = d.read("log").await.unwrap();
            assert!(got.starts_with(b"head"));
            assert!(got.len() < 14, "a strict prefix: {got:?}");
        });
    }

    #[test]
    fn errors_leave_data_unchanged_and_corruption_is_transient() {
        block(async {
            let d = disk();
            write_atomic(&d, "a", b"data").await.unwrap();
            d.set_error_permille(1000);
            assert!(d.write("a", b"zzzz").await.is_err());
            assert!(d.fsync("a").await.is_err());
            d.set_error_permille(0);
            assert_eq!(d.read("a").await.unwrap(), b"data");
            d.set_corrupt_permille(1000);
            assert_ne!(d.read("a").await.unwrap(), b"data");
            d.set_corrupt_permille(0);
            assert_eq!(d.read("a").await.unwrap(), b"data");
            assert!(d.stats().injected_errors >= 2);
            assert_eq!(d.stats().corrupted_reads, 1);
        });
    }

    #[test]
    fn slow_disk_and_capacity() {
        block(async {
            let d = disk();
            d.write("a", b"x").await.unwrap();
            d.set_slow(Some(50));
            let t0 = madsim::time::Instant::now();
            d.fsync("a").await.unwrap();
            assert!(t0.elapsed() >= Duration::from_millis(50));
            d.set_slow(None);
            d.set_capacity(Some(10));
            let e = d.append("a", &[0; 20]).await.unwrap_err();
            assert!(e.to_string().contains("no space left"));
        });
    }
}
