//! Where the log list comes from: a local file, or a URL fetched with a conditional GET, checked against its
//! signature (Google's list: `log_list.sig`, Google's key bundled), cached on disk, and — when nothing can be
//! fetched — the cached copy or, last, the snapshot bundled in the binary.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::ct::loglist::{self, LogList};

/// The current Google CT log list (v3) and its signature.
pub const GOOGLE_LOG_LIST_URL: &str = "https://www.gstatic.com/ct/log_list/v3/log_list.json";
pub const GOOGLE_LOG_LIST_SIG_URL: &str = "https://www.gstatic.com/ct/log_list/v3/log_list.sig";

/// The list bundled at build time (Google v3 list 81.14, 2026-01-20), used only when no fresher copy is reachable.
pub const BUNDLED_SNAPSHOT: &[u8] = include_bytes!("../assets/log_list_snapshot.json");

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

    /// Load the list. A local file must parse; a URL falls back to the cache, then to the bundled snapshot
    /// (with a warning) when it cannot be fetched or verified.
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
                tracing::warn!(
                    "log list {}: {e:#}; using the list bundled with ctwatch (2026-01-20)",
                    self.spec
                );
                Ok((loglist::parse(BUNDLED_SNAPSHOT)?, Origin::Bundled))
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
