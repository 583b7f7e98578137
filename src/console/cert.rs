//! The Certificate page: names (Unicode and punycode), validity, issuer, subject, serial, fingerprints, every
//! sighting, the watchlist matches, the probe results of its hosts, PEM download, and a link to crt.sh.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use maud::html;

use super::Viewer;
use super::layout::{self, page};
use super::pages::query;
use crate::api::ApiState;
use crate::store::{CertDetail, unix_now};

fn parse_tbs(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

async fn load(state: &ApiState, tbs: &str) -> Result<CertDetail, Response> {
    let not_found = || {
        layout::error_page(
            StatusCode::NOT_FOUND,
            "Certificate not found",
            "No stored certificate has this tbs_sha256. ctwatch stores matched certificates (all of them with store_all).",
        )
    };
    let id = parse_tbs(tbs).ok_or_else(not_found)?;
    query(&state.store, move |s| s.cert_detail(&id))
        .await?
        .ok_or_else(not_found)
}

/// Wrap DER as PEM.
pub(crate) fn pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or(""));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// `GET /cert/{tbs}/pem`: the stored DER (of the first sighting) as a PEM file.
pub(crate) async fn pem_download(
    State(state): State<Arc<ApiState>>,
    Path(tbs): Path<String>,
) -> Response {
    let d = match load(&state, &tbs).await {
        Ok(d) => d,
        Err(resp) => return resp,
    };
    let Some(der) = d.der else {
        return layout::error_page(
            StatusCode::NOT_FOUND,
            "No DER stored",
            "This certificate was stored without its DER.",
        );
    };
    let name = format!("attachment; filename=\"{}.pem\"", &d.record.cert_sha256);
    (
        [
            (header::CONTENT_TYPE, "application/x-pem-file".to_string()),
            (header::CONTENT_DISPOSITION, name),
        ],
        pem(&der),
    )
        .into_response()
}

pub(crate) async fn page_handler(
    State(state): State<Arc<ApiState>>,
    Extension(v): Extension<Viewer>,
    Path(tbs): Path<String>,
) -> Response {
    let d = match load(&state, &tbs).await {
        Ok(d) => d,
        Err(resp) => return resp,
    };
    let r = &d.record;
    let now = unix_now();
    let nb = parse_rfc3339(&r.not_before);
    let na = parse_rfc3339(&r.not_after);
    let total = (na - nb).max(1);
    let elapsed_pct = (((now - nb) as f64 / total as f64) * 100.0).clamp(0.0, 100.0);
    let title = r
        .dns_names
        .first()
        .cloned()
        .unwrap_or_else(|| "certificate".into());
    let body = html! {
        div.certhead {
            h1 { (layout::name_cell(&title)) }
            div.actions {
                @if d.der.is_some() { a.button href=(format!("/cert/{}/pem", r.tbs_sha256)) download { "Download PEM" } }
                a.button.secondary href=(format!("https://crt.sh/?q={}", r.cert_sha256)) rel="noreferrer noopener" target="_blank" { "View on crt.sh" }
            }
        }
        section.card {
            h2 { "Validity" }
            p { (r.not_before) " → " (r.not_after) " " (layout::days_left(now, na)) }
            div.progress title=(format!("{elapsed_pct:.0}% of the validity period elapsed")) {
                div class=(format!("fill p{}", (elapsed_pct / 5.0).round() as u32 * 5)) {}
            }
        }
        div.grid2 {
            section.card {
                h2 { "Names" span.muted { " · " (r.dns_names.len() + r.ip_addresses.len()) } }
                ul.names { @for n in &r.dns_names { li { (layout::name_cell(n)) } } @for ip in &r.ip_addresses { li { span.name { (ip) } " " span.badge { "IP" } } } }
            }
            section.card {
                h2 { "Details" }
                table.kv {
                    tr { th { "Subject" } td { (r.subject) } }
                    tr { th { "Issuer" } td { (r.issuer) } }
                    tr { th { "Serial" } td { code { (r.serial) } } }
                    tr { th { "tbs_sha256" } td { code.hash { (r.tbs_sha256) } } }
                    @for fp in &r.fingerprints { tr { th { "SHA-256" } td { code.hash { (fp) } } } }
                    tr { th { "First seen" } td { (r.first_seen) } }
                }
            }
        }
        section.card {
            h2 { "Sightings" span.muted { " · verified against each log's signed tree head" } }
            table.data id="sightings" {
                thead { tr { th { "Log" } th.num { "Index" } th { "Type" } th { "Timestamp" } th { "SHA-256" } } }
                tbody { @for s in &r.sightings { tr {
                    td.small { (s.log) } td.num { (s.index) }
                    td { span.badge.info { (if s.entry_type == "x509" { "certificate" } else { "precertificate" }) } }
                    td { (s.timestamp) } td { code.hash { (layout::short(&s.cert_sha256)) } }
                } } }
            }
        }
        section.card {
            h2 { "Watchlist matches" }
            @if d.matches.is_empty() { p.empty { "None (stored because store_all is on)." } } @else {
                table.data {
                    thead { tr { th { "Kind" } th { "Item" } th { "Name" } th { "Where" } th { "Tags" } } }
                    tbody { @for m in &d.matches { tr {
                        td { (layout::kind_badge(&m.kind)) } td { code { (m.item) } } td { (layout::name_cell(&m.name)) }
                        td.small.muted { (m.source) } td { @for t in &m.tags { span.tag { (t) } " " } }
                    } } }
                }
            }
        }
        section.card {
            h2 { "Probe results of its hosts" }
            @if d.probes.is_empty() { p.empty { "None of its hosts has been probed." } } @else {
                table.data {
                    thead { tr { th { "Host" } th { "Level" } th { "Status" } th.num { "Days left" } th { "Serves this certificate" } th { "Probed" } } }
                    tbody { @for p in &d.probes { tr {
                        td { strong { (p.domain) } } td { span class=(format!("badge {}", p.level.as_str().to_ascii_lowercase())) { (p.level.as_str()) } }
                        td { (p.status.to_string()) } td.num { (p.days_left.map(|d| d.to_string()).unwrap_or_default()) }
                        td { @if p.cert_sha256.as_ref().is_some_and(|c| r.fingerprints.contains(c)) { span.badge.ok { "yes" } } @else { span.badge.warning { "no" } } }
                        td { (layout::ago(now, p.probed_at)) }
                    } } }
                }
            }
        }
    };
    layout::html_response(StatusCode::OK, page(&title, "", Some(&v), body))
}

fn parse_rfc3339(s: &str) -> i64 {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn pem_wraps_at_64() {
        let p = super::pem(&[0u8; 100]);
        assert!(p.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(p.lines().all(|l| l.len() <= 64));
        assert!(p.ends_with("-----END CERTIFICATE-----\n"));
    }
}
