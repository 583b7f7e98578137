//! Configuration: built-in defaults < config file (TOML) < environment < flags, resolved into validated
//! [`Settings`]. Unknown keys are errors that name the key (serde `deny_unknown_fields`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::args::RunArgs;
use crate::ctlog::http::RetryPolicy;
use crate::notify::DeliveryPolicy;
use crate::run::LogFilter;
use crate::tailer::{StartAt, TailConfig};

/// The complete commented example printed by `ctwatch config example` (and tested to parse).
pub const EXAMPLE: &str = include_str!("../assets/config.example.toml");

/// The config file as written. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub db: Option<PathBuf>,
    /// A file of `KEY=value` lines (systemd `EnvironmentFile=` syntax) read for the `*_env` variables the
    /// environment lacks, so that `ctwatch notify test --config FILE` sees what the service sees.
    pub env_file: Option<PathBuf>,
    pub watchlist: Option<PathBuf>,
    pub log_list: Option<String>,
    pub log_list_sig: Option<String>,
    pub log_list_refresh_secs: Option<u64>,
    pub start_at: Option<String>,
    pub store_all: Option<bool>,
    #[serde(default)]
    pub logs: LogsSection,
    #[serde(default)]
    pub tail: TailSection,
    #[serde(default)]
    pub delivery: DeliverySection,
    /// `[api]`: the HTTP API (/health, /metrics, /api/v1/); served when this section exists or with `--listen`.
    pub api: Option<crate::api::ApiConfig>,
    /// `[health]`: health alerts through the sinks, and the daily heartbeat.
    #[serde(default)]
    pub health: crate::health::HealthConfig,
    /// Notification targets (`[[sinks]]`; keys in README.md, section Notifications).
    #[serde(default)]
    pub sinks: Vec<crate::notify::SinkConfig>,
    /// `[probe]`: the expiry probe of matched hosts (the `--probe-*` flags override it).
    #[serde(default)]
    pub probe: ProbeSection,
    /// `[stream]`: the NATS JetStream stream of verified certificates (on when `nats` is set, or `run --nats`).
    #[serde(default)]
    pub stream: crate::stream::StreamSection,
    /// `[store]`: the database engine, and how instances sharing a PostgreSQL database split the logs.
    #[serde(default)]
    pub store: StoreSection,
}

/// `[store]`: the database engine, and several instances on one PostgreSQL database (log leases; see README,
/// section Scaling).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// `postgres://user@host/db`: use that PostgreSQL database (wins over `db`; `--db`/`CTWATCH_DB` win over it).
    pub url: Option<String>,
    /// This instance's name (like `--instance-id`) [default: hostname-pid-random, new at every start].
    pub instance_id: Option<String>,
    /// A log lease or heartbeat not renewed for this long is expired and taken over, seconds [default: 15;
    /// 3..=600].
    pub lease_ttl_secs: Option<u64>,
    /// Seconds between two renewals of the leases and the heartbeat [default: ttl / 5; 1..=ttl/2].
    pub lease_renew_secs: Option<u64>,
}

impl Config {
    /// The database this file names: `[store] url`, else `db`.
    pub fn database(&self) -> Option<PathBuf> {
        self.store
            .url
            .as_ref()
            .map(PathBuf::from)
            .or_else(|| self.db.clone())
    }
}

/// `[probe]`: the same knobs as the `--no-probe` / `--probe-*` flags of `run`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeSection {
    /// `false`: do not probe (like `--no-probe`).
    pub enabled: Option<bool>,
    pub interval_hours: Option<f64>,
    pub retry_minutes: Option<u64>,
    pub concurrency: Option<u16>,
    pub per_domain_per_minute: Option<u32>,
    pub warning_days: Option<u32>,
    pub critical_days: Option<u32>,
    pub warning_fraction: Option<f64>,
    pub critical_fraction: Option<f64>,
    /// `stale_deployment` grace after a newer certificate was logged, hours.
    pub deploy_grace_hours: Option<f64>,
    /// `renewal_missing` once this fraction of the served certificate's lifetime has passed.
    pub renewal_due_fraction: Option<f64>,
    #[serde(default)]
    pub ca_files: Vec<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsSection {
    #[serde(default)]
    pub include: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TailSection {
    pub poll_interval_secs: Option<u64>,
    pub parallel_requests: Option<usize>,
    pub max_inflight_mb: Option<u64>,
    pub max_bandwidth: Option<String>,
    pub page_size: Option<u64>,
    pub batch_entries: Option<u64>,
    pub max_attempts: Option<u32>,
    pub retry_base_ms: Option<u64>,
    pub request_timeout_secs: Option<u64>,
    pub max_retry_after_secs: Option<u64>,
    pub once_timeout_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverySection {
    pub deliver_timeout_secs: Option<u64>,
    pub retry_base_secs: Option<u64>,
    pub retry_max_secs: Option<u64>,
    pub give_up_after_hours: Option<u64>,
}

/// `~/.config/ctwatch/config.toml`.
pub fn default_config_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("ctwatch").join("config.toml"))
}

/// Parse a config file; errors name the file, the line and the key. Relative paths in it (`db`, `watchlist`,
/// `env_file`, a `log_list` file, `[probe] ca_files`) are relative to the file's directory.
pub fn load(path: &Path) -> Result<Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config {}", path.display()))?;
    let mut cfg = parse(&text).with_context(|| format!("config {}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new(""));
    cfg.make_paths_absolute(base);
    Ok(cfg)
}

impl Config {
    /// Resolve the relative paths of the file against `base` (the config file's directory).
    pub fn make_paths_absolute(&mut self, base: &Path) {
        let join = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        for p in [&mut self.db, &mut self.watchlist, &mut self.env_file]
            .into_iter()
            .flatten()
        {
            // `db = "postgres://..."` is a URL, not a path.
            if crate::store::postgres_url(p).is_none() {
                join(p);
            }
        }
        self.probe.ca_files.iter_mut().for_each(join);
        if let Some(list) = &mut self.log_list
            && !list.starts_with("http://")
            && !list.starts_with("https://")
            && Path::new(list.as_str()).is_relative()
        {
            *list = base.join(list.as_str()).display().to_string();
        }
    }
}

pub fn parse(text: &str) -> Result<Config> {
    Ok(toml::from_str(text)?)
}

/// The paths of a loaded config (already resolved against its directory) that do not exist, each as
/// "key PATH does not exist". The database and its directory may be missing: the first run creates them.
pub fn missing_paths(cfg: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let mut need = |key: &str, p: &Path| {
        if !p.exists() {
            out.push(format!("{key} {} does not exist", p.display()));
        }
    };
    if let Some(p) = &cfg.watchlist {
        need("watchlist", p);
    }
    if let Some(p) = &cfg.env_file {
        need("env_file", p);
    }
    if let Some(l) = cfg
        .log_list
        .as_deref()
        .filter(|l| !l.starts_with("http://") && !l.starts_with("https://"))
    {
        need("log_list", Path::new(l));
    }
    for p in &cfg.probe.ca_files {
        need("probe.ca_files", p);
    }
    out
}

/// The config for `run`: the given file (must exist), else the default file if present, else defaults.
pub fn load_for_run(explicit: Option<&Path>) -> Result<Config> {
    match explicit {
        Some(p) => load(p),
        None => match default_config_path().filter(|p| p.exists()) {
            Some(p) => load(&p),
            None => Ok(Config::default()),
        },
    }
}

/// Everything `run` needs, resolved and range-checked.
#[derive(Debug)]
pub struct Settings {
    pub db: PathBuf,
    pub watchlist: PathBuf,
    pub log_list: String,
    pub log_list_sig: Option<String>,
    pub log_list_refresh: Duration,
    pub tail: TailConfig,
    pub retry: RetryPolicy,
    pub page_size: u64,
    pub delivery: DeliveryPolicy,
    pub drain_timeout: Duration,
    pub filter: LogFilter,
    /// The NATS stream; None when not configured.
    pub stream: Option<crate::stream::StreamConfig>,
    /// This instance's name on a shared database (`--instance-id`, `[store] instance_id`).
    pub instance_id: String,
    /// Lease timing on a shared database (`[store] lease_*`).
    pub lease: crate::lease::LeaseConfig,
}

/// The flag's value, else the file's, else the default; checked against `lo..=hi`. An error names what the
/// user wrote: the flag (`--page-size 0`) or the config key (`tail.page_size = 0`).
fn pick<T: PartialOrd + std::fmt::Display + Copy>(
    (flag, key): (&str, &str),
    (arg, file, default): (Option<T>, Option<T>, T),
    (lo, hi): (T, T),
) -> Result<T> {
    let (v, name) = match (arg, file) {
        (Some(v), _) => (v, format!("{flag} {v}")),
        (None, Some(v)) => (v, format!("{key} = {v}")),
        (None, None) => (default, format!("{key} = {default}")),
    };
    if v < lo || v > hi {
        bail!("{name} is out of range {lo}..={hi}");
    }
    Ok(v)
}

impl Settings {
    /// Flags win over the config file, which wins over the defaults.
    pub fn resolve(args: &RunArgs, cfg: &Config) -> Result<Settings> {
        let t = &cfg.tail;
        let start_at = match (&args.start_at, &cfg.start_at) {
            (Some(s), _) => *s,
            (None, Some(s)) => s
                .parse::<StartAt>()
                .map_err(|e| anyhow::anyhow!("start_at = {s:?}: {e}"))?,
            (None, None) => StartAt::End,
        };
        let poll = pick(
            ("--poll-interval-secs", "tail.poll_interval_secs"),
            (
                args.poll_interval_secs,
                t.poll_interval_secs,
                crate::tailer::DEFAULT_POLL_INTERVAL_SECS,
            ),
            (1, 86_400),
        )?;
        let parallel = pick(
            ("--parallel-requests", "tail.parallel_requests"),
            (
                args.parallel_requests,
                t.parallel_requests,
                crate::tailer::DEFAULT_PARALLEL_REQUESTS,
            ),
            (1, 64),
        )?;
        let inflight_mb = pick(
            ("--max-inflight-mb", "tail.max_inflight_mb"),
            (args.max_inflight_mb, t.max_inflight_mb, 32),
            (4, 65_536),
        )?;
        let bandwidth = match args.max_bandwidth.as_ref().or(t.max_bandwidth.as_ref()) {
            Some(b) => Some(std::sync::Arc::new(crate::ctlog::http::Bandwidth::new(
                crate::ctlog::http::parse_bandwidth(b)
                    .map_err(|e| anyhow::anyhow!("tail.max_bandwidth: {e}"))?,
            ))),
            None => None,
        };
        let page_size = pick(
            ("--page-size", "tail.page_size"),
            (args.page_size, t.page_size, 256),
            (1, 10_000),
        )?;
        let batch = pick(
            ("--batch-entries", "tail.batch_entries"),
            (args.batch_entries, t.batch_entries, 4096),
            (1, 1_000_000),
        )?;
        let attempts = pick(
            ("--max-attempts", "tail.max_attempts"),
            (args.max_attempts, t.max_attempts, 6),
            (1, 100),
        )?;
        let max_retry_after = pick(
            ("--max-retry-after-secs", "tail.max_retry_after_secs"),
            (args.max_retry_after_secs, t.max_retry_after_secs, 60),
            (1, 86_400),
        )?;
        let once_timeout = pick(
            ("--once-timeout-secs", "tail.once_timeout_secs"),
            (args.once_timeout_secs, t.once_timeout_secs, 600),
            (1, 7 * 86_400),
        )?;
        let d = &cfg.delivery;
        let mut include = cfg.logs.include.clone();
        include.extend(args.include_logs.iter().cloned());
        let mut exclude = cfg.logs.exclude.clone();
        exclude.extend(args.exclude_logs.iter().cloned());
        Ok(Settings {
            db: args
                .db
                .db
                .clone()
                .or(cfg.database())
                .unwrap_or_else(crate::args::default_db_path),
            watchlist: args
                .watchlist
                .clone()
                .or(cfg.watchlist.clone())
                .unwrap_or_else(|| PathBuf::from("watchlists")),
            log_list: args
                .log_list
                .clone()
                .or(cfg.log_list.clone())
                .unwrap_or_else(|| crate::logsource::GOOGLE_LOG_LIST_URL.to_string()),
            log_list_sig: args.log_list_sig.clone().or(cfg.log_list_sig.clone()),
            log_list_refresh: Duration::from_secs(
                args.log_list_refresh_secs
                    .or(cfg.log_list_refresh_secs)
                    .unwrap_or(3600)
                    .max(60),
            ),
            tail: TailConfig {
                poll_interval: Duration::from_secs(poll),
                parallel_requests: parallel,
                inflight: crate::tailer::InflightBudget::from_bytes(inflight_mb << 20),
                bandwidth,
                batch_entries: batch,
                start_at,
                once: args.once,
                // --once: a log that fails its cycle is tried again soon (each cycle already retries its
                // requests); a cron run without network says so in seconds, not minutes.
                error_backoff: Duration::from_secs(if args.once { 1 } else { 5 }),
                store_all: args.store_all || cfg.store_all.unwrap_or(false),
                once_timeout: Duration::from_secs(once_timeout),
                ..TailConfig::default()
            },
            retry: RetryPolicy {
                max_attempts: attempts,
                base_delay: Duration::from_millis(
                    args.retry_base_ms.or(t.retry_base_ms).unwrap_or(500),
                ),
                request_timeout: Duration::from_secs(
                    args.request_timeout_secs
                        .or(t.request_timeout_secs)
                        .unwrap_or(30)
                        .max(1),
                ),
                max_retry_after: Duration::from_secs(max_retry_after),
                ..RetryPolicy::default()
            },
            page_size,
            delivery: DeliveryPolicy {
                base_delay: Duration::from_secs(d.retry_base_secs.unwrap_or(2).max(1)),
                max_delay: Duration::from_secs(d.retry_max_secs.unwrap_or(600).max(1)),
                give_up_after: Duration::from_secs(d.give_up_after_hours.unwrap_or(48) * 3600),
                ..DeliveryPolicy::default()
            },
            drain_timeout: Duration::from_secs(
                args.deliver_timeout_secs
                    .or(d.deliver_timeout_secs)
                    .unwrap_or(60),
            ),
            filter: LogFilter { include, exclude },
            stream: crate::stream::StreamConfig::resolve(&cfg.stream, args.nats.as_deref())?,
            instance_id: instance_id(args, cfg)?,
            lease: lease_config(&cfg.store)?,
        })
    }
}

/// `--instance-id`, else `[store] instance_id`, else hostname-pid-random.
fn instance_id(args: &RunArgs, cfg: &Config) -> Result<String> {
    let (id, name) = match (&args.instance_id, &cfg.store.instance_id) {
        (Some(id), _) => (id.clone(), "--instance-id"),
        (None, Some(id)) => (id.clone(), "store.instance_id"),
        (None, None) => return Ok(crate::lease::default_instance_id()),
    };
    if id.trim().is_empty() || id.len() > 200 || id.chars().any(char::is_control) {
        bail!("{name} = {id:?}: expected 1 to 200 printable characters");
    }
    Ok(id)
}

fn lease_config(s: &StoreSection) -> Result<crate::lease::LeaseConfig> {
    let ttl = pick(
        ("store.lease_ttl_secs", "store.lease_ttl_secs"),
        (None, s.lease_ttl_secs, 15),
        (3, 600),
    )?;
    let renew = pick(
        ("store.lease_renew_secs", "store.lease_renew_secs"),
        (None, s.lease_renew_secs, (ttl / 5).max(1)),
        (1, ttl / 2),
    )?;
    Ok(crate::lease::LeaseConfig {
        ttl: Duration::from_secs(ttl),
        renew_every: Duration::from_secs(renew),
        ..crate::lease::LeaseConfig::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_section_names_the_instance_and_checks_the_lease_timing() {
        let cfg = parse("[store]\ninstance_id = \"eu-1\"\nlease_ttl_secs = 30\n").unwrap();
        let s = Settings::resolve(&RunArgs::default(), &cfg).unwrap();
        assert_eq!(s.instance_id, "eu-1");
        assert_eq!(s.lease.ttl, Duration::from_secs(30));
        assert_eq!(s.lease.renew_every, Duration::from_secs(6));
        let flag = RunArgs {
            instance_id: Some("eu-2".into()),
            ..RunArgs::default()
        };
        assert_eq!(Settings::resolve(&flag, &cfg).unwrap().instance_id, "eu-2");
        let bad = parse("[store]\nlease_ttl_secs = 10\nlease_renew_secs = 6\n").unwrap();
        let err = Settings::resolve(&RunArgs::default(), &bad).unwrap_err();
        assert_eq!(
            err.to_string(),
            "store.lease_renew_secs = 6 is out of range 1..=5"
        );
        let default = Settings::resolve(&RunArgs::default(), &Config::default()).unwrap();
        assert!(
            default
                .instance_id
                .contains(&format!("-{}-", std::process::id()))
        );
    }

    #[test]
    fn the_deploy_example_config_is_valid() {
        let cfg = parse(include_str!("../deploy/ctwatch.toml")).unwrap();
        let s = Settings::resolve(&RunArgs::default(), &cfg).unwrap();
        assert_eq!(s.lease.ttl, Duration::from_secs(15));
        assert_eq!(s.lease.renew_every, Duration::from_secs(3));
        assert_eq!(
            cfg.api.unwrap().keys[0].key_env.as_deref(),
            Some("CTWATCH_API_KEY")
        );
    }

    #[test]
    fn a_postgres_url_is_kept_as_is_and_store_url_wins_over_db() {
        let mut cfg = parse("db = \"postgres://ctwatch@127.0.0.1/ct\"\n").unwrap();
        cfg.make_paths_absolute(Path::new("/etc/ctwatch"));
        assert_eq!(
            cfg.database(),
            Some(PathBuf::from("postgres://ctwatch@127.0.0.1/ct"))
        );
        let mut cfg =
            parse("db = \"state/ct.db\"\n[store]\nurl = \"postgres://ctwatch@127.0.0.1/ct\"\n")
                .unwrap();
        cfg.make_paths_absolute(Path::new("/etc/ctwatch"));
        assert_eq!(
            cfg.database(),
            Some(PathBuf::from("postgres://ctwatch@127.0.0.1/ct"))
        );
        assert!(
            parse("[store]\nuri = \"x\"\n").is_err(),
            "unknown keys are errors"
        );
    }

    #[test]
    fn the_example_is_complete_and_valid() {
        let cfg = parse(EXAMPLE).unwrap();
        let s = Settings::resolve(&RunArgs::default(), &cfg).unwrap();
        assert_eq!(s.tail.poll_interval, Duration::from_secs(5));
        assert_eq!(s.tail.parallel_requests, 32);
        assert_eq!(s.tail.inflight.entries(), (32 << 20) / 16384);
        assert_eq!(s.page_size, 256);
        assert_eq!(s.tail.start_at, StartAt::End);
        assert_eq!(s.log_list, crate::logsource::GOOGLE_LOG_LIST_URL);
        // Every default shown in the example equals the built-in default.
        let d = Settings::resolve(&RunArgs::default(), &Config::default()).unwrap();
        assert_eq!(format!("{:?}", s.tail), format!("{:?}", d.tail));
        assert_eq!(s.drain_timeout, d.drain_timeout);
        assert_eq!(s.retry.max_attempts, d.retry.max_attempts);
        assert_eq!(s.retry.max_retry_after, d.retry.max_retry_after);
        assert_eq!(d.retry.max_retry_after, Duration::from_secs(60));
        assert_eq!(d.tail.once_timeout, Duration::from_secs(600));
    }

    #[test]
    fn the_commented_api_section_of_the_example_parses_when_uncommented() {
        let start = EXAMPLE.find("# [api]").unwrap();
        let end = EXAMPLE[start..].find("\n\n").map(|e| start + e).unwrap();
        let block: String = EXAMPLE[start..end]
            .lines()
            .filter(|l| l.starts_with("# [") || l.starts_with("# ") && l.contains(" = "))
            .map(|l| l.trim_start_matches("# "))
            .collect::<Vec<_>>()
            .join("\n");
        let cfg = parse(&block).unwrap_or_else(|e| panic!("{e:#}\n{block}"));
        let api = cfg.api.unwrap();
        assert_eq!(api.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(api.keys.len(), 1);
        assert_eq!(api.health.log_silence_secs, 900);
    }

    #[test]
    fn the_commented_stream_section_of_the_example_resolves_to_the_defaults() {
        let start = EXAMPLE.find("# [stream]").unwrap();
        let end = EXAMPLE[start..].find("\n\n").map(|e| start + e).unwrap();
        let block: String = EXAMPLE[start..end]
            .lines()
            .map(|l| l.trim_start_matches("# "))
            .collect::<Vec<_>>()
            .join("\n");
        let cfg = parse(&block).unwrap_or_else(|e| panic!("{e:#}\n{block}"));
        let s = Settings::resolve(&RunArgs::default(), &cfg).unwrap();
        let shown = s.stream.unwrap();
        let defaults = crate::stream::StreamConfig::resolve(
            &crate::stream::StreamSection::default(),
            Some("nats://127.0.0.1:4222"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(format!("{shown:?}"), format!("{defaults:?}"));
        assert!(
            Settings::resolve(&RunArgs::default(), &Config::default())
                .unwrap()
                .stream
                .is_none()
        );
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key() {
        let err = format!(
            "{:#}",
            parse("[tail]\npoll_intervall_secs = 5\n").unwrap_err()
        );
        assert!(err.contains("poll_intervall_secs"), "{err}");
        assert!(err.contains("line 2"), "{err}");
        let err = format!("{:#}", parse("colour = true\n").unwrap_err());
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn flags_win_over_the_file_and_ranges_are_checked() {
        let cfg = parse(
            "start_at = \"beginning\"\n[tail]\npoll_interval_secs = 30\nparallel_requests = 8\n",
        )
        .unwrap();
        let args = RunArgs {
            poll_interval_secs: Some(5),
            ..RunArgs::default()
        };
        let s = Settings::resolve(&args, &cfg).unwrap();
        assert_eq!(s.tail.poll_interval, Duration::from_secs(5));
        assert_eq!(s.tail.parallel_requests, 8);
        assert_eq!(s.tail.start_at, StartAt::Beginning);
        let bad = parse("[tail]\nparallel_requests = 0\n").unwrap();
        let err = Settings::resolve(&RunArgs::default(), &bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("tail.parallel_requests"), "{err}");
    }

    #[test]
    fn relative_paths_are_relative_to_the_config_file_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "db = \"state/ct.db\"\nwatchlist = \"watchlists\"\nenv_file = \"env\"\nlog_list = \"list.json\"\n\
             [probe]\nca_files = [\"ca.pem\", \"/abs/ca.pem\"]\n",
        )
        .unwrap();
        let cfg = load(&path).unwrap();
        assert_eq!(
            cfg.db.as_deref(),
            Some(dir.path().join("state/ct.db").as_path())
        );
        assert_eq!(
            cfg.watchlist.as_deref(),
            Some(dir.path().join("watchlists").as_path())
        );
        assert_eq!(
            cfg.env_file.as_deref(),
            Some(dir.path().join("env").as_path())
        );
        assert_eq!(
            cfg.log_list,
            Some(dir.path().join("list.json").display().to_string())
        );
        assert_eq!(cfg.probe.ca_files[1], PathBuf::from("/abs/ca.pem"));
        let missing = missing_paths(&cfg);
        assert_eq!(missing.len(), 5, "{missing:?}");
        assert!(missing[0].starts_with("watchlist ") && missing[0].ends_with("does not exist"));
        std::fs::create_dir(dir.path().join("watchlists")).unwrap();
        std::fs::write(dir.path().join("env"), "").unwrap();
        assert_eq!(missing_paths(&cfg).len(), 3);
        // URLs stay URLs.
        let url = parse("log_list = \"https://example.net/list.json\"\n").unwrap();
        assert!(missing_paths(&url).is_empty());
    }

    #[test]
    fn once_retries_a_failed_cycle_soon() {
        let cfg = Config::default();
        let once = RunArgs {
            once: true,
            ..RunArgs::default()
        };
        assert_eq!(
            Settings::resolve(&once, &cfg).unwrap().tail.error_backoff,
            Duration::from_secs(1)
        );
        let daemon = Settings::resolve(&RunArgs::default(), &cfg).unwrap();
        assert_eq!(daemon.tail.error_backoff, Duration::from_secs(5));
    }

    #[test]
    fn range_errors_name_the_flag_or_the_key() {
        let args = RunArgs {
            page_size: Some(0),
            ..RunArgs::default()
        };
        let err = Settings::resolve(&args, &Config::default())
            .unwrap_err()
            .to_string();
        assert_eq!(err, "--page-size 0 is out of range 1..=10000");
        let cfg = parse("[tail]\npage_size = 0\n").unwrap();
        let err = Settings::resolve(&RunArgs::default(), &cfg)
            .unwrap_err()
            .to_string();
        assert_eq!(err, "tail.page_size = 0 is out of range 1..=10000");
    }
}
