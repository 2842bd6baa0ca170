// Shared by the build scripts of the CLI (`build.rs`) and of the node
// binary (`node/build.rs`): a stable hash of every `.rs` file under some
// folders, so that a binary knows which sources it was built from.

fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// FNV-1a over the relative paths and contents of the `.rs` files under
/// `dirs` (relative to `root`), in sorted order; asks cargo to re-run the
/// build script when any of them changes.
fn code_hash(root: &std::path::Path, dirs: &[&str]) -> u64 {
    let mut files = Vec::new();
    for d in dirs {
        println!("cargo:rerun-if-changed={}", root.join(d).display());
        walk(&root.join(d), &mut files);
    }
    files.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for f in files {
        let bytes = std::fs::read(&f).unwrap_or_default();
        let rel = f.strip_prefix(root).unwrap_or(&f).to_string_lossy().into_owned();
        for b in rel.bytes().chain(bytes) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01B3);
        }
    }
    h
}

/// The sources a real-mode node process is built from: the CLI refuses a
/// node binary whose hash of them differs from its own.
const NODE_SOURCES: [&str; 5] = ["engine/src", "model/src", "scenarios/src", "pg/src", "node/src"];
