//! Expiry probe targets on PostgreSQL (see `store/probe.rs`).

use std::collections::BTreeSet;

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::PgStore;
use super::outbox::insert_event;
use crate::probe::target::Target;
use crate::store::probe::{RawTarget, TARGET_COLUMNS, json_err};
use crate::store::{ProbeRecord, ProbeTarget, SinkRoute, StoreError, TargetSource};

/// A target from the [`TARGET_COLUMNS`] starting at column `at`.
pub(super) fn raw_target(r: &Row, at: usize) -> RawTarget {
    RawTarget(
        ProbeTarget {
            domain: r.get(at),
            port: r.get::<_, i64>(at + 1) as u16,
            tags: Vec::new(),
            source: TargetSource::parse(r.get(at + 3)),
            added_at: r.get(at + 4),
            next_probe_at: r.get(at + 5),
            last_probed_at: r.get(at + 6),
            consecutive_failures: r.get::<_, i64>(at + 7) as u32,
            snapshot: None,
        },
        r.get(at + 2),
        r.get(at + 8),
    )
}

/// Insert a target due at once, or add `tags` to an existing one (row-locked). Returns true when it is new.
pub(super) async fn upsert_target(
    c: &impl GenericClient,
    domain: &str,
    port: u16,
    tags: &BTreeSet<String>,
    source: TargetSource,
    now: i64,
) -> Result<bool, StoreError> {
    let list: Vec<&String> = tags.iter().collect();
    let inserted = c
        .execute(
            "INSERT INTO probe_targets (domain, port, tags, source, added_at, next_probe_at)
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT DO NOTHING",
            &[
                &domain,
                &(port as i64),
                &serde_json::to_string(&list).map_err(json_err("probe_targets.tags"))?,
                &source.as_str(),
                &now,
            ],
        )
        .await?;
    if inserted == 1 {
        return Ok(true);
    }
    let existing: String = c
        .query_one(
            "SELECT tags FROM probe_targets WHERE domain = $1 AND port = $2 FOR UPDATE",
            &[&domain, &(port as i64)],
        )
        .await?
        .get(0);
    let mut merged: BTreeSet<String> =
        serde_json::from_str(&existing).map_err(json_err("probe_targets.tags"))?;
    let before = merged.len();
    merged.extend(tags.iter().cloned());
    if merged.len() != before {
        c.execute(
            "UPDATE probe_targets SET tags = $3 WHERE domain = $1 AND port = $2",
            &[
                &domain,
                &(port as i64),
                &serde_json::to_string(&merged).map_err(json_err("probe_targets.tags"))?,
            ],
        )
        .await?;
    }
    Ok(false)
}

impl PgStore {
    pub fn add_probe_target(
        &self,
        target: &Target,
        tags: &[String],
        now: i64,
    ) -> Result<bool, StoreError> {
        let tags: BTreeSet<String> = tags.iter().cloned().collect();
        self.in_transaction(async |tx| {
            upsert_target(
                tx,
                &target.host,
                target.port,
                &tags,
                TargetSource::Manual,
                now,
            )
            .await
        })
    }

    /// Targets due at `now`, the longest-waiting first, at most `limit`, claimed for `instance` (see
    /// [`PgStore::claim_deliveries`]): instances sharing the database never probe the same target at once.
    pub fn due_probe_targets(
        &self,
        now: i64,
        limit: usize,
        instance: &str,
    ) -> Result<Vec<ProbeTarget>, StoreError> {
        let mut targets = self.select_targets(
            &format!(
                "UPDATE probe_targets SET claimed_by = $3, claim_until = $1 + $4
                 WHERE (domain, port) IN (
                     SELECT domain, port FROM probe_targets
                     WHERE next_probe_at <= $1 AND (claim_until IS NULL OR claim_until <= $1 OR claimed_by = $3)
                     ORDER BY next_probe_at, domain COLLATE \"C\", port LIMIT $2
                     FOR UPDATE SKIP LOCKED)
                 RETURNING {TARGET_COLUMNS}"
            ),
            &[&now, &(limit as i64), &instance, &super::outbox::CLAIM_SECS],
        )?;
        // RETURNING follows no ORDER BY: restore the longest-waiting-first order.
        targets.sort_by(|a, b| {
            (a.next_probe_at, a.domain.as_bytes(), a.port).cmp(&(
                b.next_probe_at,
                b.domain.as_bytes(),
                b.port,
            ))
        });
        Ok(targets)
    }

    pub fn next_probe_due(&self) -> Result<Option<i64>, StoreError> {
        self.with_client(async |c| {
            Ok(
                c.query_one("SELECT MIN(next_probe_at) FROM probe_targets", &[])
                    .await?
                    .get(0),
            )
        })
    }

    pub fn probe_target(&self, domain: &str, port: u16) -> Result<Option<ProbeTarget>, StoreError> {
        Ok(self
            .select_targets(
                &format!(
                    "SELECT {TARGET_COLUMNS} FROM probe_targets WHERE domain = $1 AND port = $2"
                ),
                &[&domain, &(port as i64)],
            )?
            .pop())
    }

    pub fn probe_targets(&self) -> Result<Vec<ProbeTarget>, StoreError> {
        self.select_targets(
            &format!(
                "SELECT {TARGET_COLUMNS} FROM probe_targets ORDER BY domain COLLATE \"C\", port"
            ),
            &[],
        )
    }

    fn select_targets(
        &self,
        sql: &str,
        args: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<ProbeTarget>, StoreError> {
        let rows = self.with_client(async |c| Ok(c.query(sql, args).await?))?;
        rows.iter().map(|r| raw_target(r, 0).decode()).collect()
    }

    pub fn record_probe(
        &self,
        rec: &ProbeRecord<'_>,
        routes: &[SinkRoute],
    ) -> Result<i64, StoreError> {
        let r = rec.report;
        let report_json = serde_json::to_string(r).map_err(json_err("probe_results.report"))?;
        let snapshot = rec
            .snapshot
            .map(serde_json::to_string)
            .transpose()
            .map_err(json_err("probe_targets.snapshot"))?;
        self.in_transaction(async |tx| {
            let id: i64 = tx
                .query_one(
                    "INSERT INTO probe_results (domain, port, probed_at, status, level, days_left, not_after,
                         cert_sha256, issuer, seen_in_ct, report)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
                    &[
                        &r.domain,
                        &(r.port as i64),
                        &rec.probed_at,
                        &r.status.as_str(),
                        &r.level.as_str(),
                        &r.days_left,
                        &r.not_after,
                        &r.cert_sha256,
                        &r.issuer,
                        &r.seen_in_ct.map(i64::from),
                        &report_json,
                    ],
                )
                .await?
                .get(0);
            tx.execute(
                "UPDATE probe_targets SET last_probed_at = $3, consecutive_failures = $4,
                     next_probe_at = $5, snapshot = COALESCE($6, snapshot)
                 WHERE domain = $1 AND port = $2",
                &[
                    &r.domain,
                    &(r.port as i64),
                    &rec.probed_at,
                    &(rec.consecutive_failures as i64),
                    &rec.next_probe_at,
                    &snapshot,
                ],
            )
            .await?;
            if let Some(ev) = rec.event {
                insert_event(tx, ev, routes, rec.probed_at).await?;
            }
            if let Some(findings) = rec.findings {
                super::expiry::apply_findings(tx, &r.domain, r.port, findings, routes, rec.probed_at)
                    .await?;
            }
            Ok(id)
        })
    }

    pub fn postpone_probe_target(
        &self,
        domain: &str,
        port: u16,
        at: i64,
    ) -> Result<(), StoreError> {
        self.with_client(async |c| {
            c.execute(
                "UPDATE probe_targets SET next_probe_at = $3 WHERE domain = $1 AND port = $2",
                &[&domain, &(port as i64), &at],
            )
            .await?;
            Ok(())
        })
    }
}
