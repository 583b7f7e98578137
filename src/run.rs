//! `ctwatch run`: follow every usable log of the log list with one supervised tailer each, deliver events with
//! one worker per sink, keep the set of logs current when the list changes, and stop cleanly on Ctrl-C / SIGTERM
//! (or, with `--once`, when every log has caught up).
//!
//! ```text
//!  log list ──(refresh)──> LogSet: start new logs, stop removed ones
//!  lease::LogOwnership ──owned logs──> LogSet: a log runs only while owned (always, on SQLite); a log no longer
//!                            │          owned stops after its batch commits, then `stopped` hands it over
//!                            │ one task per log: supervise(Tailer) ── restarts after errors/panics
//!  watchlist ──(reload)──> watch channel read by every tailer at each cycle
//!  tailers ──commit + wake──> sink workers ──> stdout / webhooks ...
//!  tailers ──commit queues matched names──> probe scheduler ──results + events──> sink workers
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinSet;

use crate::ct::loglist::{LogInfo, LogKind, LogList, LogState};
use crate::ctlog::CtLog;
use crate::ctlog::http::{Fetcher, RetryPolicy};
use crate::ctlog::rfc6962::Rfc6962Log;
use crate::ctlog::static_ct::StaticCtLog;
use crate::event::LogRef;
use crate::lease::{LogOwnership, SoleOwner};
use crate::logsource::LogListSource;
use crate::notify::{self, DeliveryPolicy, Sink, Wake};
use crate::probe::scheduler::{self, ScheduleConfig};
use crate::stats::{LogEntryStats, LogStats, Registry};
use crate::store::{LogMeta, SinkRoute, Store};
use crate::stream::LogStream;
use crate::tailer::{TailConfig, TailError, TailOutcome, Tailer};
use crate::watchlist::{Watchlist, WatchlistHandle};

/// Which logs of the list to follow: a log is kept if its URL or operator contains one of `include` (or
/// `include` is empty) and none of `exclude`.
#[derive(Clone, Debug, Default)]
pub struct LogFilter {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

impl LogFilter {
    pub fn accepts(&self, log: &LogInfo) -> bool {
        let hit = |s: &String| log.url().contains(s.as_str()) || log.operator.contains(s.as_str());
        (self.include.is_empty() || self.include.iter().any(hit)) && !self.exclude.iter().any(hit)
    }
}

/// Everything `run` needs, already validated.
pub struct RunOptions {
    pub log_list: LogList,
    /// Re-read the list from here every `log_list_refresh` (daemon mode only).
    pub log_list_source: Option<LogListSource>,
    pub log_list_refresh: Duration,
    pub watchlist: Watchlist,
    /// Re-read the watchlist when these files change (or on SIGHUP).
    pub watchlist_path: Option<PathBuf>,
    pub store: Arc<Store>,
    pub tail: TailConfig,
    pub retry: RetryPolicy,
    /// Entries per `get-entries` request (RFC 6962 logs).
    pub page_size: u64,
    pub sinks: Vec<(Arc<dyn Sink>, SinkRoute)>,
    pub delivery: DeliveryPolicy,
    /// `--once`: how long to keep delivering queued events before exiting.
    pub drain_timeout: Duration,
    pub filter: LogFilter,
    /// The expiry probe of matched hosts: a task in daemon mode; with `once`, one pass after catching up.
    /// `None`: no probing.
    pub probe: Option<ScheduleConfig>,
    /// Live state shared with the HTTP API / health checks.
    pub registry: Arc<Registry>,
    /// HTTP API, health alerts, progress display.
    pub service: ServiceOptions,
}

/// The service side of a run: what lets people see that it works and hear when it does not.
#[derive(Clone, Default)]
pub struct ServiceOptions {
    /// Serve the HTTP API (`--listen`); off when None.
    pub api: Option<crate::api::ApiConfig>,
    /// How `POST /api/v1/bulk-check` probes.
    pub probe: crate::probe::ProbeOptions,
    /// Health alerts through the sinks, and the `runs` record that detects crashes.
    pub health: crate::health::HealthConfig,
    pub progress: crate::progress::ProgressMode,
    /// "Now" for health decisions; the wall clock when None (tests swap in `health::tokio_clock`).
    pub clock: Option<crate::health::Clock>,
    /// CAA checks of newly matched certificates (`--caa`): a task in daemon mode; with `once`, one round after
    /// catching up.
    pub caa: Option<crate::caa::checker::CaaConfig>,
    /// The NATS JetStream stream of verified certificates (`[stream]`, `--nats`).
    pub stream: Option<crate::stream::StreamConfig>,
    /// Which logs this instance may tail: leases when several instances share a PostgreSQL database
    /// ([`crate::lease::LeaseOwner`]); `None`: every log (a single instance, [`crate::lease::SoleOwner`]).
    pub ownership: Option<Arc<dyn crate::lease::LogOwnership>>,
}

/// What a `run` did, for the exit code and the final message.
#[derive(Debug, Default)]
pub struct RunSummary {
    pub logs: usize,
    pub failed_logs: Vec<(String, String)>,
    pub undelivered: Vec<(String, u64)>,
    pub stats: BTreeMap<String, Arc<LogStats>>,
    /// With `once`: the probe pass failed.
    pub probe_error: Option<String>,
    /// Sinks paused because their target is gone (they get nothing until `ctwatch outbox retry`).
    pub paused_sinks: Vec<crate::store::SinkPause>,
    /// With `once`: the `--once-timeout-secs` deadline stopped the run; what each log still had to do.
    pub deadline: Option<Vec<crate::deadline::LogLeft>>,
}

impl RunSummary {
    pub fn ok(&self) -> bool {
        self.failed_logs.is_empty()
            && self.undelivered.iter().all(|(_, n)| *n == 0)
            && self.probe_error.is_none()
            && self.deadline.is_none()
    }
}

type TaskResult = ([u8; 32], String, Result<TailOutcome, TailError>);

/// The running tailers, keyed by log ID.
struct LogSet {
    opts_tail: TailConfig,
    store: Arc<Store>,
    client: reqwest::Client,
    retry: RetryPolicy,
    page_size: u64,
    watchlist: watch::Receiver<Arc<Watchlist>>,
    wake: Wake,
    shutdown: watch::Receiver<bool>,
    running: HashMap<[u8; 32], (String, watch::Sender<bool>)>,
    /// Tailers asked to stop because their log is no longer owned, until they end (never two tailers per log).
    stopping: HashMap<[u8; 32], String>,
    tasks: JoinSet<TaskResult>,
    ownership: Arc<dyn LogOwnership>,
    /// The logs this instance owns now (published by `ownership`).
    owned: watch::Receiver<crate::lease::Owned>,
    /// The logs of the current list that pass the filter.
    wanted: HashMap<[u8; 32], LogInfo>,
    stats: BTreeMap<String, Arc<LogStats>>,
    registry: Arc<Registry>,
    /// With a NATS stream: what it publishes, and the queue to the publisher.
    stream: Option<(
        crate::stream::What,
        mpsc::Sender<crate::stream::StreamBatch>,
    )>,
}

impl LogSet {
    /// Follow the logs of `list` that pass `filter` (those this instance owns: see [`Self::apply`]).
    fn sync(&mut self, list: &LogList, filter: &LogFilter) -> Result<()> {
        self.wanted = list
            .logs
            .iter()
            .filter(|l| l.state.is_monitorable() && filter.accepts(l))
            .map(|l| (l.log_id, l.clone()))
            .collect();
        self.ownership
            .set_wanted(self.wanted.keys().copied().collect());
        self.apply()
    }

    /// Start the wanted logs this instance owns that are not running; stop running logs no longer wanted or
    /// owned (gracefully: the tailer commits its batch, then ends; [`Self::ended`] hands the log over).
    fn apply(&mut self) -> Result<()> {
        let owned = self.owned.borrow_and_update().clone();
        let go: Vec<[u8; 32]> = self
            .wanted
            .keys()
            .filter(|id| owned.contains(*id))
            .copied()
            .collect();
        let registry = self.registry.clone();
        let stopping = &mut self.stopping;
        self.running.retain(|id, (url, stop)| {
            let keep = go.contains(id);
            if !keep {
                registry.remove_log(url);
                tracing::info!(log_id = %hex::encode(id), log = %url, "log left the list, is no longer usable or \
                    no longer owned by this instance: stopping it after its current batch");
                let _ = stop.send(true);
                stopping.insert(*id, url.clone());
            }
            keep
        });
        for id in go {
            if !self.running.contains_key(&id) && !self.stopping.contains_key(&id) {
                let info = self.wanted[&id].clone();
                self.start(&info)?;
            }
        }
        Ok(())
    }

    /// A tailer task ended: a log being stopped is handed over (and restarted if owned again meanwhile).
    fn ended(&mut self, id: [u8; 32]) -> Result<()> {
        self.ownership.stopped(id);
        if self.stopping.remove(&id).is_some() {
            return self.apply();
        }
        Ok(())
    }

    fn start(&mut self, info: &LogInfo) -> Result<()> {
        let meta = LogMeta {
            log_id: info.log_id,
            url: info.url().to_string(),
            kind: info.kind_name(),
            description: info.description.clone(),
            operator: info.operator.clone(),
            state: info.state.name().to_string(),
        };
        self.store.upsert_log(&meta)?;
        let (stop_tx, stop_rx) = watch::channel(false);
        // The tailer stops on either the global shutdown or this log's own stop.
        let mut global = self.shutdown.clone();
        let forward = stop_tx.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = global.wait_for(|s| *s) => { let _ = forward.send(true); }
                // The tailer ended on its own (or was stopped alone): nothing left to forward to.
                _ = forward.closed() => {}
            }
        });
        let stats = Arc::new(LogStats::default());
        self.stats.insert(info.url().to_string(), stats.clone());
        self.registry.add_log(LogEntryStats {
            url: info.url().to_string(),
            kind: info.kind_name(),
            operator: info.operator.clone(),
            description: info.description.clone(),
            stats: stats.clone(),
        });
        let final_head = match &info.state {
            LogState::Readonly {
                final_tree_size,
                final_root,
            } => Some((*final_tree_size, *final_root)),
            _ => None,
        };
        let fetcher = Fetcher::new(self.client.clone(), self.retry.clone())
            .with_counters(stats.fetch.clone())
            .with_bandwidth(self.opts_tail.bandwidth.clone());
        let url = info.url().to_string();
        let once = self.opts_tail.once;
        match &info.kind {
            LogKind::Rfc6962 { url } => {
                let log = Rfc6962Log::new(url, info.key.clone(), fetcher, self.page_size);
                let t = self.tailer(Arc::new(log), info, stop_rx.clone(), final_head, stats);
                self.tasks
                    .spawn(supervise(info.log_id, url.clone(), t, once, stop_rx));
            }
            LogKind::Tiled {
                submission_url,
                monitoring_url,
            } => {
                let issuers: Arc<dyn crate::ctlog::static_ct::IssuerCache> = self.store.clone();
                let log = StaticCtLog::new(
                    monitoring_url,
                    submission_url,
                    info.key.clone(),
                    fetcher,
                    issuers,
                );
                let t = self.tailer(Arc::new(log), info, stop_rx.clone(), final_head, stats);
                self.tasks
                    .spawn(supervise(info.log_id, url, t, once, stop_rx));
            }
        }
        self.running
            .insert(info.log_id, (info.url().to_string(), stop_tx));
        Ok(())
    }

    fn tailer<L: CtLog>(
        &self,
        log: Arc<L>,
        info: &LogInfo,
        shutdown: watch::Receiver<bool>,
        final_head: Option<(u64, crate::ct::merkle::Hash)>,
        stats: Arc<LogStats>,
    ) -> Tailer<L> {
        let source = crate::certstream::Source {
            name: info.description.clone(),
            url: info.url().to_string(),
            kind: info.kind_name().to_string(),
        };
        Tailer {
            log,
            info: LogRef {
                log_id: info.log_id,
                url: info.url().to_string(),
                description: info.description.clone(),
            },
            store: self.store.clone(),
            watchlist: self.watchlist.clone(),
            config: self.opts_tail.clone(),
            shutdown,
            outbox: self.wake.clone(),
            final_head,
            stats,
            feed: Some(crate::feed::LogFeed {
                feed: self.registry.feed.clone(),
                source: source.clone(),
                log_id: info.log_id,
            }),
            stream: self.stream.as_ref().map(|(what, queue)| LogStream {
                what: *what,
                source,
                log_id: info.log_id,
                queue: queue.clone(),
                stats: self.registry.stream.clone(),
                resumed: Default::default(),
            }),
        }
    }
}

/// Run until shutdown (or until caught up with `once`).
pub async fn run(opts: RunOptions, shutdown: watch::Receiver<bool>) -> Result<RunSummary> {
    let client = crate::ctlog::http::build_client()?;
    let monitorable = opts
        .log_list
        .logs
        .iter()
        .filter(|l| l.state.is_monitorable() && opts.filter.accepts(l))
        .count();
    if monitorable == 0 {
        anyhow::bail!(
            "the log list has no usable log to follow (after the include/exclude filters)"
        );
    }
    // The stream is checked first: a run that cannot publish what it commits says so before tailing anything.
    let mut publisher = match &opts.service.stream {
        Some(cfg) => Some(start_publisher(cfg, &opts).await?),
        None => None,
    };
    let watch_items = opts.watchlist.len();
    if let Some(path) = &opts.watchlist_path {
        let _ = opts.registry.watchlist_path.set(path.clone());
    }
    let watchlist = WatchlistHandle::new(opts.watchlist);
    if let (Some(path), false) = (&opts.watchlist_path, opts.tail.once) {
        watchlist.spawn_reloader(path.clone(), Duration::from_secs(5), shutdown.clone());
    }

    opts.store
        .set_sink_routes(opts.sinks.iter().map(|(_, r)| r.clone()).collect());
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
    let caa = opts.service.caa.clone();
    let svc = opts.service;
    let ownership: Arc<dyn LogOwnership> = svc
        .ownership
        .clone()
        .unwrap_or_else(|| Arc::new(SoleOwner::default()));
    let _ = opts.registry.lease.set(ownership.stats());
    let clock = svc
        .clock
        .clone()
        .unwrap_or_else(crate::health::system_clock);
    let run_id = crate::health::record_start(&opts.store, clock(), svc.health.alerts).await?;
    wake.wake(); // deliver what a previous run (or a crash report) left queued
    let started = start_service(
        &svc,
        &opts.store,
        &opts.registry,
        &wake,
        run_id,
        &clock,
        &workers_stop,
    );
    let mut aux = match started.await {
        Ok(aux) => aux,
        Err(e) => {
            let _ = opts.store.end_run(run_id, clock());
            return Err(e);
        }
    };
    let probe_task = opts.probe.clone().filter(|_| !opts.tail.once).map(|cfg| {
        let cfg = cfg.with_store(&opts.store);
        tokio::spawn(scheduler::run_scheduler(
            opts.store.clone(),
            cfg,
            wake.clone(),
            shutdown.clone(),
        ))
    });

    // The tailers stop on the shutdown signal, or with --once at the deadline.
    let tail_stop = crate::deadline::TailStop::spawn(
        shutdown.clone(),
        opts.tail.once.then_some(opts.tail.once_timeout),
    );
    let caa_task = caa.clone().filter(|_| !opts.tail.once).map(|cfg| {
        tokio::spawn(crate::caa::checker::run_checker(
            opts.store.clone(),
            cfg,
            wake.clone(),
            shutdown.clone(),
        ))
    });

    let mut set = LogSet {
        opts_tail: opts.tail.clone(),
        store: opts.store.clone(),
        client,
        retry: opts.retry.clone(),
        page_size: opts.page_size,
        watchlist: watchlist.subscribe(),
        wake,
        shutdown: tail_stop.receiver(),
        running: HashMap::new(),
        stopping: HashMap::new(),
        tasks: JoinSet::new(),
        owned: ownership.owned(),
        ownership: ownership.clone(),
        wanted: HashMap::new(),
        stats: BTreeMap::new(),
        registry: opts.registry.clone(),
        stream: publisher.as_ref().map(|p| (p.what, p.queue.clone())),
    };
    set.sync(&opts.log_list, &opts.filter)?;
    if !ownership.exclusive() {
        // The first lease round (set off by the wanted logs) says which logs are this instance's.
        let _ = tokio::time::timeout(FIRST_LEASE_ROUND, set.owned.changed()).await;
        set.apply()?;
    }
    tracing::info!(
        logs = set.running.len(),
        db = %opts.store.describe(),
        watch_items,
        sinks = opts.sinks.len(),
        "ctwatch started"
    );

    let mut summary = RunSummary {
        logs: set.running.len(),
        ..Default::default()
    };
    // The CLI enforces a sensible minimum; tests use short periods.
    let mut refresh = tokio::time::interval(opts.log_list_refresh.max(Duration::from_millis(10)));
    refresh.tick().await;
    let mut shutdown_rx = tail_stop.receiver();
    // Tailers still running this long after the stop signal are aborted (stuck on a hostile log).
    let mut abort_at: Option<tokio::time::Instant> = None;
    loop {
        // Read before select!: a watch::Ref held inside it would make this future !Send (unspawnable).
        let stopping = *shutdown_rx.borrow();
        if stopping && abort_at.is_none() {
            abort_at = Some(tokio::time::Instant::now() + crate::deadline::TAIL_GRACE);
        }
        let abort_at_or_never = abort_at.unwrap_or_else(far_future);
        // With leases, no tailer running only means that other instances hold the logs now.
        if set.tasks.is_empty() && (ownership.exclusive() || opts.tail.once || stopping) {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(abort_at_or_never), if stopping => {
                tracing::warn!("tailers did not stop within {:?}: aborting them", crate::deadline::TAIL_GRACE);
                set.tasks.abort_all();
                abort_at = Some(far_future());
            }
            done = set.tasks.join_next(), if !set.tasks.is_empty() => match done {
                None => {}
                Some(Err(e)) if e.is_cancelled() => {}
                Some(Ok((id, url, Err(e)))) => {
                    // Reported by the caller at the end (`run_report`): here only with -v.
                    tracing::info!(log = %url, "gave up: {e}");
                    summary.failed_logs.push((url, e.to_string()));
                    if let Err(e) = set.ended(id) {
                        tracing::error!("restarting a log owned again: {e:#}");
                    }
                }
                Some(Ok((id, _, Ok(_)))) => {
                    if let Err(e) = set.ended(id) {
                        tracing::error!("restarting a log owned again: {e:#}");
                    }
                }
                Some(Err(e)) => summary.failed_logs.push(("?".into(), format!("tailer task failed: {e}"))),
            },
            changed = set.owned.changed(), if !stopping && !ownership.exclusive() => {
                if changed.is_ok()
                    && let Err(e) = set.apply()
                {
                    tracing::error!("following the logs this instance now owns: {e:#}");
                }
            }
            _ = refresh.tick(), if !opts.tail.once && !stopping && opts.log_list_source.is_some() => {
                if let Some(src) = &opts.log_list_source {
                    match src.load().await {
                        Ok((list, origin)) => {
                            tracing::debug!(?origin, version = %list.version, "log list refreshed");
                            if let Err(e) = set.sync(&list, &opts.filter) {
                                tracing::error!("applying the refreshed log list: {e:#}");
                            }
                        }
                        Err(e) => tracing::warn!("refreshing the log list: {e:#}"),
                    }
                }
            }
            _ = async { let _ = shutdown_rx.wait_for(|s| *s).await; }, if !stopping => {
                // Tailers see the same signal and finish their batch; keep joining them.
            }
        }
    }
    // Every tailer ended: what this instance still holds goes back at once.
    ownership.finish().await;
    summary.stats = std::mem::take(&mut set.stats);
    if let Some(p) = publisher.take() {
        // The tailers are done: the publisher finishes what they queued, within its drain time.
        set.stream = None;
        p.finish().await;
    }
    if tail_stop.deadline_hit() {
        summary.deadline = Some(logs_left(&opts.store, &set).await);
    }
    if let Some(task) = probe_task {
        // It stops at the shutdown signal; if the tailers ended without one, stop it here.
        if !*shutdown.borrow() {
            task.abort();
        }
        let _ = task.await;
    }
    if let (Some(cfg), true, None) = (&opts.probe, opts.tail.once, &summary.deadline) {
        summary.probe_error = probe_once(&opts.store, cfg, shutdown.clone()).await;
    }
    if let Some(task) = caa_task {
        if !*shutdown.borrow() {
            task.abort();
        }
        let _ = task.await;
    }
    if let (Some(cfg), true) = (&caa, opts.tail.once) {
        match crate::caa::checker::check_round(&opts.store, cfg, crate::store::unix_now()).await {
            Ok(r) => tracing::info!(
                checked = r.checked,
                mismatches = r.mismatches,
                "CAA checks done"
            ),
            Err(e) => tracing::error!("CAA checks failed: {e:#}"),
        }
    }

    let _ = stop_workers.send(true);
    while workers.join_next().await.is_some() {}
    // The API finishes the requests in hand (a bulk check may take a while); do not wait forever.
    if tokio::time::timeout(Duration::from_secs(10), async {
        while aux.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        aux.abort_all();
    }
    let sinks: Vec<Arc<dyn Sink>> = opts.sinks.iter().map(|(s, _)| s.clone()).collect();
    // --once delivers everything it queued (bounded); on shutdown give sinks a moment, the rest stays queued.
    let deadline = if opts.tail.once {
        opts.drain_timeout
    } else {
        Duration::from_secs(5)
    };
    summary.undelivered = notify::drain(&opts.store, &sinks, &opts.delivery, deadline).await;
    let st = opts.store.clone();
    summary.paused_sinks = tokio::task::spawn_blocking(move || st.sink_pauses())
        .await??
        .into_iter()
        .filter(|p| sinks.iter().any(|s| s.name() == p.sink))
        .collect();
    let store = opts.store.clone();
    let now = clock();
    tokio::task::spawn_blocking(move || store.end_run(run_id, now)).await??;
    Ok(summary)
}

/// The running NATS publisher: the queue the tailers fill, and how to stop it.
struct RunningPublisher {
    what: crate::stream::What,
    queue: mpsc::Sender<crate::stream::StreamBatch>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningPublisher {
    async fn finish(self) {
        drop(self.queue);
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Connect to NATS, check or create the stream, and start the publisher task.
async fn start_publisher(
    cfg: &crate::stream::StreamConfig,
    opts: &RunOptions,
) -> Result<RunningPublisher> {
    let (publisher, note) = crate::stream::Publisher::connect(
        cfg.clone(),
        opts.store.clone(),
        opts.registry.stream.clone(),
    )
    .await?;
    tracing::info!(subjects = %format!("{}.>", cfg.subject_prefix), what = ?cfg.what, "{note}");
    let (queue, rx) = mpsc::channel(cfg.queue_batches);
    let (stop, stop_rx) = watch::channel(false);
    // --once waits for its acknowledgements as long as for its notifications; a stopping daemon briefly.
    let drain = if opts.tail.once {
        opts.drain_timeout
    } else {
        Duration::from_secs(10)
    };
    let task = tokio::spawn(publisher.run(rx, stop_rx, drain));
    Ok(RunningPublisher {
        what: cfg.what,
        queue,
        stop,
        task,
    })
}
/// How long a run on a shared database waits for its first lease round before starting tailers.
const FIRST_LEASE_ROUND: Duration = Duration::from_secs(30);

fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(86_400 * 365)
}

/// Where each followed log stands (verified position and last signed head), from the store.
async fn logs_left(store: &Arc<Store>, set: &LogSet) -> Vec<crate::deadline::LogLeft> {
    let followed: Vec<String> = set.running.values().map(|(url, _)| url.clone()).collect();
    let st = store.clone();
    let rows = tokio::task::spawn_blocking(move || st.list_logs())
        .await
        .ok()
        .and_then(|r| r.ok())
        .unwrap_or_default();
    rows.into_iter()
        .filter(|r| followed.contains(&r.url))
        .map(|r| crate::deadline::LogLeft {
            url: r.url,
            verified: r.verified_size,
            head: r.head_size,
        })
        .collect()
}

/// Start the HTTP API (when configured), the health monitor and the progress display; they stop on `stop`.
async fn start_service(
    svc: &ServiceOptions,
    store: &Arc<Store>,
    registry: &Arc<Registry>,
    wake: &Wake,
    run_id: i64,
    clock: &crate::health::Clock,
    stop: &watch::Receiver<bool>,
) -> Result<JoinSet<()>> {
    let mut aux = JoinSet::new();
    if let Some(api) = &svc.api {
        let (addr, server) = crate::api::serve_with_clock(
            api.clone(),
            store.clone(),
            registry.clone(),
            svc.probe.clone(),
            clock.clone(),
            stop.clone(),
        )
        .await?;
        let _ = registry.api_addr.set(addr);
        aux.spawn(async move {
            let _ = server.await;
        });
    }
    let monitor = crate::health::Monitor {
        store: store.clone(),
        registry: registry.clone(),
        config: svc.health.clone(),
        clock: clock.clone(),
        wake: wake.clone(),
        run_id: Some(run_id),
    };
    aux.spawn(monitor.run(stop.clone()));
    aux.spawn(crate::progress::run(
        registry.clone(),
        svc.progress,
        stop.clone(),
    ));
    Ok(aux)
}

/// `--once --probe-once`: probe what is due (including the names this run queued) before the final drain.
async fn probe_once(
    store: &Arc<Store>,
    cfg: &ScheduleConfig,
    shutdown: watch::Receiver<bool>,
) -> Option<String> {
    let cfg = cfg.clone().with_store(store);
    match scheduler::probe_due_once(store, &cfg, Duration::from_secs(120), shutdown).await {
        Ok(r) => {
            tracing::info!(
                probed = r.probed,
                events = r.events,
                left = r.deferred,
                "probe pass done"
            );
            None
        }
        Err(e) => {
            tracing::error!("probe pass failed: {e:#}");
            Some(format!("{e:#}"))
        }
    }
}

/// Keep one log's tailer running: in daemon mode an error or a panic restarts it after a pause (all its state is
/// in the store, so a restart resumes where the last commit left off); with `once` its result is final.
async fn supervise<L: CtLog>(
    log_id: [u8; 32],
    url: String,
    tailer: Tailer<L>,
    once: bool,
    mut shutdown: watch::Receiver<bool>,
) -> TaskResult {
    loop {
        let task = tokio::spawn(tailer.clone().run());
        // Aborting this supervisor (the --once grace period ran out) aborts the tailer with it.
        let _abort = AbortOnDrop(task.abort_handle());
        let result = match task.await {
            Ok(r) => r,
            Err(join) => Err(TailError::Internal(format!("tailer task panicked: {join}"))),
        };
        match result {
            Ok(outcome) => return (log_id, url, Ok(outcome)),
            Err(e) if once => return (log_id, url, Err(e)),
            Err(e) => tracing::error!(log = %url, "tailer stopped: {e}; restarting in 60 s"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            _ = shutdown.wait_for(|s| *s) => return (log_id, url, Ok(TailOutcome::Shutdown)),
        }
    }
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
