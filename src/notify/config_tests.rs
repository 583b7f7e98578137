use std::sync::Arc;

use super::*;
use crate::notify::{Batching, Sink};
use crate::store::SinkRoute;

const FILE: &str = r#"
# Other keys of the configuration file are not the sinks' business.
db = "/var/lib/ctwatch/ctwatch.db"

[[sinks]]
name = "ops"
type = "webhook"
url = "https://hooks.example.net/ct"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
headers = { Authorization = "Bearer abc" }
group_window_secs = 0

[[sinks]]
name = "acme-discord"
type = "discord"
url = "https://discord.com/api/webhooks/1/abc"
filter = { kinds = ["new_certificate", "lookalike"], tags = ["client-acme"] }
max_events_per_message = 5

[[sinks]]
type = "telegram"
token = "123456:ABC-def"
chat_id = -1001234567890
thread_id = 7

[[sinks]]
type = "exec"
command = "/usr/local/bin/ct-hook"
args = ["--quiet"]
"#;

fn write(text: &str) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), text).unwrap();
    f
}

fn one(toml_table: &str) -> Result<Vec<(Arc<dyn Sink>, SinkRoute)>> {
    let f = write(&format!("[[sinks]]\n{toml_table}\n"));
    build_sinks(&load_sinks_file(f.path())?, reqwest::Client::new())
}

fn err(toml_table: &str) -> String {
    match one(toml_table) {
        Ok(_) => panic!("accepted: {toml_table}"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn a_configuration_file_builds_every_sink_with_its_route() {
    let f = write(FILE);
    let cfgs = load_sinks_file(f.path()).unwrap();
    assert_eq!(cfgs.len(), 4);
    assert_eq!(
        cfgs[0].headers.get("Authorization").map(String::as_str),
        Some("Bearer abc")
    );
    assert_eq!(cfgs[2].chat_id, Some(ChatId::Id(-1001234567890)));
    assert_eq!(cfgs[3].args, ["--quiet"]);
    let sinks = build_sinks(&cfgs, reqwest::Client::new()).unwrap();
    let names: Vec<&str> = sinks.iter().map(|(s, _)| s.name()).collect();
    assert_eq!(names[..2], ["ops", "acme-discord"]);
    assert!(
        names[2].starts_with("telegram:chat-1001234567890#")
            && names[2].len() == "telegram:chat-1001234567890#".len() + 8,
        "{}",
        names[2]
    );
    assert!(names[3].starts_with("exec:"), "{}", names[3]);
    assert_eq!(
        sinks[0].0.batching(),
        Batching {
            window_secs: 0,
            max_batch: 1
        }
    );
    assert_eq!(
        sinks[1].0.batching(),
        Batching {
            window_secs: 30,
            max_batch: 1000
        }
    );
    assert_eq!(
        sinks[3].0.batching(),
        Batching {
            window_secs: 0,
            max_batch: 1
        }
    );
    assert_eq!(
        sinks[1].1,
        SinkRoute {
            name: "acme-discord".into(),
            kinds: vec!["new_certificate".into(), "lookalike".into()],
            tags: vec!["client-acme".into()],
        }
    );
    assert!(sinks[1].1.accepts("lookalike", &["client-acme".into()]));
    assert!(!sinks[1].1.accepts("lookalike", &["client-other".into()]));
    assert_eq!(sinks[0].1, SinkRoute::all("ops"));
}

#[test]
fn default_names_are_stable_and_differ_per_target() {
    let build = |url: &str| {
        let s = build_sinks(
            &[SinkConfig::for_url(SinkType::Discord, url)],
            reqwest::Client::new(),
        )
        .unwrap();
        s[0].0.name().to_string()
    };
    let a = build("https://discord.com/api/webhooks/1/abc");
    assert_eq!(a, build("https://discord.com/api/webhooks/1/abc"));
    assert_ne!(a, build("https://discord.com/api/webhooks/2/abc"));
    // The name shows the host, no other part of the URL (it carries the webhook's token).
    assert!(
        !a.contains("abc") && a.starts_with("discord:discord.com#"),
        "{a}"
    );
}

#[test]
fn flag_sinks_are_named_with_their_host_and_the_old_name_is_known() {
    let cfg = SinkConfig::for_url(SinkType::Webhook, "https://hooks.example.net/ct/SECRET");
    let s = build_sinks(std::slice::from_ref(&cfg), reqwest::Client::new()).unwrap();
    let name = s[0].0.name().to_string();
    let hash = name.rsplit_once('#').unwrap().1;
    assert_eq!(name, format!("webhook:hooks.example.net#{hash}"));
    assert_eq!(hash.len(), 8);
    assert_eq!(
        crate::notify::legacy_default_name(&cfg),
        Some((format!("webhook:{hash}"), name.clone()))
    );
}

#[test]
fn mistakes_are_reported_with_the_key() {
    assert!(
        err("type = \"webhook\"\nurl = \"https://x.example\"\nchatid = 5")
            .contains("unknown field `chatid`")
    );
    assert!(
        err("type = \"webhook\"\nurl = \"https://x.example\"\nchat_id = 5")
            .contains("`chat_id` does not apply to webhook sinks")
    );
    assert!(err("type = \"discord\"").contains("`url` (or `url_env`) is required"));
    let e = err("type = \"slack\"\nurl = \"ftp://hooks.slack.com/services/SECRET\"");
    assert!(
        e.contains("`url` is not an http(s) URL") && !e.contains("SECRET"),
        "{e}"
    );
    assert!(err("type = \"telegram\"\ntoken = \"1:a\"").contains("`chat_id` is required"));
    assert!(
        err("type = \"telegram\"\ntoken = \"1:a\"\nchat_id = \"channel\"")
            .contains("number or @channelname")
    );
    assert!(
        err("type = \"webhook\"\nurl = \"https://x.example\"\nsecret = \"whsec_!!\"")
            .contains("not base64")
    );
    assert!(err("type = \"exec\"").contains("`command` is required"));
    assert!(
        err("type = \"exec\"\ncommand = \"x\"\ngroup_window_secs = 5")
            .contains("does not apply to exec sinks")
    );
    assert!(err("url = \"https://x.example\"").contains("`type` is missing"));
    assert!(err("name = \"stdout\"\ntype = \"stdout\"").contains("taken"));
    let dup =
        "[[sinks]]\nname = \"a\"\ntype = \"stdout\"\n[[sinks]]\nname = \"a\"\ntype = \"stdout\"\n";
    let f = write(dup);
    let e = build_sinks(&load_sinks_file(f.path()).unwrap(), reqwest::Client::new())
        .err()
        .unwrap();
    assert!(format!("{e:#}").contains("two sinks are named \"a\""));
}

#[test]
fn secrets_come_from_the_environment() {
    let e = err("type = \"discord\"\nurl_env = \"CTWATCH_TEST_SURELY_UNSET_VARIABLE\"");
    assert!(
        e.contains("`url_env` names CTWATCH_TEST_SURELY_UNSET_VARIABLE, which is not set"),
        "{e}"
    );
    // cargo sets CARGO_PKG_NAME (= "ctwatch") for test processes: read, then refused as a bot token.
    let e = err("type = \"telegram\"\ntoken_env = \"CARGO_PKG_NAME\"\nchat_id = 1");
    assert!(e.contains("does not look like a bot token"), "{e}");
    assert!(
        err("type = \"telegram\"\ntoken = \"1:a\"\ntoken_env = \"X\"\nchat_id = 1")
            .contains("not both")
    );
}

#[test]
fn the_telegram_flag_splits_at_the_last_colon() {
    let c = telegram_flag("123456:ABC-def_1:-1001234567890").unwrap();
    assert_eq!(c.token.as_deref(), Some("123456:ABC-def_1"));
    assert_eq!(c.chat_id, Some(ChatId::Id(-1001234567890)));
    assert_eq!(
        telegram_flag("1:a:@alerts").unwrap().chat_id,
        Some(ChatId::Username("@alerts".into()))
    );
    assert!(telegram_flag("123:abc").is_err());
    assert!(telegram_flag("nocolon").is_err());
    assert!(telegram_flag("1:a:alerts").is_err());
}

#[test]
fn quick_flags_make_the_same_sinks() {
    let args = SinkArgs {
        webhooks: vec!["http://127.0.0.1:9/hook".into()],
        webhook_secret: Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()),
        discord: vec!["https://discord.com/api/webhooks/1/a".into()],
        slack: vec!["https://hooks.slack.com/services/T/B/x".into()],
        telegram: vec!["1:a:-5".into()],
        sinks_file: None,
    };
    let cfgs = args.configs().unwrap();
    let kinds: Vec<SinkType> = cfgs.iter().map(|c| c.kind.unwrap()).collect();
    assert_eq!(
        kinds,
        [
            SinkType::Webhook,
            SinkType::Discord,
            SinkType::Slack,
            SinkType::Telegram
        ]
    );
    assert_eq!(
        cfgs[0].secret.as_deref(),
        Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    );
    assert_eq!(build_sinks(&cfgs, reqwest::Client::new()).unwrap().len(), 4);
}

#[test]
fn the_run_configuration_file_carries_the_sinks() {
    let cfg = crate::config::parse(FILE).unwrap();
    assert_eq!(cfg.sinks.len(), 4);
    assert_eq!(cfg.sinks[1].name.as_deref(), Some("acme-discord"));
    assert_eq!(cfg.sinks[1].filter.tags, ["client-acme"]);
    // The commented example of config.example.toml, uncommented, is valid too.
    let uncommented: String = crate::config::EXAMPLE
        .lines()
        .skip_while(|l| !l.starts_with("# [[sinks]]"))
        .map(|l| l.strip_prefix("# ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let cfg = crate::config::parse(&uncommented).unwrap();
    assert_eq!(cfg.sinks.len(), 3);
    let sinks_err = build_sinks(&cfg.sinks, reqwest::Client::new())
        .err()
        .unwrap();
    assert!(format!("{sinks_err:#}").contains("CTWATCH_SOC_SECRET, which is not set"));
}
