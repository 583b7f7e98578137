//! The NATS JetStream stream: every verified certificate (or only the matched ones), published after its batch
//! commits, for consumers downstream (SIEM pipelines, classifiers, research).
//!
//! ```text
//!  tailer process() (spawn_blocking) ── feed::render_item (the live feed's certstream JSON) ──> StreamMessage
//!  tailer commit(): Store::commit_batch OK ──> StreamBatch{messages, tree at its end} ──> bounded queue
//!        (queue full: the tailer waits — backpressure, nothing is dropped)                     │ queue_batches
//!  publisher (one task): publish ctwatch.certs.<entry_type>, Nats-Msg-Id = <log_id>:<index>, acks pipelined
//!        (≤ max_in_flight) ──> all acks of a batch in ──> Store::set_stream_position(log, tree)
//!  restart: tailer re-reads [published, committed) from the log, re-verifies it against the signed head and
//!        publishes it again (no store writes: matches are not reported twice); JetStream drops the repeats
//!        inside its duplicate window
//! ```
//!
//! Delivery is at-least-once: a message is published again after a crash or a failed acknowledgement, with the
//! same `Nats-Msg-Id`, so JetStream drops it when the first copy landed less than `duplicate_window_secs` ago.
//! Consumers that must be exact deduplicate on `Nats-Msg-Id` (or `log_id` + `cert_index`).

mod publisher;
mod stats;

pub use publisher::{Publisher, StreamError};
pub use stats::StreamStats;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::certstream::Source;
use crate::ct::merkle::CollapsedTree;
use crate::stats::LogStats;

/// Default stream name (created when missing).
pub const DEFAULT_STREAM_NAME: &str = "CTWATCH_CERTS";
/// Default subject prefix: messages go to `<prefix>.x509_entry` and `<prefix>.precert_entry`.
pub const DEFAULT_SUBJECT_PREFIX: &str = "ctwatch.certs";

/// `[stream]` as written in the config file. Every key is optional; the stream is on when `nats` is set (or with
/// `run --nats URL`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSection {
    /// NATS server URL (`nats://127.0.0.1:4222`).
    pub nats: Option<String>,
    /// `all` (every verified certificate, default) or `matches` (only watchlist matches).
    pub what: Option<String>,
    /// JetStream stream name (default `CTWATCH_CERTS`).
    pub name: Option<String>,
    /// Subject prefix (default `ctwatch.certs`).
    pub subject_prefix: Option<String>,
    /// Retention of a stream ctwatch creates: messages older than this are dropped (default 86400 s = 24 h).
    pub max_age_secs: Option<u64>,
    /// Retention of a stream ctwatch creates: the oldest messages are dropped beyond this size (default 10 GiB;
    /// 0 = unlimited).
    pub max_bytes: Option<u64>,
    /// JetStream's deduplication window for a stream ctwatch creates (default 120 s).
    pub duplicate_window_secs: Option<u64>,
    /// Committed batches waiting for the publisher before tailers wait (default 4).
    pub queue_batches: Option<usize>,
    /// Published messages whose acknowledgement has not arrived yet (default 1024).
    pub max_in_flight: Option<usize>,
}

/// Which certificates are published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum What {
    All,
    Matches,
}

/// The stream, resolved and range-checked.
#[derive(Clone, Debug)]
pub struct StreamConfig {
    pub url: String,
    pub what: What,
    pub name: String,
    pub subject_prefix: String,
    pub max_age: Duration,
    /// 0: unlimited.
    pub max_bytes: u64,
    pub duplicate_window: Duration,
    pub queue_batches: usize,
    pub max_in_flight: usize,
}

impl StreamConfig {
    /// The stream of `section`, with `nats_flag` (`run --nats`) winning over `nats`; None when neither is set.
    pub fn resolve(
        section: &StreamSection,
        nats_flag: Option<&str>,
    ) -> anyhow::Result<Option<StreamConfig>> {
        let Some(url) = nats_flag.or(section.nats.as_deref()) else {
            return Ok(None);
        };
        let what = match section.what.as_deref().unwrap_or("all") {
            "all" => What::All,
            "matches" => What::Matches,
            other => anyhow::bail!("stream.what = {other:?}: expected \"all\" or \"matches\""),
        };
        let name = section
            .name
            .clone()
            .unwrap_or_else(|| DEFAULT_STREAM_NAME.into());
        if name.is_empty() || name.contains(|c: char| c.is_whitespace() || ".*>/\\".contains(c)) {
            anyhow::bail!(
                "stream.name = {name:?}: a JetStream stream name has no spaces, '.', '*', '>', '/' or '\\'"
            );
        }
        let prefix = section
            .subject_prefix
            .clone()
            .unwrap_or_else(|| DEFAULT_SUBJECT_PREFIX.into());
        let bad_token = |t: &str| {
            t.is_empty() || t.contains(|c: char| c.is_whitespace() || c == '*' || c == '>')
        };
        if prefix.split('.').any(bad_token) {
            anyhow::bail!(
                "stream.subject_prefix = {prefix:?}: dot-separated tokens without spaces or wildcards expected"
            );
        }
        let range = |key: &str, v: u64, lo: u64, hi: u64| {
            if v < lo || v > hi {
                anyhow::bail!("stream.{key} = {v} is out of range {lo}..={hi}");
            }
            Ok(v)
        };
        let duplicate_window = range(
            "duplicate_window_secs",
            section.duplicate_window_secs.unwrap_or(120),
            1,
            86_400,
        )?;
        let max_age = range(
            "max_age_secs",
            section.max_age_secs.unwrap_or(86_400),
            60,
            365 * 86_400,
        )?;
        if duplicate_window > max_age {
            anyhow::bail!(
                "stream.duplicate_window_secs = {duplicate_window} exceeds stream.max_age_secs = {max_age}"
            );
        }
        Ok(Some(StreamConfig {
            url: url.to_string(),
            what,
            name,
            subject_prefix: prefix,
            max_age: Duration::from_secs(max_age),
            max_bytes: section.max_bytes.unwrap_or(10 << 30),
            duplicate_window: Duration::from_secs(duplicate_window),
            queue_batches: range(
                "queue_batches",
                section.queue_batches.unwrap_or(4) as u64,
                1,
                1024,
            )? as usize,
            max_in_flight: range(
                "max_in_flight",
                section.max_in_flight.unwrap_or(1024) as u64,
                1,
                65_536,
            )? as usize,
        }))
    }

    /// The subject of an entry: `<prefix>.x509_entry` or `<prefix>.precert_entry`.
    pub fn subject(&self, precert: bool) -> String {
        let kind = if precert {
            "precert_entry"
        } else {
            "x509_entry"
        };
        format!("{}.{kind}", self.subject_prefix)
    }
}

/// `Nats-Msg-Id` of a log entry: stable across restarts and republishing, so JetStream drops repeats.
pub fn message_id(log_id: &[u8; 32], index: u64) -> String {
    use base64::Engine;
    format!(
        "{}:{index}",
        base64::engine::general_purpose::STANDARD.encode(log_id)
    )
}

/// One entry to publish: its index, type and certstream JSON body.
#[derive(Clone, Debug)]
pub struct StreamMessage {
    pub index: u64,
    pub precert: bool,
    pub body: Bytes,
}

/// What one committed (or re-verified) batch of a log hands to the publisher. The published position moves to
/// `end` once every message before it is acknowledged.
pub struct StreamBatch {
    pub log_id: [u8; 32],
    pub end: CollapsedTree,
    pub messages: Vec<StreamMessage>,
    /// The log's live figures (the publisher sets its published size).
    pub stats: Arc<LogStats>,
}

/// The stream as one log's tailer sees it: what to publish, and the queue to the publisher.
#[derive(Clone, Debug)]
pub struct LogStream {
    pub what: What,
    pub source: Source,
    pub log_id: [u8; 32],
    pub queue: mpsc::Sender<StreamBatch>,
    pub stats: Arc<StreamStats>,
    /// Set once this process re-read what the previous one committed but did not get acknowledged: the
    /// republishing happens once per log and process, not after each tailer restart (what a failed tailer queued
    /// is still in the queue).
    pub resumed: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for StreamBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamBatch")
            .field("log_id", &hex::encode(self.log_id))
            .field("end", &self.end.size())
            .field("messages", &self.messages.len())
            .finish()
    }
}

impl LogStream {
    /// Whether an entry with these matches is published.
    pub fn wants(&self, matched: bool) -> bool {
        self.what == What::All || matched
    }

    /// Hand a committed batch to the publisher, waiting while the queue is full (backpressure). Returns false
    /// when `shutdown` came first or the publisher is gone: the batch stays unpublished and the next start
    /// re-reads it from the log.
    pub async fn send(
        &self,
        batch: StreamBatch,
        shutdown: &mut tokio::sync::watch::Receiver<bool>,
    ) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let started = std::time::Instant::now();
        self.stats.queued_batches.fetch_add(1, Relaxed);
        // A batch that fits is queued even while stopping: it is committed, so publish it if the drain allows.
        let sent = tokio::select! {
            biased;
            r = self.queue.send(batch) => r.is_ok(),
            _ = async { let _ = shutdown.wait_for(|s| *s).await; } => false,
        };
        if !sent {
            self.stats.queued_batches.fetch_sub(1, Relaxed);
        }
        self.stats.add_backpressure(started.elapsed());
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_ranges_and_the_flag() {
        assert!(
            StreamConfig::resolve(&StreamSection::default(), None)
                .unwrap()
                .is_none()
        );
        let c = StreamConfig::resolve(&StreamSection::default(), Some("nats://127.0.0.1:4222"))
            .unwrap()
            .unwrap();
        assert_eq!(c.what, What::All);
        assert_eq!(c.name, "CTWATCH_CERTS");
        assert_eq!(c.subject(true), "ctwatch.certs.precert_entry");
        assert_eq!(c.subject(false), "ctwatch.certs.x509_entry");
        assert_eq!(c.max_age, Duration::from_secs(86_400));
        assert_eq!(c.duplicate_window, Duration::from_secs(120));
        let section = StreamSection {
            nats: Some("nats://file:4222".into()),
            what: Some("matches".into()),
            ..Default::default()
        };
        let c = StreamConfig::resolve(&section, Some("nats://flag:4222"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.url.as_str(), c.what),
            ("nats://flag:4222", What::Matches)
        );
        for (bad, says) in [
            (
                StreamSection {
                    what: Some("some".into()),
                    ..section.clone()
                },
                "stream.what",
            ),
            (
                StreamSection {
                    name: Some("a.b".into()),
                    ..section.clone()
                },
                "stream.name",
            ),
            (
                StreamSection {
                    subject_prefix: Some("ct.>".into()),
                    ..section.clone()
                },
                "stream.subject_prefix",
            ),
            (
                StreamSection {
                    duplicate_window_secs: Some(0),
                    ..section.clone()
                },
                "stream.duplicate_window_secs = 0",
            ),
        ] {
            let err = StreamConfig::resolve(&bad, None).unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
        }
    }

    #[test]
    fn message_ids_name_the_log_and_the_index() {
        assert_eq!(
            message_id(&[3; 32], 17),
            "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=:17"
        );
    }
}
