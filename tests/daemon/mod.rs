//! An in-process `ctwatch run` (daemon mode) with the HTTP API and health monitor, for tests/api.rs and
//! tests/health.rs. Needs `mod common;` next to it.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use ctwatch::api::ApiConfig;
use ctwatch::health::HealthConfig;
use ctwatch::notify::{DeliveryPolicy, Sink};
use ctwatch::run::{RunOptions, RunSummary, ServiceOptions};
use ctwatch::stats::Registry;
use ctwatch::store::SinkRoute;
use ctwatch::tailer::{StartAt, TailConfig};
use ctwatch::watchlist::Watchlist;
use serde_json::Value;
use tokio::sync::watch;

use crate::common::{Env, fast_retry};

/// The watchlist of tests/pipeline.rs and the number of certificates it matches in the 1024 navigli entries
/// (certspotter 0.16 reports the same 61; ../shared/ctdata/CERTSPOTTER.md).
pub const WATCH: &str = "mexi.my\nnip.io\n";
pub const EXPECTED_MATCHES: usize = 61;

pub struct Daemon {
    pub addr: Option<SocketAddr>,
    pub registry: Arc<Registry>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<RunSummary>>,
}

impl Daemon {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr.expect("API configured"))
    }

    /// The URL of the only followed log, as the registry names it.
    pub fn log_url(&self) -> String {
        self.registry.logs()[0].url.clone()
    }

    pub fn verified(&self) -> u64 {
        self.registry
            .logs()
            .first()
            .map(|l| l.stats.verified_size.load(Relaxed))
            .unwrap_or(0)
    }

    pub async fn stop(self) -> RunSummary {
        self.stop.send(true).unwrap();
        self.task.await.unwrap().unwrap()
    }
}

/// Service options with the API on 127.0.0.1:0 (when `api` is Some) and the given health settings.
pub fn service(api: Option<ApiConfig>, health: HealthConfig) -> ServiceOptions {
    ServiceOptions {
        api: api.map(|a| ApiConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..a
        }),
        health,
        ..ServiceOptions::default()
    }
}

/// Start following the logs of `list` from the beginning, polling every 300 ms.
pub async fn start(env: &Env, list: &Path, service: ServiceOptions) -> Daemon {
    let log_list = ctwatch::ct::loglist::parse(&std::fs::read(list).unwrap()).unwrap();
    let sink: Arc<dyn Sink> = env.sink.clone();
    let registry = Arc::new(Registry::default());
    let with_api = service.api.is_some();
    let opts = RunOptions {
        log_list,
        log_list_source: None,
        log_list_refresh: Duration::from_secs(3600),
        watchlist: Watchlist::parse_str("watch.txt", WATCH).unwrap(),
        watchlist_path: None,
        store: env.store.clone(),
        tail: TailConfig {
            poll_interval: Duration::from_millis(300),
            start_at: StartAt::Beginning,
            parallel_requests: 4,
            batch_entries: 256,
            error_backoff: Duration::from_millis(50),
            max_error_backoff: Duration::from_millis(300),
            ..TailConfig::default()
        },
        retry: ctwatch::ctlog::http::RetryPolicy {
            max_attempts: 2,
            ..fast_retry()
        },
        page_size: 256,
        sinks: vec![(sink, SinkRoute::all("collect"))],
        delivery: DeliveryPolicy {
            base_delay: Duration::from_millis(10),
            ..DeliveryPolicy::default()
        },
        drain_timeout: Duration::from_secs(5),
        filter: Default::default(),
        registry: registry.clone(),
        service,
        probe: None,
    };
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(ctwatch::run::run(opts, rx));
    let addr = if with_api {
        let reg = registry.clone();
        Some(
            eventually("the API to listen", Duration::from_secs(10), || {
                let a = reg.api_addr.get().copied();
                async move { a }
            })
            .await,
        )
    } else {
        None
    };
    Daemon {
        addr,
        registry,
        stop,
        task,
    }
}

/// Poll `f` every 50 ms until it returns Some, or panic after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// GET `url` (with an API key when given): status and JSON body.
pub async fn get_json(url: &str, key: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(k) = key {
        req = req.header("X-API-Key", k);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap();
    (status, body)
}

/// Wait until the log is verified to `size` and `n` events were delivered to the test sink.
pub async fn caught_up(env: &Env, d: &Daemon, size: u64, n: usize) {
    eventually("catch-up and delivery", Duration::from_secs(30), || {
        let done = d.verified() == size && env.sink.events.lock().unwrap().len() >= n;
        async move { done.then_some(()) }
    })
    .await;
}
