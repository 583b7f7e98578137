//! Integration tests: real TLS servers on 127.0.0.1 (tokio-rustls) with certificates made here
//! by rcgen from a test CA the probe is told to trust.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ctwatch::probe::cli::{self, CheckArgs};
use ctwatch::probe::{
    CtLookup, HostReport, Level, ProbeOptions, StaticResolver, Status, Target, Timeouts,
    TrustRoots, probe_hosts,
};
use sha2::{Digest, Sha256};

mod probe_support;
use probe_support::{
    Pki, dead_port, self_signed, serve_closing, serve_silent, serve_tls, sha256_hex,
};

fn options(pki: &Pki, names: &[(&str, SocketAddr)]) -> ProbeOptions {
    let mut resolver = StaticResolver::new();
    for (name, addr) in names {
        resolver.insert(name, [*addr]);
    }
    ProbeOptions {
        roots: Arc::new(pki.roots()),
        resolver: Arc::new(resolver),
        timeouts: Timeouts {
            dns: Duration::from_secs(2),
            connect: Duration::from_secs(2),
            handshake: Duration::from_secs(1),
        },
        ..ProbeOptions::default()
    }
}

async fn probe_one(name: &str, opts: &ProbeOptions) -> HostReport {
    let mut reports = probe_hosts(vec![Target::parse(name, 443).unwrap()], opts).await;
    assert_eq!(reports.len(), 1);
    reports.remove(0)
}

fn assert_status(r: &HostReport, status: Status, level: Level) {
    assert_eq!((r.status, r.level), (status, level), "{r:#?}");
}

#[tokio::test]
async fn valid_chain_is_ok_with_all_details() {
    let pki = Pki::new();
    let served = pki.leaf(&["valid.test", "www.valid.test"], -30, 60);
    let leaf_sha = sha256_hex(&served.chain[0]);
    let addr = serve_tls("127.0.0.1", served).await;
    let r = probe_one("valid.test", &options(&pki, &[("valid.test", addr)])).await;
    assert_status(&r, Status::Ok, Level::Ok);
    assert_eq!(r.days_left, Some(60));
    assert_eq!(r.cert_sha256.as_deref(), Some(leaf_sha.as_str()));
    assert_eq!(r.sans, ["valid.test", "www.valid.test"]);
    assert_eq!(r.issuer.as_deref(), Some("CN=Probe Test Intermediate"));
    assert_eq!(r.subject.as_deref(), Some("CN=valid.test"));
    assert_eq!(r.problems, []);
    assert_eq!(r.error, None);
    assert_eq!(r.seen_in_ct, None);
    assert_eq!(r.addresses.len(), 1);
    let a = &r.addresses[0];
    assert_eq!((a.address, a.status, a.chain_len), (addr, Status::Ok, 2));
    assert_eq!(a.tls_version.as_deref(), Some("TLSv1.3"));
}

#[tokio::test]
async fn expiring_in_five_days_is_critical() {
    let pki = Pki::new();
    let addr = serve_tls("127.0.0.1", pki.leaf(&["soon.test"], -85, 5)).await;
    let r = probe_one("soon.test", &options(&pki, &[("soon.test", addr)])).await;
    assert_status(&r, Status::Critical, Level::Critical);
    assert_eq!(r.days_left, Some(5));
    assert_eq!(r.error, None);
}

#[tokio::test]
async fn fifteen_days_of_ninety_is_a_warning() {
    let pki = Pki::new();
    let addr = serve_tls("127.0.0.1", pki.leaf(&["warn.test"], -75, 15)).await;
    let r = probe_one("warn.test", &options(&pki, &[("warn.test", addr)])).await;
    assert_status(&r, Status::Warning, Level::Warning);
    assert_eq!(r.days_left, Some(15));
}

#[tokio::test]
async fn expired_certificate_is_still_captured() {
    let pki = Pki::new();
    let served = pki.leaf(&["expired.test"], -100, -10);
    let leaf_sha = sha256_hex(&served.chain[0]);
    let addr = serve_tls("127.0.0.1", served).await;
    let r = probe_one("expired.test", &options(&pki, &[("expired.test", addr)])).await;
    assert_status(&r, Status::Expired, Level::Critical);
    assert_eq!(r.problems, [Status::Expired]);
    // Expired 9.5 days ago: whole days left round down to -10.
    assert_eq!(r.days_left, Some(-10));
    assert_eq!(r.cert_sha256.as_deref(), Some(leaf_sha.as_str()));
    assert!(
        r.error
            .as_deref()
            .unwrap()
            .starts_with("certificate expired at 20"),
        "{r:#?}"
    );
}

#[tokio::test]
async fn not_yet_valid_certificate() {
    let pki = Pki::new();
    let addr = serve_tls("127.0.0.1", pki.leaf(&["future.test"], 2, 92)).await;
    let r = probe_one("future.test", &options(&pki, &[("future.test", addr)])).await;
    assert_status(&r, Status::NotYetValid, Level::Critical);
    assert_eq!(r.problems, [Status::NotYetValid]);
    assert_eq!(r.days_left, Some(92));
}

#[tokio::test]
async fn self_signed_is_untrusted() {
    let pki = Pki::new();
    let addr = serve_tls("127.0.0.1", self_signed(&["self.test"])).await;
    let r = probe_one("self.test", &options(&pki, &[("self.test", addr)])).await;
    assert_status(&r, Status::Untrusted, Level::Critical);
    assert_eq!(r.problems, [Status::Untrusted]);
    assert!(
        r.error.as_deref().unwrap().contains("self-signed"),
        "{r:#?}"
    );
    assert_eq!(r.days_left, Some(80));
}

#[tokio::test]
async fn missing_intermediate_is_untrusted() {
    let pki = Pki::new();
    let mut served = pki.leaf(&["partial.test"], -10, 80);
    served.chain.truncate(1);
    let addr = serve_tls("127.0.0.1", served).await;
    let r = probe_one("partial.test", &options(&pki, &[("partial.test", addr)])).await;
    assert_status(&r, Status::Untrusted, Level::Critical);
    assert!(
        r.error.as_deref().unwrap().contains("missing intermediate"),
        "{r:#?}"
    );
    assert_eq!(r.addresses[0].chain_len, 1);
}

#[tokio::test]
async fn untrusted_when_the_ca_is_not_given() {
    let pki = Pki::new();
    let addr = serve_tls("127.0.0.1", pki.leaf(&["private.test"], -10, 80)).await;
    let mut opts = options(&pki, &[("private.test", addr)]);
    opts.roots = Arc::new(TrustRoots::webpki());
    let r = probe_one("private.test", &opts).await;
    assert_status(&r, Status::Untrusted, Level::Critical);
}

#[tokio::test]
async fn wrong_hostname_is_a_mismatch() {
    let pki = Pki::new();
    let addr = serve_tls(
        "127.0.0.1",
        pki.leaf(&["other.test", "*.other.test"], -10, 80),
    )
    .await;
    let r = probe_one("wrong.test", &options(&pki, &[("wrong.test", addr)])).await;
    assert_status(&r, Status::HostnameMismatch, Level::Critical);
    assert_eq!(r.problems, [Status::HostnameMismatch]);
    assert_eq!(
        r.error.as_deref(),
        Some("certificate is not valid for wrong.test (it names: other.test, *.other.test)")
    );
}

#[tokio::test]
async fn server_closing_the_connection_is_a_handshake_failure() {
    let pki = Pki::new();
    let addr = serve_closing().await;
    let r = probe_one("closer.test", &options(&pki, &[("closer.test", addr)])).await;
    assert_status(&r, Status::HandshakeFailed, Level::Critical);
    assert_eq!(r.cert_sha256, None);
    assert_eq!(r.days_left, None);
    assert!(
        r.error
            .as_deref()
            .unwrap()
            .starts_with("TLS handshake failed"),
        "{r:#?}"
    );
}

#[tokio::test]
async fn nothing_listening_is_unreachable() {
    let pki = Pki::new();
    let addr = dead_port().await;
    let r = probe_one("dead.test", &options(&pki, &[("dead.test", addr)])).await;
    assert_status(&r, Status::Unreachable, Level::Critical);
    assert!(
        r.error.as_deref().unwrap().starts_with("connect failed"),
        "{r:#?}"
    );
}

#[tokio::test]
async fn silent_server_times_out_in_the_handshake_phase() {
    let pki = Pki::new();
    let addr = serve_silent().await;
    let started = std::time::Instant::now();
    let r = probe_one("silent.test", &options(&pki, &[("silent.test", addr)])).await;
    assert_status(&r, Status::HandshakeFailed, Level::Critical);
    assert_eq!(
        r.error.as_deref(),
        Some("TLS handshake timed out after 1.0 s")
    );
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[tokio::test]
async fn unknown_name_is_a_dns_error() {
    let pki = Pki::new();
    let r = probe_one("nowhere.test", &options(&pki, &[])).await;
    assert_status(&r, Status::DnsError, Level::Critical);
    assert_eq!(
        r.error.as_deref(),
        Some("nowhere.test has no A or AAAA record")
    );
    assert!(r.addresses.is_empty());
}

/// A resolver that never answers, to exercise the DNS timeout.
#[derive(Debug)]
struct HangingResolver;

impl ctwatch::probe::Resolver for HangingResolver {
    fn resolve<'a>(&'a self, _: &'a str, _: u16) -> ctwatch::probe::resolve::ResolveFuture<'a> {
        Box::pin(std::future::pending())
    }
}

#[tokio::test]
async fn dns_timeout() {
    let pki = Pki::new();
    let mut opts = options(&pki, &[]);
    opts.resolver = Arc::new(HangingResolver);
    opts.timeouts.dns = Duration::from_millis(200);
    let r = probe_one("slow.test", &opts).await;
    assert_status(&r, Status::DnsError, Level::Critical);
    assert_eq!(
        r.error.as_deref(),
        Some("DNS lookup of slow.test timed out after 0.2 s")
    );
}

#[tokio::test]
async fn two_addresses_serving_different_certificates() {
    let pki = Pki::new();
    let good = pki.leaf(&["two.test"], -30, 60);
    let bad = pki.leaf(&["two.test"], -85, 5);
    let (good_sha, bad_sha) = (sha256_hex(&good.chain[0]), sha256_hex(&bad.chain[0]));
    let a1 = serve_tls("127.0.0.1", good).await;
    let a2 = serve_tls("127.0.0.2", bad).await;
    let mut resolver = StaticResolver::new();
    resolver.insert("two.test", [a1, a2]);
    let mut opts = options(&pki, &[]);
    opts.resolver = Arc::new(resolver);
    let r = probe_one("two.test", &opts).await;
    assert_status(&r, Status::Critical, Level::Critical);
    assert_eq!(r.days_left, Some(5));
    assert_eq!(r.cert_sha256.as_deref(), Some(bad_sha.as_str()));
    let per_address: Vec<_> = r
        .addresses
        .iter()
        .map(|a| {
            (
                a.address,
                a.status,
                a.days_left,
                a.cert_sha256.clone().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        per_address,
        [
            (a1, Status::Ok, Some(60), good_sha),
            (a2, Status::Critical, Some(5), bad_sha)
        ]
    );
}

/// CT lookup over a fixed set of fingerprints.
struct KnownCerts(Vec<[u8; 32]>);

impl CtLookup for KnownCerts {
    fn seen(&self, cert_sha256: &[u8; 32], _tbs: Option<&[u8; 32]>) -> Option<bool> {
        Some(self.0.contains(cert_sha256))
    }
}

#[tokio::test]
async fn served_certificates_are_looked_up_in_ct() {
    let pki = Pki::new();
    let logged = pki.leaf(&["logged.test"], -10, 80);
    let known: [u8; 32] = Sha256::digest(&logged.chain[0]).into();
    let a1 = serve_tls("127.0.0.1", logged).await;
    let a2 = serve_tls("127.0.0.1", pki.leaf(&["unlogged.test"], -10, 80)).await;
    let mut opts = options(&pki, &[("logged.test", a1), ("unlogged.test", a2)]);
    opts.ct_lookup = Some(Arc::new(KnownCerts(vec![known])));
    opts.tbs_identity = Some(|tbs: &[u8]| Some(Sha256::digest(tbs).into()));
    let targets = ["logged.test", "unlogged.test", "nowhere.test"]
        .map(|t| Target::parse(t, 443).unwrap())
        .to_vec();
    let reports = probe_hosts(targets, &opts).await;
    let seen: Vec<_> = reports
        .iter()
        .map(|r| (r.domain.as_str(), r.seen_in_ct))
        .collect();
    assert_eq!(
        seen,
        [
            ("logged.test", Some(true)),
            ("unlogged.test", Some(false)),
            ("nowhere.test", None)
        ]
    );
    assert_eq!(reports[0].tbs_sha256.as_ref().map(String::len), Some(64));
}

/// Serves a set of named hosts and returns the CLI flags that point the probe at them.
async fn cli_fixture(
    pki: &Pki,
    dir: &tempfile::TempDir,
) -> (Vec<String>, HashMap<&'static str, SocketAddr>) {
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pki.root.pem()).unwrap();
    let mut addrs = HashMap::new();
    addrs.insert(
        "ok.test",
        serve_tls("127.0.0.1", pki.leaf(&["ok.test"], -30, 60)).await,
    );
    addrs.insert(
        "warn.test",
        serve_tls("127.0.0.1", pki.leaf(&["warn.test"], -75, 15)).await,
    );
    addrs.insert(
        "soon.test",
        serve_tls("127.0.0.1", pki.leaf(&["soon.test"], -85, 5)).await,
    );
    let mut flags = vec![
        "--ca-file".to_string(),
        ca.display().to_string(),
        "--no-default-roots".to_string(),
    ];
    for (name, addr) in &addrs {
        flags.push("--resolve".into());
        flags.push(format!("{name}:{}:{}", addr.port(), addr.ip()));
    }
    (flags, addrs)
}

fn check_args(flags: &[String], extra: &[&str]) -> CheckArgs {
    use clap::Parser;
    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: CheckArgs,
    }
    let argv = std::iter::once("check".to_string())
        .chain(flags.iter().cloned())
        .chain(extra.iter().map(|s| s.to_string()));
    Wrapper::try_parse_from(argv).unwrap().args
}

#[tokio::test]
async fn cli_exit_codes_follow_the_worst_level() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let (flags, addrs) = cli_fixture(&pki, &dir).await;
    let target = |name: &str| format!("{name}:{}", addrs[name].port());
    let cases = [
        (vec![target("ok.test")], 0),
        (vec![target("ok.test"), target("warn.test")], 1),
        (
            vec![target("warn.test"), target("soon.test"), target("ok.test")],
            2,
        ),
    ];
    for (domains, want) in cases {
        let extra: Vec<&str> = domains.iter().map(String::as_str).collect();
        let mut out = Vec::new();
        let code = cli::run_to(check_args(&flags, &extra), &mut out, false)
            .await
            .unwrap();
        assert_eq!(code, want, "{domains:?}\n{}", String::from_utf8_lossy(&out));
    }
    // The tool's own failure: a file that does not exist.
    let bad = check_args(&flags, &["-f", "/nonexistent/list.txt"]);
    assert!(cli::run_to(bad, &mut Vec::new(), false).await.is_err());
}

#[tokio::test]
async fn cli_json_and_csv_from_a_file() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let (flags, addrs) = cli_fixture(&pki, &dir).await;
    let list = dir.path().join("hosts.txt");
    let lines = format!(
        "# client A\nok.test:{}\nhttps://soon.test:{}/login  # shop\n",
        addrs["ok.test"].port(),
        addrs["soon.test"].port()
    );
    std::fs::write(&list, lines).unwrap();
    let list = list.display().to_string();

    let mut out = Vec::new();
    let code = cli::run_to(
        check_args(&flags, &["--json", "-f", &list]),
        &mut out,
        false,
    )
    .await;
    assert_eq!(code.unwrap(), 2);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let rows: Vec<(&str, &str, &str, i64)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let s = |k: &str| h[k].as_str().unwrap();
            (
                s("domain"),
                s("status"),
                s("level"),
                h["days_left"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("ok.test", "ok", "OK", 60),
            ("soon.test", "critical", "CRITICAL", 5)
        ]
    );

    let mut out = Vec::new();
    cli::run_to(check_args(&flags, &["--csv", "-f", &list]), &mut out, false)
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("domain,port,status,level,days_left,"));
    let soon = format!(
        "soon.test,{},critical,CRITICAL,5,",
        addrs["soon.test"].port()
    );
    assert!(lines[2].starts_with(&soon), "{text}");
}

#[tokio::test]
async fn binary_exit_codes() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let (flags, addrs) = cli_fixture(&pki, &dir).await;
    let run = |extra: Vec<String>| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_ctwatch"));
        cmd.arg("check").args(&flags).args(extra);
        async move { cmd.output().await.unwrap() }
    };
    let warn = format!("warn.test:{}", addrs["warn.test"].port());
    let out = run(vec![warn.clone()]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.starts_with("DOMAIN"), "{table}");
    assert!(
        table.contains(&format!("{warn}  WARNING  warning")),
        "{table}"
    );

    let out = run(vec!["http://not-tls.test".into()]).await;
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("scheme \"http\" is not TLS"), "{err}");
}
