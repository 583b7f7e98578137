//! Inventory queries: currently valid certificates known from CT, and which certificates each probed host
//! has served (`ctwatch inventory`).

use rusqlite::params;

use super::probe::json_err;
use super::{Store, StoreError, reverse_name};

/// A stored certificate valid at the time asked, precertificate and certificate folded (one `tbs_sha256`).
#[derive(Debug, Clone, PartialEq)]
pub struct ValidCertificate {
    /// Hex.
    pub tbs_sha256: String,
    /// Every DER fingerprint logged for it (hex), with its entry type (`precert` | `x509`).
    pub fingerprints: Vec<(String, String)>,
    pub issuer: String,
    pub serial: String,
    pub not_before: i64,
    pub not_after: i64,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<String>,
    /// Earliest proven log timestamp (unix seconds), its log URL and index.
    pub logged_at: i64,
    pub log: String,
    pub index: u64,
    /// Tags of the watchlist items it matched.
    pub tags: Vec<String>,
}

/// A certificate a host served at some probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedRow {
    pub domain: String,
    pub port: u16,
    pub cert_sha256: String,
    pub tbs_sha256: Option<String>,
    /// Unix seconds of the last probe that saw it served.
    pub last_served_at: i64,
    /// The host's latest probe serves it.
    pub serving_now: bool,
}

impl Store {
    /// Certificates valid at `now` that matched the watchlist (not as look-alikes), or, with `domain`, every
    /// stored certificate valid at `now` with a name at or under `domain`; by notAfter.
    pub fn valid_certificates(
        &self,
        domain: Option<&str>,
        now: i64,
    ) -> Result<Vec<ValidCertificate>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.valid_certificates(domain, now);
        }
        let (r, lo, hi) = match domain {
            Some(d) => {
                let r = reverse_name(d.trim().trim_start_matches("*."));
                (Some(r.clone()), format!("{r}."), format!("{r}/"))
            }
            None => (None, String::new(), String::new()),
        };
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT c.id, c.tbs_sha256, c.issuer, c.serial, c.not_before, c.not_after, c.dns_names,
                    c.ip_addresses, s.timestamp_ms, COALESCE(l.url, ''), s.entry_index,
                    (SELECT COALESCE(json_group_array(DISTINCT t.value), '[]')
                       FROM matches m, json_each(m.tags) t WHERE m.cert_id = c.id AND m.kind != 'lookalike')
             FROM certificates c
             JOIN sightings s ON s.cert_id = c.id
                 AND s.timestamp_ms = (SELECT MIN(timestamp_ms) FROM sightings WHERE cert_id = c.id)
             LEFT JOIN logs l ON l.log_id = s.log_id
             WHERE c.not_before <= ?1 AND c.not_after > ?1
               AND CASE WHEN ?2 IS NULL
                   THEN EXISTS (SELECT 1 FROM matches m WHERE m.cert_id = c.id AND m.kind != 'lookalike')
                   ELSE EXISTS (SELECT 1 FROM cert_names n WHERE n.cert_id = c.id
                                AND (n.rname = ?2 OR (n.rname >= ?3 AND n.rname < ?4)))
                   END
             GROUP BY c.id ORDER BY c.not_after, c.id",
        )?;
        type Raw = (
            i64,
            Vec<u8>,
            String,
            String,
            i64,
            i64,
            String,
            String,
            i64,
            String,
            i64,
            String,
        );
        let rows: Vec<Raw> = stmt
            .query_map(params![now, r, lo, hi], |r| {
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
                    r.get(9)?,
                    r.get(10)?,
                    r.get(11)?,
                ))
            })?
            .collect::<Result<_, _>>()?;
        let mut fp_stmt = conn.prepare_cached(
            "SELECT cert_sha256, entry_type FROM fingerprints WHERE cert_id = ?1 ORDER BY entry_type",
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, tbs, issuer, serial, nb, na, dns, ips, ts, log, index, tags) in rows {
            let fingerprints = fp_stmt
                .query_map([id], |r| {
                    Ok((hex::encode(r.get::<_, Vec<u8>>(0)?), r.get::<_, String>(1)?))
                })?
                .collect::<Result<_, _>>()?;
            let mut tags: Vec<String> =
                serde_json::from_str(&tags).map_err(json_err("matches.tags"))?;
            tags.sort();
            out.push(ValidCertificate {
                tbs_sha256: hex::encode(tbs),
                fingerprints,
                issuer,
                serial,
                not_before: nb,
                not_after: na,
                dns_names: serde_json::from_str(&dns)
                    .map_err(json_err("certificates.dns_names"))?,
                ip_addresses: serde_json::from_str(&ips)
                    .map_err(json_err("certificates.ip_addresses"))?,
                logged_at: ts.div_euclid(1000),
                log,
                index: index as u64,
                tags,
            });
        }
        Ok(out)
    }

    /// Every (host, served certificate) pair in the probe history, with the last time it was served and
    /// whether the host's latest probe still serves it.
    pub fn served_certificates(&self) -> Result<Vec<ServedRow>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.served_certificates();
        }
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT r.domain, r.port, r.cert_sha256, json_extract(r.report, '$.tbs_sha256'), MAX(r.probed_at),
                    r.cert_sha256 = (SELECT cert_sha256 FROM probe_results
                                     WHERE domain = r.domain AND port = r.port ORDER BY id DESC LIMIT 1)
             FROM probe_results r WHERE r.cert_sha256 IS NOT NULL
             GROUP BY r.domain, r.port, r.cert_sha256 ORDER BY r.domain, r.port",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(ServedRow {
                    domain: r.get(0)?,
                    port: r.get::<_, i64>(1)? as u16,
                    cert_sha256: r.get(2)?,
                    tbs_sha256: r.get(3)?,
                    last_served_at: r.get(4)?,
                    serving_now: r.get::<_, Option<bool>>(5)?.unwrap_or(false),
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }
}
