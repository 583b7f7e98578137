//! Command-line interface: argument definitions and the small commands. `main.rs` only parses and dispatches.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::ctlog::http::{RetryPolicy, build_client};
use crate::logsource::LogListSource;
use crate::notify::{DeliveryPolicy, Sink, StdoutFormat, StdoutSink};
use crate::run::LogFilter;
use crate::store::{SinkRoute, Store};
use crate::tailer::{StartAt, TailConfig};
use crate::watchlist::Watchlist;

/// The current Google CT log list (v3).
pub const DEFAULT_LOG_LIST: &str = crate::logsource::GOOGLE_LOG_LIST_URL;

#[derive(Parser, Debug)]
#[command(
    name = "ctwatch",
    version,
    about = "Certificate Transparency log monitor"
)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Tail every usable log of the log list, store and report matching certificates.
    Run(RunArgs),
    /// List stored certificates for a name and everything under it (a local crt.sh).
    Search(SearchArgs),
    /// Show every log we follow: position, head, backlog, last contact, last error.
    Logs(LogsArgs),
    /// Watchlist tools.
    Watchlist {
        #[command(subcommand)]
        command: WatchlistCommand,
    },
    /// Show queued notifications (pending / failed per sink), or re-queue failed ones.
    Outbox(OutboxArgs),
    /// Probe what TLS certificate hosts really serve (bulk; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 failure).
    Check(crate::probe::cli::CheckArgs),
    /// Daily expiry report of the probed hosts, per client tag, worst first (for a cron email).
    Report(crate::probe::daily::ReportArgs),
}

#[derive(Subcommand, Debug)]
pub enum WatchlistCommand {
    /// Validate watchlist files and print every error with file:line.
    Check {
        /// File or directory (every *.txt). Default: watchlists/
        path: Option<PathBuf>,
    },
}

#[derive(Args, Debug, Clone)]
pub struct DbArg {
    /// SQLite database file. Default: $XDG_DATA_HOME/ctwatch/ctwatch.db (~/.local/share/ctwatch/ctwatch.db).
    #[arg(long, env = "CTWATCH_DB", global = true)]
    pub db: Option<PathBuf>,
}

impl DbArg {
    pub fn path(&self) -> PathBuf {
        self.db.clone().unwrap_or_else(default_db_path)
    }
    pub fn open(&self) -> Result<Store> {
        let path = self.path();
        Store::open(&path).with_context(|| format!("opening database {}", path.display()))
    }
}

/// `$XDG_DATA_HOME/ctwatch/ctwatch.db`, or `./ctwatch.db` when there is no home directory.
pub fn default_db_path() -> PathBuf {
    dirs::data_dir()
        .map(|d| d.join("ctwatch").join("ctwatch.db"))
        .unwrap_or_else(|| PathBuf::from("ctwatch.db"))
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub db: DbArg,
    /// Catch every log up to the head seen at start, deliver queued notifications, then exit (for cron).
    #[arg(long)]
    pub once: bool,
    /// Print one JSON object per line on stdout instead of human lines.
    #[arg(long)]
    pub json: bool,
    /// Log list (Google v3 JSON): a file or an http(s) URL. Google's list is verified with its signature, cached,
    /// re-read every --log-list-refresh-secs; offline, the cached copy or the bundled snapshot is used.
    #[arg(long, value_name = "FILE_OR_URL", default_value = DEFAULT_LOG_LIST)]
    pub log_list: String,
    /// Signature of a --log-list URL other than Google's, checked with Google's key.
    #[arg(long, value_name = "URL")]
    pub log_list_sig: Option<String>,
    /// Seconds between two re-reads of the log list (daemon mode): new logs start, removed logs stop.
    #[arg(long, default_value_t = 3600)]
    pub log_list_refresh_secs: u64,
    /// Watchlist file, or directory of *.txt files.
    #[arg(long, value_name = "FILE_OR_DIR", default_value = "watchlists")]
    pub watchlist: PathBuf,
    /// Where a log seen for the first time starts: end (its current head), beginning, or an entry index.
    #[arg(long, default_value = "end")]
    pub start_at: StartAt,
    /// Seconds between two polls of a log's signed tree head.
    #[arg(long, default_value_t = 60)]
    pub poll_interval_secs: u64,
    /// get-entries requests in flight per log.
    #[arg(long, default_value_t = 4)]
    pub parallel_requests: usize,
    /// Entries asked for in one get-entries request (logs may return fewer).
    #[arg(long, default_value_t = 256)]
    pub page_size: u64,
    /// Entries verified and committed per SQLite transaction.
    #[arg(long, default_value_t = 4096)]
    pub batch_entries: u64,
    /// Store every certificate seen (a full local index for `search`), not only matching ones.
    #[arg(long)]
    pub store_all: bool,
    /// Only follow logs whose URL or operator contains this text (repeatable).
    #[arg(long = "include-log", value_name = "TEXT")]
    pub include_logs: Vec<String>,
    /// Do not follow logs whose URL or operator contains this text (repeatable).
    #[arg(long = "exclude-log", value_name = "TEXT")]
    pub exclude_logs: Vec<String>,
    /// Attempts per HTTP request before a cycle fails.
    #[arg(long, default_value_t = 6)]
    pub max_attempts: u32,
    /// First retry delay in milliseconds (doubles per attempt, with jitter).
    #[arg(long, default_value_t = 500)]
    pub retry_base_ms: u64,
    /// Timeout of one HTTP request, in seconds.
    #[arg(long, default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// With --once: seconds to keep delivering queued notifications before exiting.
    #[arg(long, default_value_t = 60)]
    pub deliver_timeout_secs: u64,
    #[command(flatten)]
    pub probe: crate::probe::scheduler::ProbeRunArgs,
}

#[derive(Args, Debug)]
pub struct SearchArgs {
    #[command(flatten)]
    pub db: DbArg,
    /// A DNS name: certificates for it and every name under it.
    pub name: String,
    #[arg(long)]
    pub json: bool,
    /// At most this many certificates (newest first).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    #[command(flatten)]
    pub db: DbArg,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct OutboxArgs {
    #[command(flatten)]
    pub db: DbArg,
    /// Re-queue failed deliveries (of one sink with --sink).
    #[arg(long)]
    pub retry: bool,
    #[arg(long)]
    pub sink: Option<String>,
    #[arg(long)]
    pub json: bool,
}

/// Load and validate the watchlist, printing every error.
pub fn load_watchlist(path: &Path) -> Result<Watchlist> {
    Watchlist::load(path)
        .map_err(|errs| anyhow::anyhow!("invalid watchlist {}:\n{errs}", path.display()))
}

/// Assemble `run` from its flags.
pub async fn run_command(
    args: RunArgs,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<u8> {
    let watchlist = load_watchlist(&args.watchlist)?;
    let probe = args.probe.config(args.once)?;
    let db_path = args.db.path();
    let cache_dir = db_path.parent().map(|d| d.join("cache"));
    let source = LogListSource::new(
        &args.log_list,
        args.log_list_sig.clone(),
        cache_dir,
        build_client()?,
    );
    let (log_list, origin) = source.load().await?;
    for (log, why) in &log_list.skipped {
        tracing::warn!(%log, "skipping log from the list: {why}");
    }
    tracing::info!(version = %log_list.version, ?origin, logs = log_list.logs.len(), "log list loaded");
    let store = Arc::new(args.db.open()?);
    let format = if args.json {
        StdoutFormat::Json
    } else {
        StdoutFormat::Human
    };
    let stdout: Arc<dyn Sink> = Arc::new(StdoutSink { format });
    let opts = crate::run::RunOptions {
        log_list,
        log_list_source: source.is_remote().then_some(source),
        log_list_refresh: Duration::from_secs(args.log_list_refresh_secs),
        watchlist,
        watchlist_path: Some(args.watchlist.clone()),
        store,
        tail: TailConfig {
            poll_interval: Duration::from_secs(args.poll_interval_secs.max(1)),
            parallel_requests: args.parallel_requests.max(1),
            batch_entries: args.batch_entries.max(1),
            start_at: args.start_at,
            once: args.once,
            store_all: args.store_all,
            ..TailConfig::default()
        },
        retry: RetryPolicy {
            max_attempts: args.max_attempts.max(1),
            base_delay: Duration::from_millis(args.retry_base_ms),
            request_timeout: Duration::from_secs(args.request_timeout_secs.max(1)),
            ..RetryPolicy::default()
        },
        page_size: args.page_size.max(1),
        sinks: vec![(stdout, SinkRoute::all("stdout"))],
        delivery: DeliveryPolicy::default(),
        drain_timeout: Duration::from_secs(args.deliver_timeout_secs),
        filter: LogFilter {
            include: args.include_logs,
            exclude: args.exclude_logs,
        },
        probe,
    };
    let summary = crate::run::run(opts, shutdown).await?;
    for (log, err) in &summary.failed_logs {
        eprintln!("ctwatch: log {log} did not catch up: {err}");
    }
    if let Some(e) = &summary.probe_error {
        eprintln!("ctwatch: the probe pass failed: {e}");
    }
    for (sink, n) in summary.undelivered.iter().filter(|(_, n)| *n > 0) {
        eprintln!(
            "ctwatch: {n} notification(s) for {sink} still queued; they will be sent by the next run"
        );
    }
    Ok(if summary.ok() { 0 } else { 1 })
}

pub fn search_command(args: SearchArgs) -> Result<u8> {
    let store = args.db.open()?;
    let certs = store.search(&args.name, args.limit)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&certs)?);
        return Ok(0);
    }
    if certs.is_empty() {
        println!(
            "no stored certificate for {} or any name under it",
            args.name
        );
    }
    for c in &certs {
        println!("{} {} ({})", c.tbs_sha256, c.subject, c.entry_type);
        println!("  names:    {}", c.dns_names.join(", "));
        println!("  issuer:   {}", c.issuer);
        println!("  valid:    {} .. {}", c.not_before, c.not_after);
        for s in &c.sightings {
            println!(
                "  seen:     {} #{} {} {}",
                s.log, s.index, s.entry_type, s.timestamp
            );
        }
    }
    Ok(0)
}

pub fn logs_command(args: LogsArgs) -> Result<u8> {
    let store = args.db.open()?;
    let logs = store.list_logs()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&logs)?);
        return Ok(0);
    }
    let tty = std::io::stdout().is_terminal();
    println!(
        "{:<8} {:<10} {:>12} {:>12} {:>10}  {:<20}  URL / last error",
        "KIND", "STATE", "VERIFIED", "HEAD", "BACKLOG", "LAST CONTACT"
    );
    for l in &logs {
        let fmt_n = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
        let contact = l
            .last_success_at
            .map(crate::event::rfc3339)
            .unwrap_or_else(|| "never".into());
        println!(
            "{:<8} {:<10} {:>12} {:>12} {:>10}  {:<20}  {}",
            l.kind,
            l.state,
            l.verified_size,
            fmt_n(l.head_size),
            fmt_n(l.backlog),
            contact,
            l.url
        );
        if let Some(err) = &l.last_error {
            let err: String = if tty {
                err.chars().take(160).collect()
            } else {
                err.clone()
            };
            println!("{:>8} last error: {err}", "");
        }
    }
    Ok(0)
}

pub fn outbox_command(args: OutboxArgs) -> Result<u8> {
    let store = args.db.open()?;
    if args.retry {
        let n = store.requeue_failed(args.sink.as_deref())?;
        println!("re-queued {n} failed deliveries");
        return Ok(0);
    }
    let summary = store.outbox_summary()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "{:<24} {:>8} {:>8} {:>10}",
            "SINK", "PENDING", "FAILED", "DELIVERED"
        );
        for s in &summary {
            println!(
                "{:<24} {:>8} {:>8} {:>10}",
                s.sink, s.pending, s.failed, s.delivered
            );
        }
    }
    Ok(0)
}

pub fn watchlist_check_command(path: Option<PathBuf>) -> Result<u8> {
    let path = path.unwrap_or_else(|| PathBuf::from("watchlists"));
    match crate::watchlist::check(&path) {
        Ok(summary) => {
            println!("{summary}");
            Ok(0)
        }
        Err(errs) => {
            eprintln!("{errs}");
            Ok(1)
        }
    }
}
