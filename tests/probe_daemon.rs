//! The expiry probe inside the daemon: hosts queued from real matching certificates, probed against real TLS
//! servers on 127.0.0.1, results stored with history, events through the outbox, and `ctwatch report`.

mod common;
mod probe_support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use ctwatch::notify::{DeliveryPolicy, Sink, Wake};
use ctwatch::probe::resolve::{ResolveError, ResolveFuture, Resolver};
use ctwatch::probe::schedule::{Cadence, DomainLimiter};
use ctwatch::probe::scheduler::{self, ScheduleConfig};
use ctwatch::probe::{ProbeOptions, Status, Target, Timeouts};
use ctwatch::run::RunOptions;
use ctwatch::store::{SinkRoute, Store, TargetSource};
use ctwatch::tailer::{StartAt, TailConfig};
use ctwatch::watchlist::Watchlist;
use ctwatch_fakelog::{self as fakelog, FakeLog};
use probe_support::{Pki, dead_port, serve_tls};
use serde_json::Value;

const DAY: i64 = 86_400;
/// An arbitrary round clock for store-driven tests (2026-01-20T00:00:00Z); probes still use the real clock
/// for certificate validity.
const T0: i64 = 1_768_867_200;

/// A resolver whose answers a test can change between probes (a host moving to another server).
#[derive(Debug, Default)]
struct SwitchResolver(Mutex<HashMap<String, Vec<SocketAddr>>>);

impl SwitchResolver {
    fn set(&self, host: &str, addr: SocketAddr) {
        self.0.lock().unwrap().insert(host.to_string(), vec![addr]);
    }
}

impl Resolver for SwitchResolver {
    fn resolve<'a>(&'a self, host: &'a str, _port: u16) -> ResolveFuture<'a> {
        let found = self.0.lock().unwrap().get(host).cloned();
        Box::pin(async move {
            found.ok_or_else(|| ResolveError::NoAddresses {
                host: host.to_string(),
            })
        })
    }
}

fn schedule(pki: &Pki, resolver: Arc<dyn Resolver>, store: &Arc<Store>) -> ScheduleConfig {
    ScheduleConfig {
        options: ProbeOptions {
            roots: Arc::new(pki.roots()),
            resolver,
            timeouts: Timeouts {
                dns: Duration::from_secs(2),
                connect: Duration::from_secs(2),
                handshake: Duration::from_secs(2),
            },
            concurrency: 8,
            ..ProbeOptions::default()
        },
        per_domain_per_minute: 1000,
        ..ScheduleConfig::default()
    }
    .with_store(store)
}

fn store_with_sink() -> (tempfile::TempDir, Arc<Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("ctwatch.db")).unwrap());
    store.set_sink_routes(vec![SinkRoute::all("collect")]);
    (dir, store)
}

/// Payloads of the queued probe events, oldest first.
fn probe_events(store: &Store) -> Vec<Value> {
    store
        .due_deliveries("collect", i64::MAX, 1000)
        .unwrap()
        .into_iter()
        .filter(|d| d.kind == "probe")
        .map(|d| d.payload)
        .collect()
}

fn add(store: &Store, host: &str, tags: &[&str]) {
    let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
    assert!(
        store
            .add_probe_target(&Target::new(host, 443).unwrap(), &tags, T0)
            .unwrap()
    );
}

async fn round(
    store: &Arc<Store>,
    cfg: &ScheduleConfig,
    limiter: &mut DomainLimiter,
    now: i64,
) -> scheduler::RoundOutcome {
    scheduler::probe_round(store, cfg, limiter, now)
        .await
        .unwrap()
}

#[tokio::test]
async fn result_is_stored_with_history_and_a_level_change_emits_one_event() {
    let pki = Pki::new();
    let ok = serve_tls("127.0.0.1", pki.leaf(&["shop.test"], -30, 60)).await;
    let soon = serve_tls("127.0.0.1", pki.leaf(&["shop.test"], -80, 12)).await;
    let (_dir, store) = store_with_sink();
    let resolver = Arc::new(SwitchResolver::default());
    resolver.set("shop.test", ok);
    let cfg = schedule(&pki, resolver.clone(), &store);
    let mut limiter = DomainLimiter::new(10);
    add(&store, "shop.test", &["client-a"]);

    let r = round(&store, &cfg, &mut limiter, T0).await;
    assert_eq!(
        (r.due, r.probed, r.events),
        (1, 1, 0),
        "a first OK is quiet"
    );
    let t = store.probe_target("shop.test", 443).unwrap().unwrap();
    assert_eq!(t.next_probe_at, T0 + DAY);
    assert_eq!(t.last_probed_at, Some(T0));
    assert_eq!(t.snapshot.as_ref().unwrap().status, Status::Ok);

    // Not due again before the interval.
    let r = round(&store, &cfg, &mut limiter, T0 + DAY - 1).await;
    assert_eq!((r.due, r.probed), (0, 0));

    resolver.set("shop.test", soon);
    let r = round(&store, &cfg, &mut limiter, T0 + DAY).await;
    assert_eq!((r.probed, r.events), (1, 1));
    let r = round(&store, &cfg, &mut limiter, T0 + 2 * DAY).await;
    assert_eq!(
        (r.probed, r.events),
        (1, 0),
        "the same WARNING is not announced twice"
    );

    let history = store.probe_history("shop.test", 443, 10).unwrap();
    let got: Vec<(i64, Status, Option<i64>)> = history
        .iter()
        .map(|h| (h.probed_at, h.status, h.days_left))
        .collect();
    assert_eq!(
        got,
        [
            (T0 + 2 * DAY, Status::Warning, Some(12)),
            (T0 + DAY, Status::Warning, Some(12)),
            (T0, Status::Ok, Some(60)),
        ]
    );
    assert_eq!(
        history[0].seen_in_ct,
        Some(false),
        "an rcgen certificate is in no log"
    );
    assert_eq!(
        history[0].issuer.as_deref(),
        Some("CN=Probe Test Intermediate")
    );
    let full = store.probe_report(history[0].id).unwrap().unwrap();
    assert_eq!(full.domain, "shop.test");
    assert_eq!(full.addresses[0].address, soon);

    let events = probe_events(&store);
    assert_eq!(events.len(), 1, "{events:#?}");
    let e = &events[0];
    assert_eq!(e["domain"], "shop.test");
    assert_eq!(e["change"], "raised");
    assert_eq!(
        (e["previous_level"].as_str(), e["level"].as_str()),
        (Some("OK"), Some("WARNING"))
    );
    assert_eq!(e["days_left"], 12);
    assert_eq!(e["not_seen_in_ct"], true);
    assert_eq!(
        e["cert_sha256"],
        history[0].cert_sha256.clone().unwrap().as_str()
    );
    assert_eq!(e["tags"], serde_json::json!(["client-a"]));
}

#[tokio::test]
async fn first_network_failure_is_waited_out_and_the_second_alerts() {
    let pki = Pki::new();
    let ok = serve_tls("127.0.0.1", pki.leaf(&["api.test"], -30, 60)).await;
    let dead = dead_port().await;
    let (_dir, store) = store_with_sink();
    let resolver = Arc::new(SwitchResolver::default());
    resolver.set("api.test", ok);
    let cfg = schedule(&pki, resolver.clone(), &store);
    let mut limiter = DomainLimiter::new(10);
    add(&store, "api.test", &[]);
    round(&store, &cfg, &mut limiter, T0).await;

    resolver.set("api.test", dead);
    let r = round(&store, &cfg, &mut limiter, T0 + DAY).await;
    assert_eq!((r.probed, r.events), (1, 0));
    let t = store.probe_target("api.test", 443).unwrap().unwrap();
    assert_eq!(t.consecutive_failures, 1);
    assert_eq!(t.snapshot.as_ref().unwrap().status, Status::Ok, "kept");
    assert_eq!(
        t.next_probe_at,
        T0 + DAY + 15 * 60,
        "a failure is re-checked soon"
    );

    let r = round(&store, &cfg, &mut limiter, T0 + DAY + 15 * 60).await;
    assert_eq!((r.probed, r.events), (1, 1));
    let t = store.probe_target("api.test", 443).unwrap().unwrap();
    assert_eq!(t.consecutive_failures, 2);
    assert_eq!(t.next_probe_at, T0 + 2 * DAY + 15 * 60);

    resolver.set("api.test", ok);
    let r = round(&store, &cfg, &mut limiter, T0 + 3 * DAY).await;
    assert_eq!((r.probed, r.events), (1, 1));

    let events = probe_events(&store);
    let got: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e["change"].as_str().unwrap(), e["status"].as_str().unwrap()))
        .collect();
    assert_eq!(got, [("raised", "unreachable"), ("lowered", "ok")]);
    assert_eq!(events[0]["consecutive_failures"], 2);
    assert_eq!(events[0]["addresses"][0]["address"], dead.to_string());
    assert_eq!(store.probe_history("api.test", 443, 10).unwrap().len(), 4);
}

#[tokio::test]
async fn probes_are_rate_limited_per_registrable_domain() {
    let pki = Pki::new();
    let dead = dead_port().await;
    let (_dir, store) = store_with_sink();
    let resolver = Arc::new(SwitchResolver::default());
    for host in [
        "a.example.com",
        "b.example.com",
        "c.example.com",
        "www.example.org",
    ] {
        resolver.set(host, dead);
        add(&store, host, &[]);
    }
    let cfg = ScheduleConfig {
        per_domain_per_minute: 2,
        ..schedule(&pki, resolver, &store)
    };
    let mut limiter = DomainLimiter::new(cfg.per_domain_per_minute);
    let r = round(&store, &cfg, &mut limiter, T0).await;
    assert_eq!(
        (r.due, r.probed, r.deferred, r.retry_at),
        (4, 3, 1, Some(T0 + 60))
    );
    let probed: BTreeSet<String> = store
        .probe_targets()
        .unwrap()
        .into_iter()
        .filter(|t| t.last_probed_at.is_some())
        .map(|t| t.domain)
        .collect();
    assert_eq!(
        probed,
        BTreeSet::from([
            "a.example.com".into(),
            "b.example.com".into(),
            "www.example.org".into()
        ])
    );
    let r = round(&store, &cfg, &mut limiter, T0 + 30).await;
    assert_eq!((r.due, r.probed, r.deferred), (1, 0, 1));
    let r = round(&store, &cfg, &mut limiter, T0 + 60).await;
    assert_eq!((r.due, r.probed, r.deferred), (1, 1, 0));
    assert_eq!(
        store
            .probe_target("c.example.com", 443)
            .unwrap()
            .unwrap()
            .last_probed_at,
        Some(T0 + 60)
    );
}

#[tokio::test]
async fn the_daemon_task_re_probes_on_its_interval_and_stops_on_shutdown() {
    let pki = Pki::new();
    let ok = serve_tls("127.0.0.1", pki.leaf(&["loop.test"], -30, 60)).await;
    let (_dir, store) = store_with_sink();
    let resolver = Arc::new(SwitchResolver::default());
    resolver.set("loop.test", ok);
    let now = ctwatch::store::unix_now();
    let tags = vec!["x".to_string()];
    store
        .add_probe_target(&Target::new("loop.test", 443).unwrap(), &tags, now)
        .unwrap();
    let cfg = ScheduleConfig {
        cadence: Cadence {
            interval: Duration::from_secs(1),
            failure_retry: Duration::from_secs(1),
        },
        poll: Duration::from_millis(200),
        ..schedule(&pki, resolver, &store)
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(scheduler::run_scheduler(
        store.clone(),
        cfg,
        Wake::new(vec![]),
        stopped,
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while store.probe_history("loop.test", 443, 10).unwrap().len() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "not re-probed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the probe task stops on shutdown")
        .unwrap();
    let history = store.probe_history("loop.test", 443, 10).unwrap();
    assert!(history.iter().all(|h| h.status == Status::Ok));
    // Each probe lands at least one interval after the previous one.
    for pair in history.windows(2) {
        assert!(pair[0].probed_at > pair[1].probed_at, "{history:?}");
    }
    assert!(probe_events(&store).is_empty());
}

// ---- fed from a real log ----

const WATCH: &str = "mexi.my @client-x\nnip.io @client-y\n";

/// Hosts the watchlist's domains cover in the stored certificates, computed from `search` (not from the
/// probe tables): names under each domain, without wildcards, with the domain's tag.
fn expected_hosts(store: &Store) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for (domain, tag) in [("mexi.my", "client-x"), ("nip.io", "client-y")] {
        for cert in store.search(domain, 10_000).unwrap() {
            for name in &cert.dns_names {
                let under = name == domain || name.ends_with(&format!(".{domain}"));
                if under && !name.starts_with("*.") {
                    out.insert(name.to_ascii_lowercase(), vec![tag.to_string()]);
                }
            }
        }
    }
    out
}

fn run_options(
    env: &Env,
    list: &Path,
    probe: Option<ScheduleConfig>,
    tail: TailConfig,
) -> RunOptions {
    let log_list = ctwatch::ct::loglist::parse(&std::fs::read(list).unwrap()).unwrap();
    let sink: Arc<dyn Sink> = env.sink.clone();
    RunOptions {
        log_list,
        log_list_source: None,
        log_list_refresh: Duration::from_secs(3600),
        watchlist: Watchlist::parse_str("watch.txt", WATCH).unwrap(),
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
        registry: Default::default(),
        service: Default::default(),
        probe,
    }
}

async fn run_once_probing(
    env: &Env,
    list: &Path,
    probe: Option<ScheduleConfig>,
) -> ctwatch::run::RunSummary {
    let opts = run_options(env, list, probe, once_config(StartAt::Beginning));
    let (_tx, rx) = tokio::sync::watch::channel(false);
    ctwatch::run::run(opts, rx).await.unwrap()
}

/// A real host name of the navigli entries under mexi.my, learnt from a catch-up in a scratch database.
async fn a_matched_host(list: &Path) -> String {
    let scout = Env::new();
    assert!(run_once_probing(&scout, list, None).await.ok());
    expected_hosts(&scout.store)
        .into_keys()
        .find(|h| h.ends_with(".mexi.my"))
        .expect("a mexi.my host")
}

#[tokio::test]
async fn matching_certificates_queue_their_hosts_once_with_tags() {
    let log = FakeLog::new(navigli_entries());
    let (url, _srv) = fakelog::serve(log.clone()).await.unwrap();
    let env = Env::new();
    let list = env.write_log_list(&[(&log, &url)]);
    assert!(run_once_probing(&env, &list, None).await.ok());

    let expected = expected_hosts(&env.store);
    assert!(expected.len() > 10, "{expected:?}");
    let targets = env.store.probe_targets().unwrap();
    let got: BTreeMap<String, Vec<String>> = targets
        .iter()
        .map(|t| (t.domain.clone(), t.tags.clone()))
        .collect();
    assert_eq!(got, expected);
    assert_eq!(got.len(), targets.len(), "one target per host");
    for t in &targets {
        assert_eq!((t.port, t.source), (443, TargetSource::Ct));
        assert!(t.domain.parse::<std::net::IpAddr>().is_err());
        assert_eq!(t.last_probed_at, None, "no probing without a probe config");
    }
    // Catching up again queues nothing new.
    assert!(run_once_probing(&env, &list, None).await.ok());
    assert_eq!(env.store.probe_targets().unwrap(), targets);
}

#[tokio::test]
async fn once_with_probe_probes_the_hosts_this_run_queued() {
    let log = FakeLog::new(navigli_entries());
    let (url, _srv) = fakelog::serve(log.clone()).await.unwrap();
    let env = Env::new();
    let list = env.write_log_list(&[(&log, &url)]);
    // Serve a real matched name locally.
    let host = a_matched_host(&list).await;
    let pki = Pki::new();
    let addr = serve_tls("127.0.0.1", pki.leaf(&[&host], -85, 5)).await;
    let resolver = Arc::new(SwitchResolver::default());
    resolver.set(&host, addr);
    let cfg = schedule(&pki, resolver, &env.store);

    let summary = run_once_probing(&env, &list, Some(cfg.clone())).await;
    assert!(summary.ok(), "{summary:?}");
    let events = env.sink.take();
    let probe: Vec<&Value> = events.iter().filter(|e| e["kind"] == "probe").collect();
    assert_eq!(events.len() - probe.len(), EXPECTED_CERT_EVENTS);
    assert_eq!(probe.len(), 1, "only the served host alerts: {probe:#?}");
    let e = probe[0];
    assert_eq!(e["domain"], host.as_str());
    assert_eq!(
        (e["level"].as_str(), e["status"].as_str()),
        (Some("CRITICAL"), Some("critical"))
    );
    assert_eq!(e["days_left"], 5);
    assert_eq!(e["tags"], serde_json::json!(["client-x"]));
    assert_eq!(e["not_seen_in_ct"], true);

    // Every queued host was probed; those that never answered TLS are not serving, not alerted.
    let rows = env.store.probe_status(None).unwrap();
    assert_eq!(rows.len(), expected_hosts(&env.store).len());
    for row in &rows {
        let latest = row.latest.as_ref().expect("probed");
        if row.target.domain == host {
            assert_eq!(latest.status, Status::Critical);
        } else {
            assert_eq!(latest.status, Status::DnsError, "{}", row.target.domain);
            assert_eq!(row.target.snapshot, None);
        }
    }
    // Two days later every host is probed again: a second failure of a name that never served TLS pages
    // nobody, and the served host is still CRITICAL with the same certificate: no new event either.
    let later = ctwatch::store::unix_now() + 2 * DAY;
    let r = round(&env.store, &cfg, &mut DomainLimiter::new(1000), later).await;
    assert_eq!((r.probed, r.events), (rows.len(), 0));
    assert!(probe_events(&env.store).is_empty());
    let t = env.store.probe_target(&host, 443).unwrap().unwrap();
    assert_eq!(t.snapshot.unwrap().status, Status::Critical);
}

#[tokio::test]
async fn the_daemon_probes_new_hosts_as_they_arrive_and_stops_cleanly() {
    let log = FakeLog::new(navigli_entries());
    let (url, _srv) = fakelog::serve(log.clone()).await.unwrap();
    let env = Env::new();
    let list = env.write_log_list(&[(&log, &url)]);
    let host = a_matched_host(&list).await;
    let pki = Pki::new();
    let addr = serve_tls("127.0.0.1", pki.leaf(&[&host], -30, 60)).await;
    let resolver = Arc::new(SwitchResolver::default());
    resolver.set(&host, addr);
    let cfg = ScheduleConfig {
        poll: Duration::from_millis(100),
        ..schedule(&pki, resolver, &env.store)
    };
    let tail = TailConfig {
        once: false,
        poll_interval: Duration::from_secs(1),
        ..once_config(StartAt::Beginning)
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    // `run` holds a watch guard across an await (not Send): drive it here, next to the watcher.
    let running = ctwatch::run::run(run_options(&env, &list, Some(cfg), tail), stopped);
    let watcher = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let probed = env.store.probe_history(&host, 443, 1).unwrap();
            if let Some(latest) = probed.first() {
                assert_eq!((latest.status, latest.days_left), (Status::Ok, Some(60)));
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the daemon did not probe {host}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stop.send(true).unwrap();
    };
    let (summary, ()) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(running, watcher)
    })
    .await
    .expect("run stops on shutdown");
    let summary = summary.unwrap();
    assert!(summary.failed_logs.is_empty(), "{summary:?}");
    // A first OK probe is no event; the certificate events went out as usual.
    let events = env.sink.take();
    assert!(events.iter().all(|e| e["kind"] != "probe"));
    assert_eq!(events.len(), EXPECTED_CERT_EVENTS);
}

/// certspotter's count for this watchlist's domains (../shared/ctdata/CERTSPOTTER.md), as in tests/pipeline.rs.
const EXPECTED_CERT_EVENTS: usize = 61;

// ---- ctwatch report (the binary) ----

fn ctwatch(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ctwatch"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test]
async fn report_groups_hosts_by_tag_worst_first() {
    let pki = Pki::new();
    let (dir, store) = store_with_sink();
    let resolver = Arc::new(SwitchResolver::default());
    for (host, from, to) in [
        ("ok.client-a.test", -30, 60),
        ("soon.client-a.test", -85, 5),
        ("warn.client-a.test", -80, 12),
        ("gone.client-b.test", -90, -3),
    ] {
        resolver.set(
            host,
            serve_tls("127.0.0.1", pki.leaf(&[host], from, to)).await,
        );
    }
    add(&store, "ok.client-a.test", &["client-a"]);
    add(&store, "soon.client-a.test", &["client-a"]);
    add(&store, "warn.client-a.test", &["client-a", "vip"]);
    add(&store, "gone.client-b.test", &["client-b"]);
    let cfg = schedule(&pki, resolver, &store);
    let r = round(&store, &cfg, &mut DomainLimiter::new(100), T0).await;
    assert_eq!(r.probed, 4);
    add(&store, "new.client-b.test", &["client-b"]);
    let db = dir.path().join("ctwatch.db");
    let db = db.to_str().unwrap();

    let (code, text, err) = ctwatch(&["report", "--db", db]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("ctwatch expiry report, "), "{text}");
    assert_eq!(
        lines[1],
        "5 host(s): 2 CRITICAL, 1 WARNING, 1 OK, 1 not probed yet"
    );
    let heading = |tag: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(&format!("== {tag}:")))
            .unwrap()
    };
    let (a, b, vip) = (heading("client-a"), heading("client-b"), heading("vip"));
    assert!(
        a < b && b < vip,
        "worst groups first, then by name:\n{text}"
    );
    assert_eq!(lines[a], "== client-a: 1 CRITICAL, 1 WARNING, 1 OK ==");
    let row = |l: &str| l.split_whitespace().take(4).collect::<Vec<_>>().join(" ");
    assert_eq!(row(lines[a + 2]), "CRITICAL soon.client-a.test critical 5");
    assert_eq!(row(lines[a + 3]), "WARNING warn.client-a.test warning 12");
    assert_eq!(row(lines[a + 4]), "OK ok.client-a.test ok 60");
    assert_eq!(
        lines[b],
        "== client-b: 1 CRITICAL, 0 WARNING, 0 OK, 1 not probed yet =="
    );
    assert_eq!(row(lines[b + 2]), "CRITICAL gone.client-b.test expired -3");
    assert_eq!(row(lines[b + 3]), "PENDING new.client-b.test - -");
    assert_eq!(row(lines[vip + 2]), "WARNING warn.client-a.test warning 12");
    assert!(
        lines[a + 2].contains(" NO "),
        "served cert not in CT: {}",
        lines[a + 2]
    );
    assert!(
        lines[a + 2].contains("2026-01-20 00:00"),
        "probe time: {}",
        lines[a + 2]
    );

    let (code, json, err) = ctwatch(&["report", "--db", db, "--json", "--tag", "client-b"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["groups"].as_array().unwrap().len(), 1);
    assert_eq!(v["groups"][0]["tag"], "client-b");
    assert_eq!(v["totals"]["critical"], 1);
    assert_eq!(v["totals"]["pending"], 1);
    let h = &v["groups"][0]["hosts"][0];
    assert_eq!(h["domain"], "gone.client-b.test");
    assert_eq!(
        (h["category"].as_str(), h["status"].as_str()),
        (Some("CRITICAL"), Some("expired"))
    );
    assert_eq!(h["days_left"], -3);
    assert_eq!(h["seen_in_ct"], false);
    assert_eq!(h["probed_at"], "2026-01-20T00:00:00Z");
    assert_eq!(h["panel_status"], "Invalid");

    // The HTML email body and the inventory, from the same database.
    let (code, html, err) = ctwatch(&["report", "--db", db, "--html", "--since", "7d"]);
    assert_eq!(code, 0, "{err}");
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(html.contains("gone.client-b.test") && html.contains("Changes since"));
    let (code, inv, err) = ctwatch(&["inventory", "--db", db, "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(serde_json::from_str::<Value>(&inv).unwrap().is_array());
}
