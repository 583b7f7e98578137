//! API keys (`X-API-Key`) and their per-key rate limits, as an axum middleware on /api/. Requests without a valid
//! key are rate limited per client address, so that guessing keys is slow.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::ratelimit::TokenBucket;
use super::{ApiError, ApiState, ResolvedKey};

/// The header carrying the key.
pub const HEADER: &str = "x-api-key";

struct Entry {
    name: String,
    /// SHA-256 of the secret: comparing digests leaks nothing useful about the secret through timing.
    digest: [u8; 32],
    bucket: Mutex<TokenBucket>,
}

/// Client addresses tracked for failed attempts before idle (full) buckets are pruned.
const MAX_TRACKED_CLIENTS: usize = 10_000;

/// The configured keys (empty means the API is open), and the failed-attempt buckets per client address.
pub(crate) struct Keys {
    entries: Vec<Entry>,
    unauthenticated_per_minute: u32,
    failures: Mutex<HashMap<IpAddr, TokenBucket>>,
}

impl Keys {
    pub(crate) fn new(keys: Vec<ResolvedKey>, unauthenticated_per_minute: u32) -> Keys {
        let now = Instant::now();
        Keys {
            entries: keys
                .into_iter()
                .map(|k| Entry {
                    digest: Sha256::digest(k.secret.as_bytes()).into(),
                    bucket: Mutex::new(TokenBucket::per_minute(k.requests_per_minute, now)),
                    name: k.name,
                })
                .collect(),
            unauthenticated_per_minute,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// A request without a valid key from `client`: 429 once the client used up its failed attempts, else
    /// `err` (401).
    fn reject(&self, client: Option<IpAddr>, now: Instant, err: ApiError) -> ApiError {
        let Some(ip) = client else { return err };
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_TRACKED_CLIENTS {
            map.retain(|_, b| !b.is_full(now));
        }
        let rate = self.unauthenticated_per_minute;
        let taken = map
            .entry(ip)
            .or_insert_with(|| TokenBucket::per_minute(rate, now))
            .take(now);
        match taken {
            Ok(()) => err,
            Err(wait) => {
                let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
                ApiError {
                    retry_after: Some(secs),
                    ..ApiError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        "rate_limited",
                        format!(
                            "too many requests without a valid API key from {ip}; retry in {secs} s"
                        ),
                    )
                }
            }
        }
    }

    /// Which key `presented` is, checking every key (no early exit on the first match).
    fn find(&self, presented: &[u8]) -> Option<&Entry> {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        let mut found = None;
        for e in &self.entries {
            let diff = e
                .digest
                .iter()
                .zip(digest.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            if diff == 0 {
                found = Some(e);
            }
        }
        found
    }

    /// Admit a request from `client` carrying `presented` (the header value) at `now`, or say why not.
    pub(crate) fn admit(
        &self,
        presented: Option<&[u8]>,
        client: Option<IpAddr>,
        now: Instant,
    ) -> Result<Option<&str>, ApiError> {
        if self.entries.is_empty() {
            return Ok(None);
        }
        let Some(presented) = presented else {
            return Err(self.reject(
                client,
                now,
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "missing_api_key",
                    "this endpoint needs an API key in the X-API-Key header",
                ),
            ));
        };
        let Some(entry) = self.find(presented) else {
            return Err(self.reject(
                client,
                now,
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_api_key",
                    "the X-API-Key header does not hold a valid API key",
                ),
            ));
        };
        let taken = entry
            .bucket
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(now);
        match taken {
            Ok(()) => Ok(Some(&entry.name)),
            Err(wait) => {
                let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
                Err(ApiError {
                    retry_after: Some(secs),
                    ..ApiError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        "rate_limited",
                        format!(
                            "rate limit of key {:?} exceeded; retry in {secs} s",
                            entry.name
                        ),
                    )
                })
            }
        }
    }
}

/// Middleware: reject /api/ requests without a valid key (when keys are configured) or over the key's rate.
pub(crate) async fn require_key(
    State(state): State<Arc<ApiState>>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = req.headers().get(HEADER).map(|v| v.as_bytes());
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let who = state.keys.admit(presented, client, Instant::now())?;
    if let Some(name) = who {
        tracing::debug!(key = name, path = %req.uri().path(), "api request");
    }
    Ok(next.run(req).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::new(
            vec![
                ResolvedKey {
                    name: "psa".into(),
                    secret: "psa-secret-0123456789".into(),
                    requests_per_minute: 2,
                },
                ResolvedKey {
                    name: "ops".into(),
                    secret: "ops-secret-0123456789".into(),
                    requests_per_minute: 60,
                },
            ],
            3,
        )
    }

    #[test]
    fn no_keys_means_open() {
        let k = Keys::new(vec![], 3);
        assert_eq!(k.admit(None, None, Instant::now()).unwrap(), None);
    }

    #[test]
    fn missing_wrong_and_valid_keys() {
        let k = keys();
        let now = Instant::now();
        assert_eq!(
            k.admit(None, None, now).unwrap_err().code,
            "missing_api_key"
        );
        let e = k
            .admit(Some(b"psa-secret-0123456780"), None, now)
            .unwrap_err();
        assert_eq!(
            (e.status, e.code),
            (StatusCode::UNAUTHORIZED, "invalid_api_key")
        );
        assert_eq!(
            k.admit(Some(b"ops-secret-0123456789"), None, now).unwrap(),
            Some("ops")
        );
    }

    #[test]
    fn each_key_has_its_own_bucket() {
        let k = keys();
        let now = Instant::now();
        let psa = Some(&b"psa-secret-0123456789"[..]);
        assert!(k.admit(psa, None, now).is_ok());
        assert!(k.admit(psa, None, now).is_ok());
        let e = k.admit(psa, None, now).unwrap_err();
        assert_eq!(
            (e.status, e.code, e.retry_after),
            (StatusCode::TOO_MANY_REQUESTS, "rate_limited", Some(30))
        );
        // The other key is unaffected.
        assert!(k.admit(Some(b"ops-secret-0123456789"), None, now).is_ok());
    }

    #[test]
    fn failed_attempts_are_rate_limited_per_client_address() {
        let k = keys();
        let now = Instant::now();
        let a: Option<IpAddr> = Some([192, 0, 2, 1].into());
        let b: Option<IpAddr> = Some([192, 0, 2, 2].into());
        for _ in 0..3 {
            let e = k.admit(Some(b"guess-0123456789"), a, now).unwrap_err();
            assert_eq!(e.status, StatusCode::UNAUTHORIZED);
        }
        let e = k.admit(Some(b"guess-0123456789"), a, now).unwrap_err();
        assert_eq!(
            (e.status, e.code, e.retry_after),
            (StatusCode::TOO_MANY_REQUESTS, "rate_limited", Some(20))
        );
        assert_eq!(
            k.admit(None, a, now).unwrap_err().status,
            StatusCode::TOO_MANY_REQUESTS
        );
        // Another client is unaffected, and so is a valid key from the same client.
        assert_eq!(
            k.admit(None, b, now).unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
        assert!(k.admit(Some(b"ops-secret-0123456789"), a, now).is_ok());
        // The bucket refills.
        let later = now + std::time::Duration::from_secs(20);
        assert_eq!(
            k.admit(None, a, later).unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
    }
}
