//! The expiry probe inside the daemon: probes due targets, stores every result, and queues an event when
//! [`schedule::decide`] says a change is worth one.
//!
//! ```text
//!  commit_batch ──queues matched names──> probe_targets (next_probe_at = now)
//!        │
//!  loop: due targets ──DomainLimiter (N per registrable domain per minute)──> probe_hosts (bounded)
//!        └─ per result: decide ──> record_probe: history row + schedule + snapshot + event, ONE transaction
//!                                       └─ wake the sink workers
//! ```
//!
//! Shutdown drops the round in flight: its targets are still due (nothing was recorded for them) and are
//! probed again by the next run.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::watch;

use super::renewal::{RenewalPolicy, ServedCertificate, assess, finding_event};
use super::schedule::{Cadence, DomainLimiter, decide, registrable_domain};
use super::{ProbeOptions, Target, probe_hosts};
use crate::notify::Wake;
use crate::store::{FindingRecord, ProbeRecord, ProbeTarget, Store, unix_now};

/// How the daemon probes. The flags of `ctwatch run` fill it.
#[derive(Debug, Clone)]
pub struct ScheduleConfig {
    /// Thresholds, timeouts, concurrency, trust roots, resolver. `ct_lookup` and `tbs_identity` are set by
    /// [`ScheduleConfig::with_store`].
    pub options: ProbeOptions,
    pub cadence: Cadence,
    /// Probes started per registrable domain in any minute. Default 10, at least 1.
    pub per_domain_per_minute: u32,
    /// Due targets taken per round. Default 500.
    pub batch_size: usize,
    /// How often to look for due targets when none is due (new names arrive from the tailers at any time).
    /// Default 30 s.
    pub poll: Duration,
    /// Served certificate vs CT: stale deployments and missing renewals ([`super::renewal`]).
    pub renewal: RenewalPolicy,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            options: ProbeOptions::default(),
            cadence: Cadence::default(),
            per_domain_per_minute: 10,
            batch_size: 500,
            poll: Duration::from_secs(30),
            renewal: RenewalPolicy::default(),
        }
    }
}

impl ScheduleConfig {
    /// Look served certificates up in `store` (by fingerprint and tbs identity) for `seen_in_ct`.
    pub fn with_store(mut self, store: &Arc<Store>) -> Self {
        self.options.ct_lookup = Some(store.clone());
        self.options.tbs_identity = Some(|tbs| crate::ct::cert::tbs_identity(tbs).ok());
        self
    }
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RoundOutcome {
    /// Targets that were due.
    pub due: usize,
    pub probed: usize,
    /// Due targets left for a later round by the rate limit.
    pub deferred: usize,
    pub events: usize,
    /// Earliest time (unix seconds) a deferred target gets a slot.
    pub retry_at: Option<i64>,
}

/// Probes the targets due at `now` (within the rate limit), stores the results and queues the events.
///
/// `now` is the clock of the round: due selection, `probed_at` and the next probe time all use it, so tests
/// can move time forward by passing a later `now`.
pub async fn probe_round(
    store: &Arc<Store>,
    cfg: &ScheduleConfig,
    limiter: &mut DomainLimiter,
    now: i64,
) -> Result<RoundOutcome> {
    let due = {
        let store = store.clone();
        let limit = cfg.batch_size.max(1);
        blocking(move || store.due_probe_targets(now, limit)).await?
    };
    let mut outcome = RoundOutcome {
        due: due.len(),
        ..RoundOutcome::default()
    };
    limiter.prune(now);
    let mut chosen: Vec<(ProbeTarget, Target)> = Vec::new();
    for target in due {
        let domain = registrable_domain(&target.domain);
        if !limiter.try_take(&domain, now) {
            outcome.deferred += 1;
            let at = limiter.next_free(&domain, now);
            outcome.retry_at = Some(outcome.retry_at.map_or(at, |t: i64| t.min(at)));
            continue;
        }
        match Target::new(&target.domain, target.port) {
            Ok(t) => chosen.push((target, t)),
            Err(e) => {
                // Not a probeable name (added by hand to the database?): push it out rather than retry it.
                tracing::warn!(domain = %target.domain, "not probing: {e}");
                let (store, later) = (store.clone(), now + cfg.cadence.interval.as_secs() as i64);
                blocking(move || store.postpone_probe_target(&target.domain, target.port, later))
                    .await?;
            }
        }
    }
    let reports = probe_hosts(
        chosen.iter().map(|(_, t)| t.clone()).collect(),
        &cfg.options,
    )
    .await;
    for ((target, _), report) in chosen.into_iter().zip(reports) {
        let d = decide(&target, &report, now, &cfg.cadence);
        let (findings, recheck_at) = judge_against_ct(store, cfg, &target, &report, now).await?;
        // A verdict that changes by itself (a grace period ends, a renewal falls due) is checked on time.
        let next_probe_at = recheck_at.map_or(d.next_probe_at, |at| {
            d.next_probe_at.min(at.max(now + MIN_RECHECK_SECS))
        });
        outcome.probed += 1;
        outcome.events += usize::from(d.event.is_some());
        tracing::debug!(domain = %target.domain, status = %report.status, event = d.event.is_some(), "probed");
        let store = store.clone();
        blocking(move || {
            store.record_probe(&ProbeRecord {
                report: &report,
                probed_at: now,
                consecutive_failures: d.consecutive_failures,
                snapshot: d.snapshot.as_ref(),
                next_probe_at,
                event: d.event.as_ref(),
                findings: findings.as_deref(),
            })
        })
        .await?;
    }
    Ok(outcome)
}

/// Soonest re-probe a pending verdict may ask for.
const MIN_RECHECK_SECS: i64 = 60;

/// Compares what the host served with the CT certificates covering it ([`super::renewal::assess`]).
/// Returns the complete findings with their events (`None` when nothing was served: nothing to judge, the
/// stored findings stay) and when the verdict changes without anything new happening.
async fn judge_against_ct(
    store: &Arc<Store>,
    cfg: &ScheduleConfig,
    target: &ProbeTarget,
    report: &super::HostReport,
    now: i64,
) -> Result<(Option<Vec<FindingRecord>>, Option<i64>)> {
    let served = ServedCertificate::from_report(report);
    if served.is_empty() {
        return Ok((None, None));
    }
    let ct = {
        let (store, host) = (store.clone(), target.domain.clone());
        blocking(move || store.ct_certificates_covering(&host)).await?
    };
    let verdict = assess(&target.domain, &served, &ct, now, &cfg.renewal);
    let records = verdict
        .findings
        .into_iter()
        .map(|finding| FindingRecord {
            event: finding_event(&finding, &target.domain, target.port, &target.tags, now),
            finding,
        })
        .collect();
    Ok((Some(records), verdict.recheck_at))
}

/// Probe everything due now, round after round, until nothing due is left or only rate-limited targets
/// remain whose slot is further away than `max_wait` (`run --once --probe-once`).
pub async fn probe_due_once(
    store: &Arc<Store>,
    cfg: &ScheduleConfig,
    max_wait: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> Result<RoundOutcome> {
    let mut limiter = DomainLimiter::new(cfg.per_domain_per_minute);
    let mut total = RoundOutcome::default();
    let start = unix_now();
    loop {
        let now = unix_now();
        let round = tokio::select! {
            r = probe_round(store, cfg, &mut limiter, now) => r?,
            _ = shutdown.wait_for(|s| *s) => return Ok(total),
        };
        total.probed += round.probed;
        total.events += round.events;
        total.deferred = round.deferred;
        total.retry_at = round.retry_at;
        match round.retry_at {
            // A full batch: more may be due.
            None if round.probed > 0 && round.due >= cfg.batch_size.max(1) => {}
            None => return Ok(total),
            Some(at) if at - start > max_wait.as_secs() as i64 => return Ok(total),
            Some(at) => tokio::select! {
                _ = tokio::time::sleep(secs_until(at, now)) => {}
                _ = shutdown.wait_for(|s| *s) => return Ok(total),
            },
        }
    }
}

/// The daemon's probe task: runs until `shutdown` turns true.
pub async fn run_scheduler(
    store: Arc<Store>,
    cfg: ScheduleConfig,
    wake: Wake,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut limiter = DomainLimiter::new(cfg.per_domain_per_minute);
    tracing::info!(
        interval_secs = cfg.cadence.interval.as_secs(),
        concurrency = cfg.options.concurrency,
        "expiry probe started"
    );
    loop {
        let now = unix_now();
        let round = tokio::select! {
            r = probe_round(&store, &cfg, &mut limiter, now) => r,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        let pause = match round {
            Ok(r) => {
                if r.events > 0 {
                    wake.wake();
                }
                if r.probed > 0 {
                    tracing::info!(
                        probed = r.probed,
                        events = r.events,
                        deferred = r.deferred,
                        "probe round"
                    );
                }
                next_pause(&store, &cfg, &r, now).await
            }
            Err(e) => {
                tracing::error!("probe round failed: {e:#}");
                cfg.poll
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

/// How long to sleep after a round: not at all when the batch was full, until the next due target or the
/// next rate-limit slot, and never longer than `poll` (new targets arrive from the tailers).
async fn next_pause(
    store: &Arc<Store>,
    cfg: &ScheduleConfig,
    round: &RoundOutcome,
    now: i64,
) -> Duration {
    if round.probed > 0 && round.due >= cfg.batch_size.max(1) {
        return Duration::ZERO;
    }
    let store = store.clone();
    let next_due = blocking(move || store.next_probe_due())
        .await
        .ok()
        .flatten();
    // Targets deferred by the limiter are still due (`next_due` <= now): for them, wait for their slot.
    let due_later = next_due.filter(|&d| d > now || round.deferred == 0);
    let wake_at = [round.retry_at, due_later].into_iter().flatten().min();
    wake_at.map_or(cfg.poll, |at| secs_until(at, now).min(cfg.poll))
}

fn secs_until(at: i64, now: i64) -> Duration {
    Duration::from_secs(at.saturating_sub(now).max(0) as u64)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .context("probe store task panicked")?
        .context("probe store")
}

/// The probe flags of `ctwatch run`.
#[derive(Debug, Clone, clap::Args)]
pub struct ProbeRunArgs {
    /// Do not probe the hosts of matching certificates (they are still queued, for a later run).
    #[arg(long)]
    pub no_probe: bool,
    /// With --once: after catching up, probe the hosts that are due, then exit.
    #[arg(long)]
    pub probe_once: bool,
    /// Hours between two probes of a host (0.01-8760) [default: 24; config: probe.interval_hours].
    #[arg(long)]
    pub probe_interval_hours: Option<f64>,
    /// Minutes before re-probing a host after a first network failure (alerts need two in a row) [default: 15].
    #[arg(long)]
    pub probe_retry_minutes: Option<u64>,
    /// Connections the probe keeps in flight at once (1-10000) [default: 20].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=10000))]
    pub probe_concurrency: Option<u16>,
    /// Probes started per registrable domain (example.co.uk) per minute [default: 10].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub probe_per_domain_per_minute: Option<u32>,
    /// WARNING when at most this many days are left. Default rule: min(21 d, max(0.2 × lifetime, 2 d)); given
    /// alone, exactly this many days; with --probe-warning-fraction, whichever leaves fewer days.
    #[arg(long)]
    pub probe_warning_days: Option<u32>,
    /// CRITICAL when at most this many days are left. Default rule: min(7 d, max(0.1 × lifetime, 1 d)); same
    /// rule with --probe-critical-fraction.
    #[arg(long)]
    pub probe_critical_days: Option<u32>,
    /// WARNING when at most this fraction of the lifetime is left, (0-1] [default: 0.2].
    #[arg(long)]
    pub probe_warning_fraction: Option<f64>,
    /// CRITICAL when at most this fraction of the lifetime is left, (0-1] [default: 0.1].
    #[arg(long)]
    pub probe_critical_fraction: Option<f64>,
    /// Hours a certificate newer than the served one may sit in CT before the host is reported as
    /// `stale_deployment` (renewed but not deployed) [default: 24; config: probe.deploy_grace_hours].
    #[arg(long)]
    pub deploy_grace_hours: Option<f64>,
    /// Fraction of the served certificate's lifetime after which, with no newer certificate in CT,
    /// `renewal_missing` is reported, (0-1) [default: 0.667; config: probe.renewal_due_fraction].
    #[arg(long)]
    pub renewal_due_fraction: Option<f64>,
    /// Also trust the CA certificates in this PEM file when probing (repeatable; private CAs).
    #[arg(long = "probe-ca-file", value_name = "PEM")]
    pub probe_ca_files: Vec<std::path::PathBuf>,
}

impl ProbeRunArgs {
    /// The probe configuration, or `None` when this run does not probe (`--no-probe`, or `--once` without
    /// `--probe-once`).
    pub fn config(&self, once: bool) -> Result<Option<ScheduleConfig>> {
        self.config_with(once, &crate::config::ProbeSection::default())
    }

    /// Like [`ProbeRunArgs::config`], with the config file's `[probe]` section under the flags. Errors name the
    /// flag or the key that holds the bad value.
    pub fn config_with(
        &self,
        once: bool,
        file: &crate::config::ProbeSection,
    ) -> Result<Option<ScheduleConfig>> {
        if self.no_probe || file.enabled == Some(false) || (once && !self.probe_once) {
            return Ok(None);
        }
        let (hours, name) = match (self.probe_interval_hours, file.interval_hours) {
            (Some(h), _) => (h, format!("--probe-interval-hours {h}")),
            (None, Some(h)) => (h, format!("probe.interval_hours = {h}")),
            (None, None) => (24.0, String::new()),
        };
        if !(0.01..=8760.0).contains(&hours) {
            anyhow::bail!("{name} is out of range [0.01, 8760]");
        }
        let concurrency = self.probe_concurrency.or(file.concurrency).unwrap_or(20);
        if !(1..=10000).contains(&concurrency) {
            anyhow::bail!("probe.concurrency = {concurrency} is out of range 1..=10000");
        }
        let per_domain = self
            .probe_per_domain_per_minute
            .or(file.per_domain_per_minute)
            .unwrap_or(10);
        if per_domain == 0 {
            anyhow::bail!("probe.per_domain_per_minute must be at least 1");
        }
        let thresholds = super::Thresholds::from_flags(super::classify::ThresholdFlags {
            warning_days: self.probe_warning_days.or(file.warning_days),
            critical_days: self.probe_critical_days.or(file.critical_days),
            warning_fraction: self.probe_warning_fraction.or(file.warning_fraction),
            critical_fraction: self.probe_critical_fraction.or(file.critical_fraction),
        });
        let from_flags = self.probe_warning_days.is_some()
            || self.probe_critical_days.is_some()
            || self.probe_warning_fraction.is_some()
            || self.probe_critical_fraction.is_some();
        thresholds.validate().map_err(|e| {
            let names = if from_flags {
                "--probe-warning-days / --probe-critical-days / --probe-*-fraction"
            } else {
                "probe.warning_days / probe.critical_days / probe.*_fraction"
            };
            anyhow::anyhow!("{names}: {e}")
        })?;
        let renewal = RenewalPolicy {
            deploy_grace_secs: (self
                .deploy_grace_hours
                .or(file.deploy_grace_hours)
                .unwrap_or(24.0)
                * 3600.0)
                .round() as i64,
            renewal_due_fraction: self
                .renewal_due_fraction
                .or(file.renewal_due_fraction)
                .unwrap_or(2.0 / 3.0),
        };
        renewal.validate().map_err(|e| {
            anyhow::anyhow!("--deploy-grace-hours / --renewal-due-fraction (or probe.*): {e}")
        })?;
        let mut roots = super::TrustRoots::webpki();
        for path in self.probe_ca_files.iter().chain(&file.ca_files) {
            roots.add_pem_file(path)?;
        }
        Ok(Some(ScheduleConfig {
            options: ProbeOptions {
                thresholds,
                concurrency: usize::from(concurrency),
                roots: Arc::new(roots),
                ..ProbeOptions::default()
            },
            cadence: Cadence {
                interval: Duration::from_secs_f64(hours * 3600.0),
                failure_retry: Duration::from_secs(
                    self.probe_retry_minutes
                        .or(file.retry_minutes)
                        .unwrap_or(15)
                        .max(1)
                        * 60,
                ),
            },
            per_domain_per_minute: per_domain,
            renewal,
            ..ScheduleConfig::default()
        }))
    }
}

/// The flags' own defaults (as if none was given).
impl Default for ProbeRunArgs {
    fn default() -> Self {
        use clap::{Args, FromArgMatches};
        let cmd = Self::augment_args(clap::Command::new("probe"));
        Self::from_arg_matches(&cmd.get_matches_from(["probe"]))
            .expect("the probe flags' defaults parse")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn probe_config(args: &[&str]) -> Result<Option<ScheduleConfig>> {
        let cli = Cli::try_parse_from([&["ctwatch", "run"], args].concat()).unwrap();
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        run.probe.config(run.once)
    }

    #[test]
    fn run_flags() {
        let daemon = probe_config(&[])
            .unwrap()
            .expect("the daemon probes by default");
        assert_eq!(daemon.cadence.interval, Duration::from_secs(24 * 3600));
        assert_eq!(daemon.cadence.failure_retry, Duration::from_secs(15 * 60));
        assert_eq!(daemon.options.concurrency, 20);
        assert_eq!(daemon.per_domain_per_minute, 10);
        assert_eq!(daemon.options.thresholds.warning_days, 21);
        assert!(probe_config(&["--no-probe"]).unwrap().is_none());
        assert!(
            probe_config(&["--once"]).unwrap().is_none(),
            "cron runs probe only when asked"
        );
        let once = probe_config(&[
            "--once",
            "--probe-once",
            "--probe-interval-hours",
            "0.5",
            "--probe-concurrency",
            "5",
            "--probe-warning-days",
            "30",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(once.cadence.interval, Duration::from_secs(1800));
        assert_eq!(once.options.concurrency, 5);
        assert_eq!(once.options.thresholds.warning_days, 30);
        let err = probe_config(&["--probe-interval-hours", "0"]).unwrap_err();
        assert!(
            err.to_string()
                .contains("--probe-interval-hours 0 is out of range"),
            "{err}"
        );
        assert!(probe_config(&["--probe-critical-days", "40"]).is_err());
    }

    #[test]
    fn the_config_files_probe_section_is_under_the_flags() {
        let file: crate::config::ProbeSection = toml::from_str(
            "interval_hours = 6.0\nconcurrency = 3\nwarning_days = 30\ncritical_days = 10\n",
        )
        .unwrap();
        let cli = Cli::try_parse_from(["ctwatch", "run", "--probe-concurrency", "9"]).unwrap();
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        let cfg = run.probe.config_with(false, &file).unwrap().unwrap();
        assert_eq!(cfg.cadence.interval, Duration::from_secs(6 * 3600));
        assert_eq!(cfg.options.concurrency, 9, "the flag wins");
        assert_eq!(cfg.options.thresholds.warning_days, 30);
        assert_eq!(cfg.options.thresholds.critical_days, 10);
        let off: crate::config::ProbeSection = toml::from_str("enabled = false\n").unwrap();
        assert!(run.probe.config_with(false, &off).unwrap().is_none());
        let bad: crate::config::ProbeSection = toml::from_str("interval_hours = 0.0\n").unwrap();
        let err = run.probe.config_with(false, &bad).unwrap_err().to_string();
        assert!(
            err.contains("probe.interval_hours = 0 is out of range"),
            "{err}"
        );
    }
}
