//! HTTP plumbing shared by the four HTTP sinks (webhook, Discord, Slack, Telegram): one [`HttpSink`] holding
//! what they all share ([`HttpTarget`]: name, batching, timeout, give-up age, client, pacer) around a
//! per-service message builder ([`HttpService`]); one POST with a timeout, the answer classified into
//! success / retry later / give up, `Retry-After` parsing, and a pacer that keeps us under a target's rate limit.
//!
//! Error messages never contain the URL: Discord and Slack webhook URLs and Telegram bot URLs are secrets.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::{Batching, Sink, SinkError};
use crate::store::Delivery;

/// What every HTTP sink shares: its outbox name, how its events are grouped, and how it talks HTTP.
#[derive(Debug)]
pub struct HttpTarget {
    /// Unique sink name (the outbox key).
    pub name: String,
    pub batching: Batching,
    /// The most events one message shows in full (chat sinks summarise the rest).
    pub max_events_per_message: usize,
    /// Overall timeout of one request.
    pub timeout: Duration,
    pub give_up_after: Option<Duration>,
    pub client: reqwest::Client,
    pub pacer: Pacer,
}

impl HttpTarget {
    /// Wait for our turn (the pacer), then POST `body` as JSON to `url` with extra `headers`.
    pub async fn post(
        &self,
        url: &str,
        body: &serde_json::Value,
        headers: &[(String, String)],
    ) -> Result<Reply, SinkError> {
        let body = serde_json::to_vec(body).map_err(|e| SinkError::permanent(e.to_string()))?;
        self.pacer.wait().await;
        post_json(&self.client, url, body, headers, self.timeout).await
    }
}

/// A boxed future borrowing from the sink, as [`Sink::send`] returns.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + 'a>>;

/// The part of an HTTP sink that differs per service: how a batch of events becomes request(s), and how the
/// service's answers are read. Everything else comes from the [`HttpTarget`].
pub trait HttpService: Send + Sync + 'static {
    /// Deliver `events` as one message (or a few, for services with size limits) through `target`.
    fn deliver<'a>(&'a self, target: &'a HttpTarget, events: &'a [Delivery]) -> SendFuture<'a>;
}

/// An HTTP notification sink: the shared [`HttpTarget`] and a service `S`.
pub struct HttpSink<S> {
    pub target: HttpTarget,
    pub service: S,
}

impl<S: HttpService> Sink for HttpSink<S> {
    fn name(&self) -> &str {
        &self.target.name
    }

    fn batching(&self) -> Batching {
        self.target.batching
    }

    fn give_up_after(&self) -> Option<Duration> {
        self.target.give_up_after
    }

    fn send<'a>(&'a self, events: &'a [Delivery]) -> SendFuture<'a> {
        self.service.deliver(&self.target, events)
    }
}

/// The HTTP client for notification targets: rustls with the webpki roots, a connect timeout, no proxy
/// surprises. Each request sets its own overall timeout (`timeout_secs`).
pub fn http_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
}

/// What a target answered.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

/// POST `body` as JSON. Network errors and timeouts are transient `SinkError`s; any HTTP answer is a `Reply`.
pub async fn post_json(
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
    headers: &[(String, String)],
    timeout: Duration,
) -> Result<Reply, SinkError> {
    let mut req = client
        .post(url)
        .timeout(timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(
            reqwest::header::USER_AGENT,
            concat!("ctwatch/", env!("CARGO_PKG_VERSION")),
        )
        .body(body);
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let resp = req
        .send()
        .await
        .map_err(|e| SinkError::transient(describe(e)))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    // A body that cannot be read is not worth failing a delivered message for.
    let body = resp.text().await.unwrap_or_default();
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// A reqwest error with its causes, without the URL.
fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut msg = kind.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

/// The usual reading of an HTTP answer: 2xx is success; 429/502/503/504 honour Retry-After; 404/410 mean the
/// endpoint is gone; 408, 425, 429 and 5xx are worth retrying; any other 4xx is a request we must not repeat.
pub fn classify(target: &str, reply: &Reply) -> Result<(), SinkError> {
    let status = reply.status;
    if (200..300).contains(&status) {
        return Ok(());
    }
    let message = format!(
        "{target} answered HTTP {status}{}",
        body_excerpt(&reply.body)
    );
    let retry_after = match status {
        429 | 502 | 503 | 504 => retry_after_header(&reply.headers, SystemTime::now()),
        _ => None,
    };
    Err(match status {
        404 | 410 => SinkError::gone(message),
        408 | 425 | 429 | 500..=599 => SinkError {
            retry_after,
            ..SinkError::transient(message)
        },
        _ => SinkError::permanent(message),
    })
}

/// `: <first 200 chars of the body>` when there is a body.
pub fn body_excerpt(body: &str) -> String {
    let body = body.trim();
    if body.is_empty() {
        String::new()
    } else {
        format!(": {}", super::digest::truncate_chars(body, 200))
    }
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3), relative to `now`.
pub fn retry_after_header(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(86_400.0)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Spaces requests to one target: at least `min_interval` apart, and not before a time the target named
/// (Discord's `X-RateLimit-Reset-After` when `X-RateLimit-Remaining` hits 0).
#[derive(Debug)]
pub struct Pacer {
    min_interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl Pacer {
    pub fn new(min_interval: Duration) -> Pacer {
        Pacer {
            min_interval,
            next: Mutex::new(None),
        }
    }

    /// Wait for our turn, and book the next one.
    pub async fn wait(&self) {
        let mut next = self.next.lock().await;
        if let Some(t) = *next {
            tokio::time::sleep_until(t).await;
        }
        *next = Some(Instant::now() + self.min_interval);
    }

    /// Nothing more before `delay` from now.
    pub async fn hold(&self, delay: Duration) {
        let mut next = self.next.lock().await;
        let t = Instant::now() + delay;
        *next = Some(next.map_or(t, |n| n.max(t)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderValue, RETRY_AFTER};

    fn reply(status: u16, retry_after: Option<&str>, body: &str) -> Reply {
        let mut headers = HeaderMap::new();
        if let Some(v) = retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
        }
        Reply {
            status,
            headers,
            body: body.into(),
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        let h = |v: &str| reply(429, Some(v), "").headers;
        assert_eq!(
            retry_after_header(&h("120"), now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            retry_after_header(&h("1.5"), now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            retry_after_header(&h("Sun, 06 Nov 1994 08:50:07 GMT"), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after_header(&h("Sun, 06 Nov 1994 08:00:00 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after_header(&h("soon"), now), None);
        assert_eq!(retry_after_header(&h("-3"), now), None);
    }

    #[test]
    fn statuses_are_classified() {
        assert_eq!(classify("t", &reply(204, None, "")), Ok(()));
        let e = classify("t", &reply(429, Some("7"), "slow down")).unwrap_err();
        assert_eq!(
            (e.retry_after, e.permanent, e.gone),
            (Some(Duration::from_secs(7)), false, false)
        );
        assert_eq!(e.message, "t answered HTTP 429: slow down");
        let e = classify("t", &reply(500, Some("7"), "")).unwrap_err();
        assert_eq!((e.retry_after, e.permanent), (None, false));
        let e = classify("t", &reply(503, Some("2"), "")).unwrap_err();
        assert_eq!(e.retry_after, Some(Duration::from_secs(2)));
        let e = classify("t", &reply(410, None, "")).unwrap_err();
        assert!(e.permanent && e.gone);
        let e = classify("t", &reply(400, None, "invalid_payload")).unwrap_err();
        assert!(e.permanent && !e.gone);
        assert_eq!(e.message, "t answered HTTP 400: invalid_payload");
    }

    #[tokio::test(start_paused = true)]
    async fn the_pacer_spaces_requests_and_honours_holds() {
        let p = Pacer::new(Duration::from_millis(400));
        let t0 = Instant::now();
        p.wait().await;
        p.wait().await;
        assert_eq!(t0.elapsed(), Duration::from_millis(400));
        p.hold(Duration::from_secs(3)).await;
        p.wait().await;
        assert_eq!(t0.elapsed(), Duration::from_millis(3400));
    }
}
