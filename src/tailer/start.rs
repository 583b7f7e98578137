//! Where a log's verified position starts: a new log at `--start-at`, or a known log that was asked to rewind
//! (`ctwatch logs rewind`, `run --restart-at`). Either way the tree at the start is proven against the signed
//! head before it is stored.

use crate::ct::merkle::CollapsedTree;
use crate::ctlog::{CtLog, LogError, TreeHead};

use super::{StartAt, TailError, Tailer, blocking};

impl<L: CtLog> Tailer<L> {
    /// The entry a new log starts at; an index beyond the head is an error (not silently the head).
    pub(super) fn start_index(&self, head: &TreeHead) -> Result<u64, TailError> {
        match self.config.start_at {
            StartAt::End => Ok(head.tree_size),
            StartAt::Beginning => Ok(0),
            StartAt::Index(i) => self.within_head(i, head, "--start-at"),
        }
    }

    fn within_head(&self, i: u64, head: &TreeHead, what: &str) -> Result<u64, TailError> {
        if i > head.tree_size {
            return Err(TailError::BadStart(format!(
                "{what} {i} is beyond the head of {} (its signed tree has {} entries)",
                self.info.url, head.tree_size
            )));
        }
        Ok(i)
    }

    /// The collapsed tree of the first `target` entries, proven against `head`; when the log cannot prove it,
    /// a warning and the empty tree (the whole log is downloaded and verified from entry 0).
    pub(super) async fn tree_for_start(
        &self,
        target: u64,
        head: &TreeHead,
    ) -> Result<CollapsedTree, TailError> {
        if target == 0 {
            return Ok(CollapsedTree::new());
        }
        match self.log.tree_at(target, head).await {
            Ok(tree) => Ok(tree),
            Err(e) if !matches!(e, LogError::RootMismatch { .. }) => {
                tracing::warn!(
                    log = %self.info.url,
                    "cannot start at entry {target} ({e}); downloading the log from entry 0 instead \
                     (this can take long for a large log)"
                );
                Ok(CollapsedTree::new())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Apply a pending rewind of this (known) log, if one was requested. Returns true if it moved.
    pub(super) async fn apply_pending_rewind(&self, head: &TreeHead) -> Result<bool, TailError> {
        let store = self.store.clone();
        let id = self.info.log_id;
        let Some(to) = blocking(move || store.pending_rewind(&id)).await? else {
            return Ok(false);
        };
        let to = self.within_head(to, head, "rewind to entry")?;
        let tree = self.tree_for_start(to, head).await?;
        tracing::info!(log = %self.info.url, to = tree.size(), head = head.tree_size, "rewound: re-reading from here");
        let store = self.store.clone();
        let head = *head;
        blocking(move || store.apply_rewind(&id, &tree, &head)).await?;
        Ok(true)
    }
}
