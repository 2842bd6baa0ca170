//! Stamps the node binary with the hash of the sources it is built from
//! (`exactsim-node --sources`); `exactsim real` refuses a node binary whose
//! hash differs from its own, i.e. one built from other code.

include!("../codehash.rs");

fn main() {
    let root = std::path::Path::new("..");
    println!("cargo:rustc-env=EXACTSIM_NODE_SOURCES={:016x}", code_hash(root, &NODE_SOURCES));
}
