//! Several `ctwatch run` PROCESSES on one PostgreSQL database (a fresh one per test), following growing fake logs
//! on 127.0.0.1 (`ctwatch_fakelog::growing`):
//! - chaos: three instances, killed with SIGKILL and restarted at random points while the logs grow; at the end
//!   the union of what they reported (stdout JSON, one event per certificate) is exactly every entry of every
//!   log, each once: nothing lost, nothing reported twice;
//! - takeover: with the default lease timing, the logs of a SIGKILLed instance are tailed again by the others
//!   within 30 s, and each instance's /health names it and its share.
//!
//! Needs PostgreSQL (`CTWATCH_TEST_PG_URL`, default postgres://postgres@127.0.0.1:5432/postgres): fails loudly
//! without it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::navigli_entries;
use common::pg::TestDb;
use ctwatch_fakelog::growing::{self, Catalog, GrowingLog, Kind, Knobs};
use rand::{RngExt, SeedableRng};

const BIN: &str = env!("CARGO_BIN_EXE_ctwatch");

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The fake logs, their list, and a task growing them.
struct Logs {
    logs: Vec<Arc<GrowingLog>>,
    urls: Vec<String>,
    list: PathBuf,
    grower: Option<tokio::task::JoinHandle<()>>,
}

impl Logs {
    async fn serve(dir: &Path, count: u32, initial: u64) -> Logs {
        let catalog = Arc::new(Catalog::new(&navigli_entries()).unwrap());
        let (mut logs, mut urls, mut rfc, mut tiled) = (vec![], vec![], vec![], vec![]);
        for n in 0..count {
            let kind = if n % 2 == 0 {
                Kind::Rfc6962
            } else {
                Kind::Tiled
            };
            let log = GrowingLog::new(kind, n + 1, catalog.clone(), Knobs::default());
            log.grow(initial, now_ms());
            let (url, _server) = growing::serve(log.clone()).await.unwrap();
            let entry = log.log_list_entry(&url, &format!("growing {n}"));
            match kind {
                Kind::Rfc6962 => rfc.push(entry),
                Kind::Tiled => tiled.push(entry),
            }
            urls.push(url);
            logs.push(log);
        }
        let list = serde_json::json!({
            "version": "1.0", "log_list_timestamp": "2026-01-01T00:00:00Z",
            "operators": [{"name": "test", "email": ["t@example.invalid"], "logs": rfc, "tiled_logs": tiled}]
        });
        let path = dir.join("log_list.json");
        std::fs::write(&path, list.to_string()).unwrap();
        Logs {
            logs,
            urls,
            list: path,
            grower: None,
        }
    }

    /// Grow every log by `step` entries every `every`.
    fn grow(&mut self, step: u64, every: Duration) {
        let logs = self.logs.clone();
        self.grower = Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                for l in &logs {
                    l.grow(step, now_ms());
                }
            }
        }));
    }

    fn stop_growing(&mut self) {
        if let Some(g) = self.grower.take() {
            g.abort();
        }
    }

    /// Every (log URL as reported, index) the logs hold.
    fn expected(&self, reported_url: &BTreeMap<String, String>) -> BTreeSet<(String, u64)> {
        let mut out = BTreeSet::new();
        for (log, url) in self.logs.iter().zip(&self.urls) {
            let name = reported_url.get(url).unwrap_or(url);
            for i in 0..log.published() {
                out.insert((name.clone(), i));
            }
        }
        out
    }
}

/// One ctwatch process slot: restarted under a new instance ID each time (a restarted process is a new instance).
struct Instance {
    slot: usize,
    generation: u32,
    port: u16,
    child: Option<Child>,
    dir: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Instance {
    fn new(slot: usize, dir: &Path) -> Instance {
        Instance {
            slot,
            generation: 0,
            port: free_port(),
            child: None,
            dir: dir.to_path_buf(),
        }
    }

    fn id(&self) -> String {
        format!("slot{}-gen{}", self.slot, self.generation)
    }

    fn start(&mut self, db: &str, list: &Path, config: &Path) {
        assert!(self.child.is_none());
        self.generation += 1;
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("stdout-{}.jsonl", self.slot)))
            .unwrap();
        let err =
            std::fs::File::create(self.dir.join(format!("stderr-{}.log", self.id()))).unwrap();
        let child = Command::new(BIN)
            .current_dir(&self.dir)
            .args([
                "run",
                "--json",
                "--start-at",
                "beginning",
                "--poll-interval-secs",
                "1",
            ])
            .args(["--batch-entries", "64", "--page-size", "64", "--no-probe"])
            .arg("--db")
            .arg(db)
            .arg("--log-list")
            .arg(list)
            .arg("--watchlist")
            .arg(self.dir.join("watch.txt"))
            .arg("--config")
            .arg(config)
            .args(["--instance-id", &self.id()])
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .env("RUST_LOG", "ctwatch=info")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe { libc::kill(c.id() as i32, libc::SIGKILL) };
            c.wait().unwrap();
        }
    }

    /// SIGTERM, and expect a clean exit.
    fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let t0 = Instant::now();
            loop {
                if let Some(status) = c.try_wait().unwrap() {
                    assert!(
                        status.success(),
                        "{} exited with {status}: {}",
                        self.id(),
                        self.stderr()
                    );
                    return;
                }
                if t0.elapsed() > Duration::from_secs(30) {
                    let _ = c.kill();
                    panic!("{} did not stop within 30 s of SIGTERM", self.id());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Fail with its stderr if the process died on its own.
    fn check_alive(&mut self) {
        if let Some(c) = self.child.as_mut()
            && let Some(status) = c.try_wait().unwrap()
        {
            panic!(
                "{} exited by itself ({status}):\n{}",
                self.id(),
                self.stderr()
            );
        }
    }

    fn stderr(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join(format!("stderr-{}.log", self.id())))
            .unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    fn health(&self) -> Option<serde_json::Value> {
        let body = http_get(self.port, "/health")?;
        serde_json::from_str(&body).ok()
    }
}

/// A bare HTTP/1.0 GET on 127.0.0.1 (the body; None when nothing answers).
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// Verified position of every log, and undelivered events, from the shared database.
async fn progress(db: &tokio_postgres::Client) -> (BTreeMap<Vec<u8>, i64>, i64) {
    let positions = db
        .query("SELECT log_id, verified_size FROM logs", &[])
        .await
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    (
                        r.get::<_, Vec<u8>>(0),
                        r.get::<_, Option<i64>>(1).unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let pending = db
        .query_one(
            "SELECT count(*) FROM deliveries WHERE status = 'pending'",
            &[],
        )
        .await
        .map(|r| r.get(0))
        .unwrap_or(-1);
    (positions, pending)
}

/// Wait until every log is verified up to what it published and nothing waits for delivery.
async fn settle(
    db: &tokio_postgres::Client,
    logs: &Logs,
    instances: &mut [Instance],
    within: Duration,
) {
    let t0 = Instant::now();
    loop {
        for i in instances.iter_mut() {
            i.check_alive();
        }
        let (positions, pending) = progress(db).await;
        let behind: Vec<(usize, u64, i64)> = logs
            .logs
            .iter()
            .enumerate()
            .map(|(n, l)| {
                (
                    n,
                    l.published(),
                    positions.get(&l.log_id()[..]).copied().unwrap_or(0),
                )
            })
            .filter(|(_, published, verified)| *verified != *published as i64)
            .collect();
        if behind.is_empty() && pending == 0 {
            return;
        }
        if t0.elapsed() > within {
            let errs: Vec<String> = instances
                .iter()
                .map(|i| format!("--- {}:\n{}", i.id(), i.stderr()))
                .collect();
            panic!(
                "not settled within {within:?}: logs behind (n, published, verified) {behind:?}, {pending} \
                 deliveries pending\n{}",
                errs.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Every reported certificate event as (log, index), with repeats.
fn reports(dir: &Path, slots: usize) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for slot in 0..slots {
        let text =
            std::fs::read_to_string(dir.join(format!("stdout-{slot}.jsonl"))).unwrap_or_default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| {
                panic!("slot {slot} printed a line that is not JSON ({e}): {line}")
            });
            if let (Some(log), Some(index)) = (v["log"].as_str(), v["index"].as_u64()) {
                out.push((log.to_string(), index));
            }
        }
    }
    out
}

fn write_config(dir: &Path, ttl: u64, renew: u64) -> PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        format!("[store]\nlease_ttl_secs = {ttl}\nlease_renew_secs = {renew}\n\n[health]\nalerts = false\n"),
    )
    .unwrap();
    // Every certificate matches: each entry is reported exactly once.
    std::fs::write(dir.join("watch.txt"), "/./\n").unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_killed_and_restarted_at_random_report_every_entry_once() {
    let pg = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), 4, 1);
    let mut logs = Logs::serve(dir.path(), 4, 150).await;
    logs.grow(15, Duration::from_millis(400));
    let mut instances: Vec<Instance> = (0..3).map(|s| Instance::new(s, dir.path())).collect();
    for i in instances.iter_mut() {
        i.start(&pg.url, &logs.list, &config);
    }
    let seed: u64 = std::env::var("CTWATCH_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("chaos seed {seed} (set CTWATCH_CHAOS_SEED to repeat)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let chaos_until = Instant::now() + Duration::from_secs(20);
    let mut kills = 0;
    while Instant::now() < chaos_until {
        tokio::time::sleep(Duration::from_millis(rng.random_range(800..3000))).await;
        let victim = rng.random_range(0..instances.len());
        instances[victim].check_alive();
        instances[victim].kill9();
        kills += 1;
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..2500))).await;
        instances[victim].start(&pg.url, &logs.list, &config);
    }
    logs.stop_growing();
    let db = connect(&pg.url).await;
    settle(&db, &logs, &mut instances, Duration::from_secs(90)).await;
    for i in instances.iter_mut() {
        i.terminate();
    }
    let got = reports(dir.path(), instances.len());
    let mut seen = BTreeMap::new();
    for r in &got {
        *seen.entry(r.clone()).or_insert(0) += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(10).collect();
    assert!(
        twice.is_empty(),
        "reported more than once (after {kills} kills): {twice:?}"
    );
    // Events name a log by its URL as the log list gives it.
    let names: BTreeMap<String, String> =
        logs.urls.iter().map(|u| (u.clone(), u.clone())).collect();
    let expected = logs.expected(&names);
    let got: BTreeSet<(String, u64)> = seen.into_keys().collect();
    let missing: Vec<_> = expected.difference(&got).take(10).collect();
    let extra: Vec<_> = got.difference(&expected).take(10).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{} expected, {} reported after {kills} kills; missing {missing:?}; unexpected {extra:?}",
        expected.len(),
        got.len()
    );
    eprintln!(
        "{} entries reported exactly once across {kills} SIGKILLs",
        expected.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instances_logs_are_taken_over_within_30_seconds() {
    let pg = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    // The default lease timing (15 s TTL, renewed every 3 s): what a deployment gets.
    let config = write_config(dir.path(), 15, 3);
    let mut logs = Logs::serve(dir.path(), 6, 50).await;
    logs.grow(5, Duration::from_millis(500));
    let mut instances: Vec<Instance> = (0..3).map(|s| Instance::new(s, dir.path())).collect();
    for i in instances.iter_mut() {
        i.start(&pg.url, &logs.list, &config);
    }
    // Each instance answers /health with its ID and its share: 2 logs each.
    let t0 = Instant::now();
    loop {
        for i in instances.iter_mut() {
            i.check_alive();
        }
        let shares: Vec<Option<(String, u64)>> = instances
            .iter()
            .map(|i| {
                let h = i.health()?;
                Some((
                    h["instance_id"].as_str()?.to_string(),
                    h["owned_logs"].as_u64()?,
                ))
            })
            .collect();
        if shares
            .iter()
            .zip(&instances)
            .all(|(s, i)| s.as_ref() == Some(&(i.id(), 2)))
        {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no even spread over three instances: {shares:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let db = connect(&pg.url).await;
    let owner_of = async |db: &tokio_postgres::Client| -> BTreeMap<Vec<u8>, String> {
        db.query(
            "SELECT log_id, owner FROM ctwatch_log_leases WHERE expires_at > now()",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
    };
    let victim_id = instances[0].id();
    let victims: Vec<Vec<u8>> = owner_of(&db)
        .await
        .into_iter()
        .filter(|(_, o)| *o == victim_id)
        .map(|(l, _)| l)
        .collect();
    assert_eq!(victims.len(), 2);
    let (at_kill, _) = progress(&db).await;
    instances[0].kill9();
    let killed = Instant::now();
    // Taken over: another instance holds the lease and the position moved past where it was at the kill.
    loop {
        let owners = owner_of(&db).await;
        let (positions, _) = progress(&db).await;
        let done = victims.iter().all(|l| {
            owners.get(l).is_some_and(|o| *o != victim_id) && positions.get(l) > at_kill.get(l)
        });
        if done {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "the killed instance's logs were not tailed again within 30 s: owners {owners:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let took = killed.elapsed();
    eprintln!("takeover after SIGKILL: {took:.1?}");
    for i in instances[1..].iter_mut() {
        let h = i.health().expect("a live instance answers /health");
        assert_eq!(h["owned_logs"], 3, "{h}");
    }
    // `ctwatch logs` names each log's owner (one of the live instances) and the instances.
    let live: Vec<String> = instances[1..].iter().map(Instance::id).collect();
    let out = Command::new(BIN)
        .args(["logs", "--json", "--db", &pg.url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 6);
    for row in rows {
        let owner = row["owner"]
            .as_str()
            .unwrap_or_else(|| panic!("no owner: {row}"));
        assert!(
            live.iter().any(|l| l == owner),
            "{owner} is not a live instance: {row}"
        );
    }
    let out = Command::new(BIN)
        .args(["logs", "--db", &pg.url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("owner: slot").count(), 6, "{text}");
    assert!(text.contains(&format!("{victim_id} (gone")), "{text}");
    assert!(
        text.contains(&format!("{} (live, 3 logs", live[0])),
        "{text}"
    );
    logs.stop_growing();
    settle(&db, &logs, &mut instances[1..], Duration::from_secs(60)).await;
    for i in instances.iter_mut() {
        i.terminate();
    }
}

/// A client of the test database (the server was reachable: `TestDb` created the database).
async fn connect(url: &str) -> tokio_postgres::Client {
    ctwatch::lease::pg::connect(url).await.unwrap()
}
