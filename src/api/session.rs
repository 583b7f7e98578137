//! Console sessions: an API key is entered once on the login page and exchanged for a random session token kept
//! in an `HttpOnly; SameSite=Strict` cookie. Each session has its own CSRF token, required by the one
//! state-changing console action (re-queueing failed deliveries).
//!
//! Sessions live in memory: a restart logs everyone out, which is fine for an operator console. Keys are checked
//! by [`super::auth::Keys`], exactly as for the API (same keys, same per-key rate limit on the login).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use tokio::time::Instant;

use super::ApiState;

/// The session cookie's name.
pub const COOKIE_NAME: &str = "ctwatch_session";
/// How long a session lasts without being used again.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(12 * 3600);
/// Most sessions kept at once (the oldest are forgotten first).
const MAX_SESSIONS: usize = 10_000;

#[derive(Clone, Debug)]
pub(crate) struct Session {
    /// The name of the API key that logged in.
    pub key_name: String,
    pub csrf: String,
    last_used: Instant,
}

/// The open sessions, by token.
#[derive(Default)]
pub(crate) struct Sessions(Mutex<HashMap<String, Session>>);

fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

impl Sessions {
    /// Open a session for `key_name`; returns its token.
    pub(crate) fn open(&self, key_name: &str, now: Instant) -> String {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, s| now.duration_since(s.last_used) < IDLE_TIMEOUT);
        let oldest = (map.len() >= MAX_SESSIONS)
            .then(|| {
                map.iter()
                    .min_by_key(|(_, s)| s.last_used)
                    .map(|(k, _)| k.clone())
            })
            .flatten();
        if let Some(oldest) = oldest {
            map.remove(&oldest);
        }
        let token = random_token();
        map.insert(
            token.clone(),
            Session {
                key_name: key_name.to_string(),
                csrf: random_token(),
                last_used: now,
            },
        );
        token
    }

    /// The live session of `token`, refreshed.
    pub(crate) fn get(&self, token: &str, now: Instant) -> Option<Session> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let s = map.get_mut(token)?;
        if now.duration_since(s.last_used) >= IDLE_TIMEOUT {
            map.remove(token);
            return None;
        }
        s.last_used = now;
        Some(s.clone())
    }

    pub(crate) fn close(&self, token: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(token);
    }
}

/// The session token in the request's cookies, if any.
pub(crate) fn token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE_NAME)
        .map(|(_, v)| v.to_string())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The session of the request, if it carries a valid one.
pub(crate) fn current(state: &ApiState, headers: &HeaderMap) -> Option<Session> {
    state.sessions.get(&token(headers)?, Instant::now())
}

/// The key name of the request's console session, if it carries a valid one.
pub(crate) fn from_headers(state: &ApiState, headers: &HeaderMap) -> Option<String> {
    current(state, headers).map(|s| s.key_name)
}

/// `Set-Cookie` for a new session.
pub(crate) fn set_cookie(token: &str) -> String {
    format!(
        "{COOKIE_NAME}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        IDLE_TIMEOUT.as_secs()
    )
}

/// `Set-Cookie` that removes the session cookie.
pub(crate) fn clear_cookie() -> String {
    format!("{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Compare two tokens without an early exit.
pub(crate) fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn sessions_open_expire_and_close() {
        let s = Sessions::default();
        let t0 = Instant::now();
        let tok = s.open("ops", t0);
        assert_eq!(tok.len(), 64);
        let got = s.get(&tok, t0 + Duration::from_secs(60)).unwrap();
        assert_eq!(got.key_name, "ops");
        assert_eq!(got.csrf.len(), 64);
        assert_ne!(got.csrf, tok);
        assert!(s.get("nope", t0).is_none());
        // Used at +60 s, so still alive just under the idle timeout after that.
        assert!(s.get(&tok, t0 + IDLE_TIMEOUT).is_some());
        assert!(s.get(&tok, t0 + IDLE_TIMEOUT * 3).is_none());
        let tok = s.open("ops", t0);
        s.close(&tok);
        assert!(s.get(&tok, t0).is_none());
    }

    #[test]
    fn cookie_parsing() {
        let tok = "a".repeat(64);
        let mut h = HeaderMap::new();
        h.append(
            COOKIE,
            HeaderValue::from_str(&format!("x=1; {COOKIE_NAME}={tok}; y=2")).unwrap(),
        );
        assert_eq!(token(&h), Some(tok));
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("ctwatch_session=<script>"));
        assert_eq!(token(&h), None);
        assert!(set_cookie("t").contains("HttpOnly; SameSite=Strict"));
        assert!(same_token("abc", "abc") && !same_token("abc", "abd") && !same_token("ab", "abc"));
    }
}
