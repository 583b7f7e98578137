use super::*;
use crate::probe::renewal::ServedCertificate;
use crate::store::SinkRoute;

fn insert_cert(store: &Store, id: i64, names: &[&str], not_before: i64, sightings: &[(u8, i64)]) {
    let conn = store.conn();
    let names_json = serde_json::to_string(names).unwrap();
    conn.execute(
        "INSERT INTO certificates (id, tbs_sha256, cert_sha256, entry_type, subject, issuer, serial, not_before,
             not_after, dns_names, ip_addresses, pubkey_sha256, first_seen)
         VALUES (?1, ?2, ?2, 'precert', '', 'CN=R11', '01', ?3, ?4, ?5, '[]', ?2, 0)",
        params![id, vec![id as u8; 32], not_before, not_before + 90 * 86_400, names_json],
    )
    .unwrap();
    for name in names {
        conn.execute(
            "INSERT INTO cert_names (rname, cert_id) VALUES (?1, ?2)",
            params![reverse_name(name), id],
        )
        .unwrap();
    }
    for (i, (log, ts_ms)) in sightings.iter().enumerate() {
        conn.execute(
            "INSERT INTO sightings (log_id, entry_index, cert_id, entry_type, timestamp_ms, cert_sha256)
             VALUES (?1, ?2, ?3, 'precert', ?4, x'00')",
            params![vec![*log; 32], id * 10 + i as i64, id, ts_ms],
        )
        .unwrap();
    }
}

#[test]
fn certificates_covering_a_host_with_their_earliest_sighting() {
    let store = Store::open_in_memory().unwrap();
    store
        .conn()
        .execute(
            "INSERT INTO logs (log_id, url, kind, added_at) VALUES (?1, 'https://log-b.example/', 'rfc6962', 0)",
            [vec![2u8; 32]],
        )
        .unwrap();
    insert_cert(
        &store,
        1,
        &["www.example.com", "example.com"],
        1000,
        &[(1, 9_000_500), (2, 5_000_900)],
    );
    insert_cert(&store, 2, &["*.example.com"], 2000, &[(1, 7_000_000)]);
    insert_cert(&store, 3, &["api.example.com"], 3000, &[(1, 7_000_000)]);
    insert_cert(&store, 4, &["*.www.example.com"], 3000, &[(1, 7_000_000)]);
    let got = store.ct_certificates_covering("WWW.example.com.").unwrap();
    let ids: Vec<&str> = got.iter().map(|c| &c.tbs_sha256[..2]).collect();
    assert_eq!(ids, ["01", "02"]);
    assert_eq!(got[0].logged_at, 5_000);
    assert_eq!(got[0].log, "https://log-b.example/");
    assert_eq!(got[0].names, ["www.example.com", "example.com"]);
    assert_eq!(got[1].log, "", "a log not in the logs table");
    assert!(
        store
            .ct_certificates_covering("other.test")
            .unwrap()
            .is_empty()
    );
}

fn record(kind: FindingKind, served_sha: &str) -> FindingRecord {
    let finding = Finding {
        kind,
        served: ServedCertificate {
            cert_sha256: served_sha.into(),
            tbs_sha256: None,
            names: vec!["www.example.com".into()],
            issuer: None,
            not_before: 0,
            not_after: 100,
            seen_in_ct: Some(true),
            addresses: vec![],
        },
        newer: None,
        renewal_due_at: Some(66),
    };
    FindingRecord {
        event: Event {
            kind: kind.as_str().into(),
            group_key: "g".into(),
            tags: vec![],
            payload: serde_json::json!({"kind": kind.as_str(), "served": served_sha}),
        },
        finding,
    }
}

fn apply(store: &Store, current: &[FindingRecord], now: i64) -> usize {
    let mut conn = store.conn();
    let tx = conn.transaction().unwrap();
    let n = apply_findings(
        &tx,
        "www.example.com",
        443,
        current,
        &[SinkRoute::all("s")],
        now,
    )
    .unwrap();
    tx.commit().unwrap();
    n
}

#[test]
fn a_finding_is_announced_once_per_served_certificate_and_resolved_when_gone() {
    use FindingKind::*;
    let store = Store::open_in_memory().unwrap();
    let missing_a = record(RenewalMissing, "aa");
    assert_eq!(
        apply(&store, std::slice::from_ref(&missing_a), 10),
        1,
        "new"
    );
    assert_eq!(
        apply(&store, std::slice::from_ref(&missing_a), 20),
        0,
        "still there"
    );
    let active = store.expiry_findings(None).unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!((active[0].raised_at, active[0].updated_at), (10, 20));
    // Another kind about the same certificate is a new finding.
    assert_eq!(
        apply(
            &store,
            &[missing_a.clone(), record(StaleDeployment, "aa")],
            30
        ),
        1
    );
    // The host now serves another certificate with the renewal missing again: announced again.
    assert_eq!(apply(&store, &[record(RenewalMissing, "bb")], 40), 1);
    let active = store.expiry_findings(None).unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].finding.served.cert_sha256, "bb");
    // Fixed: resolved, kept for the history.
    assert_eq!(apply(&store, &[], 50), 0);
    assert!(store.expiry_findings(None).unwrap().is_empty());
    let history = store.expiry_findings(Some(35)).unwrap();
    assert_eq!(history.len(), 3, "resolved at 40 (two) and 50 (one)");
    assert!(history.iter().all(|f| f.resolved_at.is_some()));
    let events = store.due_deliveries("s", i64::MAX, 100).unwrap();
    assert_eq!(events.len(), 3);
}
