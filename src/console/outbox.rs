//! The Outbox page: deliveries per sink, what is stuck and why, and the re-queue button.

use maud::{Markup, html};

use super::Viewer;
use super::layout::{self, ago, count};
use crate::store::{OutboxItem, OutboxSummary};

pub(crate) fn render(
    v: &Viewer,
    sinks: &[OutboxSummary],
    items: &[OutboxItem],
    sink: Option<&str>,
    requeued: Option<usize>,
    now: i64,
) -> Markup {
    let failed: u64 = sinks
        .iter()
        .filter(|s| sink.is_none_or(|x| x == s.sink))
        .map(|s| s.failed)
        .sum();
    html! {
        h1 { "Outbox" @if let Some(s) = sink { span.muted { " · sink " (s) } } }
        @if let Some(n) = requeued {
            div.notice.ok role="status" { (n) " failed deliveries were put back in the queue." }
        }
        section.card {
            h2 { "Sinks" }
            @if sinks.is_empty() { p.empty { "Nothing was ever queued." } } @else {
                table.data {
                    thead { tr { th { "Sink" } th.num { "Pending" } th.num { "Failed" } th.num { "Delivered" } th { "Last error" } } }
                    tbody { @for s in sinks { tr class=[(sink == Some(s.sink.as_str())).then_some("selected")] {
                        td { a href=(format!("/outbox{}", layout::query(&[("sink", s.sink.clone())]))) { (s.sink) } }
                        td.num { (count(s.pending)) }
                        td.num class=[(s.failed > 0).then_some("bad")] { (count(s.failed)) }
                        td.num { (count(s.delivered)) }
                        td.error { (last_error(items, &s.sink)) }
                    } } }
                }
            }
            form.inline id="requeue" method="post" action="/outbox/requeue" {
                (layout::csrf_field(v))
                input type="hidden" name="sink" value=(sink.unwrap_or(""));
                button.button type="submit" disabled[failed == 0] {
                    "Re-queue " (count(failed)) " failed" @if let Some(s) = sink { " of " (s) }
                }
                span.muted.small { " Failed deliveries are retried from scratch (attempts reset)." }
            }
        }
        section.card {
            h2 { "Undelivered" span.muted { " · pending and failed, oldest first" } }
            @if items.is_empty() { p.empty { "Nothing waiting. Every event reached its sinks." } } @else {
                div.scroll { table.data {
                    thead { tr { th.num { "Event" } th { "Sink" } th { "Kind" } th { "Status" } th.num { "Attempts" } th { "Next attempt" } th { "Last error" } } }
                    tbody { @for i in items { tr {
                        td.num { (i.event_id) }
                        td { (i.sink) }
                        td { (layout::kind_badge(&i.kind)) }
                        td { span.badge class=(if i.status == "failed" { "critical" } else { "warning" }) { (i.status) } }
                        td.num { (i.attempts) }
                        td { @if i.status == "pending" { (if i.next_attempt_at <= now { "now".to_string() } else { format!("in {}", layout::duration(i.next_attempt_at - now)) }) } }
                        td.error { (i.last_error.clone().unwrap_or_default()) br; span.muted.small { "queued " (ago(now, i.created_at)) } }
                    } } }
                } }
            }
        }
    }
}

fn last_error(items: &[OutboxItem], sink: &str) -> String {
    items
        .iter()
        .rev()
        .filter(|i| i.sink == sink)
        .find_map(|i| i.last_error.clone())
        .map(|e| super::pages::truncate(&e, 120))
        .unwrap_or_default()
}
