//! One conformance suite, two engines: every test body below runs against SQLite (`sqlite::NAME`) and against a
//! fresh PostgreSQL database (`postgres::NAME`, on the server of `CTWATCH_TEST_PG_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`). Only the public `Store` API is used, so what passes here is
//! the observable behaviour callers rely on, whatever the backend. An unreachable PostgreSQL fails the
//! `postgres::` tests with what to do.

mod common;

use std::collections::BTreeMap;

use ctwatch::ct::cert::{CertInfo, ChainStatus};
use ctwatch::ct::leaf::EntryType;
use ctwatch::ct::merkle::CollapsedTree;
use ctwatch::ctlog::TreeHead;
use ctwatch::ctlog::static_ct::IssuerCache;
use ctwatch::event::{Event, LogRef};
use ctwatch::probe::HostReport;
use ctwatch::probe::renewal::Finding;
use ctwatch::probe::target::Target;
use ctwatch::store::{
    Batch, CaaRecordRow, EventFilter, FindingRecord, LogMeta, MalformedEntry, NameMode,
    ProbeRecord, SearchQuery, SinkRoute, Store, StoreError, StoredEntry,
};
use ctwatch::watchlist::{Match, MatchKind};
use serde_json::json;

/// Generate `sqlite::NAME` and `postgres::NAME` for each test body `NAME(&Store)`.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let store = ctwatch::store::Store::open(&dir.path().join("ctwatch.db")).unwrap();
                    super::$name(&store);
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    let db = super::common::pg::TestDb::new();
                    let store = ctwatch::store::Store::open(std::path::Path::new(&db.url)).unwrap();
                    assert_eq!(store.backend_name(), "postgres");
                    super::$name(&store);
                    drop(store);
                }
            )*
        }
    };
}

conformance!(
    batch_commit_deduplicates_and_moves_the_position,
    a_batch_at_the_wrong_position_is_refused_and_writes_nothing,
    matches_queue_events_probe_targets_and_caa_candidates,
    outbox_lifecycle,
    deliver_in_transaction_rolls_back_on_error,
    sink_pauses_hold_until_resumed,
    runs_report_a_crash_once,
    facts_and_issuer_cache,
    probe_targets_and_results,
    expiry_findings_are_raised_kept_and_resolved,
    caa_checks_are_recorded,
    console_search_events_and_cert_detail,
    logs_listing_counts_malformed_entries,
    rewind_is_requested_and_applied,
    inventory_and_ct_lookups,
);

// ---- builders ------------------------------------------------------------------------------------------------

const NOW: i64 = 1_750_000_000;

fn log(n: u8) -> LogRef {
    LogRef {
        log_id: [n; 32],
        url: format!("https://log{n}.example/"),
        description: format!("Log {n}"),
    }
}

fn add_log(store: &Store, n: u8) {
    store
        .upsert_log(&LogMeta {
            log_id: [n; 32],
            url: format!("https://log{n}.example/"),
            kind: "rfc6962",
            description: format!("Log {n}"),
            operator: "Op".into(),
            state: "usable".into(),
        })
        .unwrap();
    store
        .init_log_position(&[n; 32], &CollapsedTree::new(), None)
        .unwrap();
}

/// A certificate: `tbs` identifies it, `fp` its DER fingerprint.
fn info(tbs: u8, fp: u8, names: &[&str]) -> CertInfo {
    CertInfo {
        dns_names: names.iter().map(|s| s.to_string()).collect(),
        ip_addresses: Vec::new(),
        subject: format!("CN={}", names.first().unwrap_or(&"")),
        issuer: "CN=R11, O=Let's Encrypt, C=US".into(),
        issuer_org: Some("Let's Encrypt".into()),
        issuer_cn: Some("R11".into()),
        serial: format!("{tbs:02x}"),
        not_before: NOW - 86_400,
        not_after: NOW + 89 * 86_400,
        cert_sha256: Some([fp; 32]),
        tbs_sha256: [tbs; 32],
        pubkey_sha256: [0xAA; 32],
        issuer_spki_sha256: None,
        chain: ChainStatus::Unchecked,
        is_precert: false,
    }
}

fn domain_match(name: &str, tags: &[&str]) -> Match {
    Match {
        item: "example.com".into(),
        source: "watch.txt:1".into(),
        name: name.into(),
        name_unicode: name.into(),
        kind: MatchKind::Domain,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        brand: None,
        reason: None,
    }
}

fn entry(index: u64, tbs: u8, fp: u8, names: &[&str], matches: Vec<Match>) -> StoredEntry {
    StoredEntry {
        index,
        timestamp_ms: (NOW as u64) * 1000 + index,
        entry_type: if fp.is_multiple_of(2) {
            EntryType::X509
        } else {
            EntryType::Precert
        },
        info: info(tbs, fp, names),
        der: Some(vec![fp, tbs, 1, 2, 3]),
        matches,
    }
}

/// A log's tree as the tailer keeps it, to build consecutive batches.
struct Tail {
    log: LogRef,
    tree: CollapsedTree,
}

impl Tail {
    fn new(store: &Store, n: u8) -> Tail {
        add_log(store, n);
        Tail {
            log: log(n),
            tree: CollapsedTree::new(),
        }
    }

    /// A batch of `count` entries from the current position, storing `entries` and `malformed`.
    fn batch(
        &self,
        count: u64,
        entries: Vec<StoredEntry>,
        malformed: Vec<MalformedEntry>,
    ) -> Batch {
        let start = self.tree.size();
        let mut tree = self.tree.clone();
        for i in start..start + count {
            let mut leaf = [0u8; 32];
            leaf[..8].copy_from_slice(&i.to_be_bytes());
            tree.push(leaf);
        }
        Batch {
            log: self.log.clone(),
            start,
            head: TreeHead {
                tree_size: tree.size(),
                timestamp_ms: (NOW as u64) * 1000,
                root_hash: tree.root(),
            },
            tree,
            entries,
            malformed,
            entry_count: count,
            now: NOW,
        }
    }

    fn commit(
        &mut self,
        store: &Store,
        count: u64,
        entries: Vec<StoredEntry>,
        malformed: Vec<MalformedEntry>,
    ) -> ctwatch::store::BatchOutcome {
        let b = self.batch(count, entries, malformed);
        let out = store.commit_batch(&b).unwrap();
        self.tree = b.tree;
        out
    }
}

fn report(domain: &str, cert: Option<&str>, days_left: i64, not_after: &str) -> HostReport {
    serde_json::from_value(json!({
        "domain": domain, "port": 443, "status": "ok", "level": "OK", "days_left": days_left,
        "not_before": "2025-06-01T00:00:00Z", "not_after": not_after, "issuer": "CN=R11", "subject": null,
        "sans": [domain], "cert_sha256": cert, "tbs_sha256": cert.map(|c| format!("t{c}")),
        "seen_in_ct": true, "problems": [], "error": null, "addresses": [],
        "probed_at": "2025-06-15T14:13:20Z", "duration_ms": 12
    }))
    .unwrap()
}

fn event(kind: &str, tags: &[&str], payload: serde_json::Value) -> Event {
    Event {
        kind: kind.into(),
        group_key: "g".into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        payload,
    }
}

// ---- test bodies ---------------------------------------------------------------------------------------------

fn batch_commit_deduplicates_and_moves_the_position(store: &Store) {
    let mut tail = Tail::new(store, 1);
    // A precert and its final certificate (same tbs) in one batch, and another certificate.
    let out = tail.commit(
        store,
        10,
        vec![
            entry(2, 1, 1, &["www.example.com", "example.com"], vec![]),
            entry(5, 1, 2, &["www.example.com", "example.com"], vec![]),
            entry(7, 2, 4, &["api.example.com", "example.com"], vec![]),
        ],
        vec![],
    );
    assert_eq!(out.new_certificates, 2);
    assert_eq!(out.new_sightings, 3);
    assert_eq!(out.new_events, 0);
    assert_eq!(
        out.new_names,
        ["www.example.com", "example.com", "api.example.com"]
    );
    let pos = store.log_position(&[1; 32]).unwrap().unwrap();
    assert_eq!(pos.tree.size(), 10);
    assert_eq!(pos.tree.root(), tail.tree.root());
    assert_eq!(pos.verified_head.unwrap().tree_size, 10);

    // The same certificate again, in a later batch: a sighting, not a new certificate.
    let out = tail.commit(
        store,
        5,
        vec![entry(12, 1, 2, &["www.example.com", "example.com"], vec![])],
        vec![],
    );
    assert_eq!(out.new_certificates, 0);
    assert_eq!(out.new_sightings, 1);
    assert!(out.new_names.is_empty());

    let found = store.search("example.com", 10).unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].tbs_sha256, hex::encode([2u8; 32]), "newest first");
    let first = &found[1];
    assert_eq!(
        first.cert_sha256,
        hex::encode([1u8; 32]),
        "first sighting's"
    );
    assert_eq!(first.entry_type, "precert");
    let mut fps = first.fingerprints.clone();
    fps.sort();
    assert_eq!(fps, [hex::encode([1u8; 32]), hex::encode([2u8; 32])]);
    let idx: Vec<u64> = first.sightings.iter().map(|s| s.index).collect();
    assert_eq!(idx, [2, 5, 12]);
    assert_eq!(first.sightings[0].log, "https://log1.example/");
    assert_eq!(store.search("www.example.com", 10).unwrap().len(), 1);
    assert_eq!(store.search("*.example.com", 10).unwrap().len(), 2);
    assert!(store.search("example.org", 10).unwrap().is_empty());
    let logs = store.list_logs().unwrap();
    assert_eq!(logs[0].entries_processed, 15);
    assert_eq!(logs[0].verified_size, 15);
    assert!(store.seen_in_ct(&[2; 32], None).unwrap());
    assert!(store.seen_in_ct(&[9; 32], Some(&[1; 32])).unwrap());
    assert!(!store.seen_in_ct(&[9; 32], Some(&[9; 32])).unwrap());
}

fn a_batch_at_the_wrong_position_is_refused_and_writes_nothing(store: &Store) {
    let mut tail = Tail::new(store, 1);
    tail.commit(store, 4, vec![], vec![]);
    let mut stale = Tail {
        log: log(1),
        tree: CollapsedTree::new(),
    };
    let b = stale.batch(3, vec![entry(1, 7, 8, &["x.example.com"], vec![])], vec![]);
    match store.commit_batch(&b) {
        Err(StoreError::PositionMismatch {
            batch_start: 0,
            stored: Some(4),
            ..
        }) => {}
        other => panic!("expected PositionMismatch, got {other:?}"),
    }
    assert!(store.search("x.example.com", 10).unwrap().is_empty());
    assert_eq!(
        store.log_position(&[1; 32]).unwrap().unwrap().tree.size(),
        4
    );
    // An unknown log has no stored position at all.
    stale.log = log(9);
    let b = stale.batch(1, vec![], vec![]);
    assert!(matches!(
        store.commit_batch(&b),
        Err(StoreError::PositionMismatch { stored: None, .. })
    ));
    stale.tree = CollapsedTree::new();
    assert!(store.log_position(&[9; 32]).unwrap().is_none());
}

fn matches_queue_events_probe_targets_and_caa_candidates(store: &Store) {
    store.set_sink_routes(vec![
        SinkRoute::all("stdout"),
        SinkRoute {
            name: "ops".into(),
            kinds: vec![],
            tags: vec!["ops".into()],
        },
    ]);
    let mut tail = Tail::new(store, 1);
    let out = tail.commit(
        store,
        3,
        vec![
            entry(
                0,
                1,
                2,
                &["www.example.com"],
                vec![domain_match("www.example.com", &["ops"])],
            ),
            entry(
                1,
                2,
                4,
                &["*.example.com"],
                vec![domain_match("*.example.com", &["web"])],
            ),
            // Seen again: not reported again.
            entry(
                2,
                1,
                1,
                &["www.example.com"],
                vec![domain_match("www.example.com", &["ops"])],
            ),
        ],
        vec![],
    );
    assert_eq!(out.new_certificates, 2);
    assert_eq!(out.new_events, 2);
    assert_eq!(out.new_probe_targets, 1, "a wildcard is not probed");
    let summary = store.outbox_summary().unwrap();
    let pending: Vec<(&str, u64)> = summary
        .iter()
        .map(|s| (s.sink.as_str(), s.pending))
        .collect();
    assert_eq!(pending, [("ops", 1), ("stdout", 2)]);
    let targets = store.probe_targets().unwrap();
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0].domain, "www.example.com");
    assert_eq!(targets[0].tags, ["ops"]);
    let cands = store.caa_candidates(0, NOW, 10).unwrap();
    assert_eq!(cands.len(), 2);
    assert_eq!(cands[0].matched_names, ["www.example.com"]);
    assert_eq!(cands[0].tags, ["ops"]);
    assert_eq!(cands[0].attempts, 0);
    assert_eq!(store.last_event_id().unwrap(), 2);
    assert_eq!(
        store.events_since(0).unwrap(),
        [("new_certificate".to_string(), 2)]
    );
    assert_eq!(
        store.events_by_kind().unwrap(),
        BTreeMap::from([("new_certificate".to_string(), 2)])
    );
}

fn outbox_lifecycle(store: &Store) {
    store.set_sink_routes(vec![SinkRoute::all("a"), SinkRoute::all("b")]);
    let e1 = store
        .queue_event_at(&event("test", &["x"], json!({"n": 1})), 100)
        .unwrap();
    let e2 = store
        .queue_event_at(&event("probe", &[], json!({"n": 2})), 200)
        .unwrap();
    assert!(e2 > e1);
    let rows = store.pending_rows("a", 10).unwrap();
    assert_eq!(
        rows.iter().map(|r| r.event_id).collect::<Vec<_>>(),
        [e1, e2]
    );
    let due = store.due_deliveries("a", 1000, 10).unwrap();
    assert_eq!(due.len(), 2);
    assert_eq!(due[0].payload, json!({"n": 1}));
    assert_eq!(due[0].tags, ["x"]);
    assert_eq!(due[0].created_at, 100);
    let picked = store.pending_deliveries("a", &[e2, e1, 999]).unwrap();
    assert_eq!(
        picked.iter().map(|d| d.event_id).collect::<Vec<_>>(),
        [e2, e1]
    );
    // a: e1 delivered; e2 fails once (retry later), then for good.
    store.mark_delivered("a", &[e1]).unwrap();
    store
        .mark_attempt_failed("a", &[e2], "HTTP 500", Some(5000))
        .unwrap();
    assert!(store.due_deliveries("a", 1000, 10).unwrap().is_empty());
    assert_eq!(store.next_due("a").unwrap(), Some(5000));
    let failures = store.sink_failures().unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].sink, "a");
    assert_eq!(failures[0].last_error.as_deref(), Some("HTTP 500"));
    store
        .mark_attempt_failed("a", &[e2], "HTTP 400", None)
        .unwrap();
    let und = store.undelivered(Some("a"), 10).unwrap();
    assert_eq!(und.len(), 1);
    assert_eq!((und[0].status.as_str(), und[0].attempts), ("failed", 2));
    assert_eq!(und[0].last_error.as_deref(), Some("HTTP 400"));
    assert_eq!(store.undelivered(None, 10).unwrap().len(), 3);
    let s = store.outbox_summary().unwrap();
    assert_eq!(
        (
            s[0].sink.as_str(),
            s[0].pending,
            s[0].failed,
            s[0].delivered
        ),
        ("a", 0, 1, 1)
    );
    assert_eq!(store.requeue_failed(Some("a")).unwrap(), 1);
    assert_eq!(store.due_deliveries("a", i64::MAX, 10).unwrap().len(), 1);
    assert!(store.delivered_since(0).unwrap() >= 1);
    // Renaming a sink moves its queue; dropping a sink's queue leaves delivered rows alone.
    assert_eq!(store.rename_sink("b", "c").unwrap(), 2);
    assert!(store.pending_rows("b", 10).unwrap().is_empty());
    assert_eq!(store.pending_rows("c", 10).unwrap().len(), 2);
    assert_eq!(store.drop_undelivered("c").unwrap(), 2);
    assert_eq!(store.drop_undelivered("a").unwrap(), 1);
    let s = store.outbox_summary().unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].delivered, 1);
}

fn deliver_in_transaction_rolls_back_on_error(store: &Store) {
    store.set_sink_routes(vec![SinkRoute::all("stdout")]);
    store
        .queue_event_at(&event("test", &[], json!({})), 10)
        .unwrap();
    let r = store
        .deliver_in_transaction("stdout", 100, 10, |d| {
            assert_eq!(d.len(), 1);
            Err("disk full")
        })
        .unwrap();
    assert_eq!(r, Err("disk full"));
    assert_eq!(store.due_deliveries("stdout", 100, 10).unwrap().len(), 1);
    let r = store
        .deliver_in_transaction("stdout", 100, 10, |_| Ok::<(), ()>(()))
        .unwrap();
    assert_eq!(r, Ok(1));
    assert!(store.due_deliveries("stdout", 100, 10).unwrap().is_empty());
    assert_eq!(store.outbox_summary().unwrap()[0].delivered, 1);
}

fn sink_pauses_hold_until_resumed(store: &Store) {
    assert_eq!(store.sink_pause("chat").unwrap(), None);
    store.pause_sink("chat", "HTTP 404", 100).unwrap();
    store.pause_sink("chat", "HTTP 410", 200).unwrap();
    store.pause_sink("ops", "HTTP 404", 150).unwrap();
    let p = store.sink_pause("chat").unwrap().unwrap();
    assert_eq!((p.paused_at, p.reason.as_str()), (100, "HTTP 410"));
    let names: Vec<String> = store
        .sink_pauses()
        .unwrap()
        .into_iter()
        .map(|p| p.sink)
        .collect();
    assert_eq!(names, ["chat", "ops"]);
    assert_eq!(store.resume_sinks(Some("chat")).unwrap(), ["chat"]);
    assert_eq!(store.resume_sinks(None).unwrap(), ["ops"]);
    assert!(store.sink_pauses().unwrap().is_empty());
}

fn runs_report_a_crash_once(store: &Store) {
    let (first, crashed) = store.begin_run(111, "0.1.0", 1000, |_| false).unwrap();
    assert!(crashed.is_empty());
    store.touch_run(first, 1060).unwrap();
    let (second, crashed) = store.begin_run(222, "0.1.1", 2000, |_| false).unwrap();
    assert_eq!(crashed.len(), 1);
    assert_eq!(
        (
            crashed[0].pid,
            crashed[0].last_seen_at,
            crashed[0].version.as_str()
        ),
        (111, 1060, "0.1.0")
    );
    store.end_run(second, 2100).unwrap();
    let (_, crashed) = store
        .begin_run(333, "0.1.1", 3000, |pid| pid == 333)
        .unwrap();
    assert!(crashed.is_empty());
}

fn facts_and_issuer_cache(store: &Store) {
    assert_eq!(store.fact("log_list").unwrap(), None);
    store.set_fact("log_list", "v1").unwrap();
    store.set_fact("log_list", "v2").unwrap();
    assert_eq!(store.fact("log_list").unwrap().as_deref(), Some("v2"));
    assert_eq!(store.get_issuer(&[5; 32]), None);
    store.put_issuer(&[5; 32], b"der");
    store.put_issuer(&[5; 32], b"other");
    assert_eq!(store.get_issuer(&[5; 32]).as_deref(), Some(&b"der"[..]));
}

fn probe_targets_and_results(store: &Store) {
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

fn finding(kind: &str, cert: &str) -> Finding {
    serde_json::from_value(json!({
        "kind": kind,
        "served": {"cert_sha256": cert, "tbs_sha256": null, "names": ["www.example.com"], "issuer": null,
                   "not_before": 0, "not_after": 100, "seen_in_ct": null, "addresses": []},
        "newer": null, "renewal_due_at": 50
    }))
    .unwrap()
}

fn expiry_findings_are_raised_kept_and_resolved(store: &Store) {
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

fn caa_checks_are_recorded(store: &Store) {
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

fn search_query(name: &str, mode: NameMode) -> SearchQuery {
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

fn console_search_events_and_cert_detail(store: &Store) {
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

fn logs_listing_counts_malformed_entries(store: &Store) {
    let mut a = Tail::new(store, 1);
    let mut b = Tail::new(store, 2);
    let bad = |index| MalformedEntry {
        index,
        reason: "truncated".into(),
        leaf_input: vec![0, 1],
        extra_data: vec![],
    };
    a.commit(store, 5, vec![], vec![bad(1), bad(3)]);
    b.commit(store, 2, vec![], vec![]);
    store.record_error(&[2; 32], "HTTP 503").unwrap();
    store
        .record_head(
            &[2; 32],
            &TreeHead {
                tree_size: 10,
                timestamp_ms: 1,
                root_hash: [0; 32],
            },
        )
        .unwrap();
    let logs = store.list_logs().unwrap();
    let rows: Vec<(&str, u64, u64, Option<u64>)> = logs
        .iter()
        .map(|l| {
            (
                l.url.as_str(),
                l.verified_size,
                l.malformed_entries,
                l.backlog,
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("https://log1.example/", 5, 2, None),
            ("https://log2.example/", 2, 0, Some(8))
        ]
    );
    assert_eq!(logs[1].last_error.as_deref(), Some("HTTP 503"));
    let counts = store.malformed_counts().unwrap();
    assert_eq!(
        counts,
        BTreeMap::from([("https://log1.example/".to_string(), 2)])
    );
    let entries = store.malformed_entries(10).unwrap();
    assert_eq!(entries.iter().map(|e| e.index).collect::<Vec<_>>(), [1, 3]);
    assert_eq!(entries[0].reason, "truncated");
}

fn rewind_is_requested_and_applied(store: &Store) {
    let mut tail = Tail::new(store, 1);
    tail.commit(store, 8, vec![], vec![]);
    assert_eq!(store.pending_rewind(&[1; 32]).unwrap(), None);
    assert!(store.request_rewind(&[1; 32], 3).unwrap());
    assert!(!store.request_rewind(&[7; 32], 3).unwrap(), "unknown log");
    assert_eq!(store.pending_rewind(&[1; 32]).unwrap(), Some(3));
    let mut tree = CollapsedTree::new();
    for i in 0u64..3 {
        let mut leaf = [0u8; 32];
        leaf[..8].copy_from_slice(&i.to_be_bytes());
        tree.push(leaf);
    }
    let head = TreeHead {
        tree_size: 8,
        timestamp_ms: 5,
        root_hash: tail.tree.root(),
    };
    store.apply_rewind(&[1; 32], &tree, &head).unwrap();
    assert_eq!(store.pending_rewind(&[1; 32]).unwrap(), None);
    let pos = store.log_position(&[1; 32]).unwrap().unwrap();
    assert_eq!(pos.tree.size(), 3);
    assert!(pos.verified_head.is_none(), "3 is not the head's size");
    assert_eq!(store.find_logs("LOG1").unwrap().len(), 1);
    assert!(store.find_logs("nothing").unwrap().is_empty());
    // The next batch continues from the rewound position.
    tail.tree = tree;
    let out = tail.commit(store, 5, vec![], vec![]);
    assert_eq!(out.new_certificates, 0);
    assert_eq!(store.list_logs().unwrap()[0].verified_size, 8);
}

fn inventory_and_ct_lookups(store: &Store) {
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
