//! HTTP GET with the politeness every log deserves: timeouts, bounded response sizes, exponential backoff with
//! jitter on transient errors, and a per-log gate so that one 429 pauses every request to that log for as long
//! as its Retry-After asks.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::RngExt;
use tokio::time::Instant;

use super::LogError;

/// How hard to retry one request.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts per request, including the first (>= 1).
    pub max_attempts: u32,
    /// First backoff delay; doubles each attempt, with full jitter.
    pub base_delay: Duration,
    /// Cap on one backoff delay.
    pub max_delay: Duration,
    /// Cap on a log's `Retry-After`: a hostile `Retry-After: 999999` must not park a run for days.
    pub max_retry_after: Duration,
    /// Timeout of one HTTP request (connect + response body).
    pub request_timeout: Duration,
    /// Largest response body accepted.
    pub max_body_bytes: usize,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(300),
            max_retry_after: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            max_body_bytes: 64 << 20,
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt `attempt + 1` (attempt counts from 1): exponential with full jitter.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.max_delay);
        let half = exp / 2;
        half + exp
            .saturating_sub(half)
            .mul_f64(rand::rng().random::<f64>())
    }
}

/// A fetcher for one log: shares its rate-limit gate between all concurrent requests to that log.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    policy: RetryPolicy,
    /// Requests to this log wait until this instant (set by 429 / Retry-After).
    gate: Arc<Mutex<Option<Instant>>>,
}

impl Fetcher {
    pub fn new(client: reqwest::Client, policy: RetryPolicy) -> Fetcher {
        Fetcher {
            client,
            policy,
            gate: Arc::new(Mutex::new(None)),
        }
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// GET `url`, retrying transient failures; returns the body of a 200 response.
    pub async fn get(&self, url: &str) -> Result<Vec<u8>, LogError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.wait_gate().await;
            let err = match self.get_once(url).await {
                Ok(body) => return Ok(body),
                Err((err, retry_after)) => {
                    if let Some(after) = retry_after {
                        self.close_gate(after.min(self.policy.max_retry_after));
                    }
                    err
                }
            };
            if !err.is_transient() || attempt >= self.policy.max_attempts {
                return Err(err);
            }
            let delay = self.policy.backoff(attempt);
            tracing::debug!(%url, attempt, ?delay, error = %err, "retrying");
            tokio::time::sleep(delay).await;
        }
    }

    async fn wait_gate(&self) {
        loop {
            let until = *self.gate.lock().unwrap_or_else(|e| e.into_inner());
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t).await,
                _ => return,
            }
        }
    }

    fn close_gate(&self, after: Duration) {
        let until = Instant::now() + after;
        let mut gate = self.gate.lock().unwrap_or_else(|e| e.into_inner());
        if gate.is_none_or(|g| g < until) {
            *gate = Some(until);
        }
    }

    /// One attempt. On failure also returns the Retry-After the server asked for (429 / 503).
    async fn get_once(&self, url: &str) -> Result<Vec<u8>, (LogError, Option<Duration>)> {
        let transport = |e: reqwest::Error| LogError::Transport {
            url: url.to_string(),
            message: error_chain(&e),
        };
        let mut resp = self
            .client
            .get(url)
            .timeout(self.policy.request_timeout)
            .send()
            .await
            .map_err(|e| (transport(e), None))?;
        let status = resp.status();
        if !status.is_success() {
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(parse_retry_after);
            let retry_after =
                retry_after.or((status.as_u16() == 429).then_some(self.policy.base_delay));
            let body = read_limited(&mut resp, 4096).await.unwrap_or_default();
            let body = String::from_utf8_lossy(&body).trim().to_string();
            return Err((
                LogError::Status {
                    url: url.to_string(),
                    status: status.as_u16(),
                    body,
                },
                retry_after,
            ));
        }
        let limit = self.policy.max_body_bytes;
        if resp.content_length().is_some_and(|l| l as usize > limit) {
            return Err((
                LogError::TooLarge {
                    url: url.to_string(),
                    limit,
                },
                None,
            ));
        }
        match read_limited(&mut resp, limit + 1).await {
            Ok(body) if body.len() > limit => Err((
                LogError::TooLarge {
                    url: url.to_string(),
                    limit,
                },
                None,
            )),
            Ok(body) => Ok(body),
            Err(e) => Err((transport(e), None)),
        }
    }
}

async fn read_limited(
    resp: &mut reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        body.extend_from_slice(&chunk);
        if body.len() >= limit {
            break;
        }
    }
    Ok(body)
}

/// `Retry-After: 120` or an HTTP date.
pub fn parse_retry_after(v: &reqwest::header::HeaderValue) -> Option<Duration> {
    let s = v.to_str().ok()?.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(s).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

/// The HTTP client shared by every log: rustls, gzip, a user agent that names us.
pub fn build_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .user_agent(concat!(
            "ctwatch/",
            env!("CARGO_PKG_VERSION"),
            " (Certificate Transparency monitor)"
        ))
        .connect_timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(16)
        .gzip(true)
        .build()
}
