//! The storage seam: every durable write of the engine goes through
//! [`Storage`]. The real world implements it on files ([`FileStorage`]); the
//! simulator implements it on a simulated disk with latency, lost unsynced
//! writes, torn writes and I/O errors.
//!
//! Semantics follow POSIX strictly: data written is durable only after
//! `fsync(path)`; a created, renamed or removed name is durable only after
//! `fsync_dir()`. Code that needs an atomic durable record uses
//! [`write_atomic`].

use async_trait::async_trait;
use std::io;

#[async_trait]
pub trait Storage: Send + Sync {
    /// Create or truncate `path` and write `data` (not yet durable).
    async fn write(&self, path: &str, data: &[u8]) -> io::Result<()>;
    /// Append `data` to `path`, creating it if missing (not yet durable).
    async fn append(&self, path: &str, data: &[u8]) -> io::Result<()>;
    /// Make the contents of `path` durable.
    async fn fsync(&self, path: &str) -> io::Result<()>;
    /// Atomically replace `to` with `from` (durable after `fsync_dir`).
    async fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Make the directory (names: creates, renames, removes) durable.
    async fn fsync_dir(&self) -> io::Result<()>;
    /// Read the whole file. `ErrorKind::NotFound` if missing.
    async fn read(&self, path: &str) -> io::Result<Vec<u8>>;
    /// Names starting with `prefix`, sorted.
    async fn list(&self, prefix: &str) -> io::Result<Vec<String>>;
    /// Remove `path` (no error if missing).
    async fn remove(&self, path: &str) -> io::Result<()>;
}

/// Write `data` to `path` as one atomic durable record: write a temporary
/// file, fsync it, rename it over `path`, fsync the directory. After a crash
/// the reader sees either the old record or the new one, never a mix.
pub async fn write_atomic(storage: &dyn Storage, path: &str, data: &[u8]) -> io::Result<()> {
    let tmp = format!("{path}.tmp");
    storage.write(&tmp, data).await?;
    storage.fsync(&tmp).await?;
    storage.rename(&tmp, path).await?;
    storage.fsync_dir().await?;
    Ok(())
}

/// Storage on a real directory, for runs outside the simulator.
pub struct FileStorage {
    dir: std::path::PathBuf,
}

impl FileStorage {
    pub fn new(dir: impl Into<std::path::PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(FileStorage { dir })
    }
    fn path(&self, p: &str) -> std::path::PathBuf {
        assert!(!p.contains('/'), "flat namespace: {p}");
        self.dir.join(p)
    }
}

#[async_trait]
impl Storage for FileStorage {
    async fn write(&self, path: &str, data: &[u8]) -> io::Result<()> {
        std::fs::write(self.path(path), data)
    }
    async fn append(&self, path: &str, data: &[u8]) -> io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(self.path(path))?;
        f.write_all(data)
    }
    async fn fsync(&self, path: &str) -> io::Result<()> {
        std::fs::File::open(self.path(path))?.sync_all()
    }
    async fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        std::fs::rename(self.path(from), self.path(to))
    }
    async fn fsync_dir(&self) -> io::Result<()> {
        std::fs::File::open(&self.dir)?.sync_all()
    }
    async fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        std::fs::read(self.path(path))
    }
    async fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir)? {
            let name = e?.file_name().to_string_lossy().into_owned();
            if name.starts_with(prefix) {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }
    async fn remove(&self, path: &str) -> io::Result<()> {
        match std::fs::remove_file(self.path(path)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            r => r,
        }
    }
}
