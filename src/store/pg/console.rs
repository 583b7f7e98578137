//! Web console queries on PostgreSQL (see `store/console.rs`).

use super::PgStore;
use crate::store::console::{DetailParts, like_escape};
use crate::store::{
    ConsoleLog, EventFilter, EventRow, MatchRow, NameCondition, NewestCert, SEARCH_SCAN_CAP,
    SearchPage, SearchQuery, SearchRow, StoreError, name_condition, reverse_name,
};

impl PgStore {
    pub fn console_logs(&self) -> Result<Vec<ConsoleLog>, StoreError> {
        self.with_client(async |c| {
            Ok(c.query(
                "SELECT url, kind, description, operator, state, verified_size, head_size, verified_sth_timestamp,
                        head_timestamp, last_success_at, last_error, last_error_at, entries_processed
                 FROM logs ORDER BY operator COLLATE \"C\", description COLLATE \"C\"",
                &[],
            )
            .await?
            .iter()
            .map(|r| ConsoleLog {
                url: r.get(0),
                kind: r.get(1),
                description: r.get(2),
                operator: r.get(3),
                state: r.get(4),
                verified_size: r.get::<_, i64>(5) as u64,
                head_size: r.get::<_, Option<i64>>(6).map(|v| v as u64),
                verified_sth_ms: r.get(7),
                head_ms: r.get(8),
                last_success_at: r.get(9),
                last_error: r.get(10),
                last_error_at: r.get(11),
                entries_processed: r.get::<_, i64>(12) as u64,
            })
            .collect())
        })
    }

    pub fn events_per_hour(&self, now: i64) -> Result<Vec<u64>, StoreError> {
        let this_hour = now - now.rem_euclid(3600);
        let start = this_hour - 23 * 3600;
        let rows = self.with_client(async |c| {
            Ok(c.query(
                "SELECT (created_at - $1) / 3600, COUNT(*) FROM events WHERE created_at >= $1 AND created_at < $2
                 GROUP BY 1",
                &[&start, &(this_hour + 3600)],
            )
            .await?)
        })?;
        let mut out = vec![0u64; 24];
        for r in &rows {
            if let Some(slot) = out.get_mut(r.get::<_, i64>(0) as usize) {
                *slot = r.get::<_, i64>(1) as u64;
            }
        }
        Ok(out)
    }

    pub fn event_page(&self, f: &EventFilter, limit: usize) -> Result<Vec<EventRow>, StoreError> {
        let newer = f.after.is_some() && f.before.is_none();
        // The JSON tests of the SQLite query, in jsonpath: lax mode ignores a missing or non-array member as
        // SQLite's json_each does.
        let sql = format!(
            "SELECT id, kind, created_at, tags, payload FROM events e
             WHERE ($1::text IS NULL OR kind = $1::text)
               AND ($2::text IS NULL OR e.tags::jsonb ? $2::text)
               AND ($3::text IS NULL OR jsonb_path_exists(e.payload::jsonb, '$.matched[*] ? (@.item == $v)',
                                                          jsonb_build_object('v', $3::text)))
               AND ($4::text IS NULL OR EXISTS (
                     SELECT 1 FROM jsonb_path_query(e.payload::jsonb, '$.dns_names[*]') n
                     WHERE jsonb_typeof(n) = 'string' AND strpos(lower(n #>> '{{}}'), lower($4::text)) > 0))
               AND ($5::bigint IS NULL OR created_at >= $5::bigint) AND ($6::bigint IS NULL OR created_at < $6::bigint)
               AND ($7::bigint IS NULL OR id < $7::bigint) AND ($8::bigint IS NULL OR id > $8::bigint)
             ORDER BY id {} LIMIT $9",
            if newer { "ASC" } else { "DESC" }
        );
        let rows = self.with_client(async |c| {
            Ok(c.query(
                &sql,
                &[
                    &f.kind,
                    &f.tag,
                    &f.item,
                    &f.name,
                    &f.since,
                    &f.until,
                    &f.before,
                    &f.after,
                    &(limit as i64),
                ],
            )
            .await?)
        })?;
        let mut out: Vec<EventRow> = rows
            .iter()
            .map(|r| EventRow {
                id: r.get(0),
                kind: r.get(1),
                created_at: r.get(2),
                tags: serde_json::from_str(r.get(3)).unwrap_or_default(),
                payload: serde_json::from_str(r.get(4)).unwrap_or_default(),
            })
            .collect();
        if newer {
            out.reverse();
        }
        Ok(out)
    }

    pub fn console_search(&self, q: &SearchQuery) -> Result<SearchPage, StoreError> {
        let NameCondition {
            exact,
            lo,
            hi,
            like,
        } = name_condition(&q.name, q.mode);
        let issuer = q.issuer.as_ref().map(|i| format!("%{}%", like_escape(i)));
        let hits = "WITH hits AS (SELECT DISTINCT cert_id FROM cert_names
                      WHERE rname = $1::text
                         OR (rname >= $2::text AND rname < $3::text
                             AND ($4::text IS NULL OR rname LIKE $4::text ESCAPE '\\'))
                      LIMIT $5)";
        let filters = "(NOT $6::bool OR c.not_after > $7::bigint)
                       AND ($8::text IS NULL OR c.issuer LIKE $8::text ESCAPE '\\')";
        let cap = SEARCH_SCAN_CAP as i64;
        let (scanned, total, rows) = self.with_client(async |c| {
            let scanned: i64 = c
                .query_one(
                    &format!("{hits} SELECT COUNT(*) FROM hits"),
                    &[&exact, &lo, &hi, &like, &(cap + 1)],
                )
                .await?
                .get(0);
            let total: i64 = c
                .query_one(
                    &format!(
                        "{hits} SELECT COUNT(*) FROM hits JOIN certificates c ON c.id = hits.cert_id WHERE {filters}"
                    ),
                    &[&exact, &lo, &hi, &like, &cap, &q.exclude_expired, &q.now, &issuer],
                )
                .await?
                .get(0);
            let rows = c
                .query(
                    &format!(
                        "{hits} SELECT c.tbs_sha256, c.dns_names, c.issuer, c.serial, c.not_before, c.not_after,
                                c.first_seen,
                                (SELECT string_agg(DISTINCT entry_type, ',') FROM fingerprints f WHERE f.cert_id = c.id),
                                (SELECT COUNT(*) FROM sightings s WHERE s.cert_id = c.id)
                         FROM hits JOIN certificates c ON c.id = hits.cert_id WHERE {filters}
                         ORDER BY c.id DESC LIMIT $9 OFFSET $10"
                    ),
                    &[
                        &exact,
                        &lo,
                        &hi,
                        &like,
                        &cap,
                        &q.exclude_expired,
                        &q.now,
                        &issuer,
                        &(q.limit as i64),
                        &(q.offset as i64),
                    ],
                )
                .await?;
            Ok((scanned, total, rows))
        })?;
        let rows = rows
            .iter()
            .map(|r| {
                let mut types: Vec<String> = r
                    .get::<_, Option<String>>(7)
                    .unwrap_or_default()
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                types.sort();
                SearchRow {
                    tbs_sha256: hex::encode(r.get::<_, Vec<u8>>(0)),
                    dns_names: serde_json::from_str(r.get(1)).unwrap_or_default(),
                    issuer: r.get(2),
                    serial: r.get(3),
                    not_before: r.get(4),
                    not_after: r.get(5),
                    first_seen: r.get(6),
                    entry_types: types,
                    sightings: r.get::<_, i64>(8) as u64,
                }
            })
            .collect();
        Ok(SearchPage {
            rows,
            total: total as usize,
            truncated: scanned > cap,
        })
    }

    /// The certificate, its matches and the newest probe of each of its hosts (see `Store::cert_detail`).
    pub fn cert_detail_parts(
        &self,
        tbs_sha256: &[u8; 32],
    ) -> Result<Option<DetailParts>, StoreError> {
        self.with_client(async |c| {
            let Some(found) = c
                .query_opt(
                    "SELECT id, der FROM certificates WHERE tbs_sha256 = $1",
                    &[&&tbs_sha256[..]],
                )
                .await?
            else {
                return Ok(None);
            };
            let id: i64 = found.get(0);
            let matches = c
                .query(
                    "SELECT kind, item, source, name, tags, created_at FROM matches WHERE cert_id = $1 ORDER BY id",
                    &[&id],
                )
                .await?
                .iter()
                .map(|r| MatchRow {
                    kind: r.get(0),
                    item: r.get(1),
                    source: r.get(2),
                    name: r.get(3),
                    tags: serde_json::from_str(r.get(4)).unwrap_or_default(),
                    created_at: r.get(5),
                })
                .collect();
            Ok(Some((id, found.get(1), matches)))
        })
    }

    pub fn newest_cert_for_host(&self, host: &str) -> Result<Option<NewestCert>, StoreError> {
        let exact = reverse_name(host);
        let wildcard = host
            .split_once('.')
            .map(|(_, parent)| format!("{}.*", reverse_name(parent)));
        self.with_client(async |c| {
            let Some(r) = c
                .query_opt(
                    "SELECT c.id, c.tbs_sha256, c.not_before, c.not_after FROM cert_names n
                     JOIN certificates c ON c.id = n.cert_id
                     WHERE n.rname = $1 OR n.rname = $2 ORDER BY c.not_before DESC, c.id DESC LIMIT 1",
                    &[&exact, &wildcard],
                )
                .await?
            else {
                return Ok(None);
            };
            let id: i64 = r.get(0);
            let fingerprints = c
                .query(
                    "SELECT cert_sha256 FROM fingerprints WHERE cert_id = $1 ORDER BY cert_sha256",
                    &[&id],
                )
                .await?
                .iter()
                .map(|f| hex::encode(f.get::<_, Vec<u8>>(0)))
                .collect();
            Ok(Some(NewestCert {
                tbs_sha256: hex::encode(r.get::<_, Vec<u8>>(1)),
                not_before: r.get(2),
                not_after: r.get(3),
                fingerprints,
            }))
        })
    }
}
