//! Every HTTP sink against a real receiver on 127.0.0.1: the exact request shapes, the signature, the
//! escaping, the splitting, rate limits and errors as the real services send them (../shared/docs/notify-apis.md).

mod notify_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use ctwatch::notify::{
    DeliveryPolicy, Sink, SinkConfig, SinkType, build_sinks, drain, http_client, telegram,
};
use ctwatch::store::Store;
use hmac::{Hmac, KeyInit, Mac};
use notify_support::*;
use serde_json::{Value, json};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

struct Setup {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    sinks: Vec<Arc<dyn Sink>>,
}

fn setup(cfgs: Vec<SinkConfig>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("ctwatch.db")).unwrap());
    let built = build_sinks(&cfgs, http_client().unwrap()).unwrap();
    store.set_sink_routes(built.iter().map(|(_, r)| r.clone()).collect());
    let sinks = built.into_iter().map(|(s, _)| s).collect();
    Setup {
        _dir: dir,
        store,
        sinks,
    }
}

impl Setup {
    fn queue(&self, events: &[ctwatch::event::Event]) {
        for e in events {
            self.store.queue_event(e).unwrap();
        }
    }
    async fn drain(&self, secs: u64) -> Vec<(String, u64)> {
        let policy = DeliveryPolicy {
            base_delay: Duration::from_millis(200),
            ..DeliveryPolicy::default()
        };
        drain(&self.store, &self.sinks, &policy, Duration::from_secs(secs)).await
    }
}

fn cfg(kind: SinkType, name: &str, url: String) -> SinkConfig {
    SinkConfig {
        name: Some(name.into()),
        min_interval_ms: Some(0),
        ..SinkConfig::for_url(kind, &url)
    }
}

/// Verify a Standard Webhooks signature the way a receiver library does, with the `hmac` crate.
fn verify(secret: &str, id: &str, ts: &str, body: &[u8], header: &str) -> bool {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    header.split(' ').any(|sig| sig == format!("v1,{expected}"))
}

#[tokio::test]
async fn webhook_sends_a_signed_versioned_envelope_exactly_once_per_event() {
    let rx = Receiver::start().await;
    let mut c = cfg(SinkType::Webhook, "ops", rx.url("/hook"));
    c.secret = Some(SECRET.into());
    c.headers.insert("X-Tenant".into(), "acme".into());
    c.group_window_secs = Some(0);
    let s = setup(vec![c]);
    let events = five_events();
    s.queue(&events);
    assert_eq!(s.drain(10).await, [("ops".to_string(), 0)]);
    // Once more: nothing left to send.
    assert_eq!(s.drain(2).await, [("ops".to_string(), 0)]);
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 5, "one request per event, no repeats");
    let now = ctwatch::store::unix_now();
    let mut ids = Vec::new();
    for (r, e) in reqs.iter().zip(&events) {
        assert_eq!(r.path, "/hook");
        assert_eq!(r.header("content-type"), "application/json");
        assert_eq!(r.header("x-tenant"), "acme");
        assert!(r.header("user-agent").starts_with("ctwatch/"));
        let body = r.json();
        assert_eq!(body["version"], 1);
        assert_eq!(body["type"], "ctwatch.events");
        assert_eq!(body["count"], 1);
        assert_eq!(body["kind"], "new_certificate");
        assert_eq!(body["group_key"], e.group_key.as_str());
        assert_eq!(body["events"], json!([e.payload]));
        let id = r.header("webhook-id");
        assert_eq!(body["id"], id);
        let ts = r.header("webhook-timestamp");
        assert!((ts.parse::<i64>().unwrap() - now).abs() < 60, "{ts}");
        assert!(verify(
            SECRET,
            id,
            ts,
            &r.body,
            r.header("webhook-signature")
        ));
        assert!(!verify(
            "whsec_c2VjcmV0",
            id,
            ts,
            &r.body,
            r.header("webhook-signature")
        ));
        ids.push(id.to_string());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5);
    let summary = s.store.outbox_summary().unwrap();
    assert_eq!((summary[0].delivered, summary[0].pending), (5, 0));
}

#[tokio::test]
async fn webhook_retries_keep_the_id_and_sign_again() {
    let rx = Receiver::start().await;
    rx.script([
        Answer::Status(503, "busy".into(), vec![("retry-after", "1".into())]),
        Answer::ok(),
    ]);
    let mut c = cfg(SinkType::Webhook, "ops", rx.url("/hook"));
    c.secret = Some(SECRET.into());
    c.group_window_secs = Some(0);
    let s = setup(vec![c]);
    s.queue(&five_events()[..1]);
    assert_eq!(s.drain(10).await, [("ops".to_string(), 0)]);
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].header("webhook-id"), reqs[1].header("webhook-id"));
    assert_eq!(reqs[0].body, reqs[1].body);
    let waited = reqs[1].at - reqs[0].at;
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    for r in &reqs {
        let (id, ts) = (r.header("webhook-id"), r.header("webhook-timestamp"));
        assert!(verify(
            SECRET,
            id,
            ts,
            &r.body,
            r.header("webhook-signature")
        ));
    }
}

#[tokio::test]
async fn discord_gets_embeds_within_limits_and_its_429_retry_after_is_honoured() {
    let rx = Receiver::start().await;
    rx.script([
        Answer::Status(
            429,
            json!({"message": "You are being rate limited.", "retry_after": 1.3, "global": false})
                .to_string(),
            vec![
                ("retry-after", "30".into()),
                ("content-type", "application/json".into()),
            ],
        ),
        Answer::status(204, ""),
    ]);
    let mut c = cfg(SinkType::Discord, "chat", rx.url("/api/webhooks/1/tok"));
    c.group_window_secs = Some(0);
    let s = setup(vec![c]);
    s.queue(&events(&google_der(), "google.com lookalike=off", 9));
    let t0 = Instant::now();
    assert_eq!(s.drain(10).await, [("chat".to_string(), 0)]);
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 2);
    // The body's 1.3 s, not the header's 30 s (and not sooner).
    let waited = reqs[1].at - reqs[0].at;
    assert!(
        waited >= Duration::from_millis(1300) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(6));
    assert_eq!(reqs[0].body, reqs[1].body);
    let body = reqs[1].json();
    assert_eq!(body["allowed_mentions"], json!({"parse": []}));
    assert_eq!(body["username"], "ctwatch");
    let embed = &body["embeds"][0];
    assert_eq!(embed["title"], r"New certificate: \*.google.com");
    assert_eq!(ctwatch::notify::discord::embed_text_len(embed), {
        let d = embed["description"].as_str().unwrap().chars().count();
        let f: usize = embed["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                f["name"].as_str().unwrap().chars().count()
                    + f["value"].as_str().unwrap().chars().count()
            })
            .sum();
        let t = embed["title"].as_str().unwrap().chars().count();
        t + d + f + embed["footer"]["text"].as_str().unwrap().chars().count()
    });
    assert!(ctwatch::notify::discord::embed_text_len(embed) <= 6000);
    assert!(
        embed["description"]
            .as_str()
            .unwrap()
            .starts_with("**129 names**\n`*.google.com`\n")
    );
}

#[tokio::test]
async fn a_deleted_discord_webhook_fails_at_once_and_stays_visible() {
    let rx = Receiver::start().await;
    let unknown = r#"{"message": "Unknown Webhook", "code": 10015}"#;
    rx.fallback(Answer::Status(404, unknown.into(), vec![]));
    let mut c = cfg(SinkType::Discord, "chat", rx.url("/api/webhooks/1/tok"));
    c.group_window_secs = Some(0);
    let s = setup(vec![c]);
    s.queue(&five_events()[..1]);
    assert_eq!(s.drain(3).await, [("chat".to_string(), 0)]);
    assert_eq!(rx.requests().len(), 1, "no retry of a deleted webhook");
    let failed = s.store.undelivered(None, 10).unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].status, "failed");
    assert_eq!(
        failed[0].last_error.as_deref(),
        Some(format!("Discord answered HTTP 404: {unknown}").as_str())
    );
    // `ctwatch outbox retry` puts it back in the queue.
    assert_eq!(s.store.requeue_failed(Some("chat")).unwrap(), 1);
    assert_eq!(s.store.undelivered(None, 10).unwrap()[0].status, "pending");
}

#[tokio::test]
async fn telegram_splits_escapes_uses_the_topic_and_follows_a_chat_migration() {
    let rx = Receiver::start().await;
    rx.script([Answer::json(
        400,
        json!({"ok": false, "error_code": 400,
               "description": "Bad Request: group chat was upgraded to a supergroup chat",
               "parameters": {"migrate_to_chat_id": -1001234567890_i64}}),
    )]);
    rx.fallback(Answer::json(
        200,
        json!({"ok": true, "result": {"message_id": 1}}),
    ));
    let c = SinkConfig {
        name: Some("tg".into()),
        kind: Some(SinkType::Telegram),
        token: Some("123456:ABC-def".into()),
        chat_id: Some(telegram::ChatId::Id(-42)),
        thread_id: Some(7),
        api_base: Some(rx.url("")),
        group_window_secs: Some(0),
        min_interval_ms: Some(0),
        ..Default::default()
    };
    let s = setup(vec![c]);
    // The real google event, with one name no real certificate has, to check the escaping end to end.
    let mut ev = events(&google_der(), "google.com lookalike=off", 3).remove(0);
    let evil = "dev_x<b>&amp;.google.com";
    ev.payload["dns_names"][5] = json!(evil);
    s.queue(&[ev]);
    assert_eq!(s.drain(10).await, [("tg".to_string(), 0)]);
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 3, "one refused by the old chat, then two parts");
    let bodies: Vec<Value> = reqs.iter().map(|r| r.json()).collect();
    assert_eq!(bodies[0]["chat_id"], -42);
    assert_eq!(bodies[1]["chat_id"], -1001234567890_i64);
    assert_eq!(bodies[2]["chat_id"], -1001234567890_i64);
    assert_eq!(bodies[0]["text"], bodies[1]["text"]);
    for (r, b) in reqs.iter().zip(&bodies) {
        assert_eq!(r.path, "/bot123456:ABC-def/sendMessage");
        assert_eq!(b["parse_mode"], "HTML");
        assert_eq!(b["message_thread_id"], 7);
        assert_eq!(b["link_preview_options"], json!({"is_disabled": true}));
        assert!(b["text"].as_str().unwrap().encode_utf16().count() <= 4096);
    }
    let part1 = bodies[1]["text"].as_str().unwrap();
    let part2 = bodies[2]["text"].as_str().unwrap();
    assert!(part1.starts_with("<b>New certificate: *.google.com</b>\n"));
    assert!(
        part1.contains("\n<code>dev_x&lt;b&gt;&amp;amp;.google.com</code>\n"),
        "{part1}"
    );
    // Cut between two lines: the second part starts with a whole name line.
    assert!(
        part2.starts_with("<code>")
            && part2
                .lines()
                .all(|l| l.starts_with("<code>") && l.ends_with("</code>"))
    );
    let names = part1
        .lines()
        .chain(part2.lines())
        .filter(|l| l.starts_with("<code>") && !l.contains(" via "))
        .count();
    assert_eq!(names, 129);
}

#[tokio::test]
async fn telegram_flood_control_is_honoured() {
    let rx = Receiver::start().await;
    rx.script([Answer::json(
        429,
        json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 1",
               "parameters": {"retry_after": 1}}),
    )]);
    rx.fallback(Answer::json(200, json!({"ok": true, "result": {}})));
    let c = SinkConfig {
        name: Some("tg".into()),
        kind: Some(SinkType::Telegram),
        token: Some("1:a".into()),
        chat_id: Some(telegram::ChatId::Username("@alerts".into())),
        api_base: Some(rx.url("/")),
        group_window_secs: Some(0),
        min_interval_ms: Some(0),
        ..Default::default()
    };
    let s = setup(vec![c]);
    s.queue(&five_events()[1..2]);
    assert_eq!(s.drain(10).await, [("tg".to_string(), 0)]);
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].path, "/bot1:a/sendMessage");
    assert_eq!(reqs[1].json()["chat_id"], "@alerts");
    let waited = reqs[1].at - reqs[0].at;
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}

#[tokio::test]
async fn slack_gets_blocks_and_a_fallback_text() {
    let rx = Receiver::start().await;
    let mut c = cfg(SinkType::Slack, "slack", rx.url("/services/T0/B0/x"));
    c.group_window_secs = Some(0);
    let s = setup(vec![c]);
    s.queue(&five_events()[1..2]);
    assert_eq!(s.drain(10).await, [("slack".to_string(), 0)]);
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 1);
    let b = reqs[0].json();
    assert_eq!(b["text"], "New certificate: cloudflare-dns.com");
    assert_eq!(
        b["blocks"][0],
        json!({"type": "header", "text": {"type": "plain_text", "text": "New certificate: cloudflare-dns.com", "emoji": false}})
    );
    assert_eq!(b["blocks"][1]["type"], "section");
    assert_eq!(b["blocks"][1]["text"]["type"], "mrkdwn");
    let names = b["blocks"][2]["text"]["text"].as_str().unwrap();
    assert!(
        names.starts_with(
            "*11 names*\n`cloudflare-dns.com`\n`*.cloudflare-dns.com`\n`one.one.one.one`\n`1.1.1.1`"
        ),
        "{names}"
    );
}

#[tokio::test]
async fn slack_errors_are_read_as_slack_sends_them() {
    let rx = Receiver::start().await;
    rx.script([
        Answer::status(400, "invalid_payload"),
        Answer::status(410, "channel_is_archived"),
    ]);
    let mut c = cfg(SinkType::Slack, "slack", rx.url("/services/T0/B0/x"));
    c.group_window_secs = Some(0);
    let s = setup(vec![c]);
    s.queue(&five_events()[..1]);
    s.drain(3).await;
    let items = s.store.undelivered(None, 10).unwrap();
    assert_eq!(items[0].status, "failed");
    assert_eq!(items[0].attempts, 1);
    assert_eq!(
        items[0].last_error.as_deref(),
        Some("Slack answered HTTP 400: invalid_payload")
    );
}
