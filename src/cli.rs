//! The command line: argument parsing, exit codes and each subcommand's
//! flow (one match in [`main_with`]). `src/main.rs` is `main_with(vec![])`; a user's own
//! binary passes its scenarios ([`main_with`]) and gets every command for
//! them. Exit codes: 0 every check held, 1 a violation (or an escaped
//! mutant), 2 bad usage or bad input.

use crate::campaign::{run_campaign, CampaignSpec};
use crate::real::RealSpec;
use crate::registry::Registry;
use crate::replay::{shrink, ReplayFile};
use crate::*;
use clap::{Parser, Subcommand};
use exactsim_model::scenario::Scenario;
use exactsim_model::schedule::Profile;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "exactsim", version = env!("EXACTSIM_CODE_VERSION"), about = "Deterministic simulation testing of exactly-once stream processing")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
struct RunArgs {
    /// The workload to run (see `exactsim scenarios`).
    #[arg(long)]
    scenario: String,
    /// The run's seed: decimal or 0x-hex. It derives the workload, topology,
    /// fault schedule, network and disk behaviour.
    #[arg(long)]
    seed: String,
    /// Fault profile: none, crash, partition, slow-disk, disk, chaos, zombie, silent-restart, system-pause, recovery, adaptive, clock, late, broker-disk, redeploy, rescale, or a TOML file.
    #[arg(long, default_value = "chaos")]
    profile: String,
    /// Delivery mode: exactly-once or at-least-once.
    #[arg(long, default_value = "exactly-once")]
    mode: String,
    /// A planted bug to switch on (see `exactsim mutants --list`).
    #[arg(long)]
    mutant: Option<String>,
}

/// `real`'s run or campaign: one seed (`--seed`), or many (`--seeds`,
/// with the campaign's options).
#[derive(clap::Args, Clone)]
struct RealArgs {
    /// The workload to run (see `exactsim scenarios`); with --seeds also
    /// `all` (the built-in scenarios).
    #[arg(long)]
    scenario: String,
    /// One run's seed: decimal or 0x-hex.
    #[arg(long, conflicts_with = "seeds", required_unless_present = "seeds")]
    seed: Option<String>,
    /// A campaign of real runs: this many seeds per scenario, with a
    /// campaign report, JUnit and failure artifacts like `campaign`'s.
    #[arg(long)]
    seeds: Option<String>,
    /// The campaign's first seed (default 0).
    #[arg(long, requires = "seeds")]
    first_seed: Option<String>,
    /// Real runs at once (each on its own ports and run directory; default 1).
    #[arg(long, requires = "seeds")]
    jobs: Option<String>,
    /// Write the campaign's JUnit XML here.
    #[arg(long, requires = "seeds")]
    junit: Option<PathBuf>,
    /// Fault profile: none, crash, partition, slow-disk, disk, chaos, zombie, silent-restart, system-pause, recovery, adaptive, clock, late, broker-disk, redeploy, rescale, or a TOML file
    /// (default: recovery, the kinds real mode plays, aimed at the recovery windows).
    #[arg(long, default_value = "recovery")]
    profile: String,
    /// Delivery mode: exactly-once or at-least-once.
    #[arg(long, default_value = "exactly-once")]
    mode: String,
    /// A planted bug to switch on (see `exactsim mutants --list`).
    #[arg(long)]
    mutant: Option<String>,
}

#[derive(clap::Args)]
struct CampaignCmd {
    /// A scenario name, or `all`.
    #[arg(long, default_value = "all")]
    scenario: String,
    /// Seeds per scenario (1 to 10,000,000; default 100); with --budget,
    /// at most this many (default 10,000,000).
    #[arg(long)]
    seeds: Option<String>,
    /// The first seed (decimal or 0x-hex); seeds are consecutive. Default
    /// 0; with --budget, a random start recorded in the report.
    #[arg(long)]
    first_seed: Option<String>,
    /// Fault profile: none, crash, partition, slow-disk, disk, chaos, zombie, silent-restart, system-pause, recovery, adaptive, clock, late, broker-disk, redeploy, rescale, or a TOML file.
    #[arg(long, default_value = "chaos")]
    profile: String,
    /// Delivery mode: exactly-once or at-least-once.
    #[arg(long, default_value = "exactly-once")]
    mode: String,
    /// A planted bug to switch on in every run (see `exactsim mutants --list`).
    #[arg(long)]
    mutant: Option<String>,
    /// Runs in parallel (1 to 256).
    #[arg(long, default_value = "2")]
    jobs: String,
    /// K/N: run the K-th of N shards of the seeds (seed index i belongs to
    /// shard i mod N + 1); `auto` reads it from the scheduler's environment
    /// (GitLab, Buildkite, CircleCI, Kubernetes Indexed Job, Slurm array).
    #[arg(long)]
    shard: Option<String>,
    /// Continuous mode: run new seeds until this much time is spent
    /// (30s, 10m, 2h).
    #[arg(long)]
    budget: Option<String>,
    /// Write campaign.json there, and artifacts for failing seeds.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Write JUnit XML there (one test case per scenario and seed).
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Run about one seed in ten (picked by a hash of the seed) and every
    /// failing seed twice and compare traces.
    #[arg(long)]
    check_determinism: bool,
    /// Failing runs that get full artifacts (report, trace, timeline,
    /// replay file) under --report; the rest get one line in campaign.json.
    #[arg(long, default_value_t = crate::campaign::MAX_ARTIFACTS_DEFAULT)]
    max_artifacts: usize,
    /// Print the campaign report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct RunCmd {
    #[command(flatten)]
    args: RunArgs,
    /// Write the event log (parameters at the top).
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Write an HTML timeline of the run.
    #[arg(long)]
    timeline: Option<PathBuf>,
    /// Run the seed twice and compare the traces event by event.
    #[arg(long)]
    check_determinism: bool,
    /// Save a replay file (explicit schedule) for this run.
    #[arg(long)]
    save_replay: Option<PathBuf>,
    /// Print the JSON report instead of the summary line.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct ReplayCmd {
    /// The replay file (JSON).
    file: PathBuf,
    /// Refuse a file written by another code version (by default it
    /// runs with a warning: its fault schedule is explicit).
    #[arg(long)]
    strict_version: bool,
}

#[derive(clap::Args)]
struct ShrinkCmd {
    #[command(flatten)]
    args: RunArgs,
    /// Where to write the minimal replay file.
    #[arg(long)]
    out: PathBuf,
    /// Upper bound on simulation runs spent shrinking (1 to 100,000).
    #[arg(long, default_value = "2000")]
    max_runs: String,
    /// Shrink this schedule (a replay file or a bare schedule, JSON)
    /// instead of the seed's: a hand-edited or earlier-shrunk case.
    #[arg(long)]
    schedule: Option<PathBuf>,
    /// Candidate schedules run at once (1 to 256); the result is the same
    /// for any count.
    #[arg(long, default_value = "2")]
    jobs: String,
}

#[derive(clap::Args)]
struct ExploreCmd {
    /// A scenario name, or `all` (fresh seeds cycle through them).
    #[arg(long, default_value = "all")]
    scenario: String,
    /// Fault profile: a built-in name or a TOML file.
    #[arg(long, default_value = "chaos")]
    profile: String,
    /// exactly-once or at-least-once.
    #[arg(long, default_value = "exactly-once")]
    mode: String,
    /// A planted bug in every run.
    #[arg(long)]
    mutant: Option<String>,
    /// Runs to make at most.
    #[arg(long, default_value = "1000")]
    runs: String,
    /// The first fresh seed.
    #[arg(long, default_value = "0")]
    first_seed: String,
    /// The explorer's own seed (its choices); default: the first seed.
    #[arg(long)]
    seed: Option<String>,
    /// Directory for the failing run's replay file, the corpus
    /// (`corpus.json`) and the summary (`explore.json`).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Stop starting runs after this much wall time (`90s`, `10m`, `1h`).
    #[arg(long)]
    budget: Option<String>,
    /// Runs made at once (batches planned from the corpus as it stood).
    #[arg(long, default_value = "1")]
    jobs: String,
    /// K/N: the K-th of N explorers (its own choices and fresh seeds); `auto`
    /// reads it from the scheduler's environment, as `campaign` does.
    #[arg(long)]
    shard: Option<String>,
    /// Start from a saved corpus (a `corpus.json` of `--report`); several
    /// merge the corpora of shards.
    #[arg(long, value_name = "FILE")]
    corpus: Vec<PathBuf>,
}

#[derive(clap::Args)]
struct BenchCmd {
    /// Seeds per measurement.
    #[arg(long, default_value = "20")]
    seeds: String,
    /// A small scaling sweep (2k-8k records) instead of 2k-200k, one
    /// round of the overhead floor instead of seven; also taken below 5
    /// seeds.
    #[arg(long)]
    quick: bool,
    /// Write the scaling sweep's points here as CSV (read by
    /// ci/plot_bench.py).
    #[arg(long)]
    csv: Option<std::path::PathBuf>,
    /// Measure one part alone (for profilers such as callgrind):
    /// `floor` (10,000 bare madsim round trips) or `profiles` (the
    /// dense and production-like workloads); or `interval`: the adaptive
    /// checkpoint interval against fixed ones (throughput, recovery cost),
    /// `--seeds` per scenario; `incremental` (bytes per incremental
    /// checkpoint); `checks` (each check's CPU per input record as the
    /// input grows from 2k to 200k records).
    #[arg(long)]
    only: Option<String>,
}

#[derive(Subcommand)]
enum Cmd {
    /// List the scenarios.
    Scenarios,
    /// Run one seed of one scenario and check it.
    Run(RunCmd),
    /// Run many seeds of one or all scenarios.
    Campaign(CampaignCmd),
    /// Check that shard reports make one whole campaign and merge them.
    Merge {
        /// Shard report directories (each holding a campaign.json).
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Directory for the merged campaign.json and failure artifacts.
        #[arg(long)]
        report: PathBuf,
        /// Write JUnit XML there (one test case per scenario and seed).
        #[arg(long)]
        junit: Option<PathBuf>,
    },
    /// Re-run a replay file (from `shrink`, `run --save-replay`, or a
    /// campaign's artifacts) and check that its recorded verdict reproduces.
    Replay(ReplayCmd),
    /// Minimise the fault schedule of a failing run.
    Shrink(ShrinkCmd),
    /// Run every planted bug through a campaign and report detection.
    Mutants {
        /// A scenario name, or `all` (seeds cycle through them).
        #[arg(long, default_value = "all")]
        scenario: String,
        /// Seeds tried per planted bug before calling it escaped.
        #[arg(long, default_value = "200")]
        seeds: String,
        /// List the planted bugs, one a line, and exit.
        #[arg(long)]
        list: bool,
        /// Tell a planted bug's story (for the museum's bugs: the real bug,
        /// its tracker id and how it is reproduced here), and exit.
        #[arg(long, value_name = "MUTANT")]
        story: Option<String>,
        /// The first seed tried.
        #[arg(long, default_value = "0")]
        first_seed: String,
        /// Also hunt each bug with the explorer (`explore`), from the same
        /// seeds and profile, and print runs to detection side by side.
        #[arg(long)]
        explore: bool,
        /// Hunt the bugs that can show in real mode for real (OS processes,
        /// one run at a time; needs the std node binary, and PostgreSQL 15
        /// for pg_ledger) and in simulation, from the same seeds and
        /// profile: runs and wall time to first detection side by side.
        #[arg(long, conflicts_with = "explore")]
        real: bool,
        /// Only these planted bugs (comma-separated names).
        #[arg(long, value_name = "MUTANTS")]
        only: Option<String>,
    },
    /// Guided exploration: derive runs from those that reached the rarest
    /// reachability points (keep a run's faults up to that moment and draw
    /// the rest afresh, shift, drop, add, re-aim, splice), with fresh seeds
    /// in between; stop at the first failure and write its replay file.
    Explore(ExploreCmd),
    /// Run the engine as real OS processes on 127.0.0.1 under the seed's
    /// fault schedule played in wall time (kill -9, SIGSTOP/SIGCONT;
    /// partitions, loss, latency, late delivery and clock skew through a
    /// control file the processes obey; kill -9 of PostgreSQL for
    /// pg_ledger, which runs against a real PostgreSQL started by
    /// ci/postgres.sh), then check it with the same oracles. Needs the std node binary:
    /// `RUSTFLAGS= CARGO_TARGET_DIR=target/std cargo build --release -p exactsim-node`.
    /// Not reproducible bit for bit.
    Real {
        #[command(flatten)]
        args: RealArgs,
        /// Pause windows (SIGSTOP/SIGCONT) drawn from the seed, 0 to 100.
        #[arg(long, default_value = "0")]
        pauses: String,
        /// Play this schedule instead of the seed's: a replay file or a
        /// schedule (JSON).
        #[arg(long)]
        schedule: Option<PathBuf>,
        /// kill -9 of PostgreSQL drawn from the seed, 0 to 20 (scenarios
        /// writing to PostgreSQL only; default 1 there).
        #[arg(long)]
        pg_kills: Option<String>,
        /// Pause between two source polls, ms (1 to 1000; default: the
        /// job's, 5): a slower source keeps a short job running while the
        /// faults land.
        #[arg(long)]
        source_poll_ms: Option<String>,
        /// The std node binary (default: target/std/release/exactsim-node).
        #[arg(long)]
        node_bin: Option<PathBuf>,
        /// Write report.json, real.json and trace.jsonl there.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Keep the run directory (process logs, event logs, data).
        #[arg(long)]
        keep: bool,
        /// Network latency held on every received message, LO-HI ms (the
        /// simulated network's by default; 0 for bare loopback).
        #[arg(long, default_value = "1-5")]
        latency_ms: String,
        /// Print the JSON report instead of the summary.
        #[arg(long)]
        json: bool,
    },
    /// Measure campaign speed and engine overhead.
    Bench(BenchCmd),
}

fn usage(msg: String) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

/// A count in `1..=max`.
fn parse_count(s: &str, what: &str, max: u64) -> Result<u64, String> {
    let n =
        s.trim().parse::<u64>().map_err(|_| format!("malformed {what} '{s}' (expected an integer from 1 to {max})"))?;
    if n == 0 || n > max {
        return Err(format!("{what} {n} is out of range (1 to {max})"));
    }
    Ok(n)
}

/// Exit code after the results are printed: the verdict's code wins over a
/// file that could not be written (the error is printed all the same).
fn finish(verdict_code: u8, write_errors: &[String]) -> ExitCode {
    if let Some(e) = write_errors.first() {
        let more = write_errors.len() - 1;
        let tail = if more > 0 { format!(" (and {more} more file(s) not written)") } else { String::new() };
        eprintln!("error: {e}{tail}");
    }
    if verdict_code == 0 && !write_errors.is_empty() {
        return ExitCode::from(2);
    }
    ExitCode::from(verdict_code)
}

fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let bad = || format!("malformed shard '{s}' (expected K/N with 1 <= K <= N)");
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (k, n) = (k.parse::<u64>().map_err(|_| bad())?, n.parse::<u64>().map_err(|_| bad())?);
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    check_shard_count(n)?;
    Ok((k, n))
}

/// A shard count a merge can check: at most `SHARDS_MAX`.
fn check_shard_count(n: u64) -> Result<(), String> {
    let max = crate::campaign::SHARDS_MAX;
    if n > max {
        return Err(format!("shard count {n} is out of range (1 to {max})"));
    }
    Ok(())
}

fn resolve_shard(s: &str) -> Result<(u64, u64), String> {
    if s == "auto" {
        let (k, n) = crate::shard::from_env(&crate::shard::process_env)?;
        check_shard_count(n).map_err(|e| format!("--shard auto: {e}"))?;
        Ok((k, n))
    } else {
        parse_shard(s)
    }
}

fn run_spec(reg: &Registry, a: &RunArgs) -> Result<exactsim_model::run::RunSpec, String> {
    let sc = reg.get(&a.scenario)?;
    let seed = parse_seed(&a.seed)?;
    let prof = Profile::resolve(&a.profile)?;
    let mode = parse_mode(&a.mode)?;
    let mutant = a.mutant.as_deref().map(parse_mutant).transpose()?;
    let s = spec(sc, seed, prof, mode, mutant);
    check_run_nodes(&s, &a.profile)?;
    Ok(s)
}

/// The whole command line, with `extra` scenarios beside the built-in ones:
/// a user's binary is `fn main() -> ExitCode { exactsim::cli::main_with(vec![Arc::new(MyScenario)]) }`,
/// and `run`, `campaign`, `replay`, `shrink`, `mutants` and `scenarios`
/// take its scenarios by name; the commands it prints name that binary as
/// it was invoked (`cargo run -p my-crate -- ...`). A name that clashes
/// with a built-in scenario's (or another of `extra`) is a one-line error,
/// exit 2. `real` runs the built-in scenarios only (its node processes are
/// the `exactsim-node` binary) and refuses a user's with one line, exit 2.
pub fn main_with(extra: Vec<Arc<dyn Scenario>>) -> ExitCode {
    // Die quietly on a closed pipe (`exactsim ... | head`), like other CLI tools.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let reg = match Registry::with_user(extra).and_then(crate::registry::install) {
        Ok(r) => r,
        Err(e) => return usage(e),
    };
    output::install_report_cli();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // Bare `exactsim`: say what is missing, not the help's first line.
            use clap::CommandFactory;
            let subs: Vec<String> =
                Cli::command().get_subcommands().map(|c| c.get_name().to_string()).filter(|n| n != "help").collect();
            eprintln!("error: no subcommand given (one of: {}; see --help)", subs.join(", "));
            return ExitCode::from(2);
        }
        Err(e) if e.use_stderr() => {
            // One line naming the problem: clap's first line (its usage and
            // tips follow with --help).
            let text = e.render().to_string();
            let first: Vec<&str> = text
                .lines()
                .skip_while(|l| l.trim().is_empty())
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let first = if first.is_empty() { "error: bad usage".to_string() } else { first.join(" ") };
            eprintln!("{first} (see --help)");
            return ExitCode::from(2);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    exactsim_model::panics::explain_context_lines(exactsim_sim::in_simulation);
    match cli.cmd {
        Cmd::Scenarios => {
            let width = reg.scenarios().iter().map(|s| s.name().len()).max().unwrap_or(0).max(14);
            for s in reg.scenarios() {
                match s.planted_bug() {
                    None => println!("{:<width$} {}", s.name(), s.description()),
                    Some(bug) => println!(
                        "{:<width$} {} (planted bug: {bug}; runs only when named, not in `all`)",
                        s.name(),
                        s.description()
                    ),
                }
            }
            ExitCode::SUCCESS
        }
        Cmd::Run(a) => cmd_run(reg, a),
        Cmd::Real { args, pauses, schedule, pg_kills, source_poll_ms, node_bin, report, keep, latency_ms, json } => {
            let options = RealOptions { pauses, schedule, pg_kills, source_poll_ms, node_bin, keep, latency_ms };
            match args.seeds.clone() {
                None => real_one(reg, &args, options, report, json),
                Some(seeds) => real_campaign(reg, &args, &seeds, options, report, json),
            }
        }
        Cmd::Campaign(a) => cmd_campaign(reg, a),
        Cmd::Merge { dirs, report, junit } => {
            if let Some(j) = junit.as_ref().filter(|j| j.is_dir()) {
                return usage(format!("cannot write {}: it is a directory", j.display()));
            }
            let rep = match crate::merge::merge_dirs(&dirs, &report, junit.as_deref()) {
                Ok(m) => {
                    for w in &m.warnings {
                        eprintln!("warning: {w}");
                    }
                    m.report
                }
                Err(e) => return usage(e),
            };
            output::print_campaign(&rep, false, Some(&report));
            println!("merged {} shard report(s) into {}", rep.merged_from.len(), report.display());
            finish(rep.verdict.exit_code(), &rep.write_errors)
        }
        Cmd::Replay(a) => cmd_replay(reg, a),
        Cmd::Shrink(a) => cmd_shrink(reg, a),
        Cmd::Explore(a) => cmd_explore(reg, a),
        Cmd::Mutants { scenario, seeds, list, story, first_seed, explore, real, only } => {
            // Every argument is checked, with --list too.
            let args = (|| -> Result<_, String> {
                Ok((
                    reg.select(&scenario)?,
                    parse_count(&seeds, "seed count", crate::campaign::SEEDS_MAX)?,
                    parse_seed(&first_seed)?,
                ))
            })();
            let (scenarios, seeds, first) = match args {
                Ok(a) => a,
                Err(e) => return usage(e),
            };
            let only = match only.map(|l| l.split(',').map(|n| parse_mutant(n.trim())).collect::<Result<Vec<_>, _>>()) {
                Some(Err(e)) => return usage(e),
                Some(Ok(v)) => v,
                None => Vec::new(),
            };
            if list {
                print!("{}", crate::mutants::list());
                return ExitCode::SUCCESS;
            }
            if let Some(name) = story {
                let m = match parse_mutant(&name) {
                    Ok(m) => m,
                    Err(e) => return usage(e),
                };
                print!("{}", crate::mutants::story(m));
                return ExitCode::SUCCESS;
            }
            if explore {
                print!("{}", crate::mutants::compare_all(&scenarios, seeds, first, &only));
                return ExitCode::SUCCESS;
            }
            if real {
                return mutants_real(&scenarios, seeds, first, &only);
            }
            let table = crate::mutants::hunt_some(&scenarios, seeds, first, &only);
            print!("{}", crate::mutants::render(&table));
            ExitCode::from(if table.iter().all(|r| r.detected.is_some()) { 0 } else { 1 })
        }
        Cmd::Bench(a) => cmd_bench(a),
    }
}

/// `mutants --real [--only A,B]`: the planted bugs hunted for real and in
/// simulation, side by side.
fn mutants_real(scenarios: &[Arc<dyn Scenario>], seeds: u64, first: u64, only: &[Mutant]) -> ExitCode {
    let node_bin = match crate::real::find_node_bin(None).and_then(|b| crate::real::check_node_bin(&b).map(|()| b)) {
        Ok(b) => b,
        Err(e) => return usage(e),
    };
    let template = RealSpec {
        scenario: scenarios[0].clone(),
        seed: first,
        profile: Profile::named(crate::real::PROFILE_DEFAULT).expect("built-in profile"),
        profile_arg: crate::real::PROFILE_DEFAULT.to_string(),
        mode: DeliveryMode::ExactlyOnce,
        mutant: None,
        schedule: None,
        schedule_path: None,
        pauses: 0,
        node_bin,
        keep: false,
        latency_ms: crate::real::LATENCY_MS_DEFAULT,
        pg_kills: None,
        source_poll_ms: None,
    };
    interrupt::install_patient();
    print!("{}", crate::mutants::compare_real(scenarios, seeds, first, only, &template));
    ExitCode::SUCCESS
}

/// `real`'s options besides the run's identity, as given.
struct RealOptions {
    pauses: String,
    schedule: Option<PathBuf>,
    pg_kills: Option<String>,
    source_poll_ms: Option<String>,
    node_bin: Option<PathBuf>,
    keep: bool,
    latency_ms: String,
}

/// The real run of (`scenario`, `seed`) with `o`'s options; a campaign
/// takes it as the template of its runs.
fn real_spec(reg: &Registry, args: &RealArgs, scenario: &str, seed: &str, o: RealOptions) -> Result<RealSpec, String> {
    let run_args = RunArgs {
        scenario: scenario.to_string(),
        seed: seed.to_string(),
        profile: args.profile.clone(),
        mode: args.mode.clone(),
        mutant: args.mutant.clone(),
    };
    let rs = run_spec(reg, &run_args)?;
    if !reg.is_builtin(scenario) {
        return Err(format!(
            "real mode runs the built-in scenarios only: its node processes are the exactsim-node binary, which \
             does not have '{scenario}' (run it in simulation: {} run --scenario {scenario} --seed {seed})",
            output::invocation(),
        ));
    }
    let pauses = o
        .pauses
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|p| *p <= 100)
        .ok_or_else(|| format!("malformed pause count '{}' (expected an integer from 0 to 100)", o.pauses))?;
    let schedule = o.schedule.as_deref().map(crate::replay::load_schedule).transpose()?;
    let pg_kills = o
        .pg_kills
        .map(|k| {
            k.trim()
                .parse::<u32>()
                .ok()
                .filter(|k| *k <= 20)
                .ok_or_else(|| format!("malformed PostgreSQL kill count '{k}' (expected an integer from 0 to 20)"))
        })
        .transpose()?;
    let source_poll_ms = o
        .source_poll_ms
        .map(|m| {
            m.trim()
                .parse::<u64>()
                .ok()
                .filter(|m| (1..=1000).contains(m))
                .ok_or_else(|| format!("malformed source poll pause '{m}' (expected milliseconds from 1 to 1000)"))
        })
        .transpose()?;
    Ok(RealSpec {
        scenario: rs.scenario,
        seed: rs.seed,
        profile: rs.profile,
        profile_arg: args.profile.clone(),
        mode: rs.mode,
        mutant: rs.mutant,
        schedule,
        schedule_path: o.schedule,
        pauses,
        node_bin: crate::real::find_node_bin(o.node_bin.as_deref())?,
        keep: o.keep,
        latency_ms: crate::real::parse_latency(&o.latency_ms)?,
        pg_kills,
        source_poll_ms,
    })
}

/// `exactsim real --seed N`: one real run.
fn real_one(reg: &Registry, args: &RealArgs, o: RealOptions, report: Option<PathBuf>, json: bool) -> ExitCode {
    let seed = args.seed.clone().expect("clap: --seed or --seeds");
    let spec = match real_spec(reg, args, &args.scenario, &seed, o) {
        Ok(s) => s,
        Err(e) => return usage(e),
    };
    if let Some(dir) = &report {
        if let Err(e) = artifacts::create_dir(dir) {
            return usage(e);
        }
    }
    interrupt::install_patient();
    let out = match crate::real::run(&spec) {
        Ok(o) => o,
        Err(e) => return usage(e),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(out.report()).unwrap());
    } else {
        println!("{}", output::real_summary(&out));
        if spec.keep {
            println!("  run directory kept: {}", out.real.run_dir);
        }
    }
    let errors = report.as_deref().map(|d| crate::real::write_report(d, &out)).unwrap_or_default();
    if out.interrupted {
        return finish(interrupt::EXIT_INTERRUPTED, &errors);
    }
    finish(out.report().verdict.exit_code(), &errors)
}

/// `exactsim real --seeds N`: a campaign of real runs (the campaign's
/// report, summary, JUnit and failure artifacts; each failure's folder also
/// holds `real.json`, what was played).
fn real_campaign(
    reg: &Registry,
    args: &RealArgs,
    seeds: &str,
    o: RealOptions,
    report: Option<PathBuf>,
    json: bool,
) -> ExitCode {
    let spec = (|| -> Result<CampaignSpec, String> {
        if o.schedule.is_some() {
            return Err("--schedule plays one schedule: give it with --seed, not --seeds".into());
        }
        let scenarios = reg.select(&args.scenario)?;
        let first_seed = args.first_seed.as_deref().map(parse_seed).transpose()?.unwrap_or(0);
        let template = real_spec(reg, args, scenarios[0].name(), &first_seed.to_string(), o)?;
        for sc in &scenarios[1..] {
            if !reg.is_builtin(sc.name()) {
                return Err(format!("real mode runs the built-in scenarios only, not '{}'", sc.name()));
            }
        }
        Ok(CampaignSpec {
            scenarios,
            seeds: parse_count(seeds, "seed count", crate::campaign::SEEDS_MAX)?,
            first_seed,
            profile: template.profile.clone(),
            profile_arg: args.profile.clone(),
            mode: template.mode,
            mutant: template.mutant,
            jobs: args.jobs.as_deref().map_or(Ok(1), |j| parse_count(j, "job count", REAL_JOBS_MAX))? as usize,
            shard: None,
            budget: None,
            report_dir: report,
            junit: args.junit.clone(),
            check_determinism: false,
            progress: true,
            max_artifacts: crate::campaign::MAX_ARTIFACTS_DEFAULT,
            backend: crate::campaign::Backend::Real(Box::new(template)),
        })
    })();
    start_campaign(spec, json)
}

/// Most real runs at once: each is a handful of processes (and a
/// PostgreSQL server for pg_ledger) on a machine's loopback.
const REAL_JOBS_MAX: u64 = 16;

/// `exactsim campaign`.
fn cmd_campaign(reg: &Registry, a: CampaignCmd) -> ExitCode {
    let CampaignCmd {
        scenario,
        seeds,
        first_seed,
        profile,
        mode,
        mutant,
        jobs,
        shard,
        budget,
        report,
        junit,
        check_determinism,
        max_artifacts,
        json,
    } = a;
    let spec = (|| -> Result<CampaignSpec, String> {
        let budget = budget.map(|b| parse_budget(&b).map(|d| (b.clone(), d))).transpose()?;
        let shard = shard.as_deref().map(resolve_shard).transpose()?;
        let first_seed = match (&first_seed, &budget, shard) {
            (Some(f), _, _) => parse_seed(f)?,
            (None, None, _) => 0,
            (None, Some(_), None) => random_seed()?,
            (None, Some(_), Some(_)) => {
                return Err("--budget with --shard needs --first-seed (the shards of one campaign share it)".into())
            }
        };
        let seeds = match (&seeds, &budget) {
            (Some(n), _) => parse_count(n, "seed count", crate::campaign::SEEDS_MAX)?,
            (None, None) => 100,
            (None, Some(_)) => crate::campaign::SEEDS_MAX,
        };
        Ok(CampaignSpec {
            scenarios: reg.select(&scenario)?,
            seeds,
            first_seed,
            profile: Profile::resolve(&profile)?,
            profile_arg: profile.clone(),
            mode: parse_mode(&mode)?,
            mutant: mutant.as_deref().map(parse_mutant).transpose()?,
            jobs: parse_count(&jobs, "job count", crate::campaign::JOBS_MAX as u64)? as usize,
            shard,
            budget,
            report_dir: report,
            junit,
            check_determinism,
            progress: true,
            max_artifacts,
            backend: crate::campaign::Backend::Simulated,
        })
    })();
    start_campaign(spec, json)
}

/// `exactsim run`.
fn cmd_run(reg: &Registry, a: RunCmd) -> ExitCode {
    let RunCmd { args, trace, timeline, check_determinism, save_replay, json } = a;
    let mut spec = match run_spec(reg, &args) {
        Ok(s) => s,
        Err(e) => return usage(e),
    };
    // An output that cannot be a file is refused before the run.
    for p in [&trace, &save_replay, &timeline].into_iter().flatten() {
        if p.is_dir() {
            return usage(format!("cannot write {}: it is a directory", p.display()));
        }
    }
    spec.keep_chain = check_determinism;
    let out = run_one(spec.clone(), &args.profile);
    output::print_outcome(&out, json);
    // Every output or none: a run that exits 2 on one unwritable
    // output leaves no other behind.
    let mut files: Vec<(&std::path::Path, String)> = Vec::new();
    if let Some(p) = &trace {
        files.push((p, artifacts::trace_text(&out)));
    }
    if let Some(p) = &save_replay {
        files.push((p, ReplayFile::from_outcome(&out, &args.profile).to_json()));
    }
    if let Some(p) = &timeline {
        files.push((p, timeline::page(&out)));
    }
    let pairs: Vec<(&std::path::Path, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
    let errors: Vec<String> = artifacts::write_all(&pairs).err().into_iter().collect();
    let mut code = out.report.verdict.exit_code();
    if check_determinism {
        // A result, printed with the run line; stdout is the JSON
        // document with --json.
        let say = |line: String| if json { eprintln!("{line}") } else { println!("{line}") };
        let again = run_one(spec, &args.profile);
        match exactsim_sim::runner::first_divergence(&out.result, &again.result) {
            // Exit 2 on an output is one line on stderr: that one.
            None if json && !errors.is_empty() => {}
            None => say(format!("determinism: ok, both runs trace_hash={}", again.report.trace_hash)),
            Some(d) => {
                say(format!("determinism: FAILED: the runs diverge at event {}", d.index));
                say(format!("  first run:  {:?}", d.first));
                say(format!("  second run: {:?}", d.second));
                code = 1;
            }
        }
    }
    finish(code, &errors)
}

/// `exactsim replay`.
fn cmd_replay(reg: &Registry, a: ReplayCmd) -> ExitCode {
    let ReplayCmd { file, strict_version } = a;
    let f = match ReplayFile::load(&file.to_string_lossy()) {
        Ok(f) => f,
        Err(e) => return usage(e),
    };
    let warning = f.version_warning();
    if let (Some(w), true) = (&warning, strict_version) {
        return usage(format!("{}: {w} (--strict-version)", file.display()));
    }
    // A refused file prints its refusal only: the warning is for a
    // file that runs.
    let spec = match reg.get(&f.scenario).and_then(|sc| f.to_spec_with(sc)) {
        Ok(s) => s,
        Err(e) => return usage(format!("{}: {e}", file.display())),
    };
    if let Some(w) = warning {
        eprintln!("warning: {}: {w}", file.display());
    }
    let mut out = run_one(spec, &f.profile);
    // The file's explicit schedule, not the seed's, made this run.
    out.report.repro = format!("{} replay {}", output::report_cli(), file.display());
    output::print_outcome(&out, false);
    let mismatch = f.mismatch(&out);
    let result = match &mismatch {
        None => "reproduced".to_string(),
        Some(why) => format!("NOT reproduced: {why}"),
    };
    match &f.check {
        Some(check) => println!(
            "replay: recorded failure {check}{} {result}",
            f.panic_site.as_ref().map(|s| format!(" at {s}")).unwrap_or_default(),
        ),
        None => println!("replay: recorded pass {result}"),
    }
    ExitCode::from(if mismatch.is_none() && out.report.verdict.is_pass() {
        0
    } else {
        // A failure as recorded, a failure not recorded, or a
        // recorded failure that did not come back: each is a 1.
        1
    })
}

/// `exactsim shrink`.
fn cmd_shrink(reg: &Registry, a: ShrinkCmd) -> ExitCode {
    let ShrinkCmd { args, out, max_runs, schedule, jobs } = a;
    let spec = match run_spec(reg, &args).and_then(|mut s| {
        if let Some(path) = &schedule {
            let sched = crate::replay::load_schedule(path)?;
            crate::validate_schedule(&s, &sched).map_err(|e| format!("{}: {e}", path.display()))?;
            s.schedule = Some(sched);
        }
        Ok(s)
    }) {
        Ok(s) => s,
        Err(e) => return usage(e),
    };
    let max_runs = match parse_count(&max_runs, "run budget", 100_000) {
        Ok(n) => n as usize,
        Err(e) => return usage(e),
    };
    let jobs = match parse_count(&jobs, "job count", crate::campaign::JOBS_MAX as u64) {
        Ok(n) => n as usize,
        Err(e) => return usage(e),
    };
    match shrink(spec, &args.profile, max_runs, jobs) {
        Ok(r) => {
            println!(
                "shrunk {} fault events to {} in {} runs ({} made, {jobs} at a time); check {} still fails; writing {}",
                r.original_events,
                r.file.schedule.events.len(),
                r.runs,
                r.runs_made,
                r.file.check.as_deref().unwrap_or("?"),
                out.display()
            );
            for e in &r.file.schedule.events {
                println!("  {}", e.describe());
            }
            if let Err(e) = artifacts::write_file(&out, &r.file.to_json()) {
                // The run failed; the file is what could not be made.
                return finish(1, &[e]);
            }
            println!("replay with: {} replay {}", output::invocation(), out.display());
            ExitCode::SUCCESS
        }
        Err(e) => usage(e),
    }
}

/// The saved corpora `explore --corpus` starts from, as (scenario index,
/// seed, schedule); a file that is unreadable, malformed, names a
/// scenario not explored, or holds a schedule invalid for its run is
/// refused whole.
fn load_corpora(
    files: &[PathBuf],
    scenarios: &[Arc<dyn Scenario>],
) -> Result<Vec<(usize, u64, exactsim_model::schedule::Schedule)>, String> {
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| format!("corpus {}: {e}", f.display()))?;
        let c: crate::explore::CorpusFile =
            serde_json::from_str(&text).map_err(|e| format!("corpus {}: not a corpus file: {e}", f.display()))?;
        if c.code_version != crate::code_version() {
            eprintln!(
                "warning: corpus {} is from other code ({}); its schedules are explicit and run as saved",
                f.display(),
                c.code_version
            );
        }
        for r in c.runs {
            let i = scenarios.iter().position(|s| s.name() == r.scenario).ok_or_else(|| {
                format!("corpus {}: scenario '{}' is not among those explored", f.display(), r.scenario)
            })?;
            let none = Profile::named("none").expect("built-in profile");
            let sp = crate::spec(scenarios[i].clone(), r.seed, none, DeliveryMode::ExactlyOnce, None);
            let workers = exactsim_model::run::derive_config(&sp).parallelism;
            r.schedule
                .validate(workers, scenarios[i].pipeline().system().is_some())
                .map_err(|e| format!("corpus {}: {} seed {}: {e}", f.display(), r.scenario, r.seed))?;
            out.push((i, r.seed, r.schedule));
        }
    }
    Ok(out)
}

/// `exactsim explore`.
fn cmd_explore(reg: &Registry, a: ExploreCmd) -> ExitCode {
    let ExploreCmd { scenario, profile, mode, mutant, runs, first_seed, seed, report, budget, jobs, shard, corpus } = a;
    let args = (|| -> Result<_, String> {
        let first = parse_seed(&first_seed)?;
        let scenarios = reg.select(&scenario)?;
        let resume = load_corpora(&corpus, &scenarios)?;
        Ok((
            scenarios,
            exactsim_model::schedule::Profile::resolve(&profile)?,
            crate::parse_mode(&mode)?,
            mutant.as_deref().map(crate::parse_mutant).transpose()?,
            parse_count(&runs, "run count", crate::campaign::SEEDS_MAX)?,
            first,
            seed.as_deref().map(parse_seed).transpose()?.unwrap_or(first),
            budget.as_deref().map(parse_budget).transpose()?,
            parse_count(&jobs, "job count", 256)? as usize,
            shard.as_deref().map(resolve_shard).transpose()?,
            resume,
        ))
    })();
    let (scenarios, prof, mode, mutant, runs, first, seed, deadline, jobs, shard, resume) = match args {
        Ok(a) => a,
        Err(e) => return usage(e),
    };
    if let Some(dir) = &report {
        if let Err(e) = crate::artifacts::create_dir(dir) {
            return usage(e);
        }
    }
    let x = crate::explore::Explore {
        scenarios,
        profile: prof,
        profile_arg: profile.clone(),
        mode,
        mutant,
        budget: runs,
        first_seed: first,
        seed,
        stop_at_failure: true,
        jobs,
        shard,
        deadline,
        resume,
    };
    let rep = x.run();
    println!(
        "explored runs={} derived={} corpus={} features={}",
        rep.runs,
        rep.derived_runs,
        rep.corpus.len(),
        rep.features.len()
    );
    let reached = rep.reached();
    let never = crate::campaign_report::never_reached(&reached);
    print!("{}", crate::campaign::reach_line_of(&never));
    if let Some(dir) = &report {
        let summary = serde_json::json!({
            "runs": rep.runs,
            "derived_runs": rep.derived_runs,
            "corpus": rep.corpus.len(),
            "reached": reached,
            "never_reached": never,
            "features": rep.features,
            "failure": rep.failure.as_ref().map(|(n, out)| serde_json::json!({
                "after_runs": n,
                "origin": rep.failure_origin.map(|o| o.name()),
                "scenario": out.report.scenario,
                "seed": out.report.seed,
                "violations": out.report.violations,
            })),
        });
        let corpus = serde_json::to_string_pretty(&rep.corpus_file(&x)).expect("serializable");
        let summary = serde_json::to_string_pretty(&summary).expect("serializable");
        for (name, text) in [("corpus.json", corpus), ("explore.json", summary)] {
            if let Err(e) = crate::artifacts::write_file(&dir.join(name), &text) {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
        println!("corpus and summary written to {}", dir.display());
    }
    match &rep.failure {
        None => {
            println!("verdict=pass (no failure in {} runs)", rep.runs);
            ExitCode::SUCCESS
        }
        Some((n, out)) => {
            // Not the seed's reproduce line: the run's faults are
            // the explorer's, an explicit schedule.
            println!("{}", out.report.summary_line());
            for v in &out.report.violations {
                println!("{}", crate::output::violation_line(v));
            }
            println!("found after {n} runs");
            let replay = crate::replay::ReplayFile::from_outcome(out, &profile);
            if let Some(dir) = &report {
                let path = dir.join(format!("explore-{}-{}.json", out.report.scenario, out.report.seed));
                if let Err(e) = crate::artifacts::write_file(&path, &replay.to_json()) {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
                let (cli, r) = (output::invocation(), &out.report);
                let mutant = r.mutant.as_ref().map(|m| format!(" --mutant {m}")).unwrap_or_default();
                println!("replay with: {cli} replay {}", path.display());
                println!("next steps:");
                println!("  replay it:          {cli} replay {}", path.display());
                println!(
                        "  shrink the faults:  {cli} shrink --scenario {} --seed {} --profile {profile} --mode {}{mutant} --schedule {} --out min.json",
                        r.scenario,
                        r.seed,
                        r.mode,
                        path.display()
                    );
                println!("  replay the minimum: {cli} replay min.json");
                println!(
                    "  then keep it:       cp min.json tests/corpus/{}-{}.json   (cargo test replays it)",
                    r.scenario, r.seed
                );
            } else {
                println!("(--report DIR writes its replay file: the run's faults are an explicit schedule)");
            }
            ExitCode::from(1)
        }
    }
}

/// `exactsim bench`.
fn cmd_bench(a: BenchCmd) -> ExitCode {
    let BenchCmd { seeds, quick, csv, only } = a;
    let n = match parse_count(&seeds, "seed count", 100_000) {
        Ok(n) => n,
        Err(e) => return usage(e),
    };
    if let Some(part) = only {
        if let Some(path) = &csv {
            return usage(format!(
                "--csv {} writes the scaling sweep, which --only {part} does not run (drop one of them)",
                path.display()
            ));
        }
        return match crate::bench::only(&part, n, quick) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => usage(e),
        };
    }
    let (text, points) = crate::bench::run(n, quick);
    print!("{text}");
    if let Some(path) = csv {
        if let Err(e) = crate::artifacts::write_file(&path, &crate::bench::csv(&points)) {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}

/// Check a campaign's specification against its runs' nodes and its output
/// paths (failing fast, before the campaign spends its time), run it on
/// its backend, print it, and exit with its verdict. A real campaign owns
/// processes: its signals are handled patiently.
fn start_campaign(spec: Result<CampaignSpec, String>, json: bool) -> ExitCode {
    let spec = match spec.and_then(|s| {
        let seeds = crate::campaign::ShardSeeds::new(s.first_seed, s.seeds, s.shard);
        check_campaign_nodes(&s.scenarios, &seeds, &s.profile, &s.profile_arg, s.mode)?;
        Ok(s)
    }) {
        Ok(s) => s,
        Err(e) => return usage(e),
    };
    if let Some(dir) = &spec.report_dir {
        if let Err(e) = artifacts::create_dir(dir) {
            return usage(e);
        }
    }
    if let Some(j) = spec.junit.as_ref().filter(|j| j.is_dir()) {
        return usage(format!("cannot write {}: it is a directory", j.display()));
    }
    match spec.backend {
        crate::campaign::Backend::Simulated => interrupt::install(),
        crate::campaign::Backend::Real(_) => interrupt::install_patient(),
    }
    let rep = match run_campaign(&spec) {
        Ok(r) => r,
        Err(e) => return usage(e),
    };
    output::print_campaign(&rep, json, spec.report_dir.as_deref());
    if let Some(b) = rep.budget.as_ref().filter(|_| !json) {
        let shard = rep.shard.as_ref().map(|s| format!(" --shard {s}")).unwrap_or_default();
        println!("continuous: budget {b}, got through --first-seed {} --seeds {}{shard}", rep.first_seed, rep.seeds);
    }
    if rep.interrupted {
        return finish(interrupt::EXIT_INTERRUPTED, &rep.write_errors);
    }
    finish(rep.verdict.exit_code(), &rep.write_errors)
}
