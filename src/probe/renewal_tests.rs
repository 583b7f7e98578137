use super::*;

const DAY: i64 = 86_400;
const NOW: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn served(names: &[&str], from_days: i64, to_days: i64, in_ct: bool) -> ServedCertificate {
    ServedCertificate {
        cert_sha256: "aa".into(),
        tbs_sha256: Some("a1".into()),
        names: names.iter().map(|s| s.to_string()).collect(),
        issuer: Some("CN=R11".into()),
        not_before: NOW + from_days * DAY,
        not_after: NOW + to_days * DAY,
        seen_in_ct: Some(in_ct),
        addresses: vec![],
    }
}

fn ct(
    tbs: &str,
    names: &[&str],
    from_days: i64,
    to_days: i64,
    logged_hours_ago: i64,
) -> CtCertificate {
    CtCertificate {
        tbs_sha256: tbs.into(),
        names: names.iter().map(|s| s.to_string()).collect(),
        issuer: "CN=R11".into(),
        not_before: NOW + from_days * DAY,
        not_after: NOW + to_days * DAY,
        logged_at: NOW - logged_hours_ago * 3600,
        log: "https://log.example/".into(),
        index: 7,
    }
}

/// (kind, newer certificate's tbs) per finding.
type Found = Vec<(FindingKind, Option<String>)>;
type Recheck = Option<i64>;

fn kinds(a: &Assessment) -> Found {
    a.findings
        .iter()
        .map(|f| (f.kind, f.newer.as_ref().map(|n| n.tbs_sha256.clone())))
        .collect()
}

#[test]
fn covers_exact_and_one_label_wildcards() {
    assert!(covers("www.example.com", "WWW.example.com."));
    assert!(covers("*.example.com", "www.example.com"));
    assert!(!covers("*.example.com", "example.com"));
    assert!(!covers("*.example.com", "a.b.example.com"));
    assert!(!covers("example.com", "www.example.com"));
}

#[test]
fn stale_deployment_table() {
    use FindingKind::*;
    let p = RenewalPolicy::default();
    let host = "www.example.com";
    // The host serves A: a 90-day certificate 70 days in (20 left), names www + example.com, seen in CT.
    let a = served(&["www.example.com", "example.com"], -70, 20, true);
    let both = ["example.com", "www.example.com"];
    #[rustfmt::skip]
    let cases: Vec<(&str, Vec<CtCertificate>, Found, Option<i64>)> = vec![
        ("B logged 48 h ago, same names", vec![ct("b", &both, -2, 88, 48)],
            vec![(StaleDeployment, Some("b".into()))], None),
        ("B logged 2 h ago: within grace, recheck when it ends", vec![ct("b", &both, 0, 90, 2)],
            vec![], Some(NOW + 22 * 3600)),
        ("B a superset", vec![ct("b", &["example.com", "www.example.com", "api.example.com"], -2, 88, 48)],
            vec![(StaleDeployment, Some("b".into()))], None),
        ("B a wildcard superset: *.example.com does not contain example.com",
            vec![ct("b", &["*.example.com"], -2, 88, 48)], vec![], None),
        ("B drops a name: not a replacement, but a renewal for the host", vec![ct("b", &["www.example.com"], -2, 88, 48)],
            vec![], None),
        ("B older than A: renewal missing", vec![ct("b", &both, -100, -10, 2400)],
            vec![(RenewalMissing, None)], None),
        ("B is A itself (same tbs): renewal missing", vec![ct("a1", &both, -70, 20, 1680)],
            vec![(RenewalMissing, None)], None),
        ("B not valid yet: recheck when it is", vec![ct("b", &both, 2, 92, 48)], vec![], Some(NOW + 2 * DAY)),
        ("two renewals: the newest is reported", vec![ct("b", &both, -5, 85, 120), ct("c", &both, -2, 88, 48)],
            vec![(StaleDeployment, Some("c".into()))], None),
        ("no CT certificate at all, 70 of 90 days: renewal missing", vec![],
            vec![(RenewalMissing, None)], None),
        ("only a certificate for another host", vec![ct("b", &["api.example.com"], -2, 88, 48)],
            vec![(RenewalMissing, None)], None),
    ];
    for (name, ct, want, recheck) in cases {
        let got = assess(host, std::slice::from_ref(&a), &ct, NOW, &p);
        assert_eq!(kinds(&got), want, "{name}");
        assert_eq!(got.recheck_at, recheck, "{name}");
    }
}

#[test]
fn renewal_missing_table() {
    use FindingKind::*;
    let p = RenewalPolicy::default();
    let host = "shop.example.com";
    let names = ["shop.example.com"];
    #[rustfmt::skip]
    let cases: Vec<(&str, ServedCertificate, Vec<CtCertificate>, Found, Recheck)> = vec![
        ("90-day, 59 days in: not due, recheck at day 60", served(&names, -59, 31, true), vec![],
            vec![], Some(NOW + DAY)),
        ("90-day, 61 days in", served(&names, -61, 29, true), vec![], vec![(RenewalMissing, None)], None),
        ("6-day, 3 days in: due at day 4", served(&names, -3, 3, true), vec![], vec![], Some(NOW + DAY)),
        ("6-day, 5 days in", served(&names, -5, 1, true), vec![], vec![(RenewalMissing, None)], None),
        ("398-day, 300 days in", served(&names, -300, 98, true), vec![], vec![(RenewalMissing, None)], None),
        ("not seen in CT (private CA, or before ctwatch): cannot tell", served(&names, -61, 29, false), vec![],
            vec![], None),
        ("renewed an hour ago (not deployed yet, in grace)", served(&names, -61, 29, true),
            vec![ct("b", &names, 0, 90, 1)], vec![], Some(NOW + 23 * 3600)),
        ("renewed by a wildcard covering the host", served(&names, -61, 29, true),
            vec![ct("b", &["*.example.com"], -1, 89, 30)], vec![], None),
        ("renewed, deployed long ago? no: B is newer and not served -> stale", served(&names, -61, 29, true),
            vec![ct("b", &names, -1, 89, 30)], vec![(StaleDeployment, Some("b".into()))], None),
    ];
    for (name, a, ct, want, recheck) in cases {
        let got = assess(host, &[a], &ct, NOW, &p);
        assert_eq!(kinds(&got), want, "{name}");
        assert_eq!(got.recheck_at, recheck, "{name}");
    }
}

#[test]
fn the_due_fraction_is_configurable() {
    let p = RenewalPolicy {
        renewal_due_fraction: 0.5,
        ..RenewalPolicy::default()
    };
    let a = served(&["x.example"], -46, 44, true);
    assert_eq!(assess("x.example", &[a], &[], NOW, &p).findings.len(), 1);
    assert!(p.validate().is_ok());
    let bad = RenewalPolicy {
        renewal_due_fraction: 1.0,
        ..RenewalPolicy::default()
    };
    assert!(bad.validate().is_err());
}

#[test]
fn served_certificates_of_a_report_are_grouped_by_leaf() {
    use crate::probe::{AddressReport, Level, Status};
    let addr = |a: &str, sha: &str, counted: bool| AddressReport {
        address: a.parse().unwrap(),
        status: Status::Ok,
        level: Level::Ok,
        counted,
        days_left: Some(20),
        not_before: Some("2025-11-01T00:00:00Z".into()),
        not_after: Some("2026-01-30T00:00:00Z".into()),
        issuer: None,
        subject: None,
        sans: vec!["x.example".into()],
        cert_sha256: Some(sha.into()),
        tbs_sha256: None,
        seen_in_ct: Some(true),
        chain_len: 2,
        tls_version: None,
        problems: vec![],
        error: None,
    };
    let report = HostReport {
        domain: "x.example".into(),
        port: 443,
        status: Status::Ok,
        level: Level::Ok,
        days_left: Some(20),
        not_before: None,
        not_after: None,
        issuer: None,
        subject: None,
        sans: vec![],
        cert_sha256: None,
        tbs_sha256: None,
        seen_in_ct: None,
        problems: vec![],
        error: None,
        addresses: vec![
            addr("192.0.2.1:443", "aa", true),
            addr("192.0.2.2:443", "bb", true),
            addr("192.0.2.3:443", "aa", true),
            addr("[2001:db8::1]:443", "cc", false),
        ],
        probed_at: String::new(),
        duration_ms: 0,
    };
    let got = ServedCertificate::from_report(&report);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].cert_sha256, "aa");
    assert_eq!(got[0].addresses.len(), 2);
    assert_eq!(got[0].not_before, 1_761_955_200);
}
