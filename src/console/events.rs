//! The Events page: newest first, filtered by kind, tag, watch item, name and time range, paged by id.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::Viewer;
use super::layout::{self, ago};
use super::pages::query;
use crate::api::ApiState;
use crate::store::{EventFilter, EventRow, unix_now};

/// Events per page.
pub(crate) const PAGE: usize = 50;

const KINDS: &[&str] = &[
    "new_certificate",
    "unauthorized_issuer",
    "lookalike",
    "probe",
    "health",
];

#[derive(Deserialize, Default, Clone)]
pub(crate) struct EventQuery {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    item: String,
    #[serde(default)]
    name: String,
    /// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM` (UTC).
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    before: Option<i64>,
    after: Option<i64>,
}

/// `2026-11-30` or `2026-11-30T10:15[:00]` as unix seconds, UTC (pure).
pub(crate) fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    let full = match s.len() {
        10 => format!("{s}T00:00:00Z"),
        16 => format!("{s}:00Z"),
        19 => format!("{s}Z"),
        _ => s.to_string(),
    };
    time::OffsetDateTime::parse(&full, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

fn opt(s: &str) -> Option<String> {
    Some(s.trim().to_string()).filter(|s| !s.is_empty())
}

impl EventQuery {
    fn filter(&self) -> EventFilter {
        EventFilter {
            kind: opt(&self.kind),
            tag: opt(&self.tag),
            item: opt(&self.item),
            name: opt(&self.name),
            since: parse_time(&self.since),
            until: parse_time(&self.until),
            before: self.before,
            after: self.after,
        }
    }

    /// This query's filters with a different page position.
    fn link(&self, before: Option<i64>, after: Option<i64>) -> String {
        let mut pairs = vec![
            ("kind", self.kind.clone()),
            ("tag", self.tag.clone()),
            ("item", self.item.clone()),
            ("name", self.name.clone()),
            ("since", self.since.clone()),
            ("until", self.until.clone()),
        ];
        if let Some(b) = before {
            pairs.push(("before", b.to_string()));
        }
        if let Some(a) = after {
            pairs.push(("after", a.to_string()));
        }
        format!("/events{}", layout::query(&pairs))
    }
}

pub(crate) async fn page(
    State(state): State<Arc<ApiState>>,
    Extension(v): Extension<Viewer>,
    Query(q): Query<EventQuery>,
) -> Response {
    let f = q.filter();
    let (rows, more) = match query(&state.store, move |s| {
        let mut rows = s.event_page(&f, PAGE + 1)?;
        let more = rows.len() > PAGE;
        // Paging towards newer events drops the oldest extra; towards older, the newest is kept.
        if more {
            if f.after.is_some() && f.before.is_none() {
                rows.remove(0);
            } else {
                rows.truncate(PAGE);
            }
        }
        Ok((rows, more))
    })
    .await
    {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let going_newer = q.after.is_some() && q.before.is_none();
    let newer = if (going_newer && more) || (!going_newer && (q.before.is_some())) {
        rows.first().map(|r| q.link(None, Some(r.id)))
    } else {
        None
    };
    let older = if more || going_newer {
        rows.last().map(|r| q.link(Some(r.id), None))
    } else {
        None
    };
    let now = unix_now();
    let body = html! {
        h1 { "Events" span.muted { " · newest first" } }
        section.card { (filters(&q)) }
        section.card {
            @if rows.is_empty() {
                p.empty { "No event matches these filters." }
            } @else {
                div.scroll { table.data id="events" {
                    thead { tr { th { "When" } th { "Kind" } th { "Names" } th { "Matched" } th { "Tags" } th { "Source" } } }
                    tbody { @for e in &rows { (row(e, now)) } }
                } }
            }
            (layout::pager(newer, older))
        }
    };
    layout::html_response(
        StatusCode::OK,
        layout::page("Events", "/events", Some(&v), body),
    )
}

fn filters(q: &EventQuery) -> Markup {
    html! {
        form.filters method="get" action="/events" {
            label { "Kind " select name="kind" {
                option value="" { "any" }
                @for k in KINDS { option value=(k) selected[q.kind == *k] { (k.replace('_', " ")) } }
            } }
            label { "Tag " input type="text" name="tag" value=(q.tag) size="12"; }
            label { "Watch item " input type="text" name="item" value=(q.item) size="16"; }
            label { "Name contains " input type="text" name="name" value=(q.name) size="18"; }
            label { "From " input type="datetime-local" name="since" value=(q.since); }
            label { "to " input type="datetime-local" name="until" value=(q.until); }
            button.button type="submit" { "Filter" }
            a.button.secondary href="/events" { "Reset" }
        }
    }
}

fn strs(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

fn row(e: &EventRow, now: i64) -> Markup {
    let p = &e.payload;
    let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let names = strs(p, "dns_names");
    let tbs = s("tbs_sha256");
    let mut matched: Vec<String> = p
        .get("matched")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("item").and_then(Value::as_str).map(String::from))
        .collect();
    matched.sort();
    matched.dedup();
    let link = (tbs.len() == 64 && tbs.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| format!("/cert/{tbs}"));
    html! {
        tr.event data-href=[link.as_deref()] {
            td { span title=(layout::time(e.created_at)) { (ago(now, e.created_at)) } }
            td { (layout::kind_badge(&e.kind)) }
            td.names {
                @if names.is_empty() {
                    (s("message"))
                } @else {
                    @for (i, n) in names.iter().take(3).enumerate() {
                        @if i > 0 { br; }
                        @if i == 0 { @if let Some(l) = &link { a href=(l) { (layout::name_cell(n)) } } @else { (layout::name_cell(n)) } } @else { (layout::name_cell(n)) }
                    }
                    @if names.len() > 3 { br; span.muted.small { "+" (names.len() - 3) " more" } }
                }
            }
            td { @for m in &matched { code { (m) } " " } }
            td { @for t in &e.tags { span.tag { (t) } " " } }
            td.small { @if !s("log").is_empty() { (s("log_description")) " #" (p.get("index").and_then(Value::as_u64).unwrap_or(0)) } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn times() {
        assert_eq!(parse_time("1970-01-02"), Some(86400));
        assert_eq!(parse_time("1970-01-01T01:00"), Some(3600));
        assert_eq!(parse_time("1970-01-01T00:00:10"), Some(10));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time(""), None);
    }
}
