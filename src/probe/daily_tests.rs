use super::*;
use crate::probe::ProbeSnapshot;
use crate::store::{ProbeResultRow, ProbeTarget};

const NOW: i64 = 1_768_867_200; // 2026-01-20T00:00:00Z

fn row(domain: &str, tags: &[&str], latest: Option<(Status, Option<i64>)>) -> ProbeStatusRow {
    let snapshot = latest
        .filter(|(s, _)| !s.is_network_failure())
        .map(|(status, _)| ProbeSnapshot {
            level: status.level(),
            status,
            cert_sha256: Some("ab".into()),
        });
    ProbeStatusRow {
        target: ProbeTarget {
            domain: domain.into(),
            port: 443,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            source: TargetSource::Ct,
            added_at: NOW - 86_400,
            next_probe_at: NOW + 3600,
            last_probed_at: latest.map(|_| NOW - 3600),
            consecutive_failures: 0,
            snapshot,
        },
        latest: latest.map(|(status, days)| ProbeResultRow {
            id: 1,
            domain: domain.into(),
            port: 443,
            probed_at: NOW - 3600,
            status,
            level: status.level(),
            days_left: days,
            not_after: days.map(|_| "2026-02-01T12:00:00Z".into()),
            cert_sha256: days.map(|_| "ab".into()),
            issuer: days.map(|_| "C=US, O=Let's Encrypt, CN=R11".into()),
            seen_in_ct: days.map(|_| true),
        }),
    }
}

fn rows() -> Vec<ProbeStatusRow> {
    vec![
        row(
            "a.client-a.com",
            &["client-a"],
            Some((Status::Ok, Some(70))),
        ),
        row(
            "b.client-a.com",
            &["client-a"],
            Some((Status::Warning, Some(12))),
        ),
        row(
            "c.client-a.com",
            &["client-a"],
            Some((Status::Expired, Some(-2))),
        ),
        row(
            "d.client-a.com",
            &["client-a"],
            Some((Status::Critical, Some(5))),
        ),
        row(
            "mail.client-a.com",
            &["client-a"],
            Some((Status::DnsError, None)),
        ),
        row("new.client-a.com", &["client-a"], None),
        row(
            "www.client-b.com",
            &["client-b", "vip"],
            Some((Status::Warning, Some(9))),
        ),
        row("x.example.net", &[], Some((Status::Ok, Some(40)))),
    ]
}

fn domains(g: &TagGroup) -> Vec<(&str, Category)> {
    g.hosts
        .iter()
        .map(|h| (h.domain.as_str(), h.category))
        .collect()
}

#[test]
fn groups_by_tag_worst_first() {
    let r = build(&rows(), &[], NOW);
    assert_eq!(r.generated_at, "2026-01-20T00:00:00Z");
    let tags: Vec<Option<&str>> = r.groups.iter().map(|g| g.tag.as_deref()).collect();
    assert_eq!(
        tags,
        [Some("client-a"), Some("client-b"), Some("vip"), None]
    );
    use Category::*;
    assert_eq!(
        domains(&r.groups[0]),
        [
            ("c.client-a.com", Critical), // expired outranks critical
            ("d.client-a.com", Critical),
            ("b.client-a.com", Warning),
            ("a.client-a.com", Ok),
            ("mail.client-a.com", NotServing),
            ("new.client-a.com", Pending),
        ]
    );
    assert_eq!(
        r.groups[0].counts,
        Counts {
            critical: 2,
            warning: 1,
            ok: 1,
            not_serving: 1,
            pending: 1
        }
    );
    // The host with two tags is counted once in the totals.
    assert_eq!(
        r.totals,
        Counts {
            critical: 2,
            warning: 2,
            ok: 2,
            not_serving: 1,
            pending: 1
        }
    );
}

#[test]
fn tag_filter_keeps_only_those_groups() {
    let r = build(&rows(), &["vip".to_string()], NOW);
    assert_eq!(r.groups.len(), 1);
    assert_eq!(r.groups[0].tag.as_deref(), Some("vip"));
    assert_eq!(r.totals.warning, 1);
    assert_eq!(r.totals.ok + r.totals.critical, 0);
}

#[test]
fn a_hand_added_host_that_never_answers_is_critical() {
    let mut r = row(
        "vpn.client-a.com",
        &["client-a"],
        Some((Status::Unreachable, None)),
    );
    r.target.source = TargetSource::Manual;
    assert_eq!(Category::of(&r), Category::Critical);
    r.target.source = TargetSource::Ct;
    assert_eq!(Category::of(&r), Category::NotServing);
}

#[test]
fn text_layout() {
    let r = build(&rows()[1..4], &[], NOW);
    let mut out = Vec::new();
    write_text(&mut out, &r).unwrap();
    let want = "\
ctwatch expiry report, 2026-01-20T00:00:00Z
3 host(s): 2 CRITICAL, 1 WARNING, 0 OK

== client-a: 2 CRITICAL, 1 WARNING, 0 OK ==
LEVEL     DOMAIN          STATUS    DAYS  EXPIRES     ISSUER  CT   PROBED
CRITICAL  c.client-a.com  expired   -2    2026-02-01  R11     yes  2026-01-19 23:00
CRITICAL  d.client-a.com  critical  5     2026-02-01  R11     yes  2026-01-19 23:00
WARNING   b.client-a.com  warning   12    2026-02-01  R11     yes  2026-01-19 23:00
";
    assert_eq!(String::from_utf8(out).unwrap(), want);
}

#[test]
fn json_shape() {
    let r = build(&rows(), &["client-b".to_string()], NOW);
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["totals"]["warning"], 1);
    let h = &v["groups"][0]["hosts"][0];
    assert_eq!(h["domain"], "www.client-b.com");
    assert_eq!(h["category"], "WARNING");
    assert_eq!(h["level"], "WARNING");
    assert_eq!(h["status"], "warning");
    assert_eq!(h["days_left"], 9);
    assert_eq!(h["probed_at"], "2026-01-19T23:00:00Z");
    assert_eq!(v["groups"][0]["tag"], "client-b");
}
