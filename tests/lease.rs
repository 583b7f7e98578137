//! Log leases against a real PostgreSQL (a fresh database per test): instances in one process share the logs
//! evenly and disjointly, a crashed one's logs are taken over after the TTL, a newcomer takes its share, a
//! graceful exit hands everything over at once, and the fencing check refuses a former owner.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::pg::TestDb;
use ctwatch::lease::{self, LeaseConfig, LeaseOwner, LogId, LogOwnership, pg};

fn fast() -> LeaseConfig {
    LeaseConfig {
        ttl: Duration::from_secs(3),
        renew_every: Duration::from_millis(200),
        release_grace: Duration::from_secs(2),
    }
}

fn logs(n: u8) -> BTreeSet<LogId> {
    (0..n).map(|i| [i; 32]).collect()
}

async fn start(db: &TestDb, name: &str, wanted: &BTreeSet<LogId>) -> Arc<LeaseOwner> {
    let o = LeaseOwner::start(&db.url, name.to_string(), fast(), None)
        .await
        .unwrap();
    o.set_wanted(wanted.clone());
    o
}

fn owned(o: &LeaseOwner) -> BTreeSet<LogId> {
    (**o.owned().borrow()).clone()
}

/// Wait until `cond` holds over the owners' published sets, or fail after `within`, printing them.
async fn until(
    owners: &[&Arc<LeaseOwner>],
    within: Duration,
    what: &str,
    cond: impl Fn(&[BTreeSet<LogId>]) -> bool,
) -> Duration {
    let t0 = Instant::now();
    loop {
        // The supervisor acknowledges stopped tailers; here nothing runs, so acknowledge every hand-over.
        for o in owners {
            for l in logs(16) {
                if !o.owned().borrow().contains(&l) {
                    o.stopped(l);
                }
            }
        }
        let sets: Vec<_> = owners.iter().map(|o| owned(o)).collect();
        if cond(&sets) {
            return t0.elapsed();
        }
        if t0.elapsed() > within {
            let sizes: Vec<usize> = sets.iter().map(|s| s.len()).collect();
            panic!("{what}: not reached within {within:?}; owned counts {sizes:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn disjoint_cover(sets: &[BTreeSet<LogId>], wanted: &BTreeSet<LogId>) -> bool {
    let total: usize = sets.iter().map(|s| s.len()).sum();
    let union: BTreeSet<LogId> = sets.iter().flatten().copied().collect();
    total == wanted.len() && union == *wanted
}

fn even(sets: &[BTreeSet<LogId>], n: usize) -> bool {
    let t = lease::target(n, sets.len());
    sets.iter().all(|s| s.len() <= t)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_seven_logs_evenly_and_a_crashed_ones_are_taken_over() {
    let db = TestDb::new();
    let wanted = logs(7);
    let a = start(&db, "a", &wanted).await;
    let b = start(&db, "b", &wanted).await;
    let c = start(&db, "c", &wanted).await;
    until(
        &[&a, &b, &c],
        Duration::from_secs(15),
        "even, disjoint cover",
        |s| disjoint_cover(s, &wanted) && even(s, wanted.len()),
    )
    .await;
    // The table agrees with what each instance publishes.
    let client = connect(&db.url).await;
    let rows = pg::leases(&client).await.unwrap();
    for row in rows.iter().filter(|r| r.held()) {
        let o = [&a, &b, &c]
            .into_iter()
            .find(|o| o.instance_id() == Some(row.owner.as_str()))
            .unwrap();
        assert!(owned(o).contains(&row.log_id), "{row:?}");
    }

    let c_had = owned(&c);
    assert!(!c_had.is_empty());
    c.crash().await;
    let took = until(
        &[&a, &b],
        Duration::from_secs(15),
        "takeover of the crashed instance's logs",
        |s| disjoint_cover(s, &wanted),
    )
    .await;
    // The leases ran out (3 s TTL) before anyone took them.
    assert!(
        took >= Duration::from_secs(2),
        "taken over after {took:?}: before the TTL ran out"
    );
    let epochs = pg::leases(&client).await.unwrap();
    for l in &c_had {
        let row = epochs.iter().find(|r| r.log_id == *l).unwrap();
        assert!(row.epoch >= 2, "a takeover bumps the epoch: {row:?}");
        assert_ne!(row.owner, "c");
    }
    a.finish().await;
    b.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_instance_takes_its_share_and_a_graceful_exit_hands_over_at_once() {
    let db = TestDb::new();
    let wanted = logs(6);
    let a = start(&db, "a", &wanted).await;
    until(&[&a], Duration::from_secs(10), "a alone holds all", |s| {
        s[0].len() == 6
    })
    .await;
    let b = start(&db, "b", &wanted).await;
    until(&[&a, &b], Duration::from_secs(15), "3 + 3", |s| {
        disjoint_cover(s, &wanted) && s.iter().all(|x| x.len() == 3)
    })
    .await;
    assert!(
        a.stats()
            .released
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 3
    );
    // A graceful exit releases at once: b has everything well before the 3 s TTL could run out.
    let t0 = Instant::now();
    a.finish().await;
    until(&[&b], Duration::from_secs(2), "b takes over at once", |s| {
        s[0].len() == 6
    })
    .await;
    assert!(t0.elapsed() < Duration::from_secs(2));
    let client = connect(&db.url).await;
    let inst = pg::instances(&client).await.unwrap();
    assert!(
        inst.iter().any(|i| i.instance_id == "a" && !i.live),
        "{inst:?}"
    );
    assert!(
        inst.iter().any(|i| i.instance_id == "b" && i.live),
        "{inst:?}"
    );
    b.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fencing_refuses_a_former_owner_and_a_takeover_waits_for_an_open_batch() {
    let db = TestDb::new();
    let mut c1 = connect(&db.url).await;
    pg::migrate(&mut c1).await.unwrap();
    let c2 = connect(&db.url).await;
    let log = [7u8; 32];
    let ttl = Duration::from_millis(800);
    assert_eq!(
        pg::try_acquire(&c1, "one", &log, ttl).await.unwrap(),
        Some(1)
    );
    assert_eq!(
        pg::try_acquire(&c2, "two", &log, ttl).await.unwrap(),
        None,
        "held: not free"
    );
    assert!(pg::holds(&c1, "one", &log).await.unwrap());
    assert!(!pg::holds(&c1, "two", &log).await.unwrap());

    // "one" opens a batch transaction and checks its lease; the lease then expires; "two" tries to take it
    // and must wait for the batch to end.
    let tx = c1.transaction().await.unwrap();
    assert!(pg::holds(&tx, "one", &log).await.unwrap());
    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    let taker = tokio::spawn(async move {
        let t0 = Instant::now();
        let got = pg::try_acquire(&c2, "two", &log, Duration::from_secs(30))
            .await
            .unwrap();
        (got, t0.elapsed(), c2)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !taker.is_finished(),
        "the takeover waited for the open batch"
    );
    tx.commit().await.unwrap();
    let (got, waited, c2) = taker.await.unwrap();
    assert_eq!(
        got,
        Some(2),
        "taken over once the batch ended, epoch bumped"
    );
    assert!(waited >= Duration::from_millis(400));
    // The former owner is fenced out.
    assert!(!pg::holds(&c1, "one", &log).await.unwrap());
    assert!(pg::holds(&c2, "two", &log).await.unwrap());
    assert!(
        !pg::release(&c1, "one", &log).await.unwrap(),
        "cannot release what it no longer holds"
    );
}

/// A client of the test database (the server was reachable: `TestDb` created the database).
async fn connect(url: &str) -> tokio_postgres::Client {
    ctwatch::lease::pg::connect(url).await.unwrap()
}
