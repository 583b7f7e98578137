//! Delivery of queued events to sinks (stdout, webhooks, Discord, Telegram, Slack, a program).
//!
//! ```text
//!  store: match + event + one delivery row per accepting sink, in ONE transaction (the outbox)
//!     │ wake
//!     v
//!  worker (one per sink): pending rows ──group::plan──> batches ──Sink::send──> mark delivered / retry / failed
//!                                         (window, cap)     (digest -> discord/telegram/slack text, webhook body)
//! ```
//!
//! Delivery is at-least-once: a row is marked delivered only after the target accepted the message, so a crash
//! between the two sends it again after the restart (generic webhooks carry a stable `webhook-id` for receivers
//! that de-duplicate). A failing target backs off on its own worker and never slows tailing or the other sinks.

mod build;
pub mod config;
pub mod digest;
pub mod discord;
pub mod exec;
pub mod group;
mod http;
pub mod sample;
pub mod slack;
mod stdout;
pub mod telegram;
pub mod webhook;
mod worker;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::store::Delivery;

pub use build::legacy_default_name;
pub use config::{SinkArgs, SinkConfig, SinkType, build_sinks, load_sinks_file};
pub use discord::DiscordSink;
pub use exec::ExecSink;
pub use group::Batching;
pub use http::{HttpService, HttpSink, HttpTarget, http_client};
pub use slack::SlackSink;
pub use stdout::{StdoutFormat, StdoutSink};
pub use telegram::TelegramSink;
pub use webhook::WebhookSink;
pub use worker::{Clock, DeliveryPolicy, Round, Worker, deliver_due, drain, run_worker};

/// Why a send failed, and what to do about it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SinkError {
    pub message: String,
    /// The target asked us to wait this long (429 retry_after / Retry-After).
    pub retry_after: Option<Duration>,
    /// Retrying this message cannot help (a 400 for a malformed request): fail the delivery now.
    pub permanent: bool,
    /// The target no longer exists (webhook deleted, channel archived): fail the delivery and pause the sink.
    pub gone: bool,
}

impl SinkError {
    /// A failure worth retrying later (network error, 5xx, timeout).
    pub fn transient(message: impl Into<String>) -> SinkError {
        SinkError {
            message: message.into(),
            ..Default::default()
        }
    }

    /// A failure no retry can fix.
    pub fn permanent(message: impl Into<String>) -> SinkError {
        SinkError {
            message: message.into(),
            permanent: true,
            ..Default::default()
        }
    }

    /// The target told us to slow down.
    pub fn rate_limited(message: impl Into<String>, retry_after: Duration) -> SinkError {
        SinkError {
            message: message.into(),
            retry_after: Some(retry_after),
            ..Default::default()
        }
    }

    /// The target is gone for good.
    pub fn gone(message: impl Into<String>) -> SinkError {
        SinkError {
            message: message.into(),
            permanent: true,
            gone: true,
            ..Default::default()
        }
    }
}

impl std::fmt::Display for SinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SinkError {}

/// A notification target.
///
/// Contract: `send` delivers all of `events` as one message (or a few, for targets with size limits) or fails;
/// it does not retry (the worker does). It may be called again with the same events after a failure or a
/// restart, so targets see at-least-once delivery. Calls for one sink never overlap (one worker per sink).
pub trait Sink: Send + Sync + 'static {
    /// Unique name, used as the outbox key (`stdout`, `webhook:ops`, ...).
    fn name(&self) -> &str;
    /// How many events one `send` may take.
    fn max_batch(&self) -> usize {
        1
    }
    /// How events are batched: by default no grouping, `max_batch` events per send.
    fn batching(&self) -> Batching {
        Batching {
            window_secs: 0,
            max_batch: self.max_batch(),
        }
    }
    /// Give up on an event after it waited this long (None: the worker's policy).
    fn give_up_after(&self) -> Option<Duration> {
        None
    }
    /// A local sink whose output cannot be taken back (stdout): `write_local` is called synchronously inside the
    /// transaction that marks the events delivered (see `Store::deliver_in_transaction`), instead of `send`.
    fn is_local(&self) -> bool {
        false
    }
    fn write_local(&self, _events: &[Delivery]) -> Option<Result<(), SinkError>> {
        None
    }
    fn send<'a>(
        &'a self,
        events: &'a [Delivery],
    ) -> Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + 'a>>;
}

/// Wakes the delivery workers after a commit queued events.
#[derive(Clone, Default)]
pub struct Wake(Arc<Vec<Arc<Notify>>>);

impl Wake {
    pub fn new(notifies: Vec<Arc<Notify>>) -> Wake {
        Wake(Arc::new(notifies))
    }
    pub fn wake(&self) {
        for n in self.0.iter() {
            n.notify_one();
        }
    }
}

/// The payload of `ctwatch notify test`.
pub fn test_event_payload(now: i64) -> serde_json::Value {
    serde_json::json!({
        "version": crate::event::PAYLOAD_VERSION,
        "kind": "test",
        "title": "ctwatch test notification",
        "message": "If you can read this, ctwatch can reach this channel.",
        "timestamp": crate::event::rfc3339(now),
    })
}

/// Send a test message straight to every sink (not through the outbox) and report each result.
pub async fn send_test(sinks: &[Arc<dyn Sink>]) -> Vec<(String, Result<(), SinkError>)> {
    let now = crate::store::unix_now();
    let delivery = |sink: &str| Delivery {
        event_id: 0,
        sink: sink.to_string(),
        kind: "test".into(),
        group_key: "test|".into(),
        tags: Vec::new(),
        payload: test_event_payload(now),
        attempts: 0,
        created_at: now,
    };
    let sends = sinks.iter().map(|sink| async move {
        let events = [delivery(sink.name())];
        (sink.name().to_string(), sink.send(&events).await)
    });
    futures::future::join_all(sends).await
}
