//! The certstream-compatible live feed: `/stream/full`, `/stream/lite`, `/stream/domains` (WebSocket) and
//! `/stream/sse` (Server-Sent Events), fed by [`crate::feed`] with verified entries only.
//!
//! ```text
//!  GET /stream/full|lite|domains [?watchlist=1][&tag=T][&kind=K][&key=API_KEY]   (WebSocket upgrade)
//!  GET /stream/sse?format=full|lite|domains [...same filters]                     (text/event-stream)
//! ```
//!
//! Each client has its own task and its own cursor in the feed's ring; a client more than
//! `client_buffer_messages` behind, or whose socket does not take a message within `send_timeout_secs`, is
//! closed with code 1008 and a reason saying so. Tailers and the other clients never wait for anyone.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Extension;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};

use super::{ApiError, ApiState};
use crate::feed::FeedItem;

/// `[api.stream]` in the config file.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct StreamConfig {
    /// Most live-feed clients at once (WebSocket + SSE). Default 500, range 1..=100000.
    pub max_clients: usize,
    /// Most clients at once per API key (or in total from unauthenticated loopback clients). Default 50.
    pub max_clients_per_key: usize,
    /// Messages a client may be behind before it is dropped. Default 16384 (keep it above `batch_entries`: a
    /// committed batch is published at once), range 16..=1000000.
    pub client_buffer_messages: usize,
    /// Seconds between heartbeat messages. Default 15, range 1..=3600.
    pub heartbeat_secs: u64,
    /// Seconds a client's socket may take to accept one message before the client is dropped. Default 10.
    pub send_timeout_secs: u64,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            max_clients: 500,
            max_clients_per_key: 50,
            client_buffer_messages: crate::feed::DEFAULT_CLIENT_BUFFER,
            heartbeat_secs: 15,
            send_timeout_secs: 10,
        }
    }
}

impl StreamConfig {
    /// The first out-of-range setting, as (key, value, lo, hi).
    pub fn out_of_range(&self) -> Option<(&'static str, usize, usize, usize)> {
        let checks = [
            ("api.stream.max_clients", self.max_clients, 1, 100_000),
            (
                "api.stream.max_clients_per_key",
                self.max_clients_per_key,
                1,
                100_000,
            ),
            (
                "api.stream.client_buffer_messages",
                self.client_buffer_messages,
                16,
                1_000_000,
            ),
            (
                "api.stream.heartbeat_secs",
                self.heartbeat_secs as usize,
                1,
                3600,
            ),
            (
                "api.stream.send_timeout_secs",
                self.send_timeout_secs as usize,
                1,
                3600,
            ),
        ];
        checks
            .into_iter()
            .find(|(_, v, lo, hi)| !(*lo..=*hi).contains(v))
    }
}

/// Connected clients, per key, and what happened to them (for /metrics and the benchmark).
pub(crate) struct Clients {
    config: StreamConfig,
    per_key: Mutex<HashMap<String, usize>>,
    total: AtomicUsize,
    pub(crate) messages_sent: AtomicU64,
    pub(crate) dropped_slow: AtomicU64,
    shutdown: watch::Receiver<bool>,
}

/// A client's place; released when the client goes.
pub(crate) struct Permit {
    clients: Arc<Clients>,
    key: String,
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit").field("key", &self.key).finish()
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.clients.total.fetch_sub(1, Relaxed);
        let mut map = self
            .clients
            .per_key
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.key) {
            *n = n.saturating_sub(1);
        }
    }
}

impl Clients {
    pub(crate) fn new(config: StreamConfig, shutdown: watch::Receiver<bool>) -> Clients {
        Clients {
            config,
            per_key: Mutex::new(HashMap::new()),
            total: AtomicUsize::new(0),
            messages_sent: AtomicU64::new(0),
            dropped_slow: AtomicU64::new(0),
            shutdown,
        }
    }

    pub(crate) fn connected(&self) -> usize {
        self.total.load(Relaxed)
    }

    /// Admit one more client for `key`, or say which limit it hit (503).
    fn admit(self: &Arc<Self>, key: &str) -> Result<Permit, ApiError> {
        let mut map = self.per_key.lock().unwrap_or_else(|e| e.into_inner());
        let busy =
            |m: String| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "too_many_clients", m);
        if self.total.load(Relaxed) >= self.config.max_clients {
            return Err(busy(format!(
                "the live feed already has {} clients (api.stream.max_clients)",
                self.config.max_clients
            )));
        }
        let n = map.entry(key.to_string()).or_default();
        if *n >= self.config.max_clients_per_key {
            return Err(busy(format!(
                "{n} live-feed clients already use this key (api.stream.max_clients_per_key)"
            )));
        }
        *n += 1;
        self.total.fetch_add(1, Relaxed);
        Ok(Permit {
            clients: self.clone(),
            key: key.to_string(),
        })
    }
}

/// Which messages a client wants, and in which rendering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    Full,
    Lite,
    Domains,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Filter {
    watchlist_only: bool,
    tag: Option<String>,
    kind: Option<String>,
}

impl Filter {
    fn accepts(&self, item: &FeedItem) -> bool {
        (!self.watchlist_only || !item.matches.is_empty())
            && self.tag.as_deref().is_none_or(|t| item.has_tag(t))
            && self.kind.as_deref().is_none_or(|k| item.has_kind(k))
    }
}

/// Parse the query: filters, `key`, and (SSE) `format` (pure).
pub(crate) fn parse_query(
    q: &HashMap<String, String>,
    sse: bool,
) -> Result<(Filter, Option<Flavor>), ApiError> {
    let allowed: &[&str] = if sse {
        &["watchlist", "tag", "kind", "key", "format"]
    } else {
        &["watchlist", "tag", "kind", "key"]
    };
    if let Some(k) = q.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::bad_request(
            "unknown_parameter",
            format!(
                "unknown query parameter {k:?} (expected {})",
                allowed.join(", ")
            ),
        ));
    }
    let watchlist_only = match q.get("watchlist").map(String::as_str) {
        None | Some("0" | "false") => false,
        Some("1" | "true" | "") => true,
        Some(v) => {
            return Err(ApiError::bad_request(
                "invalid_watchlist",
                format!("watchlist must be 1 or 0, not {v:?}"),
            ));
        }
    };
    let nonempty = |k: &str| {
        q.get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let flavor = match q.get("format").map(String::as_str) {
        None => None,
        Some("full") => Some(Flavor::Full),
        Some("lite") => Some(Flavor::Lite),
        Some("domains") => Some(Flavor::Domains),
        Some(v) => {
            return Err(ApiError::bad_request(
                "invalid_format",
                format!("format must be full, lite or domains, not {v:?}"),
            ));
        }
    };
    let filter = Filter {
        watchlist_only,
        tag: nonempty("tag"),
        kind: nonempty("kind"),
    };
    Ok((filter, flavor))
}

/// Who is connecting: the key's name, `session:<key name>` for a console session, or `loopback` when the API
/// has no keys. The connection takes one token of the key's rate limit.
/// The client's address, when the server records it (failed key attempts are rate limited per address).
pub(crate) fn peer_ip(peer: Option<Extension<ConnectInfo<SocketAddr>>>) -> Option<IpAddr> {
    peer.map(|Extension(ConnectInfo(a))| a.ip())
}

fn identify(
    state: &ApiState,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
    client: Option<std::net::IpAddr>,
) -> Result<String, ApiError> {
    if state.keys.is_empty() {
        return Ok("open".into());
    }
    if let Some(name) = super::session::from_headers(state, headers) {
        return Ok(format!("session:{name}"));
    }
    let presented = headers
        .get(super::auth::HEADER)
        .map(|v| v.as_bytes())
        .or_else(|| q.get("key").map(|k| k.as_bytes()));
    let who = state
        .keys
        .admit(presented, client, tokio::time::Instant::now())?;
    Ok(who.unwrap_or("open").to_string())
}

pub(crate) async fn full(
    s: State<Arc<ApiState>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    h: HeaderMap,
    q: Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    websocket(s, peer_ip(peer), h, q, ws, Flavor::Full)
}

pub(crate) async fn lite(
    s: State<Arc<ApiState>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    h: HeaderMap,
    q: Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    websocket(s, peer_ip(peer), h, q, ws, Flavor::Lite)
}

pub(crate) async fn domains(
    s: State<Arc<ApiState>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    h: HeaderMap,
    q: Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    websocket(s, peer_ip(peer), h, q, ws, Flavor::Domains)
}

fn websocket(
    State(state): State<Arc<ApiState>>,
    client: Option<IpAddr>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
    flavor: Flavor,
) -> Result<Response, ApiError> {
    let (filter, _) = parse_query(&q, false)?;
    let who = identify(&state, &headers, &q, client)?;
    let permit = state.streams.admit(&who)?;
    let rx = state.registry.feed.subscribe();
    let clients = state.streams.clone();
    Ok(ws
        .max_message_size(64 << 10)
        .on_upgrade(move |socket| serve_websocket(socket, rx, filter, flavor, clients, permit)))
}

fn text(item: &FeedItem, flavor: Flavor) -> Utf8Bytes {
    match flavor {
        Flavor::Full => item.full.clone(),
        Flavor::Lite => item.lite.clone(),
        Flavor::Domains => item.domains.clone(),
    }
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as f64 / 1000.0)
        .unwrap_or(0.0)
}

/// One WebSocket client until it leaves, falls behind, or the server stops.
async fn serve_websocket(
    socket: WebSocket,
    mut feed: broadcast::Receiver<Arc<FeedItem>>,
    filter: Filter,
    flavor: Flavor,
    clients: Arc<Clients>,
    _permit: Permit,
) {
    let (mut out, mut incoming) = socket.split();
    let cfg = &clients.config;
    let send_timeout = Duration::from_secs(cfg.send_timeout_secs);
    let mut beat = tokio::time::interval(Duration::from_secs(cfg.heartbeat_secs));
    beat.tick().await;
    let mut shutdown = clients.shutdown.clone();
    let close = |code, reason: String| {
        Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))
    };
    let last = loop {
        let msg = tokio::select! {
            got = feed.recv() => match got {
                Ok(item) if filter.accepts(&item) => Message::Text(text(&item, flavor)),
                Ok(_) => continue,
                Err(RecvError::Lagged(n)) => {
                    clients.dropped_slow.fetch_add(1, Relaxed);
                    break Some(close(close_code::POLICY, format!("client too slow: {n} messages dropped; reconnect")));
                }
                Err(RecvError::Closed) => break Some(close(close_code::AWAY, "server stopping".into())),
            },
            _ = beat.tick() => Message::Text(crate::certstream::heartbeat(now_secs()).into()),
            got = incoming.next() => match got {
                // Pings are answered by the WebSocket layer; text from clients is ignored, like certstream does.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break None,
                Some(Ok(_)) => continue,
            },
            _ = shutdown.wait_for(|s| *s) => break Some(close(close_code::AWAY, "server stopping".into())),
        };
        match tokio::time::timeout(send_timeout, out.send(msg)).await {
            Ok(Ok(())) => {
                clients.messages_sent.fetch_add(1, Relaxed);
            }
            Ok(Err(_)) => break None,
            Err(_) => {
                clients.dropped_slow.fetch_add(1, Relaxed);
                break Some(close(
                    close_code::POLICY,
                    "client too slow: send timed out".into(),
                ));
            }
        }
    };
    if let Some(frame) = last {
        // A slow client may still be reading what its socket buffered: give the close frame as long as a message.
        let _ = tokio::time::timeout(send_timeout, out.send(frame)).await;
    }
}

/// `GET /stream/sse`: the same feed as Server-Sent Events (`format=lite` by default).
pub(crate) async fn sse(
    State(state): State<Arc<ApiState>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (filter, flavor) = parse_query(&q, true)?;
    let who = identify(&state, &headers, &q, peer_ip(peer))?;
    let permit = state.streams.admit(&who)?;
    let clients = state.streams.clone();
    let rx = state.registry.feed.subscribe();
    let stream = sse_stream(rx, filter, flavor.unwrap_or(Flavor::Lite), clients, permit);
    Ok(Sse::new(stream)
        .keep_alive(
            KeepAlive::new().interval(Duration::from_secs(state.config.stream.heartbeat_secs)),
        )
        .into_response())
}

fn sse_stream(
    rx: broadcast::Receiver<Arc<FeedItem>>,
    filter: Filter,
    flavor: Flavor,
    clients: Arc<Clients>,
    permit: Permit,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let shutdown = clients.shutdown.clone();
    let state = Some((rx, shutdown, permit));
    futures::stream::unfold(state, move |state| {
        let filter = filter.clone();
        let clients = clients.clone();
        async move {
            let (mut rx, mut shutdown, permit) = state?;
            loop {
                let got = tokio::select! {
                    got = rx.recv() => got,
                    _ = shutdown.wait_for(|s| *s) => return None,
                };
                match got {
                    Ok(item) if filter.accepts(&item) => {
                        clients.messages_sent.fetch_add(1, Relaxed);
                        let ev = Event::default().data(text(&item, flavor).as_str());
                        return Some((Ok(ev), Some((rx, shutdown, permit))));
                    }
                    Ok(_) => continue,
                    Err(RecvError::Lagged(n)) => {
                        clients.dropped_slow.fetch_add(1, Relaxed);
                        let ev = Event::default()
                            .event("error")
                            .data(format!("client too slow: {n} messages dropped; reconnect"));
                        return Some((Ok(ev), None));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn query_filters() {
        let (f, fl) = parse_query(
            &q(&[("watchlist", "1"), ("tag", "acme"), ("kind", "lookalike")]),
            false,
        )
        .unwrap();
        assert!(f.watchlist_only);
        assert_eq!(f.tag.as_deref(), Some("acme"));
        assert_eq!(f.kind.as_deref(), Some("lookalike"));
        assert_eq!(fl, None);
        assert_eq!(
            parse_query(&q(&[("format", "domains")]), true).unwrap().1,
            Some(Flavor::Domains)
        );
        let code = |p: &[(&str, &str)], sse| parse_query(&q(p), sse).unwrap_err().code;
        assert_eq!(code(&[("format", "full")], false), "unknown_parameter");
        assert_eq!(code(&[("watchlist", "yes")], false), "invalid_watchlist");
        assert_eq!(code(&[("format", "xml")], true), "invalid_format");
    }

    #[test]
    fn limits_per_key_and_in_total() {
        let cfg = StreamConfig {
            max_clients: 3,
            max_clients_per_key: 2,
            ..StreamConfig::default()
        };
        let clients = Arc::new(Clients::new(cfg, watch::channel(false).1));
        let a1 = clients.admit("a").unwrap();
        let _a2 = clients.admit("a").unwrap();
        assert_eq!(clients.admit("a").unwrap_err().code, "too_many_clients");
        let _b1 = clients.admit("b").unwrap();
        assert_eq!(clients.admit("b").unwrap_err().code, "too_many_clients");
        drop(a1);
        assert_eq!(clients.connected(), 2);
        assert!(clients.admit("b").is_ok());
    }

    #[test]
    fn config_ranges() {
        assert_eq!(StreamConfig::default().out_of_range(), None);
        let bad = StreamConfig {
            client_buffer_messages: 1,
            ..StreamConfig::default()
        };
        assert_eq!(
            bad.out_of_range().unwrap().0,
            "api.stream.client_buffer_messages"
        );
    }
}
