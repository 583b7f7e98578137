//! Conformance bodies for the write side: batches, positions, the outbox, pauses, runs, facts, rewinds.

use std::collections::BTreeMap;

use ctwatch::ct::merkle::CollapsedTree;
use ctwatch::ctlog::TreeHead;
use ctwatch::ctlog::static_ct::IssuerCache;
use ctwatch::store::{MalformedEntry, SinkRoute, Store, StoreError};
use serde_json::json;

use crate::builders::*;

pub fn batch_commit_deduplicates_and_moves_the_position(store: &Store) {
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

pub fn a_batch_at_the_wrong_position_is_refused_and_writes_nothing(store: &Store) {
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

pub fn matches_queue_events_probe_targets_and_caa_candidates(store: &Store) {
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

pub fn outbox_lifecycle(store: &Store) {
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

pub fn deliver_in_transaction_rolls_back_on_error(store: &Store) {
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

pub fn sink_pauses_hold_until_resumed(store: &Store) {
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

pub fn runs_report_a_crash_once(store: &Store) {
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

pub fn facts_and_issuer_cache(store: &Store) {
    assert_eq!(store.fact("log_list").unwrap(), None);
    store.set_fact("log_list", "v1").unwrap();
    store.set_fact("log_list", "v2").unwrap();
    assert_eq!(store.fact("log_list").unwrap().as_deref(), Some("v2"));
    assert_eq!(store.get_issuer(&[5; 32]), None);
    store.put_issuer(&[5; 32], b"der");
    store.put_issuer(&[5; 32], b"other");
    assert_eq!(store.get_issuer(&[5; 32]).as_deref(), Some(&b"der"[..]));
}

pub fn logs_listing_counts_malformed_entries(store: &Store) {
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

pub fn rewind_is_requested_and_applied(store: &Store) {
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
