//! Discord webhook: one embed per message, always inside Discord's limits (title 256, description 4096,
//! 25 fields of 256/1024, footer 2048, 6000 characters in all), and `allowed_mentions: {"parse": []}` so that
//! a certificate name can never ping anyone.

use std::time::Duration;

use serde_json::{Value, json};

use super::SinkError;
use super::digest::{
    CertEntry, Digest, Entry, char_len, digest_deliveries, fit_lines, truncate_chars,
};
use super::http::{HttpService, HttpSink, HttpTarget, SendFuture, body_excerpt, classify};
use crate::store::Delivery;

pub const TITLE_MAX: usize = 256;
pub const DESCRIPTION_MAX: usize = 4096;
pub const FIELD_NAME_MAX: usize = 256;
pub const FIELD_VALUE_MAX: usize = 1024;
pub const FOOTER_MAX: usize = 2048;
pub const EMBED_TOTAL_MAX: usize = 6000;

/// Inline code: immune to markdown and mentions. A backtick inside is replaced by a look-alike.
fn code(s: &str) -> String {
    format!("`{}`", s.replace('`', "ˋ"))
}

/// Escape Discord markdown in free text (titles, issuer names, messages). `<` is escaped too, so that text
/// can never render as a mention, a channel link or a timestamp (nothing pings anyway: see `allowed_mentions`);
/// `#` and `-` only start a heading or a list at the start of a line.
pub fn escape_markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut line_start = true;
    for c in s.chars() {
        let special = matches!(
            c,
            '\\' | '*' | '_' | '~' | '`' | '|' | '>' | '<' | '[' | ']'
        ) || (line_start && matches!(c, '#' | '-'));
        if special {
            out.push('\\');
        }
        out.push(c);
        line_start = c == '\n';
    }
    out
}

fn color(kind: &str) -> u32 {
    match kind {
        "unauthorized_issuer" | "caa_mismatch" => 0xE7_4C_3C,
        "lookalike" => 0xE6_7E_22,
        "probe" | "health" | "stale_deployment" | "renewal_missing" => 0xF1_C4_0F,
        "test" => 0x2E_CC_71,
        _ => 0x34_98_DB,
    }
}

/// The webhook body for a digest.
pub fn message(d: &Digest, username: &str) -> Value {
    let title = truncate_chars(&escape_markdown(&d.title), TITLE_MAX);
    let (fields, description, footer) = match (d.count, d.entries.first()) {
        (1, Some(Entry::Cert(c))) => single_cert(c, EMBED_TOTAL_MAX - char_len(&title)),
        (1, Some(Entry::Message { text, .. })) => (
            Vec::new(),
            truncate_chars(&escape_markdown(text), DESCRIPTION_MAX),
            String::new(),
        ),
        _ => group(d, EMBED_TOTAL_MAX - char_len(&title)),
    };
    let mut embed = json!({
        "title": title,
        "description": description,
        "color": color(&d.kind),
        "fields": fields.iter().map(|(n, v)| json!({"name": n, "value": v, "inline": false})).collect::<Vec<_>>(),
    });
    if !footer.is_empty() {
        embed["footer"] = json!({ "text": footer });
    }
    if let Some(ts) = &d.timestamp {
        embed["timestamp"] = json!(ts);
    }
    json!({
        "username": username,
        "allowed_mentions": { "parse": [] },
        "embeds": [embed],
    })
}

type Parts = (Vec<(String, String)>, String, String);

/// Fields for the facts, the names in the description with whatever room the 6000 total leaves.
fn single_cert(c: &CertEntry, budget: usize) -> Parts {
    let matched: Vec<String> = c
        .matched
        .iter()
        .map(|(n, item, _)| {
            if n == item {
                code(n)
            } else {
                format!("{} via {}", code(n), code(item))
            }
        })
        .collect();
    let mut fields = vec![("Matched".to_string(), matched.join("\n"))];
    if !c.brands.is_empty() {
        let brands: Vec<String> = c.brands.iter().map(|b| code(b)).collect();
        fields.push(("Imitates".into(), brands.join(", ")));
    }
    fields.push(("Issuer".into(), escape_markdown(&c.issuer)));
    fields.push(("Valid".into(), c.validity()));
    fields.push(("Seen in".into(), escape_markdown(&c.sighting())));
    fields.push(("TBS SHA-256".into(), code(&c.tbs_sha256)));
    let fields: Vec<(String, String)> = fields
        .into_iter()
        .map(|(n, v)| {
            (
                truncate_chars(&n, FIELD_NAME_MAX),
                truncate_chars(&v, FIELD_VALUE_MAX),
            )
        })
        .collect();
    let (label, hash) = c.fingerprint();
    let footer = truncate_chars(&format!("{label} {hash}"), FOOTER_MAX);
    let used: usize = fields
        .iter()
        .map(|(n, v)| char_len(n) + char_len(v))
        .sum::<usize>()
        + char_len(&footer);
    let room = budget.saturating_sub(used).min(DESCRIPTION_MAX);
    let header = format!("**{} names**", c.names.len());
    let lines: Vec<String> = std::iter::once(header.clone())
        .chain(c.names.iter().map(|n| truncate_chars(&code(n), 300)))
        .collect();
    let description = fit_lines(&lines, room, 0, char_len, &|n| format!("… and {n} more"));
    (fields, description, footer)
}

/// One line per shown event, then "… and N more".
fn group(d: &Digest, budget: usize) -> Parts {
    let footer = truncate_chars(
        &format!("{} events · group {}", d.count, d.kind),
        FOOTER_MAX,
    );
    let room = budget
        .saturating_sub(char_len(&footer))
        .min(DESCRIPTION_MAX);
    let lines: Vec<String> = d
        .entries
        .iter()
        .map(|e| match e {
            Entry::Cert(c) => format!("• {}", summary_line(c)),
            Entry::Message { title, text } => {
                format!("• **{}** {}", escape_markdown(title), escape_markdown(text))
            }
        })
        .map(|l| truncate_chars(&l, 400))
        .collect();
    let description = fit_lines(&lines, room, d.more, char_len, &|n| {
        format!("… and {n} more")
    });
    (Vec::new(), description, footer)
}

fn summary_line(c: &CertEntry) -> String {
    let others = c.other_names();
    let extra = if others > 0 {
        format!(" (+{others} names)")
    } else {
        String::new()
    };
    format!(
        "{}{extra}, issuer {}",
        code(&c.primary),
        escape_markdown(&c.issuer_short)
    )
}

/// Total embed text as Discord counts it (title, description, field names and values, footer).
pub fn embed_text_len(embed: &Value) -> usize {
    let s = |v: &Value| v.as_str().map(char_len).unwrap_or(0);
    let fields: usize = embed["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| s(&f["name"]) + s(&f["value"]))
        .sum();
    s(&embed["title"]) + s(&embed["description"]) + fields + s(&embed["footer"]["text"])
}

/// A Discord webhook: the webhook URL and the name messages are posted under.
pub struct Discord {
    pub url: String,
    pub username: String,
}

/// A Discord webhook sink.
pub type DiscordSink = HttpSink<Discord>;

impl HttpService for Discord {
    fn deliver<'a>(&'a self, target: &'a HttpTarget, events: &'a [Delivery]) -> SendFuture<'a> {
        Box::pin(async move {
            let body = message(
                &digest_deliveries(events, target.max_events_per_message),
                &self.username,
            );
            let reply = target.post(&self.url, &body, &[]).await?;
            // Out of requests in this bucket: wait for the reset before the next one.
            let header = |h: &str| {
                reply
                    .headers
                    .get(h)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            if header("x-ratelimit-remaining").as_deref() == Some("0")
                && let Some(reset) =
                    header("x-ratelimit-reset-after").and_then(|v| v.parse::<f64>().ok())
                && reset.is_finite()
                && reset > 0.0
            {
                target
                    .pacer
                    .hold(Duration::from_secs_f64(reset.min(3600.0)))
                    .await;
            }
            if reply.status == 429 {
                // The JSON body's retry_after (float seconds) is the precise one; Retry-After is a fallback.
                let body: Value = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
                if let Some(secs) = body
                    .get("retry_after")
                    .and_then(Value::as_f64)
                    .filter(|s| s.is_finite() && *s >= 0.0)
                {
                    return Err(SinkError::rate_limited(
                        format!("Discord rate limit{}", body_excerpt(&reply.body)),
                        Duration::from_secs_f64(secs.min(86_400.0)),
                    ));
                }
            }
            classify("Discord", &reply)
        })
    }
}

#[cfg(test)]
#[path = "discord_tests.rs"]
mod tests;
