//! Read-only queries: `ctwatch search` (a local crt.sh) and fingerprint lookups.

use rusqlite::params;
use serde::Serialize;

use super::{Store, StoreError, reverse_name};

/// A stored certificate with every place it was seen.
#[derive(Clone, Debug, Serialize)]
pub struct CertRecord {
    pub tbs_sha256: String,
    pub cert_sha256: String,
    pub entry_type: String,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<String>,
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub not_before: String,
    pub not_after: String,
    pub first_seen: String,
    pub fingerprints: Vec<String>,
    pub sightings: Vec<Sighting>,
}

/// One (log, index) where a certificate was seen.
#[derive(Clone, Debug, Serialize)]
pub struct Sighting {
    pub log: String,
    pub index: u64,
    pub entry_type: String,
    pub timestamp: String,
    pub cert_sha256: String,
}

impl Store {
    /// Certificates with a DNS name equal to `name` or under it (`example.com` finds `www.example.com` and
    /// `*.example.com`), newest first, at most `limit`.
    pub fn search(&self, name: &str, limit: usize) -> Result<Vec<CertRecord>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.search(name, limit);
        }
        let r = reverse_name(name.trim().trim_start_matches("*."));
        let lo = format!("{r}.");
        let hi = format!("{r}/"); // '/' sorts right after '.'
        let ids: Vec<i64> = {
            let conn = self.conn();
            let mut stmt = conn.prepare(
                "SELECT DISTINCT cert_id FROM cert_names
                 WHERE rname = ?1 OR (rname >= ?2 AND rname < ?3) ORDER BY cert_id DESC LIMIT ?4",
            )?;
            stmt.query_map(params![r, lo, hi, limit as i64], |row| row.get(0))?
                .collect::<Result<_, _>>()?
        };
        ids.into_iter().map(|id| self.cert_record(id)).collect()
    }

    /// Whether a certificate was seen in CT, by DER fingerprint or by tbs identity.
    pub fn seen_in_ct(
        &self,
        cert_sha256: &[u8; 32],
        tbs_sha256: Option<&[u8; 32]>,
    ) -> Result<bool, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.seen_in_ct(cert_sha256, tbs_sha256);
        }
        let conn = self.conn();
        let by_fp: bool = conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM fingerprints WHERE cert_sha256 = ?1)",
            [&cert_sha256[..]],
            |r| r.get(0),
        )?;
        if by_fp {
            return Ok(true);
        }
        let Some(tbs) = tbs_sha256 else {
            return Ok(false);
        };
        Ok(conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM certificates WHERE tbs_sha256 = ?1)",
            [&tbs[..]],
            |r| r.get(0),
        )?)
    }

    pub(super) fn cert_record(&self, id: i64) -> Result<CertRecord, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.cert_record(id);
        }
        let conn = self.conn();
        let mut rec = conn.query_row(
            "SELECT tbs_sha256, cert_sha256, entry_type, dns_names, ip_addresses, subject, issuer, serial,
                    not_before, not_after, first_seen FROM certificates WHERE id = ?1",
            [id],
            |r| {
                Ok(CertRecord {
                    tbs_sha256: hex::encode(r.get::<_, Vec<u8>>(0)?),
                    cert_sha256: hex::encode(r.get::<_, Vec<u8>>(1)?),
                    entry_type: r.get(2)?,
                    dns_names: serde_json::from_str(&r.get::<_, String>(3)?).unwrap_or_default(),
                    ip_addresses: serde_json::from_str(&r.get::<_, String>(4)?).unwrap_or_default(),
                    subject: r.get(5)?,
                    issuer: r.get(6)?,
                    serial: r.get(7)?,
                    not_before: crate::event::rfc3339(r.get(8)?),
                    not_after: crate::event::rfc3339(r.get(9)?),
                    first_seen: crate::event::rfc3339(r.get(10)?),
                    fingerprints: Vec::new(),
                    sightings: Vec::new(),
                })
            },
        )?;
        let mut fps =
            conn.prepare_cached("SELECT cert_sha256 FROM fingerprints WHERE cert_id = ?1")?;
        rec.fingerprints = fps
            .query_map([id], |r| Ok(hex::encode(r.get::<_, Vec<u8>>(0)?)))?
            .collect::<Result<_, _>>()?;
        let mut st = conn.prepare_cached(
            "SELECT COALESCE(l.url, hex(s.log_id)), s.entry_index, s.entry_type, s.timestamp_ms, s.cert_sha256
             FROM sightings s LEFT JOIN logs l ON l.log_id = s.log_id
             WHERE s.cert_id = ?1 ORDER BY s.timestamp_ms, s.entry_index",
        )?;
        rec.sightings = st
            .query_map([id], |r| {
                Ok(Sighting {
                    log: r.get(0)?,
                    index: r.get::<_, i64>(1)? as u64,
                    entry_type: r.get(2)?,
                    timestamp: crate::event::rfc3339_ms(r.get::<_, i64>(3)?),
                    cert_sha256: hex::encode(r.get::<_, Vec<u8>>(4)?),
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rec)
    }
}

/// A stored malformed entry (without its bytes).
#[derive(Clone, Debug, Serialize)]
pub struct MalformedRow {
    pub log: String,
    pub index: u64,
    pub reason: String,
    pub seen_at: String,
}

impl Store {
    /// The most recent malformed entries, oldest index first within a log.
    pub fn malformed_entries(&self, limit: usize) -> Result<Vec<MalformedRow>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.malformed_entries(limit);
        }
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT COALESCE(l.url, hex(m.log_id)), m.entry_index, m.reason, m.seen_at
             FROM malformed m LEFT JOIN logs l ON l.log_id = m.log_id
             ORDER BY m.seen_at DESC, m.log_id, m.entry_index LIMIT ?1",
        )?;
        let mut rows: Vec<MalformedRow> = stmt
            .query_map([limit as i64], |r| {
                Ok(MalformedRow {
                    log: r.get(0)?,
                    index: r.get::<_, i64>(1)? as u64,
                    reason: r.get(2)?,
                    seen_at: crate::event::rfc3339(r.get(3)?),
                })
            })?
            .collect::<Result<_, _>>()?;
        rows.sort_by(|a, b| (&a.log, a.index).cmp(&(&b.log, b.index)));
        Ok(rows)
    }

    /// How many malformed entries are stored per log, by log URL (logs without any are absent).
    pub fn malformed_counts(&self) -> Result<std::collections::BTreeMap<String, u64>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.malformed_counts();
        }
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT COALESCE(l.url, hex(m.log_id)), COUNT(*)
             FROM malformed m LEFT JOIN logs l ON l.log_id = m.log_id GROUP BY m.log_id",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
