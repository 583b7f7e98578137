//! Slack incoming webhook: Block Kit blocks (header, sections, context) plus the `text` fallback that
//! notifications and old clients show. Limits: header 150, section text 3000, 50 blocks.
//!
//! Slack mrkdwn needs `&`, `<`, `>` escaped; it has no escape for `*`, `_` or `~`, so names and other
//! certificate text go in code spans, where they are shown literally.

use serde_json::{Value, json};

use super::digest::{
    CertEntry, Digest, Entry, char_len, digest_deliveries, fit_lines, truncate_chars,
};
use super::http::{HttpService, HttpSink, HttpTarget, SendFuture, classify};
use crate::store::Delivery;

pub const HEADER_MAX: usize = 150;
pub const SECTION_MAX: usize = 3000;
pub const BLOCKS_MAX: usize = 50;

/// Escape the three characters Slack's mrkdwn reserves.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn code(s: &str) -> String {
    format!("`{}`", escape(s).replace('`', "ˋ"))
}

fn section(text: String) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

fn context(text: String) -> Value {
    json!({"type": "context", "elements": [{"type": "mrkdwn", "text": text}]})
}

/// The facts, the names and the fingerprint of one certificate.
fn certificate_blocks(c: &CertEntry) -> Vec<Value> {
    let more = |n: usize| format!("… and {n} more");
    let mut out = Vec::new();
    let mut facts: Vec<String> = c
        .matched
        .iter()
        .map(|(n, item, _)| {
            if n == item {
                format!("*Matched:* {}", code(n))
            } else {
                format!("*Matched:* {} via {}", code(n), code(item))
            }
        })
        .collect();
    facts.extend(c.brands.iter().map(|b| format!("*Imitates:* {}", code(b))));
    facts.push(format!("*Issuer:* {}", code(&c.issuer)));
    facts.push(format!("*Valid:* {}", escape(&c.validity())));
    facts.push(format!("*Seen in:* {}", escape(&c.sighting())));
    facts.push(format!("*TBS SHA-256:* {}", code(&c.tbs_sha256)));
    let facts: Vec<String> = facts.iter().map(|f| truncate_chars(f, 500)).collect();
    out.push(section(fit_lines(&facts, SECTION_MAX, 0, char_len, &more)));
    let names: Vec<String> = std::iter::once(format!("*{} names*", c.names.len()))
        .chain(c.names.iter().map(|n| truncate_chars(&code(n), 300)))
        .collect();
    out.push(section(fit_lines(&names, SECTION_MAX, 0, char_len, &more)));
    let (label, hash) = c.fingerprint();
    out.push(context(format!("{label} {}", code(hash))));
    out
}

/// The webhook body for a digest.
pub fn message(d: &Digest) -> Value {
    let more = |n: usize| format!("… and {n} more");
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": truncate_chars(&d.title, HEADER_MAX), "emoji": false},
    })];
    match (d.count, d.entries.first()) {
        (1, Some(Entry::Cert(c))) => blocks.extend(certificate_blocks(c)),
        (1, Some(Entry::Message { text, .. })) => {
            blocks.push(section(truncate_chars(&escape(text), SECTION_MAX)));
        }
        _ => {
            let lines: Vec<String> = d
                .entries
                .iter()
                .map(|e| match e {
                    Entry::Cert(c) => {
                        let extra = match c.other_names() {
                            0 => String::new(),
                            n => format!(" (+{n} names)"),
                        };
                        format!(
                            "• {}{extra}, issuer {}",
                            code(&c.primary),
                            code(&c.issuer_short)
                        )
                    }
                    Entry::Message { title, text } => {
                        format!("• *{}* {}", escape(title), escape(text))
                    }
                })
                .map(|l| truncate_chars(&l, 500))
                .collect();
            blocks.push(section(fit_lines(
                &lines,
                SECTION_MAX,
                d.more,
                char_len,
                &more,
            )));
            blocks.push(context(format!(
                "{} events · group {}",
                d.count,
                escape(&d.kind)
            )));
        }
    }
    blocks.truncate(BLOCKS_MAX);
    json!({ "text": escape(&d.title), "blocks": blocks })
}

/// A Slack incoming webhook.
pub struct Slack {
    pub url: String,
}

/// A Slack incoming webhook sink.
pub type SlackSink = HttpSink<Slack>;

impl HttpService for Slack {
    fn deliver<'a>(&'a self, target: &'a HttpTarget, events: &'a [Delivery]) -> SendFuture<'a> {
        Box::pin(async move {
            let body = message(&digest_deliveries(events, target.max_events_per_message));
            let reply = target.post(&self.url, &body, &[]).await?;
            classify("Slack", &reply)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::digest::digest;
    use crate::notify::sample::fixtures;

    fn texts(msg: &Value) -> Vec<String> {
        msg["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| match b["type"].as_str().unwrap() {
                "context" => b["elements"][0]["text"].as_str().unwrap().to_string(),
                _ => b["text"]["text"].as_str().unwrap().to_string(),
            })
            .collect()
    }

    #[test]
    fn one_certificate_has_a_header_facts_names_and_a_fallback() {
        let p = fixtures::google();
        let msg = message(&digest(&[&p], "new_certificate|google.com", 10));
        assert_eq!(msg["text"], "New certificate: *.google.com");
        let kinds: Vec<&str> = msg["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["header", "section", "section", "context"]);
        assert_eq!(msg["blocks"][0]["text"]["type"], "plain_text");
        let t = texts(&msg);
        assert_eq!(t[0], "New certificate: *.google.com");
        let facts: Vec<&str> = t[1].lines().collect();
        assert_eq!(facts[0], "*Matched:* `*.google.com` via `google.com`");
        assert_eq!(
            facts[8],
            "*Issuer:* `CN=GTS CA 1C3, O=Google Trust Services LLC, C=US`"
        );
        assert_eq!(
            facts[9],
            "*Valid:* 2021-09-13T01:38:37Z .. 2021-11-20T01:38:36Z"
        );
        for section in &t[1..3] {
            assert!(char_len(section) <= SECTION_MAX, "{}", char_len(section));
        }
        // All 129 names fit in one section (3000).
        let names: Vec<&str> = t[2].lines().collect();
        assert_eq!(names[0], "*129 names*");
        let sans = p["dns_names"].as_array().unwrap();
        assert_eq!(names.len(), 130);
        for (line, san) in names[1..].iter().zip(sans) {
            assert_eq!(*line, format!("`{}`", san.as_str().unwrap()));
        }
        assert_eq!(
            t[3],
            "cert SHA-256 `7a0bd4ce2d7dbc8a4c6af16dcd1ef87602adb79dd4ebd23eaa41a248fff0085d`"
        );
    }

    #[test]
    fn mrkdwn_characters_are_escaped_and_names_are_literal() {
        let mut p = fixtures::cloudflare();
        p["matched"][0]["name"] = json!("*a_b*<!channel>&.cloudflare-dns.com");
        let msg = message(&digest(&[&p], "new_certificate|x", 10));
        assert_eq!(
            msg["text"],
            "New certificate: *a_b*&lt;!channel&gt;&amp;.cloudflare-dns.com"
        );
        // The header is plain text: no escaping there.
        assert_eq!(
            msg["blocks"][0]["text"]["text"],
            "New certificate: *a_b*<!channel>&.cloudflare-dns.com"
        );
        let t = texts(&msg);
        assert!(t[1].starts_with("*Matched:* `*a_b*&lt;!channel&gt;&amp;.cloudflare-dns.com` via `cloudflare-dns.com`"), "{}", t[1]);
    }

    #[test]
    fn a_burst_is_one_summary() {
        let google = fixtures::google();
        let payloads: Vec<&Value> = (0..200).map(|_| &google).collect();
        let msg = message(&digest(&payloads, "new_certificate|google.com", 10));
        assert_eq!(msg["text"], "200 new certificates: google.com");
        let t = texts(&msg);
        assert_eq!(t.len(), 3);
        let lines: Vec<&str> = t[1].lines().collect();
        assert_eq!(lines.len(), 11);
        assert_eq!(
            lines[0],
            "• `*.google.com` (+128 names), issuer `GTS CA 1C3`"
        );
        assert_eq!(lines[10], "… and 190 more");
        assert_eq!(t[2], "200 events · group new_certificate");
    }
}
