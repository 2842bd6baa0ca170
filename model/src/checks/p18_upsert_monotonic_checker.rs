//! P18 — upsert-monotonic: no reader of the upsert table ever sees a key go
//! back to an older version (runs of an upsert scenario,
//! `Scenario::upsert_table`).
//!
//! Invariant: along the readers' samples of the table during the run (the
//! history's observations: each read returns the rows changed since the
//! reader's previous read of that partition) and then the final read, the
//! version of every key (`OutRecord::src`, the key's update number) never
//! decreases; and a key seen twice at one version shows one value. A
//! replayed, retried or late write of an older version that the table took
//! shows here, even when the replay brings the key forward again before
//! the end.
//!
//! How: from the readers' observations and the final read alone, never from
//! the sink's word.

use super::{ms, Ctx, Finding};
use std::collections::BTreeMap;

pub fn check(c: &Ctx) -> Vec<Finding> {
    // key -> (version, value, when first seen at it)
    let mut last: BTreeMap<u64, (u64, i64, Option<u64>)> = BTreeMap::new();
    let mut v = Vec::new();
    let samples = c.h.observations.iter().map(|o| (Some(o.t_us), &o.new_records));
    let fin = c.h.final_output.iter().map(|recs| (None, recs));
    for (t, recs) in samples.chain(fin) {
        for o in recs {
            let at =
                |t: Option<u64>| t.map_or_else(|| "the final read".to_string(), |t| format!("a read at {}", ms(t)));
            match last.get(&o.key) {
                Some(&(ver, val, seen)) if o.src < ver => v.push(Finding::new(
                    t,
                    format!(
                        "key {} went back from version {ver} (value {val}, seen at {}) to version {} (value {}) at {}",
                        o.key,
                        at(seen).trim_start_matches("a read at "),
                        o.src,
                        o.value,
                        at(t)
                    ),
                )),
                Some(&(ver, val, _)) if o.src == ver && o.value != val => v.push(Finding::new(
                    t,
                    format!(
                        "key {} shows version {ver} with value {val} and then value {} at {}",
                        o.key,
                        o.value,
                        at(t)
                    ),
                )),
                Some(&(ver, ..)) if o.src == ver => {}
                _ => {
                    last.insert(o.key, (o.src, o.value, t));
                }
            }
        }
    }
    v
}
