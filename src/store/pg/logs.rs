//! Per-log state on PostgreSQL (see `store/logs.rs`).

use super::{PgStore, now};
use crate::ct::merkle::CollapsedTree;
use crate::ctlog::TreeHead;
use crate::store::{LogMeta, LogPosition, LogRow, StoreError, logs::decode_position};

impl PgStore {
    pub fn upsert_log(&self, meta: &LogMeta) -> Result<(), StoreError> {
        self.with_client(async |c| {
            c.execute(
                "INSERT INTO logs (log_id, url, kind, description, operator, state, added_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (log_id) DO UPDATE SET url = $2, kind = $3, description = $4, operator = $5,
                     state = $6",
                &[
                    &&meta.log_id[..],
                    &meta.url,
                    &meta.kind,
                    &meta.description,
                    &meta.operator,
                    &meta.state,
                    &now(),
                ],
            )
            .await?;
            Ok(())
        })
    }

    pub fn log_position(&self, log_id: &[u8; 32]) -> Result<Option<LogPosition>, StoreError> {
        let row = self.with_client(async |c| {
            Ok(c.query_opt(
                "SELECT collapsed_tree, verified_size, verified_root, verified_sth_timestamp FROM logs
                 WHERE log_id = $1 AND collapsed_tree IS NOT NULL",
                &[&&log_id[..]],
            )
            .await?)
        })?;
        let Some(r) = row else {
            return Ok(None);
        };
        decode_position(log_id, r.get(0), r.get(1), r.get(2), r.get(3)).map(Some)
    }

    pub fn init_log_position(
        &self,
        log_id: &[u8; 32],
        tree: &CollapsedTree,
        head: Option<&TreeHead>,
    ) -> Result<(), StoreError> {
        let head = head.filter(|h| h.tree_size == tree.size());
        self.with_client(async |c| {
            c.execute(
                "UPDATE logs SET collapsed_tree = $2, verified_size = $3, verified_root = $4,
                     verified_sth_timestamp = $5
                 WHERE log_id = $1 AND collapsed_tree IS NULL",
                &[
                    &&log_id[..],
                    &tree.to_bytes(),
                    &(tree.size() as i64),
                    &head.map(|h| h.root_hash.to_vec()),
                    &head.map(|h| h.timestamp_ms as i64),
                ],
            )
            .await?;
            Ok(())
        })
    }

    pub fn record_head(&self, log_id: &[u8; 32], head: &TreeHead) -> Result<(), StoreError> {
        self.with_client(async |c| {
            c.execute(
                "UPDATE logs SET head_size = $2, head_root = $3, head_timestamp = $4, last_success_at = $5
                 WHERE log_id = $1",
                &[
                    &&log_id[..],
                    &(head.tree_size as i64),
                    &&head.root_hash[..],
                    &(head.timestamp_ms as i64),
                    &now(),
                ],
            )
            .await?;
            Ok(())
        })
    }

    pub fn record_success(&self, log_id: &[u8; 32]) -> Result<(), StoreError> {
        self.with_client(async |c| {
            c.execute(
                "UPDATE logs SET last_success_at = $2 WHERE log_id = $1",
                &[&&log_id[..], &now()],
            )
            .await?;
            Ok(())
        })
    }

    pub fn record_error(&self, log_id: &[u8; 32], error: &str) -> Result<(), StoreError> {
        self.with_client(async |c| {
            c.execute(
                "UPDATE logs SET last_error = $2, last_error_at = $3 WHERE log_id = $1",
                &[&&log_id[..], &error, &now()],
            )
            .await?;
            Ok(())
        })
    }

    pub fn list_logs(&self) -> Result<Vec<LogRow>, StoreError> {
        let rows = self.with_client(async |c| {
            Ok(c.query(
                "SELECT log_id, url, kind, description, operator, state, verified_size, head_size,
                        last_success_at, last_error, last_error_at, entries_processed, verified_sth_timestamp,
                        (SELECT COUNT(*) FROM malformed m WHERE m.log_id = logs.log_id),
                        (SELECT published_size FROM stream_positions s WHERE s.log_id = logs.log_id)
                 FROM logs ORDER BY operator COLLATE \"C\", description COLLATE \"C\"",
                &[],
            )
            .await?)
        })?;
        Ok(rows
            .iter()
            .map(|r| {
                crate::store::logs::log_row(
                    r.get(0),
                    [r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)],
                    r.get(6),
                    r.get(7),
                    r.get(12),
                    (r.get(8), r.get(9), r.get(10)),
                    (r.get(11), r.get(13)),
                    r.get(14),
                )
            })
            .collect())
    }

    pub fn get_issuer(&self, sha256: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        self.with_client(async |c| {
            Ok(
                c.query_opt("SELECT der FROM issuers WHERE sha256 = $1", &[&&sha256[..]])
                    .await?
                    .map(|r| r.get(0)),
            )
        })
    }

    pub fn put_issuer(&self, sha256: &[u8; 32], der: &[u8]) -> Result<(), StoreError> {
        self.with_client(async |c| {
            c.execute(
                "INSERT INTO issuers (sha256, der, fetched_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&&sha256[..], &der, &now()],
            )
            .await?;
            Ok(())
        })
    }
}
