//! Sinks paused because their target is gone (HTTP 404/410: a deleted Discord webhook, an archived Slack
//! channel). The pause lives in the database so that it holds across the `--once` drain and across restarts —
//! a deleted webhook must not burn one delivery per cron run — until the operator resumes the sink
//! (`ctwatch outbox retry [--sink NAME]`). Events keep being queued for a paused sink meanwhile.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Store, StoreError};

/// One paused sink.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SinkPause {
    pub sink: String,
    /// Unix seconds.
    pub paused_at: i64,
    /// The error that paused it.
    pub reason: String,
}

impl Store {
    /// Pause `sink` (kept until [`Store::resume_sinks`]); a sink already paused keeps its first time.
    pub fn pause_sink(&self, sink: &str, reason: &str, now: i64) -> Result<(), StoreError> {
        if let Some(pg) = self.pg() {
            return pg.pause_sink(sink, reason, now);
        }
        self.conn().execute(
            "INSERT INTO sink_pauses (sink, paused_at, reason) VALUES (?1, ?2, ?3)
             ON CONFLICT (sink) DO UPDATE SET reason = excluded.reason",
            params![sink, now, reason],
        )?;
        Ok(())
    }

    /// The pause of `sink`, if it is paused.
    pub fn sink_pause(&self, sink: &str) -> Result<Option<SinkPause>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.sink_pause(sink);
        }
        Ok(self
            .conn()
            .query_row(
                "SELECT sink, paused_at, reason FROM sink_pauses WHERE sink = ?1",
                params![sink],
                row,
            )
            .optional()?)
    }

    /// Every paused sink, by name.
    pub fn sink_pauses(&self) -> Result<Vec<SinkPause>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.sink_pauses();
        }
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT sink, paused_at, reason FROM sink_pauses ORDER BY sink")?;
        let rows = stmt.query_map([], row)?.collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Resume `sink` (every paused sink with None); returns the names resumed.
    pub fn resume_sinks(&self, sink: Option<&str>) -> Result<Vec<String>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.resume_sinks(sink);
        }
        let conn = self.conn();
        let mut stmt =
            conn.prepare("DELETE FROM sink_pauses WHERE ?1 IS NULL OR sink = ?1 RETURNING sink")?;
        let names = stmt
            .query_map(params![sink], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(names)
    }
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SinkPause> {
    Ok(SinkPause {
        sink: r.get(0)?,
        paused_at: r.get(1)?,
        reason: r.get(2)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_are_kept_until_resumed() {
        let store = Store::open_in_memory().unwrap();
        assert_eq!(store.sink_pause("chat").unwrap(), None);
        store.pause_sink("chat", "HTTP 404", 100).unwrap();
        store.pause_sink("chat", "HTTP 410", 200).unwrap();
        store.pause_sink("ops", "HTTP 404", 150).unwrap();
        let p = store.sink_pause("chat").unwrap().unwrap();
        assert_eq!((p.paused_at, p.reason.as_str()), (100, "HTTP 410"));
        assert_eq!(store.sink_pauses().unwrap().len(), 2);
        assert_eq!(store.resume_sinks(Some("chat")).unwrap(), ["chat"]);
        assert_eq!(store.sink_pause("chat").unwrap(), None);
        assert_eq!(store.resume_sinks(None).unwrap(), ["ops"]);
        assert!(store.sink_pauses().unwrap().is_empty());
    }
}
