//! The health decisions, pure: samples of the live state + `now` in, problems and alert transitions out.
//!
//! `/health` asks [`assess`] (stateless: silence and failing sinks). The alert monitor keeps an [`AlertBook`]
//! that adds the checks needing history (a backlog that keeps growing, misbehaviour counters that moved) and turns
//! "problem present" into one `firing` alert per incident and one `resolved` when it clears.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::Serialize;

use super::{HealthConfig, HealthThresholds};
use crate::store::SinkFailure;

/// Error kinds of a log that mean it broke its promises (not mere unavailability).
pub const MISBEHAVIOUR_KINDS: [&str; 3] = ["root_mismatch", "misbehaving", "bad_signature"];

/// What we know about one followed log at a check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogSample {
    pub url: String,
    /// Unix seconds of the last successful exchange (0: never).
    pub last_success: i64,
    pub verified: u64,
    pub backlog: u64,
    /// Entries processed since the process started.
    pub processed: u64,
    /// Errors of the [`MISBEHAVIOUR_KINDS`] since the process started.
    pub misbehaviour: u64,
    /// While the log fails verification: since when (unix seconds) and the last error.
    pub failing_verification: Option<(i64, String)>,
    /// Seconds since the oldest entry not yet verified was published.
    pub lag_secs: u64,
    /// HTTP figures of the log since the process started, to name why it falls behind.
    pub traffic: Traffic,
    /// Entries stored as malformed since the process started, and Unix seconds of the last ones (0: never).
    pub malformed: u64,
    pub last_malformed: i64,
}

/// A log's HTTP exchanges since the process started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    pub requests: u64,
    pub rate_limited: u64,
    pub server_errors: u64,
    pub transport_errors: u64,
    /// Requests in flight the adaptive window allows now, and its bound.
    pub window: u64,
    pub max_window: u64,
}

impl Traffic {
    /// The likeliest reason a log falls behind, in words: push-back from the log first (429s, then errors), then a
    /// window at its bound (the log is slow for what we may ask of it), else our own processing.
    pub fn likely_cause(&self) -> String {
        let share = |n: u64| n * 100 / self.requests.max(1);
        if self.rate_limited > 0 && share(self.rate_limited) >= 1 {
            format!(
                "rate limited ({} of {} requests answered 429)",
                self.rate_limited, self.requests
            )
        } else if share(self.server_errors + self.transport_errors) >= 5 {
            format!(
                "errors ({} server errors and {} timeouts or connection errors in {} requests)",
                self.server_errors, self.transport_errors, self.requests
            )
        } else if self.max_window > 0 && self.window >= self.max_window {
            format!(
                "slow answers ({} requests in flight, the most allowed: raise parallel_requests)",
                self.window
            )
        } else {
            "local processing or storage is too slow (the log answers quickly and without push-back)".into()
        }
    }
}

/// One thing wrong now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// `log_silent`, `sink_failing`, `backlog_growing`, `log_misbehaving`, `no_logs`.
    pub check: &'static str,
    /// The log URL or sink name concerned.
    pub subject: String,
    pub message: String,
    /// Unix seconds since when it is true, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
}

/// `1h 05m`, `3m 20s`, `45s`: durations in messages.
pub fn human_secs(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// The stateless checks: logs without a successful contact for longer than `log_silence_secs` (counting from
/// process start for a log never contacted), logs failing verification now (root mismatch, bad signature,
/// shrinking or inconsistent head), and sinks failing for longer than `sink_failing_secs`.
pub fn assess(
    now: i64,
    started_at: i64,
    logs: &[LogSample],
    sinks: &[SinkFailure],
    t: &HealthThresholds,
) -> Vec<Problem> {
    let mut out = Vec::new();
    if logs.is_empty() {
        out.push(Problem {
            check: "no_logs",
            subject: String::new(),
            message: "no log is being followed".into(),
            since: None,
        });
    }
    for log in logs {
        let since = if log.last_success > 0 {
            log.last_success
        } else {
            started_at
        };
        let quiet = now - since;
        if quiet > t.log_silence_secs as i64 {
            let message = if log.last_success > 0 {
                format!(
                    "no successful contact with {} for {} (threshold {})",
                    log.url,
                    human_secs(quiet),
                    human_secs(t.log_silence_secs as i64)
                )
            } else {
                format!(
                    "{} not contacted successfully since start {} ago (threshold {})",
                    log.url,
                    human_secs(quiet),
                    human_secs(t.log_silence_secs as i64)
                )
            };
            out.push(Problem {
                check: "log_silent",
                subject: log.url.clone(),
                message,
                since: Some(since),
            });
        }
    }
    for log in logs {
        if let Some((since, error)) = &log.failing_verification {
            out.push(Problem {
                check: "log_misbehaving",
                subject: log.url.clone(),
                message: format!(
                    "{} fails verification since {} ago: {error}; nothing from the affected range is reported \
                     until it verifies",
                    log.url,
                    human_secs(now - since)
                ),
                since: Some(*since),
            });
        }
    }
    for sink in sinks {
        let failing = now - sink.failing_since;
        if failing > t.sink_failing_secs as i64 {
            out.push(Problem {
                check: "sink_failing",
                subject: sink.sink.clone(),
                message: format!(
                    "sink {} has failed to deliver {} notification(s) for {}: {}",
                    sink.sink,
                    sink.deliveries,
                    human_secs(failing),
                    sink.last_error.as_deref().unwrap_or("(no error recorded)")
                ),
                since: Some(sink.failing_since),
            });
        }
    }
    out
}

/// Whether an alert starts, ends, or is a one-off notice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Firing,
    Resolved,
    /// A one-off: restart after a crash, heartbeat.
    Notice,
}

/// One alert to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    pub state: AlertState,
    pub problem: Problem,
}

/// What an open incident remembers: when it started and the figure that ends it.
#[derive(Clone, Debug)]
struct Incident {
    problem: Problem,
    /// backlog_growing: the backlog when it fired; log_misbehaving: the verified size when it fired.
    mark: u64,
}

/// Alert memory across checks.
#[derive(Debug, Default)]
pub struct AlertBook {
    open: BTreeMap<(&'static str, String), Incident>,
    backlogs: HashMap<String, VecDeque<u64>>,
    misbehaviour: HashMap<String, u64>,
    malformed: HashMap<String, u64>,
    last_heartbeat: Option<i64>,
    processed_at_heartbeat: u64,
    /// This instance's place among several sharing a database (set before each check; None: alone).
    pub shared: Option<SharedView>,
}

/// How an instance sharing a PostgreSQL database stands (from [`crate::lease::LeaseStats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SharedView {
    /// It owns no log while others own them all (more instances than logs, or just joined): not a problem.
    pub standby: bool,
    /// Seconds since its last successful heartbeat in the shared database.
    pub heartbeat_age_secs: i64,
}

/// A heartbeat older than this means the instance lost the shared database: it tails nothing.
pub const HEARTBEAT_STALE_SECS: i64 = 60;

impl SharedView {
    /// From the lease figures of this instance; None when it does not share its database.
    pub fn of(lease: &crate::lease::LeaseStats, now: i64, started_at: i64) -> Option<SharedView> {
        use std::sync::atomic::Ordering::Relaxed;
        if lease.instance().is_empty() {
            return None;
        }
        let last = lease.last_heartbeat_unix.load(Relaxed) as i64;
        Some(SharedView {
            standby: lease.owned() == 0 && lease.wanted.load(Relaxed) > 0,
            heartbeat_age_secs: now - if last > 0 { last } else { started_at },
        })
    }

    /// Adjust the problems of a shared instance: following no log is normal for a standby; losing the database
    /// (a stale heartbeat) is a problem of its own (`lease_heartbeat`).
    pub fn apply(&self, problems: &mut Vec<Problem>, now: i64) {
        if self.standby {
            problems.retain(|p| p.check != "no_logs");
        }
        if self.heartbeat_age_secs > HEARTBEAT_STALE_SECS {
            problems.push(Problem {
                check: "lease_heartbeat",
                subject: String::new(),
                message: format!(
                    "no heartbeat in the shared database for {}: this instance holds no log lease and tails \
                     nothing (see ctwatch_lease_round_errors_total and the log)",
                    human_secs(self.heartbeat_age_secs)
                ),
                since: Some(now - self.heartbeat_age_secs),
            });
        }
    }
}

impl AlertBook {
    /// One check: the alerts to send now (each incident fires once and resolves once).
    pub fn step(
        &mut self,
        now: i64,
        started_at: i64,
        logs: &[LogSample],
        sinks: &[SinkFailure],
        cfg: &HealthConfig,
    ) -> Vec<Alert> {
        let mut active: BTreeMap<(&'static str, String), Incident> = BTreeMap::new();
        let mut problems = assess(now, started_at, logs, sinks, &cfg.thresholds());
        if let Some(shared) = &self.shared {
            shared.apply(&mut problems, now);
        }
        for p in problems {
            active.insert(
                (p.check, p.subject.clone()),
                Incident {
                    problem: p,
                    mark: 0,
                },
            );
        }
        for log in logs {
            if let Some(i) = self.backlog_check(now, log, cfg.backlog_growth_checks) {
                active.insert(("backlog_growing", log.url.clone()), i);
            }
            if let Some(i) = self.misbehaviour_check(now, log) {
                active.insert(("log_misbehaving", log.url.clone()), i);
            }
        }
        let followed: std::collections::HashSet<&str> =
            logs.iter().map(|l| l.url.as_str()).collect();
        self.backlogs
            .retain(|url, _| followed.contains(url.as_str()));
        self.misbehaviour
            .retain(|url, _| followed.contains(url.as_str()));

        let mut alerts = Vec::new();
        let ended: Vec<_> = self
            .open
            .keys()
            .filter(|k| !active.contains_key(*k))
            .cloned()
            .collect();
        for key in ended {
            let inc = self.open.remove(&key).expect("key listed from the map");
            alerts.push(Alert {
                state: AlertState::Resolved,
                problem: resolved(inc.problem, now),
            });
        }
        for (key, inc) in active {
            if let std::collections::btree_map::Entry::Vacant(slot) = self.open.entry(key) {
                alerts.push(Alert {
                    state: AlertState::Firing,
                    problem: inc.problem.clone(),
                });
                slot.insert(inc);
            }
        }
        alerts.extend(super::malformed::new_malformed_alerts(
            now,
            logs,
            &mut self.malformed,
        ));
        alerts.extend(self.heartbeat(now, started_at, logs, cfg.heartbeat_hours));
        alerts
    }

    /// The backlog keeps growing: over the last `checks` intervals it never shrank and ended higher. Once firing,
    /// it holds until the backlog falls below its value at firing time (we are gaining on the log).
    fn backlog_check(&mut self, now: i64, log: &LogSample, checks: u32) -> Option<Incident> {
        let window = checks.max(1) as usize + 1;
        let hist = self.backlogs.entry(log.url.clone()).or_default();
        hist.push_back(log.backlog);
        while hist.len() > window {
            hist.pop_front();
        }
        if let Some(open) = self.open.get(&("backlog_growing", log.url.clone())) {
            return (log.backlog >= open.mark && log.backlog > 0).then(|| open.clone());
        }
        let growing = hist.len() == window
            && hist.iter().zip(hist.iter().skip(1)).all(|(a, b)| b >= a)
            && hist.back() > hist.front();
        growing.then(|| Incident {
            problem: Problem {
                check: "backlog_growing",
                subject: log.url.clone(),
                message: format!(
                    "the backlog of {} grew from {} to {} entries over the last {} checks (lag {}): ctwatch is not \
                     keeping up; likely cause: {}",
                    log.url,
                    hist.front().copied().unwrap_or(0),
                    log.backlog,
                    window - 1,
                    human_secs(log.lag_secs as i64),
                    log.traffic.likely_cause()
                ),
                since: Some(now),
            },
            mark: log.backlog,
        })
    }

    /// New misbehaviour errors since the last check fire; the incident holds until the log verifies entries past
    /// the point where it fired without a new error.
    fn misbehaviour_check(&mut self, now: i64, log: &LogSample) -> Option<Incident> {
        let prev = self
            .misbehaviour
            .insert(log.url.clone(), log.misbehaviour)
            .unwrap_or(0);
        let fresh = log.misbehaviour > prev;
        if let Some(open) = self.open.get(&("log_misbehaving", log.url.clone())) {
            return (fresh || log.verified <= open.mark).then(|| open.clone());
        }
        fresh.then(|| Incident {
            problem: Problem {
                check: "log_misbehaving",
                subject: log.url.clone(),
                message: format!(
                    "{} misbehaved ({} new root mismatch / inconsistent answer / bad signature error(s)); \
                     nothing from the affected range is reported until it verifies",
                    log.url,
                    log.misbehaviour - prev
                ),
                since: Some(now),
            },
            mark: log.verified,
        })
    }

    /// "Alive" every `hours` (0: never), the first one `hours` after start.
    fn heartbeat(
        &mut self,
        now: i64,
        started_at: i64,
        logs: &[LogSample],
        hours: u64,
    ) -> Option<Alert> {
        if hours == 0 {
            return None;
        }
        let last = *self.last_heartbeat.get_or_insert(started_at);
        if now - last < (hours * 3600) as i64 {
            return None;
        }
        let processed: u64 = logs.iter().map(|l| l.processed).sum();
        let since_last = processed.saturating_sub(self.processed_at_heartbeat);
        self.last_heartbeat = Some(now);
        self.processed_at_heartbeat = processed;
        Some(Alert {
            state: AlertState::Notice,
            problem: Problem {
                check: "heartbeat",
                subject: String::new(),
                message: format!(
                    "alive: {} logs followed, {} certificates processed in the last {}, {} open problem(s)",
                    logs.len(),
                    since_last,
                    human_secs(now - last),
                    self.open.len()
                ),
                since: Some(last),
            },
        })
    }
}

fn resolved(mut p: Problem, now: i64) -> Problem {
    let how_long = p
        .since
        .map(|s| format!(" after {}", human_secs(now - s)))
        .unwrap_or_default();
    p.message = match p.check {
        "log_silent" => format!("{} answers again{how_long}", p.subject),
        "sink_failing" => format!("sink {} delivers again{how_long}", p.subject),
        "backlog_growing" => format!("ctwatch is catching up with {} again{how_long}", p.subject),
        "log_misbehaving" => format!("{} verifies again{how_long}", p.subject),
        "no_logs" => "logs are being followed again".to_string(),
        _ => format!("resolved: {}", p.message),
    };
    p
}

/// How bad a check is, for sinks that show a colour or a priority.
pub fn severity(check: &str, state: AlertState) -> &'static str {
    match (check, state) {
        (_, AlertState::Resolved) | ("heartbeat", _) => "info",
        ("backlog_growing" | "restart_after_crash" | "malformed_entries", _) => "warning",
        _ => "critical",
    }
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
