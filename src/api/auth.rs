//! API keys (`X-API-Key`) and their per-key rate limits, as an axum middleware on /api/.

use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
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

/// The configured keys; empty means the API is open.
pub(crate) struct Keys(Vec<Entry>);

impl Keys {
    pub(crate) fn new(keys: Vec<ResolvedKey>) -> Keys {
        let now = Instant::now();
        Keys(
            keys.into_iter()
                .map(|k| Entry {
                    digest: Sha256::digest(k.secret.as_bytes()).into(),
                    bucket: Mutex::new(TokenBucket::per_minute(k.requests_per_minute, now)),
                    name: k.name,
                })
                .collect(),
        )
    }

    /// Whether no key is configured (the API is open).
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Which key `presented` is, checking every key (no early exit on the first match).
    fn find(&self, presented: &[u8]) -> Option<&Entry> {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        let mut found = None;
        for e in &self.0 {
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

    /// Admit a request carrying `presented` (the header value) at `now`, or say why not.
    pub(crate) fn admit(
        &self,
        presented: Option<&[u8]>,
        now: Instant,
    ) -> Result<Option<&str>, ApiError> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let Some(presented) = presented else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing_api_key",
                "this endpoint needs an API key in the X-API-Key header",
            ));
        };
        let Some(entry) = self.find(presented) else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_api_key",
                "the X-API-Key header does not hold a valid API key",
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
    let who = state.keys.admit(presented, Instant::now())?;
    if let Some(name) = who {
        tracing::debug!(key = name, path = %req.uri().path(), "api request");
    }
    Ok(next.run(req).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::new(vec![
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
        ])
    }

    #[test]
    fn no_keys_means_open() {
        let k = Keys::new(vec![]);
        assert_eq!(k.admit(None, Instant::now()).unwrap(), None);
    }

    #[test]
    fn missing_wrong_and_valid_keys() {
        let k = keys();
        let now = Instant::now();
        assert_eq!(k.admit(None, now).unwrap_err().code, "missing_api_key");
        let e = k.admit(Some(b"psa-secret-0123456780"), now).unwrap_err();
        assert_eq!(
            (e.status, e.code),
            (StatusCode::UNAUTHORIZED, "invalid_api_key")
        );
        assert_eq!(
            k.admit(Some(b"ops-secret-0123456789"), now).unwrap(),
            Some("ops")
        );
    }

    #[test]
    fn each_key_has_its_own_bucket() {
        let k = keys();
        let now = Instant::now();
        let psa = Some(&b"psa-secret-0123456789"[..]);
        assert!(k.admit(psa, now).is_ok());
        assert!(k.admit(psa, now).is_ok());
        let e = k.admit(psa, now).unwrap_err();
        assert_eq!(
            (e.status, e.code, e.retry_after),
            (StatusCode::TOO_MANY_REQUESTS, "rate_limited", Some(30))
        );
        // The other key is unaffected.
        assert!(k.admit(Some(b"ops-secret-0123456789"), now).is_ok());
    }
}
