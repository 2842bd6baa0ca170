//! Fault kinds: **one file per kind**, each holding everything about it —
//! its data (the event's fields, as serde data), how a profile draws one
//! ([`Kind::DRAW`], through [`Gen`]), its validation, its narrowings for
//! `shrink` (strictly smaller under [`Size`]), its description (timeline
//! text and the nodes it hits), how a [`Target`] plays it (start and end),
//! and how real mode plays it or why not ([`Real`]).
//!
//! A kind is registered by one line in [`fault_kinds!`] below, which
//! generates the [`FaultEvent`] enum (serialized as before: internally
//! tagged by `kind`, snake case), the table [`KINDS`] and the one dispatch
//! from an event to its kind. Every other place goes through [`Fault`], so
//! there is no match over the kinds anywhere else: a new kind that does not
//! answer one of the questions does not compile.

use serde::{Deserialize, Serialize};

pub mod arming;
pub mod common;
pub mod play;
pub mod target;

pub use common::Targets;
use common::{caps, Gen, Narrowing, Size, DISK_NODES};

pub use play::{Cx, Fired, Player};
pub use target::{Shown, Target, Window};

/// When a fault acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timing {
    /// At `at_ms` its start acts (and schedules its own end: a restart, a
    /// resume).
    At(u64),
    /// A window: opened at `at_ms`, closed `dur_ms` later.
    Window { at_ms: u64, dur_ms: u64 },
    /// When a predicate armed by the recorder fires (a fault point, an
    /// engine event).
    Predicate,
}

/// What a shrinker may move to re-aim a fault.
pub enum Aim<'a> {
    /// Its start.
    At(&'a mut u64),
    /// The occurrence of its predicate it waits for.
    Nth(&'a mut u32),
}

/// How real mode plays a kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Real {
    /// Played as in simulation.
    Plays,
    /// Played, but not all of it: listed as skipped under
    /// `{kind}:{qualifier}`, with the reason.
    Partly { qualifier: String, reason: &'static str },
    /// Not played, with the reason.
    Skips(&'static str),
}

/// Whether a schedule's event can be checked against a run: its safety
/// phase and its nodes.
pub struct Check<'a> {
    pub safety_ms: u64,
    pub nodes: &'a [String],
}

impl Check<'_> {
    /// `n` is a node of the run.
    pub fn node(&self, n: &str) -> Result<(), String> {
        if self.nodes.iter().any(|x| x == n) {
            Ok(())
        } else {
            Err(format!("no node '{n}' in this run (nodes: {})", self.nodes.join(", ")))
        }
    }

    /// `n` is a node of the run with a disk.
    pub fn disk_node(&self, n: &str) -> Result<(), String> {
        self.node(n)?;
        if DISK_NODES.contains(&n) {
            Ok(())
        } else {
            Err(format!("node '{n}' has no disk (disk nodes: {})", DISK_NODES.join(", ")))
        }
    }

    /// A start inside the safety phase. An event at exactly `safety_ms` is
    /// accepted (generated schedules hold some) but never starts: the
    /// liveness phase heals everything at that instant.
    pub fn at(&self, at_ms: u64) -> Result<(), String> {
        if at_ms > self.safety_ms {
            return Err(format!("at_ms = {at_ms} is after the safety phase (0..={})", self.safety_ms));
        }
        Ok(())
    }

    /// A window inside the safety phase, of a length within the caps.
    pub fn window(&self, at_ms: u64, dur_ms: u64) -> Result<(), String> {
        self.at(at_ms)?;
        if dur_ms == 0 || dur_ms > caps::DURATION_MS_MAX {
            return Err(format!("dur_ms = {dur_ms} is out of range (1..={})", caps::DURATION_MS_MAX));
        }
        Ok(())
    }

    pub fn permille(&self, p: u32) -> Result<(), String> {
        if p > caps::PERMILLE_MAX {
            Err(format!("permille = {p} is more than {}", caps::PERMILLE_MAX))
        } else {
            Ok(())
        }
    }

    pub fn latency(&self, l: u64) -> Result<(), String> {
        if l > caps::LATENCY_MS_MAX {
            Err(format!("latency_ms = {l} is more than {}", caps::LATENCY_MS_MAX))
        } else {
            Ok(())
        }
    }

    pub fn down(&self, d: u64) -> Result<(), String> {
        if d > caps::DURATION_MS_MAX {
            Err(format!("down_ms = {d} is more than {}", caps::DURATION_MS_MAX))
        } else {
            Ok(())
        }
    }

    pub fn nth(&self, nth: u32) -> Result<(), String> {
        if nth == 0 || nth > caps::NTH_MAX {
            return Err(format!("nth = {nth} is out of range (1..={})", caps::NTH_MAX));
        }
        Ok(())
    }
}

/// What every fault kind answers. Implemented once per kind file; reached
/// from a [`FaultEvent`] through [`FaultEvent::fault`].
pub trait Fault: std::fmt::Debug {
    /// When it acts.
    fn timing(&self) -> Timing;
    /// Check it against a run (a replay file, an edited schedule); the
    /// error names the field.
    fn validate(&self, c: &Check) -> Result<(), String>;
    /// Its size for `shrink`'s order.
    fn size(&self) -> Size;
    /// Narrower versions, most aggressive first; each strictly smaller
    /// under [`Size`].
    fn narrowings(&self, n: &Narrowing) -> Vec<FaultEvent>;
    /// What a shrinker moves to re-aim it.
    fn aim(&mut self) -> Aim<'_>;
    /// How long it holds its target (a window, a down or frozen time);
    /// `None` for faults that only shape traffic or disks.
    fn hold_ms(&self) -> Option<u64>;
    /// In plain words, for the timeline.
    fn describe(&self) -> String;
    /// The nodes it hits; `None`: the whole network (or any node).
    fn nodes(&self) -> Option<Vec<String>>;
    /// Play its start on a target; `false`: nothing was played (its node
    /// was down).
    fn start(&self, cx: &mut Cx, t: &mut dyn Target) -> bool;
    /// Play its end (a window closes); node faults end by the restart or
    /// resume their start scheduled.
    fn end(&self, cx: &mut Cx, t: &mut dyn Target);
    /// How real mode plays it, or why not.
    fn real(&self) -> Real;
}

/// A kind's declaration: its name (the profile key, the tally key, the
/// `kind` of its schedule events), the nodes it can hit, its timeline
/// colour, and how a profile draws one.
pub trait Kind: Fault + Into<FaultEvent> {
    const NAME: &'static str;
    const TARGETS: Targets;
    const COLOUR: &'static str;
    /// Draw one event (`None`: not drawn by a count).
    const DRAW: Option<fn(&mut Gen) -> FaultEvent>;
}

/// One fault kind, declared once (a row of [`KINDS`], from its [`Kind`]).
pub struct FaultKind {
    pub name: &'static str,
    pub targets: Targets,
    pub colour: &'static str,
    /// Draw one event of this kind (`None`: not drawn by a count).
    pub generate: Option<fn(&mut Gen) -> FaultEvent>,
}

/// The registry: one line per kind (`file::Type`: the module `file`, from
/// `faults/<file>.rs`, is declared here too), in generation order
/// (new counted kinds go last, so the schedules of profiles that do not use
/// them stay as they were).
macro_rules! fault_kinds {
    ($($file:ident :: $ty:ident),* $(,)?) => {
        /// One fault of a schedule. Serialized internally tagged by `kind`
        /// (the kind's name); each kind's struct refuses unknown fields, so a
        /// misspelt field (`dow_ms`) or one of another kind (a `permille` on a
        /// crash) is refused by name.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind", rename_all = "snake_case")]
        pub enum FaultEvent {
            $($ty($file::$ty),)*
        }

        $(pub mod $file;)*
        $(pub use self::$file::$ty;)*

        $(impl From<$file::$ty> for FaultEvent {
            fn from(k: $file::$ty) -> FaultEvent {
                FaultEvent::$ty(k)
            }
        })*

        /// Every fault kind, in generation order.
        pub const KINDS: [FaultKind; [$(stringify!($ty)),*].len()] = [$(FaultKind {
            name: <$file::$ty as Kind>::NAME,
            targets: <$file::$ty as Kind>::TARGETS,
            colour: <$file::$ty as Kind>::COLOUR,
            generate: <$file::$ty as Kind>::DRAW,
        }),*];

        impl FaultEvent {
            /// What its kind answers.
            pub fn fault(&self) -> &dyn Fault {
                match self {
                    $(FaultEvent::$ty(k) => k,)*
                }
            }

            pub fn fault_mut(&mut self) -> &mut dyn Fault {
                match self {
                    $(FaultEvent::$ty(k) => k,)*
                }
            }

            /// Its kind's name.
            pub fn kind(&self) -> &'static str {
                match self {
                    $(FaultEvent::$ty(_) => <$file::$ty as Kind>::NAME,)*
                }
            }
        }
    };
}

fault_kinds! {
    crash::Crash,
    crash_at_point::CrashAtPoint,
    partition::Partition,
    packet_loss::PacketLoss,
    latency::Latency,
    slow_disk::SlowDisk,
    disk_errors::DiskErrors,
    corrupt_reads::CorruptReads,
    pause::Pause,
    late_delivery::LateDelivery,
    skew::Skew,
    on_event::OnEvent,
    isolate::Isolate,
    stop::Stop,
    redeploy::Redeploy,
    rescale::Rescale,
}

/// A permille as a percentage for the timeline (`25` -> `2.5%`).
pub fn pct(permille: u32) -> String {
    let p = format!("{:.1}", permille as f64 / 10.0);
    format!("{}%", p.trim_end_matches('0').trim_end_matches('.'))
}
