//! Small facts a run leaves for the read-only commands (`ctwatch logs` shows which log list the last run used
//! and how old it was).

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};

impl Store {
    /// Set a fact (replacing the previous value).
    pub fn set_fact(&self, key: &str, value: &str) -> Result<(), StoreError> {
        if let Some(pg) = self.pg() {
            return pg.set_fact(key, value);
        }
        self.conn().execute(
            "INSERT INTO facts (key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = ?2",
            params![key, value],
        )?;
        Ok(())
    }

    /// A fact, or None if never set.
    pub fn fact(&self, key: &str) -> Result<Option<String>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.fact(key);
        }
        Ok(self
            .conn()
            .query_row("SELECT value FROM facts WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }
}

impl Store {
    /// The newest event id (0 when there is none): `run --once` counts what it queued after it.
    pub fn last_event_id(&self) -> Result<i64, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.last_event_id();
        }
        Ok(self
            .conn()
            .query_row("SELECT COALESCE(MAX(id), 0) FROM events", [], |r| r.get(0))?)
    }

    /// Events queued after `after_id`, by kind.
    pub fn events_since(&self, after_id: i64) -> Result<Vec<(String, u64)>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.events_since(after_id);
        }
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT kind, COUNT(*) FROM events WHERE id > ?1 GROUP BY kind ORDER BY kind",
        )?;
        let rows = stmt.query_map([after_id], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deliveries marked delivered at or after `since` (unix seconds).
    pub fn delivered_since(&self, since: i64) -> Result<u64, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.delivered_since(since);
        }
        Ok(self.conn().query_row(
            "SELECT COUNT(*) FROM deliveries WHERE status = 'delivered' AND delivered_at >= ?1",
            [since],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Delete the undelivered (pending or failed) deliveries of one sink (`ctwatch outbox drop`). Returns how
    /// many.
    pub fn drop_undelivered(&self, sink: &str) -> Result<usize, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.drop_undelivered(sink);
        }
        Ok(self.conn().execute(
            "DELETE FROM deliveries WHERE sink = ?1 AND status != 'delivered'",
            [sink],
        )?)
    }

    /// Move the deliveries queued under an old sink name to its new name (default names changed format).
    pub fn rename_sink(&self, old: &str, new: &str) -> Result<usize, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.rename_sink(old, new);
        }
        Ok(self.conn().execute(
            "UPDATE OR IGNORE deliveries SET sink = ?2 WHERE sink = ?1",
            [old, new],
        )?)
    }
}
