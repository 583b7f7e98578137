//! `GET /health`: 200 when every followed log was contacted recently and no sink has been failing for long; 503
//! with the reasons otherwise. For load balancers, uptime checks and `curl -f`. `warnings` (status `warning`, still
//! 200) lists logs that served malformed entries in the last day.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{ApiError, ApiState};
use crate::event::rfc3339;
use crate::health::{rules, samples, started_at};

pub(crate) async fn health(State(state): State<Arc<ApiState>>) -> Result<Response, ApiError> {
    let now = (state.clock)();
    let store = state.store.clone();
    let sinks = tokio::task::spawn_blocking(move || store.sink_failures())
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let logs = samples(&state.registry);
    let lease = state
        .registry
        .lease
        .get()
        .map(|l| super::metrics::LeaseFigures::of(l));
    let mut problems = rules::assess(
        now,
        started_at(&state.registry),
        &logs,
        &sinks,
        &state.config.health,
    );
    let shared = state
        .registry
        .lease
        .get()
        .and_then(|l| rules::SharedView::of(l, now, started_at(&state.registry)));
    if let Some(shared) = shared {
        shared.apply(&mut problems, now);
    }
    // Warnings do not make the monitor unhealthy (200), but say what needs a look.
    let mut warnings = crate::health::malformed::warnings(now, &logs);
    warnings.extend(state.registry.stream.warning(now));
    let body = json!({
        "status": match (problems.is_empty(), warnings.is_empty()) {
            (false, _) => "unhealthy",
            (true, false) => "warning",
            (true, true) => "ok",
        },
        "checked_at": rfc3339(now),
        "logs": logs.len(),
        "max_lag_secs": logs.iter().map(|l| l.lag_secs).max().unwrap_or(0),
        "lag_secs": logs.iter().map(|l| (l.url.clone(), l.lag_secs)).collect::<std::collections::BTreeMap<_, _>>(),
        "failing_sinks": sinks.len(),
        // Several instances on one database: which one answers, and its share of the logs.
        "instance_id": lease.as_ref().map(|l| l.instance.clone()).filter(|i| !i.is_empty()),
        "owned_logs": lease.as_ref().map(|l| l.owned),
        "live_instances": lease.as_ref().map(|l| l.live_instances),
        "problems": problems,
        "warnings": warnings,
    });
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((status, Json(body)).into_response())
}
