//! A ctwatch daemon for the console and live-feed tests (and `ctwatch-console-demo`): a fake log on 127.0.0.1
//! serving the 1024 real navigli2025h2 entries plus x509 entries whose SANs are hostile (`<script>...`,
//! `"><img onerror=...>`), a watchlist directory, a sink that works and one that always fails, and the HTTP API
//! with the console. Needs `mod common;` next to it.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use ctwatch::api::ApiConfig;
use ctwatch::notify::{DeliveryPolicy, Sink, SinkError};
use ctwatch::run::{RunOptions, RunSummary, ServiceOptions};
use ctwatch::stats::Registry;
use ctwatch::store::{Delivery, SinkRoute};
use ctwatch::tailer::{StartAt, TailConfig};
use ctwatch::watchlist::Watchlist;
use ctwatch_fakelog::{self as fakelog, FakeEntry, FakeLog};
use tokio::sync::watch;

use crate::common::{Env, fast_retry, navigli_entries};

/// The hostile names, as they appear in certificates (and must appear, as text, on every page).
pub const XSS_SCRIPT: &str = "<script>alert(1)</script>.evil.example";
pub const XSS_IMG: &str = "\"><img src=x onerror=alert(2)>.evil.example";

/// Watchlist files: navigli names that match (61 certificates, tags acme and lab) and the hostile names.
pub const WATCH_ACME: &str = "@acme\nmexi.my\n";
pub const WATCH_LAB: &str = "@lab\nnip.io\nevil.example\n";

/// A sink that always fails permanently (fills the outbox with failed deliveries).
pub struct FailSink;

impl Sink for FailSink {
    fn name(&self) -> &str {
        "webhook:ops"
    }
    fn send<'a>(
        &'a self,
        _events: &'a [Delivery],
    ) -> Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + 'a>> {
        Box::pin(async move {
            Err(SinkError {
                message: "HTTP 500 from https://hooks.example/ctwatch: <b>upstream down</b>".into(),
                retry_after: None,
                permanent: true,
                gone: false,
            })
        })
    }
}

/// An x509_entry leaf (and empty chain) for `der`, as RFC 6962 get-entries serves it.
pub fn x509_entry(der: &[u8], timestamp_ms: u64) -> FakeEntry {
    let mut leaf = vec![0u8, 0u8];
    leaf.extend_from_slice(&timestamp_ms.to_be_bytes());
    leaf.extend_from_slice(&[0, 0]); // x509_entry
    leaf.extend_from_slice(&(der.len() as u32).to_be_bytes()[1..]);
    leaf.extend_from_slice(der);
    leaf.extend_from_slice(&[0, 0]); // no extensions
    FakeEntry {
        leaf_input: leaf,
        extra_data: vec![0, 0, 0],
    }
}

/// A self-signed certificate for `names`, valid from 10 days ago for `days_left` more days.
pub fn cert_der(names: &[&str], days_left: i64) -> Vec<u8> {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut p = rcgen::CertificateParams::new(names).unwrap();
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::days(10);
    p.not_after = now + time::Duration::days(days_left);
    p.distinguished_name
        .push(rcgen::DnType::OrganizationName, "Evil <Corp> & \"Friends\"");
    let key = rcgen::KeyPair::generate().unwrap();
    p.self_signed(&key).unwrap().der().to_vec()
}

/// The navigli entries followed by two certificates with hostile SANs.
pub fn entries() -> Vec<FakeEntry> {
    let mut out = navigli_entries();
    let ts = 1_764_000_000_000;
    out.push(x509_entry(
        &cert_der(&[XSS_SCRIPT, "www.evil.example"], 20),
        ts,
    ));
    out.push(x509_entry(&cert_der(&[XSS_IMG], 200), ts + 1));
    out
}

pub struct Console {
    pub env: Env,
    pub log: Arc<FakeLog>,
    pub watch_dir: PathBuf,
    pub addr: SocketAddr,
    pub registry: Arc<Registry>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<RunSummary>>,
    _server: tokio::task::JoinHandle<()>,
}

impl Console {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn verified(&self) -> u64 {
        self.registry
            .logs()
            .first()
            .map(|l| l.stats.verified_size.load(Relaxed))
            .unwrap_or(0)
    }

    /// Wait until the log is verified up to `size`.
    pub async fn wait_verified(&self, size: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while self.verified() < size {
            assert!(
                tokio::time::Instant::now() < deadline,
                "log not verified to {size}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn stop(self) -> RunSummary {
        self.stop.send(true).unwrap();
        self.task.await.unwrap().unwrap()
    }
}

/// Start the daemon with `api` (listen address forced to 127.0.0.1:0) on a fake log holding `entries` and
/// announcing the first `published` (more can be published later with `log.publish`).
pub async fn start(
    api: ApiConfig,
    entries: Vec<FakeEntry>,
    published: u64,
    store_all: bool,
) -> Console {
    let log = FakeLog::new(entries);
    log.publish(published);
    let (url, server) = fakelog::serve(log.clone()).await.unwrap();
    let env = Env::new();
    let list = env.write_log_list(&[(&log, &url)]);
    let watch_dir = env.dir.path().join("watchlists");
    std::fs::create_dir_all(&watch_dir).unwrap();
    std::fs::write(watch_dir.join("acme.txt"), WATCH_ACME).unwrap();
    std::fs::write(watch_dir.join("lab.txt"), WATCH_LAB).unwrap();
    let log_list = ctwatch::ct::loglist::parse(&std::fs::read(&list).unwrap()).unwrap();
    let registry = Arc::new(Registry::with_feed(ctwatch::feed::Feed::new(
        api.stream.client_buffer_messages,
    )));
    let collect: Arc<dyn Sink> = env.sink.clone();
    let fail: Arc<dyn Sink> = Arc::new(FailSink);
    let opts = RunOptions {
        log_list,
        log_list_source: None,
        log_list_refresh: Duration::from_secs(3600),
        watchlist: Watchlist::load(&watch_dir).unwrap(),
        watchlist_path: Some(watch_dir.clone()),
        store: env.store.clone(),
        tail: TailConfig {
            poll_interval: Duration::from_millis(200),
            start_at: StartAt::Beginning,
            parallel_requests: 4,
            batch_entries: 256,
            store_all,
            error_backoff: Duration::from_millis(50),
            max_error_backoff: Duration::from_millis(300),
            ..TailConfig::default()
        },
        retry: ctwatch::ctlog::http::RetryPolicy {
            max_attempts: 2,
            ..fast_retry()
        },
        page_size: 256,
        sinks: vec![
            (collect, SinkRoute::all("collect")),
            (fail, SinkRoute::all("webhook:ops")),
        ],
        delivery: DeliveryPolicy {
            base_delay: Duration::from_millis(10),
            ..DeliveryPolicy::default()
        },
        drain_timeout: Duration::from_secs(5),
        filter: Default::default(),
        registry: registry.clone(),
        service: ServiceOptions {
            api: Some(ApiConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                ..api
            }),
            ..ServiceOptions::default()
        },
        probe: None,
    };
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(ctwatch::run::run(opts, rx));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let addr = loop {
        if let Some(a) = registry.api_addr.get() {
            break *a;
        }
        assert!(tokio::time::Instant::now() < deadline, "API did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    Console {
        env,
        log,
        watch_dir,
        addr,
        registry,
        stop,
        task,
        _server: server,
    }
}

/// An API config with one key (`KEY`, name `ops`).
pub const KEY: &str = "console-test-key-0123456789";

pub fn keyed_api() -> ApiConfig {
    ApiConfig {
        keys: vec![ctwatch::api::ApiKey {
            name: "ops".into(),
            key: Some(KEY.into()),
            key_env: None,
            requests_per_minute: 10_000,
        }],
        ..ApiConfig::default()
    }
}

/// Probe results for the Expiry page: a host serving the newest stored certificate (WARNING, tag lab), a host
/// serving an older one than the newest logged (CRITICAL, tag acme), a healthy one (acme) and an unreachable,
/// untagged one.
pub fn seed_probes(store: &ctwatch::store::Store) {
    let now = ctwatch::store::unix_now();
    let evil = store.search("evil.example", 10).unwrap();
    let served = evil
        .iter()
        .find(|r| r.dns_names.iter().any(|n| n == "www.evil.example"))
        .expect("the evil.example certificate is stored");
    let mexi = store.search("mexi.my", 1).unwrap();
    let mexi_host = mexi[0].dns_names[0].trim_start_matches("*.").to_string();
    /// host, tags, level, status, days left, served SHA-256
    type Seed<'a> = (
        &'a str,
        &'a [&'a str],
        &'a str,
        &'a str,
        Option<i64>,
        Option<String>,
    );
    let hosts: [Seed<'_>; 4] = [
        (
            "www.evil.example",
            &["lab"],
            "WARNING",
            "warning",
            Some(19),
            Some(served.cert_sha256.clone()),
        ),
        (
            &mexi_host,
            &["acme"],
            "CRITICAL",
            "expired",
            Some(-3),
            Some("ab".repeat(32)),
        ),
        (
            "shop.example.org",
            &["acme"],
            "OK",
            "ok",
            Some(74),
            Some("cd".repeat(32)),
        ),
        (
            "api.example.net",
            &[],
            "CRITICAL",
            "unreachable",
            None,
            None,
        ),
    ];
    for (host, tags, level, status, days, sha) in hosts {
        let target = ctwatch::probe::Target {
            host: host.to_string(),
            port: 443,
        };
        let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
        store.add_probe_target(&target, &tags, now).unwrap();
        let not_after = days.map(|d| ctwatch::event::rfc3339(now + d * 86400 + 3600));
        let report: ctwatch::probe::HostReport = serde_json::from_value(serde_json::json!({
            "domain": host, "port": 443, "status": status, "level": level, "days_left": days,
            "not_before": null, "not_after": not_after,
            "issuer": days.map(|_| "C=US, O=Let's Encrypt, CN=R11"), "subject": null, "sans": [],
            "cert_sha256": sha, "tbs_sha256": null, "seen_in_ct": null, "problems": [],
            "error": if days.is_none() { Some("connect: connection refused") } else { None },
            "addresses": [], "probed_at": ctwatch::event::rfc3339(now), "duration_ms": 40
        }))
        .unwrap();
        store
            .record_probe(&ctwatch::store::ProbeRecord {
                report: &report,
                probed_at: now - 120,
                consecutive_failures: 0,
                snapshot: None,
                next_probe_at: now + 3600,
                event: None,
                findings: None,
            })
            .unwrap();
    }
}
