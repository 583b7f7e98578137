//! Shared harness: a fake log with the 1024 real navigli entries, a collecting sink, and a one-shot run.
#![allow(dead_code)]

pub mod pg;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ctwatch::ctlog::http::RetryPolicy;
use ctwatch::notify::{DeliveryPolicy, Sink, SinkError};
use ctwatch::run::{RunOptions, RunSummary};
use ctwatch::store::{Delivery, SinkRoute, Store};
use ctwatch::tailer::{StartAt, TailConfig};
use ctwatch::watchlist::Watchlist;
use ctwatch_fakelog::{self as fakelog, FakeEntry, FakeLog};
use serde_json::Value;

pub const NAVIGLI_ROOT_778: &str = "+WnHOMRZl/LG1669oeskbdK9bcO4nkrY1cfVyknC52U=";
pub const NAVIGLI_ROOT_1024: &str = "EMfGG85uIddeOXt5/wdQGP3IQd0COCqoLg9Q6CsPLJA=";

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// The 1024 real navigli2025h2 entries, in order.
pub fn navigli_entries() -> Vec<FakeEntry> {
    let mut out = Vec::new();
    for (a, b) in [(0, 255), (256, 511), (512, 767), (768, 1023)] {
        let body = std::fs::read(fixture(&format!(
            "rfc6962/navigli2025h2-converted-from-tiles/get-entries_start-{a}_end-{b}.json"
        )))
        .unwrap();
        out.extend(fakelog::entries_from_get_entries_json(&body).unwrap());
    }
    assert_eq!(out.len(), 1024);
    out
}

/// A sink that records every payload it is given.
#[derive(Default)]
pub struct Collect {
    pub events: Mutex<Vec<Value>>,
}

impl Sink for Collect {
    fn name(&self) -> &str {
        "collect"
    }
    fn max_batch(&self) -> usize {
        100
    }
    fn send<'a>(
        &'a self,
        events: &'a [Delivery],
    ) -> Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + 'a>> {
        Box::pin(async move {
            self.events
                .lock()
                .unwrap()
                .extend(events.iter().map(|d| d.payload.clone()));
            Ok(())
        })
    }
}

impl Collect {
    pub fn take(&self) -> Vec<Value> {
        std::mem::take(&mut *self.events.lock().unwrap())
    }
}

/// A test environment: temp dir with the log list, watchlist and database (a SQLite file in the dir, or a
/// private PostgreSQL database with [`Env::postgres`]).
pub struct Env {
    pub dir: tempfile::TempDir,
    pub store: Arc<Store>,
    pub sink: Arc<Collect>,
    pub log_lists: Vec<String>,
    /// Declared last: dropped after `store` has closed its connections.
    pub pg: Option<pg::TestDb>,
}

/// Which engine a process test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Env {
    pub fn new() -> Env {
        Env::on(Backend::Sqlite)
    }

    /// An environment whose database is a fresh PostgreSQL database (see [`pg::TestDb`]).
    pub fn postgres() -> Env {
        Env::on(Backend::Postgres)
    }

    pub fn on(backend: Backend) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let pg = (backend == Backend::Postgres).then(pg::TestDb::new);
        let db = match &pg {
            Some(db) => PathBuf::from(&db.url),
            None => dir.path().join("ctwatch.db"),
        };
        let store = Arc::new(Store::open(&db).unwrap());
        Env {
            dir,
            store,
            sink: Arc::new(Collect::default()),
            log_lists: Vec::new(),
            pg,
        }
    }

    /// What `--db` takes: the SQLite file, or the PostgreSQL URL.
    pub fn db_path(&self) -> PathBuf {
        match &self.pg {
            Some(db) => PathBuf::from(&db.url),
            None => self.dir.path().join("ctwatch.db"),
        }
    }

    /// Write a log list naming `logs` (each: fake log + its URL) and return its path.
    pub fn write_log_list(&self, logs: &[(&Arc<FakeLog>, &str)]) -> PathBuf {
        let mut list: Value =
            serde_json::from_str(&logs[0].0.log_list_json(logs[0].1, "fake log 0")).unwrap();
        for (i, (log, url)) in logs.iter().enumerate().skip(1) {
            let other: Value =
                serde_json::from_str(&log.log_list_json(url, &format!("fake log {i}"))).unwrap();
            let entry = other["operators"][0]["logs"][0].clone();
            list["operators"][0]["logs"]
                .as_array_mut()
                .unwrap()
                .push(entry);
        }
        let path = self.dir.path().join("log_list.json");
        std::fs::write(&path, list.to_string()).unwrap();
        path
    }

    pub fn write_watchlist(&self, text: &str) -> PathBuf {
        let path = self.dir.path().join("watch.txt");
        std::fs::write(&path, text).unwrap();
        path
    }
}

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 8,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_secs(5),
        request_timeout: Duration::from_secs(10),
        ..RetryPolicy::default()
    }
}

pub fn once_config(start_at: StartAt) -> TailConfig {
    TailConfig {
        once: true,
        start_at,
        parallel_requests: 4,
        batch_entries: 256,
        once_max_failures: 1,
        error_backoff: Duration::from_millis(10),
        ..TailConfig::default()
    }
}

/// `ctwatch run --once` in-process.
pub async fn run_once(env: &Env, log_list: &Path, watchlist: &str, tail: TailConfig) -> RunSummary {
    run_once_in(env, log_list, watchlist, tail, Default::default()).await
}

/// [`run_once`] with a registry the caller keeps, to read the per-log figures afterwards.
pub async fn run_once_in(
    env: &Env,
    log_list: &Path,
    watchlist: &str,
    tail: TailConfig,
    registry: Arc<ctwatch::stats::Registry>,
) -> RunSummary {
    let opts = run_options(env, log_list, watchlist, tail, registry);
    let (_tx, rx) = tokio::sync::watch::channel(false);
    ctwatch::run::run(opts, rx).await.unwrap()
}

/// In-process `ctwatch run` options: the log list file, a watchlist text, the environment's store and sink.
pub fn run_options(
    env: &Env,
    log_list: &Path,
    watchlist: &str,
    tail: TailConfig,
    registry: Arc<ctwatch::stats::Registry>,
) -> RunOptions {
    let list = ctwatch::ct::loglist::parse(&std::fs::read(log_list).unwrap()).unwrap();
    let wl = Watchlist::parse_str("watch.txt", watchlist).unwrap();
    let sink: Arc<dyn Sink> = env.sink.clone();
    RunOptions {
        log_list: list,
        log_list_source: None,
        log_list_refresh: Duration::from_secs(3600),
        watchlist: wl,
        watchlist_path: None,
        store: env.store.clone(),
        tail,
        retry: fast_retry(),
        page_size: 256,
        sinks: vec![(sink, SinkRoute::all("collect"))],
        delivery: DeliveryPolicy {
            base_delay: Duration::from_millis(10),
            ..DeliveryPolicy::default()
        },
        drain_timeout: Duration::from_secs(10),
        filter: Default::default(),
        registry,
        service: Default::default(),
        probe: None,
    }
}

/// tbs_sha256 values of reported certificate events (health alerts and other kinds are skipped), sorted.
pub fn tbs_set(events: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = events
        .iter()
        .filter(|e| e["kind"] != "health")
        .map(|e| {
            e["tbs_sha256"]
                .as_str()
                .expect("certificate event without tbs_sha256")
                .to_string()
        })
        .collect();
    v.sort();
    v
}

/// One fake log with `entries`, served on 127.0.0.1, and a test environment whose log list names it.
pub struct OneLog {
    pub log: Arc<FakeLog>,
    pub url: String,
    pub env: Env,
    pub list: PathBuf,
    _server: tokio::task::JoinHandle<()>,
}

pub async fn one_log(entries: Vec<FakeEntry>) -> OneLog {
    one_log_on(entries, Backend::Sqlite).await
}

/// [`one_log`] with the database on `backend`.
pub async fn one_log_on(entries: Vec<FakeEntry>, backend: Backend) -> OneLog {
    let log = FakeLog::new(entries);
    let (url, server) = fakelog::serve(log.clone()).await.unwrap();
    let env = Env::on(backend);
    let list = env.write_log_list(&[(&log, &url)]);
    OneLog {
        log,
        url,
        env,
        list,
        _server: server,
    }
}
