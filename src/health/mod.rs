//! Health: is ctwatch working, and telling people when it is not. A monitor that fails silently is worse than
//! none, so the failures of the monitor itself go through the same notification sinks as certificate events.
//!
//! ```text
//!  Registry (live per-log stats) ─┐
//!  store: failing sinks ──────────┼─> rules::assess ──> /health (200 / 503 + reasons)
//!                                 └─> rules::AlertBook::step (every check_interval_secs)
//!                                        └─> `health` events ──queue_event──> outbox ──> sinks
//!  runs table: a row per process; a `running` row of a dead process at start = restart after a crash
//! ```

pub mod malformed;
pub mod rules;

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;

use crate::event::{Event, PAYLOAD_VERSION, rfc3339};
use crate::notify::Wake;
use crate::stats::Registry;
use crate::store::{CrashedRun, Store};
use rules::{Alert, AlertBook, AlertState, LogSample, MISBEHAVIOUR_KINDS, Problem};

/// The thresholds of `GET /health`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct HealthThresholds {
    /// A log without a successful exchange for longer than this is unhealthy. Seconds, default 900.
    pub log_silence_secs: u64,
    /// A sink whose deliveries fail for longer than this is unhealthy. Seconds, default 3600.
    pub sink_failing_secs: u64,
}

impl Default for HealthThresholds {
    fn default() -> Self {
        HealthThresholds {
            log_silence_secs: 900,
            sink_failing_secs: 3600,
        }
    }
}

/// Health alerts pushed through the notification sinks (`[health]` in the config file).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// Queue `health` events when something breaks and when it recovers. Default true.
    pub alerts: bool,
    /// Seconds between two checks. Default 60, min 1.
    pub check_interval_secs: u64,
    /// A log not contacted for longer than this raises `log_silent`. Seconds, default 900.
    pub log_silence_secs: u64,
    /// A sink failing for longer than this raises `sink_failing`. Seconds, default 3600.
    pub sink_failing_secs: u64,
    /// A backlog that grew over this many consecutive checks raises `backlog_growing`. Default 10.
    pub backlog_growth_checks: u32,
    /// Send an "alive" heartbeat every this many hours (24: daily); 0 turns it off. Default 0.
    pub heartbeat_hours: u64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        let t = HealthThresholds::default();
        HealthConfig {
            alerts: true,
            check_interval_secs: 60,
            log_silence_secs: t.log_silence_secs,
            sink_failing_secs: t.sink_failing_secs,
            backlog_growth_checks: 10,
            heartbeat_hours: 0,
        }
    }
}

impl HealthConfig {
    pub fn thresholds(&self) -> HealthThresholds {
        HealthThresholds {
            log_silence_secs: self.log_silence_secs,
            sink_failing_secs: self.sink_failing_secs,
        }
    }
}

/// Unix seconds "now". Swappable so that tests can drive the monitor with tokio's paused clock.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The wall clock.
pub fn system_clock() -> Clock {
    Arc::new(crate::store::unix_now)
}

/// Wall-clock time at creation plus the time elapsed on tokio's clock: follows `tokio::time::pause/advance`.
pub fn tokio_clock() -> Clock {
    let base = crate::store::unix_now();
    let start = tokio::time::Instant::now();
    Arc::new(move || base + start.elapsed().as_secs() as i64)
}

/// The live state of every followed log, as the rules see it.
pub fn samples(registry: &Registry) -> Vec<LogSample> {
    use std::sync::atomic::Ordering::Relaxed;
    registry
        .logs()
        .into_iter()
        .map(|l| {
            let errors = l.stats.errors();
            LogSample {
                last_success: l.stats.last_success_unix.load(Relaxed) as i64,
                verified: l.stats.verified_size.load(Relaxed),
                backlog: l.stats.backlog(),
                lag_secs: l.stats.lag_secs() as u64,
                traffic: rules::Traffic {
                    requests: l.stats.fetch.requests.load(Relaxed),
                    rate_limited: l.stats.fetch.rate_limited.load(Relaxed),
                    server_errors: l.stats.fetch.server_errors.load(Relaxed),
                    transport_errors: l.stats.fetch.transport_errors.load(Relaxed),
                    window: l.stats.concurrency_limit() as u64,
                    max_window: l
                        .stats
                        .concurrency
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .max() as u64,
                },
                processed: l.stats.processed.load(Relaxed),
                misbehaviour: MISBEHAVIOUR_KINDS
                    .iter()
                    .map(|k| errors.get(k).copied().unwrap_or(0))
                    .sum(),
                failing_verification: l.stats.failing_verification(),
                malformed: l.stats.malformed.load(Relaxed),
                last_malformed: l.stats.last_malformed_unix.load(Relaxed) as i64,
                url: l.url,
            }
        })
        .collect()
}

/// Unix seconds of the registry's start (the reference for logs never contacted).
pub fn started_at(registry: &Registry) -> i64 {
    registry
        .started_at
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The `health` event of an alert.
pub fn alert_event(alert: &Alert, now: i64) -> Event {
    let p = &alert.problem;
    Event {
        kind: "health".into(),
        group_key: format!("health|{}|{}", p.check, p.subject),
        tags: Vec::new(),
        payload: json!({
            "version": PAYLOAD_VERSION,
            "kind": "health",
            "check": p.check,
            "state": alert.state,
            "severity": rules::severity(p.check, alert.state),
            "subject": p.subject,
            "message": p.message,
            "since": p.since.map(rfc3339),
            "at": rfc3339(now),
        }),
    }
}

/// The alert for a previous run that did not exit cleanly.
pub fn crash_alert(run: &CrashedRun) -> Alert {
    Alert {
        state: AlertState::Notice,
        problem: Problem {
            check: "restart_after_crash",
            subject: format!("pid {}", run.pid),
            message: format!(
                "ctwatch restarted after an unclean exit: the previous run (pid {}, version {}, started {}) was \
                 last seen alive at {}; it crashed or was killed",
                run.pid,
                run.version,
                rfc3339(run.started_at),
                rfc3339(run.last_seen_at)
            ),
            since: Some(run.last_seen_at),
        },
    }
}

/// Record this process in the `runs` table and queue a `restart_after_crash` alert for each previous run that
/// ended uncleanly (when alerts are on). Returns the run id for [`Monitor`] and `Store::end_run`.
pub async fn record_start(store: &Arc<Store>, now: i64, alerts: bool) -> anyhow::Result<i64> {
    let st = store.clone();
    let (id, crashed) = tokio::task::spawn_blocking(move || {
        st.begin_run(
            std::process::id(),
            env!("CARGO_PKG_VERSION"),
            now,
            crate::store::process_alive,
        )
    })
    .await??;
    for run in &crashed {
        tracing::warn!(
            pid = run.pid,
            "the previous ctwatch run did not exit cleanly"
        );
        if alerts {
            let ev = alert_event(&crash_alert(run), now);
            let st = store.clone();
            tokio::task::spawn_blocking(move || st.queue_event(&ev)).await??;
        }
    }
    Ok(id)
}

/// The periodic health check of a running process.
pub struct Monitor {
    pub store: Arc<Store>,
    pub registry: Arc<Registry>,
    pub config: HealthConfig,
    pub clock: Clock,
    /// Woken after queuing alerts so they go out at once.
    pub wake: Wake,
    /// This process's row in `runs`, refreshed at every check.
    pub run_id: Option<i64>,
}

impl Monitor {
    /// Check every `check_interval_secs` until `shutdown`.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let period = Duration::from_secs(self.config.check_interval_secs.max(1));
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut book = AlertBook::default();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
            if let Err(e) = self.check(&mut book).await {
                tracing::warn!("health check: {e:#}");
            }
        }
    }

    /// One check: sample, decide, queue the alerts.
    pub async fn check(&self, book: &mut AlertBook) -> anyhow::Result<Vec<Alert>> {
        let now = (self.clock)();
        let st = self.store.clone();
        let run_id = self.run_id;
        let sinks = tokio::task::spawn_blocking(move || {
            if let Some(id) = run_id {
                st.touch_run(id, now)?;
            }
            st.sink_failures()
        })
        .await??;
        let logs = samples(&self.registry);
        let started = started_at(&self.registry);
        book.shared = self
            .registry
            .lease
            .get()
            .and_then(|l| rules::SharedView::of(l, now, started));
        let alerts = book.step(now, started, &logs, &sinks, &self.config);
        if !self.config.alerts || alerts.is_empty() {
            return Ok(alerts);
        }
        for a in &alerts {
            match a.state {
                AlertState::Firing => {
                    tracing::warn!(check = a.problem.check, "{}", a.problem.message)
                }
                _ => tracing::info!(check = a.problem.check, "{}", a.problem.message),
            }
        }
        let events: Vec<Event> = alerts.iter().map(|a| alert_event(a, now)).collect();
        let st = self.store.clone();
        tokio::task::spawn_blocking(move || {
            events
                .iter()
                .try_for_each(|e| st.queue_event(e).map(|_| ()))
        })
        .await??;
        self.wake.wake();
        Ok(alerts)
    }
}
