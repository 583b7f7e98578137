//! Where the log list comes from: a local file, or a URL fetched with a conditional GET, checked against its
//! signature (Google's list: `log_list.sig`, Google's key bundled), cached on disk, and — when nothing can be
//! fetched — the cached copy or, last, the snapshot bundled in the binary.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::ct::loglist::{self, LogList};

/// The current Google CT log list (v3) and its signature.
pub const GOOGLE_LOG_LIST_URL: &str = "https://www.gstatic.com/ct/log_list/v3/log_list.json";
pub const GOOGLE_LOG_LIST_SIG_URL: &str = "https://www.gstatic.com/ct/log_list/v3/log_list.sig";

/// The list bundled at build time (Google's signed `all_logs_list.json`; `scripts/update-bundled-loglist.sh`
/// refreshes it and its `.sig`), used only when Google's list and its cached copy cannot be had. Logs are
/// followed by state as in any list: qualified, usable and readonly.
pub const BUNDLED_SNAPSHOT: &[u8] = include_bytes!("../assets/log_list_snapshot.json");
/// Google's signature of [`BUNDLED_SNAPSHOT`] (checked by a test).
pub const BUNDLED_SNAPSHOT_SIG: &[u8] = include_bytes!("../assets/log_list_snapshot.sig");

/// A log list older than this is marked stale by `ctwatch logs`.
pub const STALE_AFTER_DAYS: i64 = 30;

/// Whole days between a list's `log_list_timestamp` (RFC 3339) and `now` (unix seconds); None if unparsable.
pub fn age_days(timestamp: &str, now: i64) -> Option<i64> {
    let t = time::OffsetDateTime::parse(timestamp, &time::format_description::well_known::Rfc3339)
        .ok()?;
    Some((now - t.unix_timestamp()).div_euclid(86_400))
}

/// "v89.25 of 2026-08-20, 102 days old".
pub fn describe(list: &LogList, now: i64) -> String {
    let date = list.timestamp.get(..10).unwrap_or(&list.timestamp);
    match age_days(&list.timestamp, now) {
        Some(d) => format!("v{} of {date}, {d} days old", list.version),
        None => format!("v{} of {date}", list.version),
    }
}

/// The first line of `ctwatch logs`: the log list the last run used, its age, and STALE after 30 days.
pub fn log_list_line(store: &crate::store::Store, now: i64) -> Option<String> {
    let fact = store.fact(crate::run_report::FACT_LOG_LIST).ok()??;
    let v: serde_json::Value = serde_json::from_str(&fact).ok()?;
    let (origin, version, ts) = (
        v["origin"].as_str()?,
        v["version"].as_str().unwrap_or("?"),
        v["timestamp"].as_str().unwrap_or(""),
    );
    let date = ts.get(..10).unwrap_or(ts);
    let mut line = format!("log list: v{version} of {date} from {origin}");
    if let Some(days) = age_days(ts, now) {
        line.push_str(&format!(", {days} days old"));
        if days > STALE_AFTER_DAYS {
            line.push_str(
                " -- STALE: logs added or retired since are missed (check that ctwatch can fetch \
                 https://www.gstatic.com/ct/log_list/v3/log_list.json)",
            );
        }
    }
    Some(line)
}

/// Where a loaded list came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    File(PathBuf),
    Fetched(String),
    /// The server said 304: our cached copy is current.
    NotModified(String),
    /// Fetching failed; this is the cached copy.
    Cache(PathBuf),
    Bundled,
}

/// A log list source that remembers validators for conditional GETs.
pub struct LogListSource {
    spec: String,
    /// Signature URL to verify a fetched list with (the Google key); None: not verified.
    sig_url: Option<String>,
    cache_dir: Option<PathBuf>,
    client: reqwest::Client,
}

impl LogListSource {
    /// `spec` is a file path or an http(s) URL. The Google URL is always signature-checked; another URL is checked
    /// when `sig_url` is given.
    pub fn new(
        spec: &str,
        sig_url: Option<String>,
        cache_dir: Option<PathBuf>,
        client: reqwest::Client,
    ) -> Self {
        let sig_url = sig_url
            .or_else(|| (spec == GOOGLE_LOG_LIST_URL).then(|| GOOGLE_LOG_LIST_SIG_URL.to_string()));
        LogListSource {
            spec: spec.to_string(),
            sig_url,
            cache_dir,
            client,
        }
    }

    pub fn is_remote(&self) -> bool {
        self.spec.starts_with("http://") || self.spec.starts_with("https://")
    }

    /// Load the list. A local file must parse; a URL falls back to its cached copy, and a Google-signed list
    /// (Google's URL, the default, or one given with a signature URL) last to the bundled snapshot, with a
    /// warning saying how old it is. Any other URL that cannot be fetched and has no cached copy is an error:
    /// never someone else's list in its place.
    pub async fn load(&self) -> Result<(LogList, Origin)> {
        if !self.is_remote() {
            let bytes = std::fs::read(&self.spec)
                .with_context(|| format!("reading log list {}", self.spec))?;
            let list = loglist::parse(&bytes)
                .with_context(|| format!("parsing log list {}", self.spec))?;
            return Ok((list, Origin::File(PathBuf::from(&self.spec))));
        }
        match self.fetch().await {
            Ok(r) => Ok(r),
            Err(e) => {
                if let Some((bytes, path)) = self.read_cache() {
                    tracing::warn!(
                        "log list {}: {e:#}; using the cached copy {}",
                        self.spec,
                        path.display()
                    );
                    return Ok((loglist::parse(&bytes)?, Origin::Cache(path)));
                }
                // Only a list signed by Google (its URL, or a mirror checked with Google's key) may be replaced
                // by Google's bundled list.
                if self.sig_url.is_none() {
                    return Err(e.context(format!(
                        "log list {} cannot be fetched and has no cached copy",
                        self.spec
                    )));
                }
                let list = loglist::parse(BUNDLED_SNAPSHOT)?;
                tracing::warn!(
                    "log list {}: {e:#}; using the list bundled with ctwatch ({})",
                    self.spec,
                    describe(&list, crate::store::unix_now())
                );
                Ok((list, Origin::Bundled))
            }
        }
    }

    fn cache_paths(&self) -> Option<(PathBuf, PathBuf)> {
        let dir = self.cache_dir.as_ref()?;
        let key = hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(self.spec.as_bytes())[..8]);
        Some((
            dir.join(format!("log_list-{key}.json")),
            dir.join(format!("log_list-{key}.etag")),
        ))
    }

    fn read_cache(&self) -> Option<(Vec<u8>, PathBuf)> {
        let (json, _) = self.cache_paths()?;
        std::fs::read(&json).ok().map(|b| (b, json))
    }

    /// Fetch (conditionally), verify and cache the remote list, without falling back: the error says why a
    /// fresh list could not be used (`load` logs it and uses the cache or the bundled snapshot instead).
    pub async fn fetch(&self) -> Result<(LogList, Origin)> {
        let mut req = self
            .client
            .get(&self.spec)
            .timeout(std::time::Duration::from_secs(30));
        let cached = self.read_cache();
        let validators = cached
            .as_ref()
            .and(self.cache_paths())
            .and_then(|(_, p)| std::fs::read_to_string(p).ok());
        if let Some(v) = validators {
            let (etag, modified) = v.split_once('\n').unwrap_or((v.as_str(), ""));
            if !etag.is_empty() {
                req = req.header(reqwest::header::IF_NONE_MATCH, etag);
            }
            if !modified.trim().is_empty() {
                req = req.header(reqwest::header::IF_MODIFIED_SINCE, modified.trim());
            }
        }
        let resp = req.send().await.context("fetching")?;
        if resp.status() == reqwest::StatusCode::NOT_MODIFIED
            && let Some((bytes, _)) = cached
        {
            return Ok((
                loglist::parse(&bytes)?,
                Origin::NotModified(self.spec.clone()),
            ));
        }
        if !resp.status().is_success() {
            bail!("HTTP {}", resp.status());
        }
        let header = |h| {
            resp.headers()
                .get(h)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let validators = format!(
            "{}\n{}",
            header(reqwest::header::ETAG),
            header(reqwest::header::LAST_MODIFIED)
        );
        let bytes = resp.bytes().await.context("reading")?.to_vec();
        if let Some(sig_url) = &self.sig_url {
            let sig = self
                .client
                .get(sig_url)
                .send()
                .await
                .and_then(|r| r.error_for_status());
            let sig = sig
                .with_context(|| format!("fetching {sig_url}"))?
                .bytes()
                .await?;
            loglist::verify_signature(&bytes, &sig, loglist::GOOGLE_LOG_LIST_KEY_PEM)
                .with_context(|| format!("verifying {} with {sig_url}", self.spec))?;
        }
        let list = loglist::parse(&bytes).context("parsing")?;
        if let Some((json, etag)) = self.cache_paths() {
            if let Some(dir) = json.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            if let Err(e) =
                std::fs::write(&json, &bytes).and_then(|_| std::fs::write(&etag, validators))
            {
                tracing::warn!("cannot cache the log list in {}: {e}", json.display());
            }
        }
        Ok((list, Origin::Fetched(self.spec.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_list_is_google_signed_and_followed_by_state() {
        loglist::verify_signature(
            BUNDLED_SNAPSHOT,
            BUNDLED_SNAPSHOT_SIG,
            loglist::GOOGLE_LOG_LIST_KEY_PEM,
        )
        .expect("the bundled list verifies with Google's key");
        let list = loglist::parse(BUNDLED_SNAPSHOT).unwrap();
        assert!(list.skipped.is_empty(), "{:?}", list.skipped);
        // all_logs_list v89.25: 117 logs, of which 45 qualified/usable/readonly are followed; pending, rejected,
        // retired and state-less ones are not.
        assert_eq!(list.logs.len(), 117);
        let followed = list
            .logs
            .iter()
            .filter(|l| l.state.is_monitorable())
            .count();
        assert_eq!(followed, 45);
        assert_eq!(list.version, "89.25");
    }

    #[test]
    fn age_and_stale_marker() {
        let now = 1_796_000_000; // 2026-11-30
        assert_eq!(age_days("2026-08-20T13:34:57Z", now), Some(101));
        assert_eq!(age_days("garbage", now), None);
        let store = crate::store::Store::open_in_memory().unwrap();
        assert_eq!(log_list_line(&store, now), None);
        let list = loglist::parse(BUNDLED_SNAPSHOT).unwrap();
        crate::run_report::record_log_list(&store, &list, &Origin::Bundled);
        let line = log_list_line(&store, now).unwrap();
        assert!(
            line.starts_with(
                "log list: v89.25 of 2026-08-20 from the copy bundled with ctwatch, 101 days old -- STALE"
            ),
            "{line}"
        );
        let fresh = 1_755_700_000; // 2025-08-20 + a few days: not stale
        let line = log_list_line(&store, fresh + 365 * 86_400 + 3 * 86_400).unwrap();
        assert!(!line.contains("STALE"), "{line}");
        assert!(describe(&list, now).ends_with("101 days old"));
    }

    #[tokio::test]
    async fn an_unreachable_explicit_url_is_an_error_not_googles_list() {
        // A port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let src = LogListSource::new(
            &format!("http://127.0.0.1:{port}/log_list.json"),
            None,
            None,
            reqwest::Client::new(),
        );
        let err = format!("{:#}", src.load().await.unwrap_err());
        assert!(
            err.contains("cannot be fetched and has no cached copy"),
            "{err}"
        );
        let missing =
            LogListSource::new("/nonexistent/list.json", None, None, reqwest::Client::new());
        assert!(missing.load().await.is_err());
    }
}
