//! Probe history on PostgreSQL (see `store/probe_results.rs`).

use tokio_postgres::Row;

use super::PgStore;
use super::probe::raw_target;
use crate::probe::{HostReport, Level, Status};
use crate::store::probe::{TARGET_COLUMNS, json_err};
use crate::store::probe_results::{RESULT_COLUMNS, RawResult};
use crate::store::{ProbeResultRow, ProbeStatusRow, StoreError};

/// A result from the [`RESULT_COLUMNS`] starting at column `at`.
pub(super) fn raw_result(r: &Row, at: usize) -> RawResult {
    RawResult(
        ProbeResultRow {
            id: r.get(at),
            domain: r.get(at + 1),
            port: r.get::<_, i64>(at + 2) as u16,
            probed_at: r.get(at + 3),
            status: Status::Ok,
            level: Level::Ok,
            days_left: r.get(at + 6),
            not_after: r.get(at + 7),
            cert_sha256: r.get(at + 8),
            issuer: r.get(at + 9),
            seen_in_ct: r.get::<_, Option<i64>>(at + 10).map(|v| v != 0),
        },
        r.get(at + 4),
        r.get(at + 5),
    )
}

/// `"a, b"` -> `"t.a, t.b"`.
fn prefixed(columns: &str, table: &str) -> String {
    columns
        .split(", ")
        .map(|c| format!("{table}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl PgStore {
    pub fn probe_history(
        &self,
        domain: &str,
        port: u16,
        limit: usize,
    ) -> Result<Vec<ProbeResultRow>, StoreError> {
        let rows = self.with_client(async |c| {
            Ok(c.query(
                &format!(
                    "SELECT {RESULT_COLUMNS} FROM probe_results WHERE domain = $1 AND port = $2
                     ORDER BY id DESC LIMIT $3"
                ),
                &[&domain, &(port as i64), &(limit as i64)],
            )
            .await?)
        })?;
        rows.iter().map(|r| raw_result(r, 0).decode()).collect()
    }

    pub fn probe_report(&self, id: i64) -> Result<Option<HostReport>, StoreError> {
        let json: Option<String> = self.with_client(async |c| {
            Ok(
                c.query_opt("SELECT report FROM probe_results WHERE id = $1", &[&id])
                    .await?
                    .map(|r| r.get(0)),
            )
        })?;
        json.map(|j| serde_json::from_str(&j))
            .transpose()
            .map_err(json_err("probe_results.report"))
    }

    pub fn probe_status(&self, tag: Option<&str>) -> Result<Vec<ProbeStatusRow>, StoreError> {
        let (t_cols, r_cols) = (prefixed(TARGET_COLUMNS, "t"), prefixed(RESULT_COLUMNS, "r"));
        let rows = self.with_client(async |c| {
            Ok(c.query(
                &format!(
                    "SELECT {t_cols}, {r_cols} FROM probe_targets t
                     LEFT JOIN probe_results r ON r.id =
                         (SELECT MAX(id) FROM probe_results WHERE domain = t.domain AND port = t.port)
                     WHERE $1::text IS NULL OR t.tags::jsonb ? $1::text
                     ORDER BY t.domain COLLATE \"C\", t.port"
                ),
                &[&tag],
            )
            .await?)
        })?;
        let width = TARGET_COLUMNS.split(", ").count();
        rows.iter()
            .map(|r| {
                let has_result = r.get::<_, Option<i64>>(width).is_some();
                Ok(ProbeStatusRow {
                    target: raw_target(r, 0).decode()?,
                    latest: has_result
                        .then(|| raw_result(r, width).decode())
                        .transpose()?,
                })
            })
            .collect()
    }
}
