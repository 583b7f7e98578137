//! The web console, served by `run --listen` on the API's port: server-rendered HTML (maud escapes everything it
//! prints; certificate names are attacker-controlled) with a little progressive JavaScript, under a strict
//! Content-Security-Policy (no inline script or style at all).
//!
//! ```text
//!  /            Overview: logs (size, lag, entries/s, last contact, errors), sinks, events per hour (SVG)
//!  /events      events, newest first, filtered and paged          /cert/{tbs_sha256}[/pem]  one certificate
//!  /search      a local crt.sh (+ /search.json)                   /expiry      probe report per tag
//!  /watchlists  items per file, errors and warnings               /outbox      deliveries; POST /outbox/requeue
//!  /live        the verified live feed in the browser (SSE)       /login /logout  sessions (see api::session)
//! ```
//!
//! Access: with `[[api.keys]]` configured, every page needs a session opened with a key on /login. Without keys
//! the console is served only when the API listens on a loopback address, and only to requests whose `Host` is
//! `localhost` or an IP address (a DNS-rebinding page cannot read it).

mod cert;
mod events;
mod layout;
mod login;
mod outbox;
mod pages;
mod search;
mod watchlists;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tokio::sync::watch;

use crate::api::ApiState;
use crate::api::session::{self, Session};
use crate::stats::Registry;

/// The Content-Security-Policy of every console response: same-origin scripts, styles and connections only.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Console state kept across requests.
pub(crate) struct ConsoleState {
    /// Where the API listens (decides whether the console may run without keys).
    listen: SocketAddr,
    /// Entries per second of each log (by URL), sampled every few seconds.
    rates: Arc<Mutex<HashMap<String, f64>>>,
    /// CSRF token of the key-less (loopback) console, where there are no sessions.
    open_csrf: String,
}

impl ConsoleState {
    pub(crate) fn new(listen: SocketAddr) -> ConsoleState {
        ConsoleState {
            listen,
            rates: Default::default(),
            open_csrf: hex::encode(rand::random::<[u8; 32]>()),
        }
    }

    /// Sample every log's processed counter every 5 s and keep an entries/s figure (smoothed).
    pub(crate) fn spawn_sampler(
        &self,
        registry: Arc<Registry>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let rates = self.rates.clone();
        tokio::spawn(async move {
            let mut last: HashMap<String, (tokio::time::Instant, u64)> = HashMap::new();
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = shutdown.wait_for(|s| *s) => return,
                }
                let now = tokio::time::Instant::now();
                let mut out = rates.lock().unwrap_or_else(|e| e.into_inner());
                for log in registry.logs() {
                    let done = log
                        .stats
                        .processed
                        .load(std::sync::atomic::Ordering::Relaxed);
                    if let Some((t, n)) = last.insert(log.url.clone(), (now, done)) {
                        let secs = now.duration_since(t).as_secs_f64().max(0.001);
                        let rate = done.saturating_sub(n) as f64 / secs;
                        let prev = out.get(&log.url).copied().unwrap_or(rate);
                        out.insert(log.url.clone(), 0.5 * prev + 0.5 * rate);
                    }
                }
            }
        });
    }

    fn rate(&self, url: &str) -> Option<f64> {
        self.rates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(url)
            .copied()
    }
}

/// Who is looking: the session (with keys) or the open loopback console.
#[derive(Clone, Debug)]
pub(crate) struct Viewer {
    /// The key's name; None on the open loopback console.
    pub key_name: Option<String>,
    pub csrf: String,
}

pub(crate) fn router(state: Arc<ApiState>) -> Router<Arc<ApiState>> {
    let pages = Router::new()
        .route("/", get(pages::overview))
        .route("/events", get(events::page))
        .route("/search", get(search::page))
        .route("/search.json", get(search::json))
        .route("/cert/{tbs}", get(cert::page_handler))
        .route("/cert/{tbs}/pem", get(cert::pem_download))
        .route("/expiry", get(pages::expiry))
        .route("/watchlists", get(pages::watchlists))
        .route("/outbox", get(pages::outbox))
        .route("/outbox/requeue", post(pages::requeue))
        .route("/live", get(pages::live))
        .route("/logout", post(login::logout))
        .layer(middleware::from_fn_with_state(state.clone(), guard));
    Router::new()
        .merge(pages)
        .route("/login", get(login::form).post(login::submit))
        .route("/static/console.css", get(css))
        .route("/static/console.js", get(js))
        .route("/favicon.ico", get(icon))
        .route("/static/icon.svg", get(icon))
        .layer(middleware::from_fn_with_state(state, headers))
}

/// Security headers on every console response; key-less consoles answer only loopback-bound, non-rebound hosts.
async fn headers(State(state): State<Arc<ApiState>>, req: Request, next: Next) -> Response {
    if state.keys.is_empty() && !open_console_allowed(&state, &req) {
        return layout::error_page(
            StatusCode::FORBIDDEN,
            "Console unavailable",
            "Without [[api.keys]] the console is only served on a loopback address (--listen 127.0.0.1:PORT), to \
             requests for localhost or an IP address. Configure API keys to serve it elsewhere.",
        );
    }
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}

fn open_console_allowed(state: &ApiState, req: &Request) -> bool {
    if !state.console.listen.ip().is_loopback() {
        return false;
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    host_is_local(host)
}

/// `localhost[:port]` or an IP literal (`127.0.0.1:8080`, `[::1]:8080`) (pure).
pub(crate) fn host_is_local(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split_once(']').map_or("", |(h, _)| h)
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok()
}

/// Pages need a session when keys are configured; GETs without one go to the login page.
async fn guard(State(state): State<Arc<ApiState>>, mut req: Request, next: Next) -> Response {
    let viewer = if state.keys.is_empty() {
        Some(Viewer {
            key_name: None,
            csrf: state.console.open_csrf.clone(),
        })
    } else {
        session::current(&state, req.headers()).map(|s: Session| Viewer {
            key_name: Some(s.key_name),
            csrf: s.csrf,
        })
    };
    match viewer {
        Some(v) => {
            req.extensions_mut().insert(v);
            next.run(req).await
        }
        None if req.method() == axum::http::Method::GET => {
            let here = req
                .uri()
                .path_and_query()
                .map_or("/".to_string(), |p| p.to_string());
            let to = format!("/login?next={}", layout::url_encode(&here));
            Redirect::to(&to).into_response()
        }
        None => layout::error_page(
            StatusCode::FORBIDDEN,
            "Not logged in",
            "Log in again and retry.",
        ),
    }
}

async fn css() -> Response {
    static_asset(
        "text/css; charset=utf-8",
        include_str!("assets/console.css"),
    )
}

async fn js() -> Response {
    static_asset(
        "text/javascript; charset=utf-8",
        include_str!("assets/console.js"),
    )
}

async fn icon() -> Response {
    static_asset("image/svg+xml", include_str!("assets/icon.svg"))
}

fn static_asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_hosts() {
        for ok in [
            "localhost",
            "LOCALHOST:8080",
            "127.0.0.1:9",
            "[::1]:8080",
            "10.0.0.1",
        ] {
            assert!(host_is_local(ok), "{ok}");
        }
        for bad in ["evil.example:8080", "localhost.evil.example", "", "[::1"] {
            assert!(!host_is_local(bad), "{bad}");
        }
    }
}
