//! `ctwatch run`: load the log list and watchlist, start one supervised tailer per log and one delivery worker per
//! sink, and stop cleanly on Ctrl-C / SIGTERM (or, with `--once`, when every log has caught up).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::ctlog::http::{Fetcher, RetryPolicy};
use crate::ctlog::rfc6962::Rfc6962Log;
use crate::event::LogRef;
use crate::loglist::{LogInfo, LogKind, LogList, LogState};
use crate::notify::{self, DeliveryPolicy, Sink, Wake};
use crate::stats::LogStats;
use crate::store::{LogMeta, SinkRoute, Store};
use crate::tailer::{TailConfig, TailOutcome, Tailer};
use crate::watchlist::Watchlist;

/// Everything `run` needs, already validated.
pub struct RunOptions {
    pub log_list: LogList,
    pub watchlist: Arc<Watchlist>,
    pub watchlist_path: Option<PathBuf>,
    pub store: Arc<Store>,
    pub tail: TailConfig,
    pub retry: RetryPolicy,
    /// Entries per `get-entries` request.
    pub page_size: u64,
    pub sinks: Vec<(Arc<dyn Sink>, SinkRoute)>,
    pub delivery: DeliveryPolicy,
    /// `--once`: how long to keep delivering queued events before exiting.
    pub drain_timeout: Duration,
    /// Only follow logs whose URL contains one of these (empty: all).
    pub include_logs: Vec<String>,
}

/// What a `run` did, for the exit code and the final message.
#[derive(Debug, Default)]
pub struct RunSummary {
    pub logs: usize,
    pub failed_logs: Vec<(String, String)>,
    pub undelivered: Vec<(String, u64)>,
    pub stats: BTreeMap<String, Arc<LogStats>>,
}

impl RunSummary {
    pub fn ok(&self) -> bool {
        self.failed_logs.is_empty() && self.undelivered.iter().all(|(_, n)| *n == 0)
    }
}

/// Run until shutdown (or until caught up with `once`).
pub async fn run(opts: RunOptions, shutdown: watch::Receiver<bool>) -> Result<RunSummary> {
    let client = crate::ctlog::http::build_client().context("building the HTTP client")?;
    let logs: Vec<&LogInfo> = opts
        .log_list
        .logs
        .iter()
        .filter(|l| l.state.is_monitorable())
        .filter(|l| matches!(l.kind, LogKind::Rfc6962 { .. }))
        .filter(|l| {
            opts.include_logs.is_empty()
                || opts
                    .include_logs
                    .iter()
                    .any(|s| l.url().contains(s.as_str()))
        })
        .collect();
    if logs.is_empty() {
        anyhow::bail!(
            "the log list has no usable RFC 6962 log to follow (after --include-log filters)"
        );
    }
    tracing::info!(
        logs = logs.len(),
        db = %opts.store.path().display(),
        watch_items = opts.watchlist.len(),
        "starting"
    );

    opts.store
        .set_sink_routes(opts.sinks.iter().map(|(_, r)| r.clone()).collect());
    let (_wl_tx, wl_rx) = watch::channel(opts.watchlist.clone());
    // Workers stop on their own signal, after the tailers: the final drain must be the only sender by then.
    let (stop_workers, workers_stop) = watch::channel(false);
    let mut workers = JoinSet::new();
    let mut notifies = Vec::new();
    for (sink, _) in &opts.sinks {
        let n = Arc::new(Notify::new());
        notifies.push(n.clone());
        workers.spawn(notify::run_worker(
            opts.store.clone(),
            sink.clone(),
            n,
            opts.delivery.clone(),
            workers_stop.clone(),
        ));
    }
    let wake = Wake::new(notifies);
    wake.wake(); // deliver what a previous run left queued

    let mut summary = RunSummary {
        logs: logs.len(),
        ..Default::default()
    };
    let mut tailers = JoinSet::new();
    for info in logs {
        let stats = Arc::new(LogStats::default());
        summary.stats.insert(info.url().to_string(), stats.clone());
        let meta = LogMeta {
            log_id: info.log_id,
            url: info.url().to_string(),
            kind: "rfc6962",
            description: info.description.clone(),
            operator: info.operator.clone(),
            state: info.state.name().to_string(),
        };
        opts.store
            .upsert_log(&meta)
            .with_context(|| format!("registering log {}", meta.url))?;
        let fetcher = Fetcher::new(client.clone(), opts.retry.clone());
        let log = Arc::new(Rfc6962Log::new(
            info.url(),
            info.key.clone(),
            fetcher,
            opts.page_size,
        ));
        let final_head = match &info.state {
            LogState::Readonly {
                final_tree_size,
                final_root,
            } => Some((*final_tree_size, *final_root)),
            _ => None,
        };
        let tailer = Tailer {
            log,
            info: LogRef {
                log_id: info.log_id,
                url: info.url().to_string(),
                description: info.description.clone(),
            },
            store: opts.store.clone(),
            watchlist: wl_rx.clone(),
            config: opts.tail.clone(),
            shutdown: shutdown.clone(),
            outbox: wake.clone(),
            final_head,
            stats,
        };
        let url = info.url().to_string();
        tailers.spawn(supervise(url, tailer, opts.tail.once, shutdown.clone()));
    }

    while let Some(res) = tailers.join_next().await {
        match res {
            Ok((url, Err(e))) => {
                tracing::error!(log = %url, "gave up: {e}");
                summary.failed_logs.push((url, e.to_string()));
            }
            Ok((_, Ok(_))) => {}
            Err(e) => summary
                .failed_logs
                .push(("?".into(), format!("tailer task failed: {e}"))),
        }
    }

    let _ = stop_workers.send(true);
    while workers.join_next().await.is_some() {}
    let sinks: Vec<Arc<dyn Sink>> = opts.sinks.iter().map(|(s, _)| s.clone()).collect();
    if opts.tail.once {
        summary.undelivered =
            notify::drain(&opts.store, &sinks, &opts.delivery, opts.drain_timeout).await;
    } else {
        // Shutdown: give sinks a moment to send what is already due; the rest stays queued for the next run.
        summary.undelivered =
            notify::drain(&opts.store, &sinks, &opts.delivery, Duration::from_secs(5)).await;
    }
    Ok(summary)
}

/// Keep one log's tailer running: in daemon mode an error or a panic restarts it after a pause (all its state is
/// in the store, so a restart resumes where the last commit left off); with `once` its result is final.
async fn supervise<L: crate::ctlog::CtLog>(
    url: String,
    tailer: Tailer<L>,
    once: bool,
    mut shutdown: watch::Receiver<bool>,
) -> (String, Result<TailOutcome, crate::tailer::TailError>) {
    loop {
        let result = match tokio::spawn(tailer.clone().run()).await {
            Ok(r) => r,
            Err(join) => Err(crate::tailer::TailError::Internal(format!(
                "tailer task panicked: {join}"
            ))),
        };
        match result {
            Ok(outcome) => return (url, Ok(outcome)),
            Err(e) if once => return (url, Err(e)),
            Err(e) => tracing::error!(log = %url, "tailer stopped: {e}; restarting in 60 s"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            _ = shutdown.wait_for(|s| *s) => return (url, Ok(TailOutcome::Shutdown)),
        }
    }
}
