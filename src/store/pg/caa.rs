//! CAA checks on PostgreSQL (see `store/caa.rs`).

use super::PgStore;
use super::outbox::insert_event;
use crate::store::probe::json_err;
use crate::store::{CaaCandidate, CaaRecordRow, SinkRoute, StoreError};

impl PgStore {
    pub fn caa_candidates(
        &self,
        since: i64,
        now: i64,
        limit: usize,
    ) -> Result<Vec<CaaCandidate>, StoreError> {
        // Matched names and tags in first-appearance order (match id, then tag position), as SQLite's
        // json_group_array(DISTINCT ...) gives them.
        let rows = self.with_client(async |c| {
            Ok(c.query(
                "SELECT c.id, c.tbs_sha256, c.issuer, c.dns_names,
                        (SELECT COALESCE(json_agg(x.name ORDER BY x.first)::text, '[]') FROM
                            (SELECT m.name, MIN(m.id) AS first FROM matches m
                             WHERE m.cert_id = c.id AND m.kind != 'lookalike' GROUP BY m.name) x),
                        (SELECT COALESCE(json_agg(x.tag ORDER BY x.first_id, x.first_pos)::text, '[]') FROM
                            (SELECT t.tag, MIN(m.id) AS first_id, MIN(t.pos) AS first_pos
                             FROM matches m, json_array_elements_text(m.tags::json) WITH ORDINALITY t(tag, pos)
                             WHERE m.cert_id = c.id AND m.kind != 'lookalike' GROUP BY t.tag) x),
                        c.not_before, c.not_after, k.attempts
                 FROM certificates c LEFT JOIN caa_checks k ON k.cert_id = c.id
                 WHERE c.first_seen >= $1
                   AND (k.cert_id IS NULL OR (k.next_check_at IS NOT NULL AND k.next_check_at <= $2))
                   AND EXISTS (SELECT 1 FROM matches m WHERE m.cert_id = c.id AND m.kind != 'lookalike')
                 ORDER BY c.id LIMIT $3",
                &[&since, &now, &(limit as i64)],
            )
            .await?)
        })?;
        rows.iter()
            .map(|r| {
                Ok(CaaCandidate {
                    cert_id: r.get(0),
                    tbs_sha256: hex::encode(r.get::<_, Vec<u8>>(1)),
                    issuer: r.get(2),
                    dns_names: serde_json::from_str(r.get(3))
                        .map_err(json_err("certificates.dns_names"))?,
                    matched_names: serde_json::from_str(r.get(4))
                        .map_err(json_err("matches.name"))?,
                    tags: serde_json::from_str(r.get(5)).map_err(json_err("matches.tags"))?,
                    not_before: r.get(6),
                    not_after: r.get(7),
                    attempts: r.get::<_, Option<i64>>(8).unwrap_or(0) as u32,
                })
            })
            .collect()
    }

    pub fn record_caa_check(
        &self,
        rec: &CaaRecordRow<'_>,
        routes: &[SinkRoute],
    ) -> Result<(), StoreError> {
        self.in_transaction(async |tx| {
            tx.execute(
                "INSERT INTO caa_checks (cert_id, verdict, detail, checked_at, attempts, next_check_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (cert_id) DO UPDATE SET verdict = $2, detail = $3, checked_at = $4, attempts = $5,
                     next_check_at = $6",
                &[
                    &rec.cert_id,
                    &rec.verdict,
                    &rec.detail.to_string(),
                    &rec.checked_at,
                    &(rec.attempts as i64),
                    &rec.next_check_at,
                ],
            )
            .await?;
            if let Some(ev) = rec.event {
                insert_event(tx, ev, routes, rec.checked_at).await?;
            }
            Ok(())
        })
    }

    pub fn caa_verdict(
        &self,
        tbs_sha256: &[u8],
    ) -> Result<Option<(String, serde_json::Value)>, StoreError> {
        let row = self.with_client(async |c| {
            Ok(c.query_opt(
                "SELECT k.verdict, k.detail FROM caa_checks k JOIN certificates c ON c.id = k.cert_id
                 WHERE c.tbs_sha256 = $1",
                &[&tbs_sha256],
            )
            .await?)
        })?;
        row.map(|r| {
            Ok((
                r.get(0),
                serde_json::from_str(r.get(1)).map_err(json_err("caa_checks.detail"))?,
            ))
        })
        .transpose()
    }
}
