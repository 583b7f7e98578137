use super::*;

/// Insert a certificate with `names` directly (the batch path is tested elsewhere).
fn insert(store: &Store, n: u8, names: &[&str], issuer: &str, not_after: i64, types: &[&str]) {
    let conn = store.conn();
    conn.execute(
        "INSERT INTO certificates (tbs_sha256, cert_sha256, entry_type, subject, issuer, serial, not_before,
             not_after, dns_names, ip_addresses, pubkey_sha256, der, first_seen)
         VALUES (?1, ?1, ?2, '', ?3, '01', 0, ?4, ?5, '[]', ?1, NULL, 0)",
        params![vec![n; 32], types[0], issuer, not_after, serde_json::to_string(names).unwrap()],
    )
    .unwrap();
    let id = conn.last_insert_rowid();
    for (i, t) in types.iter().enumerate() {
        conn.execute(
            "INSERT INTO fingerprints (cert_sha256, cert_id, entry_type) VALUES (?1, ?2, ?3)",
            params![vec![n, i as u8 + 1], id, t],
        )
        .unwrap();
    }
    for name in names {
        conn.execute(
            "INSERT INTO cert_names (rname, cert_id) VALUES (?1, ?2)",
            params![reverse_name(name), id],
        )
        .unwrap();
    }
}

fn search(store: &Store, name: &str, mode: NameMode) -> Vec<Vec<String>> {
    let q = SearchQuery {
        name: name.into(),
        mode,
        exclude_expired: false,
        issuer: None,
        now: 1000,
        limit: 50,
        offset: 0,
    };
    store
        .console_search(&q)
        .unwrap()
        .rows
        .into_iter()
        .map(|r| r.dns_names)
        .collect()
}

#[test]
fn search_modes_use_the_reversed_name_index() {
    let store = Store::open_in_memory().unwrap();
    insert(
        &store,
        1,
        &["example.com"],
        "CN=A",
        2000,
        &["precert", "x509"],
    );
    insert(&store, 2, &["www.example.com"], "CN=B", 500, &["x509"]);
    insert(
        &store,
        3,
        &["a.b.example.com", "other.org"],
        "CN=A",
        2000,
        &["precert"],
    );
    insert(
        &store,
        4,
        &["example.com-evil.net", "badexample.com"],
        "CN=A",
        2000,
        &["x509"],
    );
    insert(
        &store,
        5,
        &["under_score.example.com"],
        "CN=A",
        2000,
        &["x509"],
    );
    let names = |v: Vec<Vec<String>>| v.into_iter().map(|n| n[0].clone()).collect::<Vec<_>>();
    assert_eq!(
        names(search(&store, "example.com", NameMode::Subtree)),
        [
            "under_score.example.com",
            "a.b.example.com",
            "www.example.com",
            "example.com"
        ]
    );
    assert_eq!(
        names(search(&store, "Example.COM.", NameMode::Exact)),
        ["example.com"]
    );
    assert_eq!(
        names(search(&store, "%.example.com", NameMode::Pattern)),
        [
            "under_score.example.com",
            "a.b.example.com",
            "www.example.com"
        ]
    );
    assert_eq!(
        names(search(&store, "a.%.example.com", NameMode::Pattern)),
        ["a.b.example.com"]
    );
    // `_` is a literal in patterns, not LIKE's single-character wildcard.
    assert_eq!(
        names(search(&store, "under_score.%", NameMode::Pattern)),
        ["under_score.example.com"]
    );
    assert!(search(&store, "underXscore.example.com", NameMode::Exact).is_empty());

    // Folded precert + cert, exclude expired, issuer filter.
    let mut q = SearchQuery {
        name: "example.com".into(),
        mode: NameMode::Subtree,
        exclude_expired: true,
        issuer: Some("cn=a".into()),
        now: 1000,
        limit: 2,
        offset: 0,
    };
    let page = store.console_search(&q).unwrap();
    assert_eq!(page.total, 3);
    assert!(!page.truncated);
    assert_eq!(page.rows.len(), 2);
    q.offset = 2;
    let last = &store.console_search(&q).unwrap().rows[0];
    assert_eq!(last.dns_names, ["example.com"]);
    assert_eq!(last.entry_types, ["precert", "x509"]);
}

#[test]
fn events_filter_and_page_newest_first() {
    let store = Store::open_in_memory().unwrap();
    let ev = |kind: &str, tags: &[&str], item: &str, name: &str| crate::event::Event {
        kind: kind.into(),
        group_key: kind.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        payload: serde_json::json!({"kind": kind, "dns_names": [name], "matched": [{"item": item, "name": name}]}),
    };
    for i in 0..5 {
        store
            .queue_event_at(
                &ev(
                    "new_certificate",
                    &["acme"],
                    "example.com",
                    &format!("h{i}.example.com"),
                ),
                100 + i,
            )
            .unwrap();
    }
    store
        .queue_event_at(&ev("lookalike", &["brand"], "~examp", "examp1e.net"), 200)
        .unwrap();
    let all = store.event_page(&EventFilter::default(), 3).unwrap();
    assert_eq!(all.iter().map(|e| e.id).collect::<Vec<_>>(), [6, 5, 4]);
    let older = store
        .event_page(
            &EventFilter {
                before: Some(4),
                ..Default::default()
            },
            3,
        )
        .unwrap();
    assert_eq!(older.iter().map(|e| e.id).collect::<Vec<_>>(), [3, 2, 1]);
    let newer = store
        .event_page(
            &EventFilter {
                after: Some(1),
                ..Default::default()
            },
            2,
        )
        .unwrap();
    assert_eq!(newer.iter().map(|e| e.id).collect::<Vec<_>>(), [3, 2]);
    let f = |f: EventFilter| store.event_page(&f, 50).unwrap().len();
    assert_eq!(
        f(EventFilter {
            kind: Some("lookalike".into()),
            ..Default::default()
        }),
        1
    );
    assert_eq!(
        f(EventFilter {
            tag: Some("acme".into()),
            ..Default::default()
        }),
        5
    );
    assert_eq!(
        f(EventFilter {
            item: Some("~examp".into()),
            ..Default::default()
        }),
        1
    );
    assert_eq!(
        f(EventFilter {
            name: Some("H3.EXAMPLE".into()),
            ..Default::default()
        }),
        1
    );
    assert_eq!(
        f(EventFilter {
            since: Some(102),
            until: Some(104),
            ..Default::default()
        }),
        2
    );
    let hours = store.events_per_hour(86400 * 2).unwrap();
    assert_eq!(hours.len(), 24);
    assert_eq!(
        hours.iter().sum::<u64>(),
        0,
        "all events are older than 24 h"
    );
    let hours = store.events_per_hour(150).unwrap();
    assert_eq!(hours[23], 6);
}
