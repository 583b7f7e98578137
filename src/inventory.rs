//! `ctwatch inventory [DOMAIN]`: per watched domain, every currently valid certificate known from CT
//! (precertificate and certificate folded into one), which hosts serve it (from the probe history), the
//! wildcard certificates with every host where each is served, and the certificates issued but never seen
//! served — the certificates to revoke, or the deployments that never happened.
//!
//! Without DOMAIN, the domains are the registrable domains (`example.co.uk`) of the names of certificates
//! that matched the watchlist; with DOMAIN, every stored certificate with a name at or under it.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Context;
use serde::Serialize;

use crate::cli::DbArg;
use crate::event::rfc3339;
use crate::store::{ServedRow, ValidCertificate, unix_now};

#[derive(Debug, Clone, clap::Args)]
pub struct InventoryArgs {
    /// Only this domain and the names under it (default: every watched domain).
    pub domain: Option<String>,
    #[command(flatten)]
    pub db: DbArg,
    #[command(flatten)]
    pub config: crate::database::ConfigArg,
    /// Print JSON.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV with a header line (one row per domain and certificate).
    #[arg(long)]
    pub csv: bool,
}

/// A host that served a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServedBy {
    pub host: String,
    pub port: u16,
    /// The host's latest probe serves it.
    pub serving_now: bool,
    /// RFC 3339 UTC of the last probe that saw it.
    pub last_served_at: String,
}

/// One valid certificate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InventoryCert {
    pub tbs_sha256: String,
    /// DER fingerprints logged for it (precertificate, certificate).
    pub cert_sha256: Vec<String>,
    /// `precert`, `x509` or both: how it was logged.
    pub logged_as: Vec<String>,
    pub issuer: String,
    pub serial: String,
    pub not_before: String,
    pub not_after: String,
    pub days_left: i64,
    pub names: Vec<String>,
    pub wildcard: bool,
    pub first_logged_at: String,
    pub log: String,
    pub index: u64,
    pub tags: Vec<String>,
    pub served_by: Vec<ServedBy>,
    pub never_served: bool,
}

/// The certificates of one domain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DomainInventory {
    pub domain: String,
    pub certificates: Vec<InventoryCert>,
    /// `tbs_sha256` of the wildcard certificates (their hosts are in `served_by`).
    pub wildcards: Vec<String>,
    /// `tbs_sha256` of the certificates no probe ever saw served.
    pub never_served: Vec<String>,
}

fn registrable(name: &str) -> String {
    let name = name.trim_start_matches("*.");
    psl::domain_str(name).unwrap_or(name).to_string()
}

/// Whether a served row is this certificate: by DER fingerprint, or by TBS identity (the probe sees the
/// final certificate, CT may only hold the precertificate).
fn is_served(cert: &ValidCertificate, row: &ServedRow) -> bool {
    cert.fingerprints
        .iter()
        .any(|(fp, _)| fp == &row.cert_sha256)
        || row.tbs_sha256.as_deref() == Some(cert.tbs_sha256.as_str())
}

fn inventory_cert(c: &ValidCertificate, served: &[ServedRow], now: i64) -> InventoryCert {
    let served_by: Vec<ServedBy> = served
        .iter()
        .filter(|r| is_served(c, r))
        .map(|r| ServedBy {
            host: r.domain.clone(),
            port: r.port,
            serving_now: r.serving_now,
            last_served_at: rfc3339(r.last_served_at),
        })
        .collect();
    let mut names = c.dns_names.clone();
    names.extend(c.ip_addresses.iter().cloned());
    let mut logged_as: Vec<String> = c.fingerprints.iter().map(|(_, t)| t.clone()).collect();
    logged_as.dedup();
    InventoryCert {
        tbs_sha256: c.tbs_sha256.clone(),
        cert_sha256: c.fingerprints.iter().map(|(fp, _)| fp.clone()).collect(),
        logged_as,
        issuer: c.issuer.clone(),
        serial: c.serial.clone(),
        not_before: rfc3339(c.not_before),
        not_after: rfc3339(c.not_after),
        days_left: (c.not_after - now).div_euclid(86_400),
        wildcard: c.dns_names.iter().any(|n| n.starts_with("*.")),
        names,
        first_logged_at: rfc3339(c.logged_at),
        log: c.log.clone(),
        index: c.index,
        tags: c.tags.clone(),
        never_served: served_by.is_empty(),
        served_by,
    }
}

/// Groups the certificates by domain (`only` or the registrable domains of their names).
pub fn build(
    certs: &[ValidCertificate],
    served: &[ServedRow],
    only: Option<&str>,
    now: i64,
) -> Vec<DomainInventory> {
    let mut by_domain: BTreeMap<String, Vec<InventoryCert>> = BTreeMap::new();
    for c in certs {
        let item = inventory_cert(c, served, now);
        let mut domains: Vec<String> = match only {
            Some(d) => vec![d.trim().trim_end_matches('.').to_ascii_lowercase()],
            None => c.dns_names.iter().map(|n| registrable(n)).collect(),
        };
        domains.sort();
        domains.dedup();
        for d in domains {
            by_domain.entry(d).or_default().push(item.clone());
        }
    }
    by_domain
        .into_iter()
        .map(|(domain, certificates)| DomainInventory {
            wildcards: certificates
                .iter()
                .filter(|c| c.wildcard)
                .map(|c| c.tbs_sha256.clone())
                .collect(),
            never_served: certificates
                .iter()
                .filter(|c| c.never_served)
                .map(|c| c.tbs_sha256.clone())
                .collect(),
            domain,
            certificates,
        })
        .collect()
}

fn served_text(c: &InventoryCert) -> String {
    if c.served_by.is_empty() {
        return "NEVER SEEN SERVED".into();
    }
    c.served_by
        .iter()
        .map(|s| {
            let host = if s.port == 443 {
                s.host.clone()
            } else {
                format!("{}:{}", s.host, s.port)
            };
            if s.serving_now {
                host
            } else {
                format!(
                    "{host} (until {})",
                    &s.last_served_at[..10.min(s.last_served_at.len())]
                )
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The text form: per domain a heading and one block per certificate.
pub fn write_text(out: &mut dyn Write, inv: &[DomainInventory]) -> std::io::Result<()> {
    if inv.is_empty() {
        writeln!(out, "no valid certificates known from CT")?;
    }
    for d in inv {
        writeln!(
            out,
            "== {}: {} valid certificate(s), {} wildcard, {} never seen served ==",
            d.domain,
            d.certificates.len(),
            d.wildcards.len(),
            d.never_served.len()
        )?;
        for c in &d.certificates {
            writeln!(
                out,
                "{}  {} days  {}  {}  [{}]  {}",
                &c.not_after[..10.min(c.not_after.len())],
                c.days_left,
                crate::probe::report::short_name(&c.issuer),
                &c.tbs_sha256[..16.min(c.tbs_sha256.len())],
                c.logged_as.join("+"),
                c.names.join(", ")
            )?;
            writeln!(out, "    served by: {}", served_text(c))?;
        }
        writeln!(out)?;
    }
    Ok(())
}

const CSV_HEADER: &str = "domain,tbs_sha256,issuer,serial,not_before,not_after,days_left,wildcard,logged_as,\
names,served_by,serving_now,never_served";

pub fn write_csv(out: &mut dyn Write, inv: &[DomainInventory]) -> std::io::Result<()> {
    writeln!(out, "{CSV_HEADER}")?;
    let q = |s: &str| {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    for d in inv {
        for c in &d.certificates {
            let hosts = |now_only: bool| {
                c.served_by
                    .iter()
                    .filter(|s| !now_only || s.serving_now)
                    .map(|s| s.host.clone())
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let fields = [
                d.domain.clone(),
                c.tbs_sha256.clone(),
                c.issuer.clone(),
                c.serial.clone(),
                c.not_before.clone(),
                c.not_after.clone(),
                c.days_left.to_string(),
                c.wildcard.to_string(),
                c.logged_as.join(" "),
                c.names.join(" "),
                hosts(false),
                hosts(true),
                c.never_served.to_string(),
            ];
            let line: Vec<String> = fields.iter().map(|f| q(f)).collect();
            writeln!(out, "{}", line.join(","))?;
        }
    }
    Ok(())
}

/// `ctwatch inventory`. Exit 0 once written, 3 on failure.
pub fn inventory_command(args: InventoryArgs) -> anyhow::Result<u8> {
    let store = crate::database::open_read_only(&args.db, &args.config)?;
    let now = unix_now();
    let domain = args.domain.as_deref();
    let certs = store
        .valid_certificates(domain, now)
        .context("reading certificates")?;
    let served = store
        .served_certificates()
        .context("reading probe history")?;
    let inv = build(&certs, &served, domain, now);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &inv)?;
        writeln!(out)?;
    } else if args.csv {
        write_csv(&mut out, &inv)?;
    } else {
        write_text(&mut out, &inv)?;
    }
    out.flush().context("writing the inventory")?;
    Ok(0)
}

#[cfg(test)]
#[path = "inventory_tests.rs"]
mod tests;
