//! Metrics queries on PostgreSQL (see `store/metrics.rs`).

use std::collections::BTreeMap;

use super::PgStore;
use crate::store::metrics::unix_time_text;
use crate::store::{ProbeSample, SinkFailure, StoreError};

impl PgStore {
    pub fn events_by_kind(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        self.with_client(async |c| {
            Ok(
                c.query("SELECT kind, COUNT(*) FROM events GROUP BY kind", &[])
                    .await?
                    .iter()
                    .map(|r| (r.get(0), r.get::<_, i64>(1) as u64))
                    .collect(),
            )
        })
    }

    pub fn sink_failures(&self) -> Result<Vec<SinkFailure>, StoreError> {
        self.with_client(async |c| {
            Ok(c.query(
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
                 FROM bad GROUP BY sink ORDER BY sink COLLATE \"C\"",
                &[],
            )
            .await?
            .iter()
            .map(|r| SinkFailure {
                sink: r.get(0),
                failing_since: r.get(1),
                deliveries: r.get::<_, i64>(2) as u64,
                last_error: r.get(3),
            })
            .collect())
        })
    }

    pub fn latest_probe_results(&self) -> Result<Option<Vec<ProbeSample>>, StoreError> {
        // SQLite's bare columns next to MAX(probed_at): the newest result of each domain.
        let rows = self.with_client(async |c| {
            Ok(c.query(
                "SELECT domain, status, not_after, probed_at FROM (
                     SELECT DISTINCT ON (domain) domain, status, not_after, probed_at FROM probe_results
                     ORDER BY domain, probed_at DESC, id) x
                 ORDER BY x.domain COLLATE \"C\"",
                &[],
            )
            .await?)
        })?;
        let samples: Vec<ProbeSample> = rows
            .iter()
            .map(|r| ProbeSample {
                domain: r.get(0),
                status: r.get(1),
                not_after: r.get::<_, Option<&str>>(2).and_then(unix_time_text),
                probed_at: Some(r.get(3)),
            })
            .collect();
        Ok((!samples.is_empty()).then_some(samples))
    }
}
