//! Differential conformance of the simulated PostgreSQL server
//! (`exactsim_pg::model`) with a real PostgreSQL 15.
//!
//! Seeded random operation sequences (begin, insert, markers, prepare,
//! commit/rollback prepared, commit, rollback, duplicate and unknown gids,
//! reads, dropped connections, `kill -9` of the server and restart) run
//! step by step against both, over three sessions; every step must give the
//! same result (same reply, same SQLSTATE, or a lost connection on both)
//! and, after every restart and at the end of a sequence, a fresh session
//! must see the same rows and the same prepared transactions.
//!
//! Against a server: `ci/pg-conformance.sh` (starts one with
//! `ci/postgres.sh`, runs this test in the std build with `EXACTSIM_PG_URL`
//! set, and fails unless the test reports that it ran against the server).
//! Without `EXACTSIM_PG_URL`, or in the simulation build, the test says
//! that it did NOT run against a server and only checks the model against
//! itself: the same sequences, one copy crashing in memory, the other
//! rebuilt from its write-ahead log at every restart.
//!
//! Against a server with `max_prepared_transactions` >= 4 it then runs the
//! sink drill (`exactsim_pg::drill`: the engine's 2PC protocol with
//! `PgSink`, worker failures and `kill -9` of the server) on both: the same
//! trace, and exactly-once output on the real server.
//!
//! Environment: `EXACTSIM_PG_SEQUENCES` (default 30), `EXACTSIM_PG_STEPS`
//! (steps per sequence, default 80), `EXACTSIM_PG_SEED` (first seed, default
//! 1), `EXACTSIM_PG_DRILLS` (sink drills, default 4).

use async_trait::async_trait;
use exactsim_engine::types::{OutRecord, Owner, Writer};
use exactsim_pg::client::{PgError, PgOp, PgReply};
use exactsim_pg::model::{PgModel, SessionId, WalRecord};
use std::future::Future;

const SLOTS: usize = 3;
const GIDS: [&str; 6] = ["g0", "g1", "g2", "job-sink-1-ckpt-7-att-2", "q'uote", "g5"];

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
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

#[derive(Clone, Debug)]
enum Step {
    Exec(usize, PgOp),
    /// Close the slot's session (if any) and open a new one.
    Reconnect(usize),
    /// `kill -9` the server.
    Crash,
    Restart,
}

/// What is compared: replies exactly, errors by kind and SQLSTATE.
#[derive(Clone, Debug, PartialEq)]
enum Outcome {
    Reply(PgReply),
    Sql(String),
    Lost,
    Protocol(String),
    /// Rows and prepared gids seen by a fresh session, and the commit log.
    State(Vec<Outcome>),
    /// The committed transactions in commit order (`PgModel::commit_order`).
    Order(Vec<Vec<u64>>),
}

fn outcome(r: Result<PgReply, PgError>) -> Outcome {
    match r {
        Ok(r) => Outcome::Reply(r),
        Err(PgError::Sql { code, .. }) => Outcome::Sql(code.sqlstate().to_string()),
        Err(PgError::ConnectionLost(_)) => Outcome::Lost,
        Err(PgError::Protocol(s)) => Outcome::Protocol(s),
    }
}

#[async_trait(?Send)]
trait Server {
    async fn exec(&mut self, slot: usize, op: &PgOp) -> Result<PgReply, PgError>;
    async fn reconnect(&mut self, slot: usize) -> Result<PgReply, PgError>;
    async fn crash(&mut self);
    async fn restart(&mut self);
    /// The committed transactions in commit order.
    async fn commit_order(&mut self) -> Outcome;
    /// Rows and prepared gids seen by a fresh session, and the commit
    /// order of what was committed.
    async fn state(&mut self) -> Outcome {
        let r = self.reconnect(SLOTS).await;
        if r.is_err() {
            return outcome(r);
        }
        let rows = outcome(self.exec(SLOTS, &PgOp::SelectRows).await);
        let gids = outcome(self.exec(SLOTS, &PgOp::ListPrepared).await);
        let order = self.commit_order().await;
        Outcome::State(vec![rows, gids, order])
    }
}

/// The model, crashing in memory.
struct Model {
    m: PgModel,
    s: Vec<Option<SessionId>>,
}

/// The model as a node would run it: every durable record logged, and a
/// restart rebuilds it from the log alone.
struct LoggedModel {
    m: PgModel,
    wal: Vec<WalRecord>,
    s: Vec<Option<SessionId>>,
    up: bool,
}

/// The name slot `slot`'s sessions connect with (`application_name`).
fn owner(slot: usize) -> String {
    format!("slot-{slot}")
}

fn not_connected() -> PgError {
    PgError::ConnectionLost("not connected".into())
}

#[async_trait(?Send)]
impl Server for Model {
    async fn exec(&mut self, slot: usize, op: &PgOp) -> Result<PgReply, PgError> {
        let s = self.s[slot].ok_or_else(not_connected)?;
        self.m.exec(s, op).0
    }
    async fn reconnect(&mut self, slot: usize) -> Result<PgReply, PgError> {
        if let Some(s) = self.s[slot].take() {
            self.m.disconnect(s);
        }
        self.s[slot] = Some(self.m.connect(&owner(slot))?);
        Ok(PgReply::Ok)
    }
    async fn crash(&mut self) {
        self.m.crash();
    }
    async fn restart(&mut self) {
        self.m.restart();
    }
    async fn commit_order(&mut self) -> Outcome {
        Outcome::Order(self.m.commit_order())
    }
}

#[async_trait(?Send)]
impl Server for LoggedModel {
    async fn exec(&mut self, slot: usize, op: &PgOp) -> Result<PgReply, PgError> {
        if !self.up {
            return Err(not_connected());
        }
        let s = self.s[slot].ok_or_else(not_connected)?;
        let (r, w) = self.m.exec(s, op);
        self.wal.extend(w);
        r
    }
    async fn reconnect(&mut self, slot: usize) -> Result<PgReply, PgError> {
        if let Some(s) = self.s[slot].take() {
            self.m.disconnect(s);
        }
        if !self.up {
            return Err(not_connected());
        }
        self.s[slot] = Some(self.m.connect(&owner(slot))?);
        Ok(PgReply::Ok)
    }
    async fn crash(&mut self) {
        self.up = false;
        self.s.iter_mut().for_each(|s| *s = None);
    }
    async fn restart(&mut self) {
        self.m = PgModel::recover(self.m.max_prepared(), &self.wal).expect("the log replays");
        self.up = true;
    }
    async fn commit_order(&mut self) -> Outcome {
        Outcome::Order(self.m.commit_order())
    }
}

/// A statement for a session believed to be inside a block (`in_block`)
/// or not; the belief is only a bias (a failed statement may end a block),
/// every statement can come in either state.
fn gen_op(rng: &mut Rng, next_out: &mut u64, in_block: bool) -> PgOp {
    let gid = GIDS[rng.below(GIDS.len() as u64) as usize].to_string();
    if rng.chance(30) {
        // End the sessions of a slot (maybe this one: a session never ends
        // itself), as a recovering sink ends its earlier attempts'.
        return PgOp::Terminate { owners: vec![owner(rng.below(SLOTS as u64) as usize)] };
    }
    let mut rows = |rng: &mut Rng| {
        let part = rng.below(3) as u32;
        let rows = (0..rng.below(4))
            .map(|_| {
                *next_out += 1;
                let owner = Owner { run: rng.next(), attempt: rng.next(), session: (rng.next(), rng.next()) };
                // The lineage goes through the `writer` column and back.
                let writer = Writer { owner, subtask: rng.below(1 << 20) as u32, txn: rng.next() };
                OutRecord { writer, ..OutRecord::new(*next_out, rng.next(), rng.next() as i64, rng.next()) }
            })
            .collect();
        PgOp::Insert { part, rows }
    };
    let r = rng.below(100);
    if in_block {
        match r {
            0..=29 => rows(rng),
            30..=39 => PgOp::Mark { gid },
            40..=64 => PgOp::Prepare { gid },
            65..=71 => PgOp::Commit,
            72..=75 => PgOp::Rollback,
            76..=79 => PgOp::CommitPrepared { gid },
            80..=81 => PgOp::RollbackPrepared { gid },
            82..=83 => PgOp::Begin,
            84..=89 => PgOp::SelectRows,
            90..=94 => PgOp::ListPrepared,
            _ => PgOp::HasMarker { gid },
        }
    } else {
        match r {
            0..=34 => PgOp::Begin,
            35..=54 => PgOp::CommitPrepared { gid },
            55..=66 => PgOp::RollbackPrepared { gid },
            67..=71 => rows(rng),
            72..=73 => PgOp::Mark { gid },
            74..=76 => PgOp::Prepare { gid },
            77..=79 => PgOp::Commit,
            80..=81 => PgOp::Rollback,
            82..=87 => PgOp::SelectRows,
            88..=93 => PgOp::ListPrepared,
            _ => PgOp::HasMarker { gid },
        }
    }
}

fn gen_sequence(seed: u64, steps: usize) -> Vec<Step> {
    let mut rng = Rng(seed);
    let mut next_out = 0;
    let mut up = true;
    let mut v: Vec<Step> = (0..SLOTS).map(Step::Reconnect).collect();
    let mut alive = [true; SLOTS];
    let mut in_block = [false; SLOTS];
    // The gid a slot last marked in its open block: a marker lookup of
    // the session's own uncommitted marker is what the sink's commit
    // decision rests on, and a random gid rarely hits it.
    let mut marked: [Option<String>; SLOTS] = Default::default();
    while v.len() < steps {
        let slot = rng.below(SLOTS as u64) as usize;
        let step = if !up {
            if rng.chance(500) {
                up = true;
                Step::Restart
            } else if rng.chance(300) {
                Step::Reconnect(slot)
            } else {
                Step::Exec(slot, gen_op(&mut rng, &mut next_out, false))
            }
        } else if rng.chance(20) {
            up = false;
            alive = [false; SLOTS];
            in_block = [false; SLOTS];
            Step::Crash
        } else if rng.chance(if alive[slot] { 30 } else { 700 }) {
            alive[slot] = true;
            in_block[slot] = false;
            Step::Reconnect(slot)
        } else {
            let op = match &marked[slot] {
                Some(gid) if in_block[slot] && rng.chance(250) => PgOp::HasMarker { gid: gid.clone() },
                _ => gen_op(&mut rng, &mut next_out, in_block[slot]),
            };
            match &op {
                PgOp::Mark { gid } if in_block[slot] => marked[slot] = Some(gid.clone()),
                PgOp::Begin | PgOp::Prepare { .. } | PgOp::Commit | PgOp::Rollback => marked[slot] = None,
                _ => {}
            }
            match &op {
                PgOp::Begin => in_block[slot] = true,
                PgOp::Prepare { .. } | PgOp::Commit | PgOp::Rollback => in_block[slot] = false,
                PgOp::Terminate { owners } => {
                    for (k, a) in alive.iter_mut().enumerate() {
                        if k != slot && owners.contains(&owner(k)) {
                            *a = false;
                            in_block[k] = false;
                        }
                    }
                }
                _ => {}
            }
            Step::Exec(slot, op)
        };
        v.push(step);
    }
    if !up {
        v.push(Step::Restart);
    }
    v
}

/// The prepared-transaction limit at any setting: `max` transactions
/// prepared under distinct gids from two sessions, one more refused
/// (53200), then one committed and one rolled back, making room again.
fn limit_sequence(max: usize) -> Vec<Step> {
    let mut v: Vec<Step> = (0..SLOTS).map(Step::Reconnect).collect();
    let row = |i: usize| PgOp::Insert {
        part: (i % 3) as u32,
        rows: vec![OutRecord::new(10_000 + i as u64, i as u64, i as i64, i as u64)],
    };
    for i in 0..=max {
        let slot = i % 2;
        v.push(Step::Exec(slot, PgOp::Begin));
        v.push(Step::Exec(slot, row(i)));
        v.push(Step::Exec(slot, PgOp::Prepare { gid: format!("limit-{i}") }));
    }
    v.push(Step::Exec(2, PgOp::ListPrepared));
    v.push(Step::Exec(2, PgOp::CommitPrepared { gid: "limit-0".into() }));
    v.push(Step::Exec(2, PgOp::RollbackPrepared { gid: format!("limit-{}", max.saturating_sub(1)) }));
    v.push(Step::Exec(0, PgOp::Begin));
    v.push(Step::Exec(0, row(max + 1)));
    v.push(Step::Exec(0, PgOp::Prepare { gid: "limit-again".into() }));
    v.push(Step::Exec(2, PgOp::ListPrepared));
    v
}

type Coverage = std::collections::BTreeMap<String, usize>;

fn op_name(op: &PgOp) -> &'static str {
    match op {
        PgOp::Begin => "Begin",
        PgOp::Insert { .. } => "Insert",
        PgOp::Mark { .. } => "Mark",
        PgOp::Prepare { .. } => "Prepare",
        PgOp::CommitPrepared { .. } => "CommitPrepared",
        PgOp::RollbackPrepared { .. } => "RollbackPrepared",
        PgOp::Commit => "Commit",
        PgOp::Rollback => "Rollback",
        PgOp::ListPrepared => "ListPrepared",
        PgOp::SelectRows => "SelectRows",
        PgOp::HasMarker { .. } => "HasMarker",
        PgOp::Terminate { .. } => "Terminate",
    }
}

fn outcome_name(o: &Outcome) -> String {
    match o {
        Outcome::Reply(_) => "ok".into(),
        Outcome::Sql(c) => c.clone(),
        Outcome::Lost => "lost".into(),
        Outcome::Protocol(_) => "protocol".into(),
        Outcome::State(_) => "state".into(),
        Outcome::Order(_) => "order".into(),
    }
}

/// Run one sequence on both; panic at the first difference. Counts the
/// outcomes per statement kind (and `Crash`) into `cov`.
async fn differential(
    seed: u64,
    steps: &[Step],
    a: &mut dyn Server,
    b: &mut dyn Server,
    names: (&str, &str),
    cov: &mut Coverage,
) {
    for (i, step) in steps.iter().enumerate() {
        let (ra, rb) = match step {
            Step::Exec(slot, op) => (outcome(a.exec(*slot, op).await), outcome(b.exec(*slot, op).await)),
            Step::Reconnect(slot) => (outcome(a.reconnect(*slot).await), outcome(b.reconnect(*slot).await)),
            Step::Crash => {
                *cov.entry("Crash".into()).or_default() += 1;
                a.crash().await;
                b.crash().await;
                continue;
            }
            Step::Restart => {
                a.restart().await;
                b.restart().await;
                (a.state().await, b.state().await)
            }
        };
        if let Step::Exec(_, op) = step {
            *cov.entry(format!("{} {}", op_name(op), outcome_name(&ra))).or_default() += 1;
        }
        if ra != rb {
            let from = i.saturating_sub(30);
            let history: Vec<String> =
                steps[from..=i].iter().enumerate().map(|(k, s)| format!("  {}: {s:?}", from + k)).collect();
            panic!(
                "seed {seed}: step {i} {step:?} differs\n  {}: {ra:?}\n  {}: {rb:?}\nsteps:\n{}",
                names.0,
                names.1,
                history.join("\n")
            );
        }
    }
    let (sa, sb) = (a.state().await, b.state().await);
    assert_eq!(sa, sb, "seed {seed}: final state differs ({} vs {})", names.0, names.1);
}

/// The outcomes every run with this `max_prepared_transactions` must have
/// seen at least once: otherwise the sequences did not test them.
fn required(max: usize) -> Vec<&'static str> {
    let mut v = vec![
        "Crash",
        "Begin 25P02",
        "Insert ok",
        "Insert lost",
        "Insert 25P02",
        "Prepare ok",
        "CommitPrepared 42704",
        "CommitPrepared 25001",
        "RollbackPrepared 42704",
        "Commit ok",
        "SelectRows ok",
        "HasMarker ok",
        "ListPrepared ok",
        "Terminate ok",
    ];
    match max {
        0 => v.push("Prepare 55000"),
        1..=4 => v.extend(["Prepare 42710", "Prepare 53200", "CommitPrepared ok", "RollbackPrepared ok"]),
        _ => v.extend(["Prepare 42710", "CommitPrepared ok", "RollbackPrepared ok"]),
    }
    v
}

fn check_coverage(cov: &Coverage, max: usize, sequences: u64) {
    if sequences < 30 {
        println!("coverage not checked: fewer than 30 sequences");
        return;
    }
    let missing: Vec<&str> = required(max).into_iter().filter(|k| !cov.contains_key(*k)).collect();
    assert!(missing.is_empty(), "max_prepared_transactions = {max}: never seen: {missing:?}\ncoverage: {cov:?}");
}

fn env_num(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v.parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

struct Params {
    sequences: u64,
    steps: usize,
    seed: u64,
}

fn params() -> Params {
    Params {
        sequences: env_num("EXACTSIM_PG_SEQUENCES", 30),
        steps: env_num("EXACTSIM_PG_STEPS", 80) as usize,
        seed: env_num("EXACTSIM_PG_SEED", 1),
    }
}

/// Poll a future that never waits (the models' futures) to completion.
fn ready<F: Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
    fn raw() -> RawWaker {
        fn clone(_: *const ()) -> RawWaker {
            raw()
        }
        fn noop(_: *const ()) {}
        static VT: RawWakerVTable = RawWakerVTable::new(clone, noop, noop, noop);
        RawWaker::new(std::ptr::null(), &VT)
    }
    let waker = unsafe { Waker::from_raw(raw()) };
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a model future waited"),
    }
}

/// The model against its own write-ahead log (always runs).
#[test]
fn model_matches_its_log_replay() {
    let p = params();
    for max in [0usize, 2, 16] {
        let mut cov = Coverage::new();
        for seed in p.seed..p.seed + p.sequences {
            let steps = gen_sequence(seed, p.steps);
            let mut a = Model { m: PgModel::new(max), s: vec![None; SLOTS + 1] };
            let mut b = LoggedModel { m: PgModel::new(max), wal: vec![], s: vec![None; SLOTS + 1], up: true };
            ready(differential(seed, &steps, &mut a, &mut b, ("model", "model rebuilt from its log"), &mut cov));
        }
        let mut a = Model { m: PgModel::new(max), s: vec![None; SLOTS + 1] };
        let mut b = LoggedModel { m: PgModel::new(max), wal: vec![], s: vec![None; SLOTS + 1], up: true };
        let mut limit_cov = Coverage::new();
        ready(differential(0, &limit_sequence(max), &mut a, &mut b, ("model", "model rebuilt"), &mut limit_cov));
        if max > 0 {
            assert!(limit_cov.contains_key("Prepare 53200"), "max {max}: {limit_cov:?}");
        }
        println!("max_prepared_transactions = {max}: {cov:?}");
        check_coverage(&cov, max, p.sequences);
    }
}

#[cfg(madsim)]
#[test]
fn conformance_with_postgresql() {
    println!(
        "conformance: NOT RUN against PostgreSQL: this is the simulation build (--cfg madsim), \
         which has no real client. Run ci/pg-conformance.sh."
    );
}

#[cfg(not(madsim))]
mod real {
    use super::*;
    use exactsim_pg::client::PgSession;
    use exactsim_pg::real::{RealConnector, RealSession};
    use std::path::PathBuf;
    use std::process::Command;

    struct Real {
        conn: RealConnector,
        s: Vec<Option<RealSession>>,
    }

    fn script(arg: &str) {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ci/postgres.sh");
        let st = Command::new(&path).arg(arg).status().unwrap_or_else(|e| panic!("{path:?}: {e}"));
        assert!(st.success(), "ci/postgres.sh {arg} failed: {st}");
    }

    #[async_trait(?Send)]
    impl Server for Real {
        async fn exec(&mut self, slot: usize, op: &PgOp) -> Result<PgReply, PgError> {
            match self.s[slot].as_mut() {
                Some(s) => s.exec(op.clone()).await,
                None => Err(not_connected()),
            }
        }
        async fn reconnect(&mut self, slot: usize) -> Result<PgReply, PgError> {
            self.s[slot] = None;
            self.s[slot] = Some(self.conn.connect_as(&owner(slot)).await?);
            Ok(PgReply::Ok)
        }
        async fn crash(&mut self) {
            script("kill");
        }
        async fn restart(&mut self) {
            script("start");
        }
        async fn commit_order(&mut self) -> Outcome {
            let mut s = match self.conn.connect_real().await {
                Ok(s) => s,
                Err(e) => return outcome(Err(e)),
            };
            match s.commit_log().await {
                Ok(log) => {
                    Outcome::Order(log.txns.iter().filter_map(|t| exactsim_pg::model::commit_entry(&t.rows)).collect())
                }
                Err(e) => outcome(Err(e)),
            }
        }
    }

    #[test]
    fn conformance_with_postgresql() {
        let Ok(url) = std::env::var("EXACTSIM_PG_URL") else {
            println!(
                "conformance: NOT RUN against PostgreSQL: EXACTSIM_PG_URL is not set. \
                 Run ci/pg-conformance.sh (it starts a server with ci/postgres.sh)."
            );
            return;
        };
        let p = params();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let conn = RealConnector::new(&url).unwrap();
            let max = conn.max_prepared().await.expect("server reachable") as usize;
            let mut cov = Coverage::new();
            let mut steps_run = 0;
            for seed in p.seed..p.seed + p.sequences {
                conn.reset().await.expect("reset the database");
                let steps = gen_sequence(seed, p.steps);
                let mut real = Real { conn: conn.clone(), s: (0..=SLOTS).map(|_| None).collect() };
                let mut model = Model { m: PgModel::new(max), s: vec![None; SLOTS + 1] };
                differential(seed, &steps, &mut model, &mut real, ("model", "PostgreSQL"), &mut cov).await;
                steps_run += steps.len();
            }
            // The limit, at this setting too (random gids are too few to
            // fill a large one).
            conn.reset().await.expect("reset the database");
            let steps = limit_sequence(max);
            let mut real = Real { conn: conn.clone(), s: (0..=SLOTS).map(|_| None).collect() };
            let mut model = Model { m: PgModel::new(max), s: vec![None; SLOTS + 1] };
            let mut limit_cov = Coverage::new();
            differential(0, &steps, &mut model, &mut real, ("model", "PostgreSQL"), &mut limit_cov).await;
            if max > 0 {
                assert!(limit_cov.contains_key("Prepare 53200"), "the limit was not reached: {limit_cov:?}");
            }
            steps_run += steps.len();
            println!("coverage: {cov:?}");
            check_coverage(&cov, max, p.sequences);
            let mut crashes = cov.get("Crash").copied().unwrap_or(0);
            // The sink itself: the engine's protocol drill on both servers.
            let mut drills = String::from("no sink drill (needs max_prepared_transactions >= 4)");
            if max >= 4 {
                let n = env_num("EXACTSIM_PG_DRILLS", 4);
                let (mut recoveries, mut recommits) = (0, 0);
                for seed in p.seed..p.seed + n {
                    conn.reset().await.expect("reset the database");
                    let arc: std::sync::Arc<dyn exactsim_pg::client::PgConnector> = std::sync::Arc::new(conn.clone());
                    let mut kills = 0;
                    let mut crash = || {
                        script("kill");
                        script("start");
                        kills += 1;
                    };
                    let real = exactsim_pg::drill::drill(arc, seed, 200, None, &mut crash).await;
                    crashes += kills;
                    let mc = exactsim_pg::model::ModelConnector::new(PgModel::new(max));
                    let mut mcrash = || {
                        mc.with(|m| {
                            m.crash();
                            m.restart();
                        })
                    };
                    let model = ready(exactsim_pg::drill::drill(std::sync::Arc::new(mc.clone()), seed, 200, None, &mut mcrash));
                    if let Some(i) = (0..real.trace.len().max(model.trace.len())).find(|i| real.trace.get(*i) != model.trace.get(*i)) {
                        panic!(
                            "sink drill seed {seed}: step {i} differs\n  model: {:?}\n  PostgreSQL: {:?}\nPostgreSQL trace: {:#?}",
                            model.trace.get(i),
                            real.trace.get(i),
                            real.trace
                        );
                    }
                    if let Err(e) = real.verdict() {
                        panic!("sink drill seed {seed} on PostgreSQL: {e}\ntrace: {:#?}", real.trace);
                    }
                    assert_eq!(real, model, "sink drill seed {seed}: outcome differs");
                    recoveries += real.recoveries;
                    recommits += real.recommits;
                }
                drills = format!("{n} sink drills exactly once ({recoveries} recoveries, {recommits} re-commits)");
            }
            let line = format!(
                "conformance: ran against PostgreSQL at {url}: {} sequences (seeds {}..{}), {steps_run} steps, \
                 {crashes} kill -9 and restarts, max_prepared_transactions = {max}: model and server agree; {drills}",
                p.sequences,
                p.seed,
                p.seed + p.sequences
            );
            println!("{line}");
            if let Ok(dir) = std::env::var("EXACTSIM_PG_DIR") {
                std::fs::write(PathBuf::from(dir).join("conformance.ok"), format!("{line}\n")).unwrap();
            }
        });
    }
}
