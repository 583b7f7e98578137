//! The HTTP API of a running ctwatch (`ctwatch run --listen ADDR`).
//!
//! ```text
//!  GET  /health                  200 {"status":"ok"} | 503 {"status":"unhealthy","problems":[...]}   (open)
//!  GET  /metrics                 Prometheus text exposition                                         (open)
//!  POST /api/v1/bulk-check       {"domains":[...]} -> probe reports                 ┐ X-API-Key when keys are
//!  GET  /api/v1/certificates     ?domain=NAME[&limit=N] -> stored certificates      │ configured; per-key token
//!  GET  /api/v1/logs             followed logs and their positions                  ┘ bucket (429 + Retry-After)
//! ```
//!
//! Every error is JSON: `{"error": "<what went wrong>", "code": "<machine-readable>"}`. Request bodies are capped
//! (`max_body_bytes`, 413). /health and /metrics stay open: the listen address defaults to 127.0.0.1 and they
//! reveal no certificate data.

mod auth;
mod health;
mod metrics;
mod ratelimit;
mod routes;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::health::{Clock, HealthThresholds};
use crate::probe::ProbeOptions;
use crate::stats::Registry;
use crate::store::Store;

pub use metrics::render as render_metrics;
pub use ratelimit::TokenBucket;

/// `[api]` in the config file.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Address to listen on. Default 127.0.0.1:8080; `--listen` overrides.
    pub listen: SocketAddr,
    /// API keys; when any is configured, /api/ routes require `X-API-Key`. Default none (open).
    pub keys: Vec<ApiKey>,
    /// Largest request body accepted, in bytes (413 above). Default 1 MiB.
    pub max_body_bytes: usize,
    /// Most domains in one bulk-check request (400 above). Default 100, range 1..=10000.
    pub max_domains_per_request: usize,
    /// Most certificates one search returns (the `limit` parameter is capped to it). Default 1000.
    pub max_search_results: usize,
    /// When `/health` answers 503.
    pub health: HealthThresholds,
    /// Address ranges `POST /api/v1/bulk-check` may probe although they are internal (loopback, RFC 1918,
    /// link-local, unique-local, cloud metadata...), e.g. `["10.0.0.0/8", "fd00::/8"]`. Default none: such
    /// targets answer `blocked_address`.
    pub allow_targets: Vec<String>,
    /// Requests per minute without a valid key (missing or wrong `X-API-Key`) accepted from one client
    /// address before it gets 429. Default 30, range 1..=100000.
    pub unauthenticated_per_minute: u32,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            keys: Vec::new(),
            max_body_bytes: 1 << 20,
            max_domains_per_request: 100,
            max_search_results: 1000,
            health: HealthThresholds::default(),
            allow_targets: Vec::new(),
            unauthenticated_per_minute: 30,
        }
    }
}

/// One API key (`[[api.keys]]`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// Who holds it (shown in logs, never the key itself).
    pub name: String,
    /// The secret sent in `X-API-Key`. Prefer `key_env` to keep it out of the file.
    #[serde(default)]
    pub key: Option<String>,
    /// Name of an environment variable holding the secret.
    #[serde(default)]
    pub key_env: Option<String>,
    /// Sustained requests per minute (bursts up to the same number). Default 60, range 1..=100000.
    #[serde(default = "default_rpm")]
    pub requests_per_minute: u32,
}

fn default_rpm() -> u32 {
    60
}

/// A configuration the API cannot start with.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApiConfigError {
    #[error("api key {name:?}: set exactly one of `key` and `key_env`")]
    KeySource { name: String },
    #[error("api key {name:?}: environment variable {var} is not set or empty")]
    MissingEnv { name: String, var: String },
    #[error("api key {name:?}: the key must be at least 16 characters (got {len})")]
    TooShort { name: String, len: usize },
    #[error("api keys {first:?} and {second:?} have the same key")]
    Duplicate { first: String, second: String },
    #[error("api key {name:?}: requests_per_minute = {value} is out of range 1..=100000")]
    Rate { name: String, value: u32 },
    #[error(
        "the API would listen on {listen} (reachable from other machines) without any API key: anyone who can \
         reach it could use /api/v1/ (certificate search, TLS probes). Add an [[api.keys]] entry (name + key_env) \
         to the config file, or listen on a loopback address (127.0.0.1 / [::1])"
    )]
    OpenOnNetwork { listen: SocketAddr },
    #[error("{0}")]
    AllowTargets(String),
    #[error("{key} = {value} is out of range {lo}..={hi}")]
    Range {
        key: &'static str,
        value: usize,
        lo: usize,
        hi: usize,
    },
}

/// A key ready for checking: its secret resolved from the file or the environment.
#[derive(Clone, Debug)]
pub struct ResolvedKey {
    pub name: String,
    pub secret: String,
    pub requests_per_minute: u32,
}

impl ApiConfig {
    /// Range-check the settings and read each key's secret (`getenv` looks up `key_env`).
    pub fn resolve_keys(
        &self,
        getenv: impl Fn(&str) -> Option<String>,
    ) -> Result<Vec<ResolvedKey>, ApiConfigError> {
        let range = |key, value: usize, lo, hi| {
            if (lo..=hi).contains(&value) {
                Ok(())
            } else {
                Err(ApiConfigError::Range { key, value, lo, hi })
            }
        };
        range("api.max_body_bytes", self.max_body_bytes, 1024, 1 << 30)?;
        range(
            "api.max_domains_per_request",
            self.max_domains_per_request,
            1,
            10_000,
        )?;
        range(
            "api.max_search_results",
            self.max_search_results,
            1,
            100_000,
        )?;
        let mut out: Vec<ResolvedKey> = Vec::new();
        for k in &self.keys {
            let name = k.name.clone();
            let secret = match (&k.key, &k.key_env) {
                (Some(s), None) => s.clone(),
                (None, Some(var)) => getenv(var).filter(|v| !v.is_empty()).ok_or_else(|| {
                    ApiConfigError::MissingEnv {
                        name: name.clone(),
                        var: var.clone(),
                    }
                })?,
                _ => return Err(ApiConfigError::KeySource { name }),
            };
            if secret.chars().count() < 16 {
                let len = secret.chars().count();
                return Err(ApiConfigError::TooShort { name, len });
            }
            if !(1..=100_000).contains(&k.requests_per_minute) {
                let value = k.requests_per_minute;
                return Err(ApiConfigError::Rate { name, value });
            }
            if let Some(first) = out.iter().find(|o| o.secret == secret) {
                return Err(ApiConfigError::Duplicate {
                    first: first.name.clone(),
                    second: name,
                });
            }
            out.push(ResolvedKey {
                name,
                secret,
                requests_per_minute: k.requests_per_minute,
            });
        }
        Ok(out)
    }
}

/// Everything the API needs that comes out of validating its config.
#[derive(Clone, Debug)]
pub struct ValidatedApi {
    pub keys: Vec<ResolvedKey>,
    pub address_policy: crate::probe::address::AddressPolicy,
}

impl ApiConfig {
    /// The checks `run` applies before serving, and `config check` applies too: ranges, keys, `allow_targets`,
    /// and no key-less API on a non-loopback address.
    pub fn validate(
        &self,
        getenv: impl Fn(&str) -> Option<String>,
    ) -> Result<ValidatedApi, ApiConfigError> {
        let keys = self.resolve_keys(getenv)?;
        if !(1..=100_000).contains(&self.unauthenticated_per_minute) {
            return Err(ApiConfigError::Range {
                key: "api.unauthenticated_per_minute",
                value: self.unauthenticated_per_minute as usize,
                lo: 1,
                hi: 100_000,
            });
        }
        if keys.is_empty() && !self.listen.ip().is_loopback() {
            return Err(ApiConfigError::OpenOnNetwork {
                listen: self.listen,
            });
        }
        let address_policy = crate::probe::address::AddressPolicy::parse(&self.allow_targets)
            .map_err(ApiConfigError::AllowTargets)?;
        Ok(ValidatedApi {
            keys,
            address_policy,
        })
    }
}

/// `--listen` values: a socket address, or a bare port meaning 127.0.0.1:PORT.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(port) = s.trim_start_matches(':').parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse().map_err(|_| {
        format!("{s:?} is not an address to listen on (e.g. 127.0.0.1:8080, [::1]:8080, 8080)")
    })
}

/// What the handlers share.
pub(crate) struct ApiState {
    pub(crate) config: ApiConfig,
    pub(crate) store: Arc<Store>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) probe: ProbeOptions,
    pub(crate) keys: auth::Keys,
    pub(crate) clock: Clock,
}

/// An error answer: `{"error": message, "code": code}` with `status`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds, for 429.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!("api: {e}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("internal error: {e}"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(serde_json::json!({"error": self.message, "code": self.code}));
        let mut resp = (self.status, body).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// Start the API on `cfg.listen` (port 0 picks a free one) and serve until `shutdown` turns true. Returns the
/// bound address and the server task.
pub async fn serve(
    cfg: ApiConfig,
    store: Arc<Store>,
    registry: Arc<Registry>,
    probe_opts: ProbeOptions,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    serve_with_clock(
        cfg,
        store,
        registry,
        probe_opts,
        crate::health::system_clock(),
        shutdown,
    )
    .await
}

/// [`serve`] with a swappable clock for `/health` (tests).
pub async fn serve_with_clock(
    cfg: ApiConfig,
    store: Arc<Store>,
    registry: Arc<Registry>,
    probe_opts: ProbeOptions,
    clock: Clock,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    use anyhow::Context;
    let valid = cfg.validate(|v| std::env::var(v).ok())?;
    let mut probe_opts = probe_opts;
    probe_opts.address_policy = Some(Arc::new(valid.address_policy));
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let state = Arc::new(ApiState {
        keys: auth::Keys::new(valid.keys, cfg.unauthenticated_per_minute),
        config: cfg,
        store,
        registry,
        probe: probe_opts,
        clock,
    });
    let app = routes::router(state);
    let task = tokio::spawn(async move {
        let stop = async move {
            let _ = shutdown.wait_for(|s| *s).await;
        };
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!("api server: {e}");
        }
    });
    tracing::info!(%addr, "HTTP API listening (/health, /metrics, /api/v1/)");
    Ok((addr, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_parses_with_defaults_and_rejects_unknown_keys() {
        let cfg: ApiConfig = toml::from_str(
            r#"
            listen = "127.0.0.1:9100"
            [[keys]]
            name = "psa"
            key_env = "PSA_KEY"
            [health]
            log_silence_secs = 300
            "#,
        )
        .unwrap();
        assert_eq!(cfg.listen, "127.0.0.1:9100".parse().unwrap());
        assert_eq!(cfg.max_body_bytes, 1 << 20);
        assert_eq!(cfg.keys[0].requests_per_minute, 60);
        assert_eq!(cfg.health.log_silence_secs, 300);
        assert_eq!(cfg.health.sink_failing_secs, 3600);
        let err = toml::from_str::<ApiConfig>("listn = \"127.0.0.1:1\"").unwrap_err();
        assert!(err.to_string().contains("unknown field `listn`"), "{err}");
        let err = toml::from_str::<ApiConfig>("[health]\nsilence = 1").unwrap_err();
        assert!(err.to_string().contains("unknown field `silence`"), "{err}");
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(
            parse_listen("8080").unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(
            parse_listen(":9100").unwrap(),
            "127.0.0.1:9100".parse().unwrap()
        );
        assert_eq!(
            parse_listen("0.0.0.0:80").unwrap(),
            "0.0.0.0:80".parse().unwrap()
        );
        assert_eq!(
            parse_listen("[::1]:8080").unwrap(),
            "[::1]:8080".parse().unwrap()
        );
        assert!(
            parse_listen("localhost:8080")
                .unwrap_err()
                .contains("not an address")
        );
    }

    #[test]
    fn keys_resolve_from_env_and_bad_ones_are_named() {
        let key = |name: &str, key: Option<&str>, env: Option<&str>| ApiKey {
            name: name.into(),
            key: key.map(Into::into),
            key_env: env.map(Into::into),
            requests_per_minute: 60,
        };
        let env = |v: &str| (v == "PSA_KEY").then(|| "0123456789abcdef-from-env".to_string());
        let mut cfg = ApiConfig {
            keys: vec![
                key("psa", None, Some("PSA_KEY")),
                key("ops", Some("ops-secret-0123456789"), None),
            ],
            ..ApiConfig::default()
        };
        let got = cfg.resolve_keys(env).unwrap();
        assert_eq!(got[0].secret, "0123456789abcdef-from-env");
        assert_eq!(got[1].name, "ops");

        cfg.keys = vec![key("x", None, Some("NOPE"))];
        assert_eq!(
            cfg.resolve_keys(env).unwrap_err(),
            ApiConfigError::MissingEnv {
                name: "x".into(),
                var: "NOPE".into()
            }
        );
        cfg.keys = vec![key("x", Some("short"), None)];
        assert_eq!(
            cfg.resolve_keys(env).unwrap_err(),
            ApiConfigError::TooShort {
                name: "x".into(),
                len: 5
            }
        );
        cfg.keys = vec![key("x", Some("0123456789abcdef"), Some("PSA_KEY"))];
        assert_eq!(
            cfg.resolve_keys(env).unwrap_err(),
            ApiConfigError::KeySource { name: "x".into() }
        );
        cfg.keys = vec![
            key("a", Some("0123456789abcdef"), None),
            key("b", Some("0123456789abcdef"), None),
        ];
        assert_eq!(
            cfg.resolve_keys(env).unwrap_err(),
            ApiConfigError::Duplicate {
                first: "a".into(),
                second: "b".into()
            }
        );
        cfg.keys.clear();
        cfg.max_domains_per_request = 0;
        assert_eq!(
            cfg.resolve_keys(env).unwrap_err().to_string(),
            "api.max_domains_per_request = 0 is out of range 1..=10000"
        );
    }

    #[test]
    fn no_keyless_api_off_loopback_and_allow_targets_are_checked() {
        let env = |_: &str| None;
        let on = |listen: &str| ApiConfig {
            listen: listen.parse().unwrap(),
            ..ApiConfig::default()
        };
        for listen in ["127.0.0.1:8080", "127.0.0.2:8080", "[::1]:8080"] {
            assert!(on(listen).validate(env).is_ok(), "{listen}");
        }
        for listen in ["0.0.0.0:8080", "[::]:8080", "192.0.2.7:8080"] {
            let err = on(listen).validate(env).unwrap_err().to_string();
            assert!(
                err.contains(listen) && err.contains("[[api.keys]]"),
                "{err}"
            );
            assert!(err.contains("127.0.0.1"), "{err}");
        }
        let with_key = ApiConfig {
            keys: vec![ApiKey {
                name: "ops".into(),
                key: Some("ops-secret-0123456789".into()),
                key_env: None,
                requests_per_minute: 60,
            }],
            ..on("0.0.0.0:8080")
        };
        assert!(with_key.validate(env).is_ok());
        let bad = ApiConfig {
            allow_targets: vec!["10.0.0.0/8".into(), "intranet".into()],
            ..ApiConfig::default()
        };
        let err = bad.validate(env).unwrap_err().to_string();
        assert!(err.contains("\"intranet\""), "{err}");
    }
}
