//! `POST /api/v1/bulk-check` is not a tool against the host's own network: loopback, private, link-local,
//! metadata and IPv4-in-IPv6 targets answer `blocked_address` without a single connection, after DNS resolution
//! (a name resolving to 127.0.0.1 is refused too); `[api] allow_targets` opts a range in. Failed key attempts
//! are rate limited per client address.

mod probe_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ctwatch::api::{ApiConfig, ApiKey};
use ctwatch::probe::{ProbeOptions, StaticResolver, SystemResolver};
use ctwatch::stats::Registry;
use ctwatch::store::Store;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A TCP listener on 127.0.0.1 that counts the connections it accepts (and closes them).
async fn counting_listener() -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            drop(tcp);
        }
    });
    (addr, count)
}

/// The API alone (no tailing) on 127.0.0.1:0; "rebind.test" resolves to `local`, other names go to the system.
async fn api(cfg: ApiConfig, local: SocketAddr) -> (String, watch::Sender<bool>) {
    let mut resolver = StaticResolver::with_fallback(Box::new(SystemResolver));
    resolver.insert("rebind.test", [local]);
    let probe = ProbeOptions {
        resolver: Arc::new(resolver),
        ..ProbeOptions::default()
    };
    let (stop, rx) = watch::channel(false);
    let cfg = ApiConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..cfg
    };
    let store = Arc::new(Store::open_in_memory().unwrap());
    let (addr, _task) = ctwatch::api::serve(cfg, store, Arc::new(Registry::default()), probe, rx)
        .await
        .unwrap();
    (format!("http://{addr}/api/v1/bulk-check"), stop)
}

async fn bulk_check(url: &str, domains: &[String], key: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(url)
        .json(&json!({ "domains": domains }));
    if let Some(k) = key {
        req = req.header("X-API-Key", k);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_targets_are_blocked_without_a_connection() {
    let (local, connections) = counting_listener().await;
    let (url, stop) = api(ApiConfig::default(), local).await;
    let port = local.port();
    let domains: Vec<String> = [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("0.0.0.0:{port}"),
        format!("[::ffff:127.0.0.1]:{port}"),
        format!("[::1]:{port}"),
        format!("rebind.test:{port}"),
        "169.254.169.254".to_string(),
        "10.0.0.1".to_string(),
        "192.168.1.1".to_string(),
        "[fd00::1]".to_string(),
    ]
    .into();
    let (status, reports) = bulk_check(&url, &domains, None).await;
    assert_eq!(status, 200, "{reports}");
    let reports = reports.as_array().unwrap();
    assert_eq!(reports.len(), domains.len());
    for (r, d) in reports.iter().zip(&domains) {
        assert_eq!(r["status"], "blocked_address", "{d}: {r}");
        let addresses = r["addresses"].as_array().unwrap();
        assert!(!addresses.is_empty(), "{d}: {r}");
        for a in addresses {
            assert_eq!(a["status"], "blocked_address", "{d}: {a}");
            let err = a["error"].as_str().unwrap();
            assert!(
                err.contains("not probed") && err.contains("allow_targets"),
                "{err}"
            );
        }
    }
    assert_eq!(
        reports[6]["addresses"][0]["error"]
            .as_str()
            .unwrap()
            .split(':')
            .next(),
        Some("169.254.169.254 is a cloud metadata service address")
    );
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "a blocked target was connected to"
    );
    let _ = stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_targets_opts_a_range_in() {
    let (local, connections) = counting_listener().await;
    let cfg = ApiConfig {
        allow_targets: vec!["127.0.0.0/8".into()],
        ..ApiConfig::default()
    };
    let (url, stop) = api(cfg, local).await;
    let port = local.port();
    let domains = vec![format!("rebind.test:{port}"), "10.0.0.1".to_string()];
    let (status, reports) = bulk_check(&url, &domains, None).await;
    assert_eq!(status, 200, "{reports}");
    // Probed: the listener closes before TLS, so the handshake fails, but it was reached.
    assert_eq!(reports[0]["status"], "handshake_failed", "{reports}");
    assert_eq!(reports[1]["status"], "blocked_address", "{reports}");
    assert_eq!(connections.load(Ordering::SeqCst), 1);
    let _ = stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_key_attempts_are_rate_limited_per_client() {
    let (local, _) = counting_listener().await;
    let cfg = ApiConfig {
        keys: vec![ApiKey {
            name: "ops".into(),
            key: Some("ops-key-0123456789abcdef".into()),
            key_env: None,
            requests_per_minute: 100,
        }],
        unauthenticated_per_minute: 5,
        ..ApiConfig::default()
    };
    let (url, stop) = api(cfg, local).await;
    let one = vec!["example.invalid".to_string()];
    for i in 0..5 {
        let (status, _) = bulk_check(&url, &one, Some(&format!("guess-{i:016}"))).await;
        assert_eq!(status, 401);
    }
    let (status, err) = bulk_check(&url, &one, Some("guess-0000000000000009")).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (429, Some("rate_limited")),
        "{err}"
    );
    let (status, _) = bulk_check(&url, &one, None).await;
    assert_eq!(status, 429);
    let _ = stop.send(true);
}
