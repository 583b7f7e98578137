//! The Search page, a local crt.sh: a name and everything under it, exact, or a `%` pattern; precertificate and
//! certificate folded into one row (tbs_sha256); exclude expired; issuer filter; JSON download.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use maud::{Markup, html};
use serde::Deserialize;

use super::Viewer;
use super::layout::{self, count};
use super::pages::query;
use crate::api::ApiState;
use crate::store::{NameMode, SearchPage, SearchQuery, unix_now};

/// Rows per page.
const PAGE: usize = 50;

#[derive(Deserialize, Default, Clone)]
pub(crate) struct SearchParams {
    #[serde(default)]
    q: String,
    /// `subtree` (default), `exact`, `pattern` (implied by a `%`).
    #[serde(default)]
    mode: String,
    /// `1`: leave out expired certificates.
    #[serde(default)]
    current: String,
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    page: usize,
}

impl SearchParams {
    /// The store query, or why the name is not searchable.
    fn to_query(&self, limit: usize, offset: usize) -> Result<SearchQuery, String> {
        let raw = self.q.trim().trim_end_matches('.');
        let mode = match (self.mode.as_str(), raw.contains('%')) {
            (_, true) => NameMode::Pattern,
            ("exact", _) => NameMode::Exact,
            _ => NameMode::Subtree,
        };
        let name = if mode == NameMode::Pattern {
            raw.to_ascii_lowercase()
        } else {
            idna::domain_to_ascii(raw.trim_start_matches("*."))
                .ok()
                .filter(|a| {
                    !a.is_empty()
                        && a.len() <= 253
                        && a.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
                })
                .map(|a| {
                    if raw.starts_with("*.") && mode == NameMode::Exact {
                        format!("*.{a}")
                    } else {
                        a
                    }
                })
                .ok_or_else(|| format!("{raw:?} is not a DNS name"))?
        };
        if mode == NameMode::Pattern && name.trim_matches(['%', '.']).is_empty() {
            return Err("a pattern needs at least one label besides %".into());
        }
        Ok(SearchQuery {
            name,
            mode,
            exclude_expired: self.current == "1",
            issuer: Some(self.issuer.trim().to_string()).filter(|s| !s.is_empty()),
            now: unix_now(),
            limit,
            offset,
        })
    }

    fn link(&self, path: &str, page: usize) -> String {
        let mut pairs = vec![
            ("q", self.q.clone()),
            ("mode", self.mode.clone()),
            ("current", self.current.clone()),
            ("issuer", self.issuer.clone()),
        ];
        if page > 0 {
            pairs.push(("page", page.to_string()));
        }
        format!("{path}{}", layout::query(&pairs))
    }
}

pub(crate) async fn page(
    State(state): State<Arc<ApiState>>,
    Extension(v): Extension<Viewer>,
    Query(p): Query<SearchParams>,
) -> Response {
    let mut error = None;
    let mut result: Option<SearchPage> = None;
    if !p.q.trim().is_empty() {
        match p.to_query(PAGE, p.page * PAGE) {
            Ok(q) => match query(&state.store, move |s| s.console_search(&q)).await {
                Ok(r) => result = Some(r),
                Err(resp) => return resp,
            },
            Err(e) => error = Some(e),
        }
    }
    let body = html! {
        h1 { "Search" span.muted { " · certificates stored by this ctwatch" } }
        section.card { (form(&p)) @if let Some(e) = &error { div.notice.bad role="alert" { (e) } } }
        @if let Some(r) = &result { (results(&p, r)) }
    };
    layout::html_response(
        StatusCode::OK,
        layout::page("Search", "/search", Some(&v), body),
    )
}

fn form(p: &SearchParams) -> Markup {
    html! {
        form.filters.search method="get" action="/search" {
            input.grow type="search" name="q" value=(p.q) placeholder="example.com, %.example.com, =host.example.com" autofocus;
            label { select name="mode" {
                option value="" selected[p.mode.is_empty() || p.mode == "subtree"] { "name and everything under it" }
                option value="exact" selected[p.mode == "exact"] { "exactly this name" }
            } }
            label { input type="checkbox" name="current" value="1" checked[p.current == "1"]; " exclude expired" }
            label { "Issuer " input type="text" name="issuer" value=(p.issuer) size="14" placeholder="Let's Encrypt"; }
            button.button type="submit" { "Search" }
        }
        p.muted.small { "Use " code { "%" } " as a wildcard like crt.sh (" code { "%.example.com" } "). Only certificates this ctwatch stored are found (matched ones, or all with store_all)." }
    }
}

fn results(p: &SearchParams, r: &SearchPage) -> Markup {
    let now = unix_now();
    let pages = r.total.div_ceil(PAGE);
    html! {
        section.card {
            h2 {
                (count(r.total as u64)) " certificates"
                @if r.truncated { span.badge.warning title=(format!("More than {} certificates carry a matching name; only the first were considered. Narrow the search.", crate::store::SEARCH_SCAN_CAP)) { "partial" } }
                a.button.secondary.right href=(p.link("/search.json", 0)) download="ctwatch-search.json" { "Download JSON" }
            }
            @if r.rows.is_empty() { p.empty { "Nothing stored matches." } } @else {
                div.scroll { table.data id="results" {
                    thead { tr { th { "Names" } th { "Issuer" } th { "Not before" } th { "Not after" } th { "Seen as" } th.num { "Logs" } } }
                    tbody { @for row in &r.rows { tr {
                        td.names {
                            a href=(format!("/cert/{}", row.tbs_sha256)) { (layout::name_cell(row.dns_names.first().map_or("(no DNS name)", String::as_str))) }
                            @if row.dns_names.len() > 1 { br; span.muted.small { "+" (row.dns_names.len() - 1) " more: " (super::pages::truncate(&row.dns_names[1..].join(", "), 80)) } }
                        }
                        td.small { (issuer_cn(&row.issuer)) }
                        td.date { (layout::date(row.not_before)) }
                        td.date { (layout::date(row.not_after)) br; (layout::days_left(now, row.not_after)) }
                        td { @for t in &row.entry_types { span.badge.info { (if t == "x509" { "certificate" } else { "precertificate" }) } " " } }
                        td.num { (row.sightings) }
                    } } }
                } }
            }
            nav.pager {
                @if p.page > 0 { a.button.secondary href=(p.link("/search", p.page - 1)) rel="prev" { "← Previous" } }
                span.muted { "page " (p.page + 1) " of " (pages.max(1)) }
                @if p.page + 1 < pages { a.button.secondary href=(p.link("/search", p.page + 1)) rel="next" { "Next →" } }
            }
        }
    }
}

/// The CN (or O) of a DN, for a compact column.
pub(crate) fn issuer_cn(dn: &str) -> String {
    let find = |key: &str| {
        dn.split(',')
            .map(str::trim)
            .find_map(|part| part.strip_prefix(key).map(str::to_string))
    };
    find("CN=")
        .or_else(|| find("O="))
        .unwrap_or_else(|| dn.to_string())
}

/// `GET /search.json`: the same search as JSON (up to `api.max_search_results` rows).
pub(crate) async fn json(
    State(state): State<Arc<ApiState>>,
    Query(p): Query<SearchParams>,
) -> Response {
    let q = match p.to_query(state.config.max_search_results, 0) {
        Ok(q) => q,
        Err(e) => return crate::api::ApiError::bad_request("invalid_search", e).into_response(),
    };
    let name = q.name.clone();
    match query(&state.store, move |s| s.console_search(&q)).await {
        Ok(r) => (
            [(header::CONTENT_DISPOSITION, "attachment; filename=\"ctwatch-search.json\"")],
            Json(serde_json::json!({"query": name, "total": r.total, "partial": r.truncated, "certificates": r.rows})),
        )
            .into_response(),
        Err(resp) => resp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str, mode: &str) -> SearchParams {
        SearchParams {
            q: q.into(),
            mode: mode.into(),
            ..Default::default()
        }
    }

    #[test]
    fn names_and_modes() {
        let q = params("Bücher.Example.", "").to_query(10, 0).unwrap();
        assert_eq!(
            (q.name.as_str(), q.mode),
            ("xn--bcher-kva.example", NameMode::Subtree)
        );
        let q = params("%.Example.com", "exact").to_query(10, 0).unwrap();
        assert_eq!(
            (q.name.as_str(), q.mode),
            ("%.example.com", NameMode::Pattern)
        );
        let q = params("*.example.com", "exact").to_query(10, 0).unwrap();
        assert_eq!(q.name, "*.example.com");
        assert!(params("%.%", "").to_query(10, 0).is_err());
        assert!(params("a b", "").to_query(10, 0).is_err());
        assert_eq!(issuer_cn("C=US, O=Let's Encrypt, CN=E8"), "E8");
    }
}
