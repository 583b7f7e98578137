//! Fetching adapts to the log: a slow log with short pages gets a wider window and its page size learned; a
//! rate-limited log shrinks the window, its 429s are counted, and nothing is lost. Growing fake logs
//! (`ctwatch_fakelog::growing`) serve unique certificates made from the real navigli entries.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use common::*;
use ctwatch::stats::Registry;
use ctwatch::tailer::{StartAt, TailConfig};
use ctwatch_fakelog::growing::{self, Catalog, GrowingLog, Kind, Knobs};

async fn serve_log(entries: u64, knobs: Knobs) -> (Arc<GrowingLog>, Env, std::path::PathBuf) {
    serve_kind(Kind::Rfc6962, entries, knobs).await
}

async fn serve_kind(
    kind: Kind,
    entries: u64,
    knobs: Knobs,
) -> (Arc<GrowingLog>, Env, std::path::PathBuf) {
    let catalog = Arc::new(Catalog::new(&navigli_entries()).unwrap());
    let log = GrowingLog::new(kind, 1, catalog, knobs);
    log.grow(entries, 1_800_000_000_000);
    let (url, _server) = growing::serve(log.clone()).await.unwrap();
    let env = Env::new();
    let entry = vec![log.log_list_entry(&url, "growing test log")];
    let (rfc, tiled) = match kind {
        Kind::Rfc6962 => (entry, vec![]),
        Kind::Tiled => (vec![], entry),
    };
    let list = serde_json::json!({
        "version": "1.0",
        "log_list_timestamp": "2026-01-01T00:00:00Z",
        "operators": [{"name": "test", "email": ["test@example.invalid"],
                       "logs": rfc, "tiled_logs": tiled}]
    });
    let path = env.dir.path().join("log_list.json");
    std::fs::write(&path, list.to_string()).unwrap();
    (log, env, path)
}

fn config() -> TailConfig {
    TailConfig {
        parallel_requests: 32,
        batch_entries: 4096,
        ..once_config(StartAt::Beginning)
    }
}

fn stats(registry: &Registry) -> Arc<ctwatch::stats::LogStats> {
    registry.logs()[0].stats.clone()
}

#[tokio::test]
async fn a_slow_log_with_short_pages_gets_a_wider_window_and_its_pages_learned() {
    let knobs = Knobs {
        latency_ms: (60, 90),
        page_cap: 32,
        ..Knobs::default()
    };
    let (log, env, list) = serve_log(4096, knobs).await;
    let registry = Arc::new(Registry::default());
    let summary = run_once_in(&env, &list, "mexi.my\n", config(), registry.clone()).await;
    assert!(summary.ok(), "{summary:?}");
    let s = stats(&registry);
    assert_eq!(s.verified_size.load(Relaxed), 4096);
    let window = s.concurrency_limit();
    assert!(
        window >= 16,
        "the window grew while ranges waited: {window}"
    );
    let requests = log.counters()["ctwatch"].requests;
    // 128 pages of 32, plus get-sth: the page size was learned, no request was wasted on overlaps.
    assert!((128..=140).contains(&requests), "{requests} requests");
    assert_eq!(s.fetch.rate_limited.load(Relaxed), 0);
    assert!(s.fetch.bytes.load(Relaxed) > 4096 * 1000);
}

#[tokio::test]
async fn a_rate_limited_log_shrinks_the_window_and_every_429_is_counted() {
    let knobs = Knobs {
        latency_ms: (20, 40),
        page_cap: 32,
        rate_limit_per_sec: 15.0,
        ..Knobs::default()
    };
    let (log, env, list) = serve_log(2048, knobs).await;
    let registry = Arc::new(Registry::default());
    let summary = run_once_in(&env, &list, "mexi.my\n", config(), registry.clone()).await;
    assert!(summary.ok(), "{summary:?}");
    let s = stats(&registry);
    assert_eq!(
        s.verified_size.load(Relaxed),
        2048,
        "nothing lost to the 429s"
    );
    let served = log.counters()["ctwatch"].clone();
    assert!(
        served.rate_limited > 0,
        "the test must provoke 429s: {served:?}"
    );
    assert_eq!(
        s.fetch.rate_limited.load(Relaxed),
        served.rate_limited,
        "every 429 counted"
    );
    assert_eq!(s.fetch.requests.load(Relaxed), served.requests);
    assert!(s.fetch.retries.load(Relaxed) >= served.rate_limited);
    assert!(
        s.concurrency_limit() < 32,
        "push-back shrank the window: {}",
        s.concurrency_limit()
    );
}

/// A log that grows while a long catch-up is under way: its head is polled on the usual cadence without pausing
/// the downloads (the catch-up extends to each newer head), and every entry is verified and reported once.
async fn follows_a_growing_head_without_pausing_downloads(kind: Kind) {
    let knobs = Knobs {
        latency_ms: (150, 250),
        page_cap: 32,
        ..Knobs::default()
    };
    // About 3 s of downloads with two requests in flight: 32 pages of 32, or 32 tiles of 256.
    let initial = match kind {
        Kind::Rfc6962 => 1024,
        Kind::Tiled => 8192,
    };
    let (log, env, list) = serve_kind(kind, initial, knobs).await;
    let registry = Arc::new(Registry::default());
    let tail = TailConfig {
        once: false,
        poll_interval: std::time::Duration::from_millis(500),
        parallel_requests: 2,
        batch_entries: 512,
        ..config()
    };
    let opts = run_options(&env, &list, "mexi.my\n", tail, registry.clone());
    let (stop, rx) = tokio::sync::watch::channel(false);
    let run = tokio::spawn(ctwatch::run::run(opts, rx));
    let grower = {
        let log = log.clone();
        tokio::spawn(async move {
            for n in 0..12u64 {
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                log.grow(40, 1_800_000_001_000 + n);
            }
        })
    };
    grower.await.unwrap();
    let published = log.published();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while registry
        .logs()
        .first()
        .map(|l| l.stats.verified_size.load(Relaxed))
        != Some(published)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "verified {:?} of {published}",
            registry
                .logs()
                .first()
                .map(|l| l.stats.verified_size.load(Relaxed))
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    let summary = run.await.unwrap().unwrap();
    assert!(summary.ok(), "{summary:?}");
    let served = log.counters()["ctwatch"].clone();
    assert!(
        served.heads_during_fetch >= 2,
        "the head was polled while entries were downloading: {served:?}"
    );
    let events = env.sink.take();
    let tbs = tbs_set(&events);
    assert!(!tbs.is_empty(), "the watched names were reported");
    let mut unique = tbs.clone();
    unique.dedup();
    assert_eq!(unique.len(), tbs.len(), "each certificate reported once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rfc6962_log_is_followed_across_heads_without_pausing_downloads() {
    follows_a_growing_head_without_pausing_downloads(Kind::Rfc6962).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiled_log_is_followed_across_heads_without_pausing_downloads() {
    follows_a_growing_head_without_pausing_downloads(Kind::Tiled).await;
}
