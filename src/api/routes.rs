//! The router and the /api/v1 handlers: bulk TLS check, certificate search, followed logs.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::Deserialize;

use super::{ApiError, ApiState, auth};
use crate::probe::{HostReport, Target};
use crate::store::{CertRecord, LogRow};

/// Certificates returned by a search when `limit` is not given.
const DEFAULT_SEARCH_LIMIT: usize = 100;

pub(crate) fn router(state: Arc<ApiState>) -> Router {
    let api = Router::new()
        .route("/bulk-check", post(bulk_check))
        .route("/certificates", get(certificates))
        .route("/logs", get(logs))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_key,
        ));
    Router::new()
        .route("/health", get(super::health::health))
        .route("/metrics", get(super::metrics::metrics))
        .nest("/api/v1", api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this endpoint",
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkCheckRequest {
    domains: Vec<String>,
}

/// The body as bytes, with a JSON 413 when it is over the limit.
fn body_bytes(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("request body is larger than {limit} bytes"),
            )
        } else {
            ApiError::new(r.status(), "bad_body", r.body_text())
        }
    })
}

/// Parse and validate a bulk-check body into targets (pure).
pub(crate) fn parse_bulk_check(body: &[u8], max_domains: usize) -> Result<Vec<Target>, ApiError> {
    let req: BulkCheckRequest = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "invalid_json",
            format!("body must be {{\"domains\": [\"example.com\", ...]}}: {e}"),
        )
    })?;
    if req.domains.is_empty() {
        return Err(ApiError::bad_request("no_domains", "\"domains\" is empty"));
    }
    if req.domains.len() > max_domains {
        return Err(ApiError::bad_request(
            "too_many_domains",
            format!(
                "{} domains in one request; the limit is {max_domains}",
                req.domains.len()
            ),
        ));
    }
    req.domains
        .iter()
        .map(|d| {
            Target::parse(d, crate::probe::target::DEFAULT_PORT)
                .map_err(|e| ApiError::bad_request("invalid_domain", e.to_string()))
        })
        .collect()
}

/// `POST /api/v1/bulk-check`: probe every domain, one report each (with `panel_status`), in request order.
async fn bulk_check(
    State(state): State<Arc<ApiState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    let body = body_bytes(body, state.config.max_body_bytes)?;
    let targets = parse_bulk_check(&body, state.config.max_domains_per_request)?;
    let reports: Vec<HostReport> = crate::probe::probe_hosts(targets, &state.probe).await;
    let hosts = reports
        .iter()
        .map(|r| serde_json::to_value(crate::probe::report::JsonHost::from(r)))
        .collect::<Result<_, _>>()
        .map_err(ApiError::internal)?;
    Ok(Json(hosts))
}

/// Parse `?domain=NAME&limit=N` (pure).
pub(crate) fn parse_search(
    q: &HashMap<String, String>,
    max: usize,
) -> Result<(String, usize), ApiError> {
    if let Some(k) = q.keys().find(|k| *k != "domain" && *k != "limit") {
        return Err(ApiError::bad_request(
            "unknown_parameter",
            format!("unknown query parameter {k:?} (expected domain, limit)"),
        ));
    }
    let domain = q.get("domain").map(|d| d.trim()).unwrap_or("");
    if domain.is_empty() {
        return Err(ApiError::bad_request(
            "missing_domain",
            "query parameter `domain` is required, e.g. ?domain=example.com",
        ));
    }
    let bare = domain.trim_start_matches("*.").trim_end_matches('.');
    let ascii = idna::domain_to_ascii(bare)
        .ok()
        .filter(|a| !a.is_empty() && a.len() <= 253 && !a.contains(['/', ':', '@', ' ']))
        .ok_or_else(|| {
            ApiError::bad_request("invalid_domain", format!("{domain:?} is not a DNS name"))
        })?;
    let limit = match q.get("limit") {
        None => DEFAULT_SEARCH_LIMIT.min(max),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if n >= 1 => n.min(max),
            _ => {
                return Err(ApiError::bad_request(
                    "invalid_limit",
                    format!("limit must be a whole number from 1 to {max}, not {s:?}"),
                ));
            }
        },
    };
    Ok((ascii, limit))
}

/// `GET /api/v1/certificates?domain=example.com`: stored certificates for the name and every name under it.
async fn certificates(
    State(state): State<Arc<ApiState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<impl IntoResponse, ApiError> {
    let (domain, limit) = parse_search(&q, state.config.max_search_results)?;
    let store = state.store.clone();
    let name = domain.clone();
    let certs: Vec<CertRecord> = tokio::task::spawn_blocking(move || store.search(&name, limit))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(Json(serde_json::json!({
        "domain": domain,
        "count": certs.len(),
        "certificates": certs,
    })))
}

/// `GET /api/v1/logs`: every log in the database with its verified position, head and last contact.
async fn logs(State(state): State<Arc<ApiState>>) -> Result<impl IntoResponse, ApiError> {
    let store = state.store.clone();
    let rows: Vec<LogRow> = tokio::task::spawn_blocking(move || store.list_logs())
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(Json(serde_json::json!({ "logs": rows })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_check_bodies() {
        let t = parse_bulk_check(
            br#"{"domains": ["Example.COM", "https://a.example:8443/x"]}"#,
            10,
        )
        .unwrap();
        assert_eq!(
            t.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["example.com:443", "a.example:8443"]
        );
        let code = |b: &[u8], max| parse_bulk_check(b, max).unwrap_err().code;
        assert_eq!(code(b"{\"domains\": []}", 10), "no_domains");
        assert_eq!(
            code(b"{\"domains\": [\"a.example\", \"b.example\"]}", 1),
            "too_many_domains"
        );
        assert_eq!(code(b"{\"domain\": [\"a.example\"]}", 10), "invalid_json");
        assert_eq!(code(b"not json", 10), "invalid_json");
        assert_eq!(
            code(b"{\"domains\": [\"ftp://a.example\"]}", 10),
            "invalid_domain"
        );
    }

    #[test]
    fn search_parameters() {
        let q = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            parse_search(&q(&[("domain", "*.Bücher.example")]), 1000).unwrap(),
            ("xn--bcher-kva.example".to_string(), 100)
        );
        assert_eq!(
            parse_search(&q(&[("domain", "a.example"), ("limit", "5000")]), 1000)
                .unwrap()
                .1,
            1000
        );
        let code = |pairs: &[(&str, &str)]| parse_search(&q(pairs), 1000).unwrap_err().code;
        assert_eq!(code(&[]), "missing_domain");
        assert_eq!(
            code(&[("domain", "a.example"), ("limit", "0")]),
            "invalid_limit"
        );
        assert_eq!(
            code(&[("domain", "a.example"), ("limt", "3")]),
            "unknown_parameter"
        );
        assert_eq!(code(&[("domain", "http://a.example/")]), "invalid_domain");
    }
}
