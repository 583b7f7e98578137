//! The daemon's probe policy as pure functions: the per-domain rate limit, what a probe result changes
//! (failure count, alerting snapshot, next probe time, event), and the event's payload.
//! The task that applies them lives in [`super::scheduler`].

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use serde_json::json;

use super::classify::Level;
use super::report::HostReport;
use super::transition::{EventKind, ProbeEvent, ProbeSnapshot, next_snapshot, transition};
use crate::event::{Event, PAYLOAD_VERSION};
use crate::store::{ProbeTarget, TargetSource};

/// Event kind of probe events (the notification sinks know it).
pub const EVENT_KIND: &str = "probe";

/// The registrable domain a host falls under (`www.shop.example.co.uk` -> `example.co.uk`), the unit of the
/// rate limit; a name without a known public suffix stands for itself.
pub fn registrable_domain(host: &str) -> String {
    psl::domain_str(host).unwrap_or(host).to_string()
}

/// At most `per_minute` probes start per registrable domain in any 60 seconds, so that a customer whose CT
/// feed brings 300 new subdomains at once does not see 300 handshakes on one load balancer in a second.
#[derive(Debug, Clone)]
pub struct DomainLimiter {
    per_minute: usize,
    /// Start times (unix seconds) within the last minute, oldest first, per registrable domain.
    recent: HashMap<String, VecDeque<i64>>,
}

const WINDOW_SECS: i64 = 60;

impl DomainLimiter {
    /// `per_minute` is at least 1.
    pub fn new(per_minute: u32) -> Self {
        DomainLimiter {
            per_minute: per_minute.max(1) as usize,
            recent: HashMap::new(),
        }
    }

    /// Takes a slot for `domain` at `now` if one is free.
    pub fn try_take(&mut self, domain: &str, now: i64) -> bool {
        let starts = self.recent.entry(domain.to_string()).or_default();
        while starts.front().is_some_and(|&t| t <= now - WINDOW_SECS) {
            starts.pop_front();
        }
        if starts.len() >= self.per_minute {
            return false;
        }
        starts.push_back(now);
        true
    }

    /// When `domain` gets a free slot again (`now` if it has one).
    pub fn next_free(&self, domain: &str, now: i64) -> i64 {
        match self.recent.get(domain) {
            Some(starts) if starts.len() >= self.per_minute => {
                let oldest_counted = starts[starts.len() - self.per_minute];
                (oldest_counted + WINDOW_SECS).max(now)
            }
            _ => now,
        }
    }

    /// Forget domains with no start in the window (keeps memory bounded in a long-running daemon).
    pub fn prune(&mut self, now: i64) {
        self.recent
            .retain(|_, starts| starts.back().is_some_and(|&t| t > now - WINDOW_SECS));
    }
}

/// When hosts are probed again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cadence {
    /// Between two probes of a host. Default 24 h.
    pub interval: Duration,
    /// After a first network failure, which is not alerted on, the host is probed again this soon so a real
    /// outage is confirmed (or cleared) quickly rather than a day later. Default 15 min.
    pub failure_retry: Duration,
}

impl Default for Cadence {
    fn default() -> Self {
        Cadence {
            interval: Duration::from_secs(24 * 3600),
            failure_retry: Duration::from_secs(15 * 60),
        }
    }
}

/// What one probe result changes for its target.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub consecutive_failures: u32,
    /// The new alerting snapshot; `None` keeps the stored one.
    pub snapshot: Option<ProbeSnapshot>,
    pub event: Option<Event>,
    pub next_probe_at: i64,
}

/// Applies [`transition`] to a probe result of `target`, taken at `now`.
///
/// One rule on top of `transition`: a name fed from CT that has never served a certificate (no snapshot yet)
/// raises nothing for network failures. Certificates name many hosts that never answer on 443 from the
/// outside (mail, VPN, internal names); they would page someone every day about nothing. Such a host is
/// alerted on from the first time it serves a certificate. Hand-added targets are alerted on as usual.
pub fn decide(target: &ProbeTarget, report: &HostReport, now: i64, cadence: &Cadence) -> Decision {
    let network_failure = report.status.is_network_failure();
    let consecutive_failures = if network_failure {
        target.consecutive_failures.saturating_add(1)
    } else {
        0
    };
    let never_served = target.source == TargetSource::Ct && target.snapshot.is_none();
    let (event, snapshot) = if never_served && network_failure {
        (None, None)
    } else {
        (
            transition(target.snapshot.as_ref(), report, consecutive_failures),
            next_snapshot(report, consecutive_failures),
        )
    };
    let waiting_out_a_failure = network_failure
        && consecutive_failures < super::transition::FAILURES_BEFORE_ALERT
        && !never_served;
    let delay = if waiting_out_a_failure {
        cadence.failure_retry
    } else {
        cadence.interval
    };
    Decision {
        consecutive_failures,
        snapshot,
        event: event.map(|e| probe_event(&e, report, &target.tags, consecutive_failures)),
        next_probe_at: now.saturating_add(delay.as_secs().max(1) as i64),
    }
}

/// The outbox event for a probe change. Carries `title` and `message` (what chat sinks show) and every
/// field a script needs; `not_seen_in_ct` flags a served certificate that no followed log ever showed.
pub fn probe_event(e: &ProbeEvent, report: &HostReport, tags: &[String], failures: u32) -> Event {
    let host = if e.port == 443 {
        e.domain.clone()
    } else {
        format!("{}:{}", e.domain, e.port)
    };
    let not_seen_in_ct = report.seen_in_ct == Some(false);
    let title = match e.kind {
        EventKind::Lowered if e.to_level == Level::Ok => format!("{host}: certificate OK again"),
        _ => format!("{host}: {} ({})", e.to_level, e.to_status),
    };
    let message = event_message(e, report, &host, failures, not_seen_in_ct);
    let group = tags.first().cloned().unwrap_or_else(|| e.domain.clone());
    let payload = json!({
        "version": PAYLOAD_VERSION,
        "kind": EVENT_KIND,
        "title": title,
        "message": message,
        "change": e.kind,
        "domain": e.domain,
        "port": e.port,
        "status": e.to_status,
        "level": e.to_level,
        "previous_status": e.from_status,
        "previous_level": e.from_level,
        "days_left": e.days_left,
        "not_after": e.not_after,
        "issuer": report.issuer,
        "subject": report.subject,
        "cert_sha256": e.cert_sha256,
        "seen_in_ct": report.seen_in_ct,
        "not_seen_in_ct": not_seen_in_ct,
        "error": e.error,
        "consecutive_failures": failures,
        "addresses": report.addresses.iter().map(|a| json!({
            "address": a.address.to_string(),
            "status": a.status,
            "error": a.error,
        })).collect::<Vec<_>>(),
        "timestamp": report.probed_at,
        "tags": tags,
    });
    Event {
        kind: EVENT_KIND.to_string(),
        group_key: format!("{EVENT_KIND}|{group}"),
        tags: tags.to_vec(),
        payload,
    }
}

fn event_message(
    e: &ProbeEvent,
    report: &HostReport,
    host: &str,
    failures: u32,
    not_seen_in_ct: bool,
) -> String {
    let was = match (e.from_level, e.from_status) {
        (Some(l), Some(s)) => format!("was {l} ({s})"),
        _ => "first probe".to_string(),
    };
    let what = if e.to_status.is_network_failure() {
        format!(
            "{}, {failures} probes in a row",
            e.error.as_deref().unwrap_or("no answer")
        )
    } else {
        let days = match e.days_left {
            Some(d) if d < 0 => format!("expired {} day(s) ago", -d),
            Some(d) => format!("expires in {d} day(s)"),
            None => "no certificate".to_string(),
        };
        let mut s = format!(
            "{days} ({}), issuer {}",
            e.not_after.as_deref().unwrap_or("-"),
            report.issuer.as_deref().unwrap_or("-")
        );
        if let Some(err) = &e.error {
            s.push_str(&format!("; {err}"));
        }
        s
    };
    let mut msg = format!("{host} is {} ({}): {what}; {was}.", e.to_level, e.to_status);
    if not_seen_in_ct {
        msg.push_str(" The served certificate was never seen in a CT log followed by ctwatch.");
    }
    msg
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;
