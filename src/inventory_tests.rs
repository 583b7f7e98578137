use super::*;

const NOW: i64 = 1_768_867_200; // 2026-01-20T00:00:00Z

fn cert(tbs: &str, names: &[&str], fps: &[(&str, &str)]) -> ValidCertificate {
    ValidCertificate {
        tbs_sha256: tbs.into(),
        fingerprints: fps
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        issuer: "C=US, O=Let's Encrypt, CN=R11".into(),
        serial: "01".into(),
        not_before: NOW - 10 * 86_400,
        not_after: NOW + 80 * 86_400,
        dns_names: names.iter().map(|s| s.to_string()).collect(),
        ip_addresses: vec![],
        logged_at: NOW - 10 * 86_400,
        log: "https://log.example/".into(),
        index: 3,
        tags: vec![],
    }
}

fn served(host: &str, fp: &str, tbs: Option<&str>, now: bool) -> ServedRow {
    ServedRow {
        domain: host.into(),
        port: 443,
        cert_sha256: fp.into(),
        tbs_sha256: tbs.map(String::from),
        last_served_at: NOW - 3600,
        serving_now: now,
    }
}

fn sample() -> (Vec<ValidCertificate>, Vec<ServedRow>) {
    let certs = vec![
        // Logged as precert and final cert: one certificate.
        cert(
            "t1",
            &["www.example.com", "example.com"],
            &[("p1", "precert"), ("c1", "x509")],
        ),
        cert("t2", &["*.example.com"], &[("p2", "precert")]),
        cert("t3", &["old.example.com"], &[("p3", "precert")]),
        cert(
            "t4",
            &["shop.example.co.uk", "www.example.com"],
            &[("p4", "precert")],
        ),
    ];
    let served = vec![
        served("www.example.com", "c1", None, true),
        // The probe saw the final certificate of t2 (not logged): matched by TBS identity.
        served("api.example.com", "f2", Some("t2"), true),
        served("cdn.example.com", "f2", Some("t2"), false),
    ];
    (certs, served)
}

#[test]
fn per_domain_with_hosts_wildcards_and_never_served() {
    let (certs, served) = sample();
    let inv = build(&certs, &served, None, NOW);
    let domains: Vec<&str> = inv.iter().map(|d| d.domain.as_str()).collect();
    assert_eq!(domains, ["example.co.uk", "example.com"]);
    let com = &inv[1];
    assert_eq!(com.certificates.len(), 4);
    assert_eq!(com.wildcards, ["t2"]);
    assert_eq!(com.never_served, ["t3", "t4"]);
    let t1 = &com.certificates[0];
    assert_eq!(t1.logged_as, ["precert", "x509"]);
    assert_eq!(t1.served_by.len(), 1);
    assert_eq!(t1.days_left, 80);
    let t2 = com
        .certificates
        .iter()
        .find(|c| c.tbs_sha256 == "t2")
        .unwrap();
    let hosts: Vec<(&str, bool)> = t2
        .served_by
        .iter()
        .map(|s| (s.host.as_str(), s.serving_now))
        .collect();
    assert_eq!(
        hosts,
        [("api.example.com", true), ("cdn.example.com", false)]
    );
    assert_eq!(inv[0].certificates[0].tbs_sha256, "t4");
}

#[test]
fn one_domain_asked() {
    let (certs, served) = sample();
    let inv = build(&certs, &served, Some("Example.com."), NOW);
    assert_eq!(inv.len(), 1);
    assert_eq!(inv[0].domain, "example.com");
}

#[test]
fn text_and_csv() {
    let (certs, served) = sample();
    let inv = build(&certs, &served, Some("example.com"), NOW);
    let mut out = Vec::new();
    write_text(&mut out, &inv).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with(
        "== example.com: 4 valid certificate(s), 1 wildcard, 2 never seen served ==\n"
    ));
    assert!(text.contains("    served by: api.example.com, cdn.example.com (until 2026-01-19)"));
    assert!(text.contains("    served by: NEVER SEEN SERVED"));
    let mut out = Vec::new();
    write_csv(&mut out, &inv).unwrap();
    let csv = String::from_utf8(out).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some(CSV_HEADER));
    assert_eq!(
        lines.next(),
        Some(
            "example.com,t1,\"C=US, O=Let's Encrypt, CN=R11\",01,2026-01-10T00:00:00Z,2026-04-10T00:00:00Z,80,false,\
             precert x509,www.example.com example.com,www.example.com,www.example.com,false"
        )
    );
}
