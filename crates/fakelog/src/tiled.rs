//! A fake static-ct-api ("tiled") log on 127.0.0.1, for tests and benchmarks: `checkpoint` signed with a
//! throw-away P-256 key, data tiles, hash tiles at every level, `issuer/<sha256>`, optional gzip, and switches to
//! misbehave (tampered entry, bad signature, wrong origin, 429 with Retry-After, 5xx, missing issuers, deleted
//! partial tiles).
//!
//! Two ways to fill it: [`FakeTiledLog::from_tile_dir`] serves recorded real tiles (the files are served byte for
//! byte; what the recording lacks, such as level-1 hash tiles or other partial widths, is computed from the same
//! entries), and [`FakeTiledLog::append_rfc6962`] turns RFC 6962 entries (e.g. [`crate::synthesize`]
//! output) into TileLeaf records with a leaf_index extension and chain fingerprints.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha256};

use crate::{FakeEntry, FakeLog};
use ctwatch::ct::leaf;
use ctwatch::ct::merkle::{self, Hash, MemoryTree};
use ctwatch::ctlog::static_ct::{TILE_WIDTH, origin_of, tile_path};

pub(crate) mod wire;
pub use wire::parse_tile_path;
use wire::{gzip, tile_leaf_bytes, timestamped_entry};

/// How data tiles are compressed on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TileCompression {
    #[default]
    None,
    /// gzip body with `Content-Encoding: gzip` (what Sunlight does; the HTTP client inflates it).
    ContentEncoding,
    /// gzip body without the header (a static host that stores .gz files as they are).
    Body,
}

/// Ways the fake tiled log can misbehave. All off by default.
#[derive(Clone, Debug, Default)]
pub struct TiledFaults {
    /// Serve this entry with one flipped certificate byte (its leaf hash no longer matches the signed root).
    pub tamper_index: Option<u64>,
    /// Sign checkpoints with a different key than the one in the log list.
    pub bad_signature: bool,
    /// Sign checkpoints for another origin (signed correctly, by the right key).
    pub wrong_origin: bool,
    /// Every Nth tile request answers 429 with `Retry-After: retry_after_secs`.
    pub rate_limit_every: u64,
    pub retry_after_secs: u64,
    /// Every Nth request (any endpoint) answers 503.
    pub server_error_every: u64,
    /// `issuer/<hex>` answers 404.
    pub missing_issuers: bool,
    pub compression: TileCompression,
    /// Partial tiles answer 404 once the full tile exists (logs may delete them then).
    pub drop_partial_tiles: bool,
    /// `checkpoint` answers 500.
    pub checkpoint_down: bool,
    /// Serve this precert entry with these bytes (even none) as its pre_certificate, framed consistently.
    pub replace_pre_certificate: Option<(u64, Vec<u8>)>,
    /// Serve this entry with the SHA-256 of this DER as its first chain fingerprint, and the DER under `issuer/`
    /// (a forged issuer).
    pub replace_issuer: Option<(u64, Vec<u8>)>,
}

/// The log's state; share it in an `Arc` between the server and the test.
pub struct FakeTiledLog {
    /// TileLeaf bytes of every entry.
    entries: RwLock<Vec<Vec<u8>>>,
    tree: RwLock<MemoryTree>,
    issuers: RwLock<HashMap<[u8; 32], Vec<u8>>>,
    /// Recorded files served verbatim (path below the prefix, e.g. `tile/data/003.p/10`).
    files: RwLock<HashMap<String, Vec<u8>>>,
    published: AtomicU64,
    submission_url: String,
    key: ring::signature::EcdsaKeyPair,
    other_key: ring::signature::EcdsaKeyPair,
    spki: Vec<u8>,
    pub faults: Mutex<TiledFaults>,
    /// Request counters by endpoint (`checkpoint`, `data`, `hash`, `issuer`) and by path (`tile/data/003.p/10`).
    pub requests: Mutex<HashMap<String, u64>>,
}

impl FakeTiledLog {
    /// An empty log whose submission URL is `https://<name>.ctwatch.invalid/` (the checkpoint origin is that URL
    /// without its scheme; the monitoring URL is wherever [`serve`] listens).
    pub fn new(name: &str) -> Arc<FakeTiledLog> {
        let (key, spki) = ctwatch::ct::sth::testkey::test_p256_keypair();
        let (other_key, _) = ctwatch::ct::sth::testkey::test_p256_keypair();
        Arc::new(FakeTiledLog {
            entries: RwLock::new(Vec::new()),
            tree: RwLock::new(MemoryTree::new()),
            issuers: RwLock::new(HashMap::new()),
            files: RwLock::new(HashMap::new()),
            published: AtomicU64::new(0),
            submission_url: format!("https://{name}.ctwatch.invalid/"),
            key,
            other_key,
            spki,
            faults: Mutex::new(TiledFaults::default()),
            requests: Mutex::new(HashMap::new()),
        })
    }

    /// A log serving a recorded static-ct directory (`tile/data/<N>`, `tile/<L>/<N>`, `issuer/<hex>`): its entries
    /// are decoded from the full data tiles (and the widest trailing partial one), and every recorded tile and
    /// issuer is served exactly as recorded.
    pub fn from_tile_dir(name: &str, dir: &Path) -> Result<Arc<FakeTiledLog>, String> {
        let log = FakeTiledLog::new(name);
        let mut n = 0u64;
        loop {
            let full = dir.join("tile/data").join(tile_path(n, TILE_WIDTH));
            let body = match std::fs::read(&full) {
                Ok(b) => b,
                Err(_) => match widest_partial(dir, n) {
                    Some(b) => b,
                    None => break,
                },
            };
            let leaves = leaf::decode_data_tile(&body, n * TILE_WIDTH)
                .map_err(|e| format!("{}: {e}", full.display()))?;
            let mut rebuilt = Vec::with_capacity(body.len());
            for l in &leaves {
                let bytes = tile_leaf_bytes(&l.leaf.to_vec()[2..], &l.entry, &l.chain_fingerprints);
                rebuilt.extend_from_slice(&bytes);
                log.push(bytes, l.leaf.hash());
            }
            if rebuilt != body {
                return Err(format!("{}: re-encoding differs", full.display()));
            }
            if (leaves.len() as u64) < TILE_WIDTH {
                break;
            }
            n += 1;
        }
        let mut files = HashMap::new();
        read_files(dir, &dir.join("tile"), &mut files).map_err(|e| e.to_string())?;
        files.retain(|path, _| !path.starts_with("tile/names/"));
        *log.files.write().unwrap() = files;
        let issuer_dir = dir.join("issuer");
        for f in std::fs::read_dir(&issuer_dir).map_err(|e| e.to_string())? {
            let der =
                std::fs::read(f.map_err(|e| e.to_string())?.path()).map_err(|e| e.to_string())?;
            log.issuers
                .write()
                .unwrap()
                .insert(Sha256::digest(&der).into(), der);
        }
        log.publish(u64::MAX);
        Ok(log)
    }

    /// Append RFC 6962 entries as TileLeaf records (leaf_index extension set to their new position, chain
    /// certificates served as issuers) and publish them.
    pub fn append_rfc6962(&self, new: &[FakeEntry]) -> Result<(), String> {
        for e in new {
            let entry =
                leaf::decode_rfc6962(&e.leaf_input, &e.extra_data).map_err(|e| e.to_string())?;
            let index = self.tree.read().unwrap().len();
            let te = timestamped_entry(&entry, index);
            let mut fps = Vec::with_capacity(entry.chain.len());
            let mut issuers = self.issuers.write().unwrap();
            for der in &entry.chain {
                let fp: [u8; 32] = Sha256::digest(der).into();
                issuers.entry(fp).or_insert_with(|| der.clone());
                fps.push(fp);
            }
            drop(issuers);
            let mut leaf_input = vec![0, 0];
            leaf_input.extend_from_slice(&te);
            self.push(
                tile_leaf_bytes(&te, &entry, &fps),
                merkle::leaf_hash(&leaf_input),
            );
        }
        self.publish(u64::MAX);
        Ok(())
    }

    fn push(&self, tile_leaf: Vec<u8>, leaf_hash: Hash) {
        self.entries.write().unwrap().push(tile_leaf);
        self.tree.write().unwrap().push(leaf_hash);
    }

    /// Announce only the first `n` entries (capped at what the log holds).
    pub fn publish(&self, n: u64) {
        let len = self.tree.read().unwrap().len();
        self.published.store(n.min(len), Relaxed);
    }

    pub fn published(&self) -> u64 {
        self.published.load(Relaxed)
    }

    /// The root over the first `n` entries.
    pub fn root(&self, n: u64) -> Hash {
        self.tree.read().unwrap().root(n)
    }

    /// The log's public key (SPKI DER).
    pub fn spki(&self) -> &[u8] {
        &self.spki
    }

    pub fn log_id(&self) -> [u8; 32] {
        Sha256::digest(&self.spki).into()
    }

    pub fn submission_url(&self) -> &str {
        &self.submission_url
    }

    /// Fingerprints of every issuer the log serves.
    pub fn issuer_fingerprints(&self) -> Vec<[u8; 32]> {
        self.issuers.read().unwrap().keys().copied().collect()
    }

    pub fn set_faults(&self, f: TiledFaults) {
        *self.faults.lock().unwrap() = f;
    }

    /// How many requests an endpoint (`checkpoint`, `data`, `hash`, `issuer`) or a path (`tile/0/003.p/10`,
    /// `issuer/<hex>`) got.
    pub fn request_count(&self, endpoint: &str) -> u64 {
        self.requests
            .lock()
            .unwrap()
            .get(endpoint)
            .copied()
            .unwrap_or(0)
    }

    /// The `tiled_logs` entry of a v3 log list naming this log at `monitoring_url`, state `usable`.
    pub fn log_list_entry(&self, monitoring_url: &str, description: &str) -> serde_json::Value {
        serde_json::json!({
            "description": description,
            "log_id": B64.encode(self.log_id()),
            "key": B64.encode(&self.spki),
            "submission_url": self.submission_url,
            "monitoring_url": monitoring_url,
            "mmd": 60,
            "state": {"usable": {"timestamp": "2025-01-01T00:00:00Z"}}
        })
    }

    /// Count a request (by endpoint and by path); a fault may answer it instead (429 every Nth tile request, 503
    /// every Nth request).
    fn gate(&self, endpoint: &str, path: &str) -> Option<Response> {
        let tile = endpoint == "data" || endpoint == "hash";
        let (total, tiles) = {
            let mut r = self.requests.lock().unwrap();
            *r.entry(path.to_string()).or_default() += 1;
            *r.entry(endpoint.to_string()).or_default() += 1;
            let tiles = r.get("data").copied().unwrap_or(0) + r.get("hash").copied().unwrap_or(0);
            (
                r.get("checkpoint").copied().unwrap_or(0)
                    + r.get("issuer").copied().unwrap_or(0)
                    + tiles,
                tiles,
            )
        };
        let f = self.faults.lock().unwrap().clone();
        // The 429 first: every Nth tile request is rate limited whatever else fell on it, so that a test can count
        // on it (a 503 that fell on the same request used to take its place, depending on request order).
        if tile && f.rate_limit_every > 0 && tiles.is_multiple_of(f.rate_limit_every) {
            let after = f.retry_after_secs.to_string();
            return Some(
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", after)],
                    "slow down",
                )
                    .into_response(),
            );
        }
        if f.server_error_every > 0 && total.is_multiple_of(f.server_error_every) {
            return Some(
                (StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable").into_response(),
            );
        }
        None
    }

    fn checkpoint(&self) -> Response {
        if let Some(r) = self.gate("checkpoint", "checkpoint") {
            return r;
        }
        let f = self.faults.lock().unwrap().clone();
        if f.checkpoint_down {
            return (StatusCode::INTERNAL_SERVER_ERROR, "down").into_response();
        }
        let size = self.published();
        let root = self.root(size);
        let origin = if f.wrong_origin {
            "evil.ctwatch.invalid/log".to_string()
        } else {
            origin_of(&self.submission_url)
        };
        let key = if f.bad_signature {
            &self.other_key
        } else {
            &self.key
        };
        // Timestamps grow with the size so that every new checkpoint is newer than the last.
        let ts = 1_750_000_000_000 + size;
        let note =
            ctwatch::ct::checkpoint::sign_checkpoint(&origin, size, &root, ts, key, &self.log_id());
        // Real checkpoints carry lines of other keys (grease, witnesses) first: a verifier must skip them.
        let (body, sigs) = note
            .split_once("\n\n")
            .expect("signed note has a blank line");
        let grease = B64.encode([0x5a; 68]);
        let note = format!("{body}\n\n— grease.invalid {grease}\n{sigs}");
        ([("content-type", "text/plain; charset=utf-8")], note).into_response()
    }

    fn issuer(&self, hex_fp: &str) -> Response {
        if let Some(r) = self.gate("issuer", &format!("issuer/{hex_fp}")) {
            return r;
        }
        if self.faults.lock().unwrap().missing_issuers {
            return (StatusCode::NOT_FOUND, "no such issuer").into_response();
        }
        let fp: Option<[u8; 32]> = hex::decode(hex_fp).ok().and_then(|b| b.try_into().ok());
        match fp.and_then(|fp| self.issuers.read().unwrap().get(&fp).cloned()) {
            Some(der) => ([("content-type", "application/pkix-cert")], der).into_response(),
            None => (StatusCode::NOT_FOUND, "no such issuer").into_response(),
        }
    }

    /// Whether tile `(index, width)` at `level` exists. Tiles exist for every entry the log holds, published in a
    /// checkpoint or not (real logs write tiles before the checkpoint that covers them).
    fn tile_exists(&self, level: u32, index: u64, width: u64) -> bool {
        let count = self.tree.read().unwrap().len() >> (8 * level);
        let first = index.saturating_mul(TILE_WIDTH);
        let dropped = self.faults.lock().unwrap().drop_partial_tiles
            && width < TILE_WIDTH
            && first + TILE_WIDTH <= count;
        (1..=TILE_WIDTH).contains(&width) && first + width <= count && !dropped
    }

    fn data_tile(&self, path: &str, rest: &str) -> Response {
        if let Some(r) = self.gate("data", path) {
            return r;
        }
        let Some((index, width)) = parse_tile_path(rest) else {
            return not_found();
        };
        if !self.tile_exists(0, index, width) {
            return not_found();
        }
        let f = self.faults.lock().unwrap().clone();
        let first = index * TILE_WIDTH;
        let in_tile = |i: Option<u64>| i.filter(|i| (first..first + width).contains(i));
        let tampered = in_tile(f.tamper_index);
        let hostile = in_tile(f.replace_pre_certificate.as_ref().map(|r| r.0))
            .or(in_tile(f.replace_issuer.as_ref().map(|r| r.0)));
        let recorded = self.files.read().unwrap().get(path).cloned();
        let body = match (recorded, tampered.or(hostile)) {
            (Some(b), None) => b,
            _ => {
                let entries = self.entries.read().unwrap();
                let mut body = Vec::new();
                for (i, e) in entries[first as usize..(first + width) as usize]
                    .iter()
                    .enumerate()
                {
                    let at = body.len();
                    body.extend_from_slice(&self.served_tile_leaf(first + i as u64, e, &f));
                    if tampered == Some(first + i as u64) {
                        // Inside the certificate / TBS: framing stays valid, the leaf hash changes.
                        body[at + 50] ^= 0x01;
                    }
                }
                body
            }
        };
        match f.compression {
            TileCompression::None => body.into_response(),
            TileCompression::Body => gzip(&body).into_response(),
            TileCompression::ContentEncoding => {
                ([("content-encoding", "gzip")], gzip(&body)).into_response()
            }
        }
    }

    /// The TileLeaf bytes served for entry `i` under the hostile switches of `f`.
    fn served_tile_leaf(&self, i: u64, bytes: &[u8], f: &TiledFaults) -> Vec<u8> {
        match (&f.replace_pre_certificate, &f.replace_issuer) {
            (Some((at, pre)), _) if *at == i => {
                crate::hostile::tile_leaf_with_pre_certificate(bytes, pre)
            }
            (_, Some((at, der))) if *at == i => {
                let fp: [u8; 32] = Sha256::digest(der).into();
                self.issuers
                    .write()
                    .unwrap()
                    .entry(fp)
                    .or_insert_with(|| der.clone());
                crate::hostile::tile_leaf_with_issuer(bytes, fp)
            }
            _ => bytes.to_vec(),
        }
    }

    fn hash_tile(&self, path: &str, level: u32, rest: &str) -> Response {
        if let Some(r) = self.gate("hash", path) {
            return r;
        }
        let Some((index, width)) = parse_tile_path(rest) else {
            return not_found();
        };
        if level > 7 || !self.tile_exists(level, index, width) {
            return not_found();
        }
        if let Some(b) = self.files.read().unwrap().get(path) {
            return b.clone().into_response();
        }
        let tree = self.tree.read().unwrap();
        let mut body = Vec::with_capacity(width as usize * 32);
        for i in 0..width {
            let h = tree
                .full_subtree(8 * level, index * TILE_WIDTH + i)
                .expect("servable tile hashes exist");
            body.extend_from_slice(&h);
        }
        body.into_response()
    }
}

/// A v3 log list naming RFC 6962 fake logs (`logs`) and tiled fake logs (`tiled_logs`), each `(log, url)`.
pub fn log_list_json(rfc6962: &[(&FakeLog, &str)], tiled: &[(&FakeTiledLog, &str)]) -> String {
    let logs: Vec<serde_json::Value> = rfc6962
        .iter()
        .enumerate()
        .map(|(i, (log, url))| {
            let list: serde_json::Value =
                serde_json::from_str(&log.log_list_json(url, &format!("fake log {i}")))
                    .expect("FakeLog writes JSON");
            list["operators"][0]["logs"][0].clone()
        })
        .collect();
    let tiled_logs: Vec<serde_json::Value> = tiled
        .iter()
        .enumerate()
        .map(|(i, (log, url))| log.log_list_entry(url, &format!("fake tiled log {i}")))
        .collect();
    serde_json::json!({
        "version": "1.0",
        "log_list_timestamp": "2026-01-01T00:00:00Z",
        "operators": [{
            "name": "ctwatch tests",
            "email": ["test@example.invalid"],
            "logs": logs,
            "tiled_logs": tiled_logs
        }]
    })
    .to_string()
}

/// Serve `log` on 127.0.0.1 (random port). Returns the monitoring URL (ending in '/') and the server task.
pub async fn serve(
    log: Arc<FakeTiledLog>,
) -> std::io::Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route("/{*path}", get(dispatch))
        .with_state(log);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((format!("http://{addr}/"), task))
}

async fn dispatch(
    State(log): State<Arc<FakeTiledLog>>,
    UrlPath(path): UrlPath<String>,
) -> Response {
    if path == "checkpoint" {
        return log.checkpoint();
    }
    if let Some(hex_fp) = path.strip_prefix("issuer/") {
        return log.issuer(hex_fp);
    }
    if let Some(rest) = path.strip_prefix("tile/data/") {
        return log.data_tile(&path, rest);
    }
    if let Some((level, rest)) = path.strip_prefix("tile/").and_then(|r| r.split_once('/'))
        && let Ok(level) = level.parse::<u32>()
    {
        return log.hash_tile(&path, level, rest);
    }
    not_found()
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found").into_response()
}

/// The widest recorded partial data tile `<n>.p/<w>`, if any.
fn widest_partial(dir: &Path, n: u64) -> Option<Vec<u8>> {
    let pdir = dir
        .join("tile/data")
        .join(format!("{}.p", tile_path(n, TILE_WIDTH)));
    let widest = std::fs::read_dir(pdir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse::<u64>().ok()?, e.path())))
        .max_by_key(|(w, _)| *w)?;
    std::fs::read(widest.1).ok()
}

/// Every file under `at`, keyed by its path relative to `root` with '/' separators.
fn read_files(root: &Path, at: &Path, out: &mut HashMap<String, Vec<u8>>) -> std::io::Result<()> {
    for e in std::fs::read_dir(at)? {
        let path = e?.path();
        if path.is_dir() {
            read_files(root, &path, out)?;
        } else {
            let rel = path.strip_prefix(root).expect("below root");
            let key: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.insert(key.join("/"), std::fs::read(&path)?);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
