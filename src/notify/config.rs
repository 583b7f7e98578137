//! Sink configuration: `[[sinks]]` tables of the configuration file, the quick flags of `ctwatch run`
//! (`--webhook URL --discord URL --slack URL --telegram TOKEN:CHAT_ID`). Building the sinks is in `build.rs`.
//! Every key is documented in README.md, section Notifications.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::StdoutFormat;
use super::telegram::ChatId;

/// Event kinds ctwatch queues; a filter naming another kind is probably a typo (warned about).
pub const EVENT_KINDS: [&str; 9] = [
    "new_certificate",
    "unauthorized_issuer",
    "lookalike",
    "probe",
    "stale_deployment",
    "renewal_missing",
    "caa_mismatch",
    "health",
    "test",
];

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
    pub(super) fn as_str(self) -> &'static str {
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
    pub(super) fn keys(self) -> &'static [&'static str] {
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
    pub(super) fn set_keys(&self) -> Vec<&'static str> {
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
    /// POST every event as signed JSON to this URL (repeatable). See README.md, section Notifications for the body.
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
    /// The sinks of the flags. A bad value is an error naming the flag (never echoing the URL: it holds a
    /// token).
    pub fn configs(&self) -> Result<Vec<SinkConfig>> {
        let mut out = match &self.sinks_file {
            Some(p) => load_sinks_file(p)?,
            None => Vec::new(),
        };
        for (flag, urls) in [
            ("--webhook", &self.webhooks),
            ("--discord", &self.discord),
            ("--slack", &self.slack),
        ] {
            for url in urls {
                check_flag_url(flag, url)?;
            }
        }
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

pub use super::build::build_sinks;

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;

/// A quick flag's URL must be http(s) with a host; the error names the flag, not a config key.
fn check_flag_url(flag: &str, url: &str) -> Result<()> {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        _ => anyhow::bail!(
            "{flag}: not an http(s) URL (the value is not repeated: it may hold a token)"
        ),
    }
}
