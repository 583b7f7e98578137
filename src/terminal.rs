//! What a person at a terminal sees at the end of `run --once`: one line when it worked, one diagnosis when
//! no log could be reached (the per-log detail with `-v`), and whether colours are welcome on stderr.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU8, Ordering};

static VERBOSITY: AtomicU8 = AtomicU8::new(0);

/// Record `-v` count (main, once).
pub fn set_verbosity(v: u8) {
    VERBOSITY.store(v, Ordering::Relaxed);
}

/// How many `-v` were given.
pub fn verbosity() -> u8 {
    VERBOSITY.load(Ordering::Relaxed)
}

/// ANSI colours on stderr: only on a terminal, and never when `NO_COLOR` is set (https://no-color.org).
pub fn colours_on_stderr() -> bool {
    colours_wanted(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    )
}

/// `NO_COLOR` set to any non-empty value turns colours off.
pub fn colours_wanted(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Why logs could not be reached, from their error messages: the common cause, in words a person can act on.
pub fn diagnose(errors: &[&str]) -> Option<&'static str> {
    let all = |pat: &[&str]| {
        !errors.is_empty()
            && errors
                .iter()
                .all(|e| pat.iter().any(|p| e.to_lowercase().contains(p)))
    };
    if all(&[
        "dns error",
        "failed to lookup",
        "name or service not known",
        "no such host",
    ]) {
        Some("DNS lookups fail (check network or proxy)")
    } else if all(&["connection refused"]) {
        Some("connections are refused (check firewall or proxy)")
    } else if all(&["timed out", "timeout", "deadline"]) {
        Some("requests time out (check network, firewall or proxy)")
    } else if all(&["certificate", "tls", "handshake"]) {
        Some("TLS handshakes fail (a proxy intercepting TLS?)")
    } else if all(&["error sending request", "connect", "network"]) {
        Some("the network fails (see the errors with -v)")
    } else {
        None
    }
}

/// The end-of-run lines for logs that did not catch up: one summary line when none could be reached (with
/// each log's error only at `-v`), otherwise one line per failed log.
pub fn failed_logs_report(total: usize, failed: &[(String, String)], verbose: bool) -> Vec<String> {
    if failed.is_empty() {
        return Vec::new();
    }
    let mut lines = Vec::new();
    let errors: Vec<&str> = failed.iter().map(|(_, e)| e.as_str()).collect();
    if let (true, Some(cause)) = (failed.len() == total, diagnose(&errors)) {
        lines.push(format!("ctwatch: 0 of {total} logs reachable: {cause}"));
        if !verbose {
            return lines;
        }
    }
    for (log, err) in failed {
        lines.push(format!("ctwatch: log {log} did not catch up: {err}"));
    }
    lines
}

/// What a successful `run --once` did, in one line (printed on a terminal).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OnceFigures {
    pub logs: usize,
    pub entries: u64,
    /// Events queued by this run, by kind.
    pub events: BTreeMap<String, u64>,
    /// Deliveries that went out during this run (stdout included).
    pub sent: u64,
}

impl std::fmt::Display for OnceFigures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let certs: u64 = ["new_certificate", "unauthorized_issuer", "lookalike"]
            .iter()
            .filter_map(|k| self.events.get(*k))
            .sum();
        write!(
            f,
            "ctwatch: {} log{} caught up, {} entries verified, {certs} matching certificate{}",
            self.logs,
            if self.logs == 1 { "" } else { "s" },
            self.entries,
            if certs == 1 { "" } else { "s" },
        )?;
        let others: Vec<String> = self
            .events
            .iter()
            .filter(|(k, _)| {
                !["new_certificate", "unauthorized_issuer", "lookalike"].contains(&k.as_str())
            })
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        if !others.is_empty() {
            write!(f, " ({} event(s) too)", others.join(", "))?;
        }
        write!(f, ", {} notification(s) sent", self.sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_and_non_terminals_get_plain_text() {
        assert!(colours_wanted(true, None));
        assert!(!colours_wanted(false, None));
        assert!(!colours_wanted(true, Some("1".as_ref())));
        assert!(colours_wanted(true, Some("".as_ref())));
    }

    #[test]
    fn nothing_reachable_is_one_line_with_the_cause() {
        let failed: Vec<(String, String)> = (0..71)
            .map(|i| {
                (
                    format!("https://ct{i}.example/"),
                    "error sending request: client error (Connect): dns error: failed to lookup address \
                     information: Temporary failure in name resolution"
                        .to_string(),
                )
            })
            .collect();
        let lines = failed_logs_report(71, &failed, false);
        assert_eq!(
            lines,
            ["ctwatch: 0 of 71 logs reachable: DNS lookups fail (check network or proxy)"]
        );
        assert_eq!(failed_logs_report(71, &failed, true).len(), 72);
        // Some reachable: each failed log is named.
        assert_eq!(failed_logs_report(80, &failed, false).len(), 71);
        let refused = [(
            "u".to_string(),
            "tcp connect error: Connection refused (os error 111)".to_string(),
        )];
        assert!(failed_logs_report(1, &refused, false)[0].contains("connections are refused"));
        // Not a network problem: the log and its error, not a guess.
        let bad = [(
            "u".to_string(),
            "--start-at 5000 is beyond the head of u".to_string(),
        )];
        assert_eq!(
            failed_logs_report(1, &bad, false),
            ["ctwatch: log u did not catch up: --start-at 5000 is beyond the head of u"]
        );
    }

    #[test]
    fn the_once_line() {
        let f = OnceFigures {
            logs: 2,
            entries: 1024,
            events: [
                ("new_certificate".to_string(), 3),
                ("health".to_string(), 1),
            ]
            .into(),
            sent: 4,
        };
        assert_eq!(
            f.to_string(),
            "ctwatch: 2 logs caught up, 1024 entries verified, 3 matching certificates (1 health event(s) too), \
             4 notification(s) sent"
        );
    }
}
