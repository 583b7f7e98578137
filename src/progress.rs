//! Progress of long catch-ups: bars per log and in total (done, rate, ETA) when stderr is a terminal, plain
//! `tracing` lines every 30 s otherwise (journald, files, CI). Logs that are merely a few polls behind are not
//! shown: only a backlog of at least [`CATCH_UP_MIN`] entries counts as catching up.

use std::collections::{BTreeMap, VecDeque};
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::health::rules::human_secs;
use crate::stats::Registry;

/// A backlog from which a log counts as catching up.
pub const CATCH_UP_MIN: u64 = 1000;
/// Interval of the plain log lines.
pub const LINE_INTERVAL: Duration = Duration::from_secs(30);
/// Rates are averaged over this much recent history.
const RATE_WINDOW: Duration = Duration::from_secs(30);

/// How to show progress.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProgressMode {
    /// Bars when stderr is a terminal, lines otherwise.
    #[default]
    Auto,
    Bars,
    Lines,
    Off,
}

/// Entries/s of a monotonic counter over a sliding window (pure: the caller passes the time).
#[derive(Debug, Default)]
pub struct RateWindow {
    samples: VecDeque<(Instant, u64)>,
}

impl RateWindow {
    pub fn push(&mut self, at: Instant, value: u64) {
        self.samples.push_back((at, value));
        while self.samples.len() > 2
            && at.saturating_duration_since(self.samples[1].0) >= RATE_WINDOW
        {
            self.samples.pop_front();
        }
    }

    /// Per second over the window; None before two samples a moment apart.
    pub fn rate(&self) -> Option<f64> {
        let (t0, v0) = *self.samples.front()?;
        let (t1, v1) = *self.samples.back()?;
        let secs = t1.saturating_duration_since(t0).as_secs_f64();
        (secs > 0.0).then(|| v1.saturating_sub(v0) as f64 / secs)
    }
}

/// One log's (or the total's) progress.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    pub verified: u64,
    pub head: u64,
    pub backlog: u64,
    /// Entries processed per second, when known.
    pub rate: Option<f64>,
}

impl Progress {
    /// Seconds until caught up at the current rate.
    pub fn eta_secs(&self) -> Option<u64> {
        match self.rate {
            Some(r) if r > 0.0 => Some((self.backlog as f64 / r).ceil() as u64),
            _ => None,
        }
    }

    /// `1.2k/s, ETA 3m 05s` (or `rate unknown`).
    pub fn summary(&self) -> String {
        match (self.rate, self.eta_secs()) {
            (Some(r), Some(eta)) => format!("{}/s, ETA {}", si(r), human_secs(eta as i64)),
            (Some(r), None) => format!("{}/s", si(r)),
            _ => "rate unknown".to_string(),
        }
    }
}

/// 950, 1.2k, 3.4M.
fn si(v: f64) -> String {
    match v {
        v if v >= 1e6 => format!("{:.1}M", v / 1e6),
        v if v >= 1e3 => format!("{:.1}k", v / 1e3),
        v => format!("{v:.0}"),
    }
}

/// Samples the registry and keeps per-log rate windows.
#[derive(Default)]
struct Tracker {
    windows: BTreeMap<String, RateWindow>,
}

impl Tracker {
    /// Per-log progress (by URL) and the total.
    fn sample(
        &mut self,
        registry: &Registry,
        now: Instant,
    ) -> (BTreeMap<String, Progress>, Progress) {
        let mut logs = BTreeMap::new();
        let mut total = Progress {
            verified: 0,
            head: 0,
            backlog: 0,
            rate: None,
        };
        for l in registry.logs() {
            let w = self.windows.entry(l.url.clone()).or_default();
            w.push(now, l.stats.processed.load(Relaxed));
            let p = Progress {
                verified: l.stats.verified_size.load(Relaxed),
                head: l.stats.head_size.load(Relaxed),
                backlog: l.stats.backlog(),
                rate: w.rate(),
            };
            total.verified += p.verified;
            total.head += p.head;
            total.backlog += p.backlog;
            if let Some(r) = p.rate {
                total.rate = Some(total.rate.unwrap_or(0.0) + r);
            }
            logs.insert(l.url, p);
        }
        self.windows.retain(|url, _| logs.contains_key(url));
        (logs, total)
    }
}

/// Show progress until `shutdown`.
pub async fn run(registry: Arc<Registry>, mode: ProgressMode, shutdown: watch::Receiver<bool>) {
    let mode = match mode {
        ProgressMode::Auto if std::io::stderr().is_terminal() => ProgressMode::Bars,
        ProgressMode::Auto => ProgressMode::Lines,
        m => m,
    };
    match mode {
        ProgressMode::Bars => bars(registry, shutdown).await,
        ProgressMode::Lines => lines(registry, shutdown).await,
        _ => {}
    }
}

async fn lines(registry: Arc<Registry>, mut shutdown: watch::Receiver<bool>) {
    let mut tracker = Tracker::default();
    let mut tick = tokio::time::interval(LINE_INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        let (logs, total) = tracker.sample(&registry, Instant::now());
        let behind: Vec<_> = logs
            .iter()
            .filter(|(_, p)| p.backlog >= CATCH_UP_MIN)
            .collect();
        for (url, p) in &behind {
            tracing::info!(log = %url, verified = p.verified, head = p.head, backlog = p.backlog,
                "catching up: {}", p.summary());
        }
        if !behind.is_empty() {
            tracing::info!(
                logs_behind = behind.len(),
                verified = total.verified,
                backlog = total.backlog,
                "catch-up total: {}",
                total.summary()
            );
        }
    }
}

async fn bars(registry: Arc<Registry>, mut shutdown: watch::Receiver<bool>) {
    use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
    let style = ProgressStyle::with_template(
        "{prefix:40!} [{bar:30}] {human_pos:>13}/{human_len:13} {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    let multi = MultiProgress::new();
    let mut shown: BTreeMap<String, ProgressBar> = BTreeMap::new();
    let mut total_bar: Option<ProgressBar> = None;
    let mut tracker = Tracker::default();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait_for(|s| *s) => break,
        }
        let (logs, total) = tracker.sample(&registry, Instant::now());
        for (url, p) in &logs {
            let bar = match shown.get(url) {
                Some(b) => b.clone(),
                None if p.backlog >= CATCH_UP_MIN => {
                    let b = multi.add(ProgressBar::new(p.head).with_style(style.clone()));
                    b.set_prefix(url.trim_start_matches("https://").to_string());
                    shown.insert(url.clone(), b.clone());
                    b
                }
                None => continue,
            };
            bar.set_length(p.head);
            bar.set_position(p.verified);
            bar.set_message(p.summary());
        }
        shown.retain(|url, bar| {
            let keep = logs.get(url).is_some_and(|p| p.backlog > 0);
            if !keep {
                bar.finish_and_clear();
            }
            keep
        });
        match (&total_bar, shown.is_empty()) {
            (None, false) => {
                let b = multi.add(ProgressBar::new(total.head).with_style(style.clone()));
                b.set_prefix("total");
                total_bar = Some(b);
            }
            (Some(b), true) => {
                b.finish_and_clear();
                total_bar = None;
            }
            _ => {}
        }
        if let Some(b) = &total_bar {
            b.set_length(total.head);
            b.set_position(total.verified);
            b.set_message(total.summary());
        }
    }
    for b in shown.values().chain(total_bar.iter()) {
        b.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_over_a_sliding_window() {
        let t0 = Instant::now();
        let mut w = RateWindow::default();
        assert_eq!(w.rate(), None);
        w.push(t0, 1000);
        assert_eq!(w.rate(), None);
        w.push(t0 + Duration::from_secs(10), 3000);
        assert_eq!(w.rate(), Some(200.0));
        // After a stall longer than the window, the old burst no longer counts: the window starts at the newest
        // sample at least 30 s old (t0 + 10 s), so 500 entries over 50 s.
        w.push(t0 + Duration::from_secs(50), 3000);
        w.push(t0 + Duration::from_secs(60), 3500);
        assert_eq!(w.rate(), Some(10.0));
    }

    #[test]
    fn eta_and_summary() {
        let p = Progress {
            verified: 1000,
            head: 31_000,
            backlog: 30_000,
            rate: Some(1300.0),
        };
        assert_eq!(p.eta_secs(), Some(24));
        assert_eq!(p.summary(), "1.3k/s, ETA 24s");
        let slow = Progress {
            rate: Some(0.0),
            ..p.clone()
        };
        assert_eq!(slow.summary(), "0/s");
        let unknown = Progress { rate: None, ..p };
        assert_eq!(unknown.summary(), "rate unknown");
    }
}
