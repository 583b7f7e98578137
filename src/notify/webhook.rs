//! Generic webhook: a versioned JSON body POSTed to any URL, signed the Standard Webhooks way.
//!
//! Body (version 1; documented in README.md, section Notifications):
//! ```json
//! {"version": 1, "type": "ctwatch.events", "id": "msg_…", "group_key": "new_certificate|example.com",
//!  "kind": "new_certificate", "count": 2, "events": [ <event payload>, <event payload> ]}
//! ```
//! Headers: `webhook-id` (the body's `id`, stable across retries of the same events: the receiver's
//! idempotency key), `webhook-timestamp` (unix seconds of this attempt) and, with a secret,
//! `webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::SinkError;
use super::http::{HttpService, HttpSink, HttpTarget, SendFuture, classify, post_json};
use crate::store::Delivery;

/// Version of the webhook body; bumped on incompatible changes.
pub const BODY_VERSION: u32 = 1;

/// A webhook signing key, from a `whsec_<base64>` secret (the prefix is optional, as in the reference
/// implementations).
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("the webhook secret is empty")]
    Empty,
    #[error("the webhook secret is not base64 after the optional whsec_ prefix ({len} characters)")]
    NotBase64 { len: usize },
}

impl SigningKey {
    pub fn from_secret(secret: &str) -> Result<SigningKey, SecretError> {
        let b64 = secret
            .trim()
            .strip_prefix("whsec_")
            .unwrap_or(secret.trim());
        if b64.is_empty() {
            return Err(SecretError::Empty);
        }
        let key = B64
            .decode(b64)
            .map_err(|_| SecretError::NotBase64 { len: b64.len() })?;
        if key.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(SigningKey(key))
    }

    /// The `webhook-signature` header value for one attempt.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.0);
        let mut ctx = ring::hmac::Context::with_key(&key);
        ctx.update(msg_id.as_bytes());
        ctx.update(b".");
        ctx.update(timestamp.to_string().as_bytes());
        ctx.update(b".");
        ctx.update(body);
        format!("v1,{}", B64.encode(ctx.sign().as_ref()))
    }
}

/// The message id of a batch: the same events give the same id (retries, restarts), and two databases that
/// reuse event ids still give different ids because the creation times and contents differ.
pub fn message_id(events: &[Delivery]) -> String {
    let mut h = Sha256::new();
    for d in events {
        h.update(format!("{}:{}:{}:", d.event_id, d.created_at, d.group_key).as_bytes());
        h.update(
            d.payload
                .get("tbs_sha256")
                .and_then(Value::as_str)
                .unwrap_or("")
                .as_bytes(),
        );
        h.update(b"\n");
    }
    format!("msg_{}", &hex::encode(h.finalize())[..32])
}

/// The JSON body for a batch (one group, or one event).
pub fn body(events: &[Delivery], msg_id: &str) -> Value {
    let first = events.first();
    json!({
        "version": BODY_VERSION,
        "type": "ctwatch.events",
        "id": msg_id,
        "group_key": first.map(|d| d.group_key.as_str()).unwrap_or(""),
        "kind": first.map(|d| d.kind.as_str()).unwrap_or(""),
        "count": events.len(),
        "events": events.iter().map(|d| &d.payload).collect::<Vec<_>>(),
    })
}

/// The headers of one attempt.
pub fn headers(
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
    key: Option<&SigningKey>,
    custom: &[(String, String)],
) -> Vec<(String, String)> {
    let mut out = vec![
        ("webhook-id".to_string(), msg_id.to_string()),
        ("webhook-timestamp".to_string(), timestamp.to_string()),
    ];
    if let Some(k) = key {
        out.push((
            "webhook-signature".to_string(),
            k.sign(msg_id, timestamp, body),
        ));
    }
    out.extend(custom.iter().cloned());
    out
}

/// A generic webhook: the URL, the Standard Webhooks signing key and custom headers.
pub struct Webhook {
    pub url: String,
    pub key: Option<SigningKey>,
    pub headers: Vec<(String, String)>,
}

/// A generic webhook sink.
pub type WebhookSink = HttpSink<Webhook>;

impl HttpService for Webhook {
    fn deliver<'a>(&'a self, target: &'a HttpTarget, events: &'a [Delivery]) -> SendFuture<'a> {
        Box::pin(async move {
            let id = message_id(events);
            let body = serde_json::to_vec(&body(events, &id))
                .map_err(|e| SinkError::permanent(e.to_string()))?;
            let ts = crate::store::unix_now();
            let hdrs = headers(&id, ts, &body, self.key.as_ref(), &self.headers);
            // Signed bytes are sent as they are (not re-serialised).
            target.pacer.wait().await;
            let reply = post_json(&target.client, &self.url, body, &hdrs, target.timeout).await?;
            classify("the webhook", &reply)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_standard_webhooks_test_vector() {
        // The example of the Standard Webhooks spec, also used by the svix libraries' tests.
        let key = SigningKey::from_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = key.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        // The prefix is optional.
        let bare = SigningKey::from_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            bare.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            sig
        );
    }

    #[test]
    fn bad_secrets_are_refused() {
        assert_eq!(
            SigningKey::from_secret("whsec_").unwrap_err(),
            SecretError::Empty
        );
        assert_eq!(
            SigningKey::from_secret("whsec_not base64!").unwrap_err(),
            SecretError::NotBase64 { len: 11 }
        );
    }

    fn delivery(id: i64, created_at: i64, tbs: &str) -> Delivery {
        Delivery {
            event_id: id,
            sink: "webhook".into(),
            kind: "new_certificate".into(),
            group_key: "new_certificate|example.com".into(),
            tags: vec![],
            payload: json!({"version": 1, "kind": "new_certificate", "tbs_sha256": tbs}),
            attempts: 0,
            created_at,
        }
    }

    #[test]
    fn message_ids_are_stable_per_batch_and_differ_across_databases() {
        let a = [delivery(1, 100, "aa"), delivery(2, 101, "bb")];
        let id = message_id(&a);
        assert_eq!(id, message_id(&a.clone()));
        assert!(id.starts_with("msg_") && id.len() == 36, "{id}");
        assert_ne!(id, message_id(&a[..1]));
        // Same event id in a re-created database: different event, different message id.
        assert_ne!(message_id(&[delivery(1, 500, "cc")]), message_id(&a[..1]));
    }

    #[test]
    fn the_body_is_an_envelope_around_the_full_payloads() {
        let a = [delivery(1, 100, "aa"), delivery(2, 101, "bb")];
        let b = body(&a, "msg_x");
        assert_eq!(
            b,
            json!({
                "version": 1, "type": "ctwatch.events", "id": "msg_x",
                "group_key": "new_certificate|example.com", "kind": "new_certificate", "count": 2,
                "events": [
                    {"version": 1, "kind": "new_certificate", "tbs_sha256": "aa"},
                    {"version": 1, "kind": "new_certificate", "tbs_sha256": "bb"}
                ]
            })
        );
    }

    #[test]
    fn headers_carry_id_timestamp_signature_and_custom_headers() {
        let key = SigningKey::from_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let custom = [("Authorization".to_string(), "Bearer t".to_string())];
        let h = headers(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
            Some(&key),
            &custom,
        );
        let names: Vec<&str> = h.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "webhook-id",
                "webhook-timestamp",
                "webhook-signature",
                "Authorization"
            ]
        );
        assert_eq!(h[1].1, "1614265330");
        assert_eq!(h[2].1, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert_eq!(headers("m", 1, b"", None, &[]).len(), 2);
    }
}
