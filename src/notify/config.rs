//! Sink configuration: `[[sinks]]` tables of the configuration file, the quick flags of `ctwatch run`
//! (`--webhook URL --discord URL --slack URL --telegram TOKEN:CHAT_ID`), and building the sinks from them.
//! Every key is documented in docs/notify.md.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::http::Pacer;
use super::telegram::ChatId;
use super::webhook::SigningKey;
use super::{
    Batching, DiscordSink, ExecSink, Sink, SlackSink, StdoutFormat, StdoutSink, TelegramSink,
    WebhookSink,
};
use crate::store::SinkRoute;

/// Event kinds ctwatch queues; a filter naming another kind is probably a typo (warned about).
pub const EVENT_KINDS: [&str; 6] = [
    "new_certificate",
    "unauthorized_issuer",
    "lookalike",
    "probe",
    "health",
    "test",
];
/// The most events one chat message or webhook request can stand for.
const MAX_GROUP: usize = 1000;
const TELEGRAM_API: &str = "https://api.telegram.org";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkType {
    Webhook,
    Discord,
    Slack,
    Telegram,
    Exec,
    Stdout,
}

impl SinkType {
    fn as_str(self) -> &'static str {
        match self {
            SinkType::Webhook => "webhook",
            SinkType::Discord => "discord",
            SinkType::Slack => "slack",
            SinkType::Telegram => "telegram",
            SinkType::Exec => "exec",
            SinkType::Stdout => "stdout",
        }
    }

    /// The keys that mean something for this type (besides name, type and filter).
    fn keys(self) -> &'static [&'static str] {
        const CHAT: [&str; 5] = [
            "group_window_secs",
            "max_events_per_message",
            "timeout_secs",
            "give_up_after_secs",
            "min_interval_ms",
        ];
        match self {
            SinkType::Webhook => &[
                "url",
                "url_env",
                "secret",
                "secret_env",
                "headers",
                CHAT[0],
                CHAT[1],
                CHAT[2],
                CHAT[3],
                CHAT[4],
            ],
            SinkType::Discord => &[
                "url", "url_env", "username", CHAT[0], CHAT[1], CHAT[2], CHAT[3], CHAT[4],
            ],
            SinkType::Slack => &[
                "url", "url_env", CHAT[0], CHAT[1], CHAT[2], CHAT[3], CHAT[4],
            ],
            SinkType::Telegram => &[
                "token",
                "token_env",
                "chat_id",
                "thread_id",
                "api_base",
                CHAT[0],
                CHAT[1],
                CHAT[2],
                CHAT[3],
                CHAT[4],
            ],
            SinkType::Exec => &["command", "args", "timeout_secs", "give_up_after_secs"],
            SinkType::Stdout => &["format"],
        }
    }
}

/// Which events a sink receives; empty lists accept everything.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Watchlist tags (`@client-acme` in the watchlist is `client-acme` here); any one of them passes.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// One `[[sinks]]` table.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// Unique; the outbox key, so keep it stable. Default: `<type>:<8 hex digits of a hash of the target>`.
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<SinkType>,
    pub url: Option<String>,
    pub url_env: Option<String>,
    pub secret: Option<String>,
    pub secret_env: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub token: Option<String>,
    pub token_env: Option<String>,
    pub chat_id: Option<ChatId>,
    pub thread_id: Option<i64>,
    pub api_base: Option<String>,
    pub username: Option<String>,
    pub command: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    pub format: Option<StdoutFormat>,
    #[serde(default)]
    pub filter: FilterConfig,
    pub group_window_secs: Option<u64>,
    pub max_events_per_message: Option<usize>,
    pub timeout_secs: Option<u64>,
    pub give_up_after_secs: Option<u64>,
    pub min_interval_ms: Option<u64>,
}

impl SinkConfig {
    fn set_keys(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut note = |set: bool, key: &'static str| {
            if set {
                out.push(key);
            }
        };
        note(self.url.is_some(), "url");
        note(self.url_env.is_some(), "url_env");
        note(self.secret.is_some(), "secret");
        note(self.secret_env.is_some(), "secret_env");
        note(!self.headers.is_empty(), "headers");
        note(self.token.is_some(), "token");
        note(self.token_env.is_some(), "token_env");
        note(self.chat_id.is_some(), "chat_id");
        note(self.thread_id.is_some(), "thread_id");
        note(self.api_base.is_some(), "api_base");
        note(self.username.is_some(), "username");
        note(self.command.is_some(), "command");
        note(!self.args.is_empty(), "args");
        note(self.format.is_some(), "format");
        note(self.group_window_secs.is_some(), "group_window_secs");
        note(
            self.max_events_per_message.is_some(),
            "max_events_per_message",
        );
        note(self.timeout_secs.is_some(), "timeout_secs");
        note(self.give_up_after_secs.is_some(), "give_up_after_secs");
        note(self.min_interval_ms.is_some(), "min_interval_ms");
        out
    }

    /// A sink of `kind` for `url` (quick flags).
    pub fn for_url(kind: SinkType, url: &str) -> SinkConfig {
        SinkConfig {
            kind: Some(kind),
            url: Some(url.to_string()),
            ..Default::default()
        }
    }
}

/// Read `[[sinks]]` from a TOML file (other top-level keys are left to the rest of the configuration).
pub fn load_sinks_file(path: &Path) -> Result<Vec<SinkConfig>> {
    #[derive(Deserialize)]
    struct File {
        #[serde(default)]
        sinks: Vec<SinkConfig>,
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file: File =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(file.sinks)
}

/// The quick sink flags, shared by `ctwatch run` and `ctwatch notify test`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SinkArgs {
    /// POST every event as signed JSON to this URL (repeatable). See docs/notify.md for the body.
    #[arg(long = "webhook", value_name = "URL")]
    pub webhooks: Vec<String>,
    /// Signing secret (whsec_<base64>) for the --webhook URLs.
    #[arg(
        long,
        value_name = "SECRET",
        env = "CTWATCH_WEBHOOK_SECRET",
        hide_env_values = true
    )]
    pub webhook_secret: Option<String>,
    /// Send events to this Discord webhook URL (repeatable).
    #[arg(long = "discord", value_name = "WEBHOOK_URL")]
    pub discord: Vec<String>,
    /// Send events to this Slack incoming-webhook URL (repeatable).
    #[arg(long = "slack", value_name = "WEBHOOK_URL")]
    pub slack: Vec<String>,
    /// Send events to a Telegram chat through a bot: BOT_TOKEN:CHAT_ID, e.g. 123456:ABC-xyz:-1001234567890
    /// (repeatable).
    #[arg(long = "telegram", value_name = "TOKEN:CHAT_ID")]
    pub telegram: Vec<String>,
    /// Read sinks from the [[sinks]] tables of this TOML file.
    #[arg(long, value_name = "FILE")]
    pub sinks_file: Option<PathBuf>,
}

impl SinkArgs {
    /// Every sink the flags describe, file sinks first.
    pub fn configs(&self) -> Result<Vec<SinkConfig>> {
        let mut out = match &self.sinks_file {
            Some(p) => load_sinks_file(p)?,
            None => Vec::new(),
        };
        for url in &self.webhooks {
            out.push(SinkConfig {
                secret: self.webhook_secret.clone(),
                ..SinkConfig::for_url(SinkType::Webhook, url)
            });
        }
        out.extend(
            self.discord
                .iter()
                .map(|u| SinkConfig::for_url(SinkType::Discord, u)),
        );
        out.extend(
            self.slack
                .iter()
                .map(|u| SinkConfig::for_url(SinkType::Slack, u)),
        );
        for spec in &self.telegram {
            out.push(telegram_flag(spec)?);
        }
        Ok(out)
    }
}

/// `--telegram BOT_TOKEN:CHAT_ID`: the token itself contains a colon, so the chat is after the last one.
pub fn telegram_flag(spec: &str) -> Result<SinkConfig> {
    let Some((token, chat)) = spec.rsplit_once(':').filter(|(t, _)| t.contains(':')) else {
        bail!(
            "--telegram wants BOT_TOKEN:CHAT_ID (the token looks like 123456:ABC..., the chat like -100123 or @channel)"
        );
    };
    let chat: ChatId = chat
        .parse()
        .map_err(|e: String| anyhow::anyhow!("--telegram: {e}"))?;
    Ok(SinkConfig {
        kind: Some(SinkType::Telegram),
        token: Some(token.to_string()),
        chat_id: Some(chat),
        ..Default::default()
    })
}

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

fn build_one(cfg: &SinkConfig, client: &reqwest::Client) -> Result<Arc<dyn Sink>> {
    let Some(kind) = cfg.kind else {
        bail!("`type` is missing (webhook, discord, slack, telegram, exec or stdout)")
    };
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
    let timeout = Duration::from_secs(
        cfg.timeout_secs
            .unwrap_or(if kind == SinkType::Exec { 60 } else { 20 })
            .max(1),
    );
    let give_up_after = cfg.give_up_after_secs.map(Duration::from_secs);
    let pacer = |default_ms: u64| {
        Pacer::new(Duration::from_millis(
            cfg.min_interval_ms.unwrap_or(default_ms),
        ))
    };
    let client = client.clone();
    Ok(match kind {
        SinkType::Webhook => {
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
            let url = url_value(cfg)?;
            Arc::new(WebhookSink {
                name,
                url,
                key,
                headers,
                batching,
                timeout,
                give_up_after,
                client,
                pacer: pacer(0),
            })
        }
        SinkType::Discord => Arc::new(DiscordSink {
            name,
            url: url_value(cfg)?,
            username: cfg.username.clone().unwrap_or_else(|| "ctwatch".into()),
            batching,
            max_events_per_message: per_message,
            timeout,
            give_up_after,
            client,
            pacer: pacer(500),
        }),
        SinkType::Slack => Arc::new(SlackSink {
            name,
            url: url_value(cfg)?,
            batching,
            max_events_per_message: per_message,
            timeout,
            give_up_after,
            client,
            pacer: pacer(1000),
        }),
        SinkType::Telegram => {
            let Some(token) = secret_value(&cfg.token, &cfg.token_env, "token")? else {
                bail!("`token` (or `token_env`) is required");
            };
            if !token.contains(':') || token.contains('/') {
                bail!("`token` does not look like a bot token (123456:ABC...)");
            }
            let chat = match cfg.chat_id.clone() {
                None => bail!("`chat_id` is required"),
                Some(ChatId::Username(u)) => u
                    .parse::<ChatId>()
                    .map_err(|e| anyhow::anyhow!("`chat_id`: {e}"))?,
                Some(id) => id,
            };
            let api_base = cfg.api_base.clone().unwrap_or_else(|| TELEGRAM_API.into());
            check_http_url(&api_base, "api_base")?;
            Arc::new(TelegramSink {
                name,
                api_base,
                token,
                chat: Mutex::new(chat),
                thread_id: cfg.thread_id,
                batching,
                max_events_per_message: per_message,
                timeout,
                give_up_after,
                client,
                pacer: pacer(1000),
                progress: Mutex::new(None),
            })
        }
        SinkType::Exec => {
            let Some(command) = cfg.command.clone().filter(|c| !c.trim().is_empty()) else {
                bail!("`command` is required");
            };
            Arc::new(ExecSink {
                name,
                command: PathBuf::from(command),
                args: cfg.args.clone(),
                timeout,
                give_up_after,
            })
        }
        SinkType::Stdout => Arc::new(StdoutSink::named(
            &name,
            cfg.format.unwrap_or(StdoutFormat::Json),
        )),
    })
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
    format!(
        "{}:{}",
        kind.as_str(),
        &hex::encode(Sha256::digest(identity.as_bytes()))[..8]
    )
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
            _ => bail!("`{key}_env` names {var}, which is not set"),
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

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
