//! The example's integration tests, one binary (one link, and its tests
//! share the two cores: `cargo test` runs test binaries one after another).

mod bugs;
mod failing_seed_loop;
