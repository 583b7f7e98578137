//! The one task that publishes committed batches to JetStream and moves the published positions.
//!
//! Contract: messages of a batch are published in index order with their `Nats-Msg-Id`; acknowledgements are
//! awaited in the same order with at most `max_in_flight` outstanding. A failed publish (no answer in time, a
//! negative acknowledgement, a lost connection) is retried with backoff until it is acknowledged: nothing is
//! dropped. A log's published position moves to a batch's end only when every message up to it was acknowledged.
//! On stop, what is in hand is finished within the drain time; what is left stays behind the published position
//! and is re-read by the next start.

use std::collections::VecDeque;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use async_nats::jetstream::{
    self, context::PublishError, message::PublishMessage, publish::PublishAck,
};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::{StreamBatch, StreamConfig, StreamMessage, StreamStats, message_id};
use crate::ct::merkle::CollapsedTree;
use crate::stats::LogStats;
use crate::store::Store;

/// Connecting and creating or checking the stream.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("JetStream stream {name} at {url}: {reason}")]
    Setup {
        url: String,
        name: String,
        reason: String,
    },
}

type AckFuture = Pin<Box<dyn Future<Output = Result<PublishAck, PublishError>> + Send>>;

/// A published message waiting for its acknowledgement, or the end of a batch.
enum Slot {
    Message {
        log_id: [u8; 32],
        message: StreamMessage,
        ack: AckFuture,
    },
    BatchEnd {
        log_id: [u8; 32],
        end: CollapsedTree,
        stats: Arc<LogStats>,
    },
}

/// A connected publisher, with the stream checked or created.
pub struct Publisher {
    js: jetstream::Context,
    config: StreamConfig,
    store: Arc<Store>,
    stats: Arc<StreamStats>,
}

/// How long connecting, and each JetStream request or acknowledgement, may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

impl Publisher {
    /// Connect to NATS and make sure the stream exists (created with the configured retention when missing).
    /// Returns the publisher and a sentence saying which stream is used, for the log.
    pub async fn connect(
        config: StreamConfig,
        store: Arc<Store>,
        stats: Arc<StreamStats>,
    ) -> Result<(Publisher, String), StreamError> {
        let connect = async_nats::ConnectOptions::new()
            .name("ctwatch")
            .connection_timeout(REQUEST_TIMEOUT)
            .connect(config.url.as_str());
        let client = match tokio::time::timeout(REQUEST_TIMEOUT, connect).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                return Err(StreamError::Connect {
                    url: config.url.clone(),
                    reason: e.to_string(),
                });
            }
            Err(_) => {
                return Err(StreamError::Connect {
                    url: config.url.clone(),
                    reason: format!("no answer within {REQUEST_TIMEOUT:?}"),
                });
            }
        };
        let js = jetstream::ContextBuilder::new()
            .timeout(REQUEST_TIMEOUT)
            .max_ack_inflight(config.max_in_flight + 16)
            .backpressure_on_inflight(true)
            .build(client);
        let publisher = Publisher {
            js,
            config,
            store,
            stats,
        };
        let note = publisher.ensure_stream().await?;
        publisher.stats.enabled.store(true, Relaxed);
        Ok((publisher, note))
    }

    /// The stream configuration ctwatch creates: limits retention, file storage, oldest dropped first.
    pub fn wanted_stream(config: &StreamConfig) -> jetstream::stream::Config {
        jetstream::stream::Config {
            name: config.name.clone(),
            description: Some(
                "ctwatch: verified certificates from Certificate Transparency logs".into(),
            ),
            subjects: vec![format!("{}.>", config.subject_prefix)],
            retention: jetstream::stream::RetentionPolicy::Limits,
            storage: jetstream::stream::StorageType::File,
            discard: jetstream::stream::DiscardPolicy::Old,
            max_age: config.max_age,
            max_bytes: if config.max_bytes == 0 {
                -1
            } else {
                config.max_bytes.min(i64::MAX as u64) as i64
            },
            duplicate_window: config.duplicate_window,
            ..Default::default()
        }
    }

    async fn ensure_stream(&self) -> Result<String, StreamError> {
        let c = &self.config;
        let setup = |reason: String| StreamError::Setup {
            url: c.url.clone(),
            name: c.name.clone(),
            reason,
        };
        let wanted = Self::wanted_stream(c);
        let mut stream = match self.js.get_stream(&c.name).await {
            Ok(s) => s,
            Err(e) if is_not_found(&e) => {
                self.js
                    .create_stream(wanted.clone())
                    .await
                    .map_err(|e| setup(format!("creating it: {e}")))?;
                return Ok(format!(
                    "created JetStream stream {} (subjects {}.>, limits retention: max age {}s, max bytes {}, \
                     duplicate window {}s)",
                    c.name,
                    c.subject_prefix,
                    c.max_age.as_secs(),
                    wanted.max_bytes,
                    c.duplicate_window.as_secs()
                ));
            }
            Err(e) => return Err(setup(format!("looking it up: {e}"))),
        };
        let found = stream
            .info()
            .await
            .map_err(|e| setup(format!("reading its configuration: {e}")))?
            .config
            .clone();
        let ours = [c.subject(false), c.subject(true)];
        if !ours
            .iter()
            .all(|s| found.subjects.iter().any(|p| subject_matches(p, s)))
        {
            return Err(setup(format!(
                "it exists but does not capture {} (its subjects: {:?}); change stream.name or \
                 stream.subject_prefix",
                ours.join(" and "),
                found.subjects
            )));
        }
        let mut differs = Vec::new();
        if found.max_age != wanted.max_age {
            differs.push(format!("max age {}s", found.max_age.as_secs()));
        }
        if found.max_bytes != wanted.max_bytes {
            differs.push(format!("max bytes {}", found.max_bytes));
        }
        if found.duplicate_window != wanted.duplicate_window {
            differs.push(format!(
                "duplicate window {}s",
                found.duplicate_window.as_secs()
            ));
        }
        if found.retention != wanted.retention {
            differs.push(format!("retention {:?}", found.retention));
        }
        if differs.is_empty() {
            return Ok(format!("using JetStream stream {}", c.name));
        }
        let note = format!(
            "using the existing JetStream stream {} as it is, with other settings than configured: {}",
            c.name,
            differs.join(", ")
        );
        tracing::warn!("{note}");
        Ok(note)
    }

    /// Publish what the tailers queue until `stop`, then finish what is in hand within `drain`.
    pub async fn run(
        self,
        mut queue: mpsc::Receiver<StreamBatch>,
        mut stop: watch::Receiver<bool>,
        drain: Duration,
    ) {
        let mut slots: VecDeque<Slot> = VecDeque::new();
        let mut in_flight = 0usize;
        let mut deadline: Option<Instant> = None;
        let mut closed = false;
        loop {
            let stopping = *stop.borrow();
            if deadline.is_none() && stopping {
                deadline = Some(Instant::now() + drain);
                queue.close(); // the tailers have stopped: take what they left, then finish
            }
            if closed && slots.is_empty() {
                return;
            }
            let room = in_flight < self.config.max_in_flight && !closed;
            let until = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
            tokio::select! {
                biased;
                _ = tokio::time::sleep_until(until), if deadline.is_some() => break,
                done = front_ready(&mut slots), if !slots.is_empty() => {
                    if !self.settle(&mut slots, &mut in_flight, done, deadline).await {
                        break;
                    }
                }
                batch = queue.recv(), if room => match batch {
                    Some(b) => {
                        self.stats.queued_batches.fetch_sub(1, Relaxed);
                        if !self.start_batch(b, &mut slots, &mut in_flight, deadline).await {
                            break;
                        }
                    }
                    None => closed = true,
                },
                _ = async { let _ = stop.wait_for(|s| *s).await; }, if deadline.is_none() => {}
            }
        }
        let left = in_flight + queue.len();
        if left > 0 {
            tracing::warn!(
                unacknowledged = in_flight,
                queued_batches = queue.len(),
                "stopped publishing before everything was acknowledged; the next start publishes it again"
            );
        }
    }

    /// Publish a batch's messages (settling the oldest when `max_in_flight` are outstanding) and mark its end.
    async fn start_batch(
        &self,
        batch: StreamBatch,
        slots: &mut VecDeque<Slot>,
        in_flight: &mut usize,
        deadline: Option<Instant>,
    ) -> bool {
        for message in batch.messages {
            while *in_flight >= self.config.max_in_flight {
                let done = front_ready(slots).await;
                if !self.settle(slots, in_flight, done, deadline).await {
                    return false;
                }
            }
            let ack = self.publish(&batch.log_id, &message).await;
            slots.push_back(Slot::Message {
                log_id: batch.log_id,
                message,
                ack,
            });
            *in_flight += 1;
        }
        slots.push_back(Slot::BatchEnd {
            log_id: batch.log_id,
            end: batch.end,
            stats: batch.stats,
        });
        true
    }

    /// Send one message; its acknowledgement (or the failure to send) as a future.
    async fn publish(&self, log_id: &[u8; 32], m: &StreamMessage) -> AckFuture {
        let publish = PublishMessage::build()
            .payload(m.body.clone())
            .message_id(message_id(log_id, m.index));
        match self
            .js
            .send_publish(self.config.subject(m.precert), publish)
            .await
        {
            Ok(ack) => ack.into_future(),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }

    /// Handle the oldest slot: count an acknowledgement, retry a failure until it is acknowledged, or store the
    /// position at a batch end. False when the drain deadline passed while retrying.
    async fn settle(
        &self,
        slots: &mut VecDeque<Slot>,
        in_flight: &mut usize,
        done: Option<Result<PublishAck, PublishError>>,
        deadline: Option<Instant>,
    ) -> bool {
        let Some(slot) = slots.pop_front() else {
            return true;
        };
        match (slot, done) {
            (Slot::Message { .. }, Some(Ok(ack))) => {
                self.stats.record_ack(ack.duplicate);
                *in_flight -= 1;
            }
            (
                Slot::Message {
                    log_id, message, ..
                },
                Some(Err(e)),
            ) => {
                if !self.retry(&log_id, &message, e, deadline).await {
                    return false;
                }
                *in_flight -= 1;
            }
            (Slot::BatchEnd { log_id, end, stats }, _) => {
                let size = end.size();
                let store = self.store.clone();
                match tokio::task::spawn_blocking(move || store.set_stream_position(&log_id, &end))
                    .await
                {
                    Ok(Ok(())) => stats.published_size.store(size, Relaxed),
                    // Harmless: the position stays behind and the next start publishes those entries again.
                    Ok(Err(e)) => tracing::error!("storing the published position: {e}"),
                    Err(e) => tracing::error!("storing the published position: {e}"),
                }
            }
            (Slot::Message { .. }, None) => unreachable!("front_ready awaits every message slot"),
        }
        true
    }

    /// Publish `message` again until it is acknowledged (backoff 100 ms doubling to 5 s); false at the deadline.
    async fn retry(
        &self,
        log_id: &[u8; 32],
        message: &StreamMessage,
        mut error: PublishError,
        deadline: Option<Instant>,
    ) -> bool {
        let mut pause = Duration::from_millis(100);
        loop {
            self.stats.record_error(error.to_string());
            tracing::warn!(
                index = message.index,
                "publishing to NATS failed (retrying): {error}"
            );
            if deadline.is_some_and(|d| Instant::now() + pause >= d) {
                return false;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
            match self.publish(log_id, message).await.await {
                Ok(ack) => {
                    self.stats.record_ack(ack.duplicate);
                    return true;
                }
                Err(e) => error = e,
            }
        }
    }
}

/// Wait for the oldest slot: a message's acknowledgement (None for a batch end, which is ready at once).
/// Cancel-safe: the acknowledgement future stays in its slot.
async fn front_ready(slots: &mut VecDeque<Slot>) -> Option<Result<PublishAck, PublishError>> {
    match slots.front_mut() {
        Some(Slot::Message { ack, .. }) => Some(ack.as_mut().await),
        _ => None,
    }
}

fn is_not_found(e: &jetstream::context::GetStreamError) -> bool {
    matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(err)
        if err.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND)
}

/// Whether the subject filter `pattern` (with `*` and `>` wildcards) matches the literal `subject`.
fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut p = pattern.split('.');
    let mut s = subject.split('.');
    loop {
        match (p.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::subject_matches;

    #[test]
    fn subject_filters() {
        assert!(subject_matches(
            "ctwatch.certs.>",
            "ctwatch.certs.x509_entry"
        ));
        assert!(subject_matches(
            "ctwatch.*.x509_entry",
            "ctwatch.certs.x509_entry"
        ));
        assert!(subject_matches(">", "ctwatch.certs.x509_entry"));
        assert!(!subject_matches("ctwatch.certs.>", "ctwatch.certs"));
        assert!(!subject_matches(
            "ctwatch.certs.x509_entry",
            "ctwatch.certs.precert_entry"
        ));
        assert!(!subject_matches("other.>", "ctwatch.certs.x509_entry"));
    }
}
