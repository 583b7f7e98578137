//! Static CT API ("tiled") logs: `checkpoint`, data tiles, hash tiles and `issuer/<sha256>`.
//!
//! Tiled logs have no proof endpoints: the proofs the tailer needs are computed here from hash tiles, which the
//! log publishes for exactly that purpose. Every subtree hash read from a tile is only trusted through the
//! verification that uses it (a consistency proof against the signed checkpoint root), so a lying tile can only
//! make verification fail, never pass.

use super::ExtraData;
use super::body::Body;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::http::Fetcher;
use super::issuers::Issuers;
use super::{Admission, CtLog, LogError, RawEntry, TreeHead};
use crate::ct::checkpoint::{self, CheckpointError};
use crate::ct::leaf::{self, Fingerprints, TileLeaf};
use crate::ct::merkle::{self, CollapsedTree, Hash};
use crate::ct::sig::LogKey;

/// Entries (and hashes) per full tile.
pub const TILE_WIDTH: u64 = 256;

pub use super::issuers::IssuerCache;

/// (level, tile index, width) of a hash tile.
type TileKey = (u8, u64, u64);

/// A tiled log.
pub struct StaticCtLog {
    monitoring_url: String,
    origin: String,
    key: LogKey,
    fetcher: Fetcher,
    issuers: Issuers,
    /// Hash tiles read recently, by (level, index, width). Small: proofs touch a handful of tiles.
    hash_tiles: Mutex<HashMap<TileKey, Arc<Vec<Hash>>>>,
}

impl StaticCtLog {
    /// `submission_url` gives the checkpoint origin (the URL without scheme and trailing slash).
    pub fn new(
        monitoring_url: &str,
        submission_url: &str,
        key: LogKey,
        fetcher: Fetcher,
        issuers: Arc<dyn IssuerCache>,
    ) -> StaticCtLog {
        let monitoring_url = if monitoring_url.ends_with('/') {
            monitoring_url.to_string()
        } else {
            format!("{monitoring_url}/")
        };
        StaticCtLog {
            issuers: Issuers::new(&monitoring_url, fetcher.clone(), issuers),
            monitoring_url,
            origin: origin_of(submission_url),
            key,
            fetcher,
            hash_tiles: Mutex::new(HashMap::new()),
        }
    }

    fn bad(&self, path: &str, message: impl Into<String>) -> LogError {
        LogError::BadResponse {
            url: format!("{}{path}", self.monitoring_url),
            message: message.into(),
        }
    }

    /// GET tile `index` of width `width` under `prefix` (`tile/data`, `tile/<L>`). A log may delete a partial tile
    /// once the full tile exists (c2sp.org/tlog-tiles), so a 404 for a partial tile falls back to the full one,
    /// whose first `width` items are the same. Returns the path fetched, its width and the (maybe gzipped) body.
    async fn get_tile(
        &self,
        prefix: &str,
        index: u64,
        width: u64,
        admission: Option<&Admission>,
    ) -> Result<(String, u64, Body), LogError> {
        let path = format!("{prefix}/{}", tile_path(index, width));
        match self
            .fetcher
            .get_admitted(&format!("{}{path}", self.monitoring_url), admission)
            .await
        {
            Err(LogError::Status { status: 404, .. }) if width < TILE_WIDTH => {
                let full = format!("{prefix}/{}", tile_path(index, TILE_WIDTH));
                tracing::debug!(log = %self.monitoring_url, %path, "partial tile gone; fetching {full}");
                let body = self
                    .fetcher
                    .get_admitted(&format!("{}{full}", self.monitoring_url), admission)
                    .await?;
                Ok((full, TILE_WIDTH, body))
            }
            r => Ok((path, width, r?)),
        }
    }

    /// The first `width` entries of data tile `index`, decoded (off the async threads: tiles are large).
    async fn data_tile(
        &self,
        index: u64,
        width: u64,
        admission: &Admission,
    ) -> Result<Vec<TileLeaf>, LogError> {
        let (path, _, body) = self
            .get_tile("tile/data", index, width, Some(admission))
            .await?;
        let first = index * TILE_WIDTH;
        let decoded = tokio::task::spawn_blocking(move || {
            // The entries are views of the tile, which returns to the buffer pool when the last is dropped.
            leaf::decode_data_tile_bytes(&bytes::Bytes::from_owner(body), first)
        })
        .await
        .map_err(|e| self.bad(&path, format!("decoding task failed: {e}")))?;
        let mut leaves = decoded.map_err(|e| self.bad(&path, error_chain(&e)))?;
        if (leaves.len() as u64) < width {
            return Err(self.bad(&path, format!("{} entries, want {width}", leaves.len())));
        }
        leaves.truncate(width as usize);
        Ok(leaves)
    }

    /// Hashes of tile `index` at `level`, for a tree of `tree_size` leaves (partial at the right edge).
    async fn hash_tile(
        &self,
        level: u8,
        index: u64,
        tree_size: u64,
    ) -> Result<Arc<Vec<Hash>>, LogError> {
        let nodes_at_level = tree_size >> (8 * level as u32);
        let width = nodes_at_level
            .saturating_sub(index * TILE_WIDTH)
            .min(TILE_WIDTH);
        if width == 0 {
            return Err(LogError::Unsupported {
                log: self.monitoring_url.clone(),
                message: format!("hash tile {level}/{index} is beyond tree size {tree_size}"),
            });
        }
        if let Some(t) = self
            .hash_tiles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(level, index, width))
        {
            return Ok(t.clone());
        }
        let (path, fetched, body) = self
            .get_tile(&format!("tile/{level}"), index, width, None)
            .await?;
        let body = leaf::maybe_gunzip(&body).map_err(|e| self.bad(&path, e.to_string()))?;
        if body.len() as u64 != fetched * 32 {
            return Err(self.bad(
                &path,
                format!("{} bytes, want {}", body.len(), fetched * 32),
            ));
        }
        let hashes: Vec<Hash> = body[..width as usize * 32]
            .chunks_exact(32)
            .map(|c| c.try_into().expect("32-byte chunk"))
            .collect();
        let tile = Arc::new(hashes);
        let mut cache = self.hash_tiles.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() > 64 {
            cache.clear();
        }
        cache.insert((level, index, width), tile.clone());
        Ok(tile)
    }

    /// The hash of the complete subtree of height `height` at position `index` (leaves
    /// `[index << height, (index + 1) << height)`), read from hash tiles of a tree of `tree_size`.
    async fn node(&self, height: u32, index: u64, tree_size: u64) -> Result<Hash, LogError> {
        let level = (height / 8) as u8;
        let r = height % 8;
        let first = index << r; // first node at the tile level
        let tile = self.hash_tile(level, first / TILE_WIDTH, tree_size).await?;
        let off = (first % TILE_WIDTH) as usize;
        let count = 1usize << r;
        let Some(slice) = tile.get(off..off + count) else {
            return Err(self.bad(
                "tile",
                format!("tile at level {level} too short for node {height}/{index}"),
            ));
        };
        Ok(root_of_power_of_two(slice))
    }

    /// MTH of leaves `[start, end)` of a tree of `tree_size` (RFC 6962 section 2.1), from hash tiles.
    async fn subtree(&self, start: u64, end: u64, tree_size: u64) -> Result<Hash, LogError> {
        // The range splits into complete aligned subtrees, largest first, whose hashes combine right to left.
        let mut parts = Vec::new();
        let mut s = start;
        while s < end {
            // MTH splits at the largest power of two below the size: the left part is a complete subtree.
            let n = end - s;
            let k = 1u64 << (63 - n.leading_zeros());
            if !s.is_multiple_of(k) {
                return Err(LogError::Unsupported {
                    log: self.monitoring_url.clone(),
                    message: format!("subtree [{start}, {end}) is not aligned"),
                });
            }
            parts.push(self.node(k.trailing_zeros(), s / k, tree_size).await?);
            s += k;
        }
        let mut acc = parts.pop().unwrap_or_else(merkle::empty_root);
        while let Some(left) = parts.pop() {
            acc = merkle::node_hash(&left, &acc);
        }
        Ok(acc)
    }

    /// RFC 6962 SUBPROOF(m, D[start:end], b), computed from tiles.
    fn subproof<'a>(
        &'a self,
        m: u64,
        start: u64,
        end: u64,
        b: bool,
        tree_size: u64,
        out: &'a mut Vec<Hash>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), LogError>> + Send + 'a>>
    {
        Box::pin(async move {
            let n = end - start;
            if m == n {
                if !b {
                    out.push(self.subtree(start, end, tree_size).await?);
                }
                return Ok(());
            }
            let k = if n.is_power_of_two() {
                n / 2
            } else {
                1u64 << (63 - n.leading_zeros())
            };
            if m <= k {
                self.subproof(m, start, start + k, b, tree_size, out)
                    .await?;
                out.push(self.subtree(start + k, end, tree_size).await?);
            } else {
                self.subproof(m - k, start + k, end, false, tree_size, out)
                    .await?;
                out.push(self.subtree(start, start + k, tree_size).await?);
            }
            Ok(())
        })
    }
}

/// An error and its sources on one line (tile decoding errors wrap the entry they happened in).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Root of a power-of-two number of consecutive hashes.
fn root_of_power_of_two(hashes: &[Hash]) -> Hash {
    let mut level: Vec<Hash> = hashes.to_vec();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|p| merkle::node_hash(&p[0], &p[1]))
            .collect();
    }
    level[0]
}

/// "https://log.example/2026h1/" -> "log.example/2026h1".
pub fn origin_of(submission_url: &str) -> String {
    let s = submission_url
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or(submission_url);
    s.trim_end_matches('/').to_string()
}

/// The path of tile `index` (`x001/x234/067`), with `.p/<width>` when partial.
pub fn tile_path(index: u64, width: u64) -> String {
    let digits = index.to_string();
    let pad = digits.len().div_ceil(3) * 3;
    let padded = format!("{index:0pad$}");
    let groups: Vec<&str> = padded
        .as_bytes()
        .chunks(3)
        .map(|c| std::str::from_utf8(c).unwrap_or("000"))
        .collect();
    let n = groups.len();
    let mut path = String::new();
    for (i, g) in groups.iter().enumerate() {
        if i + 1 < n {
            path.push('x');
            path.push_str(g);
            path.push('/');
        } else {
            path.push_str(g);
        }
    }
    if width < TILE_WIDTH {
        path.push_str(&format!(".p/{width}"));
    }
    path
}

impl CtLog for StaticCtLog {
    fn url(&self) -> &str {
        &self.monitoring_url
    }

    fn range_size(&self) -> u64 {
        TILE_WIDTH
    }

    async fn latest_head(&self) -> Result<TreeHead, LogError> {
        let body = self
            .fetcher
            .get(&format!("{}checkpoint", self.monitoring_url))
            .await?;
        let cp =
            checkpoint::parse_and_verify(&body, &self.origin, &self.key).map_err(|e| match e {
                CheckpointError::NotText | CheckpointError::Malformed(_) => {
                    self.bad("checkpoint", e.to_string())
                }
                CheckpointError::WrongOrigin { .. } | CheckpointError::NoValidSignature(_) => {
                    LogError::BadSignature {
                        log: self.monitoring_url.clone(),
                        message: e.to_string(),
                    }
                }
            })?;
        Ok(TreeHead {
            tree_size: cp.tree_size,
            timestamp_ms: cp.timestamp_ms,
            root_hash: cp.root_hash,
        })
    }

    async fn fetch_range(
        &self,
        start: u64,
        end: u64,
        head: &TreeHead,
        admission: &Admission,
    ) -> Result<Vec<RawEntry>, LogError> {
        let mut out = Vec::with_capacity((end - start) as usize);
        let mut next = start;
        // Neighbouring entries nearly always name the same issuers: they share one resolved chain.
        let mut last: Option<(Fingerprints, ExtraData)> = None;
        while next < end {
            let tile = next / TILE_WIDTH;
            let first = tile * TILE_WIDTH;
            // A partial tile only where the verified head ends inside it.
            let width = (head.tree_size - first).min(TILE_WIDTH);
            let take_to = end.min(first + width);
            let leaves = self.data_tile(tile, width, admission).await?;
            for l in leaves
                .into_iter()
                .skip((next - first) as usize)
                .take((take_to - next) as usize)
            {
                let extra_data = match &last {
                    Some((fingerprints, chain)) if *fingerprints == l.chain_fingerprints => {
                        chain.clone()
                    }
                    _ => {
                        let (chain, missing) = self.issuers.chain(&l.chain_fingerprints).await?;
                        let chain = ExtraData::Chain {
                            chain: chain.into(),
                            missing,
                        };
                        last = Some((l.chain_fingerprints, chain.clone()));
                        chain
                    }
                };
                out.push(RawEntry {
                    leaf: l.leaf,
                    extra_data,
                    entry: Ok(l.entry),
                });
            }
            next = take_to;
        }
        Ok(out)
    }

    async fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash>, LogError> {
        let mut out = Vec::new();
        if first == 0 || first >= second {
            return Ok(out);
        }
        self.subproof(first, 0, second, true, second, &mut out)
            .await?;
        Ok(out)
    }

    async fn tree_at(&self, size: u64, head: &TreeHead) -> Result<CollapsedTree, LogError> {
        // The collapsed tree is the list of complete subtrees covering [0, size), largest first.
        let mut nodes = Vec::new();
        let mut start = 0u64;
        for bit in (0..64).rev() {
            let k = 1u64 << bit;
            if size & k != 0 {
                nodes.push(self.node(bit, start / k, head.tree_size).await?);
                start += k;
            }
        }
        let tree =
            CollapsedTree::from_nodes(size, nodes).map_err(|e| self.bad("tile", e.to_string()))?;
        let ok = if size == head.tree_size {
            tree.root() == head.root_hash
        } else {
            let proof = self.consistency_proof(size, head.tree_size).await?;
            merkle::verify_consistency(size, head.tree_size, &tree.root(), &head.root_hash, &proof)
                .is_ok()
        };
        if !ok {
            return Err(LogError::RootMismatch {
                log: self.monitoring_url.clone(),
                message: format!(
                    "hash tiles for size {size} do not match the checkpoint of size {}",
                    head.tree_size
                ),
            });
        }
        Ok(tree)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_paths() {
        assert_eq!(tile_path(0, 256), "000");
        assert_eq!(tile_path(3, 10), "003.p/10");
        assert_eq!(tile_path(1234067, 256), "x001/x234/067");
        assert_eq!(tile_path(1000, 256), "x001/000");
    }

    #[test]
    fn origins() {
        assert_eq!(
            origin_of("https://tuscolo2026h2.sunlight.geomys.org/"),
            "tuscolo2026h2.sunlight.geomys.org"
        );
        assert_eq!(
            origin_of("https://log.example/2026h1"),
            "log.example/2026h1"
        );
    }
}
