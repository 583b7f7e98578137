//! Building sinks from their configuration: validation (unknown or misplaced keys, missing targets, secrets
//! from the environment), per-type defaults, and the routes that decide which events each sink is queued.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sha2::{Digest as _, Sha256};

use super::config::{EVENT_KINDS, SinkConfig, SinkType};
use super::discord::Discord;
use super::http::{HttpSink, HttpTarget, Pacer};
use super::slack::Slack;
use super::telegram::{ChatId, Telegram};
use super::webhook::{SigningKey, Webhook};
use super::{Batching, ExecSink, Sink, StdoutFormat, StdoutSink};
use crate::store::SinkRoute;

/// The most events one chat message or webhook request can stand for.
const MAX_GROUP: usize = 1000;
const TELEGRAM_API: &str = "https://api.telegram.org";

/// Build every configured sink and its route. Errors name the sink and the key, never a secret.
pub fn build_sinks(
    cfgs: &[SinkConfig],
    client: reqwest::Client,
) -> Result<Vec<(Arc<dyn Sink>, SinkRoute)>> {
    let mut out: Vec<(Arc<dyn Sink>, SinkRoute)> = Vec::new();
    for (i, cfg) in cfgs.iter().enumerate() {
        let sink = build_one(cfg, &client).with_context(|| match &cfg.name {
            Some(n) => format!("sink {n:?}"),
            None => format!(
                "sink #{} ({})",
                i + 1,
                cfg.kind.map(SinkType::as_str).unwrap_or("no type")
            ),
        })?;
        if out.iter().any(|(s, _)| s.name() == sink.name()) {
            bail!(
                "two sinks are named {:?}: give each a unique name",
                sink.name()
            );
        }
        for k in &cfg.filter.kinds {
            if !EVENT_KINDS.contains(&k.as_str()) {
                tracing::warn!(
                    sink = sink.name(),
                    "filter kind {k:?} is not one of {EVENT_KINDS:?}"
                );
            }
        }
        let route = SinkRoute {
            name: sink.name().to_string(),
            kinds: cfg.filter.kinds.clone(),
            tags: cfg.filter.tags.clone(),
        };
        out.push((sink, route));
    }
    Ok(out)
}

/// What every sink type shares, resolved from the table and the type's defaults.
struct Common {
    name: String,
    batching: Batching,
    per_message: usize,
    timeout: Duration,
    give_up_after: Option<Duration>,
    min_interval_ms: Option<u64>,
}

impl Common {
    /// The shared part of an HTTP sink; `default_ms` is the service's default spacing between requests.
    fn http_target(self, default_ms: u64, client: reqwest::Client) -> HttpTarget {
        HttpTarget {
            pacer: Pacer::new(Duration::from_millis(
                self.min_interval_ms.unwrap_or(default_ms),
            )),
            name: self.name,
            batching: self.batching,
            max_events_per_message: self.per_message,
            timeout: self.timeout,
            give_up_after: self.give_up_after,
            client,
        }
    }
}

fn common(cfg: &SinkConfig, kind: SinkType) -> Result<Common> {
    let allowed = kind.keys();
    if let Some(k) = cfg.set_keys().into_iter().find(|k| !allowed.contains(k)) {
        bail!("`{k}` does not apply to {} sinks", kind.as_str());
    }
    let name = match &cfg.name {
        Some(n) if n.trim().is_empty() || n.chars().any(char::is_whitespace) => {
            bail!("`name` must be non-empty and without spaces")
        }
        Some(n) if n == "stdout" => {
            bail!("the name \"stdout\" is taken by ctwatch run's own output")
        }
        Some(n) => n.clone(),
        None => default_name(kind, cfg),
    };
    let window = cfg.group_window_secs.unwrap_or(30);
    let per_message = cfg
        .max_events_per_message
        .unwrap_or(if kind == SinkType::Webhook { 100 } else { 10 });
    if per_message == 0 {
        bail!("`max_events_per_message` must be at least 1");
    }
    // Without a window every event is its own message; with one, a group is one message (a webhook request
    // carries at most max_events_per_message events in full, a chat message summarises up to MAX_GROUP).
    let batching = Batching {
        window_secs: window,
        max_batch: match (window, kind) {
            (0, _) => 1,
            (_, SinkType::Webhook) => per_message.min(MAX_GROUP),
            _ => MAX_GROUP,
        },
    };
    let default_timeout = if kind == SinkType::Exec { 60 } else { 20 };
    Ok(Common {
        name,
        batching,
        per_message,
        timeout: Duration::from_secs(cfg.timeout_secs.unwrap_or(default_timeout).max(1)),
        give_up_after: cfg.give_up_after_secs.map(Duration::from_secs),
        min_interval_ms: cfg.min_interval_ms,
    })
}

fn build_one(cfg: &SinkConfig, client: &reqwest::Client) -> Result<Arc<dyn Sink>> {
    let Some(kind) = cfg.kind else {
        bail!("`type` is missing (webhook, discord, slack, telegram, exec or stdout)")
    };
    let c = common(cfg, kind)?;
    let client = client.clone();
    Ok(match kind {
        SinkType::Webhook => webhook(cfg, c, client)?,
        SinkType::Discord => Arc::new(HttpSink {
            service: Discord {
                url: url_value(cfg)?,
                username: cfg.username.clone().unwrap_or_else(|| "ctwatch".into()),
            },
            target: c.http_target(500, client),
        }),
        SinkType::Slack => Arc::new(HttpSink {
            service: Slack {
                url: url_value(cfg)?,
            },
            target: c.http_target(1000, client),
        }),
        SinkType::Telegram => telegram(cfg, c, client)?,
        SinkType::Exec => {
            let Some(command) = cfg.command.clone().filter(|c| !c.trim().is_empty()) else {
                bail!("`command` is required");
            };
            Arc::new(ExecSink {
                name: c.name,
                command: PathBuf::from(command),
                args: cfg.args.clone(),
                timeout: c.timeout,
                give_up_after: c.give_up_after,
            })
        }
        SinkType::Stdout => Arc::new(StdoutSink::named(
            &c.name,
            cfg.format.unwrap_or(StdoutFormat::Json),
        )),
    })
}

fn webhook(cfg: &SinkConfig, c: Common, client: reqwest::Client) -> Result<Arc<dyn Sink>> {
    let secret = secret_value(&cfg.secret, &cfg.secret_env, "secret")?;
    let key = secret.map(|s| SigningKey::from_secret(&s)).transpose()?;
    let headers = cfg
        .headers
        .iter()
        .map(|(k, v)| {
            reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .with_context(|| format!("header name {k:?}"))?;
            reqwest::header::HeaderValue::from_str(v)
                .with_context(|| format!("value of header {k:?}"))?;
            Ok((k.clone(), v.clone()))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(HttpSink {
        service: Webhook {
            url: url_value(cfg)?,
            key,
            headers,
        },
        target: c.http_target(0, client),
    }))
}

fn telegram(cfg: &SinkConfig, c: Common, client: reqwest::Client) -> Result<Arc<dyn Sink>> {
    let Some(token) = secret_value(&cfg.token, &cfg.token_env, "token")? else {
        bail!("`token` (or `token_env`) is required");
    };
    if !token.contains(':') || token.contains('/') {
        bail!("`token` does not look like a bot token (123456:ABC...)");
    }
    let chat = match cfg.chat_id.clone() {
        None => bail!("`chat_id` is required"),
        // A chat id written as a string ("-100123") is still a number.
        Some(ChatId::Username(u)) => u
            .parse::<ChatId>()
            .map_err(|e| anyhow::anyhow!("`chat_id`: {e}"))?,
        Some(id) => id,
    };
    let api_base = cfg.api_base.clone().unwrap_or_else(|| TELEGRAM_API.into());
    check_http_url(&api_base, "api_base")?;
    Ok(Arc::new(HttpSink {
        service: Telegram {
            api_base,
            token,
            chat: Mutex::new(chat),
            thread_id: cfg.thread_id,
            progress: Mutex::new(None),
        },
        target: c.http_target(1000, client),
    }))
}

fn default_name(kind: SinkType, cfg: &SinkConfig) -> String {
    let identity = match kind {
        SinkType::Telegram => format!(
            "{}/{}/{}",
            cfg.token
                .as_deref()
                .or(cfg.token_env.as_deref())
                .unwrap_or(""),
            cfg.chat_id
                .as_ref()
                .map(|c| c.to_string())
                .unwrap_or_default(),
            cfg.thread_id.unwrap_or(0)
        ),
        SinkType::Exec => format!(
            "{}\0{}",
            cfg.command.as_deref().unwrap_or(""),
            cfg.args.join("\0")
        ),
        SinkType::Stdout => {
            return format!(
                "stdout:{}",
                if cfg.format == Some(StdoutFormat::Human) {
                    "human"
                } else {
                    "json"
                }
            );
        }
        _ => cfg
            .url
            .as_deref()
            .or(cfg.url_env.as_deref())
            .unwrap_or("")
            .to_string(),
    };
    let hash = &hex::encode(Sha256::digest(identity.as_bytes()))[..8];
    match readable_target(kind, cfg) {
        Some(t) => format!("{}:{t}#{hash}", kind.as_str()),
        None => format!("{}:{hash}", kind.as_str()),
    }
}

/// (old, new): the name a sink without `name` had before names showed their target (`discord:19d10cf8`), and
/// its name now. Deliveries queued under the old name are moved to the new one, so an upgrade orphans nothing.
pub fn legacy_default_name(cfg: &SinkConfig) -> Option<(String, String)> {
    let kind = cfg.kind?;
    if cfg.name.is_some() || readable_target(kind, cfg).is_none() {
        return None;
    }
    let new = default_name(kind, cfg);
    let hash = new.rsplit_once('#')?.1;
    Some((format!("{}:{hash}", kind.as_str()), new))
}

/// What a default sink name shows so that people recognise it: the URL's host (never its path, which
/// carries the token), the Telegram chat, the program's file name. Only characters safe in any listing.
fn readable_target(kind: SinkType, cfg: &SinkConfig) -> Option<String> {
    let raw = match kind {
        SinkType::Telegram => cfg.chat_id.as_ref().map(|c| format!("chat{c}"))?,
        SinkType::Exec => std::path::Path::new(cfg.command.as_deref()?)
            .file_name()?
            .to_string_lossy()
            .into_owned(),
        SinkType::Stdout => return None,
        _ => url::Url::parse(cfg.url.as_deref()?)
            .ok()?
            .host_str()?
            .to_string(),
    };
    let safe: String = raw
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-._@".contains(*c))
        .take(64)
        .collect();
    (!safe.is_empty()).then_some(safe)
}

/// A secret given inline or through an environment variable (not both).
fn secret_value(
    inline: &Option<String>,
    env: &Option<String>,
    key: &str,
) -> Result<Option<String>> {
    match (inline, env) {
        (Some(_), Some(_)) => bail!("set `{key}` or `{key}_env`, not both"),
        (Some(v), None) => Ok(Some(v.clone())),
        (None, Some(var)) => match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => Ok(Some(v.trim().to_string())),
            _ => bail!(
                "`{key}_env` names {var}, which is not set{}",
                crate::envfile::unset_hint()
            ),
        },
        (None, None) => Ok(None),
    }
}

fn url_value(cfg: &SinkConfig) -> Result<String> {
    let Some(url) = secret_value(&cfg.url, &cfg.url_env, "url")? else {
        bail!("`url` (or `url_env`) is required")
    };
    check_http_url(&url, "url")?;
    Ok(url)
}

fn check_http_url(url: &str, key: &str) -> Result<()> {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        // Not echoed: webhook URLs carry their token.
        _ => bail!("`{key}` is not an http(s) URL"),
    }
}
