//! Rewinding a known log on PostgreSQL (see `store/rewind.rs`).

use super::PgStore;
use crate::ct::merkle::CollapsedTree;
use crate::ctlog::TreeHead;
use crate::store::StoreError;

impl PgStore {
    pub fn request_rewind(&self, log_id: &[u8; 32], to: u64) -> Result<bool, StoreError> {
        self.with_client(async |c| {
            let n = c
                .execute(
                    "UPDATE logs SET rewind_to = $2 WHERE log_id = $1",
                    &[&&log_id[..], &(to as i64)],
                )
                .await?;
            Ok(n == 1)
        })
    }

    pub fn pending_rewind(&self, log_id: &[u8; 32]) -> Result<Option<u64>, StoreError> {
        self.with_client(async |c| {
            Ok(c.query_opt(
                "SELECT rewind_to FROM logs WHERE log_id = $1",
                &[&&log_id[..]],
            )
            .await?
            .and_then(|r| r.get::<_, Option<i64>>(0))
            .map(|n| n as u64))
        })
    }

    pub fn apply_rewind(
        &self,
        log_id: &[u8; 32],
        tree: &CollapsedTree,
        head: &TreeHead,
    ) -> Result<(), StoreError> {
        let at_head = head.tree_size == tree.size();
        self.with_client(async |c| {
            c.execute(
                "UPDATE logs SET collapsed_tree = $2, verified_size = $3, verified_root = $4,
                        verified_sth_timestamp = $5, rewind_to = NULL
                 WHERE log_id = $1",
                &[
                    &&log_id[..],
                    &tree.to_bytes(),
                    &(tree.size() as i64),
                    &at_head.then(|| head.root_hash.to_vec()),
                    &at_head.then_some(head.timestamp_ms as i64),
                ],
            )
            .await?;
            Ok(())
        })
    }
}
