//! P17 — upsert-final: at the end, the upsert table holds, for every key,
//! exactly the final value of the batch recomputation, with zero tolerance,
//! although the job runs at least once and its deliveries duplicate (runs
//! of an upsert scenario, `Scenario::upsert_table`).
//!
//! Invariant: the final read of the table (every output partition) has one
//! row per key of the batch reference (whose `reference` over the whole
//! input is the final row per key), with the same value and version
//! (`OutRecord::src`, the key's update number) and in the partition the
//! pipeline places it; no row for a key the reference does not have. A
//! failed final read is a violation (the table cannot be judged).
//!
//! How: from the final read alone (what a reader of the system sees), never
//! from the sink's word; each key's expected row comes from the scenario's
//! reference.

use super::{first_few, rec, Ctx, Finding};
use exactsim_engine::types::OutRecord;
use std::collections::BTreeMap;

pub fn check(c: &Ctx) -> Vec<Finding> {
    if !c.h.final_read_ok {
        return vec![Finding::new(
            None,
            "final read failed: the upsert table did not answer the read at the end".into(),
        )];
    }
    let want: BTreeMap<u64, &OutRecord> = c.reference.iter().map(|o| (o.key, o)).collect();
    let mut got: BTreeMap<u64, Vec<(u32, &OutRecord)>> = BTreeMap::new();
    for (p, recs) in c.h.final_output.iter().enumerate() {
        for o in recs {
            got.entry(o.key).or_default().push((p as u32, o));
        }
    }
    let mut v = Vec::new();
    let mut missing = Vec::new();
    for (k, w) in &want {
        match got.get(k).map(|g| g.as_slice()) {
            None | Some([]) => missing.push(format!("key {k} (want {})", rec(w))),
            Some([(p, o)]) => {
                if (o.value, o.src) != (w.value, w.src) {
                    v.push(Finding::new(
                        None,
                        format!(
                            "key {k}: the table holds value {} at version {}, the batch recomputation's final value is {} at version {} ({} in partition {p})",
                            o.value, o.src, w.value, w.src, rec(o)
                        ),
                    ));
                } else if *p != c.partition_of(w) {
                    v.push(Finding::new(
                        None,
                        format!("key {k}: its row is in partition {p}, it belongs in partition {}", c.partition_of(w)),
                    ));
                }
            }
            Some(rows) => v.push(Finding::new(
                None,
                format!(
                    "key {k}: {} rows in the table, one expected: {}",
                    rows.len(),
                    first_few(rows.iter().map(|(p, o)| format!("{} in partition {p}", rec(o))))
                ),
            )),
        }
    }
    if !missing.is_empty() {
        v.push(Finding::new(
            None,
            format!("{} of {} keys missing from the table: {}", missing.len(), want.len(), first_few(missing)),
        ));
    }
    let extra: Vec<String> = got.keys().filter(|k| !want.contains_key(k)).map(|k| format!("key {k}")).collect();
    if !extra.is_empty() {
        v.push(Finding::new(
            None,
            format!("{} keys in the table the input never had: {}", extra.len(), first_few(extra)),
        ));
    }
    v
}
