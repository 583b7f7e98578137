//! Google's CT log list, v3 schema (`logs` = RFC 6962 logs, `tiled_logs` = static-ct-api logs), and its
//! signature. Pure: fetching and caching live elsewhere.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;

use crate::ct::merkle::Hash;
use crate::ct::sig::LogKey;

/// Google's log list signing key (RSA), bundled.
pub const GOOGLE_LOG_LIST_KEY_PEM: &str = include_str!("../../assets/google_log_list_pubkey.pem");

#[derive(Clone, Debug)]
pub struct LogList {
    pub version: String,
    pub timestamp: String,
    pub logs: Vec<LogInfo>,
    /// Logs we cannot follow (unsupported key, inconsistent log ID), with the reason.
    pub skipped: Vec<(String, String)>,
}

#[derive(Clone, Debug)]
pub struct LogInfo {
    pub operator: String,
    pub description: String,
    pub log_id: [u8; 32],
    pub key: LogKey,
    pub mmd_secs: u64,
    pub kind: LogKind,
    pub state: LogState,
    /// (start_inclusive, end_exclusive), RFC 3339.
    pub temporal_interval: Option<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogKind {
    Rfc6962 {
        url: String,
    },
    Tiled {
        submission_url: String,
        monitoring_url: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogState {
    Pending,
    Qualified,
    Usable,
    Readonly {
        final_tree_size: u64,
        final_root: Hash,
    },
    Retired,
    Rejected,
}

impl LogState {
    /// The states a monitor follows: qualified, usable and readonly (up to its final tree head).
    pub fn is_monitorable(&self) -> bool {
        matches!(
            self,
            LogState::Qualified | LogState::Usable | LogState::Readonly { .. }
        )
    }

    pub fn name(&self) -> &'static str {
        match self {
            LogState::Pending => "pending",
            LogState::Qualified => "qualified",
            LogState::Usable => "usable",
            LogState::Readonly { .. } => "readonly",
            LogState::Retired => "retired",
            LogState::Rejected => "rejected",
        }
    }
}

impl LogInfo {
    /// The URL entries are read from (RFC 6962 `url`, or the tiled `monitoring_url`), ending in '/'.
    pub fn url(&self) -> &str {
        match &self.kind {
            LogKind::Rfc6962 { url } => url,
            LogKind::Tiled { monitoring_url, .. } => monitoring_url,
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            LogKind::Rfc6962 { .. } => "rfc6962",
            LogKind::Tiled { .. } => "tiled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogListError {
    #[error("log list is not valid JSON of the v3 schema: {0}")]
    Json(String),
    #[error("log list signature: {0}")]
    Signature(String),
    #[error("log list signing key: {0}")]
    Key(String),
}

#[derive(Deserialize)]
struct RawList {
    #[serde(default)]
    version: String,
    #[serde(default)]
    log_list_timestamp: String,
    operators: Vec<RawOperator>,
}

#[derive(Deserialize)]
struct RawOperator {
    name: String,
    #[serde(default)]
    logs: Vec<RawLog>,
    #[serde(default)]
    tiled_logs: Vec<RawLog>,
}

#[derive(Deserialize)]
struct RawLog {
    #[serde(default)]
    description: String,
    log_id: String,
    key: String,
    url: Option<String>,
    submission_url: Option<String>,
    monitoring_url: Option<String>,
    #[serde(default)]
    mmd: u64,
    state: Option<serde_json::Map<String, serde_json::Value>>,
    temporal_interval: Option<RawInterval>,
}

#[derive(Deserialize)]
struct RawInterval {
    start_inclusive: String,
    end_exclusive: String,
}

fn slash(u: &str) -> String {
    if u.ends_with('/') {
        u.to_string()
    } else {
        format!("{u}/")
    }
}

/// Parse a v3 log list. A log that cannot be followed is listed in `skipped` instead of failing the whole list.
pub fn parse(json: &[u8]) -> Result<LogList, LogListError> {
    let raw: RawList =
        serde_json::from_slice(json).map_err(|e| LogListError::Json(e.to_string()))?;
    let mut list = LogList {
        version: raw.version,
        timestamp: raw.log_list_timestamp,
        logs: vec![],
        skipped: vec![],
    };
    for op in raw.operators {
        for (tiled, log) in op
            .logs
            .into_iter()
            .map(|l| (false, l))
            .chain(op.tiled_logs.into_iter().map(|l| (true, l)))
        {
            let name = format!("{} ({})", log.description, op.name);
            match convert(&op.name, tiled, log) {
                Ok(info) => list.logs.push(info),
                Err(why) => list.skipped.push((name, why)),
            }
        }
    }
    Ok(list)
}

fn convert(operator: &str, tiled: bool, log: RawLog) -> Result<LogInfo, String> {
    let key_der = B64
        .decode(&log.key)
        .map_err(|e| format!("key is not base64: {e}"))?;
    let key = LogKey::from_spki_der(&key_der).map_err(|e| e.to_string())?;
    let log_id: [u8; 32] = B64
        .decode(&log.log_id)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("log_id {:?} is not 32 base64 bytes", log.log_id))?;
    if log_id != key.log_id() {
        return Err(format!(
            "log_id {} is not the SHA-256 of its key",
            log.log_id
        ));
    }
    let kind = if tiled {
        match (log.submission_url, log.monitoring_url) {
            (Some(s), Some(m)) => LogKind::Tiled {
                submission_url: slash(checked_url("submission_url", &s)?),
                monitoring_url: slash(checked_url("monitoring_url", &m)?),
            },
            _ => return Err("tiled log without submission_url and monitoring_url".into()),
        }
    } else {
        let url = log.url.ok_or("log without url")?;
        LogKind::Rfc6962 {
            url: slash(checked_url("url", &url)?),
        }
    };
    Ok(LogInfo {
        operator: operator.to_string(),
        description: log.description,
        log_id,
        key,
        mmd_secs: log.mmd,
        kind,
        state: state_of(log.state.as_ref())?,
        temporal_interval: log
            .temporal_interval
            .map(|t| (t.start_inclusive, t.end_exclusive)),
    })
}

/// A log URL we can fetch from: http or https with a host. Anything else (`file://`, `ftp://`, no host) is a
/// property of the list, not a transient error, so the log is skipped when the list loads.
fn checked_url<'a>(field: &str, raw: &'a str) -> Result<&'a str, String> {
    let parsed = url::Url::parse(raw).map_err(|e| format!("{field} {raw:?} is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!(
            "{field} {raw:?} is not an http(s) URL with a host: ctwatch only fetches logs over http(s)"
        ));
    }
    Ok(raw)
}

fn state_of(
    state: Option<&serde_json::Map<String, serde_json::Value>>,
) -> Result<LogState, String> {
    let Some((name, value)) = state.and_then(|s| s.iter().next()) else {
        return Ok(LogState::Pending);
    };
    Ok(match name.as_str() {
        "pending" => LogState::Pending,
        "qualified" => LogState::Qualified,
        "usable" => LogState::Usable,
        "retired" => LogState::Retired,
        "rejected" => LogState::Rejected,
        "readonly" => {
            let fth = &value["final_tree_head"];
            let size = fth["tree_size"]
                .as_u64()
                .ok_or("readonly state without final_tree_head.tree_size")?;
            let root: Hash = fth["sha256_root_hash"]
                .as_str()
                .and_then(|r| B64.decode(r).ok())
                .and_then(|b| b.try_into().ok())
                .ok_or("readonly state without a 32-byte final_tree_head.sha256_root_hash")?;
            LogState::Readonly {
                final_tree_size: size,
                final_root: root,
            }
        }
        other => return Err(format!("unknown log state {other:?}")),
    })
}

/// Check `log_list.sig` (RSA PKCS#1 v1.5 with SHA-256 over the exact bytes) with a PEM public key.
pub fn verify_signature(json: &[u8], sig: &[u8], pubkey_pem: &str) -> Result<(), LogListError> {
    let b64: String = pubkey_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = B64
        .decode(b64.trim())
        .map_err(|e| LogListError::Key(e.to_string()))?;
    let (_, spki) =
        <x509_parser::x509::SubjectPublicKeyInfo as x509_parser::prelude::FromDer<_>>::from_der(
            &der,
        )
        .map_err(|e| LogListError::Key(e.to_string()))?;
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        &spki.subject_public_key.data,
    )
    .verify(json, sig)
    .map_err(|_| {
        LogListError::Signature(
            "does not verify with Google's log list key (tampered or truncated list?)".into(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/fixtures/loglists/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn all_five_real_lists_parse() {
        for name in [
            "google_log_list_v3_v81.14_2026-01-20.json",
            "google_log_list_v3_v80.14_2026-01-02.json",
            "google_log_list_v3_v57.1_2025-06-21_tiled.json",
            "google_log_list_v3_v12.6_2022-09-20.json",
            "google_all_logs_list_v3_v53.34_2025-05-05.json",
        ] {
            let list = parse(&read(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(list.logs.len() > 10, "{name}: {} logs", list.logs.len());
            assert!(
                list.skipped.is_empty(),
                "{name}: skipped {:?}",
                list.skipped
            );
        }
    }

    #[test]
    fn january_2026_list_has_49_rfc6962_and_26_tiled_logs() {
        let list = parse(&read("google_log_list_v3_v81.14_2026-01-20.json")).unwrap();
        let rfc = list
            .logs
            .iter()
            .filter(|l| matches!(l.kind, LogKind::Rfc6962 { .. }))
            .count();
        let tiled = list
            .logs
            .iter()
            .filter(|l| matches!(l.kind, LogKind::Tiled { .. }))
            .count();
        assert_eq!((rfc, tiled), (49, 26));
        for l in &list.logs {
            assert!(
                l.url().starts_with("https://") && l.url().ends_with('/'),
                "{}",
                l.url()
            );
        }
        let readonly = list
            .logs
            .iter()
            .find(|l| matches!(l.state, LogState::Readonly { .. }));
        assert!(readonly.is_some_and(|l| l.state.is_monitorable()));
    }

    #[test]
    fn signed_lists_verify_and_one_changed_byte_fails() {
        for (json, sig) in [
            (
                "google_log_list_v3_v80.14_2026-01-02.json",
                "google_log_list_v3_v80.14_2026-01-02.sig",
            ),
            (
                "google_log_list_v3_v12.6_2022-09-20.json",
                "google_log_list_v3_v12.6_2022-09-20.sig",
            ),
        ] {
            let (json, sig) = (read(json), read(sig));
            verify_signature(&json, &sig, GOOGLE_LOG_LIST_KEY_PEM).unwrap();
            let mut bad = json.clone();
            let i = bad.len() / 2;
            bad[i] ^= 0x01;
            let err = verify_signature(&bad, &sig, GOOGLE_LOG_LIST_KEY_PEM).unwrap_err();
            assert!(err.to_string().contains("does not verify"), "{err}");
        }
    }

    #[test]
    fn inconsistent_log_id_and_unknown_key_are_skipped_not_fatal() {
        let mut v: serde_json::Value =
            serde_json::from_slice(&read("google_log_list_v3_v81.14_2026-01-20.json")).unwrap();
        v["operators"][0]["logs"][0]["log_id"] =
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into();
        v["operators"][0]["logs"][1]["key"] = "AAAA".into();
        let list = parse(v.to_string().as_bytes()).unwrap();
        assert_eq!(list.skipped.len(), 2, "{:?}", list.skipped);
        assert!(list.skipped[0].1.contains("SHA-256 of its key"));
    }

    #[test]
    fn unsupported_log_urls_are_skipped_naming_the_log() {
        let mut v: serde_json::Value =
            serde_json::from_slice(&read("google_log_list_v3_v57.1_2025-06-21_tiled.json"))
                .unwrap();
        let before = parse(v.to_string().as_bytes()).unwrap().logs.len();
        v["operators"][0]["logs"][0]["url"] = "file:///etc/".into();
        v["operators"][0]["logs"][1]["url"] = "ftp://ct.example/log/".into();
        v["operators"][0]["logs"][2]["url"] = "https://".into();
        let list = parse(v.to_string().as_bytes()).unwrap();
        assert_eq!(list.logs.len(), before - 3);
        assert_eq!(list.skipped.len(), 3, "{:?}", list.skipped);
        let (name, why) = &list.skipped[0];
        let first = v["operators"][0]["logs"][0]["description"]
            .as_str()
            .unwrap();
        assert!(name.contains(first), "{name}");
        assert!(
            why.contains("file:///etc/") && why.contains("http(s)"),
            "{why}"
        );
        assert!(list.logs.iter().all(|l| l.url().starts_with("http")));
    }
}
