//! A log that GROWS, for the firehose simulator: RFC 6962 or static-ct (tiled), unique certificates generated on
//! demand from real templates ([`Catalog`]), a new signed head / checkpoint at every [`GrowingLog::grow`], correct
//! Merkle trees with consistency and audit proofs and hash tiles, and per-log realism knobs ([`Knobs`]): latency
//! per request, page-size caps, per-client rate limits answered with 429 + `Retry-After`, random 5xx.
//!
//! Only the leaf hashes are kept (64 bytes per entry with the tree's inner nodes): entry bytes are regenerated
//! for each request, so a log can grow by millions of entries.

mod catalog;
mod serve;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha256};

pub use catalog::Catalog;
pub use serve::serve;

use ctwatch::ct::merkle::{Hash, MemoryTree};

/// Which API the log serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Rfc6962,
    Tiled,
}

/// How the log behaves towards clients.
#[derive(Clone, Debug, Default)]
pub struct Knobs {
    /// Each answer (except 429s) is delayed by a uniform random time in this range, in milliseconds.
    pub latency_ms: (u64, u64),
    /// RFC 6962: at most this many entries per `get-entries` (0 = 256).
    pub page_cap: usize,
    /// Requests per second allowed per client (by User-Agent; 0 = unlimited). Beyond: 429 with `Retry-After: 1`.
    pub rate_limit_per_sec: f64,
    /// Probability that a request answers 503.
    pub error_rate: f64,
}

/// Request and traffic counters, per client (the first word of its User-Agent).
#[derive(Debug, Default, Clone)]
pub struct ClientCounters {
    pub requests: u64,
    pub rate_limited: u64,
    pub server_errors: u64,
    pub bytes: u64,
    /// Head requests (`get-sth`, `checkpoint`) answered while an entries request (`get-entries`, data tile) of the
    /// same client was in flight: the client polls the head without pausing its downloads.
    pub heads_during_fetch: u64,
    /// Entries requests of this client in flight now.
    pub fetching: u64,
}

struct Head {
    tree: MemoryTree,
    /// (first index, timestamp ms) of every growth step: entry timestamps and publication times.
    batches: Vec<(u64, u64)>,
    published: u64,
    /// Leaf hash -> index, for `get-proof-by-hash`.
    by_hash: HashMap<Hash, u64>,
    /// The signed `get-sth` JSON or checkpoint note of the published head.
    signed: Arc<String>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A growing fake log. Share it in an `Arc` between the server and the growth driver.
pub struct GrowingLog {
    pub kind: Kind,
    pub knobs: Knobs,
    catalog: Arc<Catalog>,
    /// Added to the entry index to make the certificate's unique id (distinct per log).
    uid_base: u64,
    submission_url: String,
    key: ring::signature::EcdsaKeyPair,
    spki: Vec<u8>,
    head: RwLock<Head>,
    limiter: Mutex<HashMap<String, Bucket>>,
    rng: AtomicU64,
    counters: Mutex<HashMap<String, ClientCounters>>,
}

impl GrowingLog {
    /// An empty log number `number` (distinct per simulation: it keeps certificates unique across logs).
    pub fn new(kind: Kind, number: u32, catalog: Arc<Catalog>, knobs: Knobs) -> Arc<GrowingLog> {
        let (key, spki) = ctwatch::ct::sth::testkey::test_p256_keypair();
        let log = GrowingLog {
            kind,
            knobs,
            catalog,
            uid_base: u64::from(number) << 32,
            submission_url: format!("https://firehose-{number}.ctwatch.invalid/"),
            key,
            spki,
            head: RwLock::new(Head {
                tree: MemoryTree::new(),
                batches: Vec::new(),
                published: 0,
                by_hash: HashMap::new(),
                signed: Arc::new(String::new()),
            }),
            limiter: Mutex::new(HashMap::new()),
            rng: AtomicU64::new(0x9e37_79b9_7f4a_7c15 ^ u64::from(number)),
            counters: Mutex::new(HashMap::new()),
        };
        log.grow(0, 1);
        Arc::new(log)
    }

    /// Append `n` new entries stamped `now_ms` and publish a new signed head covering them.
    pub fn grow(&self, n: u64, now_ms: u64) {
        let first = self.published();
        let hashes: Vec<Hash> = (first..first + n)
            .map(|i| self.leaf_hash(i, now_ms))
            .collect();
        let mut head = self.head.write().unwrap();
        let now_ms = now_ms.max(head.batches.last().map_or(0, |b| b.1));
        if n > 0 || head.batches.is_empty() {
            head.batches.push((first, now_ms));
        }
        for h in hashes {
            let index = head.tree.len();
            head.by_hash.entry(h).or_insert(index);
            head.tree.push(h);
        }
        head.published = head.tree.len();
        let root = head.tree.root(head.published);
        head.signed = Arc::new(self.sign(head.published, now_ms, &root));
    }

    fn sign(&self, size: u64, ts: u64, root: &Hash) -> String {
        match self.kind {
            Kind::Rfc6962 => {
                let sig = ctwatch::ct::sth::sign_tree_head(&self.key, size, ts, root);
                serde_json::json!({
                    "tree_size": size, "timestamp": ts,
                    "sha256_root_hash": B64.encode(root), "tree_head_signature": B64.encode(sig),
                })
                .to_string()
            }
            Kind::Tiled => ctwatch::ct::checkpoint::sign_checkpoint(
                &self.origin(),
                size,
                root,
                ts,
                &self.key,
                &self.log_id(),
            ),
        }
    }

    fn leaf_hash(&self, index: u64, ts: u64) -> Hash {
        let t = self.catalog.template_of(index);
        match self.kind {
            Kind::Rfc6962 => {
                let e = self.catalog.rfc6962(t, self.uid_base + index, ts);
                ctwatch::ct::merkle::leaf_hash(&e.leaf_input)
            }
            Kind::Tiled => {
                self.catalog
                    .tile_leaf(t, self.uid_base + index, ts, index)
                    .1
            }
        }
    }

    /// Timestamps (= publication times) of entries `[start, end)`.
    pub fn entry_timestamps(&self, start: u64, end: u64) -> Vec<u64> {
        let head = self.head.read().unwrap();
        let mut k = head
            .batches
            .partition_point(|b| b.0 <= start)
            .saturating_sub(1);
        (start..end)
            .map(|i| {
                while k + 1 < head.batches.len() && head.batches[k + 1].0 <= i {
                    k += 1;
                }
                head.batches[k].1
            })
            .collect()
    }

    /// Publication history: (first index, unix ms) of every growth step.
    pub fn history(&self) -> Vec<(u64, u64)> {
        self.head.read().unwrap().batches.clone()
    }

    pub fn published(&self) -> u64 {
        self.head.read().unwrap().published
    }

    pub fn spki(&self) -> &[u8] {
        &self.spki
    }

    pub fn log_id(&self) -> [u8; 32] {
        Sha256::digest(&self.spki).into()
    }

    fn origin(&self) -> String {
        ctwatch::ctlog::static_ct::origin_of(&self.submission_url)
    }

    /// This log's entry in a v3 log list (`logs` for RFC 6962, `tiled_logs` for tiled), served at `url`.
    pub fn log_list_entry(&self, url: &str, description: &str) -> serde_json::Value {
        let mut v = serde_json::json!({
            "description": description,
            "log_id": B64.encode(self.log_id()),
            "key": B64.encode(&self.spki),
            "mmd": 60,
            "state": {"usable": {"timestamp": "2025-01-01T00:00:00Z"}}
        });
        match self.kind {
            Kind::Rfc6962 => v["url"] = url.into(),
            Kind::Tiled => {
                v["submission_url"] = self.submission_url.clone().into();
                v["monitoring_url"] = url.into();
            }
        }
        v
    }

    /// Counters so far, by client.
    pub fn counters(&self) -> HashMap<String, ClientCounters> {
        self.counters.lock().unwrap().clone()
    }

    fn count(&self, client: &str, f: impl FnOnce(&mut ClientCounters)) {
        f(self
            .counters
            .lock()
            .unwrap()
            .entry(client.to_string())
            .or_default());
    }

    /// A uniform random number in [0, 1) (splitmix64; good enough for fault injection).
    fn random(&self) -> f64 {
        let mut z = self.rng.fetch_add(0x9e37_79b9_7f4a_7c15, Relaxed);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) as f64 / (u64::MAX as f64 + 1.0)
    }

    /// Whether `client` may make a request now (token bucket of `rate_limit_per_sec`, burst of one second).
    fn take_token(&self, client: &str) -> bool {
        let rate = self.knobs.rate_limit_per_sec;
        if rate <= 0.0 {
            return true;
        }
        let mut limiter = self.limiter.lock().unwrap();
        let now = Instant::now();
        let b = limiter.entry(client.to_string()).or_insert(Bucket {
            tokens: rate,
            at: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(rate.max(1.0));
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn latency(&self) -> Duration {
        let (lo, hi) = self.knobs.latency_ms;
        let ms = lo as f64 + (hi.saturating_sub(lo)) as f64 * self.random();
        Duration::from_millis(ms as u64)
    }
}
