//! Expiry findings on PostgreSQL (see `store/expiry.rs`).

use std::collections::HashMap;

use deadpool_postgres::GenericClient;

use super::PgStore;
use super::outbox::insert_event;
use super::probe_results::raw_result;
use crate::probe::renewal::{CtCertificate, FindingKind};
use crate::store::probe::json_err;
use crate::store::probe_results::RESULT_COLUMNS;
use crate::store::{
    FindingRecord, FindingRow, ProbeResultRow, SinkRoute, StoreError, reverse_name,
};

/// Replace the active findings of one target by `current` (see the SQLite twin for the rules). Returns the
/// number of events queued.
pub(super) async fn apply_findings(
    c: &impl GenericClient,
    domain: &str,
    port: u16,
    current: &[FindingRecord],
    routes: &[SinkRoute],
    now: i64,
) -> Result<usize, StoreError> {
    let port = port as i64;
    let active: Vec<(i64, String, String)> = c
        .query(
            "SELECT id, kind, cert_sha256 FROM expiry_findings
             WHERE domain = $1 AND port = $2 AND resolved_at IS NULL ORDER BY id",
            &[&domain, &port],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let mut kept = Vec::new();
    let mut events = 0;
    for rec in current {
        let kind = rec.finding.kind.as_str();
        let sha = &rec.finding.served.cert_sha256;
        let detail = serde_json::to_string(&rec.finding).map_err(json_err("expiry_findings"))?;
        match active.iter().find(|(_, k, c)| k == kind && c == sha) {
            Some((id, _, _)) => {
                c.execute(
                    "UPDATE expiry_findings SET detail = $2, updated_at = $3 WHERE id = $1",
                    &[id, &detail, &now],
                )
                .await?;
                kept.push(*id);
            }
            None => {
                let id: i64 = c
                    .query_one(
                        "INSERT INTO expiry_findings (domain, port, kind, cert_sha256, detail, raised_at, updated_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
                        &[&domain, &port, &kind, sha, &detail, &now],
                    )
                    .await?
                    .get(0);
                kept.push(id);
                insert_event(c, &rec.event, routes, now).await?;
                events += 1;
            }
        }
    }
    for (id, _, _) in active.iter().filter(|(id, _, _)| !kept.contains(id)) {
        c.execute(
            "UPDATE expiry_findings SET resolved_at = $2 WHERE id = $1",
            &[id, &now],
        )
        .await?;
    }
    Ok(events)
}

impl PgStore {
    pub fn ct_certificates_covering(&self, host: &str) -> Result<Vec<CtCertificate>, StoreError> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let exact = reverse_name(&host);
        let wildcard = host
            .split_once('.')
            .map(|(_, parent)| reverse_name(&format!("*.{parent}")))
            .unwrap_or_default();
        // SQLite's `GROUP BY c.id` with bare columns: one earliest sighting per certificate.
        let rows = self.with_client(async |c| {
            Ok(c.query(
                "SELECT * FROM (
                     SELECT DISTINCT ON (c.id) c.tbs_sha256, c.dns_names, c.ip_addresses, c.issuer, c.not_before,
                            c.not_after, s.timestamp_ms, COALESCE(l.url, ''), s.entry_index, c.id
                     FROM (SELECT DISTINCT cert_id FROM cert_names WHERE rname IN ($1, $2)) n
                     JOIN certificates c ON c.id = n.cert_id
                     JOIN sightings s ON s.cert_id = c.id
                     LEFT JOIN logs l ON l.log_id = s.log_id
                     WHERE s.timestamp_ms = (SELECT MIN(timestamp_ms) FROM sightings WHERE cert_id = c.id)
                     ORDER BY c.id, s.log_id, s.entry_index) x
                 ORDER BY 5, 10",
                &[&exact, &wildcard],
            )
            .await?)
        })?;
        rows.iter()
            .map(|r| {
                let mut names: Vec<String> =
                    serde_json::from_str(r.get(1)).map_err(json_err("certificates.dns_names"))?;
                let ips: Vec<String> = serde_json::from_str(r.get(2))
                    .map_err(json_err("certificates.ip_addresses"))?;
                names.extend(ips);
                Ok(CtCertificate {
                    tbs_sha256: hex::encode(r.get::<_, Vec<u8>>(0)),
                    names,
                    issuer: r.get(3),
                    not_before: r.get(4),
                    not_after: r.get(5),
                    logged_at: r.get::<_, i64>(6).div_euclid(1000),
                    log: r.get(7),
                    index: r.get::<_, i64>(8) as u64,
                })
            })
            .collect()
    }

    pub fn expiry_findings(&self, since: Option<i64>) -> Result<Vec<FindingRow>, StoreError> {
        let rows = self.with_client(async |c| {
            Ok(c.query(
                "SELECT id, domain, port, kind, detail, raised_at, updated_at, resolved_at FROM expiry_findings
                 WHERE ($1::bigint IS NULL AND resolved_at IS NULL)
                    OR ($1::bigint IS NOT NULL AND (resolved_at IS NULL OR resolved_at >= $1 OR raised_at >= $1))
                 ORDER BY domain COLLATE \"C\", port, id",
                &[&since],
            )
            .await?)
        })?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            // A kind written by a newer ctwatch is skipped, not an error.
            let Some(kind) = FindingKind::parse(r.get(3)) else {
                continue;
            };
            out.push(FindingRow {
                id: r.get(0),
                domain: r.get(1),
                port: r.get::<_, i64>(2) as u16,
                kind,
                finding: serde_json::from_str(r.get(4)).map_err(json_err("expiry_findings"))?,
                raised_at: r.get(5),
                updated_at: r.get(6),
                resolved_at: r.get(7),
            });
        }
        Ok(out)
    }

    pub fn latest_probe_results_at(
        &self,
        at: i64,
    ) -> Result<HashMap<(String, u16), ProbeResultRow>, StoreError> {
        let rows = self.with_client(async |c| {
            Ok(c.query(
                &format!(
                    "SELECT {RESULT_COLUMNS} FROM probe_results WHERE id IN
                         (SELECT MAX(id) FROM probe_results WHERE probed_at <= $1 GROUP BY domain, port)"
                ),
                &[&at],
            )
            .await?)
        })?;
        rows.iter()
            .map(|r| {
                let row = raw_result(r, 0).decode()?;
                Ok(((row.domain.clone(), row.port), row))
            })
            .collect()
    }
}
