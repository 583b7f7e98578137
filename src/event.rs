//! Events: what ctwatch tells people about. Built here as pure functions, queued in the outbox by the store,
//! delivered by `notify`. The JSON payload is the `--json` output line and the body of generic webhooks.

use serde::Serialize;
use serde_json::{Value, json};

use crate::store::StoredEntry;

/// Version of the event JSON payload; bumped on incompatible changes.
pub const PAYLOAD_VERSION: u32 = 1;

/// Which log an entry came from.
#[derive(Clone, Debug)]
pub struct LogRef {
    pub log_id: [u8; 32],
    pub url: String,
    pub description: String,
}

/// One event, ready to be queued.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// `new_certificate`, `unauthorized_issuer`, `lookalike`, `health`, `probe`, `test`.
    pub kind: String,
    /// Events with the same key may be grouped into one message by sinks.
    pub group_key: String,
    /// Watchlist tags, for routing.
    pub tags: Vec<String>,
    pub payload: Value,
}

/// One watchlist match as shown in reports.
#[derive(Clone, Debug, Serialize)]
struct MatchedJson<'a> {
    item: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    name_unicode: &'a str,
    kind: &'static str,
    source: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    tags: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    brand: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

/// The events caused by a newly stored certificate: one per event kind among its matches (an ordinary match,
/// an unauthorized issuer and a look-alike are reported separately so they can be routed separately).
pub fn certificate_events(log: &LogRef, entry: &StoredEntry) -> Vec<Event> {
    let mut kinds: Vec<&'static str> = entry.matches.iter().map(|m| m.kind.event_kind()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    kinds
        .into_iter()
        .map(|kind| {
            let matches: Vec<_> = entry
                .matches
                .iter()
                .filter(|m| m.kind.event_kind() == kind)
                .collect();
            let mut tags: Vec<String> = matches
                .iter()
                .flat_map(|m| m.tags.iter().cloned())
                .collect();
            tags.sort();
            tags.dedup();
            let matched: Vec<MatchedJson<'_>> = matches
                .iter()
                .map(|m| MatchedJson {
                    item: &m.item,
                    name: &m.name,
                    name_unicode: if m.name_unicode != m.name {
                        &m.name_unicode
                    } else {
                        ""
                    },
                    kind: m.kind.as_str(),
                    source: &m.source,
                    tags: &m.tags,
                    brand: m.brand.as_deref(),
                    reason: m.reason,
                })
                .collect();
            let group = tags
                .first()
                .cloned()
                .unwrap_or_else(|| matches[0].item.clone());
            let info = &entry.info;
            let mut payload = json!({
                "version": PAYLOAD_VERSION,
                "kind": kind,
                "log": log.url,
                "log_description": log.description,
                "index": entry.index,
                "timestamp": rfc3339_ms(entry.timestamp_ms as i64),
                "entry_type": entry.entry_type.as_str(),
                "cert_sha256": info.cert_sha256.map(hex::encode),
                "tbs_sha256": hex::encode(info.tbs_sha256),
                "pubkey_sha256": hex::encode(info.pubkey_sha256),
                "dns_names": info.dns_names,
                "ip_addresses": info.ip_addresses,
                "matched": matched,
                "issuer": info.issuer,
                "subject": info.subject,
                "serial": info.serial,
                "not_before": rfc3339(info.not_before),
                "not_after": rfc3339(info.not_after),
                "tags": tags,
            });
            // What the log served outside the tree and could not be read or proved (certspotter's CHAIN_ERROR):
            // the entry is reported from its leaf, and `issuers=` policies treat its issuer as unproven.
            if let Some(e) = info.chain.error() {
                payload["chain_error"] = json!(e);
            }
            Event {
                kind: kind.to_string(),
                group_key: format!("{kind}|{group}"),
                tags,
                payload,
            }
        })
        .collect()
}

/// Unix seconds as RFC 3339 UTC (`2025-05-03T16:14:48Z`).
pub fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}

/// Unix milliseconds as RFC 3339 UTC with milliseconds.
pub fn rfc3339_ms(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// One human line for a certificate event (the default stdout format).
pub fn human_line(payload: &Value) -> String {
    let s = |k: &str| payload.get(k).and_then(Value::as_str).unwrap_or("");
    let names: Vec<&str> = payload
        .get("dns_names")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let shown = if names.len() > 4 {
        format!("{} (+{} more)", names[..4].join(", "), names.len() - 4)
    } else {
        names.join(", ")
    };
    let matched: Vec<String> = payload
        .get("matched")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|m| {
            format!(
                "{} via {}",
                m.get("name").and_then(Value::as_str).unwrap_or(""),
                m.get("item").and_then(Value::as_str).unwrap_or("")
            )
        })
        .collect();
    match s("kind") {
        "new_certificate" | "unauthorized_issuer" | "lookalike" => format!(
            "[{}] {} {} {}#{} names: {} | matched: {} | issuer: {} | valid {} .. {} | tbs_sha256 {}",
            s("kind"),
            s("entry_type"),
            s("timestamp"),
            s("log"),
            payload.get("index").and_then(Value::as_u64).unwrap_or(0),
            shown,
            matched.join("; "),
            s("issuer"),
            s("not_before"),
            s("not_after"),
            s("tbs_sha256"),
        ),
        _ => format!("[{}] {}", s("kind"), s("message")),
    }
}
