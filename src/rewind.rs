//! Re-reading history of a log ctwatch already follows. `--start-at` only places logs seen for the first
//! time; for a known log it is ignored, and `run` says so. `ctwatch logs rewind LOG --to N` and
//! `ctwatch run --restart-at N --include-log LOG` move a known log back: the wish is stored and the log's next
//! tailer applies it after proving the tree at N against a fresh signed head (see `store::rewind`).

use anyhow::{Result, bail};
use base64::Engine;

use crate::cli::DbArg;
use crate::ct::loglist::LogList;
use crate::database::ConfigArg;
use crate::run::LogFilter;
use crate::store::Store;
use crate::tailer::StartAt;

#[derive(clap::Args, Debug)]
pub struct RewindArgs {
    /// The log: a part of its URL or description, as `ctwatch logs` shows them (must name one log).
    pub log: String,
    /// The entry index to re-read from (0: the whole log).
    #[arg(long, value_name = "N")]
    pub to: u64,
    #[command(flatten)]
    pub db: DbArg,
    #[command(flatten)]
    pub config: ConfigArg,
}

/// `ctwatch logs rewind LOG --to N`.
pub fn rewind_command(args: RewindArgs) -> Result<u8> {
    let store = crate::database::open_existing(&args.db, &args.config)?;
    let found = store.find_logs(&args.log)?;
    let log = match found.as_slice() {
        [] => bail!(
            "no known log matches {:?} (`ctwatch logs` lists them)",
            args.log
        ),
        [one] => one,
        many => match many.iter().find(|l| l.url == args.log) {
            Some(exact) => exact,
            None => bail!(
                "{:?} matches {} logs: {}; give more of the URL",
                args.log,
                many.len(),
                many.iter()
                    .map(|l| l.url.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
    };
    if let Some(head) = log.head_size.filter(|h| args.to > *h) {
        bail!(
            "--to {} is beyond the head of {} ({head} entries at the last contact)",
            args.to,
            log.url
        );
    }
    let id: [u8; 32] = base64::engine::general_purpose::STANDARD
        .decode(&log.log_id)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow::anyhow!("stored log id of {} is corrupt", log.url))?;
    store.request_rewind(&id, args.to)?;
    println!(
        "{}: the next run re-reads it from entry {} (stored position: {}; certificates already reported are not \
         reported again)",
        log.url, args.to, log.verified_size
    );
    Ok(0)
}

/// The logs of `list` that `filter` keeps and the store already follows, with their stored position.
fn known_logs(
    store: &Store,
    list: &LogList,
    filter: &LogFilter,
) -> Result<Vec<([u8; 32], String, u64)>> {
    let mut out = Vec::new();
    for log in list
        .logs
        .iter()
        .filter(|l| l.state.is_monitorable() && filter.accepts(l))
    {
        if let Some(pos) = store.log_position(&log.log_id)? {
            out.push((log.log_id, log.url().to_string(), pos.tree.size()));
        }
    }
    Ok(out)
}

/// `run --restart-at N`: rewind the known logs the filter keeps, and start new ones at N too; else a
/// `--start-at` given for known logs is reported as ignored.
pub fn apply_start_flags(
    store: &Store,
    list: &LogList,
    settings: &mut crate::config::Settings,
    restart_at: Option<u64>,
    start_at: Option<StartAt>,
) -> Result<()> {
    match (restart_at, start_at) {
        (Some(n), _) => {
            request_restarts(store, list, &settings.filter, n)?;
            settings.tail.start_at = StartAt::Index(n);
        }
        (None, Some(start)) => warn_ignored_start_at(store, list, &settings.filter, start)?,
        (None, None) => {}
    }
    Ok(())
}

/// `run --start-at X` given for logs already followed: a warning naming each (up to 3) and its position.
pub fn warn_ignored_start_at(
    store: &Store,
    list: &LogList,
    filter: &LogFilter,
    start_at: StartAt,
) -> Result<()> {
    let known = known_logs(store, list, filter)?;
    let shown = match start_at {
        StartAt::End => "end".to_string(),
        StartAt::Beginning => "0".to_string(),
        StartAt::Index(n) => n.to_string(),
    };
    let fix = format!(
        "to re-read a known log use `ctwatch run --restart-at {} --include-log LOG` or `ctwatch logs rewind LOG --to {0}`",
        match start_at {
            StartAt::Index(n) => n,
            _ => 0,
        }
    );
    match known.as_slice() {
        [] => {}
        few if few.len() <= 3 => {
            for (_, url, pos) in few {
                tracing::warn!(
                    "--start-at {shown} ignored for {url}: already followed, it continues from its stored position {pos} ({fix})"
                );
            }
        }
        many => tracing::warn!(
            "--start-at {shown} ignored for {} logs already followed: they continue from their stored positions \
             ({fix})",
            many.len()
        ),
    }
    Ok(())
}

/// `run --restart-at N`: ask every known log the filter keeps to rewind to N. Returns how many.
pub fn request_restarts(
    store: &Store,
    list: &LogList,
    filter: &LogFilter,
    to: u64,
) -> Result<usize> {
    let known = known_logs(store, list, filter)?;
    for (id, url, pos) in &known {
        store.request_rewind(id, to)?;
        tracing::info!(log = %url, from = pos, to, "restart requested");
    }
    Ok(known.len())
}
