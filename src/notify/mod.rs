//! Delivery of queued events to sinks.
//!
//! The store queues one delivery row per (event, sink) in the same transaction that records the match. One worker
//! per sink takes due rows oldest first, sends them, and marks them delivered only after the sink accepted them:
//! delivery is at-least-once and survives restarts. A failing sink backs off on its own and never slows tailing
//! or the other sinks.

mod stdout;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::store::{Delivery, Store, unix_now};

pub use stdout::{StdoutFormat, StdoutSink};

/// Why a send failed, and what to do about it.
#[derive(Debug, Clone)]
pub struct SinkError {
    pub message: String,
    /// The target asked us to wait this long (429 retry_after / Retry-After).
    pub retry_after: Option<Duration>,
    /// Retrying cannot help (a 400 for a malformed request, a 404 webhook): fail the delivery now.
    pub permanent: bool,
}

impl std::fmt::Display for SinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A notification target.
///
/// Contract: `send` delivers all of `events` as one message (or a few, for targets with size limits) or fails;
/// it does not retry (the worker does). It may be called again with the same events after a failure or a
/// restart, so targets see at-least-once delivery.
pub trait Sink: Send + Sync + 'static {
    /// Unique name, used as the outbox key (`stdout`, `webhook:ops`, ...).
    fn name(&self) -> &str;
    /// How many events one `send` may take.
    fn max_batch(&self) -> usize {
        1
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

/// Retry behaviour of a delivery worker.
#[derive(Clone, Debug)]
pub struct DeliveryPolicy {
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Give up on an event (status `failed`, visible in `ctwatch outbox`) after it waited this long.
    pub give_up_after: Duration,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        DeliveryPolicy {
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(600),
            give_up_after: Duration::from_secs(48 * 3600),
        }
    }
}

/// Deliver what is due for `sink` once. Returns how many events were delivered, or None if nothing was due.
pub async fn deliver_due(
    store: &Arc<Store>,
    sink: &dyn Sink,
    policy: &DeliveryPolicy,
) -> anyhow::Result<Option<usize>> {
    let limit = sink.max_batch().max(1);
    if sink.is_local() {
        return deliver_local(store, sink, limit).await;
    }
    let st = store.clone();
    let name = sink.name().to_string();
    let due =
        tokio::task::spawn_blocking(move || st.due_deliveries(&name, unix_now(), limit)).await??;
    if due.is_empty() {
        return Ok(None);
    }
    let ids: Vec<i64> = due.iter().map(|d| d.event_id).collect();
    let st = store.clone();
    let name = sink.name().to_string();
    match sink.send(&due).await {
        Ok(()) => {
            let n = ids.len();
            tokio::task::spawn_blocking(move || st.mark_delivered(&name, &ids)).await??;
            Ok(Some(n))
        }
        Err(err) => {
            let attempts = due.iter().map(|d| d.attempts).max().unwrap_or(0) + 1;
            let oldest = due
                .iter()
                .map(|d| d.created_at)
                .min()
                .unwrap_or_else(unix_now);
            let backoff = policy
                .base_delay
                .saturating_mul(1 << attempts.min(16))
                .min(policy.max_delay);
            let wait = err
                .retry_after
                .unwrap_or(backoff)
                .max(Duration::from_secs(1));
            let retry_at = unix_now() + wait.as_secs() as i64;
            let give_up =
                err.permanent || retry_at - oldest > policy.give_up_after.as_secs() as i64;
            tracing::warn!(sink = %name, attempts, "delivery failed: {err}{}", if give_up { " (giving up)" } else { "" });
            let msg = err.message.clone();
            tokio::task::spawn_blocking(move || {
                st.mark_attempt_failed(&name, &ids, &msg, (!give_up).then_some(retry_at))
            })
            .await??;
            Ok(Some(0))
        }
    }
}

/// Local sinks: write and mark delivered in one transaction.
async fn deliver_local(
    store: &Arc<Store>,
    sink: &dyn Sink,
    limit: usize,
) -> anyhow::Result<Option<usize>> {
    let deliver = || {
        store.deliver_in_transaction(sink.name(), unix_now(), limit, |due| {
            sink.write_local(due).unwrap_or(Ok(()))
        })
    };
    // A short synchronous write plus a small transaction: keep it off other tasks' way where the runtime allows.
    let r = match tokio::runtime::Handle::current().runtime_flavor() {
        tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(deliver),
        _ => deliver(),
    }?;
    match r {
        Ok(0) => Ok(None),
        Ok(n) => Ok(Some(n)),
        Err(e) => {
            tracing::warn!(sink = sink.name(), "local delivery failed: {e}");
            Ok(Some(0))
        }
    }
}

/// The worker loop of one sink: deliver whatever is due, then sleep until woken, until the next retry is due, or
/// until shutdown.
pub async fn run_worker(
    store: Arc<Store>,
    sink: Arc<dyn Sink>,
    wake: Arc<Notify>,
    policy: DeliveryPolicy,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        match deliver_due(&store, sink.as_ref(), &policy).await {
            Ok(Some(_)) => continue,
            Ok(None) => {}
            Err(e) => tracing::error!(sink = sink.name(), "outbox: {e:#}"),
        }
        let st = store.clone();
        let name = sink.name().to_string();
        let next = tokio::task::spawn_blocking(move || st.next_due(&name))
            .await
            .ok()
            .and_then(|r| r.ok())
            .flatten();
        let sleep = next
            .map(|t| (t - unix_now()).clamp(1, 60) as u64)
            .unwrap_or(60);
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(sleep)) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

/// Deliver everything due to every sink, waiting for retries, until nothing is pending or `deadline` passes
/// (`--once`). Returns the number of deliveries still pending per sink.
pub async fn drain(
    store: &Arc<Store>,
    sinks: &[Arc<dyn Sink>],
    policy: &DeliveryPolicy,
    deadline: Duration,
) -> Vec<(String, u64)> {
    let until = tokio::time::Instant::now() + deadline;
    let work = async {
        loop {
            let mut progressed = false;
            for sink in sinks {
                while let Ok(Some(_)) = deliver_due(store, sink.as_ref(), policy).await {
                    progressed = true;
                }
            }
            let pending = pending_counts(store).await;
            if pending.iter().all(|(_, n)| *n == 0) {
                return;
            }
            if !progressed {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    let _ = tokio::time::timeout_at(until, work).await;
    pending_counts(store).await
}

async fn pending_counts(store: &Arc<Store>) -> Vec<(String, u64)> {
    let st = store.clone();
    tokio::task::spawn_blocking(move || st.outbox_summary())
        .await
        .ok()
        .and_then(|r| r.ok())
        .unwrap_or_default()
        .into_iter()
        .map(|s| (s.sink, s.pending))
        .collect()
}
