//! The NATS stream's published position per log: entries `[0, published_size)` that were committed were also
//! published and acknowledged by JetStream (or were committed before the stream was configured).
//!
//! Kept apart from the log's committed position on purpose: the commit must not wait for NATS, so the published
//! position trails it by the batches queued for the publisher. A restart re-reads `[published, committed)` from the
//! log (see `tailer::republish`). Three small statements, easy to port to another backend.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, unix_now};
use crate::ct::merkle::CollapsedTree;

impl Store {
    /// The published position of a log (its collapsed tree), or None when the stream never saw this log.
    pub fn stream_position(&self, log_id: &[u8; 32]) -> Result<Option<CollapsedTree>, StoreError> {
        let row: Option<(Vec<u8>, i64)> = match self.pg() {
            Some(pg) => pg.stream_position_raw(log_id)?,
            None => self
                .conn()
                .query_row(
                    "SELECT collapsed_tree, published_size FROM stream_positions WHERE log_id = ?1",
                    [&log_id[..]],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?,
        };
        let Some((bytes, size)) = row else {
            return Ok(None);
        };
        let corrupt = |reason: String| StoreError::CorruptTree {
            log: format!("{} (stream position)", hex::encode(log_id)),
            reason,
        };
        let tree = CollapsedTree::from_bytes(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if tree.size() != size as u64 {
            return Err(corrupt(format!(
                "tree size {} != published_size {size}",
                tree.size()
            )));
        }
        Ok(Some(tree))
    }

    /// Give a log its first published position (where publishing starts) unless it has one: a second start
    /// never moves an existing position.
    pub fn init_stream_position(
        &self,
        log_id: &[u8; 32],
        tree: &CollapsedTree,
    ) -> Result<(), StoreError> {
        if let Some(pg) = self.pg() {
            return pg.init_stream_position(log_id, tree.size() as i64, &tree.to_bytes());
        }
        self.conn().execute(
            "INSERT INTO stream_positions (log_id, published_size, collapsed_tree, updated_at)
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT(log_id) DO NOTHING",
            params![&log_id[..], tree.size() as i64, tree.to_bytes(), unix_now()],
        )?;
        Ok(())
    }

    /// Record that every committed entry below `tree.size()` was published and acknowledged.
    pub fn set_stream_position(
        &self,
        log_id: &[u8; 32],
        tree: &CollapsedTree,
    ) -> Result<(), StoreError> {
        if let Some(pg) = self.pg() {
            return pg.set_stream_position(log_id, tree.size() as i64, &tree.to_bytes());
        }
        self.conn().execute(
            "INSERT INTO stream_positions (log_id, published_size, collapsed_tree, updated_at)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(log_id) DO UPDATE SET published_size = ?2, collapsed_tree = ?3, updated_at = ?4",
            params![&log_id[..], tree.size() as i64, tree.to_bytes(), unix_now()],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::ct::merkle::CollapsedTree;
    use crate::store::Store;

    fn tree(n: u8) -> CollapsedTree {
        let mut t = CollapsedTree::new();
        for i in 0..n {
            t.push([i; 32]);
        }
        t
    }

    #[test]
    fn init_never_moves_an_existing_position_and_set_does() {
        let store = Store::open_in_memory().unwrap();
        let id = [9; 32];
        assert!(store.stream_position(&id).unwrap().is_none());
        store.init_stream_position(&id, &tree(5)).unwrap();
        store.init_stream_position(&id, &tree(9)).unwrap();
        let got = store.stream_position(&id).unwrap().unwrap();
        assert_eq!((got.size(), got.root()), (5, tree(5).root()));
        store.set_stream_position(&id, &tree(7)).unwrap();
        let got = store.stream_position(&id).unwrap().unwrap();
        assert_eq!((got.size(), got.root()), (7, tree(7).root()));
        store.set_stream_position(&id, &tree(3)).unwrap();
        assert_eq!(store.stream_position(&id).unwrap().unwrap().size(), 3);
    }
}
