//! Sink pauses on PostgreSQL (see `store/pauses.rs`).

use super::PgStore;
use crate::store::{SinkPause, StoreError};

fn pause(r: &tokio_postgres::Row) -> SinkPause {
    SinkPause {
        sink: r.get(0),
        paused_at: r.get(1),
        reason: r.get(2),
    }
}

impl PgStore {
    pub fn pause_sink(&self, sink: &str, reason: &str, now: i64) -> Result<(), StoreError> {
        self.with_client(async |c| {
            c.execute(
                "INSERT INTO sink_pauses (sink, paused_at, reason) VALUES ($1, $2, $3)
                 ON CONFLICT (sink) DO UPDATE SET reason = excluded.reason",
                &[&sink, &now, &reason],
            )
            .await?;
            Ok(())
        })
    }

    pub fn sink_pause(&self, sink: &str) -> Result<Option<SinkPause>, StoreError> {
        self.with_client(async |c| {
            Ok(c.query_opt(
                "SELECT sink, paused_at, reason FROM sink_pauses WHERE sink = $1",
                &[&sink],
            )
            .await?
            .as_ref()
            .map(pause))
        })
    }

    pub fn sink_pauses(&self) -> Result<Vec<SinkPause>, StoreError> {
        self.with_client(async |c| {
            Ok(c.query(
                "SELECT sink, paused_at, reason FROM sink_pauses ORDER BY sink COLLATE \"C\"",
                &[],
            )
            .await?
            .iter()
            .map(pause)
            .collect())
        })
    }

    pub fn resume_sinks(&self, sink: Option<&str>) -> Result<Vec<String>, StoreError> {
        self.with_client(async |c| {
            Ok(c.query(
                "DELETE FROM sink_pauses WHERE $1::text IS NULL OR sink = $1 RETURNING sink",
                &[&sink],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect())
        })
    }
}
