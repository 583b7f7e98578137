use std::collections::HashMap;

use super::table::CaTable;
use super::*;

/// Zone data in memory: name -> records, or a failure.
struct Zone(HashMap<String, Result<Vec<CaaRecord>, String>>);

impl CaaLookup for Zone {
    fn caa<'a>(&'a self, name: &'a str) -> LookupFuture<'a> {
        let answer = match self.0.get(name) {
            None => Ok(vec![]),
            Some(Ok(r)) => Ok(r.clone()),
            Some(Err(reason)) => Err(LookupError {
                name: name.into(),
                reason: reason.clone(),
            }),
        };
        Box::pin(async move { answer })
    }
}

fn rec(tag: &str, value: &str) -> CaaRecord {
    CaaRecord {
        critical: false,
        tag: tag.into(),
        value: value.into(),
    }
}

fn le() -> Vec<String> {
    vec!["letsencrypt.org".into()]
}

#[test]
#[allow(clippy::type_complexity)]
fn decide_table() {
    let dc = vec!["digicert.com".to_string()];
    #[rustfmt::skip]
    // (case, records, wildcard name?, the CA's identifiers, allowed?)
    let cases: Vec<(&str, Vec<CaaRecord>, bool, Vec<String>, bool)> = vec![
        ("issue allows the CA", vec![rec("issue", "letsencrypt.org")], false, le(), true),
        ("issue with parameters", vec![rec("issue", "letsencrypt.org; accounturi=https://x/1")], false, le(), true),
        ("case and trailing dot", vec![rec("issue", "LetsEncrypt.ORG.")], false, le(), true),
        ("another CA only", vec![rec("issue", "digicert.com")], false, le(), false),
        ("one of several", vec![rec("issue", "digicert.com"), rec("issue", "letsencrypt.org")], false, le(), true),
        ("no CA at all", vec![rec("issue", ";")], false, le(), false),
        ("iodef only: no restriction", vec![rec("iodef", "mailto:x@example.com")], false, le(), true),
        ("wildcard uses issuewild", vec![rec("issue", "letsencrypt.org"), rec("issuewild", "digicert.com")], true, le(), false),
        ("wildcard allowed by issuewild", vec![rec("issue", "letsencrypt.org"), rec("issuewild", "digicert.com")], true, dc.clone(), true),
        ("non-wildcard ignores issuewild", vec![rec("issue", "letsencrypt.org"), rec("issuewild", ";")], false, le(), true),
        ("wildcard without issuewild falls back to issue", vec![rec("issue", "digicert.com")], true, dc, true),
        ("unknown critical tag forbids", vec![CaaRecord { critical: true, tag: "future".into(), value: "x".into() }, rec("issue", "letsencrypt.org")], false, le(), false),
        ("unknown non-critical tag is ignored", vec![rec("future", "x"), rec("issue", "letsencrypt.org")], false, le(), true),
    ];
    for (name, records, wildcard, ca, allowed) in cases {
        let got = decide(&records, wildcard, &ca);
        assert_eq!(got == Decision::Allowed, allowed, "{name}: {got:?}");
    }
}

#[tokio::test]
async fn tree_climbing_and_failures() {
    let zone = Zone(
        [
            (
                "example.com".to_string(),
                Ok(vec![rec("issue", "letsencrypt.org")]),
            ),
            (
                "shop.example.com".to_string(),
                Ok(vec![rec("issue", "digicert.com")]),
            ),
            (
                "broken.example.org".to_string(),
                Err("SERVFAIL".to_string()),
            ),
        ]
        .into_iter()
        .collect(),
    );
    // a.b.example.com -> b.example.com (none) -> example.com.
    let (domain, _) = relevant_rrset(&zone, "a.b.example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(domain, "example.com");
    // The closest RRset wins, even when a parent would allow.
    let (verdict, names) = check_names(&zone, &["www.shop.example.com".into()], &le()).await;
    assert_eq!(verdict, Verdict::Mismatch);
    assert_eq!(
        names[0].relevant_domain.as_deref(),
        Some("shop.example.com")
    );
    // No CAA anywhere: any CA.
    let (verdict, _) = check_names(&zone, &["www.example.net".into()], &le()).await;
    assert_eq!(verdict, Verdict::Allowed);
    // A wildcard name starts at its base domain.
    let (verdict, _) = check_names(&zone, &["*.example.com".into()], &le()).await;
    assert_eq!(verdict, Verdict::Allowed);
    // A DNS failure is unknown, never a violation; a violation elsewhere still counts.
    let (verdict, names) = check_names(&zone, &["x.broken.example.org".into()], &le()).await;
    assert_eq!(verdict, Verdict::Unknown);
    assert!(names[0].error.as_deref().unwrap().contains("SERVFAIL"));
    let (verdict, _) = check_names(
        &zone,
        &["x.broken.example.org".into(), "shop.example.com".into()],
        &le(),
    )
    .await;
    assert_eq!(verdict, Verdict::Mismatch);
}

#[test]
fn ca_table_matches_organisation_or_common_name() {
    let t = CaTable::builtin();
    let le = t.domains_for("C=US, O=Let's Encrypt, CN=R11").unwrap();
    assert_eq!(le, ["letsencrypt.org"]);
    let goog = t
        .domains_for("C=US, O=Google Trust Services, CN=WR1")
        .unwrap();
    assert_eq!(goog[0], "pki.goog");
    assert!(
        t.domains_for("C=GB, O=Sectigo Limited, CN=Sectigo RSA Domain Validation Secure Server CA")
            .unwrap()
            .contains(&"sectigo.com".to_string())
    );
    assert!(
        t.domains_for("C=AT, O=ZeroSSL, CN=ZeroSSL RSA Domain Secure Site CA")
            .unwrap()
            .contains(&"sectigo.com".to_string())
    );
    assert_eq!(t.domains_for("CN=Some Private CA"), None);
    let mine = CaTable::parse("mine.csv", "# test\nprivate ca,ca.example.net\n").unwrap();
    assert_eq!(
        mine.domains_for("CN=Private CA 1").unwrap(),
        ["ca.example.net"]
    );
    let err = CaTable::parse("bad.csv", "\nno comma here\n").unwrap_err();
    assert_eq!(err.line, 2);
    assert!(err.to_string().starts_with("bad.csv:2: no comma"));
}
