//! exactsim's command line with this crate's scenarios beside the built-in
//! ones: `cargo run -p exactsim-example-kv -- run --scenario kv --seed 1`,
//! `campaign --scenario kv`, `shrink`, `replay`, `scenarios`, ... Every
//! command it prints names this binary (`cargo run -p exactsim-example-kv --`).

fn main() -> std::process::ExitCode {
    exactsim::cli::main_with(exactsim_example_kv::scenarios())
}
