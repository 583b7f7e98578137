//! Status classification: chain facts + clock + thresholds -> status and level (pure).
//!
//! Nothing here touches the network or the clock; the prober gathers [`ChainFacts`] and passes
//! `now`, so every rule below is covered by table tests.

use serde::{Deserialize, Serialize};

const SECS_PER_DAY: i64 = 86_400;

/// Result of one address (or of a host: the worst of its addresses).
///
/// `Ord` follows [`Status::severity`] (worse is greater), not the declaration order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Warning,
    Critical,
    Expired,
    NotYetValid,
    Untrusted,
    HostnameMismatch,
    HandshakeFailed,
    Unreachable,
    DnsError,
    /// Refused before connecting: the address is internal (loopback, private, metadata...) and the caller may
    /// not reach it (`POST /api/v1/bulk-check`).
    BlockedAddress,
}

/// What a script or pager acts on; `Ord` is OK < WARNING < CRITICAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Level {
    Ok,
    Warning,
    Critical,
}

impl Level {
    /// Process exit code a Nagios-style check returns for this level.
    pub fn exit_code(self) -> u8 {
        match self {
            Level::Ok => 0,
            Level::Warning => 1,
            Level::Critical => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "OK",
            Level::Warning => "WARNING",
            Level::Critical => "CRITICAL",
        }
    }
}

impl Status {
    pub fn level(self) -> Level {
        match self {
            Status::Ok => Level::Ok,
            Status::Warning => Level::Warning,
            _ => Level::Critical,
        }
    }

    /// Network-side failure: nothing is known about the certificate, and the failure may be
    /// transient, so alerting waits for a second consecutive failure.
    pub fn is_network_failure(self) -> bool {
        matches!(
            self,
            Status::DnsError | Status::Unreachable | Status::HandshakeFailed
        )
    }

    /// Rank used to pick a host's status from its addresses (higher = worse).
    ///
    /// The level dominates. Within CRITICAL, a certificate problem outranks a network problem:
    /// it is certain and persistent, while a network failure may be a flap that alerting
    /// deliberately waits out; a host with one expired and one unreachable address must not hide
    /// behind the flap rule.
    pub fn severity(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::BlockedAddress => 2,
            Status::DnsError => 2,
            Status::Unreachable => 3,
            Status::HandshakeFailed => 4,
            Status::Critical => 5,
            Status::HostnameMismatch => 6,
            Status::Untrusted => 7,
            Status::NotYetValid => 8,
            Status::Expired => 9,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Critical => "critical",
            Status::Expired => "expired",
            Status::NotYetValid => "not_yet_valid",
            Status::Untrusted => "untrusted",
            Status::HostnameMismatch => "hostname_mismatch",
            Status::HandshakeFailed => "handshake_failed",
            Status::Unreachable => "unreachable",
            Status::DnsError => "dns_error",
            Status::BlockedAddress => "blocked_address",
        }
    }
}

impl PartialOrd for Status {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Status {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.severity().cmp(&other.severity())
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When a valid certificate starts to count as WARNING or CRITICAL: lifetime-aware by default.
///
/// The rule, for a certificate whose lifetime (notAfter - notBefore) is `L` days:
///
/// ```text
/// warning  when days left <= min(warning_days,  max(warning_fraction  × L, warning_floor_days))
/// critical when days left <= min(critical_days, max(critical_fraction × L, critical_floor_days))
/// ```
///
/// The fraction makes the threshold follow the lifetime (ACME clients renew with about a third of the
/// lifetime left, so 0.2 only fires once a renewal is overdue); the day cap keeps long certificates from
/// warning months ahead; the day floor leaves a human at least that long to react on very short
/// certificates. With the defaults (21 d / 7 d caps, 0.2 / 0.1 fractions, 2 d / 1 d floors):
///
/// | lifetime | warning at | critical at |
/// |---|---|---|
/// | 6 d (Let's Encrypt short-lived) | 2 d left (floor) | 1 d left (floor) |
/// | 45 d | 9 d | 4.5 d |
/// | 90 d | 18 d | 7 d (cap) |
/// | 200 d | 21 d (cap) | 7 d (cap) |
/// | 398 d | 21 d (cap) | 7 d (cap) |
///
/// Values given explicitly are honoured as given ([`Thresholds::from_flags`]): `--warning-days 30` alone means
/// `days left <= 30` whatever the lifetime (fraction 1.0, no floor; a certificate whose whole lifetime is
/// shorter is WARNING throughout); a fraction alone is used alone; both: whichever leaves fewer days. The day
/// floors only belong to the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Cap of the WARNING threshold, days. Default 21, range 0..=3650.
    pub warning_days: u32,
    /// Cap of the CRITICAL threshold, days. Default 7, range 0..=warning_days.
    pub critical_days: u32,
    /// WARNING when at most this fraction of the lifetime is left. Default 0.2, range (0, 1].
    pub warning_fraction: f64,
    /// CRITICAL when at most this fraction of the lifetime is left. Default 0.1, range (0, 1].
    pub critical_fraction: f64,
    /// The WARNING threshold is never below this many days (unless the cap is). Default 2, range 0..=3650.
    #[serde(default)]
    pub warning_floor_days: u32,
    /// The CRITICAL threshold is never below this many days (unless the cap is). Default 1, range 0..=3650.
    #[serde(default)]
    pub critical_floor_days: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            warning_days: 21,
            critical_days: 7,
            warning_fraction: 0.2,
            critical_fraction: 0.1,
            warning_floor_days: 2,
            critical_floor_days: 1,
        }
    }
}

/// Threshold flags as the user gave them: `None` = not given (the default applies).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ThresholdFlags {
    pub warning_days: Option<u32>,
    pub critical_days: Option<u32>,
    pub warning_fraction: Option<f64>,
    pub critical_fraction: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ThresholdError {
    #[error("critical_days ({critical}) must not exceed warning_days ({warning})")]
    CriticalAfterWarning { critical: u32, warning: u32 },
    #[error("{name} {value} is out of range 0..=3650")]
    DaysOutOfRange { name: &'static str, value: u32 },
    #[error("{name} {value} is out of range (0, 1]")]
    FractionOutOfRange { name: &'static str, value: f64 },
}

impl Thresholds {
    /// Thresholds from flags (or config keys), per threshold:
    /// - neither days nor fraction given: the defaults, lifetime-aware with the day floor;
    /// - days alone: exactly that many days (fraction 1.0, no floor);
    /// - fraction alone: that fraction of the lifetime alone (no day cap, no floor);
    /// - both: whichever leaves fewer days, `min(days, fraction × lifetime)` (no floor).
    ///
    /// A critical day cap not given never exceeds the warning one (`--warning-days 5` alone keeps a valid
    /// critical threshold of 5 days at most).
    pub fn from_flags(flags: ThresholdFlags) -> Thresholds {
        let d = Thresholds::default();
        let one =
            |days: Option<u32>, fraction: Option<f64>, def: (u32, f64, u32)| match (days, fraction)
            {
                (None, None) => def,
                (Some(days), None) => (days, 1.0, 0),
                (None, Some(f)) => (3650, f, 0),
                (Some(days), Some(f)) => (days, f, 0),
            };
        let (warning_days, warning_fraction, warning_floor_days) = one(
            flags.warning_days,
            flags.warning_fraction,
            (d.warning_days, d.warning_fraction, d.warning_floor_days),
        );
        let (mut critical_days, critical_fraction, critical_floor_days) = one(
            flags.critical_days,
            flags.critical_fraction,
            (d.critical_days, d.critical_fraction, d.critical_floor_days),
        );
        if flags.critical_days.is_none() {
            critical_days = critical_days.min(warning_days);
        }
        Thresholds {
            warning_days,
            critical_days,
            warning_fraction,
            critical_fraction,
            warning_floor_days,
            critical_floor_days,
        }
    }

    pub fn validate(&self) -> Result<(), ThresholdError> {
        for (name, value) in [
            ("warning_days", self.warning_days),
            ("warning_floor_days", self.warning_floor_days),
            ("critical_floor_days", self.critical_floor_days),
        ] {
            if value > 3650 {
                return Err(ThresholdError::DaysOutOfRange { name, value });
            }
        }
        if self.critical_days > self.warning_days {
            return Err(ThresholdError::CriticalAfterWarning {
                critical: self.critical_days,
                warning: self.warning_days,
            });
        }
        for (name, value) in [
            ("warning_fraction", self.warning_fraction),
            ("critical_fraction", self.critical_fraction),
        ] {
            if !(value > 0.0 && value <= 1.0) {
                return Err(ThresholdError::FractionOutOfRange { name, value });
            }
        }
        Ok(())
    }

    /// Seconds left at or below which the certificate is (warning, critical).
    pub fn effective_secs(&self, lifetime_secs: i64) -> (i64, i64) {
        let lifetime = lifetime_secs.max(0) as f64;
        let pick = |days: u32, fraction: f64, floor: u32| {
            let by_fraction = (lifetime * fraction).round() as i64;
            (i64::from(days) * SECS_PER_DAY).min(by_fraction.max(i64::from(floor) * SECS_PER_DAY))
        };
        (
            pick(
                self.warning_days,
                self.warning_fraction,
                self.warning_floor_days,
            ),
            pick(
                self.critical_days,
                self.critical_fraction,
                self.critical_floor_days,
            ),
        )
    }
}

/// Whether the served chain reaches a trust anchor, judged inside the leaf's validity window so
/// that "expired" and "untrusted" are reported independently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Trust {
    Trusted,
    Untrusted { reason: String },
}

/// What the classifier needs to know about a served chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainFacts {
    /// Leaf notBefore, Unix seconds.
    pub not_before: i64,
    /// Leaf notAfter, Unix seconds (inclusive, RFC 5280).
    pub not_after: i64,
    pub trust: Trust,
    /// The leaf covers the name we connected to (SNI).
    pub name_matches: bool,
}

/// The classifier's answer for one served chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub status: Status,
    /// Every problem found, worst first; empty when the status is `ok`.
    pub problems: Vec<Status>,
    /// Whole days until notAfter, rounded down; negative once expired.
    pub days_left: i64,
}

/// Classifies a served chain at `now` (Unix seconds).
pub fn classify(facts: &ChainFacts, now: i64, thresholds: &Thresholds) -> Verdict {
    let remaining = facts.not_after - now;
    let mut problems = Vec::new();
    if remaining < 0 {
        problems.push(Status::Expired);
    }
    if now < facts.not_before {
        problems.push(Status::NotYetValid);
    }
    if let Trust::Untrusted { .. } = facts.trust {
        problems.push(Status::Untrusted);
    }
    if !facts.name_matches {
        problems.push(Status::HostnameMismatch);
    }
    if remaining >= 0 {
        let (warning, critical) = thresholds.effective_secs(facts.not_after - facts.not_before);
        if remaining <= critical {
            problems.push(Status::Critical);
        } else if remaining <= warning {
            problems.push(Status::Warning);
        }
    }
    problems.sort_by(|a, b| b.cmp(a));
    Verdict {
        status: problems.first().copied().unwrap_or(Status::Ok),
        problems,
        days_left: remaining.div_euclid(SECS_PER_DAY),
    }
}

/// The worst of several statuses; `None` for an empty input.
pub fn worst<I: IntoIterator<Item = Status>>(statuses: I) -> Option<Status> {
    statuses.into_iter().max()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = SECS_PER_DAY;
    const NOW: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

    fn facts(before_days: i64, after_days: i64) -> ChainFacts {
        ChainFacts {
            not_before: NOW - before_days * DAY,
            not_after: NOW + after_days * DAY,
            trust: Trust::Trusted,
            name_matches: true,
        }
    }

    fn untrusted(mut f: ChainFacts) -> ChainFacts {
        f.trust = Trust::Untrusted {
            reason: "unknown issuer".into(),
        };
        f
    }

    fn mismatched(mut f: ChainFacts) -> ChainFacts {
        f.name_matches = false;
        f
    }

    #[test]
    fn table() {
        use Status::*;
        let t = Thresholds::default();
        // (case, facts, expected status, expected problems, expected days_left)
        #[rustfmt::skip]
        let cases: Vec<(&str, ChainFacts, Status, Vec<Status>, i64)> = vec![
            ("398-day cert, 200 left", facts(198, 200), Ok, vec![], 200),
            ("398-day cert, 22 left", facts(376, 22), Ok, vec![], 22),
            ("398-day cert, 21 left", facts(377, 21), Warning, vec![Warning], 21),
            ("398-day cert, 8 left", facts(390, 8), Warning, vec![Warning], 8),
            ("398-day cert, 7 left", facts(391, 7), Critical, vec![Critical], 7),
            ("90-day cert, 19 left: 0.2*90=18 d", facts(71, 19), Ok, vec![], 19),
            ("90-day cert, 18 left", facts(72, 18), Warning, vec![Warning], 18),
            ("90-day cert, 5 left", facts(85, 5), Critical, vec![Critical], 5),
            ("47-day cert, 10 left: 9.4 d", facts(37, 10), Ok, vec![], 10),
            ("47-day cert, 9 left", facts(38, 9), Warning, vec![Warning], 9),
            ("47-day cert, 5 left: 4.7 d", facts(42, 5), Warning, vec![Warning], 5),
            ("47-day cert, 4 left", facts(43, 4), Critical, vec![Critical], 4),
            ("6-day cert, 5 left", facts(1, 5), Ok, vec![], 5),
            ("6-day cert, 3 left", facts(3, 3), Ok, vec![], 3),
            ("6-day cert, 2 left: floor 2 d", facts(4, 2), Warning, vec![Warning], 2),
            ("6-day cert, 1 left: floor 1 d", facts(5, 1), Critical, vec![Critical], 1),
            ("expires right now", facts(90, 0), Critical, vec![Critical], 0),
            ("expired 1 day ago", facts(91, -1), Expired, vec![Expired], -1),
            ("not yet valid", facts(-2, 88), NotYetValid, vec![NotYetValid], 88),
            ("self-signed", untrusted(facts(10, 80)), Untrusted, vec![Untrusted], 80),
            ("wrong name", mismatched(facts(10, 80)), HostnameMismatch, vec![HostnameMismatch], 80),
            ("everything wrong", mismatched(untrusted(facts(100, -10))), Expired,
                vec![Expired, Untrusted, HostnameMismatch], -10),
            ("untrusted and expiring", untrusted(facts(85, 5)), Untrusted,
                vec![Untrusted, Critical], 5),
        ];
        for (name, f, status, problems, days) in cases {
            let v = classify(&f, NOW, &t);
            assert_eq!(v.status, status, "{name}");
            assert_eq!(v.problems, problems, "{name}");
            assert_eq!(v.days_left, days, "{name}");
        }
    }

    #[test]
    fn days_left_rounds_down() {
        let mut f = facts(85, 5);
        f.not_after -= 1; // 4 days 23:59:59
        assert_eq!(classify(&f, NOW, &Thresholds::default()).days_left, 4);
        f.not_after = NOW - 1; // one second past notAfter
        let v = classify(&f, NOW, &Thresholds::default());
        assert_eq!((v.status, v.days_left), (Status::Expired, -1));
    }

    #[test]
    fn fraction_one_means_days_only() {
        let t = Thresholds {
            warning_fraction: 1.0,
            critical_fraction: 1.0,
            ..Thresholds::default()
        };
        assert_eq!(classify(&facts(1, 5), NOW, &t).status, Status::Critical);
        assert_eq!(classify(&facts(30, 20), NOW, &t).status, Status::Warning);
    }

    /// The table of examples in the documentation of [`Thresholds`].
    #[test]
    fn documented_defaults_table() {
        let t = Thresholds::default();
        let days = |secs: i64| secs as f64 / DAY as f64;
        // (lifetime days, warning at, critical at)
        let rows = [
            (6, 2.0, 1.0),
            (45, 9.0, 4.5),
            (90, 18.0, 7.0),
            (200, 21.0, 7.0),
            (398, 21.0, 7.0),
        ];
        for (lifetime, warning, critical) in rows {
            let (w, c) = t.effective_secs(lifetime * DAY);
            assert_eq!((days(w), days(c)), (warning, critical), "{lifetime}-day");
        }
    }

    #[test]
    fn explicit_days_are_plain_day_counts() {
        let t = Thresholds::from_flags(ThresholdFlags {
            warning_days: Some(30),
            ..ThresholdFlags::default()
        });
        assert_eq!(t.validate(), Ok(()));
        // A 90-day certificate with 25 days left: the default rule says OK (0.2 × 90 = 18 d), the user
        // asked for 30 days.
        assert_eq!(classify(&facts(65, 25), NOW, &t).status, Status::Warning);
        assert_eq!(
            classify(&facts(65, 25), NOW, &Thresholds::default()).status,
            Status::Ok
        );
        // The critical threshold was not given: still lifetime-aware (a 6-day cert, 2 days left).
        assert_eq!(classify(&facts(4, 2), NOW, &t).status, Status::Warning);
        // Both days and fraction given: whichever leaves fewer days (30 d vs 18 d).
        let t = Thresholds::from_flags(ThresholdFlags {
            warning_days: Some(30),
            warning_fraction: Some(0.2),
            ..ThresholdFlags::default()
        });
        assert_eq!(classify(&facts(65, 25), NOW, &t).status, Status::Ok);
        assert_eq!(classify(&facts(72, 18), NOW, &t).status, Status::Warning);
        // A fraction alone is used alone: no 21-day cap (398-day certificate, 60 days left, 0.2 × 398 = 79.6).
        let t = Thresholds::from_flags(ThresholdFlags {
            warning_fraction: Some(0.2),
            ..ThresholdFlags::default()
        });
        assert_eq!(classify(&facts(338, 60), NOW, &t).status, Status::Warning);
        // A default critical cap never exceeds an explicit warning one.
        let t = Thresholds::from_flags(ThresholdFlags {
            warning_days: Some(5),
            ..ThresholdFlags::default()
        });
        assert_eq!((t.warning_days, t.critical_days), (5, 5));
        assert_eq!(t.validate(), Ok(()));
        assert_eq!(
            Thresholds::from_flags(ThresholdFlags::default()),
            Thresholds::default()
        );
        let t = Thresholds::from_flags(ThresholdFlags {
            critical_days: Some(3),
            ..ThresholdFlags::default()
        });
        assert_eq!((t.critical_fraction, t.critical_floor_days), (1.0, 0));
        assert_eq!(t.warning_fraction, 0.2);
    }

    #[test]
    fn levels_and_exit_codes() {
        assert_eq!(Status::Ok.level().exit_code(), 0);
        assert_eq!(Status::Warning.level().exit_code(), 1);
        for s in [
            Status::Critical,
            Status::Expired,
            Status::NotYetValid,
            Status::Untrusted,
            Status::HostnameMismatch,
            Status::HandshakeFailed,
            Status::Unreachable,
            Status::DnsError,
        ] {
            assert_eq!(s.level(), Level::Critical, "{s}");
        }
    }

    #[test]
    fn worst_prefers_certificate_problems_over_network() {
        use Status::*;
        assert_eq!(worst([Ok, Warning]), Some(Warning));
        assert_eq!(worst([Warning, Unreachable]), Some(Unreachable));
        assert_eq!(worst([Unreachable, Expired, Ok]), Some(Expired));
        assert_eq!(worst([HandshakeFailed, Critical]), Some(Critical));
        assert_eq!(worst([]), None);
    }

    #[test]
    fn threshold_validation_names_the_bad_value() {
        let bad = Thresholds {
            critical_days: 30,
            ..Thresholds::default()
        };
        assert_eq!(
            bad.validate(),
            Err(ThresholdError::CriticalAfterWarning {
                critical: 30,
                warning: 21
            })
        );
        let bad = Thresholds {
            warning_fraction: 0.0,
            ..Thresholds::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(ThresholdError::FractionOutOfRange {
                name: "warning_fraction",
                ..
            })
        ));
        assert_eq!(Thresholds::default().validate(), Ok(()));
    }

    #[test]
    fn serde_names() {
        assert_eq!(
            serde_json::to_string(&Status::NotYetValid).unwrap(),
            "\"not_yet_valid\""
        );
        assert_eq!(
            serde_json::to_string(&Level::Critical).unwrap(),
            "\"CRITICAL\""
        );
    }
}
