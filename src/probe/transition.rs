//! When a new probe result is worth an event (pure). The daemon stores a [`ProbeSnapshot`] per
//! host and asks [`transition`] after every probe.
//!
//! Rules:
//! - a change of level is an event (up: `raised`, down: `lowered`);
//! - the same non-OK level with another status (critical -> expired) or another served
//!   certificate is an event (`changed`): each threshold is announced once per certificate;
//! - the same level, status and certificate is not;
//! - a network failure (dns_error, unreachable, handshake_failed) counts only from the second
//!   consecutive failed probe, so a flapping network pages nobody; until then the stored
//!   snapshot stays as it was ([`next_snapshot`]);
//! - the first probe of a host is an event only when it is not OK.

use serde::{Deserialize, Serialize};

use super::classify::{Level, Status};
use super::report::HostReport;

/// Network failures needed in a row before they count.
pub const FAILURES_BEFORE_ALERT: u32 = 2;

/// What the daemon remembers of the last probe that counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeSnapshot {
    pub level: Level,
    pub status: Status,
    pub cert_sha256: Option<String>,
}

impl ProbeSnapshot {
    pub fn of(report: &HostReport) -> Self {
        ProbeSnapshot {
            level: report.level,
            status: report.status,
            cert_sha256: report.cert_sha256.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The level went up (or a host's first probe is not OK).
    Raised,
    /// The level went down: recovered or improved.
    Lowered,
    /// Same non-OK level, but another status or another served certificate.
    Changed,
}

/// A change worth telling someone about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeEvent {
    pub domain: String,
    pub port: u16,
    pub kind: EventKind,
    pub from_level: Option<Level>,
    pub from_status: Option<Status>,
    pub to_level: Level,
    pub to_status: Status,
    pub cert_sha256: Option<String>,
    pub days_left: Option<i64>,
    pub not_after: Option<String>,
    pub error: Option<String>,
}

/// Waiting out a first network failure: neither an event nor a new snapshot.
fn suppressed(now: &HostReport, consecutive_failures: u32) -> bool {
    now.status.is_network_failure() && consecutive_failures < FAILURES_BEFORE_ALERT
}

/// Decides whether `now` is an event, given the stored snapshot.
///
/// `consecutive_failures` counts the probes in a row, this one included, whose status was a
/// network failure (0 when `now` is not one).
pub fn transition(
    prev: Option<&ProbeSnapshot>,
    now: &HostReport,
    consecutive_failures: u32,
) -> Option<ProbeEvent> {
    if suppressed(now, consecutive_failures) {
        return None;
    }
    let kind = match prev {
        None if now.level == Level::Ok => return None,
        None => EventKind::Raised,
        Some(p) if now.level > p.level => EventKind::Raised,
        Some(p) if now.level < p.level => EventKind::Lowered,
        Some(_) if now.level == Level::Ok => return None,
        Some(p) if p.status.is_network_failure() && now.status.is_network_failure() => return None,
        Some(p) if p.status != now.status => EventKind::Changed,
        Some(p)
            if p.cert_sha256.is_some()
                && now.cert_sha256.is_some()
                && p.cert_sha256 != now.cert_sha256 =>
        {
            EventKind::Changed
        }
        Some(_) => return None,
    };
    Some(ProbeEvent {
        domain: now.domain.clone(),
        port: now.port,
        kind,
        from_level: prev.map(|p| p.level),
        from_status: prev.map(|p| p.status),
        to_level: now.level,
        to_status: now.status,
        cert_sha256: now.cert_sha256.clone(),
        days_left: now.days_left,
        not_after: now.not_after.clone(),
        error: now.error.clone(),
    })
}

/// The snapshot to store after `now`; `None` means keep the previous one (a first network
/// failure is waited out, so the next probe is still compared with the last good state).
pub fn next_snapshot(now: &HostReport, consecutive_failures: u32) -> Option<ProbeSnapshot> {
    (!suppressed(now, consecutive_failures)).then(|| ProbeSnapshot::of(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(status: Status, cert: Option<&str>) -> HostReport {
        HostReport {
            domain: "example.com".into(),
            port: 443,
            status,
            level: status.level(),
            days_left: cert.map(|_| 10),
            not_before: None,
            not_after: None,
            issuer: None,
            subject: None,
            sans: vec![],
            cert_sha256: cert.map(String::from),
            tbs_sha256: None,
            seen_in_ct: None,
            problems: vec![],
            error: None,
            addresses: vec![],
            probed_at: String::new(),
            duration_ms: 0,
        }
    }

    fn snap(status: Status, cert: Option<&str>) -> ProbeSnapshot {
        ProbeSnapshot::of(&report(status, cert))
    }

    /// Runs a sequence of probes through transition + next_snapshot like the daemon would and
    /// returns the event kinds emitted.
    fn run(seq: &[(Status, Option<&str>)]) -> Vec<Option<(EventKind, Status)>> {
        let mut stored: Option<ProbeSnapshot> = None;
        let mut failures = 0;
        let mut out = Vec::new();
        for &(status, cert) in seq {
            let now = report(status, cert);
            failures = if status.is_network_failure() {
                failures + 1
            } else {
                0
            };
            out.push(transition(stored.as_ref(), &now, failures).map(|e| (e.kind, e.to_status)));
            if let Some(s) = next_snapshot(&now, failures) {
                stored = Some(s);
            }
        }
        out
    }

    use EventKind::*;
    use Status::*;

    /// (case, stored snapshot, probe result, consecutive failures, expected event)
    type Case = (
        &'static str,
        Option<(Status, Option<&'static str>)>,
        (Status, Option<&'static str>),
        u32,
        Option<EventKind>,
    );

    #[test]
    fn table() {
        let a = Some("a");
        #[rustfmt::skip]
        let cases: &[Case] = &[
            ("first probe ok", None, (Ok, a), 0, None),
            ("first probe expired", None, (Expired, a), 0, Some(Raised)),
            ("first unreachable once", None, (Unreachable, None), 1, None),
            ("first unreachable twice", None, (Unreachable, None), 2, Some(Raised)),
            ("ok -> warning", Some((Ok, a)), (Warning, a), 0, Some(Raised)),
            ("warning -> warning", Some((Warning, a)), (Warning, a), 0, None),
            ("warning -> critical", Some((Warning, a)), (Critical, a), 0, Some(Raised)),
            ("critical -> expired", Some((Critical, a)), (Expired, a), 0, Some(Changed)),
            ("expired -> renewed", Some((Expired, a)), (Ok, Some("b")), 0, Some(Lowered)),
            ("renewed while ok", Some((Ok, a)), (Ok, Some("b")), 0, None),
            ("new cert, still warning", Some((Warning, a)), (Warning, Some("b")), 0, Some(Changed)),
            ("ok -> unreachable once", Some((Ok, a)), (Unreachable, None), 1, None),
            ("ok -> unreachable twice", Some((Ok, a)), (Unreachable, None), 2, Some(Raised)),
            ("down, other failure", Some((Unreachable, None)), (HandshakeFailed, None), 3, None),
            ("down -> up", Some((Unreachable, None)), (Ok, a), 0, Some(Lowered)),
            ("expired -> down twice", Some((Expired, a)), (Unreachable, None), 2, Some(Changed)),
        ];
        for &(name, prev, (status, cert), failures, want) in cases {
            let prev = prev.map(|(s, c)| snap(s, c));
            let got = transition(prev.as_ref(), &report(status, cert), failures).map(|e| e.kind);
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn a_single_network_failure_is_waited_out() {
        let got = run(&[(Ok, Some("a")), (Unreachable, None), (Ok, Some("a"))]);
        assert_eq!(got, vec![None, None, None]);
    }

    #[test]
    fn two_failures_alert_once_and_recovery_is_announced() {
        let got = run(&[
            (Ok, Some("a")),
            (Unreachable, None),
            (DnsError, None),
            (Unreachable, None),
            (Ok, Some("a")),
        ]);
        assert_eq!(
            got,
            vec![
                None,
                None,
                Some((Raised, DnsError)),
                None,
                Some((Lowered, Ok))
            ]
        );
    }

    #[test]
    fn each_threshold_once_per_certificate() {
        let got = run(&[
            (Ok, Some("a")),
            (Warning, Some("a")),
            (Warning, Some("a")),
            (Critical, Some("a")),
            (Critical, Some("a")),
            (Expired, Some("a")),
            (Expired, Some("a")),
            (Ok, Some("b")),
        ]);
        assert_eq!(
            got,
            vec![
                None,
                Some((Raised, Warning)),
                None,
                Some((Raised, Critical)),
                None,
                Some((Changed, Expired)),
                None,
                Some((Lowered, Ok)),
            ]
        );
    }

    #[test]
    fn event_carries_the_new_state() {
        let mut now = report(Expired, Some("abc"));
        now.error = Some("certificate expired".into());
        let e = transition(Some(&snap(Critical, Some("abc"))), &now, 0).unwrap();
        assert_eq!(e.from_level, Some(Level::Critical));
        assert_eq!(e.from_status, Some(Critical));
        assert_eq!((e.to_level, e.to_status), (Level::Critical, Expired));
        assert_eq!(e.cert_sha256.as_deref(), Some("abc"));
        assert_eq!(e.error.as_deref(), Some("certificate expired"));
        assert_eq!(e.days_left, Some(10));
    }
}
