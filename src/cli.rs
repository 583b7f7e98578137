//! Command-line interface: argument definitions and the small commands. `main.rs` only parses and dispatches.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::ctlog::http::build_client;
use crate::logsource::LogListSource;
use crate::notify::{Sink, SinkArgs, StdoutFormat, StdoutSink};
use crate::store::{SinkRoute, Store};
use crate::watchlist::Watchlist;

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

// Parsed once per process: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
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
    /// Configuration file tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Probe what TLS certificate hosts really serve (bulk; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 failure).
    Check(crate::probe::cli::CheckArgs),
    /// Notification tools.
    Notify {
        #[command(subcommand)]
        command: NotifyCommand,
    },
    /// Daily expiry report of the probed hosts, per client tag, worst first (for a cron email).
    Report(crate::probe::daily::ReportArgs),
    /// Per watched domain: every valid certificate known from CT, the hosts serving it, wildcards, and
    /// certificates never seen served.
    Inventory(crate::inventory::InventoryArgs),
    /// Database tools.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum DbCommand {
    /// Copy the SQLite database (--db / CTWATCH_DB / the config's db) into PostgreSQL: positions, certificates,
    /// sightings, matches, the outbox with what is still pending, probe history, findings, CAA checks, pauses.
    /// Resumable: run it again after an interruption and it continues where it stopped. Stop the daemon first.
    MigrateTo(MigrateToArgs),
}

#[derive(Args, Debug)]
pub struct MigrateToArgs {
    /// The PostgreSQL database to fill (postgres://user@host/db); its tables are created if missing.
    pub url: String,
    #[command(flatten)]
    pub db: DbArg,
    #[command(flatten)]
    pub config: crate::database::ConfigArg,
    /// Rows per transaction (each chunk is committed with its progress record).
    #[arg(long, default_value_t = 5000)]
    pub chunk_rows: usize,
}

/// `ctwatch db migrate-to URL`.
pub fn migrate_to_command(args: MigrateToArgs) -> Result<u8> {
    let source = crate::database::resolve(&args.db, &args.config)?;
    anyhow::ensure!(
        crate::store::postgres_url(&source).is_none(),
        "the source database {} is already PostgreSQL: give the SQLite file with --db",
        source.display()
    );
    anyhow::ensure!(
        crate::store::pg::is_postgres_url(&args.url),
        "{} is not a postgres:// URL",
        args.url
    );
    anyhow::ensure!(
        source.is_file(),
        "no SQLite database at {}",
        source.display()
    );
    let target = crate::store::pg::PgStore::open(&args.url)
        .with_context(|| format!("opening {}", crate::store::pg::redact(&args.url)))?;
    let mut last = String::new();
    crate::store::pg::migrate_sqlite(&source, &target, args.chunk_rows, |p| {
        let line = format!(
            "{:<16} {:>10} / {} rows{}",
            p.table,
            p.rows,
            p.total,
            if p.done { "  done" } else { "" }
        );
        if p.done {
            eprintln!("{line}");
        } else if line != last {
            eprint!("{line}\r");
        }
        last = line;
    })
    .with_context(|| {
        format!(
            "copying {} into {} (run the command again to resume)",
            source.display(),
            target.url()
        )
    })?;
    eprintln!("{} copied into {}", source.display(), target.url());
    Ok(0)
}

impl Command {
    /// The config file this command reads sinks from (for its `env_file`), if any.
    pub fn config_path(&self) -> Option<PathBuf> {
        let explicit = match self {
            Command::Run(a) => a.config.as_deref(),
            Command::Notify {
                command: NotifyCommand::Test(a),
            } => a.config.as_deref(),
            Command::Config {
                command: ConfigCommand::Check { path },
            } => path.as_deref(),
            _ => return None,
        };
        crate::database::config_file(explicit)
    }
}

#[derive(Subcommand, Debug)]
pub enum NotifyCommand {
    /// Send a test message to every configured sink and report, per sink, success or the error.
    Test(NotifyTestArgs),
}

#[derive(Args, Debug)]
pub struct NotifyTestArgs {
    /// Config file whose [[sinks]] are tested (its `env_file` is read for missing variables). Default:
    /// ~/.config/ctwatch/config.toml if it exists.
    #[arg(long, env = "CTWATCH_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub sinks: SinkArgs,
}

#[derive(Subcommand, Debug)]
pub enum WatchlistCommand {
    /// Validate watchlist files and print every error with file:line.
    Check {
        /// File or directory (every *.txt). Default: watchlists/
        path: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print a complete, commented example config file.
    Example,
    /// Validate a config file (unknown keys and bad values are errors naming the key).
    Check {
        /// Default: ~/.config/ctwatch/config.toml
        path: Option<PathBuf>,
    },
}

pub use crate::args::{DbArg, RunArgs, default_db_path};

#[derive(Args, Debug)]
pub struct SearchArgs {
    #[command(flatten)]
    pub db: DbArg,
    #[command(flatten)]
    pub config: crate::database::ConfigArg,
    /// A DNS name: certificates for it and every name under it.
    pub name: String,
    /// Print JSON (an array of certificates with their sightings) instead of text.
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
    #[command(flatten)]
    pub config: crate::database::ConfigArg,
    /// Print JSON (an array of logs) instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(subcommand)]
    pub action: Option<LogsAction>,
}

#[derive(Subcommand, Debug)]
pub enum LogsAction {
    /// Make the next run re-read a known log from entry N (the tree at N is proven against the log's signed
    /// head first; certificates already reported are not reported again).
    Rewind(crate::rewind::RewindArgs),
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutboxAction {
    /// Re-queue failed deliveries.
    Retry,
    /// Delete the undelivered (pending and failed) deliveries of --sink NAME, e.g. of a sink removed from the
    /// configuration.
    Drop,
}

#[derive(Args, Debug)]
pub struct OutboxArgs {
    #[command(flatten)]
    pub db: DbArg,
    #[command(flatten)]
    pub config: crate::database::ConfigArg,
    /// `retry`: re-queue failed deliveries (of one sink with --sink); `drop --sink NAME`: delete a sink's
    /// undelivered ones.
    #[arg(value_enum)]
    pub action: Option<OutboxAction>,
    /// Same as the `retry` action.
    #[arg(long)]
    pub retry: bool,
    /// List at most this many pending or failed deliveries.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Only this sink (its name as `ctwatch outbox` shows it).
    #[arg(long)]
    pub sink: Option<String>,
    /// Print JSON ({"sinks": [...], "undelivered": [...]}) instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Load and validate the watchlist, printing every error.
pub fn load_watchlist(path: &Path) -> Result<Watchlist> {
    Watchlist::load(path)
        .map_err(|errs| anyhow::anyhow!("invalid watchlist {}:\n{errs}", path.display()))
}

/// Assemble `run` from defaults, the config file and the flags (flags win).
pub async fn run_command(
    args: RunArgs,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<u8> {
    let cfg = crate::config::load_for_run(args.config.as_deref())?;
    let mut s = crate::config::Settings::resolve(&args, &cfg)?;
    // One writer per database, taken before anything else touches it; held until this function returns.
    let _lock = crate::runlock::RunLock::acquire_for(&s.db)?;
    // `[api]` in the config serves the API; `--listen` serves it too, and overrides the address.
    let api = match (args.listen, cfg.api.clone()) {
        (Some(listen), api) => Some(crate::api::ApiConfig {
            listen,
            ..api.unwrap_or_default()
        }),
        (None, api) => api,
    };
    if let Some(api) = &api {
        api.validate(|v| std::env::var(v).ok())
            .context("the HTTP API cannot start")?;
    }
    let watchlist = load_watchlist(&s.watchlist)?;
    if watchlist.is_empty() {
        tracing::warn!(
            "no watch items in {}: nothing will be reported (add one domain per line; `ctwatch watchlist check` \
             checks them)",
            s.watchlist.display()
        );
    }
    // Next to the SQLite file; for a PostgreSQL database, in the default data directory.
    let local_db = match crate::store::postgres_url(&s.db) {
        Some(_) => default_db_path(),
        None => s.db.clone(),
    };
    let cache_dir = local_db.parent().map(|d| d.join("cache"));
    let probe = args.probe.config_with(args.once, &cfg.probe)?;
    let source = LogListSource::new(
        &s.log_list,
        s.log_list_sig.clone(),
        cache_dir,
        build_client()?,
    );
    let (log_list, origin) = source.load().await?;
    for (log, why) in &log_list.skipped {
        tracing::warn!(%log, "skipping log from the list: {why}");
    }
    tracing::info!(version = %log_list.version, ?origin, logs = log_list.logs.len(), "log list loaded");
    tracing::info!(watchlist = %s.watchlist.display(), items = watchlist.len(), "watchlist loaded");
    let store = Arc::new(
        Store::open(&s.db).with_context(|| format!("opening database {}", s.db.display()))?,
    );
    crate::run_report::record_log_list(&store, &log_list, &origin);
    crate::rewind::apply_start_flags(&store, &log_list, &mut s, args.restart_at, args.start_at)?;
    let format = if args.json {
        StdoutFormat::Json
    } else {
        StdoutFormat::Human
    };
    let stdout: Arc<dyn Sink> = Arc::new(StdoutSink::new(format));
    let mut sinks = vec![(stdout, SinkRoute::all("stdout"))];
    // Sinks of the config file's [[sinks]] tables, then those of the flags.
    let mut sink_configs = cfg.sinks.clone();
    sink_configs.extend(args.sinks.configs()?);
    sinks.extend(crate::notify::build_sinks(
        &sink_configs,
        crate::notify::http_client()?,
    )?);
    let names: Vec<String> = sinks.iter().map(|(s, _)| s.name().to_string()).collect();
    crate::run_report::adopt_legacy_names(&store, &sink_configs);
    let before = crate::run_report::Before::take(&store);
    let ownership = join_shared_database(&store, &s, api.as_ref()).await?;
    let opts = crate::run::RunOptions {
        log_list,
        log_list_source: source.is_remote().then_some(source),
        log_list_refresh: s.log_list_refresh,
        watchlist,
        watchlist_path: Some(s.watchlist.clone()),
        store: store.clone(),
        tail: s.tail,
        retry: s.retry,
        page_size: s.page_size,
        sinks,
        delivery: s.delivery,
        drain_timeout: s.drain_timeout,
        filter: s.filter,
        registry: std::sync::Arc::new(crate::stats::Registry::with_feed(crate::feed::Feed::new(
            cfg.api
                .as_ref()
                .map_or(crate::feed::DEFAULT_CLIENT_BUFFER, |a| {
                    a.stream.client_buffer_messages
                }),
        ))),
        service: crate::run::ServiceOptions {
            api,
            health: cfg.health.clone(),
            probe: crate::probe::ProbeOptions {
                tbs_identity: Some(|tbs| crate::ct::cert::tbs_identity(tbs).ok()),
                ..Default::default()
            },
            caa: args.caa.config()?,
            stream: s.stream,
            ownership,
            ..Default::default()
        },
        probe,
    };
    let mut summary = crate::run::run(opts, shutdown).await?;
    crate::run_report::report_end(&store, &mut summary, &names, &before, args.once);
    Ok(if summary.ok() { 0 } else { 1 })
}

/// On a PostgreSQL database, several instances may run: join them under this instance's ID (log leases, fenced
/// batches, claimed deliveries). None on a SQLite file (one instance, the run lock).
async fn join_shared_database(
    store: &Arc<Store>,
    s: &crate::config::Settings,
    api: Option<&crate::api::ApiConfig>,
) -> Result<Option<Arc<dyn crate::lease::LogOwnership>>> {
    let Some(url) = crate::store::postgres_url(&s.db) else {
        return Ok(None);
    };
    store.set_instance(&s.instance_id);
    let owner = crate::lease::LeaseOwner::start(
        url,
        s.instance_id.clone(),
        s.lease.clone(),
        api.map(|a| a.listen.to_string()),
    )
    .await
    .with_context(|| {
        format!(
            "joining the instances that share {} (log leases)",
            crate::lease::pg::redact(url)
        )
    })?;
    tracing::info!(instance = %s.instance_id, "sharing the database: this instance tails the logs it leases");
    Ok(Some(owner))
}

pub fn search_command(args: SearchArgs) -> Result<u8> {
    let store = crate::database::open_read_only(&args.db, &args.config)?;
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
    if let Some(LogsAction::Rewind(rewind)) = args.action {
        return crate::rewind::rewind_command(rewind);
    }
    let store = crate::database::open_read_only(&args.db, &args.config)?;
    let logs = store.list_logs()?;
    let owners =
        crate::lease::LogOwners::read(&store).context("reading which instance owns each log")?;
    if args.json {
        let mut rows = serde_json::to_value(&logs)?;
        if let (Some(o), Some(rows)) = (&owners, rows.as_array_mut()) {
            for row in rows {
                let owner = row["log_id"].as_str().and_then(|id| o.owner_of(id));
                row["owner"] = owner.into();
            }
        }
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(0);
    }
    if let Some(line) = crate::logsource::log_list_line(&store, crate::store::unix_now()) {
        println!("{line}");
    }
    if let Some(o) = &owners {
        println!("{}", o.instances_line());
    }
    let tty = std::io::stdout().is_terminal();
    println!(
        "{:<8} {:<16} {:<10} {:>12} {:>12} {:>10} {:>8} {:>9}  {:<20}  URL / last error",
        "KIND",
        "OPERATOR",
        "STATE",
        "VERIFIED",
        "HEAD",
        "BACKLOG",
        "LAG",
        "MALFORMED",
        "LAST CONTACT"
    );
    for l in &logs {
        let fmt_n = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
        let contact = l
            .last_success_at
            .map(crate::event::rfc3339)
            .unwrap_or_else(|| "never".into());
        let operator: String = l.operator.chars().take(16).collect();
        println!(
            "{:<8} {:<16} {:<10} {:>12} {:>12} {:>10} {:>8} {:>9}  {:<20}  {}",
            l.kind,
            operator,
            l.state,
            l.verified_size,
            fmt_n(l.head_size),
            fmt_n(l.backlog),
            l.lag_secs
                .map(|s| crate::health::rules::human_secs(s as i64))
                .unwrap_or_else(|| "-".into()),
            l.malformed_entries,
            contact,
            l.url
        );
        if let (Some(published), Some(lag)) = (l.published_size, l.stream_lag) {
            println!(
                "{:>8} NATS stream: published {published}, stream lag {lag} entr{}",
                "",
                if lag == 1 { "y" } else { "ies" }
            );
        }
        if let Some(owner) = owners.as_ref().map(|o| o.owner_of(&l.log_id)) {
            println!(
                "{:>8} owner: {}",
                "",
                owner.unwrap_or("none (free: the next instance to look takes it)")
            );
        }
        if let Some(err) = &l.last_error {
            let err: String = if tty {
                err.chars().take(160).collect()
            } else {
                err.clone()
            };
            let when = l
                .last_error_at
                .map(crate::event::rfc3339)
                .unwrap_or_default();
            println!("{:>8} last error ({when}): {err}", "");
        }
    }
    Ok(0)
}

pub fn outbox_command(args: OutboxArgs) -> Result<u8> {
    if args.retry || args.action.is_some() {
        return crate::outbox_admin::change(&args);
    }
    let store = crate::database::open_read_only(&args.db, &args.config)?;
    let summary = store.outbox_summary()?;
    crate::outbox_admin::check_sink_name(&summary, args.sink.as_deref())?;
    let orphaned = crate::outbox_admin::orphaned(&store, &summary);
    let items = store.undelivered(args.sink.as_deref(), args.limit)?;
    if args.json {
        let out =
            serde_json::json!({ "sinks": summary, "undelivered": items, "orphaned": orphaned });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(0);
    }
    println!(
        "{:<24} {:>8} {:>8} {:>10}",
        "SINK", "PENDING", "FAILED", "DELIVERED"
    );
    for s in &summary {
        let mark = if orphaned.contains(&s.sink) {
            "  (orphaned: not configured in the last run)"
        } else {
            ""
        };
        println!(
            "{:<24} {:>8} {:>8} {:>10}{mark}",
            s.sink, s.pending, s.failed, s.delivered
        );
    }
    if !items.is_empty() {
        println!();
        println!(
            "{:>8} {:<24} {:<8} {:>8} {:<20}  EVENT / LAST ERROR",
            "EVENT", "SINK", "STATUS", "ATTEMPTS", "NEXT ATTEMPT"
        );
    }
    for i in &items {
        let next = if i.status == "pending" {
            crate::event::rfc3339(i.next_attempt_at)
        } else {
            "-".into()
        };
        println!(
            "{:>8} {:<24} {:<8} {:>8} {:<20}  {} {}",
            i.event_id, i.sink, i.status, i.attempts, next, i.kind, i.group_key
        );
        if let Some(e) = &i.last_error {
            println!("{:>8} last error: {e}", "");
        }
    }
    Ok(0)
}

pub fn watchlist_check_command(path: Option<PathBuf>) -> Result<u8> {
    let path = path.unwrap_or_else(|| PathBuf::from("watchlists"));
    if !path.exists() {
        anyhow::bail!(
            "no watchlist at {}: give a watchlist file or a directory of *.txt files",
            path.display()
        );
    }
    match Watchlist::load(&path) {
        Ok(list) => {
            print!("{}", list.summary());
            if list.is_empty() {
                println!(
                    "no watch items: nothing will be reported (add one domain per line to a *.txt file)"
                );
            }
            Ok(0)
        }
        Err(errs) => {
            eprintln!("{errs}");
            Ok(1)
        }
    }
}

/// `ctwatch notify test`: one test message per sink, straight to the target (not through the outbox).
pub async fn notify_test_command(args: NotifyTestArgs) -> Result<u8> {
    let mut configs = crate::config::load_for_run(args.config.as_deref())?.sinks;
    configs.extend(args.sinks.configs()?);
    let built = crate::notify::build_sinks(&configs, crate::notify::http_client()?)?;
    if built.is_empty() {
        anyhow::bail!(
            "no sink configured: add [[sinks]] to the config file, or pass --webhook, --discord, --slack, --telegram or --sinks-file"
        );
    }
    let sinks: Vec<Arc<dyn Sink>> = built.into_iter().map(|(s, _)| s).collect();
    let mut failed = 0;
    for (name, result) in crate::notify::send_test(&sinks).await {
        match result {
            Ok(()) => println!("{name}: ok"),
            Err(e) => {
                failed += 1;
                println!("{name}: FAILED: {e}");
            }
        }
    }
    Ok(if failed == 0 { 0 } else { 1 })
}

pub fn config_command(command: ConfigCommand) -> Result<u8> {
    match command {
        ConfigCommand::Example => {
            print!("{}", crate::config::EXAMPLE);
            Ok(0)
        }
        ConfigCommand::Check { path } => {
            let path = path
                .or_else(crate::config::default_config_path)
                .ok_or_else(|| anyhow::anyhow!("no config path given and no home directory"))?;
            let cfg = crate::config::load(&path)?;
            crate::config::Settings::resolve(&RunArgs::default(), &cfg)
                .with_context(|| format!("config {}", path.display()))?;
            let missing = crate::config::missing_paths(&cfg);
            if !missing.is_empty() {
                anyhow::bail!("config {}: {}", path.display(), missing.join("; "));
            }
            crate::notify::build_sinks(&cfg.sinks, crate::notify::http_client()?)
                .with_context(|| format!("config {}", path.display()))?;
            // The same checks `run` makes before it serves the API (key length, key_env set, exposure).
            if let Some(api) = &cfg.api {
                api.validate(|v| std::env::var(v).ok())
                    .with_context(|| format!("config {}: [api]", path.display()))?;
            }
            println!("{}: ok", path.display());
            Ok(0)
        }
    }
}
