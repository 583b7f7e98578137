//! The HTTP API of `ctwatch run --listen 127.0.0.1:0` against a fake log serving the 1024 real navigli2025h2
//! entries: /health, /metrics (parsed with a Prometheus parser), bulk-check with and without keys against local
//! TLS servers, search, logs, the per-key rate limit, size limits and JSON errors.

mod common;
mod daemon;
mod probe_support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use ctwatch::api::{ApiConfig, ApiKey};
use ctwatch::health::{HealthConfig, HealthThresholds};
use ctwatch::probe::{ProbeOptions, StaticResolver};
use ctwatch_fakelog::{self as fakelog, FakeLog, Faults};
use daemon::*;
use serde_json::{Value, json};

const KEY: &str = "psa-key-0123456789abcdef";
const TINY_KEY: &str = "tiny-key-0123456789abcdef";

async fn navigli() -> (Arc<FakeLog>, String, tokio::task::JoinHandle<()>) {
    let log = FakeLog::new(navigli_entries());
    let (url, srv) = fakelog::serve(log.clone()).await.unwrap();
    (log, url, srv)
}

fn no_alerts() -> HealthConfig {
    HealthConfig {
        alerts: false,
        ..HealthConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_turns_503_when_the_log_stops_answering_and_200_when_it_is_back() {
    let (log, url, _srv) = navigli().await;
    let env = Env::new();
    let list = env.write_log_list(&[(&log, &url)]);
    let api = ApiConfig {
        health: HealthThresholds {
            log_silence_secs: 2,
            sink_failing_secs: 3600,
        },
        ..ApiConfig::default()
    };
    let d = start(&env, &list, service(Some(api), no_alerts())).await;
    caught_up(&env, &d, 1024, EXPECTED_MATCHES).await;
    let (status, body) = get_json(&d.url("/health"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["logs"], 1);
    assert_eq!(body["problems"], json!([]));

    log.set_faults(Faults {
        sth_down: true,
        ..Faults::default()
    });
    let health = d.url("/health");
    let body = eventually("/health to answer 503", Duration::from_secs(15), || {
        let health = health.clone();
        async move {
            let (status, body) = get_json(&health, None).await;
            (status == 503).then_some(body)
        }
    })
    .await;
    assert_eq!(body["status"], "unhealthy");
    let problems = body["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{body}");
    assert_eq!(problems[0]["check"], "log_silent");
    assert_eq!(problems[0]["subject"], d.log_url());
    assert!(
        problems[0]["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("no successful contact with {}", d.log_url())),
        "{body}"
    );

    log.set_faults(Faults::default());
    eventually(
        "/health to answer 200 again",
        Duration::from_secs(15),
        || {
            let health = health.clone();
            async move { (get_json(&health, None).await.0 == 200).then_some(()) }
        },
    )
    .await;
    d.stop().await;
}

fn sample_value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let s = scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .unwrap_or_else(|| panic!("no sample {name} {labels:?}"));
    match s.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => v,
        ref other => panic!("{name}: unexpected {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_prometheus_exposition_with_the_right_values() {
    let (log, url, _srv) = navigli().await;
    let env = Env::new();
    let list = env.write_log_list(&[(&log, &url)]);
    let before = ctwatch::store::unix_now();
    let d = start(
        &env,
        &list,
        service(Some(ApiConfig::default()), no_alerts()),
    )
    .await;
    caught_up(&env, &d, 1024, EXPECTED_MATCHES).await;
    // Delivered means marked delivered in the store too.
    let st = env.store.clone();
    eventually("deliveries marked", Duration::from_secs(10), || {
        let done = st.outbox_summary().unwrap().first().map(|s| s.delivered) == Some(61);
        async move { done.then_some(()) }
    })
    .await;

    let resp = reqwest::get(d.url("/metrics")).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = resp.text().await.unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let log_url = d.log_url();
    let log = [
        ("log", log_url.as_str()),
        ("kind", "rfc6962"),
        ("operator", "ctwatch tests"),
    ];
    assert_eq!(
        sample_value(&scrape, "ctwatch_log_verified_size", &log),
        1024.0
    );
    assert_eq!(sample_value(&scrape, "ctwatch_log_head_size", &log), 1024.0);
    assert_eq!(
        sample_value(&scrape, "ctwatch_log_backlog_entries", &log),
        0.0
    );
    assert_eq!(
        sample_value(&scrape, "ctwatch_log_entries_processed_total", &log),
        1024.0
    );
    let last = sample_value(&scrape, "ctwatch_log_last_success_timestamp_seconds", &log);
    assert!(
        last >= before as f64 && last <= ctwatch::store::unix_now() as f64,
        "{last}"
    );
    assert_eq!(
        sample_value(
            &scrape,
            "ctwatch_events_total",
            &[("kind", "new_certificate")]
        ),
        61.0
    );
    assert_eq!(
        sample_value(
            &scrape,
            "ctwatch_outbox_delivered_total",
            &[("sink", "collect")]
        ),
        61.0
    );
    assert_eq!(
        sample_value(&scrape, "ctwatch_outbox_pending", &[("sink", "collect")]),
        0.0
    );
    assert_eq!(
        sample_value(&scrape, "ctwatch_outbox_failed", &[("sink", "collect")]),
        0.0
    );
    assert_eq!(
        sample_value(
            &scrape,
            "ctwatch_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert_eq!(sample_value(&scrape, "ctwatch_logs_followed", &[]), 1.0);
    let start = sample_value(&scrape, "ctwatch_process_start_time_seconds", &[]);
    assert!((start - before as f64).abs() < 5.0, "{start} vs {before}");
    // The counter type survives parsing; no probe table, no probe series.
    assert!(text.contains("# TYPE ctwatch_log_entries_processed_total counter\n"));
    assert!(!text.contains("ctwatch_cert_expiry_timestamp_seconds"));
    d.stop().await;
}

/// A TLS server for good.test (40 days left) and a dead port for dead.test, both on 127.0.0.1.
async fn probe_targets() -> ProbeOptions {
    let pki = probe_support::Pki::new();
    let good = probe_support::serve_tls("127.0.0.1", pki.leaf(&["good.test"], -10, 40)).await;
    let dead = probe_support::dead_port().await;
    let mut resolver = StaticResolver::new();
    resolver.insert("good.test", [good]);
    resolver.insert("dead.test", [dead]);
    ProbeOptions {
        roots: Arc::new(pki.roots()),
        resolver: Arc::new(resolver),
        ..ProbeOptions::default()
    }
}

fn keys() -> Vec<ApiKey> {
    let key = |name: &str, secret: &str, rpm| ApiKey {
        name: name.into(),
        key: Some(secret.into()),
        key_env: None,
        requests_per_minute: rpm,
    };
    vec![key("psa", KEY, 100), key("tiny", TINY_KEY, 2)]
}

async fn post(url: &str, key: Option<&str>, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    if let Some(k) = key {
        req = req.header("X-API-Key", k);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_bulk_check_search_logs_and_rate_limit() {
    let (log, url, _srv) = navigli().await;
    let env = Env::new();
    let list = env.write_log_list(&[(&log, &url)]);
    let mut svc = service(
        Some(ApiConfig {
            keys: keys(),
            // good.test and dead.test live on 127.0.0.1, which bulk-check refuses unless allowed.
            allow_targets: vec!["127.0.0.0/8".into()],
            ..ApiConfig::default()
        }),
        no_alerts(),
    );
    svc.probe = probe_targets().await;
    let d = start(&env, &list, svc).await;
    caught_up(&env, &d, 1024, EXPECTED_MATCHES).await;
    let check = d.url("/api/v1/bulk-check");
    let body = json!({"domains": ["good.test", "dead.test"]}).to_string();

    let (status, err) = post(&check, None, body.clone()).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (401, Some("missing_api_key"))
    );
    assert!(
        err["error"].as_str().unwrap().contains("X-API-Key"),
        "{err}"
    );
    let (status, err) = post(&check, Some("psa-key-0123456789abcdeX"), body.clone()).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (401, Some("invalid_api_key"))
    );

    let (status, reports) = post(&check, Some(KEY), body).await;
    assert_eq!(status, 200, "{reports}");
    let reports = reports.as_array().unwrap();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0]["domain"], "good.test");
    assert_eq!(reports[0]["status"], "ok");
    assert_eq!(reports[0]["level"], "OK");
    assert_eq!(reports[0]["days_left"], 40);
    assert_eq!(reports[1]["domain"], "dead.test");
    assert_eq!(reports[1]["status"], "unreachable");
    assert_eq!(reports[1]["level"], "CRITICAL");
    assert_eq!(reports[1]["days_left"], Value::Null);
    // What a hosting panel shows (Valid / Invalid / Inactive / Unknown).
    assert_eq!(reports[0]["panel_status"], "Valid");
    assert_eq!(reports[1]["panel_status"], "Inactive");

    // /health and /metrics stay open.
    assert_eq!(get_json(&d.url("/health"), None).await.0, 200);
    let metrics = reqwest::get(d.url("/metrics")).await.unwrap();
    assert_eq!(metrics.status(), 200);

    // Search: the stored certificates under mexi.my are exactly the reported ones naming it.
    let (status, found) = get_json(&d.url("/api/v1/certificates?domain=mexi.my"), Some(KEY)).await;
    assert_eq!(status, 200, "{found}");
    let expected: BTreeSet<String> = env
        .sink
        .take()
        .iter()
        .filter(|e| {
            e["dns_names"].as_array().unwrap().iter().any(|n| {
                let n = n.as_str().unwrap();
                n == "mexi.my" || n.ends_with(".mexi.my")
            })
        })
        .map(|e| e["tbs_sha256"].as_str().unwrap().to_string())
        .collect();
    let got: BTreeSet<String> = found["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["tbs_sha256"].as_str().unwrap().to_string())
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(got, expected);
    assert_eq!(found["count"], expected.len());
    let (status, err) = get_json(&d.url("/api/v1/certificates"), Some(KEY)).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (400, Some("missing_domain"))
    );

    let (status, logs) = get_json(&d.url("/api/v1/logs"), Some(KEY)).await;
    assert_eq!(status, 200);
    assert_eq!(logs["logs"][0]["url"], d.log_url());
    assert_eq!(logs["logs"][0]["verified_size"], 1024);

    // The tiny key allows 2 requests a minute: the third is refused with Retry-After; other keys go on.
    for _ in 0..2 {
        assert_eq!(
            get_json(&d.url("/api/v1/logs"), Some(TINY_KEY)).await.0,
            200
        );
    }
    let resp = reqwest::Client::new()
        .get(d.url("/api/v1/logs"))
        .header("X-API-Key", TINY_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["code"], "rate_limited");
    assert_eq!(get_json(&d.url("/api/v1/logs"), Some(KEY)).await.0, 200);

    let (status, err) = get_json(&d.url("/api/v1/nope"), Some(KEY)).await;
    assert_eq!((status, err["code"].as_str()), (404, Some("not_found")));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_and_too_many_domains_are_rejected_with_json_errors() {
    let (log, url, _srv) = navigli().await;
    let env = Env::new();
    let list = env.write_log_list(&[(&log, &url)]);
    let api = ApiConfig {
        max_body_bytes: 2048,
        max_domains_per_request: 3,
        ..ApiConfig::default()
    };
    let d = start(&env, &list, service(Some(api), no_alerts())).await;
    let check = d.url("/api/v1/bulk-check");

    let big = json!({"domains": ["a".repeat(4000) + ".example"]}).to_string();
    assert!(big.len() > 4000);
    let (status, err) = post(&check, None, big).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (413, Some("payload_too_large")),
        "{err}"
    );
    assert_eq!(err["error"], "request body is larger than 2048 bytes");

    let four = json!({"domains": ["a.test", "b.test", "c.test", "d.test"]}).to_string();
    let (status, err) = post(&check, None, four).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (400, Some("too_many_domains"))
    );
    assert_eq!(err["error"], "4 domains in one request; the limit is 3");

    let (status, err) = post(&check, None, "{\"domains\": 3}").await;
    assert_eq!((status, err["code"].as_str()), (400, Some("invalid_json")));
    let (status, err) = post(&check, None, "{\"domains\": [\"ftp://x.test\"]}").await;
    assert_eq!(
        (status, err["code"].as_str()),
        (400, Some("invalid_domain"))
    );

    let resp = reqwest::get(&check).await.unwrap();
    assert_eq!(resp.status(), 405);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["code"], "method_not_allowed");
    d.stop().await;
}
