//! Expiry intelligence end to end: certificates of a test CA logged in a fake CT log on 127.0.0.1, read by a
//! real `run --once`, served by real TLS servers on 127.0.0.1, probed by the daemon's scheduler —
//! `renewal_missing` and `stale_deployment` fire exactly when they should, once, also across a restart.

mod common;
mod probe_support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use ctwatch::probe::resolve::{ResolveError, ResolveFuture, Resolver};
use ctwatch::probe::schedule::DomainLimiter;
use ctwatch::probe::scheduler::{self, ScheduleConfig};
use ctwatch::probe::{ProbeOptions, Timeouts};
use ctwatch::store::{SinkRoute, Store};
use ctwatch::tailer::StartAt;
use ctwatch_fakelog::FakeEntry;
use probe_support::{Pki, Served, leaf_params, pkcs8, serve_tls};
use rcgen::KeyPair;
use serde_json::Value;

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

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

/// A leaf of the test CA: its DER (to log it) and the chain + key (to serve it).
struct Issued {
    der: Vec<u8>,
    served: Served,
}

fn issue(pki: &Pki, names: &[&str], from_days: i64, to_days: i64) -> Issued {
    let key = KeyPair::generate().unwrap();
    let cert = leaf_params(names, from_days, to_days)
        .signed_by(&key, &pki.inter)
        .unwrap();
    Issued {
        der: cert.der().to_vec(),
        served: Served {
            chain: vec![cert.der().clone(), pki.inter.der().clone()],
            key: pkcs8(&key),
        },
    }
}

fn entry(pki: &Pki, cert: &Issued, logged_at: i64) -> FakeEntry {
    FakeEntry::x509(&cert.der, &[pki.inter.der()], logged_at as u64 * 1000)
}

fn now() -> i64 {
    ctwatch::store::unix_now()
}

fn config(pki: &Pki, resolver: Arc<SwitchResolver>, store: &Arc<Store>) -> ScheduleConfig {
    ScheduleConfig {
        options: ProbeOptions {
            roots: Arc::new(pki.roots()),
            resolver,
            timeouts: Timeouts {
                dns: Duration::from_secs(5),
                connect: Duration::from_secs(5),
                handshake: Duration::from_secs(10),
            },
            concurrency: 4,
            ..ProbeOptions::default()
        },
        per_domain_per_minute: 1000,
        ..ScheduleConfig::default()
    }
    .with_store(store)
}

/// Every event of `kind` ever queued in the database (delivered or not), oldest first.
fn events(store: &Store, kind: &str) -> Vec<Value> {
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    let mut stmt = conn
        .prepare("SELECT payload FROM events WHERE kind = ?1 ORDER BY id")
        .unwrap();
    stmt.query_map([kind], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|p| serde_json::from_str(&p.unwrap()).unwrap())
        .collect()
}

async fn round(store: &Arc<Store>, cfg: &ScheduleConfig, at: i64) -> scheduler::RoundOutcome {
    let mut limiter = DomainLimiter::new(1000);
    scheduler::probe_round(store, cfg, &mut limiter, at)
        .await
        .unwrap()
}

fn next_probe(store: &Store, host: &str) -> i64 {
    store
        .probe_target(host, 443)
        .unwrap()
        .unwrap()
        .next_probe_at
}

#[tokio::test]
async fn renewal_missing_then_stale_deployment_then_deployed_across_a_restart() {
    let pki = Pki::new();
    let names = ["www.shop.test", "shop.test"];
    let t0 = now();
    // A: a 90-day certificate 70 days in (past 2/3 of its lifetime), logged when issued.
    let a = issue(&pki, &names, -70, 20);
    let one = one_log(vec![entry(&pki, &a, t0 - 70 * DAY)]).await;
    let env = &one.env;
    let watch = "shop.test @client-a\n";
    assert!(
        run_once(env, &one.list, watch, once_config(StartAt::Beginning))
            .await
            .ok()
    );

    let resolver = Arc::new(SwitchResolver::default());
    let server_a = serve_tls(
        "127.0.0.1",
        Served {
            chain: a.served.chain.clone(),
            key: a.served.key.clone_key(),
        },
    )
    .await;
    resolver.set("www.shop.test", server_a);
    let cfg = config(&pki, resolver.clone(), &env.store);

    // 1. The host serves A, seen in CT, 70 of 90 days in, nothing newer: renewal_missing, once.
    round(&env.store, &cfg, t0 + 10).await;
    let missing = events(&env.store, "renewal_missing");
    assert_eq!(missing.len(), 1, "{missing:#?}");
    assert_eq!(missing[0]["domain"], "www.shop.test");
    assert_eq!(missing[0]["tags"], serde_json::json!(["client-a"]));
    assert!(events(&env.store, "stale_deployment").is_empty());
    assert_eq!(
        events(&env.store, "probe").len(),
        0,
        "an 18-day-left 90-day certificate is OK (warning at 18 d)"
    );
    round(&env.store, &cfg, t0 + DAY + 20).await;
    assert_eq!(events(&env.store, "renewal_missing").len(), 1, "not twice");

    // 2. The renewal B (same names) is logged now: within the deploy grace, nothing; the host is re-checked
    //    when the grace ends rather than a day later.
    let b = issue(&pki, &names, 0, 90);
    let b_logged = t0 + DAY + HOUR;
    one.log.append(vec![entry(&pki, &b, b_logged)]);
    assert!(
        run_once(env, &one.list, watch, once_config(StartAt::Beginning))
            .await
            .ok()
    );
    let at = t0 + 2 * DAY + 30;
    assert!(next_probe(&env.store, "www.shop.test") <= at);
    round(&env.store, &cfg, at).await;
    assert!(
        events(&env.store, "stale_deployment").is_empty(),
        "within grace"
    );
    assert_eq!(events(&env.store, "renewal_missing").len(), 1);
    assert_eq!(
        env.store.expiry_findings(None).unwrap().len(),
        0,
        "renewal_missing is resolved: a newer certificate exists"
    );
    assert_eq!(
        next_probe(&env.store, "www.shop.test"),
        b_logged + 24 * HOUR
    );

    // 3. A restart (a new process on the same database), the grace is over: stale_deployment, once.
    let store = Arc::new(Store::open(&env.db_path()).unwrap());
    store.set_sink_routes(vec![SinkRoute::all("collect")]);
    let cfg = config(&pki, resolver.clone(), &store);
    round(&store, &cfg, b_logged + 24 * HOUR).await;
    let stale = events(&store, "stale_deployment");
    assert_eq!(stale.len(), 1, "{stale:#?}");
    let b_tbs = hex::encode(
        ctwatch::ct::cert::tbs_identity(ctwatch::ct::cert::tbs_of_certificate(&b.der).unwrap())
            .unwrap(),
    );
    assert_eq!(stale[0]["newer"]["tbs_sha256"], b_tbs);
    assert_eq!(stale[0]["newer"]["log"], one.url.as_str());
    assert_eq!(stale[0]["newer"]["index"], 1);
    assert_eq!(
        stale[0]["served"]["cert_sha256"],
        probe_support::sha256_hex(&a.der)
    );
    let gauges = store.host_gauges().unwrap();
    let www = gauges.iter().find(|g| g.host == "www.shop.test").unwrap();
    assert!(www.stale_deployment);
    assert_eq!(www.tags, ["client-a"]);
    let store2 = Arc::new(Store::open(&env.db_path()).unwrap());
    store2.set_sink_routes(vec![SinkRoute::all("collect")]);
    let cfg2 = config(&pki, resolver.clone(), &store2);
    round(&store2, &cfg2, b_logged + 50 * HOUR).await;
    assert_eq!(
        events(&store2, "stale_deployment").len(),
        1,
        "not again after a restart"
    );

    // 4. B deployed: the finding is resolved, nothing new fires.
    let server_b = serve_tls("127.0.0.1", b.served).await;
    resolver.set("www.shop.test", server_b);
    round(&store2, &cfg2, b_logged + 80 * HOUR).await;
    assert!(store2.expiry_findings(None).unwrap().is_empty());
    assert_eq!(events(&store2, "stale_deployment").len(), 1);
    assert_eq!(events(&store2, "renewal_missing").len(), 1);

    // 5. Inventory: a wildcard served on a host added by hand, a certificate never served.
    let wild = issue(&pki, &["*.shop.test"], -1, 89);
    let unused = issue(&pki, &["old.shop.test"], -1, 89);
    one.log
        .append(vec![entry(&pki, &wild, t0), entry(&pki, &unused, t0)]);
    // (The events queued by the rounds above carry their round's clock, days ahead: still pending.)
    let summary = run_once(env, &one.list, watch, once_config(StartAt::Beginning)).await;
    assert!(summary.failed_logs.is_empty(), "{summary:?}");
    let api = ctwatch::probe::Target::new("api.shop.test", 443).unwrap();
    store2.add_probe_target(&api, &[], t0).unwrap();
    resolver.set("api.shop.test", serve_tls("127.0.0.1", wild.served).await);
    round(&store2, &cfg2, b_logged + 81 * HOUR).await;
    let inv = ctwatch::inventory::build(
        &store2.valid_certificates(None, now()).unwrap(),
        &store2.served_certificates().unwrap(),
        None,
        now(),
    );
    assert_eq!(inv.len(), 1);
    assert_eq!(inv[0].domain, "shop.test");
    let tbs = |der: &[u8]| {
        hex::encode(
            ctwatch::ct::cert::tbs_identity(ctwatch::ct::cert::tbs_of_certificate(der).unwrap())
                .unwrap(),
        )
    };
    let served_by = |der: &[u8]| -> Vec<(String, bool)> {
        let c = inv[0]
            .certificates
            .iter()
            .find(|c| c.tbs_sha256 == tbs(der))
            .unwrap();
        c.served_by
            .iter()
            .map(|s| (s.host.clone(), s.serving_now))
            .collect()
    };
    assert_eq!(served_by(&a.der), [("www.shop.test".to_string(), false)]);
    assert_eq!(served_by(&b.der), [("www.shop.test".to_string(), true)]);
    assert_eq!(served_by(&wild.der), [("api.shop.test".to_string(), true)]);
    assert_eq!(inv[0].wildcards, [tbs(&wild.der)]);
    assert_eq!(inv[0].never_served, [tbs(&unused.der)]);
}
