//! Per-log state: identity, verified position, last head seen, last contact and error.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Store, StoreError, unix_now};
use crate::ct::merkle::{CollapsedTree, Hash};
use crate::ctlog::TreeHead;

/// What the log list says about a log (refreshed on every start).
#[derive(Clone, Debug)]
pub struct LogMeta {
    pub log_id: [u8; 32],
    pub url: String,
    pub kind: &'static str,
    pub description: String,
    pub operator: String,
    pub state: String,
}

/// A log's verified position: entries `[0, tree.size())` are stored and hash to `verified_root`.
#[derive(Clone, Debug)]
pub struct LogPosition {
    pub tree: CollapsedTree,
    /// The newest signed tree head we verified entries against (None before the first batch).
    pub verified_head: Option<TreeHead>,
}

/// One row of `ctwatch logs`.
#[derive(Clone, Debug, Serialize)]
pub struct LogRow {
    pub log_id: String,
    pub url: String,
    pub kind: String,
    pub description: String,
    pub operator: String,
    pub state: String,
    pub verified_size: u64,
    pub head_size: Option<u64>,
    pub backlog: Option<u64>,
    /// Seconds of the log's growth not verified yet, at most: the age of the newest head we verified everything
    /// up to, when the log has grown since (0 when caught up with the newest head seen).
    pub lag_secs: Option<u64>,
    pub last_success_at: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    pub entries_processed: u64,
    /// Entries stored as malformed (their leaf did not decode; see `ctwatch logs` and the `malformed` table).
    pub malformed_entries: u64,
    /// With a NATS stream: entries published and acknowledged (None: the stream never saw this log).
    pub published_size: Option<u64>,
    /// Committed entries not yet acknowledged by the stream (`verified_size - published_size`).
    pub stream_lag: Option<u64>,
}

impl Store {
    /// Insert or refresh a log's descriptive fields; its position is untouched.
    pub fn upsert_log(&self, meta: &LogMeta) -> Result<(), StoreError> {
        if let Some(pg) = self.pg() {
            return pg.upsert_log(meta);
        }
        self.conn().execute(
            "INSERT INTO logs (log_id, url, kind, description, operator, state, added_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(log_id) DO UPDATE SET url = ?2, kind = ?3, description = ?4, operator = ?5, state = ?6",
            params![&meta.log_id[..], meta.url, meta.kind, meta.description, meta.operator, meta.state, unix_now()],
        )?;
        Ok(())
    }

    /// The verified position of a log, or None if we never stored a position for it.
    pub fn log_position(&self, log_id: &[u8; 32]) -> Result<Option<LogPosition>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.log_position(log_id);
        }
        let row = self
            .conn()
            .query_row(
                "SELECT collapsed_tree, verified_size, verified_root, verified_sth_timestamp FROM logs
                 WHERE log_id = ?1 AND collapsed_tree IS NOT NULL",
                [&log_id[..]],
                |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, Option<Vec<u8>>>(2)?,
                        r.get::<_, Option<i64>>(3)?,
                    ))
                },
            )
            .optional()?;
        let Some((tree_bytes, size, root, ts)) = row else {
            return Ok(None);
        };
        decode_position(log_id, tree_bytes, size, root, ts).map(Some)
    }

    /// Set the starting position of a log that has none yet (start-at end / index / beginning). Does nothing if
    /// a position exists, so a racing second start cannot move a log backwards.
    /// `head` is the signed head the tree was verified against when it ends exactly there (start at the end).
    pub fn init_log_position(
        &self,
        log_id: &[u8; 32],
        tree: &CollapsedTree,
        head: Option<&TreeHead>,
    ) -> Result<(), StoreError> {
        if let Some(pg) = self.pg() {
            return pg.init_log_position(log_id, tree, head);
        }
        let head = head.filter(|h| h.tree_size == tree.size());
        self.conn().execute(
            "UPDATE logs SET collapsed_tree = ?2, verified_size = ?3, verified_root = ?4, verified_sth_timestamp = ?5
             WHERE log_id = ?1 AND collapsed_tree IS NULL",
            params![
                &log_id[..],
                tree.to_bytes(),
                tree.size() as i64,
                head.map(|h| h.root_hash.to_vec()),
                head.map(|h| h.timestamp_ms as i64)
            ],
        )?;
        Ok(())
    }

    /// Record a verified signed tree head seen from the log (not yet the entries under it).
    pub fn record_head(&self, log_id: &[u8; 32], head: &TreeHead) -> Result<(), StoreError> {
        if let Some(pg) = self.pg() {
            return pg.record_head(log_id, head);
        }
        self.conn().execute(
            "UPDATE logs SET head_size = ?2, head_root = ?3, head_timestamp = ?4, last_success_at = ?5
             WHERE log_id = ?1",
            params![&log_id[..], head.tree_size as i64, &head.root_hash[..], head.timestamp_ms as i64, unix_now()],
        )?;
        Ok(())
    }

    /// Record a successful exchange with a log.
    pub fn record_success(&self, log_id: &[u8; 32]) -> Result<(), StoreError> {
        if let Some(pg) = self.pg() {
            return pg.record_success(log_id);
        }
        self.conn().execute(
            "UPDATE logs SET last_success_at = ?2 WHERE log_id = ?1",
            params![&log_id[..], unix_now()],
        )?;
        Ok(())
    }

    /// Record the latest error of a log (shown by `ctwatch logs`).
    pub fn record_error(&self, log_id: &[u8; 32], error: &str) -> Result<(), StoreError> {
        if let Some(pg) = self.pg() {
            return pg.record_error(log_id, error);
        }
        self.conn().execute(
            "UPDATE logs SET last_error = ?2, last_error_at = ?3 WHERE log_id = ?1",
            params![&log_id[..], error, unix_now()],
        )?;
        Ok(())
    }

    /// Every log we know, for `ctwatch logs`.
    pub fn list_logs(&self) -> Result<Vec<LogRow>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.list_logs();
        }
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT log_id, url, kind, description, operator, state, verified_size, head_size, last_success_at,
                    last_error, last_error_at, entries_processed, verified_sth_timestamp,
                    (SELECT COUNT(*) FROM malformed m WHERE m.log_id = logs.log_id),
                    (SELECT published_size FROM stream_positions s WHERE s.log_id = logs.log_id)
             FROM logs ORDER BY operator, description",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(log_row(
                r.get(0)?,
                [r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?],
                r.get(6)?,
                r.get(7)?,
                r.get(12)?,
                (r.get(8)?, r.get(9)?, r.get(10)?),
                (r.get(11)?, r.get(13)?),
                r.get(14)?,
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// A stored position from its columns (collapsed_tree, verified_size, verified_root, verified_sth_timestamp),
/// checked for consistency (both backends).
pub(super) fn decode_position(
    log_id: &[u8; 32],
    tree_bytes: Vec<u8>,
    size: i64,
    root: Option<Vec<u8>>,
    ts: Option<i64>,
) -> Result<LogPosition, StoreError> {
    let corrupt = |reason: String| StoreError::CorruptTree {
        log: hex::encode(log_id),
        reason,
    };
    let tree = CollapsedTree::from_bytes(&tree_bytes).map_err(|e| corrupt(e.to_string()))?;
    if tree.size() != size as u64 {
        return Err(corrupt(format!(
            "tree size {} != verified_size {size}",
            tree.size()
        )));
    }
    let verified_head = match (root, ts) {
        (Some(root), Some(ts)) => {
            let root_hash: Hash = root
                .try_into()
                .map_err(|_| corrupt("root is not 32 bytes".into()))?;
            Some(TreeHead {
                tree_size: size as u64,
                timestamp_ms: ts as u64,
                root_hash,
            })
        }
        _ => None,
    };
    Ok(LogPosition {
        tree,
        verified_head,
    })
}

/// One `ctwatch logs` row from its columns (both backends): `text` is url, kind, description, operator, state;
/// `contact` is last_success_at, last_error, last_error_at.
#[allow(clippy::too_many_arguments)]
pub(super) fn log_row(
    log_id: Vec<u8>,
    text: [String; 5],
    verified_size: i64,
    head_size: Option<i64>,
    verified_ms: Option<i64>,
    contact: (Option<i64>, Option<String>, Option<i64>),
    (entries_processed, malformed): (i64, i64),
    published_size: Option<i64>,
) -> LogRow {
    let verified_size = verified_size as u64;
    let published_size = published_size.map(|s| s as u64);
    let head_size = head_size.map(|s| s as u64);
    let lag_secs = match (head_size, verified_ms) {
        (Some(h), _) if h <= verified_size => Some(0),
        (Some(_), Some(ms)) => Some((unix_now() - ms / 1000).max(0) as u64),
        _ => None,
    };
    let [url, kind, description, operator, state] = text;
    LogRow {
        lag_secs,
        log_id: base64_std(&log_id),
        url,
        kind,
        description,
        operator,
        state,
        verified_size,
        head_size,
        backlog: head_size.map(|h| h.saturating_sub(verified_size)),
        last_success_at: contact.0,
        last_error: contact.1,
        last_error_at: contact.2,
        entries_processed: entries_processed as u64,
        malformed_entries: malformed as u64,
        published_size,
        stream_lag: published_size.map(|p| verified_size.saturating_sub(p)),
    }
}

fn base64_std(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

impl crate::ctlog::static_ct::IssuerCache for Store {
    fn get_issuer(&self, sha256: &[u8; 32]) -> Option<Vec<u8>> {
        if let Some(pg) = self.pg() {
            return pg.get_issuer(sha256).unwrap_or_else(|e| {
                tracing::warn!("issuer cache read failed: {e}");
                None
            });
        }
        self.conn()
            .query_row(
                "SELECT der FROM issuers WHERE sha256 = ?1",
                [&sha256[..]],
                |r| r.get(0),
            )
            .optional()
            .unwrap_or_else(|e| {
                tracing::warn!("issuer cache read failed: {e}");
                None
            })
    }

    fn put_issuer(&self, sha256: &[u8; 32], der: &[u8]) {
        if let Some(pg) = self.pg() {
            if let Err(e) = pg.put_issuer(sha256, der) {
                tracing::warn!("issuer cache write failed: {e}");
            }
            return;
        }
        if let Err(e) = self.conn().execute(
            "INSERT OR IGNORE INTO issuers (sha256, der, fetched_at) VALUES (?1, ?2, ?3)",
            params![&sha256[..], der, unix_now()],
        ) {
            tracing::warn!("issuer cache write failed: {e}");
        }
    }
}
