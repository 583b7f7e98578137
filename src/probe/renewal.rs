//! What a host serves compared with what CT holds (pure): renewed-but-not-deployed certificates
//! (`stale_deployment`) and renewals that never happened (`renewal_missing`).
//!
//! ctwatch sees both sides: the certificates CAs logged (CT) and the certificate each host serves (the
//! probe). Two silent failures show up only when both are compared, long before anything expires:
//!
//! - **stale_deployment**: a host serves certificate A while CT holds a newer certificate B (later
//!   notBefore, valid now) whose names include every name of A and cover the host, logged more than
//!   `deploy_grace_secs` ago: the renewal ran, the deployment did not (a web server not reloaded, a
//!   load balancer or CDN with its own copy).
//! - **renewal_missing**: the served certificate has passed `renewal_due_fraction` (2/3) of its lifetime and
//!   CT holds no newer certificate covering the host: the renewal job is probably broken. Only judged for a
//!   served certificate this ctwatch saw in CT itself (`seen_in_ct`): then it was following the logs when A
//!   was issued and would have seen a renewal logged since. For certificates of private CAs, or issued
//!   before ctwatch started, it cannot tell and says nothing.
//!
//! "Logged at" is the timestamp of the Merkle leaf (what the log's signed tree proves), never the local
//! clock of the ctwatch that read it.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::report::HostReport;
use crate::event::{Event, PAYLOAD_VERSION, rfc3339};

/// Knobs of the two rules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RenewalPolicy {
    /// A newer certificate gets this long after it was logged to be deployed before the host counts as
    /// stale. Default 24 h (`deploy_grace_hours`).
    pub deploy_grace_secs: i64,
    /// A renewal is due once this fraction of the served certificate's lifetime has passed. Default 2/3
    /// (when ACME clients renew); range (0, 1).
    pub renewal_due_fraction: f64,
}

impl Default for RenewalPolicy {
    fn default() -> Self {
        RenewalPolicy {
            deploy_grace_secs: 24 * 3600,
            renewal_due_fraction: 2.0 / 3.0,
        }
    }
}

impl RenewalPolicy {
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=8760.0 * 3600.0).contains(&(self.deploy_grace_secs as f64)) {
            return Err(format!(
                "deploy grace of {} s is out of range [0, 8760 h]",
                self.deploy_grace_secs
            ));
        }
        if !(self.renewal_due_fraction > 0.0 && self.renewal_due_fraction < 1.0) {
            return Err(format!(
                "renewal due fraction {} is out of range (0, 1)",
                self.renewal_due_fraction
            ));
        }
        Ok(())
    }
}

/// A certificate known from CT (precertificate and certificate folded into one by TBS identity).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CtCertificate {
    /// Hex.
    pub tbs_sha256: String,
    /// DNS names and IP addresses of the certificate.
    pub names: Vec<String>,
    pub issuer: String,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// The earliest log timestamp of any sighting (the proven leaf timestamp), unix seconds.
    pub logged_at: i64,
    /// The log of that earliest sighting (URL) and the entry index in it.
    pub log: String,
    pub index: u64,
}

/// One certificate a host serves, with the addresses serving it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServedCertificate {
    pub cert_sha256: String,
    pub tbs_sha256: Option<String>,
    pub names: Vec<String>,
    pub issuer: Option<String>,
    pub not_before: i64,
    pub not_after: i64,
    pub seen_in_ct: Option<bool>,
    pub addresses: Vec<SocketAddr>,
}

impl ServedCertificate {
    /// The distinct certificates of a probe report: one per served leaf over the counted addresses (a
    /// load balancer half-way through a deployment serves two), or the host-level one when the report has
    /// no per-address detail.
    pub fn from_report(r: &HostReport) -> Vec<ServedCertificate> {
        let mut out: Vec<ServedCertificate> = Vec::new();
        for a in r.addresses.iter().filter(|a| a.counted) {
            let (Some(sha), Some(nb), Some(na)) = (&a.cert_sha256, &a.not_before, &a.not_after)
            else {
                continue;
            };
            if let Some(known) = out.iter_mut().find(|s| &s.cert_sha256 == sha) {
                known.addresses.push(a.address);
                continue;
            }
            let (Some(not_before), Some(not_after)) = (parse_time(nb), parse_time(na)) else {
                continue;
            };
            out.push(ServedCertificate {
                cert_sha256: sha.clone(),
                tbs_sha256: a.tbs_sha256.clone(),
                names: a.sans.clone(),
                issuer: a.issuer.clone(),
                not_before,
                not_after,
                seen_in_ct: a.seen_in_ct,
                addresses: vec![a.address],
            });
        }
        if out.is_empty()
            && let (Some(sha), Some(nb), Some(na)) = (
                &r.cert_sha256,
                r.not_before.as_deref().and_then(parse_time),
                r.not_after.as_deref().and_then(parse_time),
            )
        {
            out.push(ServedCertificate {
                cert_sha256: sha.clone(),
                tbs_sha256: r.tbs_sha256.clone(),
                names: r.sans.clone(),
                issuer: r.issuer.clone(),
                not_before: nb,
                not_after: na,
                seen_in_ct: r.seen_in_ct,
                addresses: Vec::new(),
            });
        }
        out
    }
}

/// RFC 3339 -> unix seconds.
pub fn parse_time(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// Kind of a finding, as it appears in events, reports and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    StaleDeployment,
    RenewalMissing,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::StaleDeployment => "stale_deployment",
            FindingKind::RenewalMissing => "renewal_missing",
        }
    }

    pub fn parse(s: &str) -> Option<FindingKind> {
        match s {
            "stale_deployment" => Some(FindingKind::StaleDeployment),
            "renewal_missing" => Some(FindingKind::RenewalMissing),
            _ => None,
        }
    }
}

/// Something wrong with a served certificate given what CT holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub served: ServedCertificate,
    /// stale_deployment: the newer certificate that is not deployed.
    pub newer: Option<CtCertificate>,
    /// renewal_missing: when the renewal was due (unix seconds).
    pub renewal_due_at: Option<i64>,
}

/// The findings for one host, and when to look again because a verdict will change by then without
/// anything new happening (a grace period ends, a renewal falls due).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Assessment {
    pub findings: Vec<Finding>,
    pub recheck_at: Option<i64>,
}

/// Whether certificate name `name` covers host `host` (exactly, or as a one-label wildcard).
pub fn covers(name: &str, host: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if name == host {
        return true;
    }
    match (name.strip_prefix("*."), host.split_once('.')) {
        (Some(parent), Some((label, rest))) => !label.is_empty() && parent == rest,
        _ => false,
    }
}

fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// B is a renewal candidate for A on `host`: another certificate, issued later, covering the host.
fn newer_covering(b: &CtCertificate, a: &ServedCertificate, host: &str) -> bool {
    let same = a
        .tbs_sha256
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case(&b.tbs_sha256));
    !same && b.not_before > a.not_before && b.names.iter().any(|n| covers(n, host))
}

/// Assesses what `host` serves against the CT certificates covering it, at `now`.
pub fn assess(
    host: &str,
    served: &[ServedCertificate],
    ct: &[CtCertificate],
    now: i64,
    policy: &RenewalPolicy,
) -> Assessment {
    let mut out = Assessment::default();
    let mut recheck = |at: i64| {
        out.recheck_at = Some(out.recheck_at.map_or(at, |r: i64| r.min(at)));
    };
    let mut findings = Vec::new();
    for a in served {
        let newer: Vec<&CtCertificate> = ct.iter().filter(|b| newer_covering(b, a, host)).collect();
        // stale_deployment: a valid newer certificate with every name of A, logged long enough ago.
        let mut replacement: Option<&CtCertificate> = None;
        for b in newer.iter().copied() {
            let superset = a
                .names
                .iter()
                .all(|n| b.names.iter().any(|m| same_name(m, n)));
            if !superset || b.not_after <= now {
                continue;
            }
            let deadline = b
                .logged_at
                .saturating_add(policy.deploy_grace_secs)
                .max(b.not_before);
            if deadline > now {
                recheck(deadline);
            } else if replacement.is_none_or(|r| b.not_before > r.not_before) {
                replacement = Some(b);
            }
        }
        if let Some(b) = replacement {
            findings.push(Finding {
                kind: FindingKind::StaleDeployment,
                served: a.clone(),
                newer: Some(b.clone()),
                renewal_due_at: None,
            });
        }
        // renewal_missing: past the due point, nothing newer in CT, and CT would have shown a renewal.
        let lifetime = a.not_after - a.not_before;
        if a.seen_in_ct != Some(true) || lifetime <= 0 {
            continue;
        }
        let due = a.not_before + (lifetime as f64 * policy.renewal_due_fraction).round() as i64;
        if now < due {
            recheck(due);
        } else if newer.is_empty() {
            findings.push(Finding {
                kind: FindingKind::RenewalMissing,
                served: a.clone(),
                newer: None,
                renewal_due_at: Some(due),
            });
        }
    }
    out.findings = findings;
    out
}

/// The outbox event announcing a new finding (kind `stale_deployment` or `renewal_missing`): `title` and
/// `message` for chat sinks, and every field a script or ticketing system needs.
pub fn finding_event(f: &Finding, domain: &str, port: u16, tags: &[String], now: i64) -> Event {
    let host = if port == 443 {
        domain.to_string()
    } else {
        format!("{domain}:{port}")
    };
    let a = &f.served;
    let days_left = (a.not_after - now).div_euclid(86_400);
    let issuer = a.issuer.as_deref().unwrap_or("-");
    let (title, message) = match (&f.kind, &f.newer) {
        (FindingKind::StaleDeployment, Some(b)) => (
            format!("{host}: renewed but not deployed"),
            format!(
                "{host} serves a certificate expiring {} ({days_left} day(s) left, issuer {issuer}) although a \
                 newer certificate for the same names (valid from {}, issuer {}) was logged at {} in {} #{}: \
                 the renewal ran, the deployment did not.",
                rfc3339(a.not_after),
                rfc3339(b.not_before),
                b.issuer,
                rfc3339(b.logged_at),
                b.log,
                b.index
            ),
        ),
        _ => (
            format!("{host}: renewal missing"),
            format!(
                "{host} serves a certificate expiring {} ({days_left} day(s) left, issuer {issuer}) that passed \
                 the point where it should have been renewed ({}), and no newer certificate for it appeared in \
                 CT: the renewal job has probably failed.",
                rfc3339(a.not_after),
                f.renewal_due_at.map_or_else(|| "-".into(), rfc3339)
            ),
        ),
    };
    let newer = f.newer.as_ref().map(|b| {
        json!({
            "tbs_sha256": b.tbs_sha256,
            "names": b.names,
            "issuer": b.issuer,
            "not_before": rfc3339(b.not_before),
            "not_after": rfc3339(b.not_after),
            "logged_at": rfc3339(b.logged_at),
            "log": b.log,
            "index": b.index,
        })
    });
    let payload = json!({
        "version": PAYLOAD_VERSION,
        "kind": f.kind.as_str(),
        "title": title,
        "message": message,
        "domain": domain,
        "port": port,
        "days_left": days_left,
        "served": {
            "cert_sha256": a.cert_sha256,
            "tbs_sha256": a.tbs_sha256,
            "names": a.names,
            "issuer": a.issuer,
            "not_before": rfc3339(a.not_before),
            "not_after": rfc3339(a.not_after),
            "addresses": a.addresses.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
        },
        "newer": newer,
        "renewal_due_at": f.renewal_due_at.map(rfc3339),
        "timestamp": rfc3339(now),
        "tags": tags,
    });
    let group = tags.first().map_or(domain, String::as_str);
    Event {
        kind: f.kind.as_str().to_string(),
        group_key: format!("{}|{group}", f.kind.as_str()),
        tags: tags.to_vec(),
        payload,
    }
}

#[cfg(test)]
#[path = "renewal_tests.rs"]
mod tests;
