//! Certificate inventory on PostgreSQL (see `store/inventory.rs`).

use super::PgStore;
use crate::store::probe::json_err;
use crate::store::{ServedRow, StoreError, ValidCertificate, reverse_name};

impl PgStore {
    pub fn valid_certificates(
        &self,
        domain: Option<&str>,
        now: i64,
    ) -> Result<Vec<ValidCertificate>, StoreError> {
        let (r, lo, hi) = match domain {
            Some(d) => {
                let r = reverse_name(d.trim().trim_start_matches("*."));
                (Some(r.clone()), format!("{r}."), format!("{r}/"))
            }
            None => (None, String::new(), String::new()),
        };
        let rows = self.with_client(async |c| {
            let rows = c
                .query(
                    "SELECT * FROM (
                     SELECT DISTINCT ON (c.id) c.id, c.tbs_sha256, c.issuer, c.serial, c.not_before, c.not_after,
                            c.dns_names, c.ip_addresses, s.timestamp_ms, COALESCE(l.url, ''), s.entry_index,
                            (SELECT COALESCE(json_agg(DISTINCT t.tag)::text, '[]')
                               FROM matches m, json_array_elements_text(m.tags::json) t(tag)
                              WHERE m.cert_id = c.id AND m.kind != 'lookalike'),
                            ARRAY(SELECT f.cert_sha256 FROM fingerprints f WHERE f.cert_id = c.id
                                  ORDER BY f.entry_type COLLATE \"C\", f.cert_sha256),
                            ARRAY(SELECT f.entry_type FROM fingerprints f WHERE f.cert_id = c.id
                                  ORDER BY f.entry_type COLLATE \"C\", f.cert_sha256)
                     FROM certificates c
                     JOIN sightings s ON s.cert_id = c.id
                         AND s.timestamp_ms = (SELECT MIN(timestamp_ms) FROM sightings WHERE cert_id = c.id)
                     LEFT JOIN logs l ON l.log_id = s.log_id
                     WHERE c.not_before <= $1 AND c.not_after > $1
                       AND CASE WHEN $2::text IS NULL
                           THEN EXISTS (SELECT 1 FROM matches m WHERE m.cert_id = c.id AND m.kind != 'lookalike')
                           ELSE EXISTS (SELECT 1 FROM cert_names n WHERE n.cert_id = c.id
                                        AND (n.rname = $2::text OR (n.rname >= $3::text AND n.rname < $4::text)))
                           END
                     ORDER BY c.id, s.log_id, s.entry_index) x
                 ORDER BY 6, 1",
                    &[&now, &r, &lo, &hi],
                )
                .await?;
            Ok(rows)
        })?;
        rows.iter()
            .map(|r| {
                let mut tags: Vec<String> =
                    serde_json::from_str(r.get(11)).map_err(json_err("matches.tags"))?;
                tags.sort();
                let shas: Vec<Vec<u8>> = r.get(12);
                let types: Vec<String> = r.get(13);
                Ok(ValidCertificate {
                    tbs_sha256: hex::encode(r.get::<_, Vec<u8>>(1)),
                    fingerprints: shas.iter().map(hex::encode).zip(types).collect(),
                    issuer: r.get(2),
                    serial: r.get(3),
                    not_before: r.get(4),
                    not_after: r.get(5),
                    dns_names: serde_json::from_str(r.get(6))
                        .map_err(json_err("certificates.dns_names"))?,
                    ip_addresses: serde_json::from_str(r.get(7))
                        .map_err(json_err("certificates.ip_addresses"))?,
                    logged_at: r.get::<_, i64>(8).div_euclid(1000),
                    log: r.get(9),
                    index: r.get::<_, i64>(10) as u64,
                    tags,
                })
            })
            .collect()
    }

    pub fn served_certificates(&self) -> Result<Vec<ServedRow>, StoreError> {
        // SQLite's bare columns next to MAX(probed_at): the newest row of each (host, certificate).
        let rows = self.with_client(async |c| {
            Ok(c.query(
                "SELECT domain, port, sha, tbs, probed_at, now FROM (
                     SELECT DISTINCT ON (r.domain, r.port, r.cert_sha256)
                            r.domain, r.port, r.cert_sha256 AS sha, r.report::json ->> 'tbs_sha256' AS tbs,
                            r.probed_at,
                            r.cert_sha256 = (SELECT cert_sha256 FROM probe_results
                                             WHERE domain = r.domain AND port = r.port ORDER BY id DESC LIMIT 1)
                                AS now
                     FROM probe_results r WHERE r.cert_sha256 IS NOT NULL
                     ORDER BY r.domain, r.port, r.cert_sha256, r.probed_at DESC, r.id) x
                 ORDER BY x.domain COLLATE \"C\", x.port, x.sha COLLATE \"C\"",
                &[],
            )
            .await?)
        })?;
        Ok(rows
            .iter()
            .map(|r| ServedRow {
                domain: r.get(0),
                port: r.get::<_, i64>(1) as u16,
                cert_sha256: r.get(2),
                tbs_sha256: r.get(3),
                last_served_at: r.get(4),
                serving_now: r.get::<_, Option<bool>>(5).unwrap_or(false),
            })
            .collect())
    }
}
