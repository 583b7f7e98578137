//! What changed for a host since a point in time (`ctwatch report --since`, default 24 h ago), and the notes
//! its open findings add to the report (pure).

use serde::Serialize;

use super::renewal::FindingKind;
use crate::event::rfc3339;
use crate::store::{FindingRow, ProbeResultRow};

/// One change of a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// `first_probe`, `level`, `status`, `certificate`, `finding_raised`, `finding_resolved`.
    pub kind: &'static str,
    pub text: String,
}

/// An open finding of a host ([`super::renewal`]), in a sentence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FindingNote {
    pub kind: FindingKind,
    pub text: String,
    /// RFC 3339 UTC.
    pub raised_at: String,
}

/// The sentence for a finding.
pub fn finding_text(f: &FindingRow) -> String {
    match (&f.kind, &f.finding.newer) {
        (FindingKind::StaleDeployment, Some(b)) => format!(
            "renewed but not deployed: a newer certificate (valid from {}, {}) was logged at {} in {} #{}",
            rfc3339(b.not_before),
            super::report::short_name(&b.issuer),
            rfc3339(b.logged_at),
            b.log,
            b.index
        ),
        _ => format!(
            "renewal missing: due since {}, no newer certificate in CT",
            f.finding
                .renewal_due_at
                .map_or_else(|| "-".to_string(), rfc3339)
        ),
    }
}

pub fn notes(active: &[FindingRow]) -> Vec<FindingNote> {
    active
        .iter()
        .map(|f| FindingNote {
            kind: f.kind,
            text: finding_text(f),
            raised_at: rfc3339(f.raised_at),
        })
        .collect()
}

/// The changes of one host between `before` (its latest result at `since`) and `now` (its latest result),
/// plus the findings raised or resolved since `since`.
pub fn changes(
    before: Option<&ProbeResultRow>,
    now: Option<&ProbeResultRow>,
    findings: &[FindingRow],
    since: i64,
) -> Vec<Change> {
    let mut out = Vec::new();
    if let Some(cur) = now.filter(|c| c.probed_at > since) {
        match before {
            None => out.push(Change {
                kind: "first_probe",
                text: format!("first probed: {} ({})", cur.level, cur.status),
            }),
            Some(prev) => {
                if prev.level != cur.level {
                    out.push(Change {
                        kind: "level",
                        text: format!(
                            "{} -> {} ({} -> {})",
                            prev.level, cur.level, prev.status, cur.status
                        ),
                    });
                } else if prev.status != cur.status {
                    out.push(Change {
                        kind: "status",
                        text: format!("{} -> {}", prev.status, cur.status),
                    });
                }
                if let (Some(a), Some(b)) = (&prev.cert_sha256, &cur.cert_sha256)
                    && a != b
                {
                    let days =
                        |d: Option<i64>| d.map_or_else(|| "-".to_string(), |d| d.to_string());
                    out.push(Change {
                        kind: "certificate",
                        text: format!(
                            "new certificate served (days left {} -> {})",
                            days(prev.days_left),
                            days(cur.days_left)
                        ),
                    });
                }
            }
        }
    }
    for f in findings {
        if f.raised_at >= since {
            out.push(Change {
                kind: "finding_raised",
                text: finding_text(f),
            });
        }
        if f.resolved_at.is_some_and(|t| t >= since) {
            out.push(Change {
                kind: "finding_resolved",
                text: format!("resolved: {}", f.kind.as_str()),
            });
        }
    }
    out
}
