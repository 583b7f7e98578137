//! Process runs on PostgreSQL (see `store/runs.rs`).

use super::PgStore;
use crate::store::{CrashedRun, StoreError};

/// Rows kept in `runs` (as on SQLite).
const KEEP_RUNS: i64 = 100;

impl PgStore {
    pub fn begin_run(
        &self,
        pid: u32,
        version: &str,
        now: i64,
        is_alive: impl Fn(u32) -> bool,
    ) -> Result<(i64, Vec<CrashedRun>), StoreError> {
        self.in_transaction(async |tx| {
            let open = tx
                .query(
                    "SELECT id, pid, version, started_at, last_seen_at FROM runs WHERE status = 'running'
                     ORDER BY id FOR UPDATE",
                    &[],
                )
                .await?;
            let mut crashed = Vec::new();
            for r in &open {
                let run = CrashedRun {
                    pid: r.get::<_, i64>(1) as u32,
                    version: r.get(2),
                    started_at: r.get(3),
                    last_seen_at: r.get(4),
                };
                if !is_alive(run.pid) {
                    tx.execute(
                        "UPDATE runs SET status = 'crashed' WHERE id = $1",
                        &[&r.get::<_, i64>(0)],
                    )
                    .await?;
                    crashed.push(run);
                }
            }
            let id: i64 = tx
                .query_one(
                    "INSERT INTO runs (pid, version, started_at, last_seen_at, status)
                     VALUES ($1, $2, $3, $3, 'running') RETURNING id",
                    &[&(pid as i64), &version, &now],
                )
                .await?
                .get(0);
            tx.execute(
                "DELETE FROM runs WHERE id <= $1 AND status != 'running'",
                &[&(id - KEEP_RUNS)],
            )
            .await?;
            Ok((id, crashed))
        })
    }

    pub fn touch_run(&self, id: i64, now: i64) -> Result<(), StoreError> {
        self.with_client(async |c| {
            c.execute(
                "UPDATE runs SET last_seen_at = $2 WHERE id = $1",
                &[&id, &now],
            )
            .await?;
            Ok(())
        })
    }

    pub fn end_run(&self, id: i64, now: i64) -> Result<(), StoreError> {
        self.with_client(async |c| {
            c.execute(
                "UPDATE runs SET status = 'clean', ended_at = $2, last_seen_at = $2 WHERE id = $1",
                &[&id, &now],
            )
            .await?;
            Ok(())
        })
    }
}
