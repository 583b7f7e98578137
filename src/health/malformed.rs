//! Malformed entries made visible: a log whose leaves do not decode is either broken or hostile, and the entries
//! are stored (with their bytes) rather than reported, so someone must hear about it.
//!
//! `/health` lists a log with malformed entries found in the last [`MALFORMED_WARNING_SECS`] as a warning (the
//! status stays 200: the monitor itself works); the alert monitor sends one `health` notice per check in which a
//! log's count grew.

use std::collections::HashMap;

use super::rules::{Alert, AlertState, LogSample, Problem};

/// How long after its last malformed entry a log is listed as a warning by `/health`. Seconds (one day).
pub const MALFORMED_WARNING_SECS: i64 = 86_400;

/// The check name of malformed-entry warnings and alerts.
pub const CHECK: &str = "malformed_entries";

/// Logs with malformed entries found by this process in the last [`MALFORMED_WARNING_SECS`].
pub fn warnings(now: i64, logs: &[LogSample]) -> Vec<Problem> {
    logs.iter()
        .filter(|l| l.malformed > 0 && now - l.last_malformed <= MALFORMED_WARNING_SECS)
        .map(|l| Problem {
            check: CHECK,
            subject: l.url.clone(),
            message: format!(
                "{} served {} malformed entr{} since ctwatch started (stored with their bytes, not reported; \
                 see `ctwatch logs`)",
                l.url,
                l.malformed,
                if l.malformed == 1 { "y" } else { "ies" }
            ),
            since: Some(l.last_malformed),
        })
        .collect()
}

/// A notice per log whose malformed count grew since the previous check; `seen` remembers the counts.
pub fn new_malformed_alerts(
    now: i64,
    logs: &[LogSample],
    seen: &mut HashMap<String, u64>,
) -> Vec<Alert> {
    let mut out = Vec::new();
    for l in logs {
        let prev = seen.insert(l.url.clone(), l.malformed).unwrap_or(0);
        if l.malformed > prev {
            out.push(Alert {
                state: AlertState::Notice,
                problem: Problem {
                    check: CHECK,
                    subject: l.url.clone(),
                    message: format!(
                        "{} served {} new malformed entr{} (leaves that do not decode; stored with their bytes, \
                         not reported; see `ctwatch logs`)",
                        l.url,
                        l.malformed - prev,
                        if l.malformed - prev == 1 { "y" } else { "ies" }
                    ),
                    since: Some(now),
                },
            });
        }
    }
    let followed: std::collections::HashSet<&str> = logs.iter().map(|l| l.url.as_str()).collect();
    seen.retain(|url, _| followed.contains(url.as_str()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(malformed: u64, last: i64) -> LogSample {
        LogSample {
            url: "https://a/".into(),
            malformed,
            last_malformed: last,
            ..Default::default()
        }
    }

    #[test]
    fn a_log_with_recent_malformed_entries_is_a_warning_for_a_day() {
        assert!(warnings(1000, &[sample(0, 0)]).is_empty());
        let w = warnings(1000, &[sample(2, 900)]);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].check, "malformed_entries");
        assert!(
            w[0].message.contains("2 malformed entries"),
            "{}",
            w[0].message
        );
        assert!(warnings(900 + MALFORMED_WARNING_SECS + 1, &[sample(2, 900)]).is_empty());
    }

    #[test]
    fn one_notice_per_growth() {
        let mut seen = HashMap::new();
        assert!(new_malformed_alerts(10, &[sample(0, 0)], &mut seen).is_empty());
        let a = new_malformed_alerts(20, &[sample(3, 15)], &mut seen);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].state, AlertState::Notice);
        assert!(a[0].problem.message.contains("3 new malformed entries"));
        assert!(new_malformed_alerts(30, &[sample(3, 15)], &mut seen).is_empty());
        let a = new_malformed_alerts(40, &[sample(4, 35)], &mut seen);
        assert!(a[0].problem.message.contains("1 new malformed entry"));
    }
}
