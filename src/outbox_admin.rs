//! `ctwatch outbox retry | drop`, and what the listing says about sink names: an unknown `--sink` is named,
//! sinks the last run did not have are marked orphaned.

use anyhow::{Result, bail};

use crate::cli::{OutboxAction, OutboxArgs};
use crate::store::{OutboxSummary, Store};

/// `outbox retry [--sink S]` and `outbox drop --sink S`: change an existing database (never create one).
pub fn change(args: &OutboxArgs) -> Result<u8> {
    let store = crate::database::open_existing(&args.db, &args.config)?;
    let summary = store.outbox_summary()?;
    check_sink_name(&summary, args.sink.as_deref())?;
    if args.action == Some(OutboxAction::Drop) {
        let Some(sink) = args.sink.as_deref() else {
            bail!(
                "outbox drop needs --sink NAME (the sink whose undelivered notifications are deleted)"
            );
        };
        let n = store.drop_undelivered(sink)?;
        println!("dropped {n} undelivered notification(s) of sink {sink}");
        return Ok(0);
    }
    let n = store.requeue_failed(args.sink.as_deref())?;
    println!("re-queued {n} failed deliveries");
    Ok(0)
}

/// An error naming the sinks that exist when `--sink` names none of them.
pub fn check_sink_name(summary: &[OutboxSummary], sink: Option<&str>) -> Result<()> {
    let Some(sink) = sink else { return Ok(()) };
    if summary.iter().any(|s| s.sink == sink) {
        return Ok(());
    }
    let known: Vec<&str> = summary.iter().map(|s| s.sink.as_str()).collect();
    if known.is_empty() {
        bail!("no sink named {sink:?} in the outbox: it is empty");
    }
    bail!(
        "no sink named {sink:?} in the outbox; its sinks are: {}",
        known.join(", ")
    )
}

/// Sinks with undelivered notifications that the last run did not have (removed from the config).
pub fn orphaned(store: &Store, summary: &[OutboxSummary]) -> Vec<String> {
    let Some(configured) = crate::run_report::last_run_sinks(store) else {
        return Vec::new();
    };
    summary
        .iter()
        .filter(|s| s.pending + s.failed > 0 && !configured.contains(&s.sink))
        .map(|s| s.sink.clone())
        .collect()
}
