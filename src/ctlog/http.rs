//! HTTP GET with the politeness every log deserves: timeouts, bounded response sizes, exponential backoff with
//! jitter on transient errors, and a per-log gate so that one 429 pauses every request to that log for as long
//! as its Retry-After asks.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::RngExt;
use tokio::time::Instant;

use super::body::{Body, Collect};
use super::counters::FetchCounters;
use super::{Admission, LogError};

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
    counters: Arc<FetchCounters>,
    bandwidth: Option<Arc<Bandwidth>>,
    /// How long this log took to answer lately (to its response headers), in ms: a moving average.
    answer_ms: Arc<AtomicU64>,
}

/// A log that answers within this waits for room in the in-flight budget before each entries request is sent; a
/// slower one is asked at once (see [`Fetcher::get_admitted`]).
const ANSWERS_SOON: Duration = Duration::from_secs(1);

impl Fetcher {
    pub fn new(client: reqwest::Client, policy: RetryPolicy) -> Fetcher {
        Fetcher {
            client,
            policy,
            gate: Arc::new(Mutex::new(None)),
            counters: Arc::default(),
            bandwidth: None,
            answer_ms: Arc::default(),
        }
    }

    /// Count this log's traffic into `counters` (shared with the tailer and `/metrics`).
    pub fn with_counters(mut self, counters: Arc<FetchCounters>) -> Fetcher {
        self.counters = counters;
        self
    }

    /// Share a download bandwidth cap with other fetchers.
    pub fn with_bandwidth(mut self, bandwidth: Option<Arc<Bandwidth>>) -> Fetcher {
        self.bandwidth = bandwidth;
        self
    }

    pub fn counters(&self) -> &Arc<FetchCounters> {
        &self.counters
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// GET `url`, retrying transient failures; returns the body of a 200 response.
    pub async fn get(&self, url: &str) -> Result<Body, LogError> {
        self.get_admitted(url, None).await
    }

    /// [`Fetcher::get`] for entries: once the log answers 200, claims room for `admission`'s range in the global
    /// in-flight budget before reading the body. A request that waits on a slow log holds no budget.
    ///
    /// To a log that answers within [`ANSWERS_SOON`], the request is only sent once the budget has room: an answer
    /// that waits for room is not free (its connection has read up to a buffer's worth of the body, ~400 KB), and
    /// waiting before asking costs such a log nothing. A slow log is asked at once: by the time it answers, the
    /// budget has moved on, and asking late would add the wait to its seconds of latency (the busiest logs).
    ///
    /// The body is read into `C`: one pooled [`Body`], or the [`super::body::Chunks`] it arrived in.
    pub async fn get_admitted<C: Collect>(
        &self,
        url: &str,
        admission: Option<&Admission>,
    ) -> Result<C, LogError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.wait_gate().await;
            if let Some(b) = &self.bandwidth {
                b.wait().await;
            }
            if attempt > 1 {
                self.counters.retries.fetch_add(1, Relaxed);
            }
            if let Some(a) = admission
                && Duration::from_millis(self.answer_ms.load(Relaxed)) < ANSWERS_SOON
            {
                a.wait_for_room().await;
            }
            self.counters.requests.fetch_add(1, Relaxed);
            let err = match self.get_once::<C>(url, admission).await {
                Ok(body) => {
                    self.counters
                        .bytes
                        .fetch_add(body.collected() as u64, Relaxed);
                    if let Some(b) = &self.bandwidth {
                        b.consume(body.collected());
                    }
                    return Ok(body);
                }
                Err((err, retry_after)) => {
                    match &err {
                        LogError::Status { status, .. } => self.counters.count_status(*status),
                        LogError::Transport { .. } => {
                            self.counters.transport_errors.fetch_add(1, Relaxed);
                        }
                        _ => {}
                    }
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

    /// Fold one answer time into the moving average (a quarter weight: a few answers move it).
    fn note_answer_time(&self, took: Duration) {
        let took = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        let _ = self.answer_ms.fetch_update(Relaxed, Relaxed, |avg| {
            Some(if avg == 0 { took } else { (avg * 3 + took) / 4 })
        });
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
    async fn get_once<C: Collect>(
        &self,
        url: &str,
        admission: Option<&Admission>,
    ) -> Result<C, (LogError, Option<Duration>)> {
        let transport = |e: reqwest::Error| LogError::Transport {
            url: url.to_string(),
            message: error_chain(&e),
        };
        let sent = Instant::now();
        let mut resp = self
            .client
            .get(url)
            .timeout(self.policy.request_timeout)
            .send()
            .await
            .map_err(|e| (transport(e), None))?;
        self.note_answer_time(sent.elapsed());
        let status = resp.status();
        if !status.is_success() {
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(parse_retry_after);
            let retry_after =
                retry_after.or((status.as_u16() == 429).then_some(self.policy.base_delay));
            let body: Body = read_limited(&mut resp, 4096, 0).await.unwrap_or_default();
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
        if let Some(a) = admission {
            a.admit().await;
        }
        // Sized from Content-Length when the log sends it: growing a Vec by doubling would hold up to twice the
        // body while it is read.
        let capacity = resp.content_length().unwrap_or(0).min(limit as u64) as usize;
        match read_limited::<C>(&mut resp, limit + 1, capacity).await {
            Ok(body) if body.collected() > limit => Err((
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

/// A download bandwidth cap shared by every log (`--max-bandwidth`): a token bucket in bytes with one second of
/// burst. A request waits while the bucket is in debt; its response is paid for when it arrives, so large responses
/// make the next requests wait rather than being cut. Waiters take turns in arrival order (a tokio mutex is fair),
/// so a log catching up cannot starve the others.
#[derive(Debug)]
pub struct Bandwidth {
    bytes_per_sec: f64,
    state: Mutex<(f64, Instant)>,
    queue: tokio::sync::Mutex<()>,
}

impl Bandwidth {
    pub fn new(bytes_per_sec: u64) -> Bandwidth {
        let rate = bytes_per_sec.max(1) as f64;
        Bandwidth {
            bytes_per_sec: rate,
            state: Mutex::new((rate, Instant::now())),
            queue: tokio::sync::Mutex::new(()),
        }
    }

    fn refill(&self) -> f64 {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        s.0 = (s.0 + now.duration_since(s.1).as_secs_f64() * self.bytes_per_sec)
            .min(self.bytes_per_sec);
        s.1 = now;
        s.0
    }

    /// Wait until the bucket is out of debt.
    pub async fn wait(&self) {
        let _turn = self.queue.lock().await;
        loop {
            let tokens = self.refill();
            if tokens >= 0.0 {
                return;
            }
            tokio::time::sleep(Duration::from_secs_f64(-tokens / self.bytes_per_sec)).await;
        }
    }

    /// Pay for `bytes` received.
    pub fn consume(&self, bytes: usize) {
        self.refill();
        self.state.lock().unwrap_or_else(|e| e.into_inner()).0 -= bytes as f64;
    }
}

/// `100mbit`, `12.5MB`, `800kbit`, `1gbit` or plain bytes: a bandwidth per second, in bytes per second.
pub fn parse_bandwidth(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.trim_end_matches("/s").trim_end_matches("ps");
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("'{s}': expected a number with a unit such as 100mbit or 12mb"))?;
    let factor = match unit.trim() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "kbit" => 1e3 / 8.0,
        "mbit" => 1e6 / 8.0,
        "gbit" => 1e9 / 8.0,
        other => {
            return Err(format!(
                "'{s}': unknown unit '{other}' (use kbit, mbit, gbit, kb, mb, gb)"
            ));
        }
    };
    let bytes = n * factor;
    if !(bytes >= 1.0 && bytes.is_finite()) {
        return Err(format!("'{s}': must be at least 1 byte per second"));
    }
    Ok(bytes as u64)
}

async fn read_limited<C: Collect>(
    resp: &mut reqwest::Response,
    limit: usize,
    capacity: usize,
) -> Result<C, reqwest::Error> {
    let mut body = C::with_capacity(capacity);
    while let Some(chunk) = resp.chunk().await? {
        body.push(chunk);
        if body.collected() >= limit {
            break;
        }
    }
    body.finish();
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
        // Few idle connections per log, closed after a while: every HTTP/1.1 connection keeps its read buffer
        // (up to ~400 KB once it carried a large get-entries answer), and with 100+ logs idle sockets were most of
        // the memory (scripts/bench-firehose.sh). A log polled every few seconds keeps its connections warm.
        .pool_max_idle_per_host(1)
        .pool_idle_timeout(Duration::from_secs(30))
        .gzip(true)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctlog::InflightBudget;
    use crate::ctlog::body::Chunks;
    use crate::ctlog::budget::ENTRY_BYTES_ESTIMATE;
    use std::sync::atomic::AtomicUsize;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// An HTTP/1.1 server on 127.0.0.1 that counts requests and answers each `ok` after `delay`.
    async fn counting_server(delay: Duration) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/entries", listener.local_addr().unwrap());
        let seen = Arc::new(AtomicUsize::new(0));
        let count = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let count = count.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    loop {
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            match conn.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        buf.clear();
                        count.fetch_add(1, Relaxed);
                        tokio::time::sleep(delay).await;
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if conn.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (url, seen)
    }

    /// Whether an entries request is sent while the in-flight budget is full, to a log that answered in `delay`.
    async fn sent_while_the_budget_is_full(delay: Duration) -> bool {
        let (url, seen) = counting_server(delay).await;
        let fetcher = Fetcher::new(build_client().unwrap(), RetryPolicy::default());
        let budget = InflightBudget::from_bytes(256 * ENTRY_BYTES_ESTIMATE);
        // One answer teaches the fetcher how fast this log is.
        let first = Admission::new(&budget, 256);
        assert_eq!(
            &*fetcher
                .get_admitted::<Body>(&url, Some(&first))
                .await
                .unwrap(),
            b"ok"
        );
        drop(first);
        let full = budget.acquire(256).await;
        let waiting = {
            let (fetcher, url, budget) = (fetcher.clone(), url.clone(), budget.clone());
            tokio::spawn(async move {
                let a = Admission::new(&budget, 256);
                fetcher
                    .get_admitted::<Body>(&url, Some(&a))
                    .await
                    .map(|b| b.to_vec())
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        let sent = seen.load(Relaxed) == 2;
        assert!(!waiting.is_finished(), "the body is not read without room");
        drop(full);
        assert_eq!(waiting.await.unwrap().unwrap(), b"ok");
        assert_eq!(seen.load(Relaxed), 2);
        sent
    }

    #[tokio::test]
    async fn a_log_that_answers_soon_is_asked_only_when_the_budget_has_room() {
        assert!(!sent_while_the_budget_is_full(Duration::ZERO).await);
    }

    #[tokio::test]
    async fn a_slow_log_is_asked_at_once_and_its_answer_waits_for_room() {
        assert!(sent_while_the_budget_is_full(ANSWERS_SOON + Duration::from_millis(200)).await);
    }

    /// A server that answers one request with `body` in HTTP chunked encoding, `piece` bytes per chunk, each
    /// written (flushed) on its own.
    async fn chunked_server(body: Vec<u8>, piece: usize) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/ct/v1/get-entries",
            listener.local_addr().unwrap()
        );
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = conn.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..n]);
            }
            let head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
            conn.write_all(head).await.unwrap();
            let mut out = Vec::new();
            for part in body.chunks(piece) {
                out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                out.extend_from_slice(part);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
            // Small writes, so that the client's reads see the chunks one at a time as far as it can.
            for write in out.chunks(4096) {
                conn.write_all(write).await.unwrap();
                conn.flush().await.unwrap();
            }
        });
        url
    }

    #[tokio::test]
    async fn an_answer_in_tiny_http_chunks_is_read_whole_in_few_parts() {
        let body = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/rfc6962/navigli2025h2-converted-from-tiles/get-entries_start-0_end-255.json"
        ))
        .unwrap();
        let url = chunked_server(body.clone(), 1).await;
        let fetcher = Fetcher::new(build_client().unwrap(), RetryPolicy::default());
        let chunks: Chunks = fetcher.get_admitted(&url, None).await.unwrap();
        assert_eq!(chunks.len(), body.len());
        // One part per byte would be 32 bytes of bookkeeping per byte of the answer.
        assert!(
            chunks.parts().len() * 8 * 1024 < body.len() * 2,
            "{chunks:?}"
        );
        let entries = crate::ctlog::rfc6962::decode_get_entries(chunks, 0, 256).unwrap();
        assert_eq!(entries.len(), 256);
        assert!(entries.iter().all(|e| e.entry.is_ok()));
    }

    #[test]
    fn bandwidth_units() {
        assert_eq!(parse_bandwidth("100mbit"), Ok(12_500_000));
        assert_eq!(parse_bandwidth("100 Mbit/s"), Ok(12_500_000));
        assert_eq!(parse_bandwidth("12.5MB"), Ok(12_500_000));
        assert_eq!(parse_bandwidth("800kbit"), Ok(100_000));
        assert_eq!(parse_bandwidth("1gbit"), Ok(125_000_000));
        assert_eq!(parse_bandwidth("4096"), Ok(4096));
        let err = parse_bandwidth("100 furlongs").unwrap_err();
        assert!(err.contains("unknown unit 'furlongs'"), "{err}");
        assert!(parse_bandwidth("mbit").is_err());
        assert!(parse_bandwidth("0kb").is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn bandwidth_cap_paces_downloads() {
        let b = Bandwidth::new(1000);
        let start = Instant::now();
        for _ in 0..5 {
            b.wait().await;
            b.consume(1000);
        }
        b.wait().await;
        // One second of burst, then 1000 bytes per second: 5000 bytes paid by about t = 4 s.
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(3900) && took <= Duration::from_millis(4200),
            "{took:?}"
        );
    }
}
