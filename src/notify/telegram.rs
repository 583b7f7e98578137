//! Telegram Bot API `sendMessage` in HTML mode.
//!
//! Only `<`, `>` and `&` need escaping in Telegram HTML. Messages longer than 4096 characters are split on line
//! boundaries, and every line closes the tags it opens, so a split never cuts a tag. A group that was upgraded
//! to a supergroup answers with `migrate_to_chat_id`: the message is re-sent there, and the new id is kept (and
//! logged, so the configuration can be updated).

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::SinkError;
use super::digest::{Digest, Entry, digest_deliveries, fit_lines, utf16_len};
use super::http::{HttpService, HttpSink, HttpTarget, Reply, SendFuture, body_excerpt};
use crate::store::Delivery;

/// Telegram's limit for one message's text, in UTF-16 code units after entity parsing. We measure the HTML
/// source, which is never shorter than what Telegram counts.
pub const MESSAGE_MAX: usize = 4096;

/// A chat: numeric id (groups are negative) or `@channelusername`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ChatId {
    Id(i64),
    Username(String),
}

impl std::fmt::Display for ChatId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChatId::Id(id) => write!(f, "{id}"),
            ChatId::Username(u) => f.write_str(u),
        }
    }
}

impl std::str::FromStr for ChatId {
    type Err = String;
    fn from_str(s: &str) -> Result<ChatId, String> {
        let s = s.trim();
        if let Ok(id) = s.parse::<i64>() {
            Ok(ChatId::Id(id))
        } else if s.len() > 1 && s.starts_with('@') {
            Ok(ChatId::Username(s.to_string()))
        } else {
            Err(format!(
                "a Telegram chat id is a number or @channelname, not {s:?}"
            ))
        }
    }
}

/// Escape text for Telegram's HTML parse mode.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

fn code(s: &str) -> String {
    format!("<code>{}</code>", escape_html(s))
}

/// The message as HTML lines; each line is balanced (closes every tag it opens).
pub fn lines(d: &Digest) -> Vec<String> {
    let mut out = vec![format!("<b>{}</b>", escape_html(&d.title))];
    match (d.count, d.entries.first()) {
        (1, Some(Entry::Cert(c))) => {
            for (name, item, _) in &c.matched {
                out.push(if name == item {
                    format!("Matched: {}", code(name))
                } else {
                    format!("Matched: {} via {}", code(name), code(item))
                });
            }
            for b in &c.brands {
                out.push(format!("Imitates: {}", code(b)));
            }
            out.push(format!("Issuer: {}", escape_html(&c.issuer)));
            out.push(format!("Valid: {}", escape_html(&c.validity())));
            out.push(format!("Seen in: {}", escape_html(&c.sighting())));
            out.push(format!("TBS SHA-256: {}", code(&c.tbs_sha256)));
            out.push(format!("Names ({}):", c.names.len()));
            out.extend(c.names.iter().map(|n| code(n)));
        }
        (1, Some(Entry::Message { text, .. })) => out.extend(text.lines().map(escape_html)),
        _ => {
            let items: Vec<String> = d
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
                            escape_html(&c.issuer_short)
                        )
                    }
                    Entry::Message { title, text } => {
                        format!(
                            "• <b>{}</b> {}",
                            escape_html(title),
                            escape_html(&text.replace('\n', " "))
                        )
                    }
                })
                .collect();
            // Everything fits in a split message; the cap on shown events is the sink's max_events_per_message.
            out.push(fit_lines(&items, usize::MAX, d.more, utf16_len, &|n| {
                format!("… and {n} more")
            }));
        }
    }
    out.into_iter()
        .flat_map(|l| l.split('\n').map(str::to_string).collect::<Vec<_>>())
        .collect()
}

/// Pack `lines` into messages of at most `max` UTF-16 units, cutting only between lines. A single line longer
/// than `max` loses its tags (so no tag can be cut) and is cut outside entities.
pub fn split(lines: &[String], max: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    for line in lines {
        let pieces = if utf16_len(line) > max {
            cut_long_line(line, max)
        } else {
            vec![line.clone()]
        };
        for piece in pieces {
            let sep = usize::from(!cur.is_empty());
            if utf16_len(&cur) + sep + utf16_len(&piece) > max {
                parts.push(std::mem::take(&mut cur));
            }
            if !cur.is_empty() {
                cur.push('\n');
            }
            cur.push_str(&piece);
        }
    }
    if !cur.is_empty() {
        parts.push(cur);
    }
    parts
}

fn cut_long_line(line: &str, max: usize) -> Vec<String> {
    // Every literal '<' is escaped, so any '<' starts a tag.
    let mut plain = String::with_capacity(line.len());
    let mut in_tag = false;
    for c in line.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => plain.push(c),
            _ => {}
        }
    }
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_entity = false;
    for c in plain.chars() {
        if !in_entity && utf16_len(&cur) + 8 > max {
            out.push(std::mem::take(&mut cur));
        }
        match c {
            '&' => in_entity = true,
            ';' => in_entity = false,
            _ => {}
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A Telegram chat reached through a bot.
pub struct Telegram {
    pub api_base: String,
    pub token: String,
    pub chat: Mutex<ChatId>,
    pub thread_id: Option<i64>,
    /// Parts of a split message already accepted before a later part failed: `(hash of the parts, count)`.
    /// The retry resumes after them instead of repeating them (within this process).
    pub progress: Mutex<Option<(u64, usize)>>,
}

/// A Telegram sink.
pub type TelegramSink = HttpSink<Telegram>;

/// How one `sendMessage` ended.
enum Answer {
    Sent,
    Migrated(i64),
    Failed(SinkError),
}

fn read_answer(reply: &Reply) -> Answer {
    let v: Value = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
    if (200..300).contains(&reply.status) && v["ok"].as_bool() != Some(false) {
        return Answer::Sent;
    }
    if let Some(id) = v["parameters"]["migrate_to_chat_id"].as_i64() {
        return Answer::Migrated(id);
    }
    let description = v["description"]
        .as_str()
        .map(|d| format!(": {d}"))
        .unwrap_or_else(|| body_excerpt(&reply.body));
    let message = format!("Telegram answered HTTP {}{description}", reply.status);
    if let Some(secs) = v["parameters"]["retry_after"]
        .as_f64()
        .filter(|s| s.is_finite() && *s >= 0.0)
    {
        return Answer::Failed(SinkError::rate_limited(
            message,
            Duration::from_secs_f64(secs.min(86_400.0)),
        ));
    }
    let lower = message.to_ascii_lowercase();
    Answer::Failed(match reply.status {
        401 | 403 | 404 => SinkError::gone(message),
        400 if lower.contains("chat not found") => SinkError::gone(message),
        408 | 429 | 500..=599 => SinkError {
            retry_after: super::http::retry_after_header(
                &reply.headers,
                std::time::SystemTime::now(),
            ),
            ..SinkError::transient(message)
        },
        _ => SinkError::permanent(message),
    })
}

impl Telegram {
    fn chat(&self) -> ChatId {
        self.chat.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    async fn send_part(&self, target: &HttpTarget, text: &str) -> Result<(), SinkError> {
        let url = format!(
            "{}/bot{}/sendMessage",
            self.api_base.trim_end_matches('/'),
            self.token
        );
        for _ in 0..2 {
            let mut body = json!({
                "chat_id": self.chat(),
                "text": text,
                "parse_mode": "HTML",
                "link_preview_options": { "is_disabled": true },
            });
            if let Some(t) = self.thread_id {
                body["message_thread_id"] = json!(t);
            }
            let reply = target.post(&url, &body, &[]).await?;
            match read_answer(&reply) {
                Answer::Sent => return Ok(()),
                Answer::Failed(e) => return Err(e),
                Answer::Migrated(id) => {
                    tracing::warn!(
                        sink = %target.name,
                        "the Telegram chat {} moved to {id} (now a supergroup): sending there; update chat_id in the configuration",
                        self.chat()
                    );
                    *self.chat.lock().unwrap_or_else(|e| e.into_inner()) = ChatId::Id(id);
                }
            }
        }
        Err(SinkError::transient(
            "Telegram kept answering migrate_to_chat_id",
        ))
    }
}

impl HttpService for Telegram {
    fn deliver<'a>(&'a self, target: &'a HttpTarget, events: &'a [Delivery]) -> SendFuture<'a> {
        Box::pin(async move {
            let parts = split(
                &lines(&digest_deliveries(events, target.max_events_per_message)),
                MESSAGE_MAX,
            );
            let hash = {
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                parts.hash(&mut h);
                h.finish()
            };
            let done = match *self.progress.lock().unwrap_or_else(|e| e.into_inner()) {
                Some((h, n)) if h == hash => n,
                _ => 0,
            };
            for (i, part) in parts.iter().enumerate().skip(done) {
                if let Err(e) = self.send_part(target, part).await {
                    *self.progress.lock().unwrap_or_else(|e| e.into_inner()) = Some((hash, i));
                    return Err(e);
                }
            }
            *self.progress.lock().unwrap_or_else(|e| e.into_inner()) = None;
            Ok(())
        })
    }
}

#[cfg(test)]
#[path = "telegram_tests.rs"]
mod tests;
