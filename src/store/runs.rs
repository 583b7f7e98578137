//! Process runs: a row written when `ctwatch run` starts, refreshed while it lives and marked clean on a graceful
//! exit. A row still `running` at the next start whose process is gone means the previous run crashed (or was
//! killed), which the health monitor reports.

use rusqlite::params;

use super::{Store, StoreError};

/// Rows kept in `runs`; older ones are pruned at start.
const KEEP_RUNS: i64 = 100;

/// A previous run that ended without a clean exit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrashedRun {
    pub pid: u32,
    pub version: String,
    pub started_at: i64,
    /// Last time it was known alive (unix seconds).
    pub last_seen_at: i64,
}

impl Store {
    /// Record the start of this process and return the previous runs that never exited cleanly and whose process
    /// is gone (`is_alive(pid)` false); those are marked `crashed` so they are reported once. A row whose process
    /// still runs (a daemon while a `--once` run starts on the same database) is left alone.
    pub fn begin_run(
        &self,
        pid: u32,
        version: &str,
        now: i64,
        is_alive: impl Fn(u32) -> bool,
    ) -> Result<(i64, Vec<CrashedRun>), StoreError> {
        if let Some(pg) = self.pg() {
            return pg.begin_run(pid, version, now, is_alive);
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let open: Vec<(i64, CrashedRun)> = {
            let mut stmt = tx.prepare(
                "SELECT id, pid, version, started_at, last_seen_at FROM runs WHERE status = 'running' ORDER BY id",
            )?;
            stmt.query_map([], |r| {
                Ok((
                    r.get(0)?,
                    CrashedRun {
                        pid: r.get::<_, i64>(1)? as u32,
                        version: r.get(2)?,
                        started_at: r.get(3)?,
                        last_seen_at: r.get(4)?,
                    },
                ))
            })?
            .collect::<Result<_, _>>()?
        };
        let mut crashed = Vec::new();
        for (id, run) in open {
            if !is_alive(run.pid) {
                tx.execute("UPDATE runs SET status = 'crashed' WHERE id = ?1", [id])?;
                crashed.push(run);
            }
        }
        tx.execute(
            "INSERT INTO runs (pid, version, started_at, last_seen_at, status) VALUES (?1, ?2, ?3, ?3, 'running')",
            params![pid as i64, version, now],
        )?;
        let id = tx.last_insert_rowid();
        tx.execute(
            "DELETE FROM runs WHERE id <= ?1 AND status != 'running'",
            [id - KEEP_RUNS],
        )?;
        tx.commit()?;
        Ok((id, crashed))
    }

    /// Note that run `id` is still alive at `now`.
    pub fn touch_run(&self, id: i64, now: i64) -> Result<(), StoreError> {
        if let Some(pg) = self.pg() {
            return pg.touch_run(id, now);
        }
        self.conn().execute(
            "UPDATE runs SET last_seen_at = ?2 WHERE id = ?1",
            params![id, now],
        )?;
        Ok(())
    }

    /// Mark run `id` as ended cleanly.
    pub fn end_run(&self, id: i64, now: i64) -> Result<(), StoreError> {
        if let Some(pg) = self.pg() {
            return pg.end_run(id, now);
        }
        self.conn().execute(
            "UPDATE runs SET status = 'clean', ended_at = ?2, last_seen_at = ?2 WHERE id = ?1",
            params![id, now],
        )?;
        Ok(())
    }
}

/// Whether process `pid` exists on this machine. On Linux, `/proc/PID`; elsewhere we cannot tell cheaply and
/// answer false (a still-running daemon would then be reported as crashed by a concurrent run: rare, harmless).
pub fn process_alive(pid: u32) -> bool {
    cfg!(target_os = "linux") && std::path::Path::new("/proc").join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unclean_run_is_reported_once_and_a_clean_one_never() {
        let store = Store::open_in_memory().unwrap();
        let (first, crashed) = store.begin_run(111, "0.1.0", 1000, |_| false).unwrap();
        assert!(crashed.is_empty());
        store.touch_run(first, 1060).unwrap();
        // No end_run: the process was killed.
        let (second, crashed) = store.begin_run(222, "0.1.1", 2000, |_| false).unwrap();
        assert_eq!(
            crashed,
            vec![CrashedRun {
                pid: 111,
                version: "0.1.0".into(),
                started_at: 1000,
                last_seen_at: 1060
            }]
        );
        store.end_run(second, 2100).unwrap();
        let (_, crashed) = store.begin_run(333, "0.1.1", 3000, |_| false).unwrap();
        assert!(crashed.is_empty(), "{crashed:?}");
    }

    #[test]
    fn a_run_whose_process_is_alive_is_not_a_crash() {
        let store = Store::open_in_memory().unwrap();
        store.begin_run(111, "0.1.0", 1000, |_| false).unwrap();
        let (_, crashed) = store
            .begin_run(222, "0.1.0", 1100, |pid| pid == 111)
            .unwrap();
        assert!(crashed.is_empty());
        // Once 111 is gone, the next start reports it.
        let (_, crashed) = store
            .begin_run(333, "0.1.0", 1200, |pid| pid == 222)
            .unwrap();
        assert_eq!(crashed.len(), 1);
        assert_eq!(crashed[0].pid, 111);
    }

    #[test]
    fn this_process_is_alive() {
        if cfg!(target_os = "linux") {
            assert!(process_alive(std::process::id()));
            assert!(!process_alive(u32::MAX));
        }
    }
}
