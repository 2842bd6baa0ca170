//! A drill of the engine's two-phase-commit protocol with [`PgSink`] against
//! any server behind the seam (the simulated one, or a real one): the steps
//! the engine takes (writes, barriers, checkpoint completions, lost
//! notifications, commits), worker failures, server crashes (with the
//! worker, or under a running sink), and
//! recovery from the latest completed checkpoint in a new attempt, all
//! driven by one seed. Its outcome says whether the output is exactly once.
//!
//! It is a test fixture for the sink and for the conformance test (the same
//! seed must give the same trace on the simulated and the real server), not
//! the campaigns' scenario.

use crate::client::{PgConnector, PgOp, PgReply};
use crate::sink::PgSink;
use exactsim_engine::config::Mutant;
use exactsim_engine::sink::{NotifyPlan, SinkError, SinkSnapshot, TwoPhaseCommitSink, TxnBook};
use exactsim_engine::types::{CheckpointId, OutRecord};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrillOutcome {
    /// Committed out_ids, sorted.
    pub committed: Vec<u64>,
    /// What must be committed exactly once: the output up to the input
    /// position of the latest completed checkpoint.
    pub expected: Vec<u64>,
    pub recoveries: u64,
    /// Re-commits of restored pending transactions.
    pub recommits: u64,
    /// Commits answered "transaction lost".
    pub lost_commits: u64,
    /// Prepared transactions left at the end; `None`: the drill never got
    /// to its final, committing step.
    pub left_prepared: Option<usize>,
    /// One line per step: what happened (for comparing two servers).
    pub trace: Vec<String>,
}

impl DrillOutcome {
    pub fn verdict(&self) -> Result<(), String> {
        if self.left_prepared.is_none() {
            return Err("never finished".into());
        }
        if self.committed != self.expected {
            return Err(format!(
                "committed {} rows, expected {} (first difference at {:?})",
                self.committed.len(),
                self.expected.len(),
                self.committed.iter().zip(&self.expected).position(|(a, b)| a != b)
            ));
        }
        if self.lost_commits > 0 {
            return Err(format!("{} commits lost", self.lost_commits));
        }
        if self.left_prepared != Some(0) {
            return Err(format!("{:?} prepared transactions left behind", self.left_prepared));
        }
        Ok(())
    }
}

fn rec(i: u64) -> OutRecord {
    OutRecord::new(i, i.wrapping_mul(31), i as i64 - 7, 0)
}

fn kind(r: &Result<(), SinkError>) -> &'static str {
    match r {
        Ok(()) => "ok",
        Err(SinkError::Transient(_)) => "transient",
        Err(SinkError::TxnLost(_)) => "lost",
    }
}

/// Run the drill: about `steps` steps (more when failures delay the final
/// step). `crash` crashes the server and brings it back up.
pub async fn drill(
    conn: Arc<dyn PgConnector>,
    seed: u64,
    steps: usize,
    mutant: Option<Mutant>,
    crash: &mut (dyn FnMut() + Send),
) -> DrillOutcome {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut rnd = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let mut out = DrillOutcome {
        committed: vec![],
        expected: vec![],
        recoveries: 0,
        recommits: 0,
        lost_commits: 0,
        left_prepared: None,
        trace: vec![],
    };
    let mut attempt = 1;
    let mut sink = PgSink::new(conn.clone(), "job", 0, attempt);
    let mut book = TxnBook::new(mutant);
    let mut pos = 0u64; // input position = next out_id
    let mut next_ckpt = 1;
    let mut completed: Option<CheckpointId> = None;
    let mut snaps: BTreeMap<CheckpointId, (SinkSnapshot, u64)> = BTreeMap::new();
    // A failed step (or a failed recovery) is followed by a recovery.
    let mut failed = match sink.begin(1).await {
        Ok(t) => {
            book.set_open(t);
            false
        }
        Err(_) => true,
    };
    for step in 0..steps * 2 {
        // The last step completes and commits everything; it needs a
        // working sink.
        let last = step + 1 >= steps && !failed;
        if failed || (!last && rnd(100) < 4) {
            if !failed && rnd(2) == 0 {
                crash();
                out.trace.push("crash".into());
            }
            attempt += 1;
            out.recoveries += 1;
            sink = PgSink::new(conn.clone(), "job", 0, attempt);
            let (snap, at) = completed.map(|k| snaps[&k].clone()).unwrap_or_default();
            let (b, commit, open) = TxnBook::restore(&snap, mutant);
            book = b;
            pos = at;
            let mut lost = 0;
            let r: Result<(), SinkError> = async {
                for (_, t) in commit {
                    out.recommits += 1;
                    match sink.recover_and_commit(&t).await {
                        Err(SinkError::TxnLost(_)) => lost += 1,
                        Ok(()) => {}
                        Err(e) => return Err(e),
                    }
                }
                if let Some(o) = open {
                    sink.recover_and_abort(&o).await?;
                }
                if mutant != Some(Mutant::NoAbortLingering) {
                    sink.abort_lingering(completed, next_ckpt).await?;
                }
                book.set_open(sink.begin(completed.map_or(1, |k| k + 1)).await?);
                Ok(())
            }
            .await;
            out.lost_commits += lost;
            out.trace.push(format!("recover from {completed:?}: {} ({lost} lost)", kind(&r)));
            failed = r.is_err();
            continue;
        }
        if !last && rnd(100) < 3 {
            // The server crashes under a running sink.
            crash();
            out.trace.push("crash (server only)".into());
        }
        let mut line = String::new();
        let mut lost = 0;
        let r: Result<(), SinkError> = async {
            match if last { 5 } else { rnd(10) } {
                0..=4 => {
                    let k = rnd(5);
                    let rows: Vec<OutRecord> = (pos..pos + k).map(rec).collect();
                    pos += k;
                    line = format!("write {k}");
                    let mut t = book.take_open().expect("open");
                    let r = sink.write(&mut t, &rows).await;
                    book.set_open(t);
                    r?;
                }
                5..=7 => {
                    let ck = next_ckpt;
                    next_ckpt += 1;
                    line = format!("barrier {ck}");
                    let mut t = book.take_open().expect("open");
                    let r = sink.pre_commit(&mut t).await;
                    book.set_open(t);
                    r?;
                    book.pre_committed(ck);
                    book.set_open(sink.begin(ck + 1).await?);
                    snaps.insert(ck, (book.snapshot(), pos));
                    if last || rnd(3) > 0 {
                        completed = Some(ck);
                    }
                }
                _ => line = "idle".into(),
            }
            if let Some(k) = completed {
                if last || rnd(3) == 0 {
                    line += &format!(", notify {k}");
                    if let NotifyPlan::Commit(due) = book.notify(k) {
                        for (ck, t) in due {
                            match sink.commit(&t).await {
                                Ok(()) => {}
                                Err(SinkError::TxnLost(_)) => lost += 1,
                                Err(e) => return Err(e),
                            }
                            book.settled(ck);
                        }
                    }
                }
            }
            Ok(())
        }
        .await;
        out.lost_commits += lost;
        out.trace.push(format!("{line}: {} ({lost} lost)", kind(&r)));
        failed = r.is_err();
        if last && !failed {
            out.left_prepared = Some(usize::MAX);
            break;
        }
    }
    out.expected = (0..completed.map_or(0, |k| snaps[&k].1)).collect();
    // What a fresh reader sees.
    let mut reader = match conn.connect("reader").await {
        Ok(s) => s,
        Err(e) => panic!("drill: cannot read the result: {e}"),
    };
    if let Ok(PgReply::Rows(rows)) = reader.exec(PgOp::SelectRows).await {
        out.committed = rows.iter().map(|r| r.out_id).collect();
        out.committed.sort();
    }
    if out.left_prepared.is_some() {
        if let Ok(PgReply::Gids(g)) = reader.exec(PgOp::ListPrepared).await {
            out.left_prepared = Some(g.len());
        }
    }
    out
}
