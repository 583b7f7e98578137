//! The watchlist matcher against real certificates (tests/fixtures/watchlist, see its PROVENANCE.md).
//! Expected matches are written by hand from the certificates' SAN lists (`openssl x509 -ext subjectAltName`).

use ctwatch::watchlist::{MatchInput, MatchKind, Watchlist};
use sha2::{Digest, Sha256};
use x509_parser::prelude::*;

const GTS_CA_1C3_SPKI: &str = "cc24e77cbc0b29b4bd4b6b1ba7eb85cf82993a8705bd7c64574e827bd3b9336c";
const DIGICERT_HYBRID_SPKI: &str =
    "7b4211cf94e2a37180d57b387d4556987d711c3887d9d31b56d0814a438876a3";
const CASHEW_R10_SPKI: &str = "b3e49ac8cb4ac4f9253ad6dc0e7f20d8d3caabd81762d8280eec223c82f6c929";

/// What the matcher needs from a certificate and its issuer, extracted here with x509-parser.
struct Cert {
    names: Vec<String>,
    issuer_org: Option<String>,
    issuer_cn: Option<String>,
    issuer_spki: Option<[u8; 32]>,
}

impl Cert {
    fn input(&self) -> MatchInput<'_> {
        MatchInput {
            dns_names: &self.names,
            ip_addresses: &[],
            issuer_org: self.issuer_org.as_deref(),
            issuer_cn: self.issuer_cn.as_deref(),
            issuer_spki_sha256: self.issuer_spki.as_ref(),
            // The tests below pass the real issuer of each certificate: it is the one that signed it.
            issuer_proven: self.issuer_spki.is_some(),
        }
    }
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/watchlist/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn pem_certs(name: &str) -> Vec<Vec<u8>> {
    let data = fixture(name);
    x509_parser::pem::Pem::iter_from_buffer(&data)
        .map(|p| p.unwrap().contents)
        .collect()
}

fn cert(leaf: &[u8], issuer: Option<&[u8]>) -> Cert {
    let (_, x509) = parse_x509_certificate(leaf).unwrap();
    let names = match x509.subject_alternative_name().unwrap() {
        Some(san) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(d) => Some(d.to_string()),
                _ => None,
            })
            .collect(),
        None => Vec::new(),
    };
    let first = |it: &mut dyn Iterator<Item = &AttributeTypeAndValue>| {
        it.next().map(|a| a.as_str().unwrap().to_string())
    };
    let issuer_spki = issuer.map(|der| {
        let (_, ca) = parse_x509_certificate(der).unwrap();
        Sha256::digest(ca.public_key().raw).into()
    });
    Cert {
        issuer_org: first(&mut x509.issuer().iter_organization()),
        issuer_cn: first(&mut x509.issuer().iter_common_name()),
        names,
        issuer_spki,
    }
}

fn google() -> Cert {
    let chain = pem_certs("google_com_fullchain.pem");
    // The file holds GTS CA 1C3, GTS Root R1, then the leaf.
    cert(&chain[2], Some(&chain[0]))
}

fn list(text: &str) -> Watchlist {
    Watchlist::parse_str("real.txt", text).unwrap_or_else(|e| panic!("{e}"))
}

/// (item, name, kind) of every match.
fn matches(wl: &Watchlist, cert: &Cert) -> Vec<(String, String, MatchKind)> {
    wl.match_cert(&cert.input())
        .into_iter()
        .map(|m| (m.item, m.name, m.kind))
        .collect()
}

fn names_of(got: &[(String, String, MatchKind)], item: &str, kind: MatchKind) -> Vec<String> {
    got.iter()
        .filter(|(i, _, k)| i == item && *k == kind)
        .map(|(_, n, _)| n.clone())
        .collect()
}

#[test]
fn google_129_names_domain_exact_wildcard_regex_keyword_and_exclusion() {
    let g = google();
    assert_eq!(g.names.len(), 129);
    let wl = list(
        "google.com lookalike=off\n=www.youtube.com\n*.android.com\n/^goo\\.gl$/\n~doubleclick lookalike=off\n\
         !cloud.google.com\n",
    );
    let got = matches(&wl, &g);
    use MatchKind::*;
    assert_eq!(
        names_of(&got, "google.com", Domain),
        [
            "*.google.com",
            "*.appengine.google.com",
            "*.crowdsource.google.com",
            "*.datacompute.google.com",
            "*.url.google.com",
            "google.com",
            "android.clients.google.com"
        ]
    );
    // `=www.youtube.com` is covered by the certificate's `*.youtube.com`.
    assert_eq!(names_of(&got, "=www.youtube.com", Exact), ["*.youtube.com"]);
    // One label deep: `*.android.com` itself, but neither `android.com` nor `*.flash.android.com`.
    assert_eq!(names_of(&got, "*.android.com", Wildcard), ["*.android.com"]);
    assert_eq!(names_of(&got, "/^goo\\.gl$/", Regex), ["goo.gl"]);
    assert_eq!(
        names_of(&got, "~doubleclick", Keyword),
        [
            "doubleclick-cn.net",
            "*.doubleclick-cn.net",
            "*.fls.doubleclick-cn.net",
            "*.g.doubleclick-cn.net",
            "doubleclick.cn",
            "*.doubleclick.cn",
            "*.fls.doubleclick.cn",
            "*.g.doubleclick.cn"
        ]
    );
    assert_eq!(got.len(), 7 + 1 + 1 + 1 + 8);
}

#[test]
fn google_issuance_policy_by_name_and_by_key() {
    let g = google();
    assert_eq!(g.issuer_org.as_deref(), Some("Google Trust Services LLC"));
    let kinds = |text: &str| -> Vec<MatchKind> {
        let mut kinds: Vec<_> = list(text)
            .match_cert(&g.input())
            .into_iter()
            .map(|m| m.kind)
            .collect();
        kinds.dedup();
        kinds
    };
    assert_eq!(
        kinds("google.com issuers=digicert,sectigo lookalike=off"),
        [MatchKind::UnauthorizedIssuer]
    );
    assert_eq!(
        kinds("google.com issuers=google-trust-services lookalike=off"),
        [MatchKind::Domain]
    );
    assert_eq!(
        kinds("google.com issuers=gts lookalike=off"),
        [MatchKind::Domain],
        "CN 'GTS CA 1C3'"
    );
    assert_eq!(
        kinds(&format!(
            "google.com issuers=spki:{GTS_CA_1C3_SPKI} lookalike=off"
        )),
        [MatchKind::Domain]
    );
    assert_eq!(
        kinds(&format!(
            "google.com issuers=spki:{DIGICERT_HYBRID_SPKI} lookalike=off"
        )),
        [MatchKind::UnauthorizedIssuer]
    );
    let all = list("google.com issuers=digicert lookalike=off").match_cert(&g.input());
    assert_eq!(all.len(), 8);
}

#[test]
fn google_country_domains_look_like_the_google_com_brand() {
    let g = google();
    let got = matches(&list("google.com\n"), &g);
    let lookalikes = names_of(&got, "google.com", MatchKind::Lookalike);
    let expected = [
        "*.google.ca",
        "*.google.cl",
        "*.google.co.in",
        "*.google.co.jp",
        "*.google.co.uk",
        "*.google.com.ar",
        "*.google.com.au",
        "*.google.com.br",
        "*.google.com.co",
        "*.google.com.mx",
        "*.google.com.tr",
        "*.google.com.vn",
        "*.google.de",
        "*.google.es",
        "*.google.fr",
        "*.google.hu",
        "*.google.it",
        "*.google.nl",
        "*.google.pl",
        "*.google.pt",
        "google-analytics-cn.com",
        "*.google-analytics-cn.com",
        "google-analytics.com",
        "*.google-analytics.com",
        "developer.android.google.cn",
        "developers.android.google.cn",
        "source.android.google.cn",
    ];
    assert_eq!(lookalikes, expected);
    let brands: Vec<_> = list("google.com\n")
        .match_cert(&g.input())
        .into_iter()
        .filter_map(|m| m.brand)
        .collect();
    assert!(brands.len() == 27 && brands.iter().all(|b| b == "google.com"));
    assert_eq!(got.len(), 8 + 27);
}

#[test]
fn cloudflare_dns_ip_sans_are_not_dns_names() {
    let c = cert(
        &fixture("cloudflare-dns_ee.der"),
        Some(&fixture("cloudflare-dns_inter.der")),
    );
    assert_eq!(
        c.names,
        [
            "cloudflare-dns.com",
            "*.cloudflare-dns.com",
            "one.one.one.one"
        ]
    );
    let wl = list(&format!(
        "cloudflare-dns.com issuers=spki:{DIGICERT_HYBRID_SPKI} lookalike=off\n=one.one.one.one\n1.1.1.1\n~one lookalike=off\n"
    ));
    use MatchKind::*;
    let expected = [
        ("cloudflare-dns.com", "cloudflare-dns.com", Domain),
        ("cloudflare-dns.com", "*.cloudflare-dns.com", Domain),
        ("=one.one.one.one", "one.one.one.one", Exact),
        ("~one", "one.one.one.one", Keyword),
    ];
    let expected: Vec<_> = expected
        .iter()
        .map(|(i, n, k)| (i.to_string(), n.to_string(), *k))
        .collect();
    assert_eq!(matches(&wl, &c), expected);
    // The same certificate seen through a policy naming another CA.
    let other = list("cloudflare-dns.com issuers=letsencrypt lookalike=off");
    assert!(
        other
            .match_cert(&c.input())
            .iter()
            .all(|m| m.kind == UnauthorizedIssuer)
    );
}

#[test]
fn navigli_wildcard_precert_with_exclusion_and_key_policy() {
    let cashew = fixture("navigli_issuer_counterfeit-cashew-r10.der");
    let c = cert(&fixture("navigli_idx0_rsa2048+wildcard.der"), Some(&cashew));
    assert_eq!(c.issuer_org.as_deref(), Some("(STAGING) Let's Encrypt"));
    let wl = list(&format!(
        "drive-platform.io issuers=spki:{CASHEW_R10_SPKI}\n*.public.prd-euw1.x0a839b.drive-platform.io\n\
         !stg-euw1.x0a839b.drive-platform.io\n"
    ));
    use MatchKind::*;
    let got = matches(&wl, &c);
    assert_eq!(
        names_of(&got, "drive-platform.io", Domain),
        [
            "*.gated.dev-euw1.x0a839b.drive-platform.io",
            "*.gated.euw1.x0a839b.drive-platform.io",
            "*.gated.prd-euw1.x0a839b.drive-platform.io",
            "*.public.dev-euw1.x0a839b.drive-platform.io",
            "*.public.euw1.x0a839b.drive-platform.io",
            "*.public.prd-euw1.x0a839b.drive-platform.io"
        ]
    );
    assert_eq!(
        names_of(
            &got,
            "*.public.prd-euw1.x0a839b.drive-platform.io",
            Wildcard
        ),
        ["*.public.prd-euw1.x0a839b.drive-platform.io"]
    );
    assert_eq!(got.len(), 7);
}

#[test]
fn navigli_24_san_precert_keywords_lookalikes_and_another_issuer() {
    let watercress = fixture("navigli_issuer_wannabe-watercress-r11.der");
    let c = cert(
        &fixture("navigli_idx281_max-24-sans.der"),
        Some(&watercress),
    );
    assert_eq!(c.names.len(), 24);
    let wl = list(&format!(
        "~marstrand lookalike=off\nbasetool.com issuers=spki:{CASHEW_R10_SPKI}\n=www.swemaps.se\n"
    ));
    use MatchKind::*;
    let got = matches(&wl, &c);
    assert_eq!(
        names_of(&got, "~marstrand", Keyword),
        [
            "elinmarstrand.se",
            "marstrand.se",
            "marstrandsfarjan.se",
            "marstrandsmarina.se",
            "marstrandsss.se",
            "marstrandswanregatta.se"
        ]
    );
    // Issued by Wannabe Watercress R11, not the Counterfeit Cashew R10 key the policy allows.
    assert_eq!(
        names_of(&got, "basetool.com", UnauthorizedIssuer),
        ["basetool.com", "beta.basetool.com"]
    );
    assert_eq!(
        names_of(&got, "basetool.com", Lookalike),
        [
            "home.basetool.se",
            "support.basetool.se",
            "www.support.basetool.se"
        ]
    );
    assert_eq!(names_of(&got, "=www.swemaps.se", Exact), ["www.swemaps.se"]);
    assert_eq!(got.len(), 6 + 2 + 3 + 1);
}

#[test]
fn navigli_phishy_and_repetitive_names() {
    let c = cert(&fixture("navigli_idx2_empty-subject.der"), None);
    assert_eq!(
        c.names,
        ["chat.basketblogin.secure.blog.cr.suoadappwi-proxy.ezbricks-dev.codetools.in"]
    );
    let wl = list("~login lookalike=off\ncodetools.in lookalike=off\n~paypal\n");
    let got: Vec<_> = matches(&wl, &c)
        .into_iter()
        .map(|(i, _, k)| (i, k))
        .collect();
    assert_eq!(
        got,
        [
            ("~login".to_string(), MatchKind::Keyword),
            ("codetools.in".to_string(), MatchKind::Domain)
        ]
    );

    let c = cert(&fixture("navigli_idx60_rsa4096.der"), None);
    let wl = list("/^(www\\.){6}[a-z]+www\\./\n=www.www.example.com\n");
    let got: Vec<_> = matches(&wl, &c)
        .into_iter()
        .map(|(i, _, k)| (i, k))
        .collect();
    assert_eq!(
        got,
        [("/^(www\\.){6}[a-z]+www\\./".to_string(), MatchKind::Regex)]
    );
}
