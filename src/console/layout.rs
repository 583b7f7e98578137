//! The page shell and the small pieces every page uses (times, badges, pager, the events-per-hour chart).
//! Everything printed goes through maud's `(...)`, which HTML-escapes it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::Viewer;

/// The navigation: (path, label).
const NAV: &[(&str, &str)] = &[
    ("/", "Overview"),
    ("/events", "Events"),
    ("/search", "Search"),
    ("/expiry", "Expiry"),
    ("/watchlists", "Watchlists"),
    ("/outbox", "Outbox"),
    ("/live", "Live"),
];

/// A whole page: head, navigation (with `active` highlighted), `body`.
pub(crate) fn page(title: &str, active: &str, viewer: Option<&Viewer>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · ctwatch" }
                link rel="icon" href="/static/icon.svg" type="image/svg+xml";
                link rel="stylesheet" href="/static/console.css";
                script src="/static/console.js" defer {}
            }
            body {
                header.topbar {
                    a.brand href="/" { span.logo { "ct" } "watch" }
                    nav {
                        @for (path, label) in NAV {
                            a href=(path) class=[(*path == active).then_some("active")] { (label) }
                        }
                    }
                    @if let Some(v) = viewer {
                        @if let Some(name) = &v.key_name {
                            form.logout method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(v.csrf);
                                span.who { "key " strong { (name) } }
                                button.link type="submit" { "Log out" }
                            }
                        } @else {
                            span.who { "local console" }
                        }
                    }
                }
                main { (body) }
                footer { "ctwatch " (env!("CARGO_PKG_VERSION")) " · every certificate shown was verified against its log's signed tree head" }
            }
        }
    }
}

/// A complete HTML response.
pub(crate) fn html_response(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

/// A small error page.
pub(crate) fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = html! {
        section.card.narrow {
            h1 { (title) }
            p { (message) }
            p { a href="/" { "Back to the overview" } }
        }
    };
    html_response(status, page(title, "", None, body))
}

/// Unix seconds as `2026-11-30 10:55:12 UTC`.
pub(crate) fn time(secs: i64) -> String {
    let fmt =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| secs.to_string())
}

/// Unix seconds as a date `2026-11-30`.
pub(crate) fn date(secs: i64) -> String {
    time(secs).get(..10).unwrap_or_default().to_string()
}

/// `12 s ago`, `5 min ago`, `3 h ago`, `2 d ago`.
pub(crate) fn ago(now: i64, then: i64) -> String {
    let d = (now - then).max(0);
    match d {
        0..60 => format!("{d} s ago"),
        60..3600 => format!("{} min ago", d / 60),
        3600..86400 => format!("{} h ago", d / 3600),
        _ => format!("{} d ago", d / 86400),
    }
}

/// A duration in seconds, short.
pub(crate) fn duration(secs: i64) -> String {
    match secs.max(0) {
        d @ 0..120 => format!("{d} s"),
        d @ 120..7200 => format!("{} min", d / 60),
        d @ 7200..172800 => format!("{} h", d / 3600),
        d => format!("{} d", d / 86400),
    }
}

/// Thousands separators: 1234567 -> 1,234,567.
pub(crate) fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Days until `not_after` as a coloured badge.
pub(crate) fn days_left(now: i64, not_after: i64) -> Markup {
    let days = (not_after - now).div_euclid(86400);
    let class = match days {
        ..0 => "badge critical",
        0..14 => "badge critical",
        14..30 => "badge warning",
        _ => "badge ok",
    };
    let text = if days < 0 {
        format!("expired {} d ago", -days)
    } else {
        format!("{days} d left")
    };
    html! { span class=(class) { (text) } }
}

/// An event kind as a badge.
pub(crate) fn kind_badge(kind: &str) -> Markup {
    let class = match kind {
        "unauthorized_issuer" | "lookalike" => "badge critical",
        "probe" | "health" => "badge warning",
        "new_certificate" => "badge info",
        _ => "badge",
    };
    html! { span class=(class) { (kind.replace('_', " ")) } }
}

/// Percent-encode a query value.
pub(crate) fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A query string from (key, value) pairs, empty values left out.
pub(crate) fn query(pairs: &[(&str, String)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", url_encode(v)))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// The Unicode form of an ASCII (punycode) name, when it differs.
pub(crate) fn unicode_name(name: &str) -> Option<String> {
    if !name.contains("xn--") {
        return None;
    }
    let (u, res) = idna::domain_to_unicode(name);
    (res.is_ok() && u != name).then_some(u)
}

/// A name with its Unicode form (if any) underneath.
pub(crate) fn name_cell(name: &str) -> Markup {
    html! {
        span.name { (name) }
        @if let Some(u) = unicode_name(name) {
            " " span.unicode title="Unicode form" { (u) }
        }
    }
}

/// The events-per-hour chart: 24 bars, oldest first, as inline SVG (classes only: the CSP forbids inline style).
pub(crate) fn hourly_chart(counts: &[u64], now: i64) -> Markup {
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    let (w, h, gap) = (44.0_f64, 120.0_f64, 8.0_f64);
    let width = counts.len() as f64 * w;
    let this_hour = now - now.rem_euclid(3600);
    html! {
        svg.chart viewBox=(format!("0 0 {width} {}", h + 22.0)) role="img" aria-label="Events per hour, last 24 hours" {
            line.axis x1="0" y1=(h) x2=(width) y2=(h) {}
            @for (i, n) in counts.iter().enumerate() {
                @let bh = if *n == 0 { 0.0 } else { (*n as f64 / max as f64 * (h - 14.0)).max(2.0) };
                @let hour_start = this_hour - (counts.len() as i64 - 1 - i as i64) * 3600;
                g {
                    title { (time(hour_start).get(11..16).unwrap_or("")) " UTC: " (n) " events" }
                    rect.bar x=(i as f64 * w + gap / 2.0) y=(h - bh) width=(w - gap) height=(bh) rx="2" {}
                    @if *n > 0 {
                        text.barlabel x=(i as f64 * w + w / 2.0) y=(h - bh - 3.0) { (n) }
                    }
                    @if i % 4 == 3 || i == counts.len() - 1 {
                        text.tick x=(i as f64 * w + w / 2.0) y=(h + 15.0) { (time(hour_start).get(11..13).unwrap_or("")) "h" }
                    }
                }
            }
        }
    }
}

/// "Newer / Older" links.
pub(crate) fn pager(newer: Option<String>, older: Option<String>) -> Markup {
    html! {
        nav.pager {
            @if let Some(href) = newer { a.button.secondary href=(href) rel="prev" { "← Newer" } } @else { span.button.disabled { "← Newer" } }
            @if let Some(href) = older { a.button.secondary href=(href) rel="next" { "Older →" } } @else { span.button.disabled { "Older →" } }
        }
    }
}

/// A hidden CSRF field.
pub(crate) fn csrf_field(v: &Viewer) -> Markup {
    html! { input type="hidden" name="csrf" value=(v.csrf); }
}

/// Shorten a hex digest for display.
pub(crate) fn short(hex: &str) -> String {
    hex.get(..16).map_or(hex.to_string(), |s| format!("{s}…"))
}
