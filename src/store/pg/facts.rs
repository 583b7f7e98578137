//! Facts and run counters on PostgreSQL (see `store/facts.rs`).

use super::PgStore;
use crate::store::StoreError;

impl PgStore {
    pub fn set_fact(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.with_client(async |c| {
            c.execute(
                "INSERT INTO facts (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = $2",
                &[&key, &value],
            )
            .await?;
            Ok(())
        })
    }

    pub fn fact(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.with_client(async |c| {
            Ok(
                c.query_opt("SELECT value FROM facts WHERE key = $1", &[&key])
                    .await?
                    .map(|r| r.get(0)),
            )
        })
    }

    pub fn last_event_id(&self) -> Result<i64, StoreError> {
        self.with_client(async |c| {
            Ok(c.query_one("SELECT COALESCE(MAX(id), 0) FROM events", &[])
                .await?
                .get(0))
        })
    }

    pub fn events_since(&self, after_id: i64) -> Result<Vec<(String, u64)>, StoreError> {
        self.with_client(async |c| {
            let rows = c
                .query(
                    "SELECT kind, COUNT(*) FROM events WHERE id > $1 GROUP BY kind ORDER BY kind COLLATE \"C\"",
                    &[&after_id],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| (r.get(0), r.get::<_, i64>(1) as u64))
                .collect())
        })
    }

    pub fn delivered_since(&self, since: i64) -> Result<u64, StoreError> {
        self.with_client(async |c| {
            Ok(c.query_one(
                "SELECT COUNT(*) FROM deliveries WHERE status = 'delivered' AND delivered_at >= $1",
                &[&since],
            )
            .await?
            .get::<_, i64>(0) as u64)
        })
    }

    pub fn drop_undelivered(&self, sink: &str) -> Result<usize, StoreError> {
        self.with_client(async |c| {
            Ok(c.execute(
                "DELETE FROM deliveries WHERE sink = $1 AND status != 'delivered'",
                &[&sink],
            )
            .await? as usize)
        })
    }

    pub fn rename_sink(&self, old: &str, new: &str) -> Result<usize, StoreError> {
        // SQLite's `UPDATE OR IGNORE`: a delivery already queued under the new name keeps the old row.
        self.with_client(async |c| {
            Ok(c.execute(
                "UPDATE deliveries d SET sink = $2 WHERE d.sink = $1
                   AND NOT EXISTS (SELECT 1 FROM deliveries n WHERE n.sink = $2 AND n.event_id = d.event_id)",
                &[&old, &new],
            )
            .await? as usize)
        })
    }
}
