//! `exactsim`: deterministic simulation testing of exactly-once stream
//! processing. See README.md; the command line is `exactsim::cli`, which a
//! user's own binary runs with its scenarios (`main_with`).

fn main() -> std::process::ExitCode {
    exactsim::cli::main_with(vec![])
}
