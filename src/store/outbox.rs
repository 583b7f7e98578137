//! The outbox: queued events and their per-sink delivery state.

use rusqlite::{Transaction, params};
use serde::Serialize;

use super::{Store, StoreError, unix_now};
use crate::event::Event;
use crate::notify::group::PendingRow;

/// Which events a sink receives. Empty lists accept everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SinkRoute {
    pub name: String,
    /// Event kinds (`new_certificate`, `unauthorized_issuer`, `lookalike`, ...).
    pub kinds: Vec<String>,
    /// Watchlist tags; an event passes if it carries any of them.
    pub tags: Vec<String>,
}

impl SinkRoute {
    /// A route that takes every event.
    pub fn all(name: &str) -> SinkRoute {
        SinkRoute {
            name: name.to_string(),
            ..Default::default()
        }
    }

    pub fn accepts(&self, kind: &str, tags: &[String]) -> bool {
        (self.kinds.is_empty() || self.kinds.iter().any(|k| k == kind))
            && (self.tags.is_empty() || self.tags.iter().any(|t| tags.contains(t)))
    }
}

/// One pending delivery of an event to a sink.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub event_id: i64,
    pub sink: String,
    pub kind: String,
    pub group_key: String,
    pub tags: Vec<String>,
    pub payload: serde_json::Value,
    pub attempts: u32,
    pub created_at: i64,
}

/// One undelivered (pending or failed) delivery, for `ctwatch outbox`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct OutboxItem {
    pub event_id: i64,
    pub sink: String,
    pub kind: String,
    pub group_key: String,
    /// `pending` or `failed`.
    pub status: String,
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
}

/// Per-sink counts for `ctwatch outbox` and metrics.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct OutboxSummary {
    pub sink: String,
    pub pending: u64,
    pub failed: u64,
    pub delivered: u64,
}

impl Store {
    /// Queue an event that is not tied to a batch (health alerts, probe results, test messages).
    pub fn queue_event(&self, ev: &Event) -> Result<i64, StoreError> {
        self.queue_event_at(ev, unix_now())
    }

    /// [`Store::queue_event`] with an explicit creation time (unix seconds; tests with a swapped clock).
    pub fn queue_event_at(&self, ev: &Event, now: i64) -> Result<i64, StoreError> {
        let routes = self.sink_routes();
        if let Some(pg) = self.pg() {
            return pg.queue_event_at(ev, now, &routes);
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let id = insert_event(&tx, ev, &routes, now)?;
        tx.commit()?;
        Ok(id)
    }

    /// Claim the deliveries `event_ids` of `sink` before sending them: on a database shared by several instances,
    /// returns those this instance may send (pending, not claimed by another instance; the claim lasts until they
    /// are marked or it expires). A SQLite database has one instance: every id, unchanged.
    pub fn claim_deliveries(
        &self,
        sink: &str,
        event_ids: &[i64],
        now: i64,
    ) -> Result<Vec<i64>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.claim_deliveries(sink, event_ids, self.instance().unwrap_or(""), now);
        }
        Ok(event_ids.to_vec())
    }

    /// What the delivery planner needs about the pending deliveries of `sink`, oldest `limit` first (on a shared
    /// database, without those another instance claimed).
    pub fn pending_rows(&self, sink: &str, limit: usize) -> Result<Vec<PendingRow>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.pending_rows(sink, limit, self.instance().unwrap_or(""));
        }
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT d.event_id, e.group_key, e.created_at, d.next_attempt_at
             FROM deliveries d JOIN events e ON e.id = d.event_id
             WHERE d.sink = ?1 AND d.status = 'pending'
             ORDER BY d.event_id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![sink, limit as i64], |r| {
            Ok(PendingRow {
                event_id: r.get(0)?,
                group_key: r.get(1)?,
                created_at: r.get(2)?,
                next_attempt_at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The still-pending deliveries of `sink` among `event_ids`, in id order.
    pub fn pending_deliveries(
        &self,
        sink: &str,
        event_ids: &[i64],
    ) -> Result<Vec<Delivery>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.pending_deliveries(sink, event_ids);
        }
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT d.event_id, d.sink, e.kind, e.group_key, e.tags, e.payload, d.attempts, e.created_at
             FROM deliveries d JOIN events e ON e.id = d.event_id
             WHERE d.sink = ?1 AND d.event_id = ?2 AND d.status = 'pending'",
        )?;
        let mut out = Vec::with_capacity(event_ids.len());
        for id in event_ids {
            let mut rows = stmt.query(params![sink, id])?;
            if let Some(r) = rows.next()? {
                out.push(delivery_from_row(r)?);
            }
        }
        Ok(out)
    }

    /// Pending and failed deliveries, oldest first, for `ctwatch outbox` (at most `limit`).
    pub fn undelivered(
        &self,
        sink: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.undelivered(sink, limit);
        }
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT d.event_id, d.sink, e.kind, e.group_key, d.status, d.attempts, d.next_attempt_at,
                    d.last_error, e.created_at
             FROM deliveries d JOIN events e ON e.id = d.event_id
             WHERE d.status IN ('pending', 'failed') AND (?1 IS NULL OR d.sink = ?1)
             ORDER BY d.event_id, d.sink LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![sink, limit as i64], |r| {
            Ok(OutboxItem {
                event_id: r.get(0)?,
                sink: r.get(1)?,
                kind: r.get(2)?,
                group_key: r.get(3)?,
                status: r.get(4)?,
                attempts: r.get::<_, i64>(5)? as u32,
                next_attempt_at: r.get(6)?,
                last_error: r.get(7)?,
                created_at: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Pending deliveries for `sink` that are due at `now`, oldest first.
    pub fn due_deliveries(
        &self,
        sink: &str,
        now: i64,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.due_deliveries(sink, now, limit);
        }
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT d.event_id, d.sink, e.kind, e.group_key, e.tags, e.payload, d.attempts, e.created_at
             FROM deliveries d JOIN events e ON e.id = d.event_id
             WHERE d.sink = ?1 AND d.status = 'pending' AND d.next_attempt_at <= ?2
             ORDER BY d.event_id LIMIT ?3",
        )?;
        let mut rows = stmt.query(params![sink, now, limit as i64])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(delivery_from_row(r)?);
        }
        Ok(out)
    }

    /// The earliest time a pending delivery for `sink` becomes due, if any.
    pub fn next_due(&self, sink: &str) -> Result<Option<i64>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.next_due(sink);
        }
        Ok(self.conn().query_row(
            "SELECT MIN(next_attempt_at) FROM deliveries WHERE sink = ?1 AND status = 'pending'",
            [sink],
            |r| r.get(0),
        )?)
    }

    /// Mark deliveries as done (after the sink accepted them).
    pub fn mark_delivered(&self, sink: &str, event_ids: &[i64]) -> Result<(), StoreError> {
        if let Some(pg) = self.pg() {
            return pg.mark_delivered(sink, event_ids);
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let now = unix_now();
        for id in event_ids {
            tx.execute(
                "UPDATE deliveries SET status = 'delivered', delivered_at = ?3, attempts = attempts + 1,
                     last_error = NULL
                 WHERE sink = ?1 AND event_id = ?2",
                params![sink, id, now],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Record a failed attempt: retry at `retry_at`, or give up (`failed`) when `retry_at` is None.
    pub fn mark_attempt_failed(
        &self,
        sink: &str,
        event_ids: &[i64],
        error: &str,
        retry_at: Option<i64>,
    ) -> Result<(), StoreError> {
        if let Some(pg) = self.pg() {
            return pg.mark_attempt_failed(sink, event_ids, error, retry_at);
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for id in event_ids {
            tx.execute(
                "UPDATE deliveries SET attempts = attempts + 1, last_error = ?3,
                     status = CASE WHEN ?4 IS NULL THEN 'failed' ELSE 'pending' END,
                     next_attempt_at = COALESCE(?4, next_attempt_at)
                 WHERE sink = ?1 AND event_id = ?2",
                params![sink, id, error, retry_at],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Put failed deliveries back in the queue (`ctwatch outbox retry`). Returns how many.
    pub fn requeue_failed(&self, sink: Option<&str>) -> Result<usize, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.requeue_failed(sink);
        }
        Ok(self.conn().execute(
            "UPDATE deliveries SET status = 'pending', next_attempt_at = ?2, attempts = 0
             WHERE status = 'failed' AND (?1 IS NULL OR sink = ?1)",
            params![sink, unix_now()],
        )?)
    }

    /// Counts per sink.
    pub fn outbox_summary(&self) -> Result<Vec<OutboxSummary>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.outbox_summary();
        }
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT sink, SUM(status = 'pending'), SUM(status = 'failed'), SUM(status = 'delivered')
             FROM deliveries GROUP BY sink ORDER BY sink",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(OutboxSummary {
                sink: r.get(0)?,
                pending: r.get::<_, i64>(1)? as u64,
                failed: r.get::<_, i64>(2)? as u64,
                delivered: r.get::<_, i64>(3)? as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// A `Delivery` from the columns event_id, sink, kind, group_key, tags, payload, attempts, created_at.
fn delivery_from_row(r: &rusqlite::Row<'_>) -> Result<Delivery, StoreError> {
    let tags: String = r.get(4)?;
    let payload: String = r.get(5)?;
    Ok(Delivery {
        event_id: r.get(0)?,
        sink: r.get(1)?,
        kind: r.get(2)?,
        group_key: r.get(3)?,
        tags: serde_json::from_str(&tags).map_err(|source| StoreError::Json {
            what: "events.tags",
            source,
        })?,
        payload: serde_json::from_str(&payload).map_err(|source| StoreError::Json {
            what: "events.payload",
            source,
        })?,
        attempts: r.get::<_, i64>(6)? as u32,
        created_at: r.get(7)?,
    })
}

impl Store {
    /// Deliver to a local, fast sink (stdout) inside the transaction that marks the deliveries done: `send` runs
    /// between selecting and committing, so a kill can only repeat what `send` wrote in the instant of the commit
    /// itself. Never use this for network sinks: it holds the write lock while `send` runs.
    pub fn deliver_in_transaction<E>(
        &self,
        sink: &str,
        now: i64,
        limit: usize,
        send: impl FnOnce(&[Delivery]) -> Result<(), E>,
    ) -> Result<Result<usize, E>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.deliver_in_transaction(sink, now, limit, send);
        }
        let due = self.due_deliveries(sink, now, limit)?;
        if due.is_empty() {
            return Ok(Ok(0));
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for d in &due {
            tx.execute(
                "UPDATE deliveries SET status = 'delivered', delivered_at = ?3, attempts = attempts + 1,
                     last_error = NULL
                 WHERE sink = ?1 AND event_id = ?2 AND status = 'pending'",
                params![sink, d.event_id, now],
            )?;
        }
        if let Err(e) = send(&due) {
            return Ok(Err(e)); // dropping the transaction rolls the marks back
        }
        tx.commit()?;
        Ok(Ok(due.len()))
    }
}

/// Queue an event for every sink whose route accepts it.
pub(super) fn insert_event(
    tx: &Transaction<'_>,
    ev: &Event,
    routes: &[super::SinkRoute],
    now: i64,
) -> Result<i64, StoreError> {
    tx.execute(
        "INSERT INTO events (kind, created_at, group_key, tags, payload) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            ev.kind,
            now,
            ev.group_key,
            serde_json::to_string(&ev.tags).unwrap_or_else(|_| "[]".into()),
            ev.payload.to_string()
        ],
    )?;
    let id = tx.last_insert_rowid();
    for route in routes.iter().filter(|r| r.accepts(&ev.kind, &ev.tags)) {
        tx.execute(
            "INSERT INTO deliveries (event_id, sink, status, next_attempt_at) VALUES (?1, ?2, 'pending', ?3)",
            params![id, route.name, now],
        )?;
    }
    Ok(id)
}
