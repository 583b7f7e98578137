//! `ctwatch search` and certificate records on PostgreSQL (see `store/query.rs`).
//!
//! "A name and everything under it" is one range of the `cert_names` primary key: `rname` is stored reversed
//! ("com.example.www") with `COLLATE "C"`, so `rname = r OR (rname >= 'r.' AND rname < 'r/')` is an index range
//! scan whatever the size of the table (`scripts/bench-search-postgres.sh` measures it on 10 M names).

use std::collections::BTreeMap;

use super::PgStore;
use crate::store::{CertRecord, MalformedRow, Sighting, StoreError, reverse_name};

impl PgStore {
    pub fn search(&self, name: &str, limit: usize) -> Result<Vec<CertRecord>, StoreError> {
        let r = reverse_name(name.trim().trim_start_matches("*."));
        let lo = format!("{r}.");
        let hi = format!("{r}/"); // '/' sorts right after '.'
        let ids: Vec<i64> = self.with_client(async |c| {
            Ok(c.query(
                "SELECT DISTINCT cert_id FROM cert_names
                 WHERE rname = $1 OR (rname >= $2 AND rname < $3) ORDER BY cert_id DESC LIMIT $4",
                &[&r, &lo, &hi, &(limit as i64)],
            )
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect())
        })?;
        ids.into_iter().map(|id| self.cert_record(id)).collect()
    }

    pub fn seen_in_ct(
        &self,
        cert_sha256: &[u8; 32],
        tbs_sha256: Option<&[u8; 32]>,
    ) -> Result<bool, StoreError> {
        self.with_client(async |c| {
            let by_fp: bool = c
                .query_one(
                    "SELECT EXISTS(SELECT 1 FROM fingerprints WHERE cert_sha256 = $1)",
                    &[&&cert_sha256[..]],
                )
                .await?
                .get(0);
            if by_fp {
                return Ok(true);
            }
            let Some(tbs) = tbs_sha256 else {
                return Ok(false);
            };
            Ok(c.query_one(
                "SELECT EXISTS(SELECT 1 FROM certificates WHERE tbs_sha256 = $1)",
                &[&&tbs[..]],
            )
            .await?
            .get(0))
        })
    }

    pub fn cert_record(&self, id: i64) -> Result<CertRecord, StoreError> {
        self.with_client(async |c| {
            let r = c
                .query_one(
                    "SELECT tbs_sha256, cert_sha256, entry_type, dns_names, ip_addresses, subject, issuer, serial,
                            not_before, not_after, first_seen FROM certificates WHERE id = $1",
                    &[&id],
                )
                .await?;
            let mut rec = CertRecord {
                tbs_sha256: hex::encode(r.get::<_, Vec<u8>>(0)),
                cert_sha256: hex::encode(r.get::<_, Vec<u8>>(1)),
                entry_type: r.get(2),
                dns_names: serde_json::from_str(r.get(3)).unwrap_or_default(),
                ip_addresses: serde_json::from_str(r.get(4)).unwrap_or_default(),
                subject: r.get(5),
                issuer: r.get(6),
                serial: r.get(7),
                not_before: crate::event::rfc3339(r.get(8)),
                not_after: crate::event::rfc3339(r.get(9)),
                first_seen: crate::event::rfc3339(r.get(10)),
                fingerprints: Vec::new(),
                sightings: Vec::new(),
            };
            rec.fingerprints = c
                .query(
                    "SELECT cert_sha256 FROM fingerprints WHERE cert_id = $1 ORDER BY cert_sha256",
                    &[&id],
                )
                .await?
                .iter()
                .map(|r| hex::encode(r.get::<_, Vec<u8>>(0)))
                .collect();
            rec.sightings = c
                .query(
                    "SELECT COALESCE(l.url, upper(encode(s.log_id, 'hex'))), s.entry_index, s.entry_type,
                            s.timestamp_ms, s.cert_sha256
                     FROM sightings s LEFT JOIN logs l ON l.log_id = s.log_id
                     WHERE s.cert_id = $1 ORDER BY s.timestamp_ms, s.entry_index",
                    &[&id],
                )
                .await?
                .iter()
                .map(|r| Sighting {
                    log: r.get(0),
                    index: r.get::<_, i64>(1) as u64,
                    entry_type: r.get(2),
                    timestamp: crate::event::rfc3339_ms(r.get::<_, i64>(3)),
                    cert_sha256: hex::encode(r.get::<_, Vec<u8>>(4)),
                })
                .collect();
            Ok(rec)
        })
    }

    pub fn malformed_entries(&self, limit: usize) -> Result<Vec<MalformedRow>, StoreError> {
        let mut rows: Vec<MalformedRow> = self.with_client(async |c| {
            Ok(c.query(
                "SELECT COALESCE(l.url, upper(encode(m.log_id, 'hex'))), m.entry_index, m.reason, m.seen_at
                 FROM malformed m LEFT JOIN logs l ON l.log_id = m.log_id
                 ORDER BY m.seen_at DESC, m.log_id, m.entry_index LIMIT $1",
                &[&(limit as i64)],
            )
            .await?
            .iter()
            .map(|r| MalformedRow {
                log: r.get(0),
                index: r.get::<_, i64>(1) as u64,
                reason: r.get(2),
                seen_at: crate::event::rfc3339(r.get(3)),
            })
            .collect())
        })?;
        rows.sort_by(|a, b| (&a.log, a.index).cmp(&(&b.log, b.index)));
        Ok(rows)
    }

    pub fn malformed_counts(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        self.with_client(async |c| {
            Ok(c.query(
                "SELECT COALESCE(l.url, upper(encode(m.log_id, 'hex'))), COUNT(*)
                 FROM malformed m LEFT JOIN logs l ON l.log_id = m.log_id GROUP BY m.log_id, l.url",
                &[],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get::<_, i64>(1) as u64))
            .collect())
        })
    }
}
