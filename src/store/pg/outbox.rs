//! The outbox on PostgreSQL (see `store/outbox.rs`).

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::PgStore;
use crate::event::Event;
use crate::notify::group::PendingRow;
use crate::store::{Delivery, OutboxItem, OutboxSummary, SinkRoute, StoreError, unix_now};

/// The columns `delivery` reads.
const DELIVERY_COLUMNS: &str =
    "d.event_id, d.sink, e.kind, e.group_key, e.tags, e.payload, d.attempts, e.created_at";

fn delivery(r: &Row) -> Result<Delivery, StoreError> {
    let json = |what, text: &str| {
        serde_json::from_str(text).map_err(|source| StoreError::Json { what, source })
    };
    Ok(Delivery {
        event_id: r.get(0),
        sink: r.get(1),
        kind: r.get(2),
        group_key: r.get(3),
        tags: serde_json::from_value(json("events.tags", r.get(4))?).map_err(|source| {
            StoreError::Json {
                what: "events.tags",
                source,
            }
        })?,
        payload: json("events.payload", r.get(5))?,
        attempts: r.get::<_, i64>(6) as u32,
        created_at: r.get(7),
    })
}

impl PgStore {
    pub fn queue_event_at(
        &self,
        ev: &Event,
        now: i64,
        routes: &[SinkRoute],
    ) -> Result<i64, StoreError> {
        self.in_transaction(async |tx| insert_event(tx, ev, routes, now).await)
    }

    /// Pending deliveries of `sink`, except those another instance claimed (see [`PgStore::claim_deliveries`]).
    pub fn pending_rows(
        &self,
        sink: &str,
        limit: usize,
        instance: &str,
    ) -> Result<Vec<PendingRow>, StoreError> {
        self.with_client(async |c| {
            let stmt = c
                .prepare_cached(
                    "SELECT d.event_id, e.group_key, e.created_at, d.next_attempt_at
                     FROM deliveries d JOIN events e ON e.id = d.event_id
                     WHERE d.sink = $1 AND d.status = 'pending'
                       AND (d.claim_until IS NULL OR d.claim_until <= $3 OR d.claimed_by = $4)
                     ORDER BY d.event_id LIMIT $2",
                )
                .await?;
            Ok(
                c.query(&stmt, &[&sink, &(limit as i64), &unix_now(), &instance])
                    .await?
                    .iter()
                    .map(|r| PendingRow {
                        event_id: r.get(0),
                        group_key: r.get(1),
                        created_at: r.get(2),
                        next_attempt_at: r.get(3),
                    })
                    .collect(),
            )
        })
    }

    pub fn pending_deliveries(
        &self,
        sink: &str,
        event_ids: &[i64],
    ) -> Result<Vec<Delivery>, StoreError> {
        let rows = self.with_client(async |c| {
            let stmt = c
                .prepare_cached(&format!(
                    "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id
                     WHERE d.sink = $1 AND d.event_id = ANY($2) AND d.status = 'pending'
                     ORDER BY d.event_id"
                ))
                .await?;
            Ok(c.query(&stmt, &[&sink, &event_ids]).await?)
        })?;
        // In the order of `event_ids`, as the SQLite backend answers.
        let mut by_id: std::collections::HashMap<i64, Delivery> = rows
            .iter()
            .map(|r| delivery(r).map(|d| (d.event_id, d)))
            .collect::<Result<_, _>>()?;
        Ok(event_ids.iter().filter_map(|id| by_id.remove(id)).collect())
    }

    pub fn undelivered(
        &self,
        sink: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        self.with_client(async |c| {
            Ok(c.query(
                "SELECT d.event_id, d.sink, e.kind, e.group_key, d.status, d.attempts, d.next_attempt_at,
                        d.last_error, e.created_at
                 FROM deliveries d JOIN events e ON e.id = d.event_id
                 WHERE d.status IN ('pending', 'failed') AND ($1::text IS NULL OR d.sink = $1)
                 ORDER BY d.event_id, d.sink COLLATE \"C\" LIMIT $2",
                &[&sink, &(limit as i64)],
            )
            .await?
            .iter()
            .map(|r| OutboxItem {
                event_id: r.get(0),
                sink: r.get(1),
                kind: r.get(2),
                group_key: r.get(3),
                status: r.get(4),
                attempts: r.get::<_, i64>(5) as u32,
                next_attempt_at: r.get(6),
                last_error: r.get(7),
                created_at: r.get(8),
            })
            .collect())
        })
    }

    pub fn due_deliveries(
        &self,
        sink: &str,
        now: i64,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let rows = self.with_client(async |c| {
            let stmt = c
                .prepare_cached(&format!(
                    "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id
                     WHERE d.sink = $1 AND d.status = 'pending' AND d.next_attempt_at <= $2
                     ORDER BY d.event_id LIMIT $3"
                ))
                .await?;
            Ok(c.query(&stmt, &[&sink, &now, &(limit as i64)]).await?)
        })?;
        rows.iter().map(delivery).collect()
    }

    pub fn next_due(&self, sink: &str) -> Result<Option<i64>, StoreError> {
        self.with_client(async |c| {
            Ok(c.query_one(
                "SELECT MIN(next_attempt_at) FROM deliveries WHERE sink = $1 AND status = 'pending'",
                &[&sink],
            )
            .await?
            .get(0))
        })
    }

    pub fn mark_delivered(&self, sink: &str, event_ids: &[i64]) -> Result<(), StoreError> {
        let now = unix_now();
        self.with_client(async |c| {
            c.execute(
                "UPDATE deliveries SET status = 'delivered', delivered_at = $3, attempts = attempts + 1,
                     last_error = NULL, claimed_by = NULL, claim_until = NULL
                 WHERE sink = $1 AND event_id = ANY($2)",
                &[&sink, &event_ids, &now],
            )
            .await?;
            Ok(())
        })
    }

    pub fn mark_attempt_failed(
        &self,
        sink: &str,
        event_ids: &[i64],
        error: &str,
        retry_at: Option<i64>,
    ) -> Result<(), StoreError> {
        self.with_client(async |c| {
            c.execute(
                "UPDATE deliveries SET attempts = attempts + 1, last_error = $3,
                     status = CASE WHEN $4::bigint IS NULL THEN 'failed' ELSE 'pending' END,
                     next_attempt_at = COALESCE($4, next_attempt_at), claimed_by = NULL, claim_until = NULL
                 WHERE sink = $1 AND event_id = ANY($2)",
                &[&sink, &event_ids, &error, &retry_at],
            )
            .await?;
            Ok(())
        })
    }

    pub fn requeue_failed(&self, sink: Option<&str>) -> Result<usize, StoreError> {
        self.with_client(async |c| {
            Ok(c.execute(
                "UPDATE deliveries SET status = 'pending', next_attempt_at = $2, attempts = 0
                 WHERE status = 'failed' AND ($1::text IS NULL OR sink = $1)",
                &[&sink, &unix_now()],
            )
            .await? as usize)
        })
    }

    pub fn outbox_summary(&self) -> Result<Vec<OutboxSummary>, StoreError> {
        self.with_client(async |c| {
            Ok(c.query(
                "SELECT sink, COUNT(*) FILTER (WHERE status = 'pending'), COUNT(*) FILTER (WHERE status = 'failed'),
                        COUNT(*) FILTER (WHERE status = 'delivered')
                 FROM deliveries GROUP BY sink ORDER BY sink COLLATE \"C\"",
                &[],
            )
            .await?
            .iter()
            .map(|r| OutboxSummary {
                sink: r.get(0),
                pending: r.get::<_, i64>(1) as u64,
                failed: r.get::<_, i64>(2) as u64,
                delivered: r.get::<_, i64>(3) as u64,
            })
            .collect())
        })
    }

    /// See `Store::deliver_in_transaction`: `send` runs while the marks are uncommitted and the rows locked. The
    /// rows are picked `FOR UPDATE SKIP LOCKED`, so instances sharing the database never print the same event:
    /// each takes rows no other transaction holds.
    pub fn deliver_in_transaction<E>(
        &self,
        sink: &str,
        now: i64,
        limit: usize,
        send: impl FnOnce(&[Delivery]) -> Result<(), E>,
    ) -> Result<Result<usize, E>, StoreError> {
        self.block(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let rows = tx
                .query(
                    &format!(
                        "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id
                         WHERE d.sink = $1 AND d.status = 'pending' AND d.next_attempt_at <= $2
                           AND (d.claim_until IS NULL OR d.claim_until <= $2)
                         ORDER BY d.event_id LIMIT $3
                         FOR UPDATE OF d SKIP LOCKED"
                    ),
                    &[&sink, &now, &(limit as i64)],
                )
                .await?;
            let due: Vec<Delivery> = rows.iter().map(delivery).collect::<Result<_, _>>()?;
            if due.is_empty() {
                return Ok(Ok(0));
            }
            let ids: Vec<i64> = due.iter().map(|d| d.event_id).collect();
            tx.execute(
                "UPDATE deliveries SET status = 'delivered', delivered_at = $3, attempts = attempts + 1,
                     last_error = NULL
                 WHERE sink = $1 AND event_id = ANY($2) AND status = 'pending'",
                &[&sink, &ids, &now],
            )
            .await?;
            if let Err(e) = send(&due) {
                tx.rollback().await?;
                return Ok(Err(e));
            }
            tx.commit().await?;
            Ok(Ok(due.len()))
        })
    }

    /// Claim the deliveries `event_ids` of `sink` for `instance` until `now + CLAIM_SECS`: those still pending
    /// and not claimed by another instance (or whose claim expired), taken `FOR UPDATE SKIP LOCKED` so two
    /// instances claiming at once split them. Returns the claimed ids, in the order given.
    pub fn claim_deliveries(
        &self,
        sink: &str,
        event_ids: &[i64],
        instance: &str,
        now: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let claimed: std::collections::HashSet<i64> = self.with_client(async |c| {
            Ok(c.query(
                "UPDATE deliveries SET claimed_by = $3, claim_until = $4 + $5
                 WHERE sink = $1 AND event_id IN (
                     SELECT event_id FROM deliveries
                     WHERE sink = $1 AND event_id = ANY($2) AND status = 'pending'
                       AND (claim_until IS NULL OR claim_until <= $4 OR claimed_by = $3)
                     FOR UPDATE SKIP LOCKED)
                 RETURNING event_id",
                &[&sink, &event_ids, &instance, &now, &CLAIM_SECS],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect())
        })?;
        Ok(event_ids
            .iter()
            .copied()
            .filter(|id| claimed.contains(id))
            .collect())
    }
}

/// How long a claimed delivery or probe target stays with the instance that claimed it, seconds: longer than
/// any delivery or probe takes; after it, another instance takes over (the claimer died).
pub const CLAIM_SECS: i64 = 300;

/// Queue an event for every sink whose route accepts it (inside the caller's transaction).
pub(super) async fn insert_event(
    c: &impl GenericClient,
    ev: &Event,
    routes: &[SinkRoute],
    now: i64,
) -> Result<i64, StoreError> {
    let id: i64 = c
        .query_one(
            "INSERT INTO events (kind, created_at, group_key, tags, payload) VALUES ($1, $2, $3, $4, $5)
             RETURNING id",
            &[
                &ev.kind,
                &now,
                &ev.group_key,
                &serde_json::to_string(&ev.tags).unwrap_or_else(|_| "[]".into()),
                &ev.payload.to_string(),
            ],
        )
        .await?
        .get(0);
    for route in routes.iter().filter(|r| r.accepts(&ev.kind, &ev.tags)) {
        c.execute(
            "INSERT INTO deliveries (event_id, sink, status, next_attempt_at) VALUES ($1, $2, 'pending', $3)",
            &[&id, &route.name, &now],
        )
        .await?;
    }
    Ok(id)
}
