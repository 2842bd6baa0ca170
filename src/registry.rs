//! The one list of scenarios the tool knows: the built-in ones
//! (`exactsim_scenarios::all()`) and a user's own, given to
//! [`crate::cli::main_with`]. Every command that takes a scenario name
//! (`run`, `campaign`, `replay`, `shrink`, `mutants`, `scenarios`, `real`)
//! looks it up here, and so do replay files (`ReplayFile::to_spec`) and
//! the timeline (a scenario's own checks).

use exactsim_model::scenario::Scenario;
use std::sync::{Arc, OnceLock};

/// What `--scenario` accepts besides a name: every scenario but those with
/// a planted bug of their own (`Scenario::planted_bug`).
pub const ALL: &str = "all";

pub struct Registry {
    scenarios: Vec<Arc<dyn Scenario>>,
    /// How many of `scenarios`, from the start, are the built-in ones.
    builtin: usize,
}

impl Registry {
    /// The built-in scenarios only.
    pub fn builtin() -> Registry {
        let scenarios = exactsim_scenarios::all();
        Registry { builtin: scenarios.len(), scenarios }
    }

    /// The built-in scenarios and `extra` after them. Every name must be
    /// unique and usable on a command line and in a file name; the error
    /// is one line naming the scenario.
    pub fn with_user(extra: Vec<Arc<dyn Scenario>>) -> Result<Registry, String> {
        let mut r = Registry::builtin();
        for sc in extra {
            let name = sc.name();
            if name == ALL {
                return Err(format!("scenario name '{ALL}' is taken: it means every scenario (rename yours)"));
            }
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)) {
                return Err(format!(
                    "scenario name '{name}' cannot be typed after --scenario or used in a file name (letters, \
                     digits, '_', '-' and '.' only)"
                ));
            }
            if r.is_builtin(name) {
                return Err(format!(
                    "scenario '{name}' clashes with the built-in scenario of that name (rename yours)"
                ));
            }
            if r.scenarios.iter().any(|s| s.name() == name) {
                return Err(format!("scenario '{name}' is given twice (each scenario needs its own name)"));
            }
            r.scenarios.push(sc);
        }
        Ok(r)
    }

    /// Every scenario, the built-in ones first.
    pub fn scenarios(&self) -> &[Arc<dyn Scenario>] {
        &self.scenarios
    }

    /// The user's scenarios (given to `main_with`).
    pub fn user(&self) -> &[Arc<dyn Scenario>] {
        &self.scenarios[self.builtin..]
    }

    pub fn is_builtin(&self, name: &str) -> bool {
        self.scenarios[..self.builtin].iter().any(|s| s.name() == name)
    }

    /// The scenario of that name; the error names every one there is.
    pub fn get(&self, name: &str) -> Result<Arc<dyn Scenario>, String> {
        self.scenarios.iter().find(|s| s.name() == name).cloned().ok_or_else(|| {
            let names: Vec<&str> = self.scenarios.iter().map(|s| s.name()).collect();
            format!("unknown scenario '{name}' (expected one of: {})", names.join(", "))
        })
    }

    /// `all` (every scenario without a planted bug of its own) or one name.
    pub fn select(&self, name: &str) -> Result<Vec<Arc<dyn Scenario>>, String> {
        if name == ALL {
            Ok(self.scenarios.iter().filter(|s| s.planted_bug().is_none()).cloned().collect())
        } else {
            Ok(vec![self.get(name)?])
        }
    }
}

static INSTALLED: OnceLock<Registry> = OnceLock::new();
static BUILTIN: OnceLock<Registry> = OnceLock::new();

/// Make `r` the registry of this process (`main_with` does, once); refused
/// if one is installed already.
pub fn install(r: Registry) -> Result<&'static Registry, String> {
    INSTALLED
        .set(r)
        .map_err(|_| "a scenario registry is installed already (main_with runs once a process)".to_string())?;
    Ok(current())
}

/// The registry of this process: the one `main_with` installed, else the
/// built-in scenarios (a lookup before `main_with`, such as a user's
/// scenario wrapping a built-in one, does not install anything).
pub fn current() -> &'static Registry {
    INSTALLED.get().unwrap_or_else(|| BUILTIN.get_or_init(Registry::builtin))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A built-in scenario under another name (or the same, to clash).
    struct Renamed(&'static str, Option<&'static str>);

    impl Scenario for Renamed {
        fn name(&self) -> &'static str {
            self.0
        }
        fn description(&self) -> &'static str {
            "word_count renamed"
        }
        fn generate(
            &self,
            rng: &mut exactsim_model::rng::SimRng,
            partitions: u32,
        ) -> Vec<Vec<exactsim_engine::types::Record>> {
            exactsim_scenarios::word_count::WordCount.generate(rng, partitions)
        }
        fn pipeline(&self) -> Arc<dyn exactsim_engine::pipeline::Pipeline> {
            exactsim_scenarios::word_count::WordCount.pipeline()
        }
        fn reference(
            &self,
            input: &[Vec<exactsim_engine::types::Record>],
            offsets: &[u64],
        ) -> Vec<exactsim_engine::types::OutRecord> {
            exactsim_scenarios::word_count::WordCount.reference(input, offsets)
        }
        fn planted_bug(&self) -> Option<&'static str> {
            self.1
        }
    }

    fn user(name: &'static str) -> Arc<dyn Scenario> {
        Arc::new(Renamed(name, None))
    }

    #[test]
    fn user_scenarios_are_looked_up_beside_the_built_in_ones() {
        let r = Registry::with_user(vec![user("mine"), Arc::new(Renamed("mine_buggy", Some("x")))]).unwrap();
        assert_eq!(r.get("mine").unwrap().name(), "mine");
        assert_eq!(r.get("word_count").unwrap().name(), "word_count");
        assert!(r.is_builtin("word_count") && !r.is_builtin("mine"));
        assert_eq!(r.user().len(), 2);
        let all: Vec<&str> = r.select("all").unwrap().iter().map(|s| s.name()).collect();
        assert!(all.contains(&"mine") && all.contains(&"word_count"), "{all:?}");
        assert!(!all.contains(&"mine_buggy"), "a planted bug runs only when named: {all:?}");
        assert_eq!(r.select("mine_buggy").unwrap()[0].name(), "mine_buggy");
        let e = r.get("nope").err().unwrap();
        assert!(e.starts_with("unknown scenario 'nope' (expected one of: word_count,"), "{e}");
        assert!(e.ends_with(", mine, mine_buggy)"), "{e}");
    }

    #[test]
    fn names_must_be_unique_and_typeable() {
        let err = |v: Vec<Arc<dyn Scenario>>| Registry::with_user(v).err().unwrap();
        assert!(err(vec![user("word_count")]).contains("clashes with the built-in scenario"));
        assert!(err(vec![user("a"), user("a")]).contains("'a' is given twice"));
        assert!(err(vec![user("all")]).contains("'all' is taken"));
        for bad in ["", "a b", "a/b"] {
            assert!(err(vec![user(bad)]).contains("cannot be typed"), "{bad:?}");
        }
        for e in [err(vec![user("word_count")]), err(vec![user("a b")])] {
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
