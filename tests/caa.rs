//! CAA checks end to end: certificates of a test CA logged in a fake CT log on 127.0.0.1 and read by a real
//! `run --once`, CAA records served by a DNS responder on 127.0.0.1 — `caa_mismatch` fires exactly for the
//! certificates whose names' CAA records (tree climbing, CNAME, issuewild) forbid the CA, once, across a
//! restart; DNS failures are unknown and retried, never violations.

mod common;
mod dns_support;
mod probe_support;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use ctwatch::caa::checker::{CaaConfig, check_round};
use ctwatch::caa::dns::DnsCaa;
use ctwatch::caa::table::CaTable;
use ctwatch::store::{SinkRoute, Store, unix_now};
use ctwatch::tailer::StartAt;
use ctwatch_fakelog::FakeEntry;
use dns_support::{Answer, Zone};
use probe_support::{Pki, leaf_params};
use rcgen::KeyPair;
use serde_json::Value;

fn logged(pki: &Pki, names: &[&str]) -> FakeEntry {
    let key = KeyPair::generate().unwrap();
    let cert = leaf_params(names, -1, 89)
        .signed_by(&key, &pki.inter)
        .unwrap();
    FakeEntry::x509(cert.der(), &[pki.inter.der()], unix_now() as u64 * 1000)
}

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

fn config(dns: std::net::SocketAddr) -> CaaConfig {
    // The test CA ("CN=Probe Test Intermediate") is known as test-ca.example.
    let table = CaTable::parse("test.csv", "probe test,test-ca.example\n").unwrap();
    let lookup = DnsCaa::new(&[dns], Duration::from_secs(2)).unwrap();
    CaaConfig::new(Arc::new(lookup), table)
}

fn flagged_names(events: &[Value]) -> Vec<String> {
    let mut names: Vec<String> = events
        .iter()
        .flat_map(|e| e["names"].as_array().unwrap().clone())
        .map(|n| n["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn caa_mismatch_fires_exactly_for_forbidden_names_once_across_a_restart() {
    let zone = Arc::new(Zone::default());
    zone.set(
        "allowed.test",
        Answer::Caa(vec![(false, Some("test-ca.example"))]),
    );
    zone.set(
        "locked.test",
        Answer::Caa(vec![(false, Some("letsencrypt.org"))]),
    );
    // shop.cname.test is a CNAME: the target's records are the name's (RFC 8659 §3).
    zone.set("shop.cname.test", Answer::Cname("target.elsewhere.test"));
    zone.set(
        "target.elsewhere.test",
        Answer::Caa(vec![(false, Some("letsencrypt.org"))]),
    );
    zone.set(
        "cname.test",
        Answer::Caa(vec![(false, Some("test-ca.example"))]),
    );
    // The CA may issue for wild.test, but no wildcard at all.
    zone.set(
        "wild.test",
        Answer::Caa(vec![(false, Some("test-ca.example")), (true, None)]),
    );
    zone.set("broken.test", Answer::ServFail);
    let dns = dns_support::serve(zone.clone()).await;

    let pki = Pki::new();
    let entries = vec![
        logged(&pki, &["www.allowed.test"]), // climbs to allowed.test: allowed
        logged(&pki, &["a.b.locked.test"]),  // climbs to locked.test: only letsencrypt.org
        logged(&pki, &["shop.cname.test"]),  // CNAME target forbids, even though cname.test allows
        logged(&pki, &["*.wild.test"]),      // issuewild ";"
        logged(&pki, &["www.wild.test"]),    // non-wildcard: issue allows
        logged(&pki, &["www.free.test"]),    // no CAA anywhere: any CA
        logged(&pki, &["www.broken.test"]),  // SERVFAIL: unknown, retried
    ];
    let one = one_log(entries).await;
    let env = &one.env;
    let watch = "test @client-a\n";
    assert!(
        run_once(env, &one.list, watch, once_config(StartAt::Beginning))
            .await
            .ok()
    );

    let cfg = config(dns);
    let now = unix_now();
    let round = check_round(&env.store, &cfg, now).await.unwrap();
    assert_eq!((round.checked, round.mismatches, round.unknown), (7, 3, 1));
    let mismatches = events(&env.store, "caa_mismatch");
    assert_eq!(
        flagged_names(&mismatches),
        ["*.wild.test", "a.b.locked.test", "shop.cname.test"]
    );
    let locked = mismatches
        .iter()
        .find(|e| e["dns_names"][0] == "a.b.locked.test")
        .unwrap();
    assert_eq!(locked["names"][0]["relevant_domain"], "locked.test");
    assert_eq!(
        locked["issuer_caa_domains"],
        serde_json::json!(["test-ca.example"])
    );
    assert_eq!(locked["issuer_source"], "issuer_dn");
    assert_eq!(locked["tags"], serde_json::json!(["client-a"]));

    // Nothing is checked twice, also after a restart (a new process on the same database).
    let store = Arc::new(Store::open(&env.db_path()).unwrap());
    store.set_sink_routes(vec![SinkRoute::all("collect")]);
    let round = check_round(&store, &cfg, now + 60).await.unwrap();
    assert_eq!(round.checked, 0, "the unknown one waits for its retry");
    // The broken zone is fixed (allowing the CA): the retry settles it as allowed, no event.
    zone.set(
        "broken.test",
        Answer::Caa(vec![(false, Some("test-ca.example"))]),
    );
    let cfg2 = config(dns); // a fresh resolver: no cached SERVFAIL
    let round = check_round(&store, &cfg2, now + 16 * 60).await.unwrap();
    assert_eq!((round.checked, round.mismatches, round.unknown), (1, 0, 0));
    assert_eq!(
        check_round(&store, &cfg2, now + 40 * 60)
            .await
            .unwrap()
            .checked,
        0
    );
    assert_eq!(events(&store, "caa_mismatch").len(), 3);
    let tbs_broken = {
        let c = store.search("www.broken.test", 1).unwrap();
        c[0].tbs_sha256.clone()
    };
    let (verdict, _) = store
        .caa_verdict(&hex::decode(tbs_broken).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(verdict, "allowed");
}

#[tokio::test]
async fn an_unknown_ca_or_an_old_certificate_is_never_a_violation() {
    let zone = Arc::new(Zone::default());
    zone.set(
        "locked.test",
        Answer::Caa(vec![(false, Some("letsencrypt.org"))]),
    );
    let dns = dns_support::serve(zone.clone()).await;
    let pki = Pki::new();
    let one = one_log(vec![logged(&pki, &["www.locked.test"])]).await;
    let env = &one.env;
    assert!(
        run_once(
            env,
            &one.list,
            "locked.test\n",
            once_config(StartAt::Beginning)
        )
        .await
        .ok()
    );
    // The CA is not in the table: unknown, final, no DNS query, no event.
    let table = CaTable::parse("empty.csv", "someone else,else.example\n").unwrap();
    let lookup = DnsCaa::new(&[dns], Duration::from_secs(2)).unwrap();
    let cfg = CaaConfig::new(Arc::new(lookup), table);
    let round = check_round(&env.store, &cfg, unix_now()).await.unwrap();
    assert_eq!((round.checked, round.unknown), (1, 1));
    assert_eq!(zone.queries.load(std::sync::atomic::Ordering::Relaxed), 0);
    assert!(
        check_round(&env.store, &cfg, unix_now() + 3600)
            .await
            .unwrap()
            .checked
            == 0
    );
    assert!(events(&env.store, "caa_mismatch").is_empty());

    // A certificate first seen longer ago than max_age is not checked at all.
    let one = one_log(vec![logged(&pki, &["www.locked.test"])]).await;
    let env = &one.env;
    assert!(
        run_once(
            env,
            &one.list,
            "locked.test\n",
            once_config(StartAt::Beginning)
        )
        .await
        .ok()
    );
    let cfg = config(dns);
    let later = unix_now() + cfg.max_age.as_secs() as i64 + 60;
    assert_eq!(
        check_round(&env.store, &cfg, later).await.unwrap().checked,
        0
    );
}
