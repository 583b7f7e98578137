//! The outbox: queued events and their per-sink delivery state.

use rusqlite::params;
use serde::Serialize;

use super::{Store, StoreError, batch::insert_event, unix_now};
use crate::event::Event;

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
        let routes = self.sink_routes();
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let id = insert_event(&tx, ev, &routes, unix_now())?;
        tx.commit()?;
        Ok(id)
    }

    /// Pending deliveries for `sink` that are due at `now`, oldest first.
    pub fn due_deliveries(
        &self,
        sink: &str,
        now: i64,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT d.event_id, d.sink, e.kind, e.group_key, e.tags, e.payload, d.attempts, e.created_at
             FROM deliveries d JOIN events e ON e.id = d.event_id
             WHERE d.sink = ?1 AND d.status = 'pending' AND d.next_attempt_at <= ?2
             ORDER BY d.event_id LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![sink, now, limit as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, i64>(6)?,
                r.get::<_, i64>(7)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (event_id, sink, kind, group_key, tags, payload, attempts, created_at) = row?;
            out.push(Delivery {
                event_id,
                sink,
                kind,
                group_key,
                tags: serde_json::from_str(&tags).map_err(|source| StoreError::Json {
                    what: "events.tags",
                    source,
                })?,
                payload: serde_json::from_str(&payload).map_err(|source| StoreError::Json {
                    what: "events.payload",
                    source,
                })?,
                attempts: attempts as u32,
                created_at,
            });
        }
        Ok(out)
    }

    /// The earliest time a pending delivery for `sink` becomes due, if any.
    pub fn next_due(&self, sink: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.conn().query_row(
            "SELECT MIN(next_attempt_at) FROM deliveries WHERE sink = ?1 AND status = 'pending'",
            [sink],
            |r| r.get(0),
        )?)
    }

    /// Mark deliveries as done (after the sink accepted them).
    pub fn mark_delivered(&self, sink: &str, event_ids: &[i64]) -> Result<(), StoreError> {
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
        Ok(self.conn().execute(
            "UPDATE deliveries SET status = 'pending', next_attempt_at = ?2, attempts = 0
             WHERE status = 'failed' AND (?1 IS NULL OR sink = ?1)",
            params![sink, unix_now()],
        )?)
    }

    /// Counts per sink.
    pub fn outbox_summary(&self) -> Result<Vec<OutboxSummary>, StoreError> {
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
