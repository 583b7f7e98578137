//! Read queries of the web console: log overview, events per hour, filtered event pages, the crt.sh-like search,
//! one certificate with everything known about it.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{CertRecord, Store, StoreError, reverse_name};

/// Most certificates a name search collects before it stops and says "narrow it down"; keeps any search on the
/// reversed-name index a bounded range scan, however many names are stored.
pub const SEARCH_SCAN_CAP: usize = 20_000;

/// One log as the overview shows it.
#[derive(Clone, Debug, Serialize)]
pub struct ConsoleLog {
    pub url: String,
    pub kind: String,
    pub description: String,
    pub operator: String,
    pub state: String,
    pub verified_size: u64,
    pub head_size: Option<u64>,
    /// Unix ms of the signed head the verified position was checked against.
    pub verified_sth_ms: Option<i64>,
    /// Unix ms of the newest signed head seen.
    pub head_ms: Option<i64>,
    pub last_success_at: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    pub entries_processed: u64,
}

/// One stored event.
#[derive(Clone, Debug, Serialize)]
pub struct EventRow {
    pub id: i64,
    pub kind: String,
    pub created_at: i64,
    pub tags: Vec<String>,
    pub payload: serde_json::Value,
}

/// Which events to list. `before`/`after` page by id (newest first).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub kind: Option<String>,
    pub tag: Option<String>,
    /// A watchlist item exactly as written.
    pub item: Option<String>,
    /// A substring of one of the certificate's names.
    pub name: Option<String>,
    /// Unix seconds, inclusive.
    pub since: Option<i64>,
    /// Unix seconds, exclusive.
    pub until: Option<i64>,
    pub before: Option<i64>,
    pub after: Option<i64>,
}

/// How a search name is matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameMode {
    /// The name and every name under it.
    Subtree,
    /// Exactly the name.
    Exact,
    /// A `%` pattern (`%.example.com`, `www.%.example.com`), like crt.sh.
    Pattern,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchQuery {
    /// ASCII (punycode) name or pattern, lower case.
    pub name: String,
    pub mode: NameMode,
    pub exclude_expired: bool,
    /// Substring of the issuer DN, case-insensitive.
    pub issuer: Option<String>,
    pub now: i64,
    pub limit: usize,
    pub offset: usize,
}

/// One certificate in search results (a precertificate and its certificate fold into one row).
#[derive(Clone, Debug, Serialize)]
pub struct SearchRow {
    pub tbs_sha256: String,
    pub dns_names: Vec<String>,
    pub issuer: String,
    pub serial: String,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    pub first_seen: i64,
    /// `precert`, `x509`, or both: every form seen.
    pub entry_types: Vec<String>,
    pub sightings: u64,
}

/// A page of search results.
#[derive(Clone, Debug, Serialize)]
pub struct SearchPage {
    pub rows: Vec<SearchRow>,
    /// Matching certificates (after the filters), counted among the first [`SEARCH_SCAN_CAP`] name hits.
    pub total: usize,
    /// More than [`SEARCH_SCAN_CAP`] certificates carry a matching name: only the first ones were considered.
    pub truncated: bool,
}

/// One watchlist match of a certificate.
#[derive(Clone, Debug, Serialize)]
pub struct MatchRow {
    pub kind: String,
    pub item: String,
    pub source: String,
    pub name: String,
    pub tags: Vec<String>,
    pub created_at: i64,
}

/// Everything about one certificate.
#[derive(Clone, Debug, Serialize)]
pub struct CertDetail {
    pub record: CertRecord,
    #[serde(skip)]
    pub der: Option<Vec<u8>>,
    pub matches: Vec<MatchRow>,
    /// Latest probe result of each of its hosts.
    pub probes: Vec<super::ProbeResultRow>,
}

/// Which reversed names a search covers: `exact`, or the range `[lo, hi)` filtered by `like` (pure).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameCondition {
    pub exact: Option<String>,
    pub lo: String,
    pub hi: String,
    pub like: Option<String>,
}

/// The reversed-name condition of a search: every mode is an index range scan on `cert_names` (pure).
pub fn name_condition(name: &str, mode: NameMode) -> NameCondition {
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    match mode {
        NameMode::Exact => NameCondition {
            exact: Some(reverse_name(&name)),
            lo: String::new(),
            hi: String::new(),
            like: None,
        },
        NameMode::Subtree => {
            let r = reverse_name(name.trim_start_matches("*."));
            // "r.<anything>": '/' sorts right after '.'.
            NameCondition {
                lo: format!("{r}."),
                hi: format!("{r}/"),
                exact: Some(r),
                like: None,
            }
        }
        NameMode::Pattern => {
            let r = reverse_name(&name);
            let prefix: String = r.chars().take_while(|c| *c != '%').collect();
            NameCondition {
                exact: None,
                hi: format!("{prefix}\u{10FFFF}"),
                lo: prefix,
                like: Some(like_escape(&r).replace("\\%", "%")),
            }
        }
    }
}

/// Escape `\`, `%` and `_` for LIKE ... ESCAPE '\'.
pub(super) fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

impl Store {
    /// Every log with its position, heads and last contact, for the console overview.
    pub fn console_logs(&self) -> Result<Vec<ConsoleLog>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.console_logs();
        }
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT url, kind, description, operator, state, verified_size, head_size, verified_sth_timestamp,
                    head_timestamp, last_success_at, last_error, last_error_at, entries_processed
             FROM logs ORDER BY operator, description",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(ConsoleLog {
                url: r.get(0)?,
                kind: r.get(1)?,
                description: r.get(2)?,
                operator: r.get(3)?,
                state: r.get(4)?,
                verified_size: r.get::<_, i64>(5)? as u64,
                head_size: r.get::<_, Option<i64>>(6)?.map(|v| v as u64),
                verified_sth_ms: r.get(7)?,
                head_ms: r.get(8)?,
                last_success_at: r.get(9)?,
                last_error: r.get(10)?,
                last_error_at: r.get(11)?,
                entries_processed: r.get::<_, i64>(12)? as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Events per hour over the 24 hours up to `now`: 24 counts, oldest hour first (the last one is the hour in
    /// progress).
    pub fn events_per_hour(&self, now: i64) -> Result<Vec<u64>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.events_per_hour(now);
        }
        let this_hour = now - now.rem_euclid(3600);
        let start = this_hour - 23 * 3600;
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT (created_at - ?1) / 3600, COUNT(*) FROM events WHERE created_at >= ?1 AND created_at < ?2
             GROUP BY 1",
        )?;
        let mut out = vec![0u64; 24];
        let rows = stmt.query_map(params![start, this_hour + 3600], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (bucket, n) = row?;
            if let Some(slot) = out.get_mut(bucket as usize) {
                *slot = n as u64;
            }
        }
        Ok(out)
    }

    /// Events matching `f`, newest first, at most `limit` (older than `f.before` / newer than `f.after`).
    pub fn event_page(&self, f: &EventFilter, limit: usize) -> Result<Vec<EventRow>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.event_page(f, limit);
        }
        let conn = self.conn();
        let newer = f.after.is_some() && f.before.is_none();
        let sql = format!(
            "SELECT id, kind, created_at, tags, payload FROM events e
             WHERE (?1 IS NULL OR kind = ?1)
               AND (?2 IS NULL OR EXISTS (SELECT 1 FROM json_each(e.tags) WHERE value = ?2))
               AND (?3 IS NULL OR EXISTS (SELECT 1 FROM json_each(e.payload, '$.matched') m
                                           WHERE json_extract(m.value, '$.item') = ?3))
               AND (?4 IS NULL OR EXISTS (SELECT 1 FROM json_each(e.payload, '$.dns_names') n
                                           WHERE instr(lower(n.value), lower(?4)) > 0))
               AND (?5 IS NULL OR created_at >= ?5) AND (?6 IS NULL OR created_at < ?6)
               AND (?7 IS NULL OR id < ?7) AND (?8 IS NULL OR id > ?8)
             ORDER BY id {} LIMIT ?9",
            if newer { "ASC" } else { "DESC" }
        );
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(
            params![
                f.kind,
                f.tag,
                f.item,
                f.name,
                f.since,
                f.until,
                f.before,
                f.after,
                limit as i64
            ],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                ))
            },
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (id, kind, created_at, tags, payload) = row?;
            out.push(EventRow {
                id,
                kind,
                created_at,
                tags: serde_json::from_str(&tags).unwrap_or_default(),
                payload: serde_json::from_str(&payload).unwrap_or_default(),
            });
        }
        if newer {
            out.reverse();
        }
        Ok(out)
    }

    /// The crt.sh-like search: certificates with a name matching `q`, newest first, filtered and paged.
    pub fn console_search(&self, q: &SearchQuery) -> Result<SearchPage, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.console_search(q);
        }
        let NameCondition {
            exact,
            lo,
            hi,
            like,
        } = name_condition(&q.name, q.mode);
        let issuer = q.issuer.as_ref().map(|i| format!("%{}%", like_escape(i)));
        let hits = "WITH hits AS (SELECT DISTINCT cert_id FROM cert_names
                      WHERE rname = ?10 OR (rname >= ?1 AND rname < ?2 AND (?3 IS NULL OR rname LIKE ?3 ESCAPE '\\'))
                      LIMIT ?4)";
        let filters =
            "(?5 = 0 OR c.not_after > ?6) AND (?7 IS NULL OR c.issuer LIKE ?7 ESCAPE '\\')";
        let conn = self.conn();
        let cap = SEARCH_SCAN_CAP as i64;
        let scanned: i64 = conn.query_row(
            &format!("{hits} SELECT COUNT(*) FROM hits"),
            params![
                lo,
                hi,
                like,
                cap + 1,
                None::<i64>,
                None::<i64>,
                None::<i64>,
                None::<i64>,
                None::<i64>,
                exact
            ],
            |r| r.get(0),
        )?;
        let total: i64 = conn.query_row(
            &format!("{hits} SELECT COUNT(*) FROM hits JOIN certificates c ON c.id = hits.cert_id WHERE {filters}"),
            params![lo, hi, like, cap, q.exclude_expired, q.now, issuer, None::<i64>, None::<i64>, exact],
            |r| r.get(0),
        )?;
        let mut stmt = conn.prepare(&format!(
            "{hits} SELECT c.tbs_sha256, c.dns_names, c.issuer, c.serial, c.not_before, c.not_after, c.first_seen,
                    (SELECT group_concat(DISTINCT entry_type) FROM fingerprints f WHERE f.cert_id = c.id),
                    (SELECT COUNT(*) FROM sightings s WHERE s.cert_id = c.id)
             FROM hits JOIN certificates c ON c.id = hits.cert_id WHERE {filters}
             ORDER BY c.id DESC LIMIT ?8 OFFSET ?9"
        ))?;
        let rows = stmt.query_map(
            params![
                lo,
                hi,
                like,
                cap,
                q.exclude_expired,
                q.now,
                issuer,
                q.limit as i64,
                q.offset as i64,
                exact
            ],
            |r| {
                let mut types: Vec<String> = r
                    .get::<_, Option<String>>(7)?
                    .unwrap_or_default()
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                types.sort();
                Ok(SearchRow {
                    tbs_sha256: hex::encode(r.get::<_, Vec<u8>>(0)?),
                    dns_names: serde_json::from_str(&r.get::<_, String>(1)?).unwrap_or_default(),
                    issuer: r.get(2)?,
                    serial: r.get(3)?,
                    not_before: r.get(4)?,
                    not_after: r.get(5)?,
                    first_seen: r.get(6)?,
                    entry_types: types,
                    sightings: r.get::<_, i64>(8)? as u64,
                })
            },
        )?;
        Ok(SearchPage {
            rows: rows.collect::<Result<_, _>>()?,
            total: total as usize,
            truncated: scanned > cap,
        })
    }

    /// One certificate by `tbs_sha256`, with its DER, matches and the latest probe of each of its hosts.
    pub fn cert_detail(&self, tbs_sha256: &[u8; 32]) -> Result<Option<CertDetail>, StoreError> {
        let parts = match self.pg() {
            Some(pg) => pg.cert_detail_parts(tbs_sha256)?,
            None => self.cert_detail_parts(tbs_sha256)?,
        };
        let Some((id, der, matches)) = parts else {
            return Ok(None);
        };
        let record = self.cert_record(id)?;
        let mut probes = Vec::new();
        let mut hosts: Vec<String> = record
            .dns_names
            .iter()
            .map(|n| n.trim_start_matches("*.").to_string())
            .collect();
        hosts.sort();
        hosts.dedup();
        for host in hosts {
            for row in self.probe_history(&host, 443, 1)? {
                probes.push(row);
            }
        }
        Ok(Some(CertDetail {
            record,
            der,
            matches,
            probes,
        }))
    }
}

/// A certificate's id, DER and watchlist matches: what `cert_detail` reads from the backend before assembling.
pub(super) type DetailParts = (i64, Option<Vec<u8>>, Vec<MatchRow>);

impl Store {
    /// SQLite: the certificate's id and DER, and its watchlist matches.
    fn cert_detail_parts(&self, tbs_sha256: &[u8; 32]) -> Result<Option<DetailParts>, StoreError> {
        let conn = self.conn();
        let found: Option<(i64, Option<Vec<u8>>)> = conn
            .query_row(
                "SELECT id, der FROM certificates WHERE tbs_sha256 = ?1",
                [&tbs_sha256[..]],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((id, der)) = found else {
            return Ok(None);
        };
        let mut stmt = conn.prepare(
            "SELECT kind, item, source, name, tags, created_at FROM matches WHERE cert_id = ?1 ORDER BY id",
        )?;
        let matches = stmt
            .query_map([id], |r| {
                Ok(MatchRow {
                    kind: r.get(0)?,
                    item: r.get(1)?,
                    source: r.get(2)?,
                    name: r.get(3)?,
                    tags: serde_json::from_str(&r.get::<_, String>(4)?).unwrap_or_default(),
                    created_at: r.get(5)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some((id, der, matches)))
    }
}

/// The newest stored certificate covering a host (its exact name, or a wildcard one label up).
#[derive(Clone, Debug, Serialize)]
pub struct NewestCert {
    pub tbs_sha256: String,
    pub not_before: i64,
    pub not_after: i64,
    /// Every DER fingerprint (precert and cert), lower-case hex.
    pub fingerprints: Vec<String>,
}

impl Store {
    /// The newest (by notBefore) stored certificate valid for `host`.
    pub fn newest_cert_for_host(&self, host: &str) -> Result<Option<NewestCert>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.newest_cert_for_host(host);
        }
        let exact = reverse_name(host);
        let wildcard = host
            .split_once('.')
            .map(|(_, parent)| format!("{}.*", reverse_name(parent)));
        let conn = self.conn();
        let found: Option<(i64, Vec<u8>, i64, i64)> = conn
            .query_row(
                "SELECT c.id, c.tbs_sha256, c.not_before, c.not_after FROM cert_names n
                 JOIN certificates c ON c.id = n.cert_id
                 WHERE n.rname = ?1 OR n.rname = ?2 ORDER BY c.not_before DESC, c.id DESC LIMIT 1",
                params![exact, wildcard],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let Some((id, tbs, not_before, not_after)) = found else {
            return Ok(None);
        };
        let mut stmt =
            conn.prepare_cached("SELECT cert_sha256 FROM fingerprints WHERE cert_id = ?1")?;
        let fingerprints = stmt
            .query_map([id], |r| Ok(hex::encode(r.get::<_, Vec<u8>>(0)?)))?
            .collect::<Result<_, _>>()?;
        Ok(Some(NewestCert {
            tbs_sha256: hex::encode(tbs),
            not_before,
            not_after,
            fingerprints,
        }))
    }
}

#[cfg(test)]
#[path = "console_tests.rs"]
mod tests;
