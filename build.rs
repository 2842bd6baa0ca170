//! Stamps the binary with a code version: the package version plus a hash
//! of every source file of the engine, run model, simulator and scenarios. A replay
//! file records it; a seed means the same run only on the same code. Also
//! the hash of the sources a real-mode node is built from, to refuse a
//! node binary built from other code.

include!("codehash.rs");

fn main() {
    let root = std::path::Path::new(".");
    let h = code_hash(root, &["engine/src", "model/src", "sim/src", "scenarios/src"]);
    println!("cargo:rustc-env=EXACTSIM_CODE_VERSION={}+{:016x}", std::env::var("CARGO_PKG_VERSION").unwrap(), h);
    println!("cargo:rustc-env=EXACTSIM_NODE_SOURCES={:016x}", code_hash(root, &NODE_SOURCES));
}
