//! Command-line arguments that several commands and the configuration share: the database flag and the flags of
//! `ctwatch run`. Kept apart from `cli` (which dispatches the commands) so that `config` and `probe` can read them
//! without depending on the command layer.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use crate::notify::SinkArgs;
use crate::store::Store;
use crate::tailer::StartAt;

#[derive(Args, Debug, Clone, Default)]
pub struct DbArg {
    /// SQLite database file, or a PostgreSQL URL (postgres://user@host/db). Default:
    /// $XDG_DATA_HOME/ctwatch/ctwatch.db (~/.local/share/ctwatch/ctwatch.db).
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

#[derive(Args, Debug, Default)]
pub struct RunArgs {
    #[command(flatten)]
    pub db: DbArg,
    /// Config file (TOML; see `ctwatch config example`). Default: ~/.config/ctwatch/config.toml if it exists.
    #[arg(long, env = "CTWATCH_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Catch every log up to the head seen at start, deliver queued notifications, then exit (for cron).
    #[arg(long)]
    pub once: bool,
    /// Print one JSON object per line on stdout instead of human lines.
    #[arg(long)]
    pub json: bool,
    /// Log list (Google v3 JSON): a file or an http(s) URL [default: Google's list, signature-checked].
    #[arg(long, value_name = "FILE_OR_URL")]
    pub log_list: Option<String>,
    /// Signature of a --log-list URL other than Google's, checked with Google's key.
    #[arg(long, value_name = "URL")]
    pub log_list_sig: Option<String>,
    /// Seconds between two re-reads of the log list (daemon mode) [default: 3600].
    #[arg(long)]
    pub log_list_refresh_secs: Option<u64>,
    /// Watchlist file, or directory of *.txt files [default: watchlists].
    #[arg(long, value_name = "FILE_OR_DIR")]
    pub watchlist: Option<PathBuf>,
    /// Where a log seen for the first time starts: end, beginning, or an entry index [default: end]. Ignored
    /// (with a warning) for logs already followed: see --restart-at.
    #[arg(long)]
    pub start_at: Option<StartAt>,
    /// Re-read the logs chosen with --include-log from entry N, even if they are already followed (their
    /// stored position moves back; certificates already reported are not reported again).
    #[arg(long, value_name = "N", requires = "include_logs")]
    pub restart_at: Option<u64>,
    /// Seconds between two polls of a log's signed tree head [default: 5].
    #[arg(long)]
    pub poll_interval_secs: Option<u64>,
    /// Most requests in flight per log; the window adapts below it (grows while the log answers, halves on 429,
    /// 5xx and timeouts) [default: 32].
    #[arg(long)]
    pub parallel_requests: Option<usize>,
    /// Memory for entries downloaded but not yet processed, across all logs, in MiB [default: 32].
    #[arg(long, value_name = "MIB")]
    pub max_inflight_mb: Option<u64>,
    /// Cap on download bandwidth across all logs, per second: e.g. 100mbit, 12MB [default: no cap].
    #[arg(long, value_name = "RATE")]
    pub max_bandwidth: Option<String>,
    /// Entries asked for in one get-entries request; logs may return fewer [default: 256].
    #[arg(long)]
    pub page_size: Option<u64>,
    /// Entries verified and committed per SQLite transaction [default: 4096].
    #[arg(long)]
    pub batch_entries: Option<u64>,
    /// Store every certificate seen (a full local index for `search`), not only matching ones.
    #[arg(long)]
    pub store_all: bool,
    /// Publish verified certificates to this NATS JetStream server (`nats://127.0.0.1:4222`); overrides
    /// `[stream] nats` (README: NATS stream).
    #[arg(long, env = "CTWATCH_NATS", value_name = "URL")]
    pub nats: Option<String>,
    /// Only follow logs whose URL or operator contains this text (repeatable).
    #[arg(long = "include-log", value_name = "TEXT")]
    pub include_logs: Vec<String>,
    /// Do not follow logs whose URL or operator contains this text (repeatable).
    #[arg(long = "exclude-log", value_name = "TEXT")]
    pub exclude_logs: Vec<String>,
    /// Attempts per HTTP request before a cycle fails [default: 6].
    #[arg(long)]
    pub max_attempts: Option<u32>,
    /// First retry delay in milliseconds, doubling per attempt with jitter [default: 500].
    #[arg(long)]
    pub retry_base_ms: Option<u64>,
    /// Timeout of one HTTP request, in seconds [default: 30].
    #[arg(long)]
    pub request_timeout_secs: Option<u64>,
    /// With --once: seconds to keep delivering queued notifications before exiting [default: 60].
    #[arg(long)]
    pub deliver_timeout_secs: Option<u64>,
    /// With --once: overall deadline in seconds; then commit what is verified, deliver what is queued (within
    /// --deliver-timeout-secs), print what is left per log and exit 1 [default: 600].
    #[arg(long)]
    pub once_timeout_secs: Option<u64>,
    /// Longest wait a log's Retry-After may impose, in seconds (longer asks are capped) [default: 60].
    #[arg(long)]
    pub max_retry_after_secs: Option<u64>,
    #[command(flatten)]
    pub sinks: SinkArgs,
    /// Serve the HTTP API (/health, /metrics, /api/v1/) on ADDR: `127.0.0.1:8080`, `[::1]:8080`, or a bare port
    /// (on 127.0.0.1). Off by default.
    #[arg(long, value_name = "ADDR", value_parser = crate::api::parse_listen)]
    pub listen: Option<std::net::SocketAddr>,
    #[command(flatten)]
    pub probe: crate::probe::scheduler::ProbeRunArgs,
    #[command(flatten)]
    pub caa: crate::caa::checker::CaaRunArgs,
    /// This instance's name in a database shared by several instances (log leases, `ctwatch logs`)
    /// [default: hostname-pid-random].
    #[arg(long, env = "CTWATCH_INSTANCE_ID", value_name = "ID")]
    pub instance_id: Option<String>,
}
