//! Differential conformance of the upsert table's version guard
//! (`exactsim_engine::upsert`: `admits`, applied by the simulated table
//! `UpsertTable`) with the statement real mode runs on PostgreSQL 15
//! (`upsert::UPSERT_SQL`: `INSERT ... ON CONFLICT (key) DO UPDATE ... WHERE
//! t.version < EXCLUDED.version`).
//!
//! Seeded random sequences of versioned writes (each key's versions
//! delivered out of order and duplicated, cut into batches, one
//! transaction per batch) run against both: every statement must change a
//! row on the server exactly when the guard admits the write (rows
//! affected 1 or 0), and after every batch a fresh read of the table must
//! show the same (key, version, value) as the simulated table.
//!
//! Against a server: `ci/pg-conformance.sh` runs it with `EXACTSIM_PG_URL`
//! set and fails unless it reports that it ran (`upsert-conformance.ok`).
//! Without the variable, or in the simulation build, it says it did NOT run.
//! Environment: `EXACTSIM_PG_SEQUENCES` (default 30), `EXACTSIM_PG_SEED`
//! (first seed, default 1).

use exactsim_engine::types::OutRecord;
use exactsim_engine::upsert::{Upsert, UpsertTable};

/// SplitMix64: the test's own seeded generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One sequence: batches of versioned writes. Each key has versions
/// 1..=n (value = 7 * version - key); deliveries are every version once
/// plus duplicates, shuffled, cut at random.
fn gen_sequence(seed: u64) -> Vec<Vec<Upsert>> {
    let mut rng = Rng(seed);
    let keys = 1 + rng.below(6);
    let mut all = Vec::new();
    for k in 0..keys {
        for v in 1..=1 + rng.below(10) {
            all.push(Upsert {
                part: (k % 3) as u32,
                version: v,
                rec: OutRecord::new(k * 100 + v, k, 7 * v as i64 - k as i64, v),
            });
        }
    }
    let dups = rng.below(all.len() as u64 + 1);
    for _ in 0..dups {
        let i = rng.below(all.len() as u64) as usize;
        all.push(all[i].clone());
    }
    for i in (1..all.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        all.swap(i, j);
    }
    let mut out = Vec::new();
    let mut rest = &all[..];
    while !rest.is_empty() {
        let n = (1 + rng.below(5) as usize).min(rest.len());
        out.push(rest[..n].to_vec());
        rest = &rest[n..];
    }
    out
}

#[test]
fn the_sequences_exercise_the_guard() {
    let mut older = 0;
    for seed in 1..31 {
        let mut t = UpsertTable::default();
        for batch in gen_sequence(seed) {
            for w in &batch {
                if t.apply(std::slice::from_ref(w), None).is_empty() {
                    older += 1;
                }
            }
        }
    }
    assert!(older > 100, "replayed and duplicate writes the guard refuses: {older}");
}

#[cfg(madsim)]
#[test]
fn upsert_conformance_with_postgresql() {
    println!(
        "upsert conformance: NOT RUN against PostgreSQL: this is the simulation build (--cfg madsim), \
         which has no real client. Run ci/pg-conformance.sh."
    );
}

#[cfg(not(madsim))]
mod real {
    use super::*;
    use exactsim_engine::upsert::UPSERT_SQL;
    use std::collections::BTreeMap;

    #[test]
    fn upsert_conformance_with_postgresql() {
        let Ok(url) = std::env::var("EXACTSIM_PG_URL") else {
            println!(
                "upsert conformance: NOT RUN against PostgreSQL: EXACTSIM_PG_URL is not set. \
                 Run ci/pg-conformance.sh (it starts a server with ci/postgres.sh)."
            );
            return;
        };
        let sequences: u64 = std::env::var("EXACTSIM_PG_SEQUENCES").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
        let first: u64 = std::env::var("EXACTSIM_PG_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (mut client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("connect");
            tokio::spawn(conn);
            let (mut statements, mut refused) = (0u64, 0u64);
            for seed in first..first + sequences {
                client
                    .batch_execute(
                        "DROP TABLE IF EXISTS exactsim_upsert; CREATE TABLE exactsim_upsert (key bigint PRIMARY KEY, \
                         part integer NOT NULL, value bigint NOT NULL, version bigint NOT NULL, rec bytea NOT NULL)",
                    )
                    .await
                    .expect("create the table");
                let mut model = UpsertTable::default();
                for (b, batch) in gen_sequence(seed).into_iter().enumerate() {
                    let tx = client.transaction().await.expect("begin");
                    let stmt = tx.prepare(UPSERT_SQL).await.expect("prepare the upsert");
                    for w in &batch {
                        let rec = exactsim_engine::codec::encode(&w.rec);
                        let n = tx
                            .execute(
                                &stmt,
                                &[&(w.rec.key as i64), &(w.part as i32), &w.rec.value, &(w.version as i64), &rec],
                            )
                            .await
                            .expect("upsert");
                        let admitted = !model.apply(std::slice::from_ref(w), None).is_empty();
                        assert_eq!(
                            n == 1,
                            admitted,
                            "seed {seed} batch {b}: key {} version {}: PostgreSQL changed {n} rows, the guard admitted: {admitted}",
                            w.rec.key,
                            w.version
                        );
                        statements += 1;
                        refused += (!admitted) as u64;
                    }
                    tx.commit().await.expect("commit");
                    let rows = client.query("SELECT key, version, value FROM exactsim_upsert", &[]).await.expect("read");
                    let got: BTreeMap<u64, (u64, i64)> = rows
                        .iter()
                        .map(|r| (r.get::<_, i64>(0) as u64, (r.get::<_, i64>(1) as u64, r.get::<_, i64>(2))))
                        .collect();
                    assert_eq!(got, model.contents(), "seed {seed} after batch {b}: the tables differ");
                }
            }
            let line = format!(
                "upsert conformance: ran against PostgreSQL: {sequences} sequences, {statements} upserts \
                 ({refused} refused by the version guard), same rows after every batch"
            );
            println!("{line}");
            if let Ok(dir) = std::env::var("EXACTSIM_PG_DIR") {
                std::fs::write(std::path::PathBuf::from(dir).join("upsert-conformance.ok"), format!("{line}\n"))
                    .unwrap();
            }
        });
    }
}
