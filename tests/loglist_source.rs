//! The log list as a live input: fetched from a local HTTP server serving Google's real signed list and its
//! signature, cached, revalidated with conditional GETs, with fallbacks when offline; and `run` in daemon mode
//! starting and stopping logs as the list changes, without a restart.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use common::*;
use ctwatch::logsource::{LogListSource, Origin};
use ctwatch::notify::{DeliveryPolicy, Sink};
use ctwatch::run::RunOptions;
use ctwatch::store::SinkRoute;
use ctwatch::tailer::{StartAt, TailConfig};
use ctwatch::watchlist::Watchlist;
use ctwatch_fakelog::tiled::{self as fakelog_tiled, FakeTiledLog};
use ctwatch_fakelog::{self as fakelog, FakeLog};
use sha2::Digest;

/// Serves `/log_list.json` (with an ETag, answering 304 to a matching If-None-Match) and `/log_list.sig`.
#[derive(Default)]
struct ListServer {
    json: Mutex<Vec<u8>>,
    sig: Mutex<Vec<u8>>,
    down: AtomicBool,
    list_requests: AtomicU64,
    not_modified: AtomicU64,
}

impl ListServer {
    fn set(&self, json: &[u8], sig: &[u8]) {
        *self.json.lock().unwrap() = json.to_vec();
        *self.sig.lock().unwrap() = sig.to_vec();
    }

    fn etag(&self) -> String {
        let h = sha2::Sha256::digest(&*self.json.lock().unwrap());
        format!("\"{}\"", hex::encode(&h[..8]))
    }
}

async fn list(State(s): State<Arc<ListServer>>, headers: HeaderMap) -> Response {
    s.list_requests.fetch_add(1, Relaxed);
    if s.down.load(Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    let etag = s.etag();
    if headers.get("if-none-match").and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        s.not_modified.fetch_add(1, Relaxed);
        return StatusCode::NOT_MODIFIED.into_response();
    }
    ([("etag", etag)], s.json.lock().unwrap().clone()).into_response()
}

async fn sig(State(s): State<Arc<ListServer>>) -> Response {
    if s.down.load(Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    s.sig.lock().unwrap().clone().into_response()
}

/// Start a list server; returns it with the list URL and the signature URL.
async fn list_server() -> (Arc<ListServer>, String, String) {
    let state = Arc::new(ListServer::default());
    let app = Router::new()
        .route("/log_list.json", get(list))
        .route("/log_list.sig", get(sig))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (
        state,
        format!("http://{addr}/log_list.json"),
        format!("http://{addr}/log_list.sig"),
    )
}

fn signed_list() -> (Vec<u8>, Vec<u8>) {
    (
        std::fs::read(fixture(
            "loglists/google_log_list_v3_v80.14_2026-01-02.json",
        ))
        .unwrap(),
        std::fs::read(fixture("loglists/google_log_list_v3_v80.14_2026-01-02.sig")).unwrap(),
    )
}

fn source(url: &str, sig: Option<&str>, cache: Option<&std::path::Path>) -> LogListSource {
    LogListSource::new(
        url,
        sig.map(str::to_string),
        cache.map(|c| c.to_path_buf()),
        ctwatch::ctlog::http::build_client().unwrap(),
    )
}

#[tokio::test]
async fn signed_list_is_verified_cached_and_revalidated_then_cache_is_used_offline() {
    let (server, url, sig_url) = list_server().await;
    let (json, sig) = signed_list();
    server.set(&json, &sig);
    let cache = tempfile::tempdir().unwrap();
    let src = source(&url, Some(&sig_url), Some(cache.path()));

    let (list, origin) = src.load().await.unwrap();
    assert_eq!(origin, Origin::Fetched(url.clone()));
    assert_eq!(list.version, "80.14");
    let tiled = list
        .logs
        .iter()
        .filter(|l| l.kind_name() == "tiled")
        .count();
    assert_eq!((list.logs.len() - tiled, tiled), (49, 26));

    // Unchanged on the server: a conditional GET, answered 304, and the cached copy is used.
    let (list, origin) = src.load().await.unwrap();
    assert_eq!(origin, Origin::NotModified(url.clone()));
    assert_eq!(server.not_modified.load(Relaxed), 1);
    assert_eq!(list.logs.len(), 75);

    // Offline: the cached copy.
    server.down.store(true, Relaxed);
    let (list, origin) = src.load().await.unwrap();
    assert!(matches!(origin, Origin::Cache(_)), "{origin:?}");
    assert_eq!(list.version, "80.14");
}

#[tokio::test]
async fn a_list_with_one_changed_byte_is_refused_with_a_clear_error() {
    let (server, url, sig_url) = list_server().await;
    let (json, sig) = signed_list();
    let cache = tempfile::tempdir().unwrap();
    let src = source(&url, Some(&sig_url), Some(cache.path()));
    server.set(&json, &sig);
    assert!(matches!(src.load().await.unwrap().1, Origin::Fetched(_)));

    // "usable" -> "usabld" somewhere: still valid JSON of the same shape, but not what Google signed.
    let mut bad = json.clone();
    let at = bad.windows(6).position(|w| w == b"usable").unwrap() + 5;
    bad[at] = b'd';
    server.set(&bad, &sig);
    let err = format!("{:#}", src.fetch().await.unwrap_err());
    assert!(
        err.contains("does not verify with Google's log list key"),
        "{err}"
    );
    // load() never uses the tampered bytes: it falls back to the verified cached copy.
    let (list, origin) = src.load().await.unwrap();
    assert!(matches!(origin, Origin::Cache(_)), "{origin:?}");
    assert_eq!(list.logs.len(), 75);

    // Without a cache: the snapshot bundled in the binary.
    let no_cache = source(&url, Some(&sig_url), None);
    let (list, origin) = no_cache.load().await.unwrap();
    assert_eq!(origin, Origin::Bundled);
    assert_eq!(list.version, "89.25");
}

#[tokio::test]
async fn offline_without_cache_falls_back_to_the_bundled_snapshot() {
    let (server, url, sig_url) = list_server().await;
    server.down.store(true, Relaxed);
    let cache = tempfile::tempdir().unwrap();
    let (list, origin) = source(&url, Some(&sig_url), Some(cache.path()))
        .load()
        .await
        .unwrap();
    assert_eq!(origin, Origin::Bundled);
    let tiled = list
        .logs
        .iter()
        .filter(|l| l.kind_name() == "tiled")
        .count();
    assert_eq!(tiled, 75); // the bundled all_logs_list v89.25
}

/// Wait until `cond` holds (or fail after 30 s).
async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let started = Instant::now();
    while !cond() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether a counter stays still for a while (the log's tailer is stopped).
async fn stays_still(counter: impl Fn() -> u64) -> bool {
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = counter();
    tokio::time::sleep(Duration::from_millis(800)).await;
    counter() == before
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_follows_the_list_new_logs_start_removed_and_retired_logs_stop() {
    let tiled =
        FakeTiledLog::from_tile_dir("navigli2025h2", &fixture("static-ct/navigli2025h2")).unwrap();
    let rfc = FakeLog::new(navigli_entries());
    let (tiled_url, _a) = fakelog_tiled::serve(tiled.clone()).await.unwrap();
    let (rfc_url, _b) = fakelog::serve(rfc.clone()).await.unwrap();
    let only_tiled = fakelog_tiled::log_list_json(&[], &[(&tiled, &tiled_url)]);
    let only_rfc = fakelog_tiled::log_list_json(&[(&rfc, &rfc_url)], &[]);
    let mut rfc_retired: serde_json::Value = serde_json::from_str(&fakelog_tiled::log_list_json(
        &[(&rfc, &rfc_url)],
        &[(&tiled, &tiled_url)],
    ))
    .unwrap();
    rfc_retired["operators"][0]["logs"][0]["state"] =
        serde_json::json!({"retired": {"timestamp": "2026-01-02T00:00:00Z"}});

    let (server, url, _) = list_server().await;
    server.set(only_tiled.as_bytes(), b"");
    let src = source(&url, None, None);
    let (first_list, _) = src.load().await.unwrap();

    let env = Env::new();
    let sink: Arc<dyn Sink> = env.sink.clone();
    let opts = RunOptions {
        log_list: first_list,
        log_list_source: Some(src),
        log_list_refresh: Duration::from_millis(200),
        watchlist: Watchlist::parse_str("watch.txt", "mexi.my\nnip.io\n").unwrap(),
        watchlist_path: None,
        store: env.store.clone(),
        tail: TailConfig {
            once: false,
            poll_interval: Duration::from_millis(100),
            ..once_config(StartAt::Beginning)
        },
        retry: fast_retry(),
        page_size: 256,
        sinks: vec![(sink, SinkRoute::all("collect"))],
        delivery: DeliveryPolicy {
            base_delay: Duration::from_millis(10),
            ..DeliveryPolicy::default()
        },
        drain_timeout: Duration::from_secs(10),
        registry: Default::default(),
        service: Default::default(),
        probe: None,
        filter: Default::default(),
    };
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let run = tokio::spawn(ctwatch::run::run(opts, stop_rx));
    let verified = |url: &str| {
        env.store
            .list_logs()
            .unwrap()
            .iter()
            .find(|l| l.url == url)
            .map(|l| l.verified_size)
    };

    wait_for("the tiled log to catch up", || {
        verified(&tiled_url) == Some(1024)
    })
    .await;
    assert_eq!(verified(&rfc_url), None, "not in the list yet");

    // The tiled log leaves the list, the RFC 6962 log enters it.
    server.set(only_rfc.as_bytes(), b"");
    wait_for("the new log to catch up", || {
        verified(&rfc_url) == Some(1024)
    })
    .await;
    assert!(
        stays_still(|| tiled.request_count("checkpoint")).await,
        "removed log still polled"
    );
    assert!(
        !stays_still(|| rfc.request_count("get-sth")).await,
        "new log not polled"
    );

    // Back in the list (it resumes from its stored position), while the RFC 6962 log is retired.
    let data_tiles = tiled.request_count("data");
    let polls = tiled.request_count("checkpoint");
    server.set(rfc_retired.to_string().as_bytes(), b"");
    wait_for("the tiled log to be polled again", || {
        tiled.request_count("checkpoint") > polls + 2
    })
    .await;
    assert!(
        stays_still(|| rfc.request_count("get-sth")).await,
        "retired log still polled"
    );
    assert_eq!(
        tiled.request_count("data"),
        data_tiles,
        "resumed log downloaded again"
    );

    stop.send(true).unwrap();
    let summary = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("run stops on shutdown")
        .unwrap()
        .unwrap();
    assert!(summary.failed_logs.is_empty(), "{summary:?}");
    // The same 61 certificates in both logs: reported once.
    let events = env.sink.take();
    assert_eq!(events.len(), 61);
    assert!(server.list_requests.load(Relaxed) >= 3);
}
