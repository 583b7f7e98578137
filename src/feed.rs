//! The verified live feed: every entry of a committed batch, as certstream messages, to whoever listens.
//!
//! ```text
//!  tailer process() (spawn_blocking) ── certstream::render, only while someone listens ──> Processed.feed
//!  tailer commit(): Store::commit_batch OK ──> Feed::publish ──> tokio broadcast ring (capacity = per-client buffer)
//!                                                                  │ one Receiver per client
//!  api::stream: /stream/full | lite | domains (WebSocket), /stream/sse ── filter ── client
//! ```
//!
//! Contract: [`Feed::publish`] never blocks and never fails; a client that falls more than the ring's capacity
//! behind gets `Lagged` on its next read and is dropped by its own task. Nothing is published for a batch whose
//! commit failed (a root mismatch, a storage error): only entries verified against the signed head are streamed.

use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use tokio::sync::broadcast;

use crate::certstream::{self, MatchRef, Source};
use crate::ct::cert::CertInfo;
use crate::ct::leaf::{EntryType, LogEntry};
use crate::watchlist::Match;

/// Messages each client may be behind before it is dropped, when not configured.
pub const DEFAULT_CLIENT_BUFFER: usize = 16384;

/// One verified entry, serialized once for every client.
#[derive(Debug)]
pub struct FeedItem {
    pub full: Utf8Bytes,
    pub lite: Utf8Bytes,
    pub domains: Utf8Bytes,
    /// Watchlist matches of the certificate (empty: not on any watchlist).
    pub matches: Vec<MatchRef>,
}

impl FeedItem {
    /// Whether the entry matched a watchlist item with `tag`.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.matches.iter().any(|m| m.tags.iter().any(|t| t == tag))
    }
    /// Whether a match has this kind: a match kind (`domain`, `regex`, ...) or an event kind
    /// (`new_certificate`, `unauthorized_issuer`, `lookalike`).
    pub fn has_kind(&self, kind: &str) -> bool {
        self.matches
            .iter()
            .any(|m| m.kind == kind || m.event_kind == kind)
    }
}

/// The broadcast side of the feed. Cloning is cheap.
#[derive(Clone, Debug)]
pub struct Feed {
    tx: broadcast::Sender<Arc<FeedItem>>,
}

impl Default for Feed {
    fn default() -> Self {
        Feed::new(DEFAULT_CLIENT_BUFFER)
    }
}

impl Feed {
    /// A feed whose clients may each be `client_buffer` messages behind.
    pub fn new(client_buffer: usize) -> Feed {
        Feed {
            tx: broadcast::channel(client_buffer.max(1)).0,
        }
    }

    /// Whether any client listens (tailers skip building messages otherwise).
    pub fn is_listened(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// Send verified entries to every client. Never blocks.
    pub fn publish(&self, items: Vec<Arc<FeedItem>>) {
        for item in items {
            // Err only means nobody listens right now.
            let _ = self.tx.send(item);
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<FeedItem>> {
        self.tx.subscribe()
    }

    pub fn clients(&self) -> usize {
        self.tx.receiver_count()
    }
}

/// The feed as one log's tailer sees it: where to publish and how to name the source.
#[derive(Clone, Debug)]
pub struct LogFeed {
    pub feed: Feed,
    pub source: Source,
    /// The log's ID (carried in every message as `log_id`).
    pub log_id: [u8; 32],
}

impl LogFeed {
    /// Build the messages of one decoded entry (CPU work: call it off the async threads). `None` when the
    /// certificate does not parse for certstream's description (it was decoded already, so this is rare).
    pub fn item(
        &self,
        index: u64,
        entry: &LogEntry,
        info: &CertInfo,
        matches: &[Match],
    ) -> Option<Arc<FeedItem>> {
        render_item(&self.source, &self.log_id, index, entry, info, matches)
    }
}

/// The certstream messages of one verified entry: the one rendering shared by the live feed and the NATS stream
/// (`crate::stream`), so that the two never diverge. `None` when the entry cannot be described (a precertificate
/// served next to the leaf that is not the leaf's, a certificate certstream's description cannot parse).
pub fn render_item(
    source: &Source,
    log_id: &[u8; 32],
    index: u64,
    entry: &LogEntry,
    info: &CertInfo,
    matches: &[Match],
) -> Option<Arc<FeedItem>> {
    let matches: Vec<MatchRef> = matches
        .iter()
        .map(|m| MatchRef {
            item: m.item.clone(),
            name: m.name.clone(),
            kind: m.kind.as_str().to_string(),
            event_kind: m.kind.event_kind().to_string(),
            tags: m.tags.clone(),
        })
        .collect();
    let seen = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as f64 / 1000.0)
        .unwrap_or(0.0);
    // The precertificate DER is served next to the leaf, not in it: streamed only when it is the leaf's
    // (proven by the chain check, or the same TBS identity as the leaf).
    let cert_der = match entry.entry_type {
        EntryType::X509 => &entry.signed_entry[..],
        EntryType::Precert => {
            let pre = entry.pre_certificate.as_deref()?;
            let same_tbs = || {
                crate::ct::cert::tbs_of_certificate(pre)
                    .and_then(crate::ct::cert::tbs_identity)
                    .is_ok_and(|id| id == info.tbs_sha256)
            };
            if !(info.chain.is_proven() || same_tbs()) {
                tracing::debug!(
                    index,
                    "not streamed: the served precertificate is not the leaf's"
                );
                return None;
            }
            pre
        }
    };
    let rendered = certstream::render(&certstream::UpdateInput {
        source,
        index,
        precert: entry.entry_type == EntryType::Precert,
        cert_der,
        chain: &entry.chain,
        tbs_sha256: &info.tbs_sha256,
        log_id,
        seen,
        matches: &matches,
    })
    .inspect_err(|e| tracing::debug!(index, "not streamed: {e}"))
    .ok()?;
    Some(Arc::new(FeedItem {
        full: rendered.full.into(),
        lite: rendered.lite.into(),
        domains: rendered.domains.into(),
        matches,
    }))
}
