//! A fake RFC 6962 log on 127.0.0.1, for tests and benchmarks: it serves real entries (or synthesized ones built
//! from real templates), signs its tree heads with a throw-away P-256 key, and has switches to misbehave
//! (short pages, 429s, 5xx, tampered entries, bad signatures, missing proof endpoints).
//!
//! [`tiled`] serves the same entries as a static-ct (tiled) log.
//!
//! This crate is test and benchmark support (a dev-dependency of `ctwatch`): the `ctwatch` binary never contains it.

pub mod growing;
pub mod hostile;
pub mod tiled;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;

use ctwatch::ct::merkle::{self, Hash, MemoryTree};
use ctwatch::ctlog::rfc6962::{GetEntries, GetEntriesItem};

/// Ways the fake log can misbehave. All off by default.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// At most this many entries per get-entries response (0 = no limit besides `max_page`).
    pub short_page: usize,
    /// Every Nth get-entries request answers 429 with `Retry-After: retry_after_secs`.
    pub rate_limit_every: u64,
    pub retry_after_secs: u64,
    /// Every Nth request (any endpoint) answers 503.
    pub server_error_every: u64,
    /// Serve this entry with one flipped byte (its hash no longer matches the signed root).
    pub tamper_index: Option<u64>,
    /// Sign tree heads with a different key than the one in the log list.
    pub bad_signature: bool,
    /// get-proof-by-hash answers 404 (forces the download-from-0 fallback).
    pub no_proof_by_hash: bool,
    /// get-sth answers 500 (a log that is down).
    pub sth_down: bool,
    /// Serve this entry's `extra_data` as garbage (the leaf, and so every signed head, stays correct).
    pub garbage_extra_data: Option<u64>,
    /// Serve this entry with this DER in place of its chain[0] (a forged issuer).
    pub replace_issuer: Option<(u64, Vec<u8>)>,
    /// Serve this precert entry with this DER as its pre_certificate.
    pub replace_pre_certificate: Option<(u64, Vec<u8>)>,
    /// Serve this entry's `leaf_input` cut to 40 bytes (undecodable, and not the leaf the tree holds).
    pub garble_leaf: Option<u64>,
    /// `garbage_extra_data` and `garble_leaf` hit only the first N responses that include their entry, then the
    /// real bytes are served (a transient proxy fault); 0 = every response.
    pub garbage_times: u64,
}

/// One entry as served.
#[derive(Clone)]
pub struct FakeEntry {
    pub leaf_input: Vec<u8>,
    pub extra_data: Vec<u8>,
}

/// The log's state; share it in an `Arc` between the server and the test.
pub struct FakeLog {
    entries: RwLock<Vec<FakeEntry>>,
    tree: RwLock<MemoryTree>,
    by_hash: RwLock<HashMap<Hash, u64>>,
    /// The size the signed head announces (entries beyond it are not served).
    published: AtomicU64,
    key: ring::signature::EcdsaKeyPair,
    other_key: ring::signature::EcdsaKeyPair,
    spki: Vec<u8>,
    pub faults: Mutex<Faults>,
    /// Request counters by endpoint name.
    pub requests: Mutex<HashMap<String, u64>>,
    /// Largest page served.
    pub max_page: usize,
    /// How many times garbage `extra_data` was served (for `Faults::garbage_times`).
    garbage_served: AtomicU64,
}

impl FakeLog {
    /// A log holding `entries`, all published.
    pub fn new(entries: Vec<FakeEntry>) -> Arc<FakeLog> {
        let (key, spki) = ctwatch::ct::sth::testkey::test_p256_keypair();
        let (other_key, _) = ctwatch::ct::sth::testkey::test_p256_keypair();
        let log = FakeLog {
            entries: RwLock::new(Vec::new()),
            tree: RwLock::new(MemoryTree::new()),
            by_hash: RwLock::new(HashMap::new()),
            published: AtomicU64::new(0),
            key,
            other_key,
            spki,
            faults: Mutex::new(Faults::default()),
            requests: Mutex::new(HashMap::new()),
            max_page: 256,
            garbage_served: AtomicU64::new(0),
        };
        log.append(entries);
        Arc::new(log)
    }

    /// Add entries and publish them.
    pub fn append(&self, new: Vec<FakeEntry>) {
        let mut entries = self.entries.write().unwrap();
        let mut tree = self.tree.write().unwrap();
        let mut by_hash = self.by_hash.write().unwrap();
        for e in new {
            let h = merkle::leaf_hash(&e.leaf_input);
            by_hash.entry(h).or_insert(tree.len());
            tree.push(h);
            entries.push(e);
        }
        self.published.store(tree.len(), Relaxed);
    }

    /// Announce only the first `n` entries.
    pub fn publish(&self, n: u64) {
        self.published
            .store(n.min(self.tree.read().unwrap().len()), Relaxed);
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

    pub fn set_faults(&self, f: Faults) {
        *self.faults.lock().unwrap() = f;
    }

    /// How many requests an endpoint got.
    pub fn request_count(&self, endpoint: &str) -> u64 {
        self.requests
            .lock()
            .unwrap()
            .get(endpoint)
            .copied()
            .unwrap_or(0)
    }

    /// A Google v3 log list naming this log at `url`, state `usable`.
    pub fn log_list_json(&self, url: &str, description: &str) -> String {
        let key = B64.encode(&self.spki);
        let log_id = B64.encode(sha256(&self.spki));
        serde_json::json!({
            "version": "1.0",
            "log_list_timestamp": "2026-01-01T00:00:00Z",
            "operators": [{
                "name": "ctwatch tests",
                "email": ["test@example.invalid"],
                "logs": [{
                    "description": description,
                    "log_id": log_id,
                    "key": key,
                    "url": url,
                    "mmd": 86400,
                    "state": {"usable": {"timestamp": "2025-01-01T00:00:00Z"}}
                }],
                "tiled_logs": []
            }]
        })
        .to_string()
    }

    /// The `extra_data` served for entry `i` under the hostile switches of `f`.
    fn served_extra_data(&self, i: u64, e: &FakeEntry, f: &Faults) -> Vec<u8> {
        if f.garbage_extra_data == Some(i) && self.garbage_now(f) {
            return hostile::garbage_extra_data();
        }
        match (&f.replace_issuer, &f.replace_pre_certificate) {
            (Some((at, der)), _) if *at == i => {
                hostile::extra_data_with_issuer(&e.leaf_input, &e.extra_data, der)
            }
            (_, Some((at, der))) if *at == i => {
                hostile::extra_data_with_pre_certificate(&e.leaf_input, &e.extra_data, der)
            }
            _ => e.extra_data.clone(),
        }
    }

    /// Whether a transient garbage fault still applies (counts one use).
    fn garbage_now(&self, f: &Faults) -> bool {
        let served = self.garbage_served.fetch_add(1, Relaxed);
        f.garbage_times == 0 || served < f.garbage_times
    }

    fn count(&self, endpoint: &str) -> u64 {
        let mut r = self.requests.lock().unwrap();
        let c = {
            let c = r.entry(endpoint.to_string()).or_default();
            *c += 1;
            *c
        };
        let total: u64 = r.values().sum();
        let f = self.faults.lock().unwrap();
        if f.server_error_every > 0 && total.is_multiple_of(f.server_error_every) {
            return u64::MAX;
        }
        c
    }
}

fn sha256(b: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(b).into()
}

/// Serve `log` on 127.0.0.1 (random port). Returns the base URL (ending in '/') and the server task.
pub async fn serve(log: Arc<FakeLog>) -> std::io::Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route("/ct/v1/get-sth", get(get_sth))
        .route("/ct/v1/get-entries", get(get_entries))
        .route("/ct/v1/get-sth-consistency", get(get_consistency))
        .route("/ct/v1/get-proof-by-hash", get(get_proof_by_hash))
        .with_state(log);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((format!("http://{addr}/"), task))
}

fn unavailable() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable").into_response()
}

fn json(v: serde_json::Value) -> Response {
    ([("content-type", "application/json")], v.to_string()).into_response()
}

async fn get_sth(State(log): State<Arc<FakeLog>>) -> Response {
    if log.count("get-sth") == u64::MAX || log.faults.lock().unwrap().sth_down {
        return (StatusCode::INTERNAL_SERVER_ERROR, "down").into_response();
    }
    let size = log.published();
    let root = log.root(size);
    // Timestamps grow with the size so that every new head is newer than the last.
    let ts = 1_750_000_000_000 + size;
    let key = if log.faults.lock().unwrap().bad_signature {
        &log.other_key
    } else {
        &log.key
    };
    let sig = ctwatch::ct::sth::sign_tree_head(key, size, ts, &root);
    json(serde_json::json!({
        "tree_size": size, "timestamp": ts,
        "sha256_root_hash": B64.encode(root), "tree_head_signature": B64.encode(sig),
    }))
}

#[derive(Deserialize)]
struct Range {
    start: u64,
    end: u64,
}

async fn get_entries(State(log): State<Arc<FakeLog>>, Query(q): Query<Range>) -> Response {
    let n = log.count("get-entries");
    if n == u64::MAX {
        return unavailable();
    }
    let f = log.faults.lock().unwrap().clone();
    if f.rate_limit_every > 0 && n.is_multiple_of(f.rate_limit_every) {
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            f.retry_after_secs.to_string().parse().unwrap(),
        );
        return (StatusCode::TOO_MANY_REQUESTS, h, "slow down").into_response();
    }
    let size = log.published();
    if q.start > q.end || q.start >= size {
        return (StatusCode::BAD_REQUEST, "bad range").into_response();
    }
    let mut page = log.max_page;
    if f.short_page > 0 {
        page = page.min(f.short_page);
    }
    let end = q.end.min(size - 1).min(q.start + page as u64 - 1);
    let entries = log.entries.read().unwrap();
    let items: Vec<_> = (q.start..=end)
        .map(|i| {
            let e = &entries[i as usize];
            let mut leaf = e.leaf_input.clone();
            if f.tamper_index == Some(i) {
                let last = leaf.len() - 3;
                leaf[last] ^= 0x01;
            }
            if f.garble_leaf == Some(i) && log.garbage_now(&f) {
                leaf.truncate(40);
            }
            GetEntriesItem {
                leaf_input: B64.encode(&leaf),
                extra_data: B64.encode(log.served_extra_data(i, e, &f)),
            }
        })
        .collect();
    json(serde_json::to_value(GetEntries { entries: items }).unwrap_or_default())
}

#[derive(Deserialize)]
struct Consistency {
    first: u64,
    second: u64,
}

async fn get_consistency(
    State(log): State<Arc<FakeLog>>,
    Query(q): Query<Consistency>,
) -> Response {
    if log.count("get-sth-consistency") == u64::MAX {
        return unavailable();
    }
    if q.first == 0 || q.first > q.second || q.second > log.published() {
        return (StatusCode::BAD_REQUEST, "bad sizes").into_response();
    }
    let proof = log
        .tree
        .read()
        .unwrap()
        .consistency_proof(q.first, q.second);
    json(
        serde_json::json!({ "consistency": proof.iter().map(|h| B64.encode(h)).collect::<Vec<_>>() }),
    )
}

#[derive(Deserialize)]
struct ProofByHash {
    hash: String,
    tree_size: u64,
}

async fn get_proof_by_hash(
    State(log): State<Arc<FakeLog>>,
    Query(q): Query<ProofByHash>,
) -> Response {
    if log.count("get-proof-by-hash") == u64::MAX {
        return unavailable();
    }
    if log.faults.lock().unwrap().no_proof_by_hash {
        return (StatusCode::NOT_FOUND, "not supported").into_response();
    }
    let Ok(Ok(hash)) = B64.decode(&q.hash).map(|b| Hash::try_from(b.as_slice())) else {
        return (StatusCode::BAD_REQUEST, "bad hash").into_response();
    };
    let Some(&index) = log.by_hash.read().unwrap().get(&hash) else {
        return (StatusCode::NOT_FOUND, "no such leaf").into_response();
    };
    if index >= q.tree_size || q.tree_size > log.published() {
        return (StatusCode::BAD_REQUEST, "leaf not in tree").into_response();
    }
    let path = log.tree.read().unwrap().inclusion_proof(index, q.tree_size);
    json(
        serde_json::json!({ "leaf_index": index, "audit_path": path.iter().map(|h| B64.encode(h)).collect::<Vec<_>>() }),
    )
}

/// Read get-entries JSON files (as recorded from real logs) into entries.
pub fn entries_from_get_entries_json(body: &[u8]) -> Result<Vec<FakeEntry>, String> {
    let r: GetEntries = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    r.entries
        .into_iter()
        .map(|i| {
            Ok(FakeEntry {
                leaf_input: B64.decode(&i.leaf_input).map_err(|e| e.to_string())?,
                extra_data: B64.decode(&i.extra_data).map_err(|e| e.to_string())?,
            })
        })
        .collect()
}

/// `n` distinct entries made from real templates: entry `i` is template `i % len` with the last four bytes of its
/// serial number (in the leaf and, for precerts, in the pre_certificate) replaced by `i`, and its timestamp moved,
/// so every synthesized certificate has its own tbs identity and still parses like the real one.
pub fn synthesize(templates: &[FakeEntry], n: usize) -> Vec<FakeEntry> {
    let serials: Vec<Option<Vec<u8>>> = templates.iter().map(serial_of).collect();
    (0..n)
        .map(|i| {
            let t = i % templates.len();
            let mut e = templates[t].clone();
            if let Some(serial) = &serials[t] {
                let mut new = serial.clone();
                let k = new.len();
                if k >= 5 {
                    new[k - 4..].copy_from_slice(&(i as u32).to_be_bytes());
                    replace_all(&mut e.leaf_input, serial, &new);
                    replace_all(&mut e.extra_data, serial, &new);
                }
            }
            let ts = u64::from_be_bytes(e.leaf_input[2..10].try_into().unwrap()) + i as u64;
            e.leaf_input[2..10].copy_from_slice(&ts.to_be_bytes());
            e
        })
        .collect()
}

/// The serial number bytes (INTEGER contents) of the certificate or TBS in a leaf, if it decodes.
fn serial_of(e: &FakeEntry) -> Option<Vec<u8>> {
    let entry = ctwatch::ct::leaf::decode_rfc6962(&e.leaf_input, &e.extra_data).ok()?;
    let tbs = match entry.entry_type {
        ctwatch::ct::leaf::EntryType::Precert => entry.signed_entry.to_vec(),
        ctwatch::ct::leaf::EntryType::X509 => {
            ctwatch::ct::cert::tbs_of_certificate(&entry.signed_entry)
                .ok()?
                .to_vec()
        }
    };
    use x509_parser::prelude::FromDer;
    let (_, parsed) = x509_parser::certificate::TbsCertificate::from_der(&tbs).ok()?;
    Some(parsed.raw_serial().to_vec())
}

fn replace_all(hay: &mut [u8], needle: &[u8], new: &[u8]) {
    if needle.is_empty() || needle.len() != new.len() {
        return;
    }
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        if &hay[i..i + needle.len()] == needle {
            hay[i..i + needle.len()].copy_from_slice(new);
            i += needle.len();
        } else {
            i += 1;
        }
    }
}

impl FakeEntry {
    /// An `x509_entry` for `cert_der` (a certificate of a test CA), logged at `timestamp_ms`, with `chain`
    /// (issuer first) as extra_data. RFC 6962 §3.4:
    ///
    /// ```text
    /// MerkleTreeLeaf { version v1(0); leaf_type timestamped_entry(0);
    ///   TimestampedEntry { uint64 timestamp; LogEntryType x509_entry(0); ASN.1Cert <1..2^24-1>;
    ///                      CtExtensions <0..2^16-1> } }
    /// extra_data: ASN.1Cert certificate_chain<0..2^24-1>
    /// ```
    pub fn x509(cert_der: &[u8], chain: &[&[u8]], timestamp_ms: u64) -> FakeEntry {
        let mut leaf = vec![0u8, 0u8];
        leaf.extend_from_slice(&timestamp_ms.to_be_bytes());
        leaf.extend_from_slice(&[0, 0]);
        push_u24(&mut leaf, cert_der);
        leaf.extend_from_slice(&[0, 0]);
        let mut certs = Vec::new();
        for c in chain {
            push_u24(&mut certs, c);
        }
        let mut extra = Vec::new();
        push_u24(&mut extra, &certs);
        FakeEntry {
            leaf_input: leaf,
            extra_data: extra,
        }
    }
}

fn push_u24(out: &mut Vec<u8>, bytes: &[u8]) {
    let n = bytes.len() as u32;
    out.extend_from_slice(&n.to_be_bytes()[1..]);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod x509_entry_tests {
    use super::*;

    #[test]
    fn an_x509_entry_decodes_to_the_certificate_and_timestamp() {
        let der = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/certs/real/letsencrypt_org_E8_leaf.der"
        ))
        .unwrap();
        let e = FakeEntry::x509(&der, &[b"issuer"], 1_700_000_000_123);
        let entry = ctwatch::ct::leaf::decode_rfc6962(&e.leaf_input, &e.extra_data).unwrap();
        assert_eq!(entry.signed_entry, der);
        assert_eq!(entry.timestamp_ms, 1_700_000_000_123);
        assert!(entry.pre_certificate.is_none());
    }
}
