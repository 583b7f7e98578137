//! Conformance bodies for the read side: probe history, expiry findings, CAA, the console, inventory.

use ctwatch::probe::renewal::Finding;
use ctwatch::probe::target::Target;
use ctwatch::store::{
    CaaRecordRow, EventFilter, FindingRecord, NameMode, ProbeRecord, SearchQuery, SinkRoute, Store,
};
use serde_json::json;

use crate::builders::*;

pub fn probe_targets_and_results(store: &Store) {
    store.set_sink_routes(vec![SinkRoute::all("stdout")]);
    let t = Target::new("www.example.com", 443).unwrap();
    assert!(store.add_probe_target(&t, &["b".into()], 100).unwrap());
    assert!(!store.add_probe_target(&t, &["a".into()], 200).unwrap());
    let other = Target::new("api.example.com", 8443).unwrap();
    store.add_probe_target(&other, &[], 300).unwrap();
    let due = store.due_probe_targets(150, 10).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].tags, ["a", "b"]);
    assert_eq!(store.next_probe_due().unwrap(), Some(100));
    let r1 = report("www.example.com", Some("aa"), 30, "2025-07-15T00:00:00Z");
    let snap = ctwatch::probe::ProbeSnapshot::of(&r1);
    let ev = event("probe", &["a"], json!({"domain": "www.example.com"}));
    let id1 = store
        .record_probe(&ProbeRecord {
            report: &r1,
            probed_at: 1000,
            consecutive_failures: 0,
            snapshot: Some(&snap),
            next_probe_at: 5000,
            event: Some(&ev),
            findings: None,
        })
        .unwrap();
    let r2 = report("www.example.com", Some("bb"), 80, "2025-09-01T00:00:00Z");
    let id2 = store
        .record_probe(&ProbeRecord {
            report: &r2,
            probed_at: 2000,
            consecutive_failures: 0,
            snapshot: None,
            next_probe_at: 6000,
            event: None,
            findings: None,
        })
        .unwrap();
    assert!(id2 > id1);
    let target = store.probe_target("www.example.com", 443).unwrap().unwrap();
    assert_eq!(target.next_probe_at, 6000);
    assert_eq!(target.last_probed_at, Some(2000));
    assert_eq!(target.snapshot, Some(snap), "kept from the first result");
    let history = store.probe_history("www.example.com", 443, 10).unwrap();
    assert_eq!(history.iter().map(|h| h.id).collect::<Vec<_>>(), [id2, id1]);
    assert_eq!(history[0].seen_in_ct, Some(true));
    assert_eq!(history[0].days_left, Some(80));
    assert_eq!(store.probe_report(id1).unwrap(), Some(r1));
    assert_eq!(store.probe_report(id2 + 100).unwrap(), None);
    let status = store.probe_status(None).unwrap();
    assert_eq!(
        status
            .iter()
            .map(|s| (s.target.domain.as_str(), s.latest.as_ref().map(|l| l.id)))
            .collect::<Vec<_>>(),
        [("api.example.com", None), ("www.example.com", Some(id2))]
    );
    assert_eq!(store.probe_status(Some("a")).unwrap().len(), 1);
    assert!(store.probe_status(Some("zzz")).unwrap().is_empty());
    store
        .postpone_probe_target("api.example.com", 8443, 9000)
        .unwrap();
    assert_eq!(
        store
            .probe_target("api.example.com", 8443)
            .unwrap()
            .unwrap()
            .next_probe_at,
        9000
    );
    let latest = store.latest_probe_results().unwrap().unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0].probed_at, Some(2000));
    assert_eq!(latest[0].not_after, Some(1_756_684_800));
    let at = store.latest_probe_results_at(1500).unwrap();
    assert_eq!(at[&("www.example.com".to_string(), 443)].id, id1);
    let served = store.served_certificates().unwrap();
    assert_eq!(
        served
            .iter()
            .map(|s| (s.cert_sha256.as_str(), s.last_served_at, s.serving_now))
            .collect::<Vec<_>>(),
        [("aa", 1000, false), ("bb", 2000, true)]
    );
    assert_eq!(served[1].tbs_sha256.as_deref(), Some("tbb"));
    assert_eq!(store.events_since(0).unwrap(), [("probe".to_string(), 1)]);
}

pub fn finding(kind: &str, cert: &str) -> Finding {
    serde_json::from_value(json!({
        "kind": kind,
        "served": {"cert_sha256": cert, "tbs_sha256": null, "names": ["www.example.com"], "issuer": null,
                   "not_before": 0, "not_after": 100, "seen_in_ct": null, "addresses": []},
        "newer": null, "renewal_due_at": 50
    }))
    .unwrap()
}

pub fn expiry_findings_are_raised_kept_and_resolved(store: &Store) {
    store.set_sink_routes(vec![SinkRoute::all("stdout")]);
    let t = Target::new("www.example.com", 443).unwrap();
    store.add_probe_target(&t, &[], 0).unwrap();
    let r = report("www.example.com", Some("aa"), 3, "2025-07-15T00:00:00Z");
    let record = |at: i64, findings: &[FindingRecord]| {
        store
            .record_probe(&ProbeRecord {
                report: &r,
                probed_at: at,
                consecutive_failures: 0,
                snapshot: None,
                next_probe_at: at + 100,
                event: None,
                findings: Some(findings),
            })
            .unwrap();
    };
    let stale = FindingRecord {
        finding: finding("stale_deployment", "aa"),
        event: event("expiry", &[], json!({"finding": "stale"})),
    };
    let missing = FindingRecord {
        finding: finding("renewal_missing", "aa"),
        event: event("expiry", &[], json!({"finding": "missing"})),
    };
    record(1000, std::slice::from_ref(&stale));
    record(2000, &[stale.clone(), missing.clone()]);
    let active = store.expiry_findings(None).unwrap();
    assert_eq!(active.len(), 2);
    assert_eq!(active[0].raised_at, 1000);
    assert_eq!(active[0].updated_at, 2000);
    assert_eq!(active[0].finding, stale.finding);
    record(3000, std::slice::from_ref(&missing));
    let active = store.expiry_findings(None).unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].finding, missing.finding);
    let history = store.expiry_findings(Some(2500)).unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].resolved_at, Some(3000));
    assert_eq!(store.events_since(0).unwrap(), [("expiry".to_string(), 2)]);
    let by_target = store.active_findings_by_target().unwrap();
    assert_eq!(by_target[&("www.example.com".to_string(), 443)].len(), 1);
    let gauges = store.host_gauges().unwrap();
    assert_eq!(gauges.len(), 1);
    assert_eq!(gauges[0].days_left, Some(3));
    assert!(!gauges[0].stale_deployment);
}

pub fn caa_checks_are_recorded(store: &Store) {
    store.set_sink_routes(vec![SinkRoute::all("stdout")]);
    let mut tail = Tail::new(store, 1);
    tail.commit(
        store,
        1,
        vec![entry(
            0,
            1,
            2,
            &["www.example.com"],
            vec![
                domain_match("www.example.com", &["b", "a"]),
                domain_match("www.example.com", &["c"]),
            ],
        )],
        vec![],
    );
    let cands = store.caa_candidates(0, NOW, 10).unwrap();
    assert_eq!(cands.len(), 1);
    assert_eq!(cands[0].tags, ["b", "a", "c"]);
    let detail = json!({"names": {"www.example.com": "unknown"}});
    store
        .record_caa_check(&CaaRecordRow {
            cert_id: cands[0].cert_id,
            verdict: "unknown",
            detail: &detail,
            checked_at: NOW,
            attempts: 1,
            next_check_at: Some(NOW + 60),
            event: None,
        })
        .unwrap();
    assert!(store.caa_candidates(0, NOW, 10).unwrap().is_empty());
    let retry = store.caa_candidates(0, NOW + 60, 10).unwrap();
    assert_eq!(retry[0].attempts, 1);
    let mismatch = json!({"names": {"www.example.com": "mismatch"}});
    let ev = event("caa_mismatch", &[], json!({}));
    store
        .record_caa_check(&CaaRecordRow {
            cert_id: cands[0].cert_id,
            verdict: "mismatch",
            detail: &mismatch,
            checked_at: NOW + 60,
            attempts: 2,
            next_check_at: None,
            event: Some(&ev),
        })
        .unwrap();
    assert!(store.caa_candidates(0, i64::MAX, 10).unwrap().is_empty());
    assert_eq!(
        store.caa_verdict(&[1; 32]).unwrap(),
        Some(("mismatch".to_string(), mismatch))
    );
    assert_eq!(store.caa_verdict(&[9; 32]).unwrap(), None);
    assert_eq!(
        store.events_by_kind().unwrap()["caa_mismatch"],
        1,
        "queued with the verdict"
    );
}

pub fn search_query(name: &str, mode: NameMode) -> SearchQuery {
    SearchQuery {
        name: name.into(),
        mode,
        exclude_expired: false,
        issuer: None,
        now: NOW,
        limit: 50,
        offset: 0,
    }
}

pub fn console_search_events_and_cert_detail(store: &Store) {
    store.set_sink_routes(vec![SinkRoute::all("stdout")]);
    let mut tail = Tail::new(store, 1);
    tail.commit(
        store,
        4,
        vec![
            entry(0, 1, 1, &["example.com"], vec![]),
            entry(1, 1, 2, &["example.com"], vec![]),
            entry(
                2,
                2,
                4,
                &["www.example.com"],
                vec![domain_match("www.example.com", &["web"])],
            ),
            entry(3, 3, 6, &["shop_1.example.org"], vec![]),
        ],
        vec![],
    );
    let names = |q: SearchQuery| -> Vec<Vec<String>> {
        store
            .console_search(&q)
            .unwrap()
            .rows
            .into_iter()
            .map(|r| r.dns_names)
            .collect()
    };
    assert_eq!(
        names(search_query("example.com", NameMode::Subtree)),
        [vec!["www.example.com"], vec!["example.com"]]
    );
    assert_eq!(
        names(search_query("example.com", NameMode::Exact)),
        [vec!["example.com"]]
    );
    assert_eq!(
        names(search_query("%.example.com", NameMode::Pattern)),
        [vec!["www.example.com"]]
    );
    assert_eq!(
        names(search_query("shop_1.example.org", NameMode::Pattern)),
        [vec!["shop_1.example.org"]],
        "_ is literal"
    );
    let page = store
        .console_search(&search_query("example.com", NameMode::Subtree))
        .unwrap();
    assert_eq!(page.total, 2);
    assert!(!page.truncated);
    assert_eq!(page.rows[1].entry_types, ["precert", "x509"]);
    assert_eq!(page.rows[1].sightings, 2);
    let mut q = search_query("example.com", NameMode::Subtree);
    q.issuer = Some("nobody".into());
    assert_eq!(store.console_search(&q).unwrap().total, 0);
    q.issuer = Some("let's".into());
    q.exclude_expired = true;
    q.now = NOW + 100 * 86_400;
    assert_eq!(store.console_search(&q).unwrap().total, 0, "all expired");

    let detail = store.cert_detail(&[2; 32]).unwrap().unwrap();
    assert_eq!(detail.record.dns_names, ["www.example.com"]);
    assert_eq!(detail.der, Some(vec![4, 2, 1, 2, 3]));
    assert_eq!(detail.matches.len(), 1);
    assert_eq!(detail.matches[0].tags, ["web"]);
    assert!(store.cert_detail(&[9; 32]).unwrap().is_none());
    let newest = store
        .newest_cert_for_host("www.example.com")
        .unwrap()
        .unwrap();
    assert_eq!(newest.tbs_sha256, hex::encode([2u8; 32]));
    assert_eq!(newest.fingerprints, [hex::encode([4u8; 32])]);

    let filter = EventFilter::default();
    let events = store.event_page(&filter, 10).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, "new_certificate");
    let only = |f: EventFilter| store.event_page(&f, 10).unwrap().len();
    assert_eq!(
        only(EventFilter {
            tag: Some("web".into()),
            ..Default::default()
        }),
        1
    );
    assert_eq!(
        only(EventFilter {
            tag: Some("ops".into()),
            ..Default::default()
        }),
        0
    );
    assert_eq!(
        only(EventFilter {
            item: Some("example.com".into()),
            ..Default::default()
        }),
        1
    );
    assert_eq!(
        only(EventFilter {
            name: Some("WWW.EXAMPLE".into()),
            ..Default::default()
        }),
        1
    );
    assert_eq!(
        only(EventFilter {
            name: Some("shop".into()),
            ..Default::default()
        }),
        0
    );
    assert_eq!(
        only(EventFilter {
            after: Some(events[0].id),
            ..Default::default()
        }),
        0
    );
    let per_hour = store.events_per_hour(NOW).unwrap();
    assert_eq!(per_hour.len(), 24);
    assert_eq!(per_hour[23], 1);
    let logs = store.console_logs().unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].verified_size, 4);
}

pub fn inventory_and_ct_lookups(store: &Store) {
    let mut tail = Tail::new(store, 1);
    tail.commit(
        store,
        3,
        vec![
            entry(
                0,
                1,
                1,
                &["www.example.com"],
                vec![domain_match("www.example.com", &["b", "a"])],
            ),
            entry(1, 1, 2, &["www.example.com"], vec![]),
            entry(2, 2, 4, &["*.example.com"], vec![]),
        ],
        vec![],
    );
    let all = store.valid_certificates(None, NOW).unwrap();
    assert_eq!(all.len(), 1, "only matched certificates without a domain");
    assert_eq!(all[0].tags, ["a", "b"]);
    assert_eq!(all[0].index, 0);
    assert_eq!(all[0].log, "https://log1.example/");
    let mut fps = all[0].fingerprints.clone();
    fps.sort();
    assert_eq!(
        fps,
        [
            (hex::encode([1u8; 32]), "precert".to_string()),
            (hex::encode([2u8; 32]), "x509".to_string())
        ]
    );
    let under = store.valid_certificates(Some("example.com"), NOW).unwrap();
    assert_eq!(under.len(), 2);
    assert!(
        store
            .valid_certificates(Some("example.com"), NOW + 365 * 86_400)
            .unwrap()
            .is_empty()
    );
    let covering = store.ct_certificates_covering("WWW.example.com.").unwrap();
    assert_eq!(covering.len(), 2);
    assert_eq!(covering[0].index, 0);
    assert_eq!(covering[0].logged_at, NOW);
    assert_eq!(covering[1].names, ["*.example.com"]);
}
