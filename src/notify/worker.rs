//! The delivery worker of one sink: plan, send, record, back off.
//!
//! Contract with the store: a delivery row is `pending` until the sink accepted it (`delivered`) or the worker
//! gave up on it (`failed`, kept with its last error for `ctwatch outbox`). Retry times live in the rows, so a
//! restart resumes where the last run stopped. Target-wide pauses (a 429, a target that is down) also live in
//! the worker, so one failing group does not make the next group hammer the same dead target; a target that is
//! gone (404/410) pauses the sink in the store, across runs, until `ctwatch outbox retry` resumes it.

use std::sync::Arc;
use std::time::Duration;

use rand::RngExt;
use tokio::sync::{Notify, watch};

use super::Sink;
use super::group::{self, Plan};
use crate::store::Store;

/// Pending rows considered per round; a longer backlog is worked through oldest first.
const PLAN_ROWS: usize = 10_000;

/// The worker's notion of "now". `System` in production; `Tokio` follows tokio's clock so that tests with paused
/// time see backoffs and group windows pass instantly.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    #[default]
    System,
    Tokio {
        unix_ms_at_start: i64,
        start: tokio::time::Instant,
    },
}

impl Clock {
    /// A clock that starts at the current whole unix second and then advances with tokio time.
    pub fn tokio() -> Clock {
        Clock::Tokio {
            unix_ms_at_start: system_ms() / 1000 * 1000,
            start: tokio::time::Instant::now(),
        }
    }

    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => system_ms(),
            Clock::Tokio {
                unix_ms_at_start,
                start,
            } => {
                unix_ms_at_start
                    + i64::try_from(start.elapsed().as_millis()).unwrap_or(i64::MAX / 2)
            }
        }
    }

    pub fn now_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
}

fn system_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Retry behaviour of a delivery worker.
#[derive(Clone, Debug)]
pub struct DeliveryPolicy {
    /// First retry delay; doubles per failed attempt, with jitter (a random 50-100 % of it).
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Give up on an event (status `failed`, visible in `ctwatch outbox`) after it waited this long. A sink may
    /// set its own (`give_up_after_secs`).
    pub give_up_after: Duration,
    pub clock: Clock,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        DeliveryPolicy {
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(600),
            give_up_after: Duration::from_secs(48 * 3600),
            clock: Clock::System,
        }
    }
}

impl DeliveryPolicy {
    /// The delay before attempt `attempts + 1`, for a jitter draw in [0, 1): `base * 2^(attempts-1)`, capped,
    /// then scaled into [50 %, 100 %] so that many sinks failing together do not retry in lockstep.
    pub fn backoff(&self, attempts: u32, jitter: f64) -> Duration {
        let exp = attempts.saturating_sub(1).min(20);
        let full = self.base_delay.saturating_mul(1 << exp).min(self.max_delay);
        full.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }
}

/// What one round did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Round {
    /// A batch was sent: how many events were delivered (0 if the send failed).
    Sent { delivered: usize },
    /// Nothing is ready; the next delivery becomes ready at this unix time (ms), if any is pending.
    Idle { next_at_ms: Option<i64> },
}

/// The delivery state of one sink.
pub struct Worker {
    store: Arc<Store>,
    sink: Arc<dyn Sink>,
    policy: DeliveryPolicy,
    /// Target-wide pause (unix ms): after a 429 or a failure nothing is sent to this sink before it.
    paused_until_ms: i64,
    /// Failures in a row, across groups: the backoff of a target that is down keeps growing.
    consecutive_failures: u32,
}

impl Worker {
    pub fn new(store: Arc<Store>, sink: Arc<dyn Sink>, policy: DeliveryPolicy) -> Worker {
        Worker {
            store,
            sink,
            policy,
            paused_until_ms: 0,
            consecutive_failures: 0,
        }
    }

    /// Send the oldest ready batch, if any. With `flush`, open group windows count as closed.
    pub async fn round(&mut self, flush: bool) -> anyhow::Result<Round> {
        let now_ms = self.policy.clock.now_ms();
        if now_ms < self.paused_until_ms {
            return Ok(Round::Idle {
                next_at_ms: Some(self.paused_until_ms),
            });
        }
        if self.sink.is_local() {
            return self.round_local(now_ms.div_euclid(1000));
        }
        // A sink whose target is gone stays paused until resumed (`ctwatch outbox retry`): checked every round,
        // so that a resume by another process is seen within a minute.
        let name = self.sink.name().to_string();
        let st = self.store.clone();
        if tokio::task::spawn_blocking(move || st.sink_pause(&name))
            .await??
            .is_some()
        {
            return Ok(Round::Idle { next_at_ms: None });
        }
        let name = self.sink.name().to_string();
        let st = self.store.clone();
        let rows = tokio::task::spawn_blocking(move || st.pending_rows(&name, PLAN_ROWS)).await??;
        let Plan { ready, next_at } =
            group::plan(&rows, now_ms.div_euclid(1000), self.sink.batching(), flush);
        let Some(ids) = ready.into_iter().next() else {
            return Ok(Round::Idle {
                next_at_ms: next_at.map(|s| s * 1000),
            });
        };
        // Several instances on one database: send only what this one claimed (the others skip it).
        let st = self.store.clone();
        let name = self.sink.name().to_string();
        let now = now_ms.div_euclid(1000);
        let ids =
            tokio::task::spawn_blocking(move || st.claim_deliveries(&name, &ids, now)).await??;
        if ids.is_empty() {
            return Ok(Round::Sent { delivered: 0 });
        }
        let st = self.store.clone();
        let name = self.sink.name().to_string();
        let load = ids.clone();
        let batch =
            tokio::task::spawn_blocking(move || st.pending_deliveries(&name, &load)).await??;
        if batch.is_empty() {
            return Ok(Round::Sent { delivered: 0 });
        }
        let result = self.sink.send(&batch).await;
        let st = self.store.clone();
        let name = self.sink.name().to_string();
        match result {
            Ok(()) => {
                self.consecutive_failures = 0;
                let n = ids.len();
                tokio::task::spawn_blocking(move || st.mark_delivered(&name, &ids)).await??;
                Ok(Round::Sent { delivered: n })
            }
            Err(err) => {
                self.record_failure(&batch, ids, err).await?;
                Ok(Round::Sent { delivered: 0 })
            }
        }
    }

    /// Local sinks (stdout): write and mark delivered in one transaction, so that a kill cannot make them
    /// print an event twice (see `Store::deliver_in_transaction`). They are never grouped.
    fn round_local(&mut self, now: i64) -> anyhow::Result<Round> {
        let sink = self.sink.clone();
        let limit = sink.max_batch().max(1);
        let deliver = || {
            self.store
                .deliver_in_transaction(sink.name(), now, limit, |due| {
                    sink.write_local(due).unwrap_or(Ok(()))
                })
        };
        // A short synchronous write plus a small transaction: keep it off other tasks' way where the runtime
        // allows.
        let r = match tokio::runtime::Handle::current().runtime_flavor() {
            tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(deliver),
            _ => deliver(),
        }?;
        match r {
            Ok(0) => Ok(Round::Idle { next_at_ms: None }),
            Ok(n) => Ok(Round::Sent { delivered: n }),
            Err(e) => {
                tracing::warn!(sink = sink.name(), "local delivery failed: {e}");
                // Retry after a pause rather than spinning on a closed stdout.
                self.paused_until_ms = self.policy.clock.now_ms() + 1000;
                Ok(Round::Sent { delivered: 0 })
            }
        }
    }

    /// Schedule the retry of a failed batch (or give up on it) and pause the target as it asked.
    async fn record_failure(
        &mut self,
        batch: &[crate::store::Delivery],
        ids: Vec<i64>,
        err: super::SinkError,
    ) -> anyhow::Result<()> {
        let name = self.sink.name().to_string();
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let attempts = batch
            .iter()
            .map(|d| d.attempts + 1)
            .max()
            .unwrap_or(1)
            .max(self.consecutive_failures);
        let wait = err
            .retry_after
            .unwrap_or_else(|| self.policy.backoff(attempts, rand::rng().random::<f64>()));
        let now_ms = self.policy.clock.now_ms();
        let retry_at_ms = now_ms + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 4);
        let retry_at = (retry_at_ms + 999).div_euclid(1000);
        let oldest = batch.iter().map(|d| d.created_at).min().unwrap_or(retry_at);
        let give_up_after = self
            .sink
            .give_up_after()
            .unwrap_or(self.policy.give_up_after);
        let give_up = err.permanent || retry_at - oldest > give_up_after.as_secs() as i64;
        if err.gone {
            tracing::error!(
                sink = %name,
                "the target is gone, pausing this sink until `ctwatch outbox retry --sink {name}`: {err}"
            );
            let (st, sink, reason) = (self.store.clone(), name.clone(), err.message.clone());
            let now = now_ms.div_euclid(1000);
            tokio::task::spawn_blocking(move || st.pause_sink(&sink, &reason, now)).await??;
        } else if !err.permanent {
            self.paused_until_ms = retry_at_ms;
        }
        tracing::warn!(
            sink = %name,
            attempts,
            events = ids.len(),
            "delivery failed: {err}{}",
            if give_up { " (giving up: see `ctwatch outbox`)" } else { "" }
        );
        let st = self.store.clone();
        let msg = err.message;
        tokio::task::spawn_blocking(move || {
            st.mark_attempt_failed(&name, &ids, &msg, (!give_up).then_some(retry_at))
        })
        .await??;
        Ok(())
    }
}

/// Deliver the oldest ready batch of `sink` once (no target-wide state kept between calls). Returns how many
/// events were delivered, or None if nothing was ready.
pub async fn deliver_due(
    store: &Arc<Store>,
    sink: Arc<dyn Sink>,
    policy: &DeliveryPolicy,
) -> anyhow::Result<Option<usize>> {
    let mut w = Worker::new(store.clone(), sink, policy.clone());
    Ok(match w.round(false).await? {
        Round::Sent { delivered } => Some(delivered),
        Round::Idle { .. } => None,
    })
}

/// The worker loop of one sink: deliver whatever is ready, then sleep until woken, until the next delivery is
/// ready, or until shutdown.
pub async fn run_worker(
    store: Arc<Store>,
    sink: Arc<dyn Sink>,
    wake: Arc<Notify>,
    policy: DeliveryPolicy,
    mut shutdown: watch::Receiver<bool>,
) {
    let clock = policy.clock.clone();
    let mut worker = Worker::new(store, sink.clone(), policy);
    loop {
        if *shutdown.borrow() {
            return;
        }
        // A send in flight is abandoned at shutdown (its rows stay pending: at-least-once), so that a hanging
        // target cannot stretch the final drain beyond its deadline.
        let round = tokio::select! {
            r = worker.round(false) => r,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        let sleep_ms = match round {
            Ok(Round::Sent { .. }) => continue,
            Ok(Round::Idle { next_at_ms }) => {
                next_at_ms.map_or(60_000, |t| (t - clock.now_ms()).clamp(10, 60_000))
            }
            Err(e) => {
                tracing::error!(sink = sink.name(), "outbox: {e:#}");
                5_000
            }
        };
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(sleep_ms as u64)) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

/// Deliver everything queued to every sink, in parallel, waiting for retries, until nothing is pending or
/// `deadline` passes (`--once`, shutdown). Open group windows are flushed: nothing more will join them.
/// Returns the number of deliveries still pending per sink.
pub async fn drain(
    store: &Arc<Store>,
    sinks: &[Arc<dyn Sink>],
    policy: &DeliveryPolicy,
    deadline: Duration,
) -> Vec<(String, u64)> {
    let until = tokio::time::Instant::now() + deadline;
    let one = |sink: Arc<dyn Sink>| {
        let mut worker = Worker::new(store.clone(), sink.clone(), policy.clone());
        let clock = policy.clock.clone();
        async move {
            let work = async {
                loop {
                    match worker.round(true).await {
                        Ok(Round::Sent { .. }) => {}
                        Ok(Round::Idle { next_at_ms: None }) => return,
                        Ok(Round::Idle {
                            next_at_ms: Some(t),
                        }) => {
                            let ms = (t - clock.now_ms()).clamp(10, 60_000) as u64;
                            tokio::time::sleep(Duration::from_millis(ms)).await;
                        }
                        Err(e) => {
                            tracing::error!(sink = sink.name(), "outbox: {e:#}");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                }
            };
            let _ = tokio::time::timeout_at(until, work).await;
        }
    };
    futures::future::join_all(sinks.iter().cloned().map(one)).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters_down_to_half() {
        let p = DeliveryPolicy {
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(60),
            ..Default::default()
        };
        assert_eq!(p.backoff(1, 0.999_999).as_secs(), 1); // 2 s * (0.5 + ~0.5) just under 2
        assert_eq!(p.backoff(1, 0.0), Duration::from_secs(1));
        assert_eq!(p.backoff(2, 0.0), Duration::from_secs(2));
        assert_eq!(p.backoff(3, 0.0), Duration::from_secs(4));
        assert_eq!(p.backoff(4, 1.0), Duration::from_secs(16));
        assert_eq!(p.backoff(6, 1.0), Duration::from_secs(60)); // 64 s capped
        assert_eq!(p.backoff(40, 0.0), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn the_tokio_clock_follows_paused_time_from_a_whole_second() {
        let c = Clock::tokio();
        let t0 = c.now_ms();
        assert_eq!(t0 % 1000, 0);
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(c.now_ms() - t0, 2500);
        assert_eq!(c.now_secs(), t0 / 1000 + 2);
    }
}
