use super::*;
use crate::probe::Status;

const DAY: i64 = 86_400;

fn target(source: TargetSource, snapshot: Option<(Status, &str)>, failures: u32) -> ProbeTarget {
    ProbeTarget {
        domain: "www.example.com".into(),
        port: 443,
        tags: vec!["client-a".into(), "prod".into()],
        source,
        added_at: 0,
        next_probe_at: 0,
        last_probed_at: None,
        consecutive_failures: failures,
        snapshot: snapshot.map(|(status, cert)| ProbeSnapshot {
            level: status.level(),
            status,
            cert_sha256: Some(cert.into()),
        }),
    }
}

fn report(status: Status, cert: Option<&str>, days: Option<i64>) -> HostReport {
    HostReport {
        domain: "www.example.com".into(),
        port: 443,
        status,
        level: status.level(),
        days_left: days,
        not_before: None,
        not_after: days.map(|_| "2026-02-01T00:00:00Z".into()),
        issuer: cert.map(|_| "CN=R11,O=Let's Encrypt,C=US".into()),
        subject: cert.map(|_| "CN=www.example.com".into()),
        sans: vec![],
        cert_sha256: cert.map(String::from),
        tbs_sha256: None,
        seen_in_ct: cert.map(|_| true),
        problems: vec![],
        error: status
            .is_network_failure()
            .then(|| "connection refused".into()),
        addresses: vec![],
        probed_at: "2026-01-20T00:00:00Z".into(),
        duration_ms: 1,
    }
}

#[test]
fn limiter_allows_n_per_minute_per_domain() {
    let mut l = DomainLimiter::new(2);
    assert!(l.try_take("example.com", 1000));
    assert!(l.try_take("example.com", 1010));
    assert!(!l.try_take("example.com", 1020));
    // Another registrable domain has its own budget.
    assert!(l.try_take("example.org", 1020));
    // The first slot frees 60 s after it was taken.
    assert_eq!(l.next_free("example.com", 1020), 1060);
    assert!(!l.try_take("example.com", 1059));
    assert!(l.try_take("example.com", 1060));
    assert_eq!(l.next_free("example.com", 1060), 1070);
    assert_eq!(l.next_free("example.net", 1060), 1060);
    l.prune(1200);
    assert!(l.recent.is_empty());
}

#[test]
fn registrable_domains_follow_the_public_suffix_list() {
    assert_eq!(
        registrable_domain("www.shop.example.co.uk"),
        "example.co.uk"
    );
    assert_eq!(registrable_domain("a.b.example.com"), "example.com");
    assert_eq!(registrable_domain("foo.github.io"), "foo.github.io");
    assert_eq!(registrable_domain("localhost"), "localhost");
}

#[test]
fn ok_first_probe_is_quiet_and_scheduled_a_day_later() {
    let t = target(TargetSource::Ct, None, 0);
    let d = decide(
        &t,
        &report(Status::Ok, Some("a"), Some(60)),
        1000,
        &Cadence::default(),
    );
    assert_eq!(d.event, None);
    assert_eq!(d.consecutive_failures, 0);
    assert_eq!(d.next_probe_at, 1000 + DAY);
    assert_eq!(d.snapshot.unwrap().status, Status::Ok);
}

#[test]
fn warning_event_payload() {
    let t = target(TargetSource::Ct, Some((Status::Ok, "a")), 0);
    let mut r = report(Status::Warning, Some("a"), Some(12));
    r.seen_in_ct = Some(false);
    let d = decide(&t, &r, 1000, &Cadence::default());
    let ev = d.event.expect("OK -> WARNING is an event");
    assert_eq!(ev.kind, "probe");
    assert_eq!(ev.group_key, "probe|client-a");
    assert_eq!(ev.tags, ["client-a", "prod"]);
    let p = &ev.payload;
    assert_eq!(p["change"], "raised");
    assert_eq!(p["domain"], "www.example.com");
    assert_eq!(p["status"], "warning");
    assert_eq!(p["level"], "WARNING");
    assert_eq!(p["previous_level"], "OK");
    assert_eq!(p["previous_status"], "ok");
    assert_eq!(p["days_left"], 12);
    assert_eq!(p["cert_sha256"], "a");
    assert_eq!(p["seen_in_ct"], false);
    assert_eq!(p["not_seen_in_ct"], true);
    assert_eq!(p["title"], "www.example.com: WARNING (warning)");
    assert_eq!(
        p["message"],
        "www.example.com is WARNING (warning): expires in 12 day(s) (2026-02-01T00:00:00Z), \
         issuer CN=R11,O=Let's Encrypt,C=US; was OK (ok). \
         The served certificate was never seen in a CT log followed by ctwatch."
    );
}

#[test]
fn first_network_failure_is_retried_soon_and_second_alerts() {
    let cadence = Cadence::default();
    let t = target(TargetSource::Ct, Some((Status::Ok, "a")), 0);
    let down = report(Status::Unreachable, None, None);
    let d1 = decide(&t, &down, 1000, &cadence);
    assert_eq!((d1.event.as_ref(), d1.snapshot.as_ref()), (None, None));
    assert_eq!(d1.consecutive_failures, 1);
    assert_eq!(d1.next_probe_at, 1000 + 15 * 60);

    let t2 = target(TargetSource::Ct, Some((Status::Ok, "a")), 1);
    let d2 = decide(&t2, &down, 2000, &cadence);
    assert_eq!(d2.consecutive_failures, 2);
    assert_eq!(d2.next_probe_at, 2000 + DAY);
    let ev = d2.event.expect("second failure alerts");
    assert_eq!(ev.payload["status"], "unreachable");
    assert_eq!(ev.payload["level"], "CRITICAL");
    assert_eq!(ev.payload["consecutive_failures"], 2);
    assert_eq!(
        ev.payload["message"],
        "www.example.com is CRITICAL (unreachable): connection refused, 2 probes in a row; was OK (ok)."
    );
    assert_eq!(d2.snapshot.unwrap().status, Status::Unreachable);
}

#[test]
fn ct_names_that_never_served_do_not_page() {
    let cadence = Cadence::default();
    let down = report(Status::DnsError, None, None);
    for failures in [0, 1, 5] {
        let d = decide(
            &target(TargetSource::Ct, None, failures),
            &down,
            0,
            &cadence,
        );
        assert_eq!((d.event, d.snapshot), (None, None), "after {failures}");
        assert_eq!(d.consecutive_failures, failures + 1);
        assert_eq!(
            d.next_probe_at, DAY,
            "no fast retry for a host that never answered"
        );
    }
    // A hand-added target is alerted on after two failures.
    let d = decide(&target(TargetSource::Manual, None, 1), &down, 0, &cadence);
    assert_eq!(d.event.unwrap().payload["change"], "raised");
}

#[test]
fn renewal_back_to_ok_is_announced() {
    let t = target(TargetSource::Ct, Some((Status::Critical, "a")), 0);
    let d = decide(
        &t,
        &report(Status::Ok, Some("b"), Some(89)),
        0,
        &Cadence::default(),
    );
    let ev = d.event.unwrap();
    assert_eq!(ev.payload["change"], "lowered");
    assert_eq!(ev.payload["title"], "www.example.com: certificate OK again");
    assert_eq!(ev.payload["cert_sha256"], "b");
    assert_eq!(ev.payload["not_seen_in_ct"], false);
}
