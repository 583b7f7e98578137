//! Before and after `ctwatch run`: what it leaves for `ctwatch logs` / `ctwatch outbox` (the log list it used,
//! the sinks it had), and what it tells the person who started it when it ends — one line per problem, one
//! diagnosis when no log was reachable, one summary line on a terminal when `--once` worked, and deliveries
//! queued for sinks that no longer exist reported once instead of failing every later run.

use std::collections::BTreeMap;
use std::io::IsTerminal;

use crate::ct::loglist::LogList;
use crate::logsource::Origin;
use crate::notify::SinkConfig;
use crate::run::RunSummary;
use crate::store::Store;
use crate::terminal::{OnceFigures, failed_logs_report, verbosity};

/// Fact keys.
pub const FACT_LOG_LIST: &str = "log_list";
pub const FACT_SINKS: &str = "sinks";
const FACT_ORPHANS: &str = "orphans_reported";

/// Remember which log list this run used (origin, version, timestamp) for `ctwatch logs`.
pub fn record_log_list(store: &Store, list: &LogList, origin: &Origin) {
    let origin = match origin {
        Origin::File(p) => format!("file {}", p.display()),
        Origin::Fetched(u) | Origin::NotModified(u) => u.clone(),
        Origin::Cache(p) => format!("cached copy {}", p.display()),
        Origin::Bundled => "the copy bundled with ctwatch".to_string(),
    };
    let v = serde_json::json!({
        "origin": origin,
        "version": list.version,
        "timestamp": list.timestamp,
    });
    if let Err(e) = store.set_fact(FACT_LOG_LIST, &v.to_string()) {
        tracing::warn!("recording the log list used: {e}");
    }
}

/// Sinks without a `name` used to be called `<type>:<hash>`; move what is queued under the old name.
pub fn adopt_legacy_names(store: &Store, configs: &[SinkConfig]) {
    for (old, new) in configs
        .iter()
        .filter_map(crate::notify::legacy_default_name)
    {
        match store.rename_sink(&old, &new) {
            Ok(0) => {}
            Ok(n) => tracing::info!("{n} queued deliveries of sink {old} now go to {new}"),
            Err(e) => tracing::warn!("renaming sink {old} to {new}: {e}"),
        }
    }
}

/// Figures taken before a run, to tell what the run itself did.
pub struct Before {
    last_event: i64,
    started_unix: i64,
}

impl Before {
    pub fn take(store: &Store) -> Before {
        Before {
            last_event: store.last_event_id().unwrap_or(0),
            started_unix: crate::store::unix_now(),
        }
    }
}

/// Print the end of a run on stderr and drop orphaned deliveries from what decides the exit code.
/// `sinks`: the names of the sinks this run had.
pub fn report_end(
    store: &Store,
    summary: &mut RunSummary,
    sinks: &[String],
    before: &Before,
    once: bool,
) {
    let verbose = verbosity() > 0;
    let _ = store.set_fact(
        FACT_SINKS,
        &serde_json::to_string(sinks).unwrap_or_default(),
    );
    let (mine, orphans): (Vec<_>, Vec<_>) = std::mem::take(&mut summary.undelivered)
        .into_iter()
        .partition(|(sink, _)| sinks.contains(sink));
    summary.undelivered = mine;
    report_orphans(store, &orphans, verbose);
    for line in failed_logs_report(summary.logs, &summary.failed_logs, verbose) {
        eprintln!("{line}");
    }
    if let Some(e) = &summary.probe_error {
        eprintln!("ctwatch: the probe pass failed: {e}");
    }
    for (sink, n) in summary.undelivered.iter().filter(|(_, n)| *n > 0) {
        eprintln!(
            "ctwatch: {n} notification(s) for {sink} still queued; they will be sent by the next run"
        );
    }
    if once && summary.ok() && std::io::stderr().is_terminal() {
        eprintln!("{}", figures(store, summary, before));
    }
}

fn figures(store: &Store, summary: &RunSummary, before: &Before) -> OnceFigures {
    OnceFigures {
        logs: summary.logs,
        entries: summary
            .stats
            .values()
            .map(|s| s.processed.load(std::sync::atomic::Ordering::Relaxed))
            .sum(),
        events: store
            .events_since(before.last_event)
            .unwrap_or_default()
            .into_iter()
            .collect(),
        sent: store.delivered_since(before.started_unix).unwrap_or(0),
    }
}

/// Deliveries queued for sinks this run does not have: said once (again only when the count changes, or
/// with -v), never a failure.
fn report_orphans(store: &Store, orphans: &[(String, u64)], verbose: bool) {
    let now: BTreeMap<String, u64> = orphans.iter().filter(|(_, n)| *n > 0).cloned().collect();
    let said: BTreeMap<String, u64> = store
        .fact(FACT_ORPHANS)
        .ok()
        .flatten()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    for (sink, n) in &now {
        if verbose || said.get(sink) != Some(n) {
            eprintln!(
                "ctwatch: {n} notification(s) are queued for sink {sink}, which is not configured any more \
                 (orphaned; `ctwatch outbox` lists them): configure it again to send them, or delete them with \
                 `ctwatch outbox drop --sink {sink}`"
            );
        }
    }
    if now != said {
        let _ = store.set_fact(
            FACT_ORPHANS,
            &serde_json::to_string(&now).unwrap_or_default(),
        );
    }
}

/// The sinks the last run had (for `ctwatch outbox` to mark orphaned ones), if any run recorded them.
pub fn last_run_sinks(store: &Store) -> Option<Vec<String>> {
    serde_json::from_str(&store.fact(FACT_SINKS).ok()??).ok()
}
