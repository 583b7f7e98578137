//! One host: resolve, probe each address, judge each chain, take the worst.

use std::net::SocketAddr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use futures::future::join_all;
use rustls::pki_types::ServerName;
use tokio::sync::Semaphore;

use super::chain::{self, LeafDetails, ServedChain};
#[cfg(test)]
use super::classify::Level;
use super::classify::{self, Status, Verdict};
use super::report::{AddressReport, HostReport};
use super::tls::{ProbeClient, TlsOutcome};
use super::{Families, ProbeOptions, Target};

/// Shared by all probes of one run.
pub(super) struct Context {
    opts: ProbeOptions,
    client: ProbeClient,
    /// Bounds DNS lookups and connections in flight.
    net_slots: Semaphore,
}

impl Context {
    pub(super) fn new(opts: ProbeOptions, width: usize) -> Self {
        Context {
            opts,
            client: ProbeClient::new(),
            net_slots: Semaphore::new(width),
        }
    }
}

pub(super) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub(super) fn rfc3339(unix: i64) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp(unix).ok()?;
    t.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

pub(super) async fn probe_host(ctx: &Context, target: Target) -> HostReport {
    let started = Instant::now();
    let probed_at = unix_now();
    let addrs = match resolve(ctx, &target).await {
        Ok(addrs) => addrs,
        Err(error) => {
            let mut report = host_report(&target, Vec::new(), probed_at, started);
            report.status = Status::DnsError;
            report.level = Status::DnsError.level();
            report.problems = vec![Status::DnsError];
            report.error = Some(error);
            return report;
        }
    };
    let target_ref = &target;
    let probes = addrs.iter().map(|&addr| async move {
        // The policy judges the resolved address and the probe connects to exactly that address: no second
        // lookup that a rebinding DNS server could answer differently.
        match ctx.opts.address_policy.as_ref().map(|p| p.check(addr.ip())) {
            Some(Err(why)) => blocked_address(addr, why),
            _ => probe_address(ctx, target_ref, addr).await,
        }
    });
    let addresses = join_all(probes).await;
    host_report(&target, addresses, probed_at, started)
}

async fn resolve(ctx: &Context, target: &Target) -> Result<Vec<SocketAddr>, String> {
    let timeout = ctx.opts.timeouts.dns;
    let _slot = ctx.net_slots.acquire().await.expect("never closed");
    let lookup = ctx.opts.resolver.resolve(&target.host, target.port);
    let addrs = match tokio::time::timeout(timeout, lookup).await {
        Err(_) => {
            return Err(format!(
                "DNS lookup of {} timed out after {:.1} s",
                target.host,
                timeout.as_secs_f64()
            ));
        }
        Ok(result) => result.map_err(|e| e.to_string())?,
    };
    let wanted: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|a| match ctx.opts.families {
            Families::Any => true,
            Families::V4Only => a.is_ipv4(),
            Families::V6Only => a.is_ipv6(),
        })
        .collect();
    if wanted.is_empty() {
        return Err(format!(
            "{} has no address of the requested family ({:?})",
            target.host, ctx.opts.families
        ));
    }
    Ok(wanted)
}

async fn probe_address(ctx: &Context, target: &Target, addr: SocketAddr) -> AddressReport {
    let name = target.server_name();
    let outcome = {
        let _slot = ctx.net_slots.acquire().await.expect("never closed");
        let t = ctx.opts.timeouts;
        ctx.client
            .fetch_chain(addr, name.clone(), t.connect, t.handshake)
            .await
    };
    let mut report = address_report(addr, outcome, &name, &ctx.opts, unix_now());
    if let (Some(lookup), Some(sha)) = (&ctx.opts.ct_lookup, &report.cert_sha256) {
        let lookup = lookup.clone();
        let sha = decode32(sha);
        let tbs = report.tbs_sha256.as_deref().and_then(decode32);
        if let Some(sha) = sha {
            report.seen_in_ct =
                tokio::task::spawn_blocking(move || lookup.seen(&sha, tbs.as_ref()))
                    .await
                    .ok()
                    .flatten();
        }
    }
    report
}

/// The report of an address the policy refused: nothing was sent to it.
fn blocked_address(addr: SocketAddr, why: super::address::Blocked) -> AddressReport {
    let mut r = empty_address(addr);
    let error = format!(
        "{} is {}: not probed (allow its range with [api] allow_targets)",
        addr.ip(),
        why.describe()
    );
    set_status(&mut r, vec![Status::BlockedAddress], Some(error));
    r
}

fn decode32(s: &str) -> Option<[u8; 32]> {
    hex::decode(s).ok()?.try_into().ok()
}

/// Judges what one address did (pure apart from its inputs).
pub(super) fn address_report(
    address: SocketAddr,
    outcome: TlsOutcome,
    name: &ServerName<'_>,
    opts: &ProbeOptions,
    now: i64,
) -> AddressReport {
    let mut r = empty_address(address);
    let (chain, handshake_error) = match outcome {
        TlsOutcome::Unreachable { error, no_route } => {
            r.counted = !no_route;
            set_status(&mut r, vec![Status::Unreachable], Some(error));
            return r;
        }
        TlsOutcome::HandshakeFailed { error, chain } => (chain, Some(error)),
        TlsOutcome::Served { chain, tls_version } => {
            r.tls_version = Some(tls_version);
            (Some(chain), None)
        }
    };
    let mut problems = Vec::new();
    if handshake_error.is_some() {
        problems.push(Status::HandshakeFailed);
    }
    let mut errors: Vec<String> = handshake_error.into_iter().collect();
    if let Some(chain) = chain {
        judge_chain(&mut r, &chain, name, opts, now, &mut problems, &mut errors);
    }
    problems.sort_by(|a, b| b.cmp(a));
    problems.dedup();
    let error = (!errors.is_empty()).then(|| errors.join("; "));
    set_status(&mut r, problems, error);
    r
}

fn judge_chain(
    r: &mut AddressReport,
    chain: &ServedChain,
    name: &ServerName<'_>,
    opts: &ProbeOptions,
    now: i64,
    problems: &mut Vec<Status>,
    errors: &mut Vec<String>,
) {
    r.chain_len = 1 + chain.intermediates.len();
    let leaf = match chain::leaf_details(&chain.end_entity, opts.tbs_identity) {
        Ok(leaf) => leaf,
        Err(e) => {
            problems.push(Status::Untrusted);
            errors.push(e.to_string());
            return;
        }
    };
    let facts = chain::chain_facts(chain, &leaf, name, &opts.roots, now);
    let verdict = classify::classify(&facts, now, &opts.thresholds);
    errors.extend(explain(&verdict, &facts, &leaf, name));
    problems.extend(verdict.problems.iter().copied());
    fill_cert(r, &leaf, verdict.days_left);
}

fn fill_cert(r: &mut AddressReport, leaf: &LeafDetails, days_left: i64) {
    r.days_left = Some(days_left);
    r.not_before = rfc3339(leaf.not_before);
    r.not_after = rfc3339(leaf.not_after);
    r.issuer = Some(leaf.issuer.clone());
    r.subject = Some(leaf.subject.clone());
    r.sans = leaf.sans.clone();
    r.cert_sha256 = Some(hex::encode(leaf.cert_sha256));
    r.tbs_sha256 = leaf.tbs_sha256.map(hex::encode);
}

/// One sentence per certificate problem; expiry levels need none (days_left says it).
fn explain(
    v: &Verdict,
    facts: &classify::ChainFacts,
    leaf: &LeafDetails,
    name: &ServerName<'_>,
) -> Vec<String> {
    let date = |t: i64| rfc3339(t).unwrap_or_else(|| t.to_string());
    let mut out = Vec::new();
    for p in &v.problems {
        match p {
            Status::Expired => out.push(format!("certificate expired at {}", date(leaf.not_after))),
            Status::NotYetValid => out.push(format!(
                "certificate not valid before {}",
                date(leaf.not_before)
            )),
            Status::Untrusted => {
                if let classify::Trust::Untrusted { reason } = &facts.trust {
                    out.push(reason.clone());
                }
            }
            Status::HostnameMismatch => {
                let shown: Vec<&str> = leaf.sans.iter().take(5).map(String::as_str).collect();
                let more = leaf.sans.len().saturating_sub(5);
                let tail = if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                };
                out.push(format!(
                    "certificate is not valid for {} (it names: {}{tail})",
                    name.to_str(),
                    if shown.is_empty() {
                        "no DNS names".to_string()
                    } else {
                        shown.join(", ")
                    }
                ));
            }
            _ => {}
        }
    }
    out
}

fn set_status(r: &mut AddressReport, problems: Vec<Status>, error: Option<String>) {
    r.status = problems.first().copied().unwrap_or(Status::Ok);
    r.level = r.status.level();
    r.problems = problems;
    r.error = error;
}

fn empty_address(address: SocketAddr) -> AddressReport {
    AddressReport {
        address,
        status: Status::Ok,
        level: Status::Ok.level(),
        counted: true,
        days_left: None,
        not_before: None,
        not_after: None,
        issuer: None,
        subject: None,
        sans: Vec::new(),
        cert_sha256: None,
        tbs_sha256: None,
        seen_in_ct: None,
        chain_len: 0,
        tls_version: None,
        problems: Vec::new(),
        error: None,
    }
}

/// The host takes the worst counted address; its certificate fields come from the worst
/// address that served one (fewest days left on a tie).
pub(super) fn host_report(
    target: &Target,
    addresses: Vec<AddressReport>,
    probed_at: i64,
    started: Instant,
) -> HostReport {
    let counted: Vec<&AddressReport> = addresses.iter().filter(|a| a.counted).collect();
    let status = classify::worst(counted.iter().map(|a| a.status)).unwrap_or(Status::Unreachable);
    let worst_addr = counted
        .iter()
        .copied()
        .find(|a| a.status == status)
        .or(addresses.first());
    let with_cert = counted
        .iter()
        .copied()
        .filter(|a| a.cert_sha256.is_some())
        .max_by(|a, b| a.status.cmp(&b.status).then(b.days_left.cmp(&a.days_left)));
    let mut problems: Vec<Status> = counted.iter().flat_map(|a| a.problems.clone()).collect();
    problems.sort_by(|a, b| b.cmp(a));
    problems.dedup();
    if counted.is_empty() {
        problems.push(Status::Unreachable);
    }
    let error = worst_addr.and_then(|a| {
        let e = a.error.as_ref()?;
        Some(if addresses.len() > 1 {
            format!("{}: {e}", a.address)
        } else {
            e.clone()
        })
    });
    let cert = |f: fn(&AddressReport) -> Option<String>| with_cert.and_then(f);
    HostReport {
        domain: target.host.clone(),
        port: target.port,
        status,
        level: status.level(),
        days_left: with_cert.and_then(|a| a.days_left),
        not_before: cert(|a| a.not_before.clone()),
        not_after: cert(|a| a.not_after.clone()),
        issuer: cert(|a| a.issuer.clone()),
        subject: cert(|a| a.subject.clone()),
        sans: with_cert.map(|a| a.sans.clone()).unwrap_or_default(),
        cert_sha256: cert(|a| a.cert_sha256.clone()),
        tbs_sha256: cert(|a| a.tbs_sha256.clone()),
        seen_in_ct: with_cert.and_then(|a| a.seen_in_ct),
        problems,
        error,
        probed_at: rfc3339(probed_at).unwrap_or_default(),
        duration_ms: started.elapsed().as_millis() as u64,
        addresses,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::TrustRoots;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    /// Real GTS WE1 chain for cloudflare.com, valid 2025-09-10T18:11:56Z .. 2025-12-09T19:11:41Z
    /// (90 days and 59 min 45 s).
    fn real_chain() -> ServedChain {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/probe/cloudflaressl_we1_chain.pem"
        );
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        ServedChain {
            end_entity: certs[0].clone(),
            intermediates: certs[1..].to_vec(),
            ocsp_response: Vec::new(),
        }
    }

    fn opts() -> ProbeOptions {
        ProbeOptions {
            roots: std::sync::Arc::new(TrustRoots::webpki()),
            ..ProbeOptions::default()
        }
    }

    const NOT_BEFORE: i64 = 1_757_527_916; // 2025-09-10T18:11:56Z
    const V4: &str = "192.0.2.1:443";
    const V6: &str = "[2001:db8::1]:443";

    fn name() -> ServerName<'static> {
        ServerName::try_from("cloudflare.com").unwrap()
    }

    fn served(now: i64) -> AddressReport {
        let outcome = TlsOutcome::Served {
            chain: real_chain(),
            tls_version: "TLSv1.3".into(),
        };
        address_report(V4.parse().unwrap(), outcome, &name(), &opts(), now)
    }

    fn unreachable(addr: &str, no_route: bool) -> AddressReport {
        let outcome = TlsOutcome::Unreachable {
            error: "connect failed: Network is unreachable".into(),
            no_route,
        };
        address_report(addr.parse().unwrap(), outcome, &name(), &opts(), NOT_BEFORE)
    }

    #[test]
    fn real_chain_thirty_days_in_is_ok() {
        let r = served(NOT_BEFORE + 30 * 86_400);
        assert_eq!(
            (r.status, r.days_left, r.chain_len),
            (Status::Ok, Some(60), 3)
        );
        assert_eq!(r.not_after.as_deref(), Some("2025-12-09T19:11:41Z"));
        assert_eq!(
            r.issuer.as_deref(),
            Some("C=US, O=Google Trust Services, CN=WE1")
        );
        assert_eq!(r.error, None);
    }

    #[test]
    fn real_chain_after_expiry() {
        let r = served(NOT_BEFORE + 100 * 86_400);
        assert_eq!((r.status, r.days_left), (Status::Expired, Some(-10)));
        assert_eq!(
            r.error.as_deref(),
            Some("certificate expired at 2025-12-09T19:11:41Z")
        );
    }

    #[test]
    fn failed_handshake_keeps_the_chain_it_saw() {
        let outcome = TlsOutcome::HandshakeFailed {
            error: "TLS handshake failed: bad signature".into(),
            chain: Some(real_chain()),
        };
        let now = NOT_BEFORE + 100 * 86_400;
        let r = address_report(V4.parse().unwrap(), outcome, &name(), &opts(), now);
        assert_eq!(r.problems, [Status::Expired, Status::HandshakeFailed]);
        assert_eq!(r.status, Status::Expired);
        assert!(r.cert_sha256.is_some());
        assert_eq!(
            r.error.as_deref(),
            Some(
                "TLS handshake failed: bad signature; \
                 certificate expired at 2025-12-09T19:11:41Z"
            )
        );
    }

    #[test]
    fn unroutable_ipv6_does_not_count_against_the_host() {
        let target = Target::parse("cloudflare.com", 443).unwrap();
        let ok = served(NOT_BEFORE + 30 * 86_400);
        let host = host_report(&target, vec![ok, unreachable(V6, true)], 0, Instant::now());
        assert_eq!((host.status, host.level), (Status::Ok, Level::Ok));
        assert_eq!(host.days_left, Some(60));
        assert!(!host.addresses[1].counted);

        let host = host_report(&target, vec![unreachable(V6, true)], 0, Instant::now());
        assert_eq!(host.status, Status::Unreachable);
        assert_eq!(
            host.error.as_deref(),
            Some("connect failed: Network is unreachable")
        );
    }

    #[test]
    fn host_error_names_the_failing_address() {
        let target = Target::parse("cloudflare.com", 443).unwrap();
        let ok = served(NOT_BEFORE + 30 * 86_400);
        let host = host_report(&target, vec![ok, unreachable(V4, false)], 0, Instant::now());
        assert_eq!(host.status, Status::Unreachable);
        assert_eq!(
            host.error.as_deref(),
            Some("192.0.2.1:443: connect failed: Network is unreachable")
        );
        // The certificate fields come from the address that served one.
        assert_eq!(host.days_left, Some(60));
        assert_eq!(host.problems, [Status::Unreachable]);
    }
}
