//! Matcher behaviour through the public API, one item kind at a time, tricky cases included.

use super::*;

fn list(text: &str) -> Watchlist {
    Watchlist::parse_str("test.txt", text).unwrap_or_else(|e| panic!("{e}"))
}

fn cert(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

fn input(names: &[String]) -> MatchInput<'_> {
    MatchInput {
        dns_names: names,
        ip_addresses: &[],
        issuer_org: None,
        issuer_cn: None,
        issuer_spki_sha256: None,
        issuer_proven: true,
    }
}

/// (item, name, kind) of every match, in order.
fn matches(list: &Watchlist, names: &[&str]) -> Vec<(String, String, MatchKind)> {
    let names = cert(names);
    list.match_cert(&input(&names))
        .into_iter()
        .map(|m| (m.item, m.name, m.kind))
        .collect()
}

fn m(item: &str, name: &str, kind: MatchKind) -> (String, String, MatchKind) {
    (item.to_string(), name.to_string(), kind)
}

use MatchKind::*;

#[test]
fn domain_items_cover_the_domain_and_all_subdomains() {
    let wl = list("example.com lookalike=off");
    assert_eq!(
        matches(
            &wl,
            &[
                "example.com",
                "www.example.com",
                "a.b.example.com",
                "notexample.com",
                "example.com.evil.net"
            ]
        ),
        [
            m("example.com", "example.com", Domain),
            m("example.com", "www.example.com", Domain),
            m("example.com", "a.b.example.com", Domain)
        ]
    );
}

#[test]
fn exact_items_cover_one_name() {
    let wl = list("=www.example.com");
    assert_eq!(
        matches(
            &wl,
            &["www.example.com", "example.com", "a.www.example.com"]
        ),
        [m("=www.example.com", "www.example.com", Exact)]
    );
}

#[test]
fn wildcard_items_cover_one_label_deep() {
    let wl = list("*.example.com");
    assert_eq!(
        matches(&wl, &["a.example.com", "example.com", "a.b.example.com"]),
        [m("*.example.com", "a.example.com", Wildcard)]
    );
}

#[test]
fn regex_items_search_the_ascii_name() {
    let wl = list("/^mail[0-9]+\\./\n/BÜCHER/");
    assert_eq!(
        matches(
            &wl,
            &[
                "mail12.example.org",
                "xmail1.example.org",
                "mail.example.org",
                "www.xn--bcher-kva.de"
            ]
        ),
        [m("/^mail[0-9]+\\./", "mail12.example.org", Regex)]
    );
}

#[test]
fn a_regex_that_matches_everything_is_allowed_with_a_warning() {
    let wl = list("/.*/");
    assert_eq!(wl.warnings().len(), 1);
    assert_eq!(
        wl.warnings()[0].to_string(),
        "test.txt:1: regex /.*/ matches every name"
    );
    let got = matches(&wl, &["a.example", "*.x.y", "garbage name"]);
    assert_eq!(got.len(), 3);
}

#[test]
fn keyword_items_search_ascii_and_unicode_forms() {
    let wl = list("~paypal lookalike=off\n~bücher lookalike=off");
    assert_eq!(
        matches(
            &wl,
            &[
                "paypal-login.example",
                "www.xn--bcher-kva.de",
                "buecher.de",
                "secure.paypal.com"
            ]
        ),
        [
            m("~paypal", "paypal-login.example", Keyword),
            m("~bücher", "www.xn--bcher-kva.de", Keyword),
            m("~paypal", "secure.paypal.com", Keyword),
        ]
    );
}

#[test]
fn names_are_compared_case_insensitively_without_trailing_dot_and_in_punycode() {
    let wl = list("Example.COM. lookalike=off\nBücher.de");
    let names = cert(&["WWW.EXAMPLE.COM.", "Www.Xn--Bcher-Kva.De"]);
    let got = wl.match_cert(&input(&names));
    assert_eq!(got.len(), 2);
    assert_eq!(
        (got[0].name.as_str(), got[0].name_unicode.as_str()),
        ("www.example.com", "www.example.com")
    );
    assert_eq!(got[0].item, "Example.COM.");
    assert_eq!(
        (got[1].name.as_str(), got[1].name_unicode.as_str()),
        ("www.xn--bcher-kva.de", "www.bücher.de")
    );
}

#[test]
fn wildcard_certificates_match_the_items_they_cover() {
    let wl = list(
        "example.com lookalike=off\nfoo.example.com\n=www.example.com\n=deep.www.example.com\n*.example.com\n=*.example.com",
    );
    let got = matches(&wl, &["*.example.com"]);
    let items: Vec<&str> = got.iter().map(|(i, _, _)| i.as_str()).collect();
    assert_eq!(
        items,
        [
            "example.com",
            "foo.example.com",
            "=www.example.com",
            "*.example.com",
            "=*.example.com"
        ]
    );
    // A deeper wildcard name is under example.com but covers neither foo.example.com nor *.example.com's names.
    assert_eq!(
        matches(&wl, &["*.a.example.com"]),
        [m("example.com", "*.a.example.com", Domain)]
    );
}

#[test]
fn exclusions_beat_inclusions_of_every_kind() {
    let wl = list("example.com\n~dev lookalike=off\n/dev/\n!dev.example.com\n!=www.example.com");
    assert_eq!(
        matches(
            &wl,
            &[
                "dev.example.com",
                "x.dev.example.com",
                "*.dev.example.com",
                "www.example.com",
                "a.www.example.com"
            ]
        ),
        [m("example.com", "a.www.example.com", Domain)]
    );
    // The exclusion does not reach names it does not cover.
    assert_eq!(
        matches(&wl, &["dev.example.org"]),
        [
            m("example.com", "dev.example.org", Lookalike),
            m("~dev", "dev.example.org", Keyword),
            m("/dev/", "dev.example.org", Regex)
        ]
    );
}

#[test]
fn tagged_exclusions_only_silence_items_with_a_shared_tag() {
    let wl = Watchlist::from_sources(&[
        (
            "acme.txt".into(),
            "@client-acme\nexample.com lookalike=off\n!dev.example.com\n".into(),
        ),
        (
            "beta.txt".into(),
            "@client-beta\nexample.com lookalike=off\n".into(),
        ),
    ])
    .unwrap();
    let names = cert(&["dev.example.com"]);
    let got = wl.match_cert(&input(&names));
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].source.as_str(), got[0].tags.as_slice()),
        ("beta.txt:2", ["client-beta".to_string()].as_slice())
    );
}

#[test]
fn issuance_policy_reports_other_issuers_separately() {
    let key = [7u8; 32];
    let wl = list(&format!(
        "example.com issuers=letsencrypt,spki:{} lookalike=off",
        hex::encode(key)
    ));
    let names = cert(&["www.example.com"]);
    let with = |org: Option<&'static str>, spki: Option<&'static [u8; 32]>| {
        let input = MatchInput {
            dns_names: &names,
            ip_addresses: &[],
            issuer_org: org,
            issuer_cn: None,
            issuer_spki_sha256: spki,
            issuer_proven: true,
        };
        wl.match_cert(&input)
            .into_iter()
            .map(|m| m.kind)
            .collect::<Vec<_>>()
    };
    assert_eq!(with(Some("Let's Encrypt"), None), [Domain]);
    assert_eq!(with(Some("DigiCert Inc"), None), [UnauthorizedIssuer]);
    assert_eq!(
        with(None, None),
        [UnauthorizedIssuer],
        "no issuer information cannot prove authorization"
    );
    static KEY: [u8; 32] = [7u8; 32];
    static OTHER: [u8; 32] = [8u8; 32];
    assert_eq!(with(Some("Unknown CA"), Some(&KEY)), [Domain]);
    assert_eq!(with(Some("Unknown CA"), Some(&OTHER)), [UnauthorizedIssuer]);
    assert_eq!(UnauthorizedIssuer.event_kind(), "unauthorized_issuer");
    assert_eq!(Domain.event_kind(), "new_certificate");
    assert_eq!(Lookalike.event_kind(), "lookalike");
}

#[test]
fn the_most_specific_issuance_policy_decides() {
    let wl =
        list("example.com issuers=letsencrypt lookalike=off\nshop.example.com issuers=digicert\n");
    let names = cert(&["shop.example.com", "www.example.com"]);
    let input = MatchInput {
        dns_names: &names,
        ip_addresses: &[],
        issuer_org: Some("DigiCert Inc"),
        issuer_cn: None,
        issuer_spki_sha256: None,
        issuer_proven: true,
    };
    let got: Vec<_> = wl
        .match_cert(&input)
        .into_iter()
        .map(|m| (m.item, m.name, m.kind))
        .collect();
    assert_eq!(
        got,
        [
            m("example.com", "shop.example.com", Domain),
            m("shop.example.com", "shop.example.com", Domain),
            m("example.com", "www.example.com", UnauthorizedIssuer),
        ]
    );
}

#[test]
fn lookalikes_name_the_brand_and_skip_genuine_names() {
    let wl = list("example.com\n~paypal\n");
    let names = cert(&[
        "www.example.com",
        "exampel.com",
        "paypal-login.net",
        "paypa1-login.net",
    ]);
    let got: Vec<_> = wl
        .match_cert(&input(&names))
        .into_iter()
        .map(|m| (m.name, m.kind, m.brand))
        .collect();
    assert_eq!(
        got,
        [
            ("www.example.com".to_string(), Domain, None),
            (
                "exampel.com".to_string(),
                Lookalike,
                Some("example.com".to_string())
            ),
            ("paypal-login.net".to_string(), Keyword, None),
            (
                "paypa1-login.net".to_string(),
                Lookalike,
                Some("paypal".to_string())
            ),
        ]
    );
}

#[test]
fn keyword_homoglyphs_inside_labels_are_lookalikes() {
    let wl = list(
        "~paypal
~microsoft
~login lookalike=off
",
    );
    // Cyrillic а inside a longer label; rn for m; a homoglyph of a keyword without look-alike detection.
    let idn = idna::domain_to_ascii("secure-pаypallogin.com").unwrap();
    let names = cert(&[
        &idn,
        "rnicrosoft-support.com",
        "www.paypal.com",
        "l0gin.example",
    ]);
    let got: Vec<_> = wl
        .match_cert(&input(&names))
        .into_iter()
        .map(|m| (m.name_unicode, m.kind, m.brand))
        .collect();
    let brand = |b: &str| Some(b.to_string());
    assert_eq!(
        got,
        [
            (
                "secure-pаypallogin.com".to_string(),
                Lookalike,
                brand("paypal")
            ),
            ("secure-pаypallogin.com".to_string(), Keyword, None),
            (
                "rnicrosoft-support.com".to_string(),
                Lookalike,
                brand("microsoft")
            ),
            ("www.paypal.com".to_string(), Keyword, None),
        ]
    );
}

#[test]
fn match_serializes_with_the_documented_fields() {
    let wl = list("@team\nexample.com");
    let names = cert(&["exarnple.com"]);
    let got = wl.match_cert(&input(&names));
    let json = serde_json::to_value(&got).unwrap();
    assert_eq!(
        json,
        serde_json::json!([{"item": "example.com", "source": "test.txt:2", "name": "exarnple.com",
            "name_unicode": "exarnple.com", "kind": "lookalike", "tags": ["team"], "brand": "example.com"}])
    );
}

#[test]
fn garbage_and_repeated_names_are_harmless() {
    let wl = list("example.com\n/x/\n~ex\n");
    let got = matches(
        &wl,
        &[
            "",
            ".",
            "*",
            "*.",
            "a..b",
            "foo bar",
            "\u{0}",
            "xn--",
            "xn--.example.com",
            "*.*.com",
            "é.com",
        ],
    );
    assert!(
        got.iter().all(|(_, name, _)| name == "xn--.example.com"
            || name == "foo bar"
            || name.contains('x')),
        "{got:?}"
    );
    let repeated = matches(
        &wl,
        &["www.example.com", "WWW.example.com", "www.example.com."],
    );
    let kinds: Vec<_> = repeated
        .iter()
        .map(|(_, name, kind)| (name.as_str(), *kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("www.example.com", Domain),
            ("www.example.com", Regex),
            ("www.example.com", Keyword)
        ]
    );
}

#[test]
fn empty_bom_and_crlf_files() {
    let empty = list("");
    assert!(empty.is_empty());
    assert_eq!(empty.len(), 0);
    assert!(matches(&empty, &["example.com"]).is_empty());
    let wl = list("\u{feff}example.com lookalike=off\r\n=a.example.org\r\n");
    assert_eq!(wl.len(), 2);
    assert_eq!(
        matches(&wl, &["www.example.com", "a.example.org"]),
        [
            m("example.com", "www.example.com", Domain),
            m("=a.example.org", "a.example.org", Exact)
        ]
    );
}

/// Items that are a single label (a TLD, an intranet name) and wildcard names over one: the shortcut that skips
/// names whose last two labels no item ends with must still let them through.
#[test]
fn single_label_items_and_wildcards_over_a_tld() {
    let wl = list(
        "internal lookalike=off\n=localhost\n*.corp\nexample.com lookalike=off\n=shop.example",
    );
    assert_eq!(
        matches(
            &wl,
            &[
                "a.b.internal",
                "internal",
                "localhost",
                "x.corp",
                "*.corp",
                "a.internal.net"
            ]
        ),
        [
            m("internal", "a.b.internal", Domain),
            m("internal", "internal", Domain),
            m("=localhost", "localhost", Exact),
            m("*.corp", "x.corp", Wildcard),
            m("*.corp", "*.corp", Wildcard),
        ]
    );
    // `*.com` covers example.com (one label under com); `*.example` covers the exact shop.example.
    assert_eq!(
        matches(&wl, &["*.com", "*.example", "www.example.org"]),
        [
            m("example.com", "*.com", Domain),
            m("=shop.example", "*.example", Exact),
        ]
    );
}

/// A name repeated after normalization is matched once, in short lists (compared with the names before it) and
/// in long ones (a set).
#[test]
fn repeated_names_match_once_in_short_and_long_lists() {
    let wl = list("example.com lookalike=off");
    assert_eq!(
        matches(&wl, &["www.example.com", "WWW.example.com."]).len(),
        1
    );
    let hosts: Vec<String> = (0..40).map(|i| format!("host{i}.other.org")).collect();
    let mut names: Vec<&str> = vec!["www.example.com", "WWW.example.com."];
    names.extend(hosts.iter().map(String::as_str));
    names.extend(["Www.Example.Com", "api.example.com", "API.example.com."]);
    assert_eq!(matches(&wl, &names).len(), 2, "www and api, once each");
}
