//! `exactsim`: deterministic simulation testing of exactly-once stream
//! processing. See README.md. Exit codes: 0 every check held, 1 a violation
//! (or an escaped mutant), 2 bad usage or bad input.

use clap::{Parser, Subcommand};
use exactsim::campaign::{run_campaign, summary_table, CampaignSpec};
use exactsim::replay::{shrink, ReplayFile};
use exactsim::*;
use exactsim_engine::config::Mutant;
use exactsim_sim::schedule::Profile;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "exactsim", version = env!("EXACTSIM_CODE_VERSION"), about = "Deterministic simulation testing of exactly-once stream processing")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
struct RunArgs {
    #[arg(long)]
    scenario: String,
    /// Decimal or 0x-hex.
    #[arg(long)]
    seed: String,
    /// none, crash, partition, slow-disk, disk, chaos, or a TOML file.
    #[arg(long, default_value = "chaos")]
    profile: String,
    /// exactly-once or at-least-once.
    #[arg(long, default_value = "exactly-once")]
    mode: String,
    /// A planted bug to switch on (see `mutants --list`).
    #[arg(long)]
    mutant: Option<String>,
}

#[derive(Subcommand)]
enum Cmd {
    /// List the scenarios.
    Scenarios,
    /// Run one seed of one scenario and check it.
    Run {
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
    },
    /// Run many seeds of one or all scenarios.
    Campaign {
        #[arg(long, default_value = "all")]
        scenario: String,
        /// Seeds to run (default 100); with --budget, at most this many.
        #[arg(long)]
        seeds: Option<String>,
        /// Default 0; with --budget, a random start recorded in the report.
        #[arg(long)]
        first_seed: Option<String>,
        #[arg(long, default_value = "chaos")]
        profile: String,
        #[arg(long, default_value = "exactly-once")]
        mode: String,
        #[arg(long)]
        mutant: Option<String>,
        #[arg(long, default_value = "2")]
        jobs: String,
        /// K/N: run the K-th of N shards of the seeds; `auto` reads it from
        /// the scheduler's environment (GitLab, Buildkite, CircleCI,
        /// Kubernetes Indexed Job, Slurm array).
        #[arg(long)]
        shard: Option<String>,
        /// Continuous mode: run new seeds until this much time is spent
        /// (30s, 10m, 2h).
        #[arg(long)]
        budget: Option<String>,
        #[arg(long)]
        report: Option<PathBuf>,
        #[arg(long)]
        junit: Option<PathBuf>,
        #[arg(long)]
        check_determinism: bool,
        /// Print the campaign report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check and merge the shard reports of one campaign.
    Merge {
        /// Shard report directories (each holding a campaign.json).
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Directory for the merged campaign.json and failure artifacts.
        #[arg(long)]
        report: PathBuf,
        #[arg(long)]
        junit: Option<PathBuf>,
    },
    /// Re-run a replay file (from `shrink`, or saved for a failing seed).
    Replay { file: PathBuf },
    /// Minimise the fault schedule of a failing run.
    Shrink {
        #[command(flatten)]
        args: RunArgs,
        #[arg(long)]
        out: PathBuf,
        /// Upper bound on simulation runs spent shrinking.
        #[arg(long, default_value = "300")]
        max_runs: usize,
    },
    /// Run every planted bug through a campaign and report detection.
    Mutants {
        #[arg(long, default_value = "all")]
        scenario: String,
        #[arg(long, default_value = "200")]
        seeds: String,
        #[arg(long)]
        list: bool,
        #[arg(long, default_value = "0")]
        first_seed: String,
    },
    /// Measure campaign speed and engine overhead.
    Bench {
        #[arg(long, default_value = "20")]
        seeds: String,
    },
}

fn usage(msg: String) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

fn parse_count(s: &str, what: &str) -> Result<u64, String> {
    s.trim().parse::<u64>().map_err(|_| format!("malformed {what} '{s}' (expected a non-negative integer)"))
}

fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let bad = || format!("malformed shard '{s}' (expected K/N with 1 <= K <= N)");
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (k, n) = (k.parse::<u64>().map_err(|_| bad())?, n.parse::<u64>().map_err(|_| bad())?);
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

fn resolve_shard(s: &str) -> Result<(u64, u64), String> {
    if s == "auto" {
        exactsim::shard::from_env(&exactsim::shard::process_env)
    } else {
        parse_shard(s)
    }
}

fn run_spec(a: &RunArgs) -> Result<exactsim_sim::world::RunSpec, String> {
    let sc = resolve_scenario(&a.scenario)?;
    let seed = parse_seed(&a.seed)?;
    let prof = Profile::resolve(&a.profile)?;
    let mode = parse_mode(&a.mode)?;
    let mutant = a.mutant.as_deref().map(parse_mutant).transpose()?;
    Ok(spec(sc, seed, prof, mode, mutant))
}

fn print_outcome(out: &exactsim_sim::runner::Outcome, json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(&out.report).unwrap());
        return;
    }
    println!("{}", out.report.summary_line());
    for v in &out.report.violations {
        let t = v.t_ms.map(|t| format!(" at {t:.1}ms")).unwrap_or_default();
        println!("  {}{} {}", v.check, t, v.message);
    }
    if !out.report.violations.is_empty() {
        println!("  reproduce: {}", out.report.repro);
    }
}

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`exactsim ... | head`), like other CLI tools.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.cmd {
        Cmd::Scenarios => {
            for s in exactsim_scenarios::all() {
                println!("{:<14} {}", s.name(), s.description());
            }
            ExitCode::SUCCESS
        }
        Cmd::Run { args, trace, timeline, check_determinism, save_replay, json } => {
            let mut spec = match run_spec(&args) {
                Ok(s) => s,
                Err(e) => return usage(e),
            };
            spec.keep_chain = check_determinism;
            let out = run_one(spec.clone(), &args.profile);
            print_outcome(&out, json);
            if let Some(p) = &trace {
                if let Err(e) = artifacts::write_file(p, &artifacts::trace_text(&out)) {
                    return usage(e);
                }
            }
            if let Some(p) = &save_replay {
                if let Err(e) = artifacts::write_file(p, &ReplayFile::from_outcome(&out, &args.profile).to_json()) {
                    return usage(e);
                }
            }
            if let Some(p) = &timeline {
                let title = format!("{} seed {} {}", out.report.scenario, out.report.seed, out.report.profile);
                if let Err(e) =
                    artifacts::write_file(p, &timeline::render(&out.result.history, &out.report.violations, &title))
                {
                    return usage(e);
                }
            }
            let mut code = if out.report.verdict == "pass" { 0 } else { 1 };
            if check_determinism {
                let again = run_one(spec, &args.profile);
                match exactsim_sim::runner::first_divergence(&out.result, &again.result) {
                    None => eprintln!("determinism: ok, both runs trace_hash={}", again.report.trace_hash),
                    Some(d) => {
                        eprintln!("determinism: FAILED: the runs diverge at event {}", d.index);
                        eprintln!("  first run:  {:?}", d.first);
                        eprintln!("  second run: {:?}", d.second);
                        code = 1;
                    }
                }
            }
            ExitCode::from(code)
        }
        Cmd::Campaign {
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
            json,
        } => {
            let spec = (|| -> Result<CampaignSpec, String> {
                let budget = budget.map(|b| parse_budget(&b).map(|d| (b.clone(), d))).transpose()?;
                let shard = shard.as_deref().map(resolve_shard).transpose()?;
                let first_seed = match (&first_seed, &budget, shard) {
                    (Some(f), _, _) => parse_seed(f)?,
                    (None, None, _) => 0,
                    (None, Some(_), None) => random_seed()?,
                    (None, Some(_), Some(_)) => {
                        return Err(
                            "--budget with --shard needs --first-seed (the shards of one campaign share it)".into()
                        )
                    }
                };
                let seeds = match (&seeds, &budget) {
                    (Some(n), _) => parse_count(n, "seed count")?,
                    (None, None) => 100,
                    (None, Some(_)) => u64::MAX,
                };
                Ok(CampaignSpec {
                    scenarios: resolve_scenarios(&scenario)?,
                    seeds,
                    first_seed,
                    profile: Profile::resolve(&profile)?,
                    profile_arg: profile.clone(),
                    mode: parse_mode(&mode)?,
                    mutant: mutant.as_deref().map(parse_mutant).transpose()?,
                    jobs: parse_count(&jobs, "job count")?.max(1) as usize,
                    shard,
                    budget,
                    report_dir: report,
                    junit,
                    check_determinism,
                    progress: true,
                })
            })();
            let spec = match spec {
                Ok(s) => s,
                Err(e) => return usage(e),
            };
            // Fail fast on report paths that cannot be written, before the
            // campaign spends its time.
            if let Some(dir) = &spec.report_dir {
                if let Err(e) = artifacts::create_dir(dir) {
                    return usage(e);
                }
            }
            let rep = run_campaign(&spec);
            if json {
                println!("{}", serde_json::to_string_pretty(&rep).unwrap());
            } else {
                print!("{}", summary_table(&rep));
                for f in rep.failures.iter().take(10) {
                    let v = &f.violations[0];
                    println!("FAIL {} seed {}: {} {}", f.scenario, f.seed, v.check, v.message);
                    println!("  reproduce: {}", f.repro);
                }
            }
            if let Some(b) = &rep.budget {
                let shard = rep.shard.as_ref().map(|s| format!(" --shard {s}")).unwrap_or_default();
                println!(
                    "continuous: budget {b}, got through --first-seed {} --seeds {}{shard}",
                    rep.first_seed, rep.seeds
                );
            }
            if let Some(e) = rep.write_errors.first() {
                // The results are printed above; the files are not all there.
                return usage(format!("{e} ({} report file(s) not written)", rep.write_errors.len()));
            }
            ExitCode::from(if rep.verdict == "pass" { 0 } else { 1 })
        }
        Cmd::Merge { dirs, report, junit } => {
            let rep = match exactsim::merge::merge_dirs(&dirs, &report, junit.as_deref()) {
                Ok(m) => {
                    for w in &m.warnings {
                        eprintln!("warning: {w}");
                    }
                    m.report
                }
                Err(e) => return usage(e),
            };
            print!("{}", summary_table(&rep));
            for r in rep.runs.iter().filter(|r| r.verdict != "pass").take(10) {
                match rep.failures.iter().find(|f| f.scenario == r.scenario && f.seed == r.seed) {
                    Some(f) if !f.violations.is_empty() => {
                        let v = &f.violations[0];
                        println!("FAIL {} seed {}: {} {}", f.scenario, f.seed, v.check, v.message);
                        println!("  reproduce: {}", f.repro);
                    }
                    _ => println!("FAIL {} seed {}: {}", r.scenario, r.seed, r.checks_failed.join(" ")),
                }
            }
            println!("merged {} shard report(s) into {}", rep.merged_from.len(), report.display());
            if let Some(e) = rep.write_errors.first() {
                return usage(format!("{e} ({} report file(s) not written)", rep.write_errors.len()));
            }
            ExitCode::from(if rep.verdict == "pass" { 0 } else { 1 })
        }
        Cmd::Replay { file } => {
            let f = match ReplayFile::load(&file.to_string_lossy()) {
                Ok(f) => f,
                Err(e) => return usage(e),
            };
            let spec = match f.to_spec() {
                Ok(s) => s,
                Err(e) => return usage(format!("{}: {e}", file.display())),
            };
            let mut out = run_one(spec, &f.profile);
            // The file's explicit schedule, not the seed's, made this run.
            out.report.repro = format!("cargo run --release -- replay {}", file.display());
            print_outcome(&out, false);
            if let Some(check) = &f.check {
                let same = out.report.violations.iter().any(|v| &v.check == check);
                println!("replay: recorded failure {check} {}", if same { "reproduced" } else { "NOT reproduced" });
            }
            ExitCode::from(if out.report.verdict == "pass" { 0 } else { 1 })
        }
        Cmd::Shrink { args, out, max_runs } => {
            let spec = match run_spec(&args) {
                Ok(s) => s,
                Err(e) => return usage(e),
            };
            match shrink(spec, &args.profile, max_runs) {
                Ok(r) => {
                    if let Err(e) = artifacts::write_file(&out, &r.file.to_json()) {
                        return usage(e);
                    }
                    println!(
                        "shrunk {} fault events to {} in {} runs; check {} still fails; wrote {}",
                        r.original_events,
                        r.file.schedule.events.len(),
                        r.runs,
                        r.file.check.as_deref().unwrap_or("?"),
                        out.display()
                    );
                    for e in &r.file.schedule.events {
                        println!("  {}", e.describe());
                    }
                    println!("replay with: cargo run --release -- replay {}", out.display());
                    ExitCode::SUCCESS
                }
                Err(e) => usage(e),
            }
        }
        Cmd::Mutants { scenario, seeds, list, first_seed } => {
            if list {
                for m in Mutant::ALL {
                    println!("{}", m.name());
                }
                return ExitCode::SUCCESS;
            }
            let args = (|| -> Result<_, String> {
                Ok((resolve_scenarios(&scenario)?, parse_count(&seeds, "seed count")?, parse_seed(&first_seed)?))
            })();
            let (scenarios, seeds, first) = match args {
                Ok(a) => a,
                Err(e) => return usage(e),
            };
            let table = exactsim::mutants::hunt_all(&scenarios, seeds, first, true);
            print!("{}", exactsim::mutants::render(&table));
            ExitCode::from(if table.iter().all(|r| r.detected.is_some()) { 0 } else { 1 })
        }
        Cmd::Bench { seeds } => {
            let n = match parse_count(&seeds, "seed count") {
                Ok(n) => n,
                Err(e) => return usage(e),
            };
            print!("{}", exactsim::bench::run(n));
            ExitCode::SUCCESS
        }
    }
}
