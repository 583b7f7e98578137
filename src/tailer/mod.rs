//! One task per log: poll the signed head, catch up to it, repeat.
//!
//! ```text
//!  latest_head() --verify sig, monotonic--> head   (polled again every poll interval while the catch-up runs:
//!       |                                           a growing log's newer heads extend it)
//!  ranges [verified, head) --fetch_range x adaptive window (finish in any order, put back in order)--> RawEntry
//!       |                                                      (spawn_blocking)
//!  process: leaf hash, decode cert, match watchlist --> Processed ranges
//!       |
//!  accumulate to a signed head's size, or batch_entries --> push hashes into the collapsed tree
//!       |                                                   (one batch at a time, while the downloads go on)
//!  verify: root == head.root, or consistency proof (tree.size -> head.size) --mismatch--> loud error, no commit
//!       |
//!  Store::commit_batch (entries + matches + events + new position, ONE transaction) --> wake the outbox
//!       |                                                                  --> live feed, NATS stream queue
//! ```
//!
//! With a NATS stream, the first cycle re-reads `[published, committed)` (committed by a previous process but not
//! acknowledged by JetStream), verifies it again and queues it for the stream only ([`republish`]).

mod pipeline;
mod republish;
mod start;

pub use crate::ctlog::budget::InflightBudget;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::ctlog::{CtLog, LogError, TreeHead};
use crate::event::LogRef;
use crate::stats::LogStats;
use crate::store::{LogPosition, Store, StoreError};
use crate::watchlist::Watchlist;

/// Where a log we never followed before starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartAt {
    /// At its current head: only new entries (default).
    End,
    /// From entry 0: the whole history.
    Beginning,
    /// From this entry index.
    Index(u64),
}

impl std::str::FromStr for StartAt {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "end" => Ok(StartAt::End),
            "beginning" | "start" | "0" => Ok(StartAt::Beginning),
            n => n
                .parse()
                .map(StartAt::Index)
                .map_err(|_| format!("'{n}': expected end, beginning or an index")),
        }
    }
}

/// How often a log's head is polled by default: often enough that a live log's lag stays well under 30 s (a
/// `get-sth` or checkpoint is a few hundred bytes).
pub const DEFAULT_POLL_INTERVAL_SECS: u64 = 5;

/// Default bound of the adaptive per-log window of requests in flight.
pub const DEFAULT_PARALLEL_REQUESTS: usize = 32;

/// Tailing knobs (see the config documentation for defaults and units).
#[derive(Clone, Debug)]
pub struct TailConfig {
    pub poll_interval: Duration,
    /// Most `fetch_range` calls in flight per log (the adaptive window grows up to this).
    pub parallel_requests: usize,
    /// Entries downloaded but not yet processed, across all logs (shared by every tailer).
    pub inflight: InflightBudget,
    /// Download bandwidth cap across all logs (`--max-bandwidth`), shared by every fetcher.
    pub bandwidth: Option<Arc<crate::ctlog::http::Bandwidth>>,
    /// Entries per committed batch (one transaction, one consistency proof).
    pub batch_entries: u64,
    pub start_at: StartAt,
    /// Catch up to the head seen at start, then return.
    pub once: bool,
    /// Store every decoded certificate (a full local index), not only matching ones.
    pub store_all: bool,
    /// Give up a `--once` run on this log after this many failed cycles in a row.
    pub once_max_failures: u32,
    /// `--once`: the whole run stops at this deadline (commits what is verified, reports what is left).
    pub once_timeout: Duration,
    /// Delay after a failed cycle (doubles per failure, capped at `max_error_backoff`).
    pub error_backoff: Duration,
    pub max_error_backoff: Duration,
}

impl Default for TailConfig {
    fn default() -> Self {
        TailConfig {
            poll_interval: Duration::from_secs(DEFAULT_POLL_INTERVAL_SECS),
            parallel_requests: DEFAULT_PARALLEL_REQUESTS,
            inflight: InflightBudget::default(),
            bandwidth: None,
            batch_entries: 4096,
            start_at: StartAt::End,
            once: false,
            store_all: false,
            once_max_failures: 3,
            once_timeout: Duration::from_secs(600),
            error_backoff: Duration::from_secs(5),
            max_error_backoff: Duration::from_secs(600),
        }
    }
}

/// Errors that end a tailing cycle.
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("internal: {0}")]
    Internal(String),
    /// The requested start (or rewind) cannot be honoured; retrying would not help.
    #[error("{0}")]
    BadStart(String),
}

impl TailError {
    fn kind(&self) -> &'static str {
        match self {
            TailError::Log(e) => e.kind(),
            TailError::Store(_) => "store",
            TailError::Internal(_) => "internal",
            TailError::BadStart(_) => "bad_start",
        }
    }
}

/// How a tailer ended.
#[derive(Debug, PartialEq, Eq)]
pub enum TailOutcome {
    /// `--once`: caught up to the head seen at start.
    CaughtUp,
    /// A read-only log is fully verified up to its final tree head.
    Complete,
    /// Asked to stop.
    Shutdown,
}

/// Everything one log's task needs. Cloning is cheap (shared handles), which is how the supervisor restarts it.
pub struct Tailer<L: CtLog> {
    pub log: Arc<L>,
    pub info: LogRef,
    pub store: Arc<Store>,
    pub watchlist: watch::Receiver<Arc<Watchlist>>,
    pub config: TailConfig,
    pub shutdown: watch::Receiver<bool>,
    /// Woken after every commit that queued events.
    pub outbox: crate::notify::Wake,
    /// Read-only logs: the final tree head from the log list (size, root).
    pub final_head: Option<(u64, crate::ct::merkle::Hash)>,
    pub stats: Arc<LogStats>,
    /// The verified live feed (`/stream/...`): what each committed batch held, when someone listens.
    pub feed: Option<crate::feed::LogFeed>,
    /// The NATS stream (`[stream]`): what each committed batch held, queued for the publisher.
    pub stream: Option<crate::stream::LogStream>,
}

impl<L: CtLog> Clone for Tailer<L> {
    fn clone(&self) -> Self {
        Tailer {
            log: self.log.clone(),
            info: self.info.clone(),
            store: self.store.clone(),
            watchlist: self.watchlist.clone(),
            config: self.config.clone(),
            shutdown: self.shutdown.clone(),
            outbox: self.outbox.clone(),
            final_head: self.final_head,
            stats: self.stats.clone(),
            feed: self.feed.clone(),
            stream: self.stream.clone(),
        }
    }
}

impl<L: CtLog> Tailer<L> {
    /// Follow the log until shutdown (or until caught up with `once`).
    pub async fn run(mut self) -> Result<TailOutcome, TailError> {
        let mut failures = 0u32;
        loop {
            if *self.shutdown.borrow() {
                return Ok(TailOutcome::Shutdown);
            }
            let started = tokio::time::Instant::now();
            let result = self.cycle().await;
            let delay = match result {
                Ok(outcome @ (TailOutcome::Shutdown | TailOutcome::Complete)) => {
                    return Ok(outcome);
                }
                Ok(TailOutcome::CaughtUp) if self.config.once => {
                    self.stats.clear_failing_verification();
                    return Ok(TailOutcome::CaughtUp);
                }
                Ok(TailOutcome::CaughtUp) => {
                    self.stats.clear_failing_verification();
                    failures = 0;
                    // A steady cadence: the time a slow log took to answer this cycle counts towards the wait, so
                    // its lag stays near one poll interval plus one round trip.
                    self.config.poll_interval.saturating_sub(started.elapsed())
                }
                Err(err @ TailError::BadStart(_)) => return Err(err),
                Err(err) => {
                    failures += 1;
                    self.report_error(&err).await;
                    if self.config.once && failures >= self.config.once_max_failures {
                        return Err(err);
                    }
                    let exp = self
                        .config
                        .error_backoff
                        .saturating_mul(1 << failures.min(10));
                    exp.min(self.config.max_error_backoff)
                }
            };
            if self.sleep_or_shutdown(delay).await {
                return Ok(TailOutcome::Shutdown);
            }
        }
    }

    async fn report_error(&self, err: &TailError) {
        self.stats.record_error(err.kind());
        if crate::health::rules::MISBEHAVIOUR_KINDS.contains(&err.kind()) {
            self.stats.set_failing_verification(err.to_string());
        }
        match err {
            TailError::Log(LogError::RootMismatch { .. } | LogError::Misbehaving { .. }) => {
                tracing::error!(log = %self.info.url, "{err}; nothing from this range is reported, will retry");
            }
            // `run --once` sums failures up at the end (one line when nothing is reachable); details at -v.
            _ if self.config.once => tracing::info!(log = %self.info.url, "{err}"),
            _ => tracing::warn!(log = %self.info.url, "{err}"),
        }
        let store = self.store.clone();
        let (id, msg) = (self.info.log_id, err.to_string());
        let _ = tokio::task::spawn_blocking(move || store.record_error(&id, &msg)).await;
    }

    /// Sleep, returning true if shutdown was requested meanwhile.
    async fn sleep_or_shutdown(&mut self, delay: Duration) -> bool {
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.wait_for(|s| *s) => {}
        }
        *self.shutdown.borrow()
    }

    /// One poll: verified head, then catch up to it.
    async fn cycle(&mut self) -> Result<TailOutcome, TailError> {
        let head = tokio::select! {
            h = self.log.latest_head() => h?,
            _ = self.shutdown.wait_for(|s| *s) => return Ok(TailOutcome::Shutdown),
        };
        let head = self.target_head(head)?;
        let position = self.position(&head).await?;
        check_head(&self.info.url, &position, &head)?;
        self.stats.record_success();
        self.stats.set_verified(position.tree.size());
        self.stats.observe_head(head.tree_size, head.timestamp_ms);
        let store = self.store.clone();
        let id = self.info.log_id;
        blocking(move || store.record_head(&id, &head)).await?;
        if self.republish_unacknowledged(&position.tree, &head).await? == TailOutcome::Shutdown {
            return Ok(TailOutcome::Shutdown);
        }
        let outcome = if position.tree.size() < head.tree_size {
            pipeline::catch_up(self, position.tree, head, pipeline::Mode::Commit).await?
        } else {
            TailOutcome::CaughtUp
        };
        if outcome == TailOutcome::CaughtUp
            && self
                .final_head
                .is_some_and(|(size, _)| size == head.tree_size)
        {
            tracing::info!(log = %self.info.url, size = head.tree_size, "read-only log verified to its final tree head");
            return Ok(TailOutcome::Complete);
        }
        Ok(outcome)
    }

    /// For a read-only log, tail up to its final tree head and check the log still serves that head.
    fn target_head(&self, head: TreeHead) -> Result<TreeHead, TailError> {
        let Some((size, root)) = self.final_head else {
            return Ok(head);
        };
        if head.tree_size < size || (head.tree_size == size && head.root_hash != root) {
            return Err(LogError::Misbehaving {
                log: self.info.url.clone(),
                message: format!(
                    "signed head (size {}) does not match the final tree head of the log list (size {size})",
                    head.tree_size
                ),
            }
            .into());
        }
        if head.tree_size > size {
            // A frozen log that kept growing: follow only what the (signed) log list vouches for.
            tracing::warn!(log = %self.info.url, size, head = head.tree_size, "read-only log grew past its final tree head");
        }
        Ok(TreeHead {
            tree_size: size,
            timestamp_ms: head.timestamp_ms,
            root_hash: root,
        })
    }

    /// The stored position, or a new one according to `start_at`.
    async fn position(&self, head: &TreeHead) -> Result<LogPosition, TailError> {
        let store = self.store.clone();
        let id = self.info.log_id;
        if let Some(pos) = blocking(move || store.log_position(&id)).await? {
            if !self.apply_pending_rewind(head).await? {
                return Ok(pos);
            }
            let store = self.store.clone();
            return blocking(move || store.log_position(&id))
                .await?
                .ok_or_else(|| TailError::Internal("log position vanished after rewind".into()));
        }
        let target = self.start_index(head)?;
        let tree = self.tree_for_start(target, head).await?;
        tracing::info!(log = %self.info.url, start = tree.size(), head = head.tree_size, "new log");
        let store = self.store.clone();
        let head = *head;
        let t = tree.clone();
        blocking(move || store.init_log_position(&id, &t, Some(&head))).await?;
        let store = self.store.clone();
        blocking(move || store.log_position(&id))
            .await?
            .ok_or_else(|| TailError::Internal("log position vanished after init".into()))
    }
}

/// Reject a head that goes back in time or contradicts what we verified.
fn check_head(url: &str, pos: &LogPosition, head: &TreeHead) -> Result<(), LogError> {
    let bad = |message: String| {
        Err(LogError::Misbehaving {
            log: url.to_string(),
            message,
        })
    };
    if head.tree_size < pos.tree.size() {
        return bad(format!(
            "signed head has size {} but we already verified {} entries",
            head.tree_size,
            pos.tree.size()
        ));
    }
    if let Some(v) = pos
        .verified_head
        .as_ref()
        .filter(|v| head.timestamp_ms < v.timestamp_ms)
    {
        return bad(format!(
            "signed head timestamp {} is older than verified {}",
            head.timestamp_ms, v.timestamp_ms
        ));
    }
    if head.tree_size == pos.tree.size() && head.root_hash != pos.tree.root() {
        return bad(format!(
            "signed head of size {} has root {} but the verified tree has root {}",
            head.tree_size,
            hex::encode(head.root_hash),
            hex::encode(pos.tree.root())
        ));
    }
    Ok(())
}

/// Run a blocking store call off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, TailError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| TailError::Internal(e.to_string()))?
        .map_err(TailError::from)
}
