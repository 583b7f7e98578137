//! Probe history queries: one target's results, a stored report, and every target with its latest result
//! (`ctwatch report`).

use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;

use super::probe::{ProbeTarget, RawTarget, TARGET_COLUMNS, json_err, parse_enum};
use super::{Store, StoreError};
use crate::probe::{HostReport, Level, Status};

/// One stored probe result (the columns; the full [`HostReport`] is in `report` JSON).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProbeResultRow {
    pub id: i64,
    pub domain: String,
    pub port: u16,
    /// Unix seconds.
    pub probed_at: i64,
    pub status: Status,
    pub level: Level,
    pub days_left: Option<i64>,
    pub not_after: Option<String>,
    pub cert_sha256: Option<String>,
    pub issuer: Option<String>,
    pub seen_in_ct: Option<bool>,
}

/// A target with its latest result, for `ctwatch report`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProbeStatusRow {
    pub target: ProbeTarget,
    /// None until the first probe.
    pub latest: Option<ProbeResultRow>,
}

pub(super) const RESULT_COLUMNS: &str = "id, domain, port, probed_at, status, level, days_left, not_after, cert_sha256, issuer, seen_in_ct";

pub(super) struct RawResult(
    pub(super) ProbeResultRow,
    pub(super) String,
    pub(super) String,
);

impl RawResult {
    /// Reads `RESULT_COLUMNS` starting at column `at`.
    pub(super) fn read(r: &Row<'_>, at: usize) -> rusqlite::Result<RawResult> {
        Ok(RawResult(
            ProbeResultRow {
                id: r.get(at)?,
                domain: r.get(at + 1)?,
                port: r.get::<_, i64>(at + 2)? as u16,
                probed_at: r.get(at + 3)?,
                status: Status::Ok,
                level: Level::Ok,
                days_left: r.get(at + 6)?,
                not_after: r.get(at + 7)?,
                cert_sha256: r.get(at + 8)?,
                issuer: r.get(at + 9)?,
                seen_in_ct: r.get::<_, Option<i64>>(at + 10)?.map(|v| v != 0),
            },
            r.get(at + 4)?,
            r.get(at + 5)?,
        ))
    }

    pub(super) fn decode(self) -> Result<ProbeResultRow, StoreError> {
        let RawResult(mut row, status, level) = self;
        row.status = parse_enum("probe_results.status", status)?;
        row.level = parse_enum("probe_results.level", level)?;
        Ok(row)
    }
}

impl Store {
    /// The latest `limit` results of one target, newest first.
    pub fn probe_history(
        &self,
        domain: &str,
        port: u16,
        limit: usize,
    ) -> Result<Vec<ProbeResultRow>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.probe_history(domain, port, limit);
        }
        let raw: Vec<RawResult> = {
            let conn = self.conn();
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {RESULT_COLUMNS} FROM probe_results WHERE domain = ?1 AND port = ?2
                 ORDER BY id DESC LIMIT ?3"
            ))?;
            stmt.query_map(params![domain, port, limit as i64], |r| {
                RawResult::read(r, 0)
            })?
            .collect::<Result<_, _>>()?
        };
        raw.into_iter().map(RawResult::decode).collect()
    }

    /// The full report of a stored result.
    pub fn probe_report(&self, id: i64) -> Result<Option<HostReport>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.probe_report(id);
        }
        let json: Option<String> = self
            .conn()
            .query_row(
                "SELECT report FROM probe_results WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()?;
        json.map(|j| serde_json::from_str(&j))
            .transpose()
            .map_err(json_err("probe_results.report"))
    }

    /// Every target (with `tag`, when given) and its latest result, by domain.
    pub fn probe_status(&self, tag: Option<&str>) -> Result<Vec<ProbeStatusRow>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.probe_status(tag);
        }
        let raw: Vec<(RawTarget, Option<RawResult>)> = {
            let conn = self.conn();
            let t_cols = TARGET_COLUMNS
                .split(", ")
                .map(|c| format!("t.{c}"))
                .collect::<Vec<_>>()
                .join(", ");
            let r_cols = RESULT_COLUMNS
                .split(", ")
                .map(|c| format!("r.{c}"))
                .collect::<Vec<_>>()
                .join(", ");
            let mut stmt = conn.prepare(&format!(
                "SELECT {t_cols}, {r_cols} FROM probe_targets t
                 LEFT JOIN probe_results r ON r.id =
                     (SELECT MAX(id) FROM probe_results WHERE domain = t.domain AND port = t.port)
                 WHERE ?1 IS NULL OR EXISTS (SELECT 1 FROM json_each(t.tags) WHERE value = ?1)
                 ORDER BY t.domain, t.port"
            ))?;
            let width = TARGET_COLUMNS.split(", ").count();
            stmt.query_map([tag], |r| {
                let target = RawTarget::read(r)?;
                let has_result = r.get::<_, Option<i64>>(width)?.is_some();
                let result = has_result.then(|| RawResult::read(r, width)).transpose()?;
                Ok((target, result))
            })?
            .collect::<Result<_, _>>()?
        };
        raw.into_iter()
            .map(|(t, r)| {
                Ok(ProbeStatusRow {
                    target: t.decode()?,
                    latest: r.map(RawResult::decode).transpose()?,
                })
            })
            .collect()
    }
}
