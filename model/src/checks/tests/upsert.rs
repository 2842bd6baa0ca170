//! P17 and P18: an upsert table.

use super::*;

// ---- P17 / P18: an upsert table ----

/// A keyed table of versioned upserts: the reference is each key's final
/// row (out_id = its last record, value = running sum, version in `src` =
/// the key's update number).
pub(super) struct Table;
impl Scenario for Table {
    fn name(&self) -> &'static str {
        "table"
    }
    fn description(&self) -> &'static str {
        "test: an upsert table"
    }
    fn generate(&self, _rng: &mut SimRng, _p: u32) -> Vec<Vec<Record>> {
        unimplemented!("histories are written by hand")
    }
    fn pipeline(&self) -> Arc<dyn Pipeline> {
        Arc::new(EchoPipeline)
    }
    fn reference(&self, input: &[Vec<Record>], offsets: &[u64]) -> Vec<OutRecord> {
        let mut last: std::collections::BTreeMap<u64, OutRecord> = Default::default();
        for (p, o) in input.iter().zip(offsets) {
            for r in &p[..*o as usize] {
                let (v, n) = last.get(&r.key).map_or((0, 0), |x| (x.value, x.src));
                last.insert(r.key, OutRecord::new(r.id, r.key, v + r.value, n + 1));
            }
        }
        last.into_values().collect()
    }
    fn upsert_table(&self) -> bool {
        true
    }
}

/// Row of key `key` at `version` with the value that version has in
/// [`upsert_good`]'s input (keys 0 and 1, values 1 each: value = version).
fn row(key: u64, version: u64, out_id: u64) -> OutRecord {
    OutRecord::new(out_id, key, version as i64, version)
}

/// Records 1..=5: keys 0, 1, 0, 0, 1. Final rows: key 0 at version 3 (out
/// 4), key 1 at version 2 (out 5). A recovery replayed records 3 and 4.
pub(super) fn upsert_good() -> History {
    let keys = [0u64, 1, 0, 0, 1];
    let input = vec![keys
        .iter()
        .enumerate()
        .map(|(i, k)| Record { id: i as u64 + 1, key: *k, ts_ms: i as u64, value: 1 })
        .collect()];
    History {
        scenario: "table".into(),
        seed: 1,
        mode: DeliveryMode::AtLeastOnce,
        parallelism: 1,
        output_partitions: 1,
        input,
        events: vec![
            trigger(10, 1),
            complete(20, 1, 2, false),
            trigger(40, 2),
            complete(50, 2, 5, true),
            at(70, "coordinator", Event::JobFinished { attempt: 1, ckpt: 2 }),
        ],
        observations: vec![
            Observation { t_us: 15, partition: 0, new_records: vec![row(0, 1, 1), row(1, 1, 2)], open_txns: 0 },
            Observation { t_us: 30, partition: 0, new_records: vec![row(0, 3, 4)], open_txns: 0 },
            // The replay of records 3 and 4 changed nothing; record 5 landed.
            Observation { t_us: 60, partition: 0, new_records: vec![row(1, 2, 5)], open_txns: 0 },
        ],
        final_output: vec![vec![row(0, 3, 4), row(1, 2, 5)]],
        final_read_ok: true,
        final_open_txns: vec![],
        healed_at_us: 0,
        deadline_us: 1_000_000,
        finished_at_us: Some(70),
        reached: Vec::new(),
    }
}

fn table_checks(h: &History) -> Vec<&'static str> {
    let (v, _) = check_all(&CheckInput { history: h, scenario: &Table });
    let mut ids: Vec<&'static str> = v.iter().map(|v| v.check).collect();
    ids.dedup();
    ids
}

fn table_msgs(h: &History, check: &str) -> Vec<String> {
    check_all(&CheckInput { history: h, scenario: &Table })
        .0
        .into_iter()
        .filter(|v| v.check == check)
        .map(|v| v.message)
        .collect()
}

#[test]
fn a_good_upsert_history_passes_and_runs_p17_and_p18() {
    assert_eq!(table_checks(&upsert_good()), NONE);
    assert_eq!(ids_for(&Table, DeliveryMode::AtLeastOnce), ["P4", "P11", "P12", "P15", "P16", "P17", "P18", "P21"]);
    assert!(!ids_for(&Echo, DeliveryMode::AtLeastOnce).contains(&"P17"), "only upsert runs");
    assert_eq!(crate::scenario::mode_of(&Table, DeliveryMode::ExactlyOnce), DeliveryMode::AtLeastOnce);
}

#[test]
fn an_older_final_row_is_p17() {
    let mut h = upsert_good();
    // A stale write of key 0 at version 2 landed last.
    h.final_output = vec![vec![row(0, 2, 3), row(1, 2, 5)]];
    assert_eq!(table_checks(&h), ["P12", "P17", "P18"]);
    assert_mentions(&table_msgs(&h, "P17"), &["key 0", "version 2", "version 3"]);
    assert_mentions(&table_msgs(&h, "P18"), &["key 0 went back from version 3", "to version 2", "the final read"]);
}

#[test]
fn a_missing_or_extra_key_is_p17() {
    let mut h = upsert_good();
    h.final_output = vec![vec![row(0, 3, 4), row(7, 1, 9)]];
    assert_eq!(table_checks(&h), ["P12", "P17"]);
    assert_mentions(&table_msgs(&h, "P17"), &["1 of 2 keys missing", "key 1"]);
    assert_mentions(&table_msgs(&h, "P17"), &["keys in the table the input never had", "key 7"]);
}

#[test]
fn a_reader_seeing_a_version_go_back_is_p18_even_when_the_end_is_right() {
    let mut h = upsert_good();
    // A replay of record 3 overwrote version 3 for a moment.
    h.observations.insert(2, Observation { t_us: 45, partition: 0, new_records: vec![row(0, 2, 3)], open_txns: 0 });
    h.observations.insert(3, Observation { t_us: 55, partition: 0, new_records: vec![row(0, 3, 4)], open_txns: 0 });
    assert_eq!(table_checks(&h), ["P18"]);
    assert_mentions(&table_msgs(&h, "P18"), &["key 0 went back from version 3", "to version 2 (value 2) at a read at"]);
}

#[test]
fn the_latest_completed_checkpoint_is_the_highest_completed_by_then() {
    // Completions out of id order (a recovered coordinator announces an
    // older one late), two at one time, and none before the first: the
    // binary search answers as a scan of every completion does.
    let mut h = good();
    push(&mut h, complete(45, 4, 4, false));
    push(&mut h, complete(55, 3, 4, false));
    push(&mut h, complete(55, 5, 4, false));
    let ctx = Ctx::new(&h, &Echo);
    for t in 0..80 {
        let scan = ctx.completed.iter().filter(|c| c.0 <= t).map(|c| c.1).max().unwrap_or(0);
        assert_eq!(ctx.latest_completed(t), scan, "at {t}");
    }
    assert_eq!(ctx.latest_completed(19), 0);
    assert_eq!(ctx.latest_completed(20), 1);
    assert_eq!(ctx.latest_completed(50), 4);
    assert_eq!(ctx.latest_completed(55), 5);
}
