//! CAA check queries: which newly stored matching certificates still need a check, and the verdicts (with the
//! `caa_mismatch` event queued in the same transaction).

use rusqlite::{OptionalExtension, params};

use super::probe::json_err;
use super::{Store, StoreError, outbox::insert_event};
use crate::event::Event;

/// A certificate waiting for its CAA check.
#[derive(Debug, Clone, PartialEq)]
pub struct CaaCandidate {
    pub cert_id: i64,
    /// Hex.
    pub tbs_sha256: String,
    pub issuer: String,
    pub dns_names: Vec<String>,
    /// The names that matched watchlist items (not look-alikes): the ones checked.
    pub matched_names: Vec<String>,
    pub tags: Vec<String>,
    pub not_before: i64,
    pub not_after: i64,
    /// Checks already made (unknown verdicts).
    pub attempts: u32,
}

/// What [`Store::record_caa_check`] writes.
pub struct CaaRecordRow<'a> {
    pub cert_id: i64,
    pub verdict: &'a str,
    pub detail: &'a serde_json::Value,
    pub checked_at: i64,
    pub attempts: u32,
    /// `None`: final.
    pub next_check_at: Option<i64>,
    pub event: Option<&'a Event>,
}

impl Store {
    /// Matching certificates first stored at or after `since` with no final CAA verdict and due at `now`, oldest
    /// first, at most `limit`.
    pub fn caa_candidates(
        &self,
        since: i64,
        now: i64,
        limit: usize,
    ) -> Result<Vec<CaaCandidate>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.caa_candidates(since, now, limit);
        }
        type Raw = (
            i64,
            Vec<u8>,
            String,
            String,
            String,
            String,
            i64,
            i64,
            Option<i64>,
        );
        let raw: Vec<Raw> = {
            let conn = self.conn();
            let mut stmt = conn.prepare_cached(
                "SELECT c.id, c.tbs_sha256, c.issuer, c.dns_names,
                        (SELECT json_group_array(DISTINCT m.name) FROM matches m
                          WHERE m.cert_id = c.id AND m.kind != 'lookalike'),
                        (SELECT COALESCE(json_group_array(DISTINCT t.value), '[]')
                           FROM matches m, json_each(m.tags) t WHERE m.cert_id = c.id AND m.kind != 'lookalike'),
                        c.not_before, c.not_after, k.attempts
                 FROM certificates c LEFT JOIN caa_checks k ON k.cert_id = c.id
                 WHERE c.first_seen >= ?1
                   AND (k.cert_id IS NULL OR (k.next_check_at IS NOT NULL AND k.next_check_at <= ?2))
                   AND EXISTS (SELECT 1 FROM matches m WHERE m.cert_id = c.id AND m.kind != 'lookalike')
                 ORDER BY c.id LIMIT ?3",
            )?;
            stmt.query_map(params![since, now, limit as i64], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                ))
            })?
            .collect::<Result<_, _>>()?
        };
        raw.into_iter()
            .map(|(id, tbs, issuer, dns, matched, tags, nb, na, attempts)| {
                Ok(CaaCandidate {
                    cert_id: id,
                    tbs_sha256: hex::encode(tbs),
                    issuer,
                    dns_names: serde_json::from_str(&dns)
                        .map_err(json_err("certificates.dns_names"))?,
                    matched_names: serde_json::from_str(&matched)
                        .map_err(json_err("matches.name"))?,
                    tags: serde_json::from_str(&tags).map_err(json_err("matches.tags"))?,
                    not_before: nb,
                    not_after: na,
                    attempts: attempts.unwrap_or(0) as u32,
                })
            })
            .collect()
    }

    /// Stores a CAA verdict and, in the same transaction, the event it causes.
    pub fn record_caa_check(&self, rec: &CaaRecordRow<'_>) -> Result<(), StoreError> {
        let routes = self.sink_routes();
        if let Some(pg) = self.pg() {
            return pg.record_caa_check(rec, &routes);
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO caa_checks (cert_id, verdict, detail, checked_at, attempts, next_check_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(cert_id) DO UPDATE SET verdict = ?2, detail = ?3, checked_at = ?4, attempts = ?5,
                 next_check_at = ?6",
            params![
                rec.cert_id,
                rec.verdict,
                rec.detail.to_string(),
                rec.checked_at,
                rec.attempts,
                rec.next_check_at
            ],
        )?;
        if let Some(ev) = rec.event {
            insert_event(&tx, ev, &routes, rec.checked_at)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The stored CAA verdict of a certificate (by tbs_sha256): (verdict, detail JSON).
    pub fn caa_verdict(
        &self,
        tbs_sha256: &[u8],
    ) -> Result<Option<(String, serde_json::Value)>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.caa_verdict(tbs_sha256);
        }
        let row: Option<(String, String)> = self
            .conn()
            .query_row(
                "SELECT k.verdict, k.detail FROM caa_checks k JOIN certificates c ON c.id = k.cert_id
                 WHERE c.tbs_sha256 = ?1",
                [tbs_sha256],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        row.map(|(v, d)| {
            Ok((
                v,
                serde_json::from_str(&d).map_err(json_err("caa_checks.detail"))?,
            ))
        })
        .transpose()
    }
}
