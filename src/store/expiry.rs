//! Expiry intelligence queries: the CT certificates covering a host, the findings of
//! [`crate::probe::renewal`] (stale deployments, missing renewals) with their lifecycle, and the inventory of
//! valid certificates per domain with the hosts serving them.

use std::collections::{BTreeMap, HashMap};

use rusqlite::{Transaction, params};
use serde::Serialize;

use super::ProbeResultRow;
use super::probe::json_err;
use super::probe_results::{RESULT_COLUMNS, RawResult};
use super::{Store, StoreError, outbox::insert_event, reverse_name};
use crate::event::Event;
use crate::probe::renewal::{CtCertificate, Finding, FindingKind};

/// A finding as the scheduler hands it to [`Store::record_probe`]: what it is about and the event to send
/// if it is new.
#[derive(Debug, Clone)]
pub struct FindingRecord {
    pub finding: Finding,
    pub event: Event,
}

/// The gauges of one probed host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostGauge {
    /// `domain`, or `domain:port` off 443.
    pub host: String,
    pub tags: Vec<String>,
    pub days_left: Option<i64>,
    pub level: crate::probe::Level,
    pub stale_deployment: bool,
}

/// A stored finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FindingRow {
    pub id: i64,
    pub domain: String,
    pub port: u16,
    pub kind: FindingKind,
    pub finding: Finding,
    /// Unix seconds.
    pub raised_at: i64,
    pub updated_at: i64,
    pub resolved_at: Option<i64>,
}

/// Brings the findings of one target in line with `current` (the complete list of what the latest probe
/// found), inside the probe's transaction: a finding not stored yet is inserted and its event queued; a
/// stored finding still present is refreshed; a stored finding no longer present is resolved. A finding is
/// identified by (kind, served certificate), so each is announced once per served certificate, across
/// restarts. Returns the number of events queued.
pub(super) fn apply_findings(
    tx: &Transaction<'_>,
    domain: &str,
    port: u16,
    current: &[FindingRecord],
    routes: &[super::SinkRoute],
    now: i64,
) -> Result<usize, StoreError> {
    let active: Vec<(i64, String, String)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT id, kind, cert_sha256 FROM expiry_findings
             WHERE domain = ?1 AND port = ?2 AND resolved_at IS NULL",
        )?;
        stmt.query_map(params![domain, port], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?
    };
    let mut kept = Vec::new();
    let mut events = 0;
    for rec in current {
        let kind = rec.finding.kind.as_str();
        let sha = &rec.finding.served.cert_sha256;
        let detail = serde_json::to_string(&rec.finding).map_err(json_err("expiry_findings"))?;
        match active.iter().find(|(_, k, c)| k == kind && c == sha) {
            Some((id, _, _)) => {
                tx.execute(
                    "UPDATE expiry_findings SET detail = ?2, updated_at = ?3 WHERE id = ?1",
                    params![id, detail, now],
                )?;
                kept.push(*id);
            }
            None => {
                tx.execute(
                    "INSERT INTO expiry_findings (domain, port, kind, cert_sha256, detail, raised_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                    params![domain, port, kind, sha, detail, now],
                )?;
                kept.push(tx.last_insert_rowid());
                insert_event(tx, &rec.event, routes, now)?;
                events += 1;
            }
        }
    }
    for (id, _, _) in active.iter().filter(|(id, _, _)| !kept.contains(id)) {
        tx.execute(
            "UPDATE expiry_findings SET resolved_at = ?2 WHERE id = ?1",
            params![id, now],
        )?;
    }
    Ok(events)
}

fn placeholder_finding() -> Finding {
    Finding {
        kind: FindingKind::StaleDeployment,
        served: crate::probe::renewal::ServedCertificate {
            cert_sha256: String::new(),
            tbs_sha256: None,
            names: Vec::new(),
            issuer: None,
            not_before: 0,
            not_after: 0,
            seen_in_ct: None,
            addresses: Vec::new(),
        },
        newer: None,
        renewal_due_at: None,
    }
}

impl Store {
    /// Every stored certificate with a name covering `host` (the name itself, or `*.parent`), with its
    /// earliest sighting (proven leaf timestamp, log URL, index).
    pub fn ct_certificates_covering(&self, host: &str) -> Result<Vec<CtCertificate>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.ct_certificates_covering(host);
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let exact = reverse_name(&host);
        let wildcard = host
            .split_once('.')
            .map(|(_, parent)| reverse_name(&format!("*.{parent}")))
            .unwrap_or_default();
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT c.tbs_sha256, c.dns_names, c.ip_addresses, c.issuer, c.not_before, c.not_after,
                    s.timestamp_ms, COALESCE(l.url, ''), s.entry_index
             FROM (SELECT DISTINCT cert_id FROM cert_names WHERE rname IN (?1, ?2)) n
             JOIN certificates c ON c.id = n.cert_id
             JOIN sightings s ON s.cert_id = c.id
             LEFT JOIN logs l ON l.log_id = s.log_id
             WHERE s.timestamp_ms = (SELECT MIN(timestamp_ms) FROM sightings WHERE cert_id = c.id)
             GROUP BY c.id ORDER BY c.not_before",
        )?;
        let rows = stmt
            .query_map(params![exact, wildcard], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, String>(7)?,
                    r.get::<_, i64>(8)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(tbs, dns, ips, issuer, nb, na, ts, log, index)| {
                let mut names: Vec<String> =
                    serde_json::from_str(&dns).map_err(json_err("certificates.dns_names"))?;
                let ips: Vec<String> =
                    serde_json::from_str(&ips).map_err(json_err("certificates.ip_addresses"))?;
                names.extend(ips);
                Ok(CtCertificate {
                    tbs_sha256: hex::encode(tbs),
                    names,
                    issuer,
                    not_before: nb,
                    not_after: na,
                    logged_at: ts.div_euclid(1000),
                    log,
                    index: index as u64,
                })
            })
            .collect()
    }

    /// Findings still open (`active`) or every finding raised or resolved at or after `since`, by domain.
    pub fn expiry_findings(&self, since: Option<i64>) -> Result<Vec<FindingRow>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.expiry_findings(since);
        }
        // (row, kind, detail JSON): decoded outside rusqlite's closure.
        let raw: Vec<(FindingRow, String, String)> = {
            let conn = self.conn();
            let mut stmt = conn.prepare_cached(
                "SELECT id, domain, port, kind, detail, raised_at, updated_at, resolved_at FROM expiry_findings
                 WHERE (?1 IS NULL AND resolved_at IS NULL)
                    OR (?1 IS NOT NULL AND (resolved_at IS NULL OR resolved_at >= ?1 OR raised_at >= ?1))
                 ORDER BY domain, port, id",
            )?;
            stmt.query_map([since], |r| {
                let row = FindingRow {
                    id: r.get(0)?,
                    domain: r.get(1)?,
                    port: r.get::<_, i64>(2)? as u16,
                    kind: FindingKind::StaleDeployment,
                    finding: placeholder_finding(),
                    raised_at: r.get(5)?,
                    updated_at: r.get(6)?,
                    resolved_at: r.get(7)?,
                };
                Ok((row, r.get(3)?, r.get(4)?))
            })?
            .collect::<Result<_, _>>()?
        };
        let mut out = Vec::with_capacity(raw.len());
        for (mut row, kind, detail) in raw {
            // A kind written by a newer ctwatch is skipped, not an error.
            let Some(kind) = FindingKind::parse(&kind) else {
                continue;
            };
            row.kind = kind;
            row.finding = serde_json::from_str(&detail).map_err(json_err("expiry_findings"))?;
            out.push(row);
        }
        Ok(out)
    }

    /// The latest result of every host probed at or before `at` (unix seconds), by (domain, port).
    pub fn latest_probe_results_at(
        &self,
        at: i64,
    ) -> Result<HashMap<(String, u16), ProbeResultRow>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.latest_probe_results_at(at);
        }
        let raw: Vec<RawResult> = {
            let conn = self.conn();
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {RESULT_COLUMNS} FROM probe_results WHERE id IN
                     (SELECT MAX(id) FROM probe_results WHERE probed_at <= ?1 GROUP BY domain, port)"
            ))?;
            stmt.query_map([at], |r| RawResult::read(r, 0))?
                .collect::<Result<_, _>>()?
        };
        raw.into_iter()
            .map(|r| {
                let row = r.decode()?;
                Ok(((row.domain.clone(), row.port), row))
            })
            .collect()
    }

    /// Per probed host (with its latest result): days left, level, tags and whether a stale deployment is
    /// open — the `ctwatch_probe_*{host,tag}` gauges of `/metrics`.
    pub fn host_gauges(&self) -> Result<Vec<HostGauge>, StoreError> {
        let findings = self.active_findings_by_target()?;
        Ok(self
            .probe_status(None)?
            .into_iter()
            .filter_map(|row| {
                let latest = row.latest?;
                let t = row.target;
                let stale = findings
                    .get(&(t.domain.clone(), t.port))
                    .is_some_and(|f| f.iter().any(|f| f.kind == FindingKind::StaleDeployment));
                Some(HostGauge {
                    host: if t.port == 443 {
                        t.domain
                    } else {
                        format!("{}:{}", t.domain, t.port)
                    },
                    tags: t.tags,
                    days_left: latest.days_left,
                    level: latest.level,
                    stale_deployment: stale,
                })
            })
            .collect())
    }

    /// Open findings per (domain, port).
    pub fn active_findings_by_target(
        &self,
    ) -> Result<BTreeMap<(String, u16), Vec<FindingRow>>, StoreError> {
        let mut out: BTreeMap<(String, u16), Vec<FindingRow>> = BTreeMap::new();
        for row in self.expiry_findings(None)? {
            out.entry((row.domain.clone(), row.port))
                .or_default()
                .push(row);
        }
        Ok(out)
    }
}

#[cfg(test)]
#[path = "expiry_tests.rs"]
mod tests;
