//! Incremental checkpoints (`JobConfig::incremental_checkpoints`): a chain's
//! keyed state is written as immutable files in the checkpoint store, and a
//! checkpoint writes only the files that changed since the task's previous
//! checkpoint, referring to the files of earlier checkpoints for the rest.
//!
//! Two plain state machines, no I/O:
//!
//! - [`IncrementalBase`] (one per chain task): splits the operator's
//!   snapshot into content-defined chunks ([`chunks`]: a boundary wherever
//!   a rolling hash of the last bytes says so, so a change moves only the
//!   boundaries near it) and decides, chunk by chunk, whether a file of
//!   the previous checkpoint holds the same bytes (referred to) or the
//!   chunk goes into the checkpoint's one new shared file (as an LSM tree
//!   writes the changed keys into a new immutable SST file). The
//!   checkpoint's main blob then holds a [`Manifest`] (the state as
//!   extents: file, offset and length of each run of chunks that lie back
//!   to back in one file, in order) instead of the state, so a slowly
//!   changing state's manifest grows with its changes, not its size. A file
//!   stays referred to while any of its chunks is unchanged.
//! - [`SharedRegistry`] (the coordinator's): reference counts of the shared
//!   files over the *retained* completed checkpoints. Registering a
//!   checkpoint counts its files; discarding one (subsumed past the
//!   retention, or dropped) uncounts them and returns the files no retained
//!   checkpoint refers to any more: those, and only those, may be deleted.
//!   The coordinator's registry is scoped per (re)start: rebuilt from the
//!   retained checkpoints of its durable record, so nothing that happened
//!   before (a delete still in flight) can count against it.
//!
//! **Invariant** (check P16): at every moment, every file a retained
//! completed checkpoint refers to is in the store.

use crate::types::CheckpointId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Average bytes per chunk of a small state (a power of two). Small, so
/// that the simulated jobs' states (a few kilobytes) span several files.
pub const CHUNK_BYTES: usize = 32;
/// Average bytes per chunk of a large state: a state of n bytes is cut
/// into chunks of about n / 1024 bytes (a power of two) between
/// [`CHUNK_BYTES`] and this, so a manifest stays small against the state.
pub const CHUNK_BYTES_MAX: usize = 256;
/// Shortest and longest chunk, against the average.
pub const CHUNK_MIN: usize = CHUNK_BYTES / 4;
pub const CHUNK_MAX: usize = CHUNK_BYTES * 4;

/// The average chunk of a state of `len` bytes (a power of two): 32 up to
/// 32 KB, then growing with the state up to [`CHUNK_BYTES_MAX`].
pub fn chunk_bytes(len: usize) -> usize {
    (len / 1024).next_power_of_two().clamp(CHUNK_BYTES, CHUNK_BYTES_MAX)
}

/// States up to this many bytes are never compacted (written whole when
/// an incremental checkpoint would write as much): where chunks start to
/// grow with the state.
pub const COMPACT_FROM: usize = 32 * 1024;

/// What one extent adds to an encoded manifest besides its file's name.
const EXTENT_BYTES: usize = 24;

/// The gear table of the rolling hash (fixed: splitmix64 from 0).
const fn gear() -> [u64; 256] {
    let mut t = [0u64; 256];
    let mut x: u64 = 0;
    let mut i = 0;
    while i < 256 {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        t[i] = z ^ (z >> 31);
        i += 1;
    }
    t
}
const GEAR: [u64; 256] = gear();

/// Content-defined chunks of `state` (gear hash, as FastCDC): a chunk ends
/// where the hash of its last bytes has its top bits clear, between a
/// quarter and four times [`chunk_bytes`] of the state's length (for small
/// states [`CHUNK_MIN`] and [`CHUNK_MAX`]). Concatenated, they are `state`.
pub fn chunks(state: &[u8]) -> Vec<&[u8]> {
    let avg = chunk_bytes(state.len());
    let (min, max) = (avg / 4, avg * 4);
    let mask: u64 = !(u64::MAX >> avg.trailing_zeros());
    let mut out = Vec::new();
    let (mut start, mut h) = (0usize, 0u64);
    for (i, b) in state.iter().enumerate() {
        h = (h << 1).wrapping_add(GEAR[*b as usize]);
        let len = i + 1 - start;
        if (len >= min && h & mask == 0) || len >= max {
            out.push(&state[start..=i]);
            start = i + 1;
            h = 0;
        }
    }
    if start < state.len() {
        out.push(&state[start..]);
    }
    out
}

/// `len` bytes at `offset` of a shared file: one chunk of the state, or
/// in a [`Manifest`] an extent (chunks back to back in the file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChunkRef {
    pub file: String,
    pub offset: u64,
    pub len: u64,
}

/// What an incremental checkpoint's main blob holds in place of the
/// operator's state: its extents in order (concatenated, they are the
/// state); a chunk never spans two extents.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub chunks: Vec<ChunkRef>,
    /// The length of the state.
    pub len: u64,
}

impl Manifest {
    /// The shared files it refers to, each once, in order of first use.
    pub fn files(&self) -> Vec<String> {
        let mut seen = std::collections::BTreeSet::new();
        self.chunks.iter().filter(|c| seen.insert(c.file.as_str())).map(|c| c.file.clone()).collect()
    }

    /// The state, from the bytes of its files.
    pub fn assemble(&self, files: &BTreeMap<String, Vec<u8>>) -> Result<Vec<u8>, String> {
        let mut state = Vec::with_capacity(self.len as usize);
        for c in &self.chunks {
            let f = files.get(&c.file).ok_or_else(|| format!("file {} not read", c.file))?;
            let (a, b) = (c.offset as usize, (c.offset + c.len) as usize);
            state.extend_from_slice(f.get(a..b).ok_or_else(|| format!("{} has no bytes {a}..{b}", c.file))?);
        }
        if state.len() as u64 != self.len {
            return Err(format!("state of {} bytes, manifest says {}", state.len(), self.len));
        }
        Ok(state)
    }
}

/// A 64-bit FNV-1a digest: decides whether a chunk changed (a collision
/// would reuse a chunk of different bytes).
pub fn digest(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// One chain's previous checkpoint: where each chunk's bytes are, by digest.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IncrementalBase {
    chunks: BTreeMap<u64, ChunkRef>,
}

/// A snapshot split against the base: the manifest and the one new shared
/// file (the changed chunks, back to back) to write, if any chunk changed.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    pub manifest: Manifest,
    pub new_file: Option<(String, Vec<u8>)>,
}

impl IncrementalBase {
    /// The base of a restored checkpoint: the state chunked again (the same
    /// bytes give the same chunks) and each chunk located in the extent
    /// that holds it; digests are recomputed from the restored bytes.
    pub fn restored(manifest: &Manifest, state: &[u8]) -> IncrementalBase {
        let mut chunks = BTreeMap::new();
        let mut extents = manifest.chunks.iter().peekable();
        let (mut ext_start, mut at) = (0usize, 0usize);
        for c in self::chunks(state) {
            // The extent holding position `at`.
            while let Some(e) = extents.peek() {
                if at < ext_start + e.len as usize {
                    break;
                }
                ext_start += e.len as usize;
                extents.next();
            }
            if let Some(e) = extents.peek() {
                let within = at - ext_start;
                if within + c.len() <= e.len as usize {
                    let r = ChunkRef { file: e.file.clone(), offset: e.offset + within as u64, len: c.len() as u64 };
                    chunks.insert(digest(c), r);
                } // else: it spans two extents; written again next time
            }
            at += c.len();
        }
        IncrementalBase { chunks }
    }

    /// Forget the chunks in files `keep` refuses (not known durable): they
    /// are written again by the next split.
    pub fn forget_unless(&mut self, keep: impl Fn(&str) -> bool) {
        self.chunks.retain(|_, c| keep(&c.file));
    }

    /// Split `state` for a checkpoint: a chunk whose bytes the base holds
    /// refers to them, the others go into one new file `name`. The base
    /// becomes this checkpoint.
    pub fn split(&mut self, state: &[u8], name: String) -> Split {
        let mut refs: Vec<ChunkRef> = Vec::new();
        let mut data = Vec::new();
        let mut next = BTreeMap::new();
        for c in chunks(state) {
            let d = digest(c);
            let r = match self.chunks.get(&d) {
                Some(r) if r.len == c.len() as u64 => r.clone(),
                _ => {
                    let r = ChunkRef { file: name.clone(), offset: data.len() as u64, len: c.len() as u64 };
                    data.extend_from_slice(c);
                    r
                }
            };
            next.insert(d, r.clone());
            match refs.last_mut() {
                // Back to back in the same file: one extent.
                Some(last) if last.file == r.file && last.offset + last.len == r.offset => last.len += r.len,
                _ => refs.push(r),
            }
        }
        // What the manifest and the new file would write; when that is
        // no less than the state itself (most of it changed, or the files
        // it refers to have fragmented it into many short extents), the
        // state is written whole as the new file, one extent: an
        // incremental checkpoint never writes more than a full one and a
        // short manifest (as an LSM tree compacts its files). Small states
        // (up to [`COMPACT_FROM`]) are never compacted: their bytes are
        // few either way, and the simulated jobs' states, all small, keep
        // referring to files of earlier checkpoints, which is what the
        // shared-state registry and check P16 are there for.
        let manifest_bytes: usize = refs.iter().map(|r| EXTENT_BYTES + r.file.len()).sum();
        if state.len() > COMPACT_FROM && data.len() + manifest_bytes >= state.len() {
            let mut at = 0u64;
            for c in chunks(state) {
                next.insert(digest(c), ChunkRef { file: name.clone(), offset: at, len: c.len() as u64 });
                at += c.len() as u64;
            }
            refs = vec![ChunkRef { file: name.clone(), offset: 0, len: state.len() as u64 }];
            data = state.to_vec();
        }
        self.chunks = next;
        let new_file = (!data.is_empty()).then_some((name, data));
        Split { manifest: Manifest { chunks: refs, len: state.len() as u64 }, new_file }
    }
}

/// The coordinator's shared-state registry: how many retained completed
/// checkpoints refer to each shared file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SharedRegistry {
    counts: BTreeMap<String, u32>,
    checkpoints: BTreeMap<CheckpointId, Vec<String>>,
}

impl SharedRegistry {
    /// A registry over `retained` (the checkpoints of a durable record).
    pub fn rebuilt<'a>(retained: impl IntoIterator<Item = (CheckpointId, &'a [String])>) -> SharedRegistry {
        let mut r = SharedRegistry::default();
        for (id, files) in retained {
            r.register(id, files);
        }
        r
    }

    /// A completed checkpoint refers to `files` (each counted once).
    pub fn register(&mut self, ckpt: CheckpointId, files: &[String]) {
        let mut files = files.to_vec();
        files.sort();
        files.dedup();
        for f in &files {
            *self.counts.entry(f.clone()).or_default() += 1;
        }
        if let Some(old) = self.checkpoints.insert(ckpt, files) {
            // Registered twice: uncount the first registration.
            self.unregister(&old);
        }
    }

    /// The checkpoint is no longer retained: the files no retained
    /// checkpoint refers to any more, to delete.
    pub fn discard(&mut self, ckpt: CheckpointId) -> Vec<String> {
        match self.checkpoints.remove(&ckpt) {
            Some(files) => self.unregister(&files),
            None => Vec::new(),
        }
    }

    /// Uncount `files` once each; the ones that reach zero, to delete.
    /// (Also what a delete of an earlier registry's checkpoint does when it
    /// lands in this one: the planted bug `flink-7268-...`.)
    pub fn unregister(&mut self, files: &[String]) -> Vec<String> {
        let mut gone = Vec::new();
        for f in files {
            if let Some(n) = self.counts.get_mut(f) {
                *n -= 1;
                if *n == 0 {
                    self.counts.remove(f);
                    gone.push(f.clone());
                }
            }
        }
        gone
    }

    /// How many registered checkpoints refer to `file`.
    pub fn count(&self, file: &str) -> u32 {
        self.counts.get(file).copied().unwrap_or(0)
    }

    /// The files `ckpt` refers to, if it is registered.
    pub fn files(&self, ckpt: CheckpointId) -> Option<&[String]> {
        self.checkpoints.get(&ckpt).map(Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn a_file_is_deleted_when_the_last_retained_checkpoint_drops_it() {
        let mut r = SharedRegistry::default();
        r.register(1, &s(&["a", "b"]));
        r.register(2, &s(&["b", "c"]));
        assert_eq!(r.count("b"), 2);
        assert_eq!(r.discard(1), s(&["a"]));
        r.register(3, &s(&["c", "d"]));
        assert_eq!(r.discard(2), s(&["b"]));
        assert_eq!(r.discard(2), Vec::<String>::new(), "a second discard is nothing");
        assert_eq!(r.discard(3), s(&["c", "d"]));
    }

    #[test]
    fn a_rebuilt_registry_equals_the_live_one() {
        let mut live = SharedRegistry::default();
        live.register(1, &s(&["a"]));
        live.register(2, &s(&["a", "b"]));
        live.register(3, &s(&["b"]));
        live.discard(1);
        let (f2, f3) = (s(&["a", "b"]), s(&["b"]));
        let rebuilt = SharedRegistry::rebuilt([(2, f2.as_slice()), (3, f3.as_slice())]);
        assert_eq!(live, rebuilt);
    }

    fn pseudo(n: usize) -> Vec<u8> {
        let mut x: u64 = 1;
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (x >> 56) as u8
            })
            .collect()
    }

    #[test]
    fn chunks_are_content_defined_and_bounded() {
        let state = pseudo(20_000);
        let cs = chunks(&state);
        assert_eq!(cs.concat(), state);
        assert!(cs.iter().all(|c| c.len() <= CHUNK_MAX));
        assert!(cs[..cs.len() - 1].iter().all(|c| c.len() >= CHUNK_MIN));
        assert!(cs.len() > 20_000 / CHUNK_MAX, "{}", cs.len());
        // An insertion moves the boundaries near it only.
        let mut moved = state.clone();
        moved.splice(10_000..10_000, [1, 2, 3]);
        let after: BTreeSet<&[u8]> = chunks(&moved).into_iter().collect();
        let same = cs.iter().filter(|c| after.contains(*c)).count();
        assert!(same * 10 >= cs.len() * 9, "{same} of {}", cs.len());
        assert!(chunks(&[]).is_empty());
    }

    #[test]
    fn a_split_writes_only_changed_chunks() {
        let mut base = IncrementalBase::default();
        let mut state = pseudo(64 * CHUNK_BYTES);
        let first = base.split(&state, "f1".into());
        let f1 = first.new_file.clone().unwrap();
        assert_eq!(f1.1, state, "the first checkpoint writes everything");
        state[32 * CHUNK_BYTES] ^= 0x55;
        let second = base.split(&state, "f2".into());
        let f2 = second.new_file.clone().unwrap();
        assert!(f2.1.len() * 4 < state.len(), "{}", f2.1.len());
        assert_eq!(second.manifest.files(), s(&["f1", "f2"]));
        let files: BTreeMap<String, Vec<u8>> = [f1, f2].into_iter().collect();
        assert_eq!(second.manifest.assemble(&files).unwrap(), state);
        // Extents: f1 before the change, f2 for it, f1 after it.
        let ext: Vec<&str> = second.manifest.chunks.iter().map(|c| c.file.as_str()).collect();
        assert_eq!(ext, ["f1", "f2", "f1"], "{:?}", second.manifest.chunks);
        assert_eq!(first.manifest.chunks.len(), 1, "one extent for a whole new file");
        let third = base.split(&state, "f3".into());
        assert_eq!(third.new_file, None, "nothing changed, nothing written");
        assert_eq!(IncrementalBase::restored(&third.manifest, &state), base);
        base.forget_unless(|f| f != "f2");
        let fourth = base.split(&state, "f4".into());
        assert_eq!(fourth.manifest.files(), s(&["f1", "f4"]), "a chunk of a forgotten file is written again");
    }

    proptest! {
        /// Any sequence of edits: every checkpoint's manifest assembles to
        /// its state from the files written so far, a restored base equals
        /// the live one, and manifests have no two extents that could be one.
        #[test]
        fn splits_assemble_and_restore(
            edits in proptest::collection::vec((0usize..4096, any::<u8>(), 0usize..3), 1..12),
        ) {
            let mut base = IncrementalBase::default();
            let mut state = pseudo(4096);
            let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
            for (i, (at, b, kind)) in edits.iter().enumerate() {
                let at = at % (state.len() + 1);
                match kind {
                    0 => if at < state.len() { state[at] ^= b | 1 },
                    1 => state.insert(at, *b),
                    _ => if at < state.len() { state.remove(at); },
                }
                let split = base.split(&state, format!("f{i}"));
                files.extend(split.new_file.clone());
                prop_assert_eq!(split.manifest.assemble(&files).unwrap(), state.clone());
                prop_assert_eq!(&IncrementalBase::restored(&split.manifest, &state), &base);
                for w in split.manifest.chunks.windows(2) {
                    prop_assert!(!(w[0].file == w[1].file && w[0].offset + w[0].len == w[1].offset), "{:?}", w);
                }
            }
        }

        /// Against a model that recounts from the retained set: a file is
        /// returned for deletion exactly when the last retained checkpoint
        /// that referred to it is discarded, and never while one refers to it.
        #[test]
        fn deletions_follow_the_retained_set(
            ckpts in proptest::collection::vec(proptest::collection::btree_set(0u8..12, 0..6), 1..30),
            k in 1usize..4,
        ) {
            let mut r = SharedRegistry::default();
            let mut retained: Vec<(u64, BTreeSet<String>)> = Vec::new();
            let mut deleted: BTreeSet<String> = BTreeSet::new();
            for (i, files) in ckpts.iter().enumerate() {
                let id = i as u64 + 1;
                let files: BTreeSet<String> = files.iter().map(|f| format!("f{f}")).collect();
                let v: Vec<String> = files.iter().cloned().collect();
                r.register(id, &v);
                retained.push((id, files));
                while retained.len() > k {
                    let (old, _) = retained.remove(0);
                    let gone = r.discard(old);
                    for g in gone {
                        prop_assert!(retained.iter().all(|(_, f)| !f.contains(&g)), "{g} still referred to");
                        deleted.insert(g);
                    }
                }
                for (_, f) in &retained {
                    for x in f {
                        prop_assert!(r.count(x) > 0);
                    }
                }
                // A file referred to again after its deletion is a new
                // upload in the engine (new names); here it counts anew.
                for (_, f) in &retained {
                    for x in f {
                        deleted.remove(x);
                    }
                }
            }
            let all: BTreeSet<String> = retained.iter().flat_map(|(_, f)| f.iter().cloned()).collect();
            let rebuilt = SharedRegistry::rebuilt(retained.iter().map(|(id, f)| (*id, f.iter().cloned().collect::<Vec<_>>())).collect::<Vec<_>>().iter().map(|(id, v)| (*id, v.as_slice())));
            for x in &all {
                prop_assert_eq!(rebuilt.count(x), r.count(x));
            }
        }
    }
}
