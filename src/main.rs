//! The `ctwatch` binary: parse the command line, set up logging and signals, dispatch, print the error chain.

use std::process::ExitCode;

use clap::Parser;
use ctwatch::cli::{self, Cli, Command, NotifyCommand, WatchlistCommand};
use tracing_subscriber::EnvFilter;

/// mimalloc for small blocks, malloc's own mmap for large ones: see [`ctwatch::alloc`].
#[global_allocator]
static ALLOCATOR: ctwatch::alloc::SplitAlloc = ctwatch::alloc::SplitAlloc;

fn main() -> ExitCode {
    ctwatch::alloc::configure_mimalloc();
    ctwatch::alloc::configure_libc_malloc();
    keep_resident_memory_small();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version go to stdout and succeed; every usage error exits 3 (clap's own
            // default, 2, means CRITICAL to Nagios and cron).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 3 } else { 0 });
        }
    };
    if !matches!(cli.command, Command::Run(_)) {
        restore_default_sigpipe();
    }
    ctwatch::terminal::set_verbosity(cli.verbose);
    init_logging(cli.verbose);
    // Before any thread exists: variables of the config's env_file that the environment lacks.
    if let Err(e) = ctwatch::envfile::load_for(cli.command.config_path().as_deref()) {
        eprintln!("ctwatch: error: {e:#}");
        return ExitCode::from(3);
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(blocking_threads())
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ctwatch: cannot start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("ctwatch: error: {e:#}");
            ExitCode::from(3)
        }
    }
}

/// Threads for blocking work (SQLite calls, hashing and matching a fetched range, decoding a tile): a few per
/// core. tokio's default (512) lets the pool grow one thread per queued call; following 100 logs that meant ~80
/// threads, each keeping its own allocator heap, for work two cores do anyway (RSS followed the thread count:
/// scripts/bench-firehose.sh). No blocking task waits for another one, so a small pool only queues work.
/// `CTWATCH_BLOCKING_THREADS` overrides.
fn blocking_threads() -> usize {
    if let Some(n) = std::env::var("CTWATCH_BLOCKING_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        return n;
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (cores * 4).max(8)
}

/// Log lines on stderr: `warn` by default (`-v` info, `-vv` debug; `RUST_LOG` overrides), colours only on a
/// terminal and never with `NO_COLOR` set (files, pipes and journald get plain text).
fn init_logging(verbose: u8) {
    let default_level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ctwatch::terminal::colours_on_stderr())
        .with_writer(std::io::stderr)
        .init();
}

/// Transparent huge pages off for this process, first thing: mimalloc advises huge pages for its arena, and with
/// THP every 2 MiB region touched once stays resident in full (following 100 logs, 346 MB of a 488 MB RSS were huge
/// pages while the heap itself peaked near 150 MB: scripts/bench-firehose.sh).
fn keep_resident_memory_small() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments and only changes this process's huge-page flag.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// Commands that print listings (`search x | head`) end quietly when the reader goes away, like other CLI
/// tools, instead of panicking in `println!` (Rust ignores SIGPIPE by default). Not for `run`: the daemon must
/// never die because a pipe closed.
fn restore_default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called once at start-up, before any other thread exists; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

async fn dispatch(command: Command) -> anyhow::Result<u8> {
    match command {
        Command::Run(args) => cli::run_command(args, shutdown_signal()).await,
        Command::Search(args) => cli::search_command(args),
        Command::Logs(args) => cli::logs_command(args),
        Command::Outbox(args) => cli::outbox_command(args),
        Command::Watchlist {
            command: WatchlistCommand::Check { path },
        } => cli::watchlist_check_command(path),
        Command::Check(args) => ctwatch::probe::cli::run(args).await,
        Command::Notify {
            command: NotifyCommand::Test(args),
        } => cli::notify_test_command(args).await,
        Command::Config { command } => cli::config_command(command),
        Command::Report(args) => ctwatch::probe::daily::report_command(args),
        Command::Inventory(args) => ctwatch::inventory::inventory_command(args),
        Command::Db {
            command: cli::DbCommand::MigrateTo(args),
        } => cli::migrate_to_command(args),
    }
}

/// A receiver that turns true on the first Ctrl-C or SIGTERM. A second signal exits at once.
fn shutdown_signal() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: finishing the batch in hand (signal again to exit now)");
        let _ = tx.send(true);
        wait_for_signal().await;
        std::process::exit(130);
    });
    rx
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
