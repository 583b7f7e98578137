//! The shipped example watchlist must stay valid, and say what it claims.

use ctwatch::watchlist::{MatchInput, MatchKind, Watchlist, check};
use std::path::Path;

fn example() -> Watchlist {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("watchlists/example.txt");
    Watchlist::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn kinds(wl: &Watchlist, name: &str, org: &str) -> Vec<(String, MatchKind)> {
    let names = [name.to_string()];
    let input = MatchInput {
        dns_names: &names,
        ip_addresses: &[],
        issuer_org: Some(org),
        issuer_cn: None,
        issuer_spki_sha256: None,
        issuer_proven: true,
    };
    wl.match_cert(&input)
        .into_iter()
        .map(|m| (m.item, m.kind))
        .collect()
}

fn k(item: &str, kind: MatchKind) -> (String, MatchKind) {
    (item.to_string(), kind)
}

#[test]
fn example_watchlist_is_valid_and_behaves_as_commented() {
    let wl = example();
    assert!(wl.warnings().is_empty(), "{:?}", wl.warnings());
    let summary = check(&Path::new(env!("CARGO_MANIFEST_DIR")).join("watchlists")).unwrap();
    assert!(summary.contains("12 items in 1 file(s)"), "{summary}");
    use MatchKind::*;
    assert_eq!(
        kinds(&wl, "www.example.com", "DigiCert Inc"),
        [k("example.com", Domain)]
    );
    assert_eq!(
        kinds(&wl, "a.example.net", "Let's Encrypt"),
        [k("example.net", Domain)]
    );
    assert_eq!(
        kinds(&wl, "a.example.net", "Sectigo Limited"),
        [k("example.net", UnauthorizedIssuer)]
    );
    assert_eq!(
        kinds(&wl, "shop.example.net", "Sectigo Limited"),
        [k("example.net", Domain), k("shop.example.net", Domain)]
    );
    assert_eq!(
        kinds(&wl, "a.cdn.example.org", "x"),
        [k("example.org", Domain), k("*.cdn.example.org", Wildcard)]
    );
    assert_eq!(
        kinds(&wl, "a.b.cdn.example.org", "x"),
        [k("example.org", Domain)]
    );
    assert_eq!(
        kinds(&wl, "mail7.example.info", "x"),
        [k("/^mail[0-9]+\\./", Regex)]
    );
    assert_eq!(
        kinds(&wl, "vpn.example.info", "x"),
        [k("=vpn.example.info", Exact)]
    );
    assert_eq!(
        kinds(&wl, "login-examplebank.com", "x"),
        [k("~examplebank", Keyword)]
    );
    assert_eq!(
        kinds(&wl, "examp1ebank.com", "x"),
        [k("~examplebank", Lookalike)]
    );
    assert_eq!(kinds(&wl, "examp1epay.com", "x"), []);
    // example.com, example.org and example.net share the brand label: reported once, for the first.
    assert_eq!(
        kinds(&wl, "exmaple.com", "x"),
        [k("example.com", Lookalike)]
    );
    assert_eq!(kinds(&wl, "branch-42.ci.example.com", "x"), []);
    assert_eq!(kinds(&wl, "test.example.org", "x"), []);
}
