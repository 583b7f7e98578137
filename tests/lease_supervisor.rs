//! The supervisor follows log ownership: three in-process runs with leases in a real PostgreSQL (a fresh
//! database) share five growing fake logs. At every moment each log is tailed by at most one run; the logs
//! spread evenly; every log is verified up to its head; a run that dies (task aborted, leases not released) has
//! its logs taken over and finished by the others; no run ever sees its batch refused (a refused batch, `store`
//! error, would mean two tailers on one log).
//!
//! The three runs share one SQLite store in this process (the PostgreSQL store is not needed to test the
//! supervisor); tests/multi_instance.rs runs three processes on a PostgreSQL store.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::pg::TestDb;
use common::*;
use ctwatch::lease::{LeaseConfig, LeaseOwner, LogOwnership};
use ctwatch::notify::DeliveryPolicy;
use ctwatch::run::{RunOptions, ServiceOptions};
use ctwatch::stats::Registry;
use ctwatch::tailer::{StartAt, TailConfig};
use ctwatch::watchlist::Watchlist;
use ctwatch_fakelog::growing::{self, Catalog, GrowingLog, Kind, Knobs};
use tokio::sync::watch;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

struct Instance {
    name: String,
    registry: Arc<Registry>,
    owner: Arc<LeaseOwner>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<ctwatch::run::RunSummary>>,
}

impl Instance {
    fn followed(&self) -> BTreeSet<String> {
        self.registry.logs().into_iter().map(|l| l.url).collect()
    }
    fn store_errors(&self) -> u64 {
        self.registry
            .logs()
            .iter()
            .map(|l| l.stats.errors().get("store").copied().unwrap_or(0))
            .sum()
    }
}

async fn start(db: &TestDb, env: &Env, list: &std::path::Path, name: &str) -> Instance {
    let owner = LeaseOwner::start(
        &db.url,
        name.to_string(),
        LeaseConfig {
            ttl: Duration::from_secs(3),
            renew_every: Duration::from_millis(250),
            release_grace: Duration::from_secs(5),
        },
        None,
    )
    .await
    .unwrap();
    let registry = Arc::new(Registry::default());
    let opts = RunOptions {
        log_list: ctwatch::ct::loglist::parse(&std::fs::read(list).unwrap()).unwrap(),
        log_list_source: None,
        log_list_refresh: Duration::from_secs(3600),
        watchlist: Watchlist::parse_str("watch.txt", "mexi.my\n").unwrap(),
        watchlist_path: None,
        store: env.store.clone(),
        tail: TailConfig {
            poll_interval: Duration::from_millis(200),
            start_at: StartAt::Beginning,
            parallel_requests: 4,
            batch_entries: 128,
            error_backoff: Duration::from_millis(50),
            max_error_backoff: Duration::from_millis(300),
            ..TailConfig::default()
        },
        retry: fast_retry(),
        page_size: 64,
        sinks: vec![],
        delivery: DeliveryPolicy::default(),
        drain_timeout: Duration::from_secs(1),
        filter: Default::default(),
        registry: registry.clone(),
        service: ServiceOptions {
            ownership: Some(owner.clone() as Arc<dyn LogOwnership>),
            ..ServiceOptions::default()
        },
        probe: None,
    };
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(ctwatch::run::run(opts, rx));
    Instance {
        name: name.to_string(),
        registry,
        owner,
        stop,
        task,
    }
}

/// Fail if a log is followed by two instances now; returns log -> instance.
fn exclusive(instances: &[&Instance]) -> BTreeMap<String, String> {
    let mut by_log = BTreeMap::new();
    for i in instances {
        for url in i.followed() {
            if let Some(other) = by_log.insert(url.clone(), i.name.clone()) {
                panic!("log {url} followed by both {other} and {}", i.name);
            }
        }
        assert_eq!(
            i.store_errors(),
            0,
            "{}: a batch was refused by the store",
            i.name
        );
    }
    by_log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_runs_share_growing_logs_one_tailer_per_log_and_take_over_a_dead_one() {
    let db = TestDb::new();
    let catalog = Arc::new(Catalog::new(&navigli_entries()).unwrap());
    let env = Env::new();
    let mut logs = Vec::new();
    let mut entries = Vec::new();
    for n in 0..5u32 {
        let kind = if n % 2 == 0 {
            Kind::Rfc6962
        } else {
            Kind::Tiled
        };
        let log = GrowingLog::new(kind, n + 1, catalog.clone(), Knobs::default());
        log.grow(300, now_ms());
        let (url, _server) = growing::serve(log.clone()).await.unwrap();
        entries.push(log.log_list_entry(&url, &format!("growing {n}")));
        logs.push(log);
    }
    let (rfc, tiled): (Vec<_>, Vec<_>) = entries.into_iter().partition(|e| e.get("url").is_some());
    let list = serde_json::json!({
        "version": "1.0", "log_list_timestamp": "2026-01-01T00:00:00Z",
        "operators": [{"name": "test", "email": ["t@example.invalid"], "logs": rfc, "tiled_logs": tiled}]
    });
    let list_path = env.dir.path().join("log_list.json");
    std::fs::write(&list_path, list.to_string()).unwrap();
    // The logs keep growing while the instances come and go.
    let growers = logs.clone();
    let grow = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            for l in &growers {
                l.grow(40, now_ms());
            }
        }
    });

    let a = start(&db, &env, &list_path, "a").await;
    let b = start(&db, &env, &list_path, "b").await;
    let c = start(&db, &env, &list_path, "c").await;
    // Spread: 2 + 2 + 1, every log followed, never by two.
    let t0 = Instant::now();
    loop {
        let by_log = exclusive(&[&a, &b, &c]);
        let counts: Vec<usize> = [&a, &b, &c].iter().map(|i| i.followed().len()).collect();
        if by_log.len() == 5 && counts.iter().all(|n| *n <= 2) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no even spread: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // c dies: no release, no final commit.
    let c_logs = c.followed();
    c.task.abort();
    c.owner.crash().await;
    let t0 = Instant::now();
    loop {
        let by_log = exclusive(&[&a, &b]);
        if by_log.len() == 5 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "c's logs {c_logs:?} not taken over"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_secs(1),
        "taken over after {took:?}, before c's leases expired"
    );

    // Every log catches up with its head (positions are shared through the store).
    grow.abort();
    let t0 = Instant::now();
    loop {
        exclusive(&[&a, &b]);
        let behind: Vec<u64> = logs
            .iter()
            .filter_map(|l| {
                let verified = env
                    .store
                    .log_position(&l.log_id())
                    .unwrap()
                    .map_or(0, |p| p.tree.size());
                (verified != l.published()).then_some(l.published() - verified)
            })
            .collect();
        if behind.is_empty() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "logs not caught up, entries left: {behind:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for i in [a, b] {
        i.stop.send(true).unwrap();
        let summary = i.task.await.unwrap().unwrap();
        assert!(
            summary.failed_logs.is_empty(),
            "{}: {:?}",
            i.name,
            summary.failed_logs
        );
    }
}
