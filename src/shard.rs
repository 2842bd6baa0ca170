//! `campaign --shard auto`: which shard of how many this machine runs, read
//! from the environment of the scheduler that started it.
//!
//! | scheduler | index (base) | count |
//! |---|---|---|
//! | GitLab CI `parallel:` | `CI_NODE_INDEX` (1) | `CI_NODE_TOTAL` |
//! | Buildkite `parallelism:` | `BUILDKITE_PARALLEL_JOB` (0) | `BUILDKITE_PARALLEL_JOB_COUNT` |
//! | CircleCI `parallelism:` | `CIRCLE_NODE_INDEX` (0) | `CIRCLE_NODE_TOTAL` |
//! | Kubernetes Indexed Job | `JOB_COMPLETION_INDEX` (0) | `EXACTSIM_SHARD_COUNT` (set it to `spec.completions`) |
//! | Slurm job array | `SLURM_ARRAY_TASK_ID` | `SLURM_ARRAY_TASK_COUNT` |
//!
//! A Slurm array may start anywhere and step (`--array=0-6:2`): the shard is
//! `(ID - SLURM_ARRAY_TASK_MIN) / SLURM_ARRAY_TASK_STEP + 1`. GitHub Actions
//! has no such variables: pass `--shard ${{ matrix.shard }}/N`.
//!
//! Exactly one convention must be present. A convention counts as present
//! when any of its variables is set, except GitLab's `CI_NODE_TOTAL=1`
//! alone, which GitLab sets in every job without `parallel:`. Absent,
//! ambiguous, malformed or out-of-range values are errors naming the
//! variable.

/// One scheduler's convention.
struct Convention {
    name: &'static str,
    index: &'static str,
    count: &'static str,
    /// The value of `index` for the first shard.
    base: u64,
}

const CONVENTIONS: [Convention; 4] = [
    Convention { name: "GitLab CI", index: "CI_NODE_INDEX", count: "CI_NODE_TOTAL", base: 1 },
    Convention { name: "Buildkite", index: "BUILDKITE_PARALLEL_JOB", count: "BUILDKITE_PARALLEL_JOB_COUNT", base: 0 },
    Convention { name: "CircleCI", index: "CIRCLE_NODE_INDEX", count: "CIRCLE_NODE_TOTAL", base: 0 },
    Convention {
        name: "Kubernetes Indexed Job",
        index: "JOB_COMPLETION_INDEX",
        count: "EXACTSIM_SHARD_COUNT",
        base: 0,
    },
];

const SLURM_ID: &str = "SLURM_ARRAY_TASK_ID";
const SLURM_MIN: &str = "SLURM_ARRAY_TASK_MIN";
const SLURM_STEP: &str = "SLURM_ARRAY_TASK_STEP";
const SLURM_COUNT: &str = "SLURM_ARRAY_TASK_COUNT";

/// Every variable `--shard auto` reads, for error messages and docs.
pub fn variables() -> Vec<&'static str> {
    let mut v: Vec<&str> = CONVENTIONS.iter().flat_map(|c| [c.index, c.count]).collect();
    v.extend([SLURM_ID, SLURM_MIN, SLURM_STEP, SLURM_COUNT]);
    v
}

fn number(get: &dyn Fn(&str) -> Option<String>, var: &str) -> Result<u64, String> {
    let v = get(var).ok_or_else(|| format!("--shard auto: {var} is not set"))?;
    v.trim()
        .parse::<u64>()
        .map_err(|_| format!("--shard auto: malformed {var}='{v}' (expected a non-negative integer)"))
}

/// The shard `(k, n)`, 1 <= k <= n, from the environment, read through
/// `get` (the process environment in the CLI, a map in tests).
pub fn from_env(get: &dyn Fn(&str) -> Option<String>) -> Result<(u64, u64), String> {
    let set = |v: &str| get(v).is_some();
    let mut present: Vec<&'static str> = Vec::new();
    for c in &CONVENTIONS {
        let gitlab_without_parallel =
            c.index == "CI_NODE_INDEX" && !set(c.index) && get(c.count).is_some_and(|v| v.trim() == "1");
        if (set(c.index) || set(c.count)) && !gitlab_without_parallel {
            present.push(c.name);
        }
    }
    if [SLURM_ID, SLURM_MIN, SLURM_STEP, SLURM_COUNT].iter().any(|v| set(v)) {
        present.push("Slurm job array");
    }
    match present.len() {
        0 => {
            return Err(format!(
                "--shard auto: no shard in the environment (none of {} is set; pass --shard K/N instead)",
                variables().join(", ")
            ))
        }
        1 => {}
        _ => return Err(format!("--shard auto: ambiguous environment: {} are all set", present.join(" and "))),
    }
    if present[0] == "Slurm job array" {
        return slurm(get);
    }
    let c = CONVENTIONS.iter().find(|c| c.name == present[0]).expect("a known convention");
    let n = number(get, c.count)?;
    if n == 0 {
        return Err(format!("--shard auto: {}=0 is out of range (expected at least 1)", c.count));
    }
    let i = number(get, c.index)?;
    if i < c.base || i - c.base >= n {
        return Err(format!(
            "--shard auto: {}={i} is out of range for {}={n} (expected {}..={})",
            c.index,
            c.count,
            c.base,
            n - 1 + c.base
        ));
    }
    Ok((i - c.base + 1, n))
}

fn slurm(get: &dyn Fn(&str) -> Option<String>) -> Result<(u64, u64), String> {
    let id = number(get, SLURM_ID)?;
    let min = number(get, SLURM_MIN)?;
    let step = number(get, SLURM_STEP)?;
    let n = number(get, SLURM_COUNT)?;
    if step == 0 {
        return Err(format!("--shard auto: {SLURM_STEP}=0 is out of range (expected at least 1)"));
    }
    if n == 0 {
        return Err(format!("--shard auto: {SLURM_COUNT}=0 is out of range (expected at least 1)"));
    }
    if id < min || (id - min) % step != 0 || (id - min) / step >= n {
        return Err(format!(
            "--shard auto: {SLURM_ID}={id} is out of range for {SLURM_MIN}={min} {SLURM_STEP}={step} \
             {SLURM_COUNT}={n} (an array like --array=A-B:S with no gaps is expected)"
        ));
    }
    Ok(((id - min) / step + 1, n))
}

/// The process environment, for `from_env`.
pub fn process_env(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn shard(vars: &[(&str, &str)]) -> Result<(u64, u64), String> {
        let m: BTreeMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        from_env(&|k| m.get(k).cloned())
    }

    fn err(vars: &[(&str, &str)], needle: &str) {
        let e = shard(vars).expect_err("must be refused");
        assert!(e.contains(needle), "expected '{needle}' in: {e}");
        assert!(!e.contains('\n'), "one line: {e}");
    }

    #[test]
    fn gitlab_is_one_based() {
        assert_eq!(shard(&[("CI_NODE_INDEX", "1"), ("CI_NODE_TOTAL", "4")]), Ok((1, 4)));
        assert_eq!(shard(&[("CI_NODE_INDEX", "4"), ("CI_NODE_TOTAL", "4")]), Ok((4, 4)));
        err(&[("CI_NODE_INDEX", "0"), ("CI_NODE_TOTAL", "4")], "CI_NODE_INDEX=0 is out of range");
        err(&[("CI_NODE_INDEX", "5"), ("CI_NODE_TOTAL", "4")], "CI_NODE_INDEX=5 is out of range");
        err(&[("CI_NODE_INDEX", "2")], "CI_NODE_TOTAL is not set");
        err(&[("CI_NODE_INDEX", "two"), ("CI_NODE_TOTAL", "4")], "malformed CI_NODE_INDEX='two'");
        err(&[("CI_NODE_TOTAL", "3")], "CI_NODE_INDEX is not set");
        // A GitLab job without `parallel:` has CI_NODE_TOTAL=1 and no index:
        // no shard there.
        err(&[("CI_NODE_TOTAL", "1")], "no shard in the environment");
    }

    #[test]
    fn buildkite_is_zero_based() {
        let v = |i: &str| shard(&[("BUILDKITE_PARALLEL_JOB", i), ("BUILDKITE_PARALLEL_JOB_COUNT", "3")]);
        assert_eq!(v("0"), Ok((1, 3)));
        assert_eq!(v("2"), Ok((3, 3)));
        err(
            &[("BUILDKITE_PARALLEL_JOB", "3"), ("BUILDKITE_PARALLEL_JOB_COUNT", "3")],
            "BUILDKITE_PARALLEL_JOB=3 is out of range for BUILDKITE_PARALLEL_JOB_COUNT=3 (expected 0..=2)",
        );
        err(&[("BUILDKITE_PARALLEL_JOB", "0")], "BUILDKITE_PARALLEL_JOB_COUNT is not set");
        err(
            &[("BUILDKITE_PARALLEL_JOB", "0"), ("BUILDKITE_PARALLEL_JOB_COUNT", "0")],
            "BUILDKITE_PARALLEL_JOB_COUNT=0",
        );
    }

    #[test]
    fn circleci_is_zero_based() {
        assert_eq!(shard(&[("CIRCLE_NODE_INDEX", "0"), ("CIRCLE_NODE_TOTAL", "1")]), Ok((1, 1)));
        assert_eq!(shard(&[("CIRCLE_NODE_INDEX", "5"), ("CIRCLE_NODE_TOTAL", "8")]), Ok((6, 8)));
        err(&[("CIRCLE_NODE_INDEX", "8"), ("CIRCLE_NODE_TOTAL", "8")], "CIRCLE_NODE_INDEX=8 is out of range");
        err(&[("CIRCLE_NODE_INDEX", "-1"), ("CIRCLE_NODE_TOTAL", "8")], "malformed CIRCLE_NODE_INDEX='-1'");
    }

    #[test]
    fn kubernetes_indexed_job_needs_the_documented_count() {
        assert_eq!(shard(&[("JOB_COMPLETION_INDEX", "0"), ("EXACTSIM_SHARD_COUNT", "4")]), Ok((1, 4)));
        assert_eq!(shard(&[("JOB_COMPLETION_INDEX", "3"), ("EXACTSIM_SHARD_COUNT", "4")]), Ok((4, 4)));
        err(&[("JOB_COMPLETION_INDEX", "0")], "EXACTSIM_SHARD_COUNT is not set");
        err(&[("JOB_COMPLETION_INDEX", "4"), ("EXACTSIM_SHARD_COUNT", "4")], "JOB_COMPLETION_INDEX=4 is out of range");
    }

    #[test]
    fn slurm_arrays_with_offset_and_step() {
        let s = |id: &str, min: &str, step: &str, count: &str| {
            shard(&[
                ("SLURM_ARRAY_TASK_ID", id),
                ("SLURM_ARRAY_TASK_MIN", min),
                ("SLURM_ARRAY_TASK_STEP", step),
                ("SLURM_ARRAY_TASK_COUNT", count),
            ])
        };
        // --array=1-4
        assert_eq!(s("1", "1", "1", "4"), Ok((1, 4)));
        assert_eq!(s("4", "1", "1", "4"), Ok((4, 4)));
        // --array=0-6:2 is four tasks 0, 2, 4, 6
        assert_eq!(s("0", "0", "2", "4"), Ok((1, 4)));
        assert_eq!(s("6", "0", "2", "4"), Ok((4, 4)));
        // --array=1,3,7 is not a regular array: 7 has no place in 3 tasks.
        assert!(s("7", "1", "1", "3").unwrap_err().contains("SLURM_ARRAY_TASK_ID=7 is out of range"));
        assert!(s("3", "0", "2", "4").unwrap_err().contains("SLURM_ARRAY_TASK_ID=3 is out of range"));
        assert!(s("0", "1", "1", "4").unwrap_err().contains("SLURM_ARRAY_TASK_ID=0 is out of range"));
        assert!(s("1", "1", "0", "4").unwrap_err().contains("SLURM_ARRAY_TASK_STEP=0"));
        err(&[("SLURM_ARRAY_TASK_ID", "1"), ("SLURM_ARRAY_TASK_MIN", "1")], "SLURM_ARRAY_TASK_STEP is not set");
        err(&[("SLURM_ARRAY_TASK_COUNT", "4")], "SLURM_ARRAY_TASK_ID is not set");
    }

    #[test]
    fn absent_and_ambiguous_environments_are_refused() {
        err(&[], "no shard in the environment");
        err(&[("GITHUB_ACTIONS", "true")], "pass --shard K/N instead");
        err(
            &[("CI_NODE_INDEX", "1"), ("CI_NODE_TOTAL", "2"), ("SLURM_ARRAY_TASK_ID", "1")],
            "ambiguous environment: GitLab CI and Slurm job array",
        );
        err(
            &[("CIRCLE_NODE_INDEX", "0"), ("CIRCLE_NODE_TOTAL", "2"), ("JOB_COMPLETION_INDEX", "0")],
            "CircleCI and Kubernetes Indexed Job",
        );
        // GitLab's lone CI_NODE_TOTAL=1 does not make a Slurm task ambiguous.
        assert_eq!(
            shard(&[
                ("CI_NODE_TOTAL", "1"),
                ("SLURM_ARRAY_TASK_ID", "2"),
                ("SLURM_ARRAY_TASK_MIN", "1"),
                ("SLURM_ARRAY_TASK_STEP", "1"),
                ("SLURM_ARRAY_TASK_COUNT", "2"),
            ]),
            Ok((2, 2))
        );
    }
}
