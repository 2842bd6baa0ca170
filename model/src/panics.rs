//! A panic is a finding about one run, never the end of a campaign.
//!
//! [`capture`] runs a closure with the panic hook switched to *recording*
//! for the current thread: the first panic's message and source location
//! are kept (not printed as a backtrace), the unwind is caught, and the
//! caller gets a [`PanicReport`] naming where it fired. Threads that are not
//! capturing keep the process's previous hook, so a failing `#[test]` still
//! prints as usual.
//!
//! This is harness code around a simulation: the thread-local state here
//! never influences what a simulated node does.

use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, PanicHookInfo};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

/// Which side of the seam a panic fired on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PanicOrigin {
    /// The stream engine (`engine/`): a bug found in the system under test.
    Engine,
    /// A scenario's code (operator, sink, generator, batch reference):
    /// `scenarios/`, or a user's crate or test.
    Scenario,
    /// The simulator, the oracles, the command line or a dependency: a bug
    /// in the harness itself.
    Harness,
}

impl PanicOrigin {
    pub fn name(self) -> &'static str {
        match self {
            PanicOrigin::Engine => "engine",
            PanicOrigin::Scenario => "scenario",
            PanicOrigin::Harness => "harness",
        }
    }

    /// Classify a source path as recorded by `Location::file()`: workspace
    /// crates appear relative to the workspace root, dependencies with an
    /// absolute path into the registry.
    pub fn of_file(file: &str) -> PanicOrigin {
        let f = file.trim_start_matches("./");
        if f.starts_with("engine/") {
            PanicOrigin::Engine
        } else if f.starts_with("sim/")
            || f.starts_with("model/")
            || f.starts_with("src/")
            || f.starts_with('/')
            || f.contains(".cargo")
        {
            PanicOrigin::Harness
        } else {
            PanicOrigin::Scenario
        }
    }
}

/// What a caught panic leaves behind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PanicReport {
    /// The panic message, on one line.
    pub message: String,
    /// `file:line:column` of the panic, or `unknown`.
    pub site: String,
    pub origin: PanicOrigin,
}

impl PanicReport {
    /// One line for a violation message.
    pub fn describe(&self) -> String {
        format!("panic in {} code at {}: {}", self.origin.name(), self.site, self.message)
    }
}

thread_local! {
    /// `Some` while the thread captures; holds the first panic seen.
    static CAPTURED: RefCell<Option<Option<PanicReport>>> = const { RefCell::new(None) };
}

fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info: &PanicHookInfo<'_>| {
            let captured = CAPTURED.with(|c| {
                let mut c = c.borrow_mut();
                match c.as_mut() {
                    None => false,
                    Some(slot) => {
                        if slot.is_none() {
                            *slot = Some(report_of(info));
                            explain_context_line();
                        }
                        true
                    }
                }
            });
            if !captured {
                previous(info);
            }
        }));
    });
}

/// Set by [`explain_context_lines`].
static EXPLAIN: AtomicBool = AtomicBool::new(false);

/// Have the command line say, once, what madsim's `context: node=…` lines
/// are. madsim prints one on stderr for every task that panics (with no way
/// to turn it off); a reader takes it for a crash of the tool, when the
/// panic is one run's finding, reported as check `panic`.
/// `in_simulation` tells whether the calling thread runs inside a
/// simulation (the simulator crate's `in_simulation`): the run model itself
/// knows nothing of madsim.
pub fn explain_context_lines(in_simulation: fn() -> bool) {
    let _ = IN_SIMULATION.set(in_simulation);
    EXPLAIN.store(true, Ordering::SeqCst);
}

/// Set by [`explain_context_lines`].
static IN_SIMULATION: std::sync::OnceLock<fn() -> bool> = std::sync::OnceLock::new();

/// The first captured panic inside a simulation, with the explanation
/// asked for: print it, before madsim's line.
fn explain_context_line() {
    if EXPLAIN.load(Ordering::SeqCst)
        && IN_SIMULATION.get().is_some_and(|inside| inside())
        && EXPLAIN.swap(false, Ordering::SeqCst)
    {
        eprintln!(
            "note: a run panicked: its verdict reports the panic (check `panic`); madsim's `context: node=…` \
             line(s) name the simulated node and task it fired in, they are not a crash of exactsim"
        );
    }
}

fn report_of(info: &PanicHookInfo<'_>) -> PanicReport {
    let payload = info.payload();
    let message = if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_string()
    };
    // One line: a multi-line assertion message is folded.
    let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
    let (site, origin) = match info.location() {
        Some(l) => (format!("{}:{}:{}", l.file(), l.line(), l.column()), PanicOrigin::of_file(l.file())),
        None => ("unknown".to_string(), PanicOrigin::Harness),
    };
    PanicReport { message, site, origin }
}

/// Run `f`, turning a panic into `Err` with the first panic's report.
/// Nesting is allowed: an inner capture reports to its own caller.
pub fn capture<T>(f: impl FnOnce() -> T) -> Result<T, PanicReport> {
    install_hook();
    let outer = CAPTURED.with(|c| c.borrow_mut().replace(None));
    let r = std::panic::catch_unwind(AssertUnwindSafe(f));
    let seen = CAPTURED.with(|c| {
        let mut c = c.borrow_mut();
        let seen = c.take().flatten();
        *c = outer;
        seen
    });
    r.map_err(|payload| {
        seen.unwrap_or_else(|| PanicReport {
            message: payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(non-string panic payload)".into()),
            site: "unknown".into(),
            origin: PanicOrigin::Harness,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_captured_with_its_site() {
        let r = capture(|| -> u32 { panic!("boom {}", 7) });
        let p = r.unwrap_err();
        assert_eq!(p.message, "boom 7");
        assert!(p.site.starts_with("model/src/panics.rs:"), "{}", p.site);
        assert_eq!(p.origin, PanicOrigin::Harness);
        assert_eq!(capture(|| 5).unwrap(), 5, "no panic: the value");
    }

    #[test]
    fn nested_captures_report_to_their_own_caller() {
        let outer = capture(|| {
            let inner = capture(|| assert_eq!(1 + 1, 3, "arithmetic"));
            assert!(inner.unwrap_err().message.contains("arithmetic"));
            "outer went on"
        });
        assert_eq!(outer.unwrap(), "outer went on");
    }

    #[test]
    fn origins_follow_the_crate() {
        assert_eq!(PanicOrigin::of_file("engine/src/broker.rs"), PanicOrigin::Engine);
        assert_eq!(PanicOrigin::of_file("sim/src/world.rs"), PanicOrigin::Harness);
        assert_eq!(PanicOrigin::of_file("model/src/checks/mod.rs"), PanicOrigin::Harness);
        assert_eq!(PanicOrigin::of_file("src/campaign.rs"), PanicOrigin::Harness);
        assert_eq!(PanicOrigin::of_file("/root/.cargo/registry/src/x/madsim-0.2.34/src/a.rs"), PanicOrigin::Harness);
        assert_eq!(PanicOrigin::of_file("scenarios/src/inventory.rs"), PanicOrigin::Scenario);
        assert_eq!(PanicOrigin::of_file("tests/it/custom_sink.rs"), PanicOrigin::Scenario);
    }
}
