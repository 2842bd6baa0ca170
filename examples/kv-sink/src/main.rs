//! exactsim's command line with this crate's scenarios beside the built-in
//! ones: `cargo run -p exactsim-example-kv -- run --scenario kv --seed 1`,
//! `campaign --scenario kv`, `shrink`, `replay`, `scenarios`, ... Every
//! command it prints names this binary (`cargo run -p exactsim-example-kv --`).

use std::sync::Arc;

use exactsim_example_kv::KvScenario;

fn main() -> std::process::ExitCode {
    exactsim::cli::main_with(vec![Arc::new(KvScenario::new()), Arc::new(KvScenario::buggy_no_recommit())])
}
