//! Rewinding a known log: `ctwatch logs rewind LOG --to N` and `run --restart-at N` record the wish
//! (`logs.rewind_to`); the log's next tailer proves the tree at N against a fresh signed head and replaces the
//! stored position in one statement. Re-read entries are deduplicated as always (a certificate already stored
//! is not reported again).

use rusqlite::{OptionalExtension, params};

use super::{LogRow, Store, StoreError};
use crate::ct::merkle::CollapsedTree;
use crate::ctlog::TreeHead;

impl Store {
    /// Ask the next run to restart `log_id` at entry `to`. Returns false if the log is unknown.
    pub fn request_rewind(&self, log_id: &[u8; 32], to: u64) -> Result<bool, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.request_rewind(log_id, to);
        }
        let n = self.conn().execute(
            "UPDATE logs SET rewind_to = ?2 WHERE log_id = ?1",
            params![&log_id[..], to as i64],
        )?;
        Ok(n == 1)
    }

    /// The pending rewind of a log, if any.
    pub fn pending_rewind(&self, log_id: &[u8; 32]) -> Result<Option<u64>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.pending_rewind(log_id);
        }
        Ok(self
            .conn()
            .query_row(
                "SELECT rewind_to FROM logs WHERE log_id = ?1",
                [&log_id[..]],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()?
            .flatten()
            .map(|n| n as u64))
    }

    /// Replace a log's position by `tree` (proven against `head` by the caller) and clear its pending rewind.
    pub fn apply_rewind(
        &self,
        log_id: &[u8; 32],
        tree: &CollapsedTree,
        head: &TreeHead,
    ) -> Result<(), StoreError> {
        if let Some(pg) = self.pg() {
            return pg.apply_rewind(log_id, tree, head);
        }
        let at_head = head.tree_size == tree.size();
        self.conn().execute(
            "UPDATE logs SET collapsed_tree = ?2, verified_size = ?3, verified_root = ?4,
                    verified_sth_timestamp = ?5, rewind_to = NULL
             WHERE log_id = ?1",
            params![
                &log_id[..],
                tree.to_bytes(),
                tree.size() as i64,
                at_head.then(|| head.root_hash.to_vec()),
                at_head.then_some(head.timestamp_ms as i64)
            ],
        )?;
        Ok(())
    }

    /// The known logs whose URL or description contains `text` (case-insensitive), for `logs rewind`.
    pub fn find_logs(&self, text: &str) -> Result<Vec<LogRow>, StoreError> {
        let needle = text.to_lowercase();
        Ok(self
            .list_logs()?
            .into_iter()
            .filter(|l| {
                l.url.to_lowercase().contains(&needle)
                    || l.description.to_lowercase().contains(&needle)
            })
            .collect())
    }
}
