//! The Watchlists page: items per file, counts per kind, and what `watchlist check` reports.

use std::path::Path;

use maud::{Markup, html};

use crate::watchlist::{Inspection, WatchlistError, inspect};

pub(crate) fn report(path: &Path) -> Inspection {
    inspect(path)
}

fn problem(kind: &str, e: &WatchlistError) -> Markup {
    html! {
        li class=(kind) {
            span.badge class=(if kind == "error" { "critical" } else { "warning" }) { (kind) } " "
            code { (e.source) @if e.line > 0 { ":" (e.line) } } " " (e.message)
            @if let Some(h) = &e.hint { br; span.muted.small { "hint: " (h) } }
        }
    }
}

pub(crate) fn render(path: Option<&Path>, report: Option<Inspection>) -> Markup {
    html! {
        h1 { "Watchlists" @if let Some(p) = path { span.muted { " · " (p.display()) } } }
        @match (path, report) {
            (None, _) | (_, None) => {
                section.card { p.empty { "This ctwatch was started without a watchlist (--watchlist FILE|DIR)." } }
            }
            (Some(_), Some(r)) => {
                @let total: usize = r.files.iter().map(|f| f.items.len()).sum();
                section.card {
                    h2 { "Check" }
                    @if r.errors.is_empty() && r.warnings.is_empty() {
                        p { span.badge.ok { "OK" } " " (total) " items in " (r.files.len()) " file(s), no warnings." }
                    } @else {
                        @if !r.errors.is_empty() {
                            p { span.badge.critical { (r.errors.len()) " errors" } " The running daemon keeps the last valid watchlist until these are fixed." }
                        }
                        ul.problems {
                            @for e in &r.errors { (problem("error", e)) }
                            @for w in &r.warnings { (problem("warning", w)) }
                        }
                    }
                }
                @for f in &r.files {
                    section.card {
                        h2 { code { (f.source) } span.muted { " · " (f.items.len()) " items" } }
                        p.kinds { @for (k, n) in &f.kinds { span.badge.info { (n) " " (k) } " " } }
                        @if !f.items.is_empty() {
                            div.scroll { table.data.compact {
                                thead { tr { th.num { "Line" } th { "Item" } th { "Kind" } th { "Tags" } } }
                                tbody { @for i in &f.items { tr {
                                    td.num.muted { (i.line) }
                                    td { code { (i.text) } @if i.policy { " " span.badge.warning title="issuers= policy" { "issuers" } } }
                                    td { (i.kind) }
                                    td { @for t in &i.tags { span.tag { (t) } " " } }
                                } } }
                            } }
                        }
                    }
                }
            }
        }
    }
}
