//! Read-only aggregates for `/metrics` and the health checks: events by kind, failing sinks, latest probe results.

use std::collections::BTreeMap;

use rusqlite::params;

use super::{Store, StoreError};

/// A sink whose deliveries are failing now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkFailure {
    pub sink: String,
    /// Creation time (unix seconds) of the oldest event it failed to deliver: it has been failing at least since.
    pub failing_since: i64,
    /// Deliveries concerned (pending after a failed attempt, or given up since the sink's last success).
    pub deliveries: u64,
    pub last_error: Option<String>,
}

/// The latest probe result of one domain, when the probe results table exists.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeSample {
    pub domain: String,
    pub status: String,
    /// notAfter of the served certificate, unix seconds.
    pub not_after: Option<i64>,
    /// When it was probed, unix seconds (None if stored in a form we cannot read).
    pub probed_at: Option<i64>,
}

impl Store {
    /// Number of stored events per kind.
    pub fn events_by_kind(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.events_by_kind();
        }
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT kind, COUNT(*) FROM events GROUP BY kind")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Sinks that are failing: deliveries pending after at least one failed attempt, or given up (`failed`) after
    /// the sink's last successful delivery. A sink that recovered has neither.
    pub fn sink_failures(&self) -> Result<Vec<SinkFailure>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.sink_failures();
        }
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "WITH last_ok AS (
                 SELECT sink, MAX(delivered_at) AS at FROM deliveries WHERE status = 'delivered' GROUP BY sink
             ),
             bad AS (
                 SELECT d.sink, d.event_id, e.created_at, d.last_error FROM deliveries d
                 JOIN events e ON e.id = d.event_id
                 LEFT JOIN last_ok o ON o.sink = d.sink
                 WHERE (d.status = 'pending' AND d.attempts > 0)
                    OR (d.status = 'failed' AND e.created_at >= COALESCE(o.at, 0))
             )
             SELECT sink, MIN(created_at), COUNT(*),
                    (SELECT b2.last_error FROM bad b2 WHERE b2.sink = bad.sink ORDER BY b2.event_id DESC LIMIT 1)
             FROM bad GROUP BY sink ORDER BY sink",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(SinkFailure {
                sink: r.get(0)?,
                failing_since: r.get(1)?,
                deliveries: r.get::<_, i64>(2)? as u64,
                last_error: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The latest probe result per domain (from `probe_results`), or None when nothing was probed yet.
    pub fn latest_probe_results(&self) -> Result<Option<Vec<ProbeSample>>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.latest_probe_results();
        }
        let conn = self.conn();
        // SQLite takes the bare columns from the row holding MAX(probed_at).
        let mut stmt = conn.prepare(
            "SELECT domain, status, not_after, MAX(probed_at) FROM probe_results GROUP BY domain ORDER BY domain",
        )?;
        let rows: Vec<ProbeSample> = stmt
            .query_map(params![], |r| {
                Ok(ProbeSample {
                    domain: r.get(0)?,
                    status: r.get(1)?,
                    not_after: unix_time(r.get_ref(2)?),
                    probed_at: unix_time(r.get_ref(3)?),
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok((!rows.is_empty()).then_some(rows))
    }
}

/// Unix seconds from an integer column or an RFC 3339 text column.
/// An RFC 3339 time as unix seconds (both backends store `probe_results.not_after` as text).
pub(super) fn unix_time_text(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

fn unix_time(v: rusqlite::types::ValueRef<'_>) -> Option<i64> {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Integer(i) => Some(i),
        ValueRef::Real(f) => Some(f as i64),
        ValueRef::Text(t) => unix_time_text(std::str::from_utf8(t).ok()?),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::store::SinkRoute;

    fn event(kind: &str) -> Event {
        Event {
            kind: kind.into(),
            group_key: kind.into(),
            tags: vec![],
            payload: serde_json::json!({"kind": kind}),
        }
    }

    #[test]
    fn events_are_counted_by_kind() {
        let store = Store::open_in_memory().unwrap();
        for k in ["health", "new_certificate", "health", "lookalike", "health"] {
            store.queue_event(&event(k)).unwrap();
        }
        let counts = store.events_by_kind().unwrap();
        let expected: BTreeMap<String, u64> =
            [("health", 3), ("lookalike", 1), ("new_certificate", 1)]
                .into_iter()
                .map(|(k, n)| (k.to_string(), n))
                .collect();
        assert_eq!(counts, expected);
    }

    #[test]
    fn a_sink_fails_from_its_oldest_failed_event_until_it_delivers() {
        let store = Store::open_in_memory().unwrap();
        store.set_sink_routes(vec![SinkRoute::all("ok"), SinkRoute::all("hook")]);
        let a = store.queue_event(&event("health")).unwrap();
        let b = store.queue_event(&event("health")).unwrap();
        store.mark_delivered("ok", &[a, b]).unwrap();
        assert!(
            store.sink_failures().unwrap().is_empty(),
            "nothing tried yet"
        );
        store
            .mark_attempt_failed("hook", &[a, b], "HTTP 500", Some(i64::MAX))
            .unwrap();
        let created: i64 = store
            .conn()
            .query_row("SELECT created_at FROM events WHERE id = ?1", [a], |r| {
                r.get(0)
            })
            .unwrap();
        let f = store.sink_failures().unwrap();
        assert_eq!(
            f,
            vec![SinkFailure {
                sink: "hook".into(),
                failing_since: created,
                deliveries: 2,
                last_error: Some("HTTP 500".into())
            }]
        );
        store.mark_delivered("hook", &[a, b]).unwrap();
        assert!(store.sink_failures().unwrap().is_empty());
    }

    #[test]
    fn given_up_deliveries_count_until_a_later_success() {
        let store = Store::open_in_memory().unwrap();
        store.set_sink_routes(vec![SinkRoute::all("hook")]);
        let a = store.queue_event(&event("health")).unwrap();
        store
            .mark_attempt_failed("hook", &[a], "404", None)
            .unwrap();
        assert_eq!(store.sink_failures().unwrap().len(), 1);
        // Backdate the failed event so that a later delivery is strictly newer.
        store
            .conn()
            .execute(
                "UPDATE events SET created_at = created_at - 100 WHERE id = ?1",
                [a],
            )
            .unwrap();
        let b = store.queue_event(&event("health")).unwrap();
        store.mark_delivered("hook", &[b]).unwrap();
        assert!(store.sink_failures().unwrap().is_empty());
    }

    #[test]
    fn probe_results_are_absent_before_any_probe_and_latest_per_domain_after() {
        let store = Store::open_in_memory().unwrap();
        assert_eq!(store.latest_probe_results().unwrap(), None);
        store
            .conn()
            .execute_batch(
                "INSERT INTO probe_results (domain, port, probed_at, status, level, not_after, report)
                     VALUES ('a.example', 443, 100, 'warning', 'WARNING', '2026-01-01T00:00:00Z', '{}');
                 INSERT INTO probe_results (domain, port, probed_at, status, level, not_after, report)
                     VALUES ('a.example', 443, 200, 'expired', 'CRITICAL', '2025-01-01T00:00:00Z', '{}');
                 INSERT INTO probe_results (domain, port, probed_at, status, level, not_after, report)
                     VALUES ('b.example', 443, 150, 'unreachable', 'CRITICAL', NULL, '{}');",
            )
            .unwrap();
        let got = store.latest_probe_results().unwrap().unwrap();
        assert_eq!(
            got,
            vec![
                ProbeSample {
                    domain: "a.example".into(),
                    status: "expired".into(),
                    not_after: Some(1_735_689_600),
                    probed_at: Some(200),
                },
                ProbeSample {
                    domain: "b.example".into(),
                    status: "unreachable".into(),
                    not_after: None,
                    probed_at: Some(150),
                },
            ]
        );
    }
}
