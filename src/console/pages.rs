//! Overview, Expiry, Watchlists, Outbox (with the re-queue action) and Live.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, extract::rejection::FormRejection};
use maud::{Markup, html};
use serde::Deserialize;

use super::Viewer;
use super::layout::{self, ago, count, duration, page};
use crate::api::ApiState;
use crate::api::session::same_token;
use crate::probe::Level;
use crate::store::{ConsoleLog, OutboxSummary, ProbeStatusRow, Store, StoreError, unix_now};

/// Run a store query off the async threads; a failure becomes a 500 page.
pub(crate) async fn query<T: Send + 'static>(
    store: &Arc<Store>,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Response> {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || f(&store)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            tracing::error!("console: {e}");
            Err(layout::error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Storage error",
                &e.to_string(),
            ))
        }
        Err(e) => Err(layout::error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal error",
            &e.to_string(),
        )),
    }
}

struct OverviewData {
    logs: Vec<ConsoleLog>,
    hours: Vec<u64>,
    sinks: Vec<OutboxSummary>,
}

pub(crate) async fn overview(
    State(state): State<Arc<ApiState>>,
    Extension(v): Extension<Viewer>,
) -> Response {
    let now = unix_now();
    let data = match query(&state.store, move |s| {
        Ok(OverviewData {
            logs: s.console_logs()?,
            hours: s.events_per_hour(now)?,
            sinks: s.outbox_summary()?,
        })
    })
    .await
    {
        Ok(d) => d,
        Err(resp) => return resp,
    };
    let followed: Vec<String> = state.registry.logs().into_iter().map(|l| l.url).collect();
    let backlog: u64 = data
        .logs
        .iter()
        .map(|l| l.head_size.unwrap_or(0).saturating_sub(l.verified_size))
        .sum();
    let day: u64 = data.hours.iter().sum();
    let failing = data.sinks.iter().filter(|s| s.failed > 0).count();
    let silent = data
        .logs
        .iter()
        .filter(|l| followed.contains(&l.url) && l.last_success_at.is_none_or(|t| now - t > 600))
        .count();
    let body = html! {
        div.cards {
            div.card.stat { div.label { "Logs followed" } div.value { (followed.len()) } div.sub { (data.logs.len()) " known" } }
            div.card.stat class=[(silent > 0).then_some("bad")] { div.label { "Silent logs" } div.value { (silent) } div.sub { "no contact for 10 min" } }
            div.card.stat { div.label { "Backlog" } div.value { (count(backlog)) } div.sub { "entries to verify" } }
            div.card.stat { div.label { "Events, 24 h" } div.value { (count(day)) } div.sub { "matches, probes, health" } }
            div.card.stat class=[(failing > 0).then_some("bad")] { div.label { "Failing sinks" } div.value { (failing) } div.sub { (data.sinks.len()) " sinks" } }
            div.card.stat { div.label { "Live-feed clients" } div.value { (state.streams.connected()) } div.sub { a href="/live" { "watch it live" } } }
        }
        section.card {
            h2 { "Events per hour" span.muted { " · last 24 hours, UTC" } }
            (layout::hourly_chart(&data.hours, now))
        }
        section.card {
            h2 { "Logs" }
            (logs_table(&state, &data.logs, &followed, now))
        }
        section.card {
            h2 { "Sinks" }
            (sinks_table(&data.sinks))
        }
    };
    layout::html_response(StatusCode::OK, page("Overview", "/", Some(&v), body))
}

fn logs_table(state: &ApiState, logs: &[ConsoleLog], followed: &[String], now: i64) -> Markup {
    html! {
        @if logs.is_empty() {
            p.empty { "No log has been contacted yet." }
        } @else {
            div.scroll { table.data.logs {
                thead { tr {
                    th { "Log" } th { "Kind" } th { "Operator" } th { "State" } th.num { "Verified size" }
                    th.num { "Lag" } th.num { "Entries/s" } th { "Last contact" } th { "Last error" }
                } }
                tbody {
                    @for l in logs {
                        @let lag_entries = l.head_size.unwrap_or(l.verified_size).saturating_sub(l.verified_size);
                        @let lag_secs = if lag_entries == 0 { 0 } else { l.verified_sth_ms.map_or(0, |ms| now - ms / 1000) };
                        @let live = followed.contains(&l.url);
                        @let health = if !live { "idle" } else if l.last_success_at.is_none_or(|t| now - t > 600) { "bad" } else if l.last_error_at.is_some_and(|e| l.last_success_at.is_none_or(|s| e > s)) { "warn" } else { "good" };
                        tr {
                            td { span class=(format!("dot {health}")) title=(health) {} strong { (l.description) } br; span.muted.small { (l.url) } }
                            td { span.badge { (l.kind) } }
                            td { (l.operator) }
                            td { (l.state) @if !live { " " span.muted { "(not followed)" } } }
                            td.num { (count(l.verified_size)) }
                            td.num { (duration(lag_secs)) br; span.muted.small { (count(lag_entries)) " entries" } }
                            td.num { @if let Some(r) = state.console.rate(&l.url) { (format!("{r:.1}")) } @else { span.muted { "–" } } }
                            td { @if let Some(t) = l.last_success_at { span title=(layout::time(t)) { (ago(now, t)) } } @else { span.muted { "never" } } }
                            td.error { @if let Some(e) = &l.last_error { span title=(e) { (truncate(e, 90)) } br; span.muted.small { (l.last_error_at.map(|t| ago(now, t)).unwrap_or_default()) } } }
                        }
                    }
                }
            } }
        }
    }
}

fn sinks_table(sinks: &[OutboxSummary]) -> Markup {
    html! {
        @if sinks.is_empty() {
            p.empty { "No deliveries yet (no sink configured, or nothing to deliver)." }
        } @else {
            table.data {
                thead { tr { th { "Sink" } th.num { "Pending" } th.num { "Failed" } th.num { "Delivered" } } }
                tbody { @for s in sinks { tr {
                    td { a href=(format!("/outbox{}", layout::query(&[("sink", s.sink.clone())]))) { (s.sink) } }
                    td.num { (count(s.pending)) }
                    td.num class=[(s.failed > 0).then_some("bad")] { (count(s.failed)) }
                    td.num { (count(s.delivered)) }
                } } }
            }
        }
    }
}

pub(crate) fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

/// One host of the Expiry page, with the newest CT certificate for it.
struct ExpiryRow {
    status: ProbeStatusRow,
    newest: Option<crate::store::NewestCert>,
}

pub(crate) async fn expiry(
    State(state): State<Arc<ApiState>>,
    Extension(v): Extension<Viewer>,
) -> Response {
    let rows = match query(&state.store, |s| {
        let mut out = Vec::new();
        for status in s.probe_status(None)? {
            let newest = s.newest_cert_for_host(&status.target.domain)?;
            out.push(ExpiryRow { status, newest });
        }
        Ok(out)
    })
    .await
    {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let mut groups: BTreeMap<String, Vec<&ExpiryRow>> = BTreeMap::new();
    for r in &rows {
        if r.status.target.tags.is_empty() {
            groups.entry(String::new()).or_default().push(r);
        }
        for t in &r.status.target.tags {
            groups.entry(t.clone()).or_default().push(r);
        }
    }
    for list in groups.values_mut() {
        list.sort_by_key(|r| {
            let l = r.status.latest.as_ref();
            (
                std::cmp::Reverse(l.map_or(Level::Warning, |l| l.level)),
                l.and_then(|l| l.days_left).unwrap_or(i64::MAX),
                r.status.target.domain.clone(),
            )
        });
    }
    let now = unix_now();
    let body = html! {
        h1 { "Expiry" span.muted { " · what each host really serves, worst first" } }
        @if groups.is_empty() {
            section.card { p.empty { "No host has been probed yet. Matched names are probed automatically; see the README's expiry probe section." } }
        }
        @for (tag, list) in &groups {
            section.card {
                h2 { @if tag.is_empty() { "Untagged" } @else { "Tag " span.tag { (tag) } } span.muted { " · " (list.len()) " hosts" } }
                div.scroll { table.data {
                    thead { tr { th { "Host" } th { "Level" } th { "Status" } th.num { "Days left" } th { "Served certificate" } th { "Newest in CT" } th { "Probed" } } }
                    tbody { @for r in list { (expiry_row(r, now)) } }
                } }
            }
        }
    };
    layout::html_response(StatusCode::OK, page("Expiry", "/expiry", Some(&v), body))
}

fn expiry_row(r: &ExpiryRow, now: i64) -> Markup {
    let t = &r.status.target;
    let latest = r.status.latest.as_ref();
    let level = latest.map_or("pending", |l| l.level.as_str());
    let served = latest.and_then(|l| l.cert_sha256.clone());
    let served_is_newest = match (&served, &r.newest) {
        (Some(s), Some(n)) => Some(n.fingerprints.contains(s)),
        _ => None,
    };
    html! {
        tr class=(format!("level-{}", level.to_ascii_lowercase())) {
            td { strong { (t.domain) } @if t.port != 443 { ":" (t.port) } }
            td { span class=(format!("badge {}", level_class(level))) { (level) } }
            td { (latest.map(|l| l.status.to_string()).unwrap_or_else(|| "not probed yet".into())) }
            td.num { (latest.and_then(|l| l.days_left).map(|d| d.to_string()).unwrap_or_else(|| "–".into())) }
            td {
                @if let Some(l) = latest {
                    @if let Some(na) = &l.not_after { "until " (na.get(..10).unwrap_or(na)) br; }
                    span.muted.small { (l.issuer.clone().unwrap_or_default()) }
                }
            }
            td {
                @if let Some(n) = &r.newest {
                    a href=(format!("/cert/{}", n.tbs_sha256)) { "until " (layout::date(n.not_after)) } " "
                    (layout::days_left(now, n.not_after))
                    @match served_is_newest {
                        Some(true) => { br; span.badge.ok { "served" } }
                        Some(false) => { br; span.badge.warning title="The host serves another certificate than the newest one logged for it: a deployment may be stale." { "not deployed" } }
                        None => {}
                    }
                } @else { span.muted { "none stored" } }
            }
            td { @if let Some(l) = latest { span title=(layout::time(l.probed_at)) { (ago(now, l.probed_at)) } } }
        }
    }
}

fn level_class(level: &str) -> &'static str {
    match level {
        "OK" => "ok",
        "WARNING" => "warning",
        "CRITICAL" => "critical",
        _ => "",
    }
}

pub(crate) async fn watchlists(
    State(state): State<Arc<ApiState>>,
    Extension(v): Extension<Viewer>,
) -> Response {
    let path = state.registry.watchlist_path.get().cloned();
    let report = match path.clone() {
        Some(p) => tokio::task::spawn_blocking(move || super::watchlists::report(&p))
            .await
            .ok(),
        None => None,
    };
    let body = super::watchlists::render(path.as_deref(), report);
    layout::html_response(
        StatusCode::OK,
        page("Watchlists", "/watchlists", Some(&v), body),
    )
}

#[derive(Deserialize)]
pub(crate) struct OutboxQuery {
    sink: Option<String>,
    requeued: Option<usize>,
}

pub(crate) async fn outbox(
    State(state): State<Arc<ApiState>>,
    Extension(v): Extension<Viewer>,
    Query(q): Query<OutboxQuery>,
) -> Response {
    let sink = q.sink.clone().filter(|s| !s.is_empty());
    let data = match query(&state.store, move |s| {
        Ok((s.outbox_summary()?, s.undelivered(sink.as_deref(), 200)?))
    })
    .await
    {
        Ok(d) => d,
        Err(resp) => return resp,
    };
    let body = super::outbox::render(
        &v,
        &data.0,
        &data.1,
        q.sink.as_deref(),
        q.requeued,
        unix_now(),
    );
    layout::html_response(StatusCode::OK, page("Outbox", "/outbox", Some(&v), body))
}

#[derive(Deserialize)]
pub(crate) struct RequeueForm {
    csrf: String,
    #[serde(default)]
    sink: String,
}

/// `POST /outbox/requeue`: put failed deliveries (of one sink, or all) back in the queue. CSRF-checked.
pub(crate) async fn requeue(
    State(state): State<Arc<ApiState>>,
    Extension(v): Extension<Viewer>,
    headers: HeaderMap,
    form: Result<Form<RequeueForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return layout::error_page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The form was incomplete.",
        );
    };
    if !same_token(&form.csrf, &v.csrf) || cross_site(&headers) {
        return layout::error_page(
            StatusCode::FORBIDDEN,
            "Request refused",
            "The form's CSRF token is missing or stale. Reload the Outbox page and try again.",
        );
    }
    let sink = Some(form.sink.clone()).filter(|s| !s.is_empty());
    let n = match query(&state.store, move |s| s.requeue_failed(sink.as_deref())).await {
        Ok(n) => n,
        Err(resp) => return resp,
    };
    tracing::info!(key = ?v.key_name, sink = %form.sink, requeued = n, "console: failed deliveries re-queued");
    let back = layout::query(&[("sink", form.sink), ("requeued", n.to_string())]);
    Redirect::to(&format!("/outbox{back}")).into_response()
}

/// A browser said the request comes from another site.
pub(crate) fn cross_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site")
}

pub(crate) async fn live(Extension(v): Extension<Viewer>) -> Response {
    let body = html! {
        h1 { "Live feed" span.muted { " · verified entries as they are committed" } }
        section.card {
            form.filters id="live-controls" {
                label { "Show " select name="filter" {
                    option value="watchlist=1" { "watchlist matches only" }
                    option value="" { "every certificate" }
                } }
                button.button.secondary id="live-pause" type="button" { "Pause" }
                span.muted id="live-status" { "connecting…" }
            }
            noscript { p { "This page needs JavaScript. Without it, use the WebSocket feed at /stream/full, /stream/lite or /stream/domains, or /stream/sse." } }
            div.scroll { table.data id="live-table" {
                thead { tr { th { "Seen" } th { "Names" } th { "Issuer" } th { "Log" } th { "Matches" } } }
                tbody {}
            } }
            p.muted.small { "certstream-compatible: " code { "/stream/full" } ", " code { "/stream/lite" } ", " code { "/stream/domains" } " (WebSocket), " code { "/stream/sse" } "; filters " code { "?watchlist=1" } ", " code { "?tag=" } ", " code { "?kind=" } "." }
        }
    };
    layout::html_response(StatusCode::OK, page("Live", "/live", Some(&v), body))
}
