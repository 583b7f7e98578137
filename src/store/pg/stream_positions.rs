//! The NATS stream's published positions (see `store/stream_positions.rs`), on PostgreSQL.

use super::{PgStore, now};
use crate::store::StoreError;

impl PgStore {
    /// The stored published position: `(collapsed tree bytes, published_size)`.
    pub fn stream_position_raw(
        &self,
        log_id: &[u8; 32],
    ) -> Result<Option<(Vec<u8>, i64)>, StoreError> {
        self.with_client(async |c| {
            let row = c
                .query_opt(
                    "SELECT collapsed_tree, published_size FROM stream_positions WHERE log_id = $1",
                    &[&&log_id[..]],
                )
                .await?;
            Ok(row.map(|r| (r.get(0), r.get(1))))
        })
    }

    /// Insert the position unless the log has one.
    pub fn init_stream_position(
        &self,
        log_id: &[u8; 32],
        size: i64,
        tree: &[u8],
    ) -> Result<(), StoreError> {
        self.with_client(async |c| {
            c.execute(
                "INSERT INTO stream_positions (log_id, published_size, collapsed_tree, updated_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (log_id) DO NOTHING",
                &[&&log_id[..], &size, &tree, &now()],
            )
            .await?;
            Ok(())
        })
    }

    /// Insert or move the position.
    pub fn set_stream_position(
        &self,
        log_id: &[u8; 32],
        size: i64,
        tree: &[u8],
    ) -> Result<(), StoreError> {
        self.with_client(async |c| {
            c.execute(
                "INSERT INTO stream_positions (log_id, published_size, collapsed_tree, updated_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (log_id) DO UPDATE SET published_size = $2, collapsed_tree = $3, updated_at = $4",
                &[&&log_id[..], &size, &tree, &now()],
            )
            .await?;
            Ok(())
        })
    }
}
