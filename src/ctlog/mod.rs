//! Clients for CT logs, behind one trait so the tailer does not care which kind of log it follows.
//!
//! ```text
//! CtLog::latest_head()        signed tree head / checkpoint, signature verified with the log-list key
//! CtLog::fetch_range(a, b)    exactly the entries [a, b), in order (short responses and retries handled inside)
//! CtLog::consistency_proof()  ties a root we computed at size m to the signed root at size n
//! CtLog::tree_at(n)           the collapsed tree at n, proven against a signed head (start mid-log)
//! ```

pub mod body;
pub mod budget;
pub mod counters;
pub mod http;
pub mod issuers;
pub mod rfc6962;
pub mod static_ct;

use std::future::Future;
use std::sync::Arc;

pub use body::Body;
pub use budget::{Admission, InflightBudget};
pub use counters::Pushback;

use crate::ct::leaf::{LogEntry, MerkleLeaf};
use crate::ct::merkle::{CollapsedTree, Hash};

/// A tree head whose signature was verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeHead {
    pub tree_size: u64,
    pub timestamp_ms: u64,
    pub root_hash: Hash,
}

/// One log entry as downloaded, before certificate parsing.
pub struct RawEntry {
    /// The Merkle tree leaf; its hash is what the tree commits to.
    pub leaf: MerkleLeaf,
    /// RFC 6962 `extra_data` as served, still base64 (empty for tiled logs, whose chain is resolved by the
    /// client, which keeps the chain its fingerprints name here): read by [`ExtraData::complete`] only for the entries
    /// that matter.
    pub extra_data: ExtraData,
    /// The decoded entry, or why it could not be decoded (the entry is then stored as malformed). For an RFC 6962
    /// entry, only the leaf until [`ExtraData::complete`].
    pub entry: Result<LogEntry, String>,
}

impl RawEntry {
    /// The served `extra_data` as bytes, for the record of a malformed entry (the text itself when it is not
    /// base64).
    pub fn extra_data_bytes(&self) -> Vec<u8> {
        use base64::Engine;
        let text = self.extra_data.as_bytes();
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap_or_else(|_| text.to_vec())
    }
}

/// RFC 6962 `extra_data` as served (base64 text), left where it arrived: most entries of the firehose never need
/// it (only entries that match, are stored or are streamed read it), and it is the larger half of a `get-entries`
/// answer, so it is not copied out per entry but kept as a view of the response chunk it came in, which the
/// entries of one answer share until they are processed.
#[derive(Clone, Default)]
pub enum ExtraData {
    /// None served (tiled logs).
    #[default]
    Empty,
    /// The base64 text: a view of the response (or its own copy when the JSON string had escapes or crossed
    /// two chunks of the response).
    Served(bytes::Bytes),
    /// A tiled log's chain, resolved from the TileLeaf's fingerprints (shared with every entry naming the same
    /// issuers), cut before `missing`, the first certificate the log does not serve.
    Chain {
        chain: Arc<[Arc<Vec<u8>>]>,
        missing: Option<[u8; 32]>,
    },
}

impl ExtraData {
    /// The RFC 6962 `extra_data` text as served (empty for tiled logs).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            ExtraData::Empty | ExtraData::Chain { .. } => &[],
            ExtraData::Served(text) => text,
        }
    }

    /// Fill in what the log served next to `entry`'s leaf (unverified): `pre_certificate` and `chain` from an RFC
    /// 6962 `extra_data`, or the chain a tiled log's fingerprints named; what could not be read goes to
    /// `chain_error`.
    pub fn complete(&self, entry: &mut LogEntry) {
        match self {
            ExtraData::Chain { chain, missing } => {
                entry.chain = chain.iter().map(|c| c.as_ref().clone()).collect();
                if let Some(fp) = missing
                    && entry.chain_error.is_none()
                {
                    entry.chain_error = Some(format!(
                        "chain[{}]: the log does not serve issuer/{}",
                        entry.chain.len(),
                        hex::encode(fp)
                    ));
                }
            }
            other => {
                // RFC 6962: a log cannot hide an entry by garbling what it serves next to the leaf.
                let text = other.as_bytes();
                if text.is_empty() {
                    return;
                }
                use base64::Engine;
                match base64::engine::general_purpose::STANDARD.decode(text) {
                    Ok(bytes) => crate::ct::leaf::attach_extra_data(entry, &bytes),
                    Err(e) => {
                        entry.pre_certificate = None;
                        entry.chain = Vec::new();
                        entry.chain_error = Some(format!("extra_data is not base64: {e}"));
                    }
                }
            }
        }
    }
}

impl std::fmt::Debug for ExtraData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ExtraData({} bytes)", self.as_bytes().len())
    }
}

/// Errors talking to a log. `is_transient` says whether retrying later can help.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("GET {url}: {message}")]
    Transport { url: String, message: String },
    #[error("GET {url}: HTTP {status}{}", body_hint(.body))]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("GET {url}: response larger than {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("GET {url}: malformed response: {message}")]
    BadResponse { url: String, message: String },
    #[error("{log}: tree head signature does not verify: {message}")]
    BadSignature { log: String, message: String },
    #[error("{log}: LOG MISBEHAVIOUR: {message}")]
    Misbehaving { log: String, message: String },
    #[error("{log}: ROOT MISMATCH: {message}")]
    RootMismatch { log: String, message: String },
    #[error("{log}: {message}")]
    Unsupported { log: String, message: String },
}

fn body_hint(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {}", body.chars().take(200).collect::<String>())
    }
}

impl LogError {
    /// Whether the same request may succeed later (network trouble, rate limits, server errors).
    pub fn is_transient(&self) -> bool {
        match self {
            LogError::Transport { .. } | LogError::TooLarge { .. } => true,
            LogError::Status { status, .. } => *status == 429 || *status == 408 || *status >= 500,
            _ => false,
        }
    }

    /// A short machine-readable kind, for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            LogError::Transport { .. } => "transport",
            LogError::Status { status: 429, .. } => "rate_limited",
            LogError::Status { .. } => "http_status",
            LogError::TooLarge { .. } => "too_large",
            LogError::BadResponse { .. } => "bad_response",
            LogError::BadSignature { .. } => "bad_signature",
            LogError::Misbehaving { .. } => "misbehaving",
            LogError::RootMismatch { .. } => "root_mismatch",
            LogError::Unsupported { .. } => "unsupported",
        }
    }
}

/// A CT log as the tailer sees it.
///
/// Contract: every method retries transient failures itself (with backoff, honouring rate limits) up to the
/// client's retry policy and then returns the last error; methods may be called concurrently (the tailer keeps
/// several `fetch_range` calls in flight); nothing here touches storage.
pub trait CtLog: Send + Sync + 'static {
    /// The URL (or monitoring prefix) of the log, for messages.
    fn url(&self) -> &str;

    /// Range sizes the tailer should request (and align to): a log's page size, or the tile width.
    fn range_size(&self) -> u64;

    /// The newest tree head, with its signature verified against the log's key.
    fn latest_head(&self) -> impl Future<Output = Result<TreeHead, LogError>> + Send;

    /// Exactly the entries `[start, end)`, in order. `head` is a verified head with `tree_size >= end`. The range
    /// claims its share of the in-flight budget through `admission` once the log starts answering.
    fn fetch_range(
        &self,
        start: u64,
        end: u64,
        head: &TreeHead,
        admission: &Admission,
    ) -> impl Future<Output = Result<Vec<RawEntry>, LogError>> + Send;

    /// A consistency proof between tree sizes `first < second` (RFC 6962 section 2.1.2).
    fn consistency_proof(
        &self,
        first: u64,
        second: u64,
    ) -> impl Future<Output = Result<Vec<Hash>, LogError>> + Send;

    /// The collapsed tree of the first `size` entries, proven against `head` (0 < size <= head.tree_size).
    fn tree_at(
        &self,
        size: u64,
        head: &TreeHead,
    ) -> impl Future<Output = Result<CollapsedTree, LogError>> + Send;
}
