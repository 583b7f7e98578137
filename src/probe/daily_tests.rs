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

fn stale_finding(domain: &str, raised_at: i64) -> crate::store::FindingRow {
    use crate::probe::renewal::{CtCertificate, Finding, FindingKind, ServedCertificate};
    crate::store::FindingRow {
        id: 1,
        domain: domain.into(),
        port: 443,
        kind: FindingKind::StaleDeployment,
        finding: Finding {
            kind: FindingKind::StaleDeployment,
            served: ServedCertificate {
                cert_sha256: "ab".into(),
                tbs_sha256: None,
                names: vec![domain.into()],
                issuer: None,
                not_before: NOW - 80 * 86_400,
                not_after: NOW + 10 * 86_400,
                seen_in_ct: Some(true),
                addresses: vec![],
            },
            newer: Some(CtCertificate {
                tbs_sha256: "cd".into(),
                names: vec![domain.into()],
                issuer: "C=US, O=Let's Encrypt, CN=R12".into(),
                not_before: NOW - 3 * 86_400,
                not_after: NOW + 87 * 86_400,
                logged_at: NOW - 3 * 86_400,
                log: "https://log.example/<x>".into(),
                index: 42,
            }),
            renewal_due_at: None,
        },
        raised_at,
        updated_at: raised_at,
        resolved_at: None,
    }
}

fn extras() -> Extras {
    let mut e = Extras {
        since: Some(NOW - 86_400),
        ..Extras::default()
    };
    let mut before = rows()[1].latest.clone().unwrap(); // b.client-a.com was OK yesterday
    before.status = Status::Ok;
    before.level = Level::Ok;
    before.days_left = Some(13);
    before.probed_at = NOW - 90_000;
    e.before.insert(("b.client-a.com".into(), 443), before);
    let mut before = rows()[0].latest.clone().unwrap(); // a.client-a.com served another certificate
    before.cert_sha256 = Some("00".into());
    before.days_left = Some(3);
    e.before.insert(("a.client-a.com".into(), 443), before);
    e.findings.insert(
        ("a.client-a.com".into(), 443),
        vec![stale_finding("a.client-a.com", NOW - 7200)],
    );
    e
}

#[test]
fn findings_changes_and_panel_status_in_json() {
    let r = build_full(&rows(), &extras(), &["client-a".to_string()], NOW);
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["since"], "2026-01-19T00:00:00Z");
    let hosts = v["groups"][0]["hosts"].as_array().unwrap();
    let by = |d: &str| hosts.iter().find(|h| h["domain"] == d).unwrap().clone();
    let a = by("a.client-a.com");
    assert_eq!(a["panel_status"], "Valid");
    assert_eq!(a["findings"][0]["kind"], "stale_deployment");
    assert!(
        a["findings"][0]["text"].as_str().unwrap().contains("#42"),
        "{a}"
    );
    let kinds: Vec<&str> = a["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["certificate", "finding_raised"]);
    let b = by("b.client-a.com");
    assert_eq!(b["changes"][0]["text"], "OK -> WARNING (ok -> warning)");
    assert_eq!(by("c.client-a.com")["panel_status"], "Invalid");
    assert_eq!(by("c.client-a.com")["changes"][0]["kind"], "first_probe");
    assert_eq!(by("mail.client-a.com")["panel_status"], "Inactive");
    assert_eq!(by("new.client-a.com")["panel_status"], "Unknown");
    assert_eq!(by("new.client-a.com")["changes"], serde_json::json!([]));
}

#[test]
fn text_lists_findings_and_changes_under_the_group() {
    let r = build_full(&rows(), &extras(), &["client-a".to_string()], NOW);
    let mut out = Vec::new();
    write_text(&mut out, &r).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("  ! a.client-a.com: renewed but not deployed: a newer certificate (valid from 2026-01-17T00:00:00Z, R12)"),
        "{text}"
    );
    assert!(
        text.contains("  changes since 2026-01-19T00:00:00Z:"),
        "{text}"
    );
    assert!(
        text.contains("  - b.client-a.com: OK -> WARNING (ok -> warning)"),
        "{text}"
    );
}

#[test]
fn html_is_self_contained_coloured_worst_first_and_escaped() {
    let mut rows = rows();
    rows[0].target.domain = "a.client-a.com".into();
    rows.push(row(
        "<b>evil</b>.client-a.com",
        &["client-a"],
        Some((Status::Ok, Some(50))),
    ));
    let r = build_full(&rows, &extras(), &["client-a".to_string()], NOW);
    let mut out = Vec::new();
    crate::probe::daily_html::write_html(&mut out, &r).unwrap();
    let html = String::from_utf8(out).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    for external in ["<link", "<script", "<style", "src=", "http://", "url("] {
        assert!(!html.contains(external), "{external} in {html}");
    }
    assert!(html.contains("&lt;b&gt;evil&lt;/b&gt;.client-a.com"));
    assert!(!html.contains("<b>evil"));
    assert!(html.contains("https://log.example/&lt;x&gt; #42"));
    let pos = |s: &str| html.find(s).unwrap_or_else(|| panic!("{s} missing"));
    assert!(pos("c.client-a.com") < pos("b.client-a.com"));
    assert!(pos("b.client-a.com") < pos(">a.client-a.com<"));
    assert!(html.contains("background:#fde2e1"), "critical rows are red");
    assert!(html.contains("Changes since 2026-01-19T00:00:00Z"));
    assert!(html.contains("<li><b>b.client-a.com</b>: OK -&gt; WARNING (ok -&gt; warning)</li>"));
}

#[test]
fn since_accepts_rfc3339_and_spans() {
    assert_eq!(
        parse_since("2026-01-19T00:00:00Z", NOW).unwrap(),
        NOW - 86_400
    );
    assert_eq!(parse_since("36h", NOW).unwrap(), NOW - 36 * 3600);
    assert_eq!(parse_since("7d", NOW).unwrap(), NOW - 7 * 86_400);
    assert!(parse_since("yesterday", NOW).is_err());
    assert!(parse_since("5w", NOW).is_err());
}
