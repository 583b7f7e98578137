//! `GET /metrics`: the Prometheus text exposition format (version 0.0.4). Gathered into a [`Snapshot`], then
//! rendered by the pure [`render`], so the format is tested without a server.
//!
//! Per-log series carry `log` (URL), `kind` (`rfc6962` | `tiled`) and `operator`; error counters add `error`
//! (transport, http_status, rate_limited, bad_response, bad_signature, misbehaving, root_mismatch, ...).
//! `rate(ctwatch_log_entries_processed_total[5m])` is the entries/s of a log.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::{ApiError, ApiState};
use crate::stats::Registry;
use crate::store::{HostGauge, OutboxSummary, ProbeSample, Store};

/// One followed log's figures.
#[derive(Clone, Debug, Default)]
pub struct LogFigures {
    pub url: String,
    pub kind: String,
    pub operator: String,
    pub verified: u64,
    pub head: u64,
    pub backlog: u64,
    /// Unix seconds, 0 when never.
    pub last_success: u64,
    pub processed: u64,
    pub downloaded: u64,
    /// Entries stored as malformed, all time (from the database).
    pub malformed: u64,
    pub errors: BTreeMap<String, u64>,
    /// Seconds since the oldest entry not yet verified was published (0: caught up).
    pub lag_secs: f64,
    /// Requests in flight the adaptive window allows now.
    pub window: u64,
    pub requests: u64,
    pub rate_limited: u64,
    pub server_errors: u64,
    pub transport_errors: u64,
    pub retries: u64,
    pub bytes: u64,
    /// With a NATS stream: committed entries not yet acknowledged by it.
    pub stream_lag: Option<u64>,
}

/// The NATS stream's figures (`ctwatch_stream_*`), when a stream is configured.
#[derive(Clone, Debug, Default)]
pub struct StreamFigures {
    pub published: u64,
    pub duplicates: u64,
    pub errors: u64,
    pub per_sec: f64,
    pub queued_batches: u64,
    pub backpressure_secs: f64,
    /// Publishing fails now (no acknowledgement since the last failure).
    pub failing: bool,
}

/// Everything one scrape shows.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub version: String,
    /// Unix seconds (fractional) the process started.
    pub start_time: f64,
    pub logs: Vec<LogFigures>,
    pub events: BTreeMap<String, u64>,
    pub outbox: Vec<OutboxSummary>,
    /// None: this database has no probe results.
    pub probes: Option<Vec<ProbeSample>>,
    /// Per probed host: days left, level, stale deployment (`ctwatch_probe_*{host,tag}`).
    pub hosts: Vec<HostGauge>,
    pub stream: Option<StreamFigures>,
    /// Log ownership of this instance (`ctwatch_lease_*`); None when the run did not say.
    pub lease: Option<LeaseFigures>,
}

/// Log ownership figures of this instance (see [`crate::lease::LeaseStats`]).
#[derive(Clone, Debug, Default)]
pub struct LeaseFigures {
    /// Empty for a single-instance (SQLite) database.
    pub instance: String,
    pub owned: u64,
    pub wanted: u64,
    pub live_instances: u64,
    pub acquired: u64,
    pub released: u64,
    pub lost: u64,
    pub round_errors: u64,
    pub last_heartbeat: u64,
}

impl LeaseFigures {
    pub fn of(s: &crate::lease::LeaseStats) -> LeaseFigures {
        LeaseFigures {
            instance: s.instance().to_string(),
            owned: s.owned.load(Relaxed),
            wanted: s.wanted.load(Relaxed),
            live_instances: s.live_instances.load(Relaxed),
            acquired: s.acquired.load(Relaxed),
            released: s.released.load(Relaxed),
            lost: s.lost.load(Relaxed),
            round_errors: s.round_errors.load(Relaxed),
            last_heartbeat: s.last_heartbeat_unix.load(Relaxed),
        }
    }
}

const LEASE_FAMILIES: &[Family<LeaseFigures>] = &[
    (
        "ctwatch_lease_owned_logs",
        "gauge",
        "Logs this instance owns (tails) now; with one instance, every followed log.",
        |l| l.owned as f64,
    ),
    (
        "ctwatch_lease_wanted_logs",
        "gauge",
        "Logs the run follows, all instances together.",
        |l| l.wanted as f64,
    ),
    (
        "ctwatch_lease_live_instances",
        "gauge",
        "Instances with a live heartbeat in the shared database (1 with a single instance).",
        |l| l.live_instances as f64,
    ),
    (
        "ctwatch_lease_acquired_total",
        "counter",
        "Log leases this instance took (new logs, takeovers of dead instances, its share after a join).",
        |l| l.acquired as f64,
    ),
    (
        "ctwatch_lease_released_total",
        "counter",
        "Log leases this instance handed over to balance the load.",
        |l| l.released as f64,
    ),
    (
        "ctwatch_lease_lost_total",
        "counter",
        "Log leases that expired before this instance renewed them (database unreachable or process stalled).",
        |l| l.lost as f64,
    ),
    (
        "ctwatch_lease_round_errors_total",
        "counter",
        "Heartbeat and lease renewal rounds that failed.",
        |l| l.round_errors as f64,
    ),
    (
        "ctwatch_lease_last_heartbeat_timestamp_seconds",
        "gauge",
        "Unix time of this instance's last heartbeat in the shared database (0: single instance).",
        |l| l.last_heartbeat as f64,
    ),
];

impl Snapshot {
    /// Read the registry and the store (blocking: call from `spawn_blocking`).
    pub fn gather(
        registry: &Registry,
        store: &Store,
    ) -> Result<Snapshot, crate::store::StoreError> {
        let malformed = store.malformed_counts()?;
        let streaming = registry.stream.enabled.load(Relaxed);
        let logs = registry
            .logs()
            .into_iter()
            .map(|l| LogFigures {
                lag_secs: l.stats.lag_secs(),
                window: l.stats.concurrency_limit() as u64,
                requests: l.stats.fetch.requests.load(Relaxed),
                rate_limited: l.stats.fetch.rate_limited.load(Relaxed),
                server_errors: l.stats.fetch.server_errors.load(Relaxed),
                transport_errors: l.stats.fetch.transport_errors.load(Relaxed),
                retries: l.stats.fetch.retries.load(Relaxed),
                bytes: l.stats.fetch.bytes.load(Relaxed),
                stream_lag: streaming.then(|| {
                    l.stats
                        .verified_size
                        .load(Relaxed)
                        .saturating_sub(l.stats.published_size.load(Relaxed))
                }),
                malformed: malformed.get(&l.url).copied().unwrap_or(0),
                verified: l.stats.verified_size.load(Relaxed),
                head: l.stats.head_size.load(Relaxed),
                backlog: l.stats.backlog(),
                last_success: l.stats.last_success_unix.load(Relaxed),
                processed: l.stats.processed.load(Relaxed),
                downloaded: l.stats.downloaded.load(Relaxed),
                errors: l
                    .stats
                    .errors()
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
                url: l.url,
                kind: l.kind.to_string(),
                operator: l.operator,
            })
            .collect();
        Ok(Snapshot {
            version: env!("CARGO_PKG_VERSION").to_string(),
            start_time: registry
                .started_at
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
            logs,
            events: store.events_by_kind()?,
            outbox: store.outbox_summary()?,
            probes: store.latest_probe_results()?,
            hosts: store.host_gauges()?,
            stream: streaming.then(|| {
                let s = &registry.stream;
                StreamFigures {
                    published: s.published.load(Relaxed),
                    duplicates: s.duplicates.load(Relaxed),
                    errors: s.errors.load(Relaxed),
                    per_sec: s.per_sec(),
                    queued_batches: s.queued_batches.load(Relaxed),
                    backpressure_secs: s.backpressure_us.load(Relaxed) as f64 / 1e6,
                    failing: s.failing().is_some(),
                }
            }),
            lease: registry.lease.get().map(|l| LeaseFigures::of(l)),
        })
    }
}

pub(crate) async fn metrics(State(state): State<Arc<ApiState>>) -> Result<Response, ApiError> {
    let (registry, store) = (state.registry.clone(), state.store.clone());
    let snap = tokio::task::spawn_blocking(move || Snapshot::gather(&registry, &store))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(&snap),
    )
        .into_response())
}

/// Escape a label value: backslash, double quote and line feed.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Writes metric families: HELP and TYPE once, then the samples.
struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            let inner: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                .collect();
            let _ = write!(self.0, "{{{}}}", inner.join(","));
        }
        let _ = writeln!(self.0, " {value}");
    }
}

/// Metric families drawn from a list of `T`: (name, type, help, value).
type Family<T> = (&'static str, &'static str, &'static str, fn(&T) -> f64);

const LOG_FAMILIES: &[Family<LogFigures>] = &[
    (
        "ctwatch_log_verified_size",
        "gauge",
        "Entries of the log verified against a signed tree head and stored.",
        |l| l.verified as f64,
    ),
    (
        "ctwatch_log_head_size",
        "gauge",
        "Tree size of the newest verified signed tree head of the log.",
        |l| l.head as f64,
    ),
    (
        "ctwatch_log_backlog_entries",
        "gauge",
        "Entries between the verified position and the head.",
        |l| l.backlog as f64,
    ),
    (
        "ctwatch_log_last_success_timestamp_seconds",
        "gauge",
        "Unix time of the last successful exchange with the log (0: never).",
        |l| l.last_success as f64,
    ),
    (
        "ctwatch_log_entries_processed_total",
        "counter",
        "Entries verified and processed since the process started.",
        |l| l.processed as f64,
    ),
    (
        "ctwatch_log_entries_downloaded_total",
        "counter",
        "Entries downloaded since the process started.",
        |l| l.downloaded as f64,
    ),
    (
        "ctwatch_log_lag_seconds",
        "gauge",
        "Seconds since the oldest entry of the log not yet verified was published (0: caught up).",
        |l| l.lag_secs,
    ),
    (
        "ctwatch_log_requests_in_flight_limit",
        "gauge",
        "Requests in flight the adaptive window allows for the log now.",
        |l| l.window as f64,
    ),
    (
        "ctwatch_log_http_requests_total",
        "counter",
        "HTTP requests sent to the log (retries included).",
        |l| l.requests as f64,
    ),
    (
        "ctwatch_log_http_rate_limited_total",
        "counter",
        "429 Too Many Requests answers from the log.",
        |l| l.rate_limited as f64,
    ),
    (
        "ctwatch_log_http_server_errors_total",
        "counter",
        "5xx answers from the log.",
        |l| l.server_errors as f64,
    ),
    (
        "ctwatch_log_http_transport_errors_total",
        "counter",
        "Requests to the log that failed without an answer (timeouts, connection errors).",
        |l| l.transport_errors as f64,
    ),
    (
        "ctwatch_log_http_retries_total",
        "counter",
        "Retried requests to the log.",
        |l| l.retries as f64,
    ),
    (
        "ctwatch_log_http_received_bytes_total",
        "counter",
        "Response bytes received from the log.",
        |l| l.bytes as f64,
    ),
    (
        "ctwatch_malformed_entries_total",
        "counter",
        "Entries of the log stored as malformed (their Merkle leaf did not decode), all time; see `ctwatch logs`.",
        |l| l.malformed as f64,
    ),
];

/// The exposition text of `snap`.
pub fn render(snap: &Snapshot) -> String {
    let mut o = Out(String::new());
    o.family(
        "ctwatch_build_info",
        "gauge",
        "Always 1; the version of ctwatch in a label.",
    );
    o.sample("ctwatch_build_info", &[("version", &snap.version)], 1.0);
    o.family(
        "ctwatch_process_start_time_seconds",
        "gauge",
        "Unix time the process started.",
    );
    o.sample("ctwatch_process_start_time_seconds", &[], snap.start_time);
    o.family("ctwatch_logs_followed", "gauge", "Logs being followed now.");
    o.sample("ctwatch_logs_followed", &[], snap.logs.len() as f64);
    if let Some(lease) = &snap.lease {
        for (name, kind, help, value) in LEASE_FAMILIES {
            o.family(name, kind, help);
            let labels: &[(&str, &str)] = if lease.instance.is_empty() {
                &[]
            } else {
                &[("instance_id", &lease.instance)]
            };
            o.sample(name, labels, value(lease));
        }
    }
    for (name, kind, help, value) in LOG_FAMILIES {
        o.family(name, kind, help);
        for l in &snap.logs {
            let labels = [
                ("log", l.url.as_str()),
                ("kind", &l.kind),
                ("operator", &l.operator),
            ];
            o.sample(name, &labels, value(l));
        }
    }
    o.family(
        "ctwatch_log_errors_total",
        "counter",
        "Failed exchanges with the log since the process started, by error kind.",
    );
    for l in &snap.logs {
        for (err, n) in &l.errors {
            let labels = [
                ("log", l.url.as_str()),
                ("kind", &l.kind),
                ("operator", &l.operator),
                ("error", err),
            ];
            o.sample("ctwatch_log_errors_total", &labels, *n as f64);
        }
    }
    o.family(
        "ctwatch_events_total",
        "counter",
        "Events recorded in the database (matches, health alerts, ...), by kind.",
    );
    for (kind, n) in &snap.events {
        o.sample("ctwatch_events_total", &[("kind", kind)], *n as f64);
    }
    let outbox: [Family<OutboxSummary>; 3] = [
        (
            "ctwatch_outbox_pending",
            "gauge",
            "Notifications waiting for delivery, per sink.",
            |s| s.pending as f64,
        ),
        (
            "ctwatch_outbox_failed",
            "gauge",
            "Notifications given up on (see `ctwatch outbox`), per sink.",
            |s| s.failed as f64,
        ),
        (
            "ctwatch_outbox_delivered_total",
            "counter",
            "Notifications delivered, per sink.",
            |s| s.delivered as f64,
        ),
    ];
    for (name, kind, help, value) in outbox {
        o.family(name, kind, help);
        for s in &snap.outbox {
            o.sample(name, &[("sink", &s.sink)], value(s));
        }
    }
    if let Some(stream) = &snap.stream {
        render_stream(&mut o, stream, &snap.logs);
    }
    if let Some(probes) = &snap.probes {
        render_probes(&mut o, probes);
    }
    if !snap.hosts.is_empty() {
        render_hosts(&mut o, &snap.hosts);
    }
    o.0
}

/// The NATS stream: throughput, errors, queue and backpressure, and the lag of each log behind its commits.
fn render_stream(o: &mut Out, s: &StreamFigures, logs: &[LogFigures]) {
    let families: [Family<StreamFigures>; 7] = [
        (
            "ctwatch_stream_published_messages_total",
            "counter",
            "Messages acknowledged by JetStream (duplicates included).",
            |s| s.published as f64,
        ),
        (
            "ctwatch_stream_published_messages_per_second",
            "gauge",
            "Messages acknowledged per second over the last 10 s window.",
            |s| s.per_sec,
        ),
        (
            "ctwatch_stream_duplicate_messages_total",
            "counter",
            "Republished messages JetStream already had (dropped by its duplicate window).",
            |s| s.duplicates as f64,
        ),
        (
            "ctwatch_stream_publish_errors_total",
            "counter",
            "Failed publish attempts (each is retried until acknowledged).",
            |s| s.errors as f64,
        ),
        (
            "ctwatch_stream_queued_batches",
            "gauge",
            "Committed batches waiting for the publisher.",
            |s| s.queued_batches as f64,
        ),
        (
            "ctwatch_stream_backpressure_seconds_total",
            "counter",
            "Time tailers waited for room in the publisher's queue.",
            |s| s.backpressure_secs,
        ),
        (
            "ctwatch_stream_failing",
            "gauge",
            "1 while publishing fails (no acknowledgement since the last failure).",
            |s| f64::from(u8::from(s.failing)),
        ),
    ];
    for (name, kind, help, value) in families {
        o.family(name, kind, help);
        o.sample(name, &[], value(s));
    }
    o.family(
        "ctwatch_stream_lag_entries",
        "gauge",
        "Committed entries of the log not yet acknowledged by the stream.",
    );
    for l in logs {
        let labels = [
            ("log", l.url.as_str()),
            ("kind", &l.kind),
            ("operator", &l.operator),
        ];
        o.sample(
            "ctwatch_stream_lag_entries",
            &labels,
            l.stream_lag.unwrap_or(0) as f64,
        );
    }
}

/// One series per (host, tag) — an untagged host has `tag=""` — so Alertmanager rules can route by client.
fn render_hosts(o: &mut Out, hosts: &[HostGauge]) {
    let tags = |h: &HostGauge| -> Vec<String> {
        if h.tags.is_empty() {
            vec![String::new()]
        } else {
            h.tags.clone()
        }
    };
    o.family(
        "ctwatch_probe_days_left",
        "gauge",
        "Whole days until the served certificate expires (negative once expired), at the latest probe.",
    );
    for h in hosts {
        if let Some(days) = h.days_left {
            for tag in tags(h) {
                o.sample(
                    "ctwatch_probe_days_left",
                    &[("host", &h.host), ("tag", &tag)],
                    days as f64,
                );
            }
        }
    }
    o.family(
        "ctwatch_probe_level",
        "gauge",
        "Level of the latest probe: 0 OK, 1 WARNING, 2 CRITICAL (lifetime-aware thresholds).",
    );
    for h in hosts {
        for tag in tags(h) {
            o.sample(
                "ctwatch_probe_level",
                &[("host", &h.host), ("tag", &tag)],
                f64::from(h.level.exit_code()),
            );
        }
    }
    o.family(
        "ctwatch_probe_stale_deployment",
        "gauge",
        "1 when CT holds a newer certificate for the host's names, logged longer than the deploy grace ago, that the host does not serve.",
    );
    for h in hosts {
        o.sample(
            "ctwatch_probe_stale_deployment",
            &[("host", &h.host)],
            if h.stale_deployment { 1.0 } else { 0.0 },
        );
    }
}

fn render_probes(o: &mut Out, probes: &[ProbeSample]) {
    o.family(
        "ctwatch_cert_expiry_timestamp_seconds",
        "gauge",
        "notAfter of the certificate the domain served at its latest probe.",
    );
    for p in probes {
        if let Some(t) = p.not_after {
            o.sample(
                "ctwatch_cert_expiry_timestamp_seconds",
                &[("domain", &p.domain)],
                t as f64,
            );
        }
    }
    o.family(
        "ctwatch_probe_status",
        "gauge",
        "1 for the status of the domain's latest probe (ok, warning, expired, unreachable, ...).",
    );
    for p in probes {
        o.sample(
            "ctwatch_probe_status",
            &[("domain", &p.domain), ("status", &p.status)],
            1.0,
        );
    }
    o.family(
        "ctwatch_probe_last_timestamp_seconds",
        "gauge",
        "Unix time of the domain's latest probe.",
    );
    for p in probes {
        if let Some(t) = p.probed_at {
            o.sample(
                "ctwatch_probe_last_timestamp_seconds",
                &[("domain", &p.domain)],
                t as f64,
            );
        }
    }
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
