//! One PostgreSQL database shared by two instances (two `Store`s with different instance IDs, a fresh database
//! per test): a batch commits only while its instance holds the log's lease (fencing, in the batch
//! transaction); outbox deliveries and probe targets claimed by one instance are skipped by the other until
//! delivered or the claim expires; two instances delivering to stdout at once never take the same event.

mod common;

use std::path::Path;
use std::time::Duration;

use common::pg::TestDb;
use ctwatch::ct::merkle::CollapsedTree;
use ctwatch::ctlog::TreeHead;
use ctwatch::event::{Event, LogRef};
use ctwatch::lease::pg as lease_pg;
use ctwatch::probe::target::Target;
use ctwatch::store::{Batch, LogMeta, SinkRoute, Store, StoreError};
use serde_json::json;

const LOG: [u8; 32] = [3; 32];

fn open(db: &TestDb, instance: &str) -> Store {
    let store = Store::open(Path::new(&db.url)).unwrap();
    store.set_instance(instance);
    store.set_sink_routes(vec![SinkRoute::all("hook"), SinkRoute::all("stdout")]);
    store
}

/// Run `f` with a lease-table client on a runtime of its own (the test itself is synchronous, like `Store`).
fn leases<T>(db: &TestDb, f: impl AsyncFnOnce(&mut tokio_postgres::Client) -> T) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let mut c = lease_pg::connect(&db.url).await.unwrap();
            lease_pg::migrate(&mut c).await.unwrap();
            f(&mut c).await
        })
}

fn batch(start: u64, count: u64) -> Batch {
    let mut tree = CollapsedTree::new();
    for i in 0..start + count {
        tree.push([i as u8; 32]);
    }
    Batch {
        log: LogRef {
            log_id: LOG,
            url: "https://log.example/".into(),
            description: "Log".into(),
        },
        start,
        head: TreeHead {
            tree_size: tree.size(),
            timestamp_ms: 1_750_000_000_000,
            root_hash: tree.root(),
        },
        tree,
        entries: vec![],
        malformed: vec![],
        entry_count: count,
        now: 1_750_000_000,
    }
}

fn event(n: u64) -> Event {
    Event {
        kind: "test".into(),
        group_key: format!("g{n}"),
        tags: vec![],
        payload: json!({ "n": n }),
    }
}

#[test]
fn a_batch_commits_only_while_its_instance_holds_the_lease() {
    let db = TestDb::new();
    let a = open(&db, "a");
    a.upsert_log(&LogMeta {
        log_id: LOG,
        url: "https://log.example/".into(),
        kind: "rfc6962",
        description: "Log".into(),
        operator: "Op".into(),
        state: "usable".into(),
    })
    .unwrap();
    a.init_log_position(&LOG, &CollapsedTree::new(), None)
        .unwrap();
    // b holds the lease: a's batch is refused and the position stays.
    leases(&db, async |c| {
        lease_pg::try_acquire(c, "b", &LOG, Duration::from_secs(60))
            .await
            .unwrap()
    });
    let err = a.commit_batch(&batch(0, 4)).unwrap_err();
    assert!(
        matches!(err, StoreError::LeaseLost { ref instance, .. } if instance == "a"),
        "{err}"
    );
    assert!(
        err.to_string().contains("no longer holds the log's lease"),
        "{err}"
    );
    assert_eq!(a.log_position(&LOG).unwrap().unwrap().tree.size(), 0);
    // b goes; a takes the lease and commits.
    leases(&db, async |c| {
        assert!(lease_pg::release(c, "b", &LOG).await.unwrap());
        lease_pg::try_acquire(c, "a", &LOG, Duration::from_secs(60))
            .await
            .unwrap()
    });
    a.commit_batch(&batch(0, 4)).unwrap();
    assert_eq!(a.log_position(&LOG).unwrap().unwrap().tree.size(), 4);
    // An expired lease fences as well.
    leases(&db, async |c| {
        c.execute(
            "UPDATE ctwatch_log_leases SET expires_at = now() - interval '1 second'",
            &[],
        )
        .await
        .unwrap()
    });
    assert!(matches!(
        a.commit_batch(&batch(4, 2)),
        Err(StoreError::LeaseLost { .. })
    ));
}

#[test]
fn deliveries_claimed_by_one_instance_are_skipped_by_the_other_until_the_claim_expires() {
    let db = TestDb::new();
    let (a, b) = (open(&db, "a"), open(&db, "b"));
    let ids: Vec<i64> = (0..4)
        .map(|n| a.queue_event_at(&event(n), 100).unwrap())
        .collect();
    let now = ctwatch::store::unix_now();
    assert_eq!(
        a.claim_deliveries("hook", &ids[..3], now).unwrap(),
        &ids[..3]
    );
    // b sees and claims only what a did not claim.
    let rows: Vec<i64> = b
        .pending_rows("hook", 10)
        .unwrap()
        .iter()
        .map(|r| r.event_id)
        .collect();
    assert_eq!(rows, &ids[3..]);
    assert_eq!(b.claim_deliveries("hook", &ids, now).unwrap(), &ids[3..]);
    // a still sees its own claims (and may claim them again), not b's.
    let rows: Vec<i64> = a
        .pending_rows("hook", 10)
        .unwrap()
        .iter()
        .map(|r| r.event_id)
        .collect();
    assert_eq!(rows, &ids[..3]);
    a.mark_delivered("hook", &ids[..2]).unwrap();
    // A failed attempt releases the claim: b may retry it.
    a.mark_attempt_failed("hook", &ids[2..3], "HTTP 500", Some(0))
        .unwrap();
    assert_eq!(b.claim_deliveries("hook", &ids, now).unwrap(), &ids[2..]);
    // b dies with its claims: once they expire, a takes them.
    assert!(a.claim_deliveries("hook", &ids, now).unwrap().is_empty());
    let later = now + 301;
    assert_eq!(a.claim_deliveries("hook", &ids, later).unwrap(), &ids[2..]);
}

#[test]
fn two_instances_printing_at_once_never_take_the_same_event() {
    let db = TestDb::new();
    let (a, b) = (open(&db, "a"), open(&db, "b"));
    for n in 0..6 {
        a.queue_event_at(&event(n), 100).unwrap();
    }
    // While a's transaction holds 4 rows (its send is running), b takes the 2 others.
    let mut b_got = Vec::new();
    let a_got = a
        .deliver_in_transaction("stdout", 200, 4, |due| {
            // Another process, as far as the database can tell: its own thread and connection.
            let r = std::thread::scope(|s| {
                s.spawn(|| {
                    b.deliver_in_transaction("stdout", 200, 10, |due| {
                        b_got = due
                            .iter()
                            .map(|d| d.payload["n"].as_u64().unwrap())
                            .collect();
                        Ok::<(), ()>(())
                    })
                })
                .join()
                .unwrap()
            })
            .unwrap();
            assert_eq!(r, Ok(2));
            assert_eq!(due.len(), 4);
            Ok::<(), ()>(())
        })
        .unwrap();
    assert_eq!(a_got, Ok(4));
    assert_eq!(b_got, [4, 5]);
    assert!(a.due_deliveries("stdout", 200, 10).unwrap().is_empty());
}

#[test]
fn probe_targets_claimed_by_one_instance_are_not_probed_by_the_other() {
    let db = TestDb::new();
    let (a, b) = (open(&db, "a"), open(&db, "b"));
    for host in ["a.example", "b.example", "c.example"] {
        a.add_probe_target(&Target::new(host, 443).unwrap(), &[], 100)
            .unwrap();
    }
    let got_a: Vec<String> = a
        .due_probe_targets(200, 2)
        .unwrap()
        .into_iter()
        .map(|t| t.domain)
        .collect();
    assert_eq!(got_a.len(), 2);
    let got_b: Vec<String> = b
        .due_probe_targets(200, 10)
        .unwrap()
        .into_iter()
        .map(|t| t.domain)
        .collect();
    assert_eq!(got_b.len(), 1);
    assert!(!got_a.contains(&got_b[0]));
    // Nothing left for either until the claims expire (or the targets are probed and rescheduled).
    assert!(
        b.due_probe_targets(200, 10).unwrap().len() == 1,
        "b keeps its own claim"
    );
    assert!(b.due_probe_targets(200 + 301, 10).unwrap().len() == 3);
}
