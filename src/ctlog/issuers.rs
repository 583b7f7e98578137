//! Issuer certificates of a tiled log: data tiles name chain certificates by SHA-256 only, and each one is fetched
//! from `issuer/<hex>` once, then kept in memory and in SQLite (they are immutable).
//!
//! ```text
//! chain(fingerprints) -> memory -> (one fetch at a time) memory again -> SQLite cache -> GET issuer/<hex> -> check SHA-256
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::LogError;
use super::body::Body;
use super::http::Fetcher;

/// Where issuer certificates are cached across runs (they are immutable; each is fetched once).
///
/// Contract: `get`/`put` are synchronous (callers run them off the async threads) and safe to call
/// concurrently; `put` of a key already present is a no-op. Implemented by the SQLite store.
pub trait IssuerCache: Send + Sync {
    fn get_issuer(&self, sha256: &[u8; 32]) -> Option<Vec<u8>>;
    fn put_issuer(&self, sha256: &[u8; 32], der: &[u8]);
}

/// The most chain certificates resolved per entry (issuer first); fingerprints beyond are ignored.
pub const MAX_CHAIN: usize = 4;

/// How long an issuer the log does not serve (404, wrong bytes) is not asked for again.
const RETRY_UNAVAILABLE_AFTER: Duration = Duration::from_secs(600);

#[derive(Clone)]
enum Lookup {
    Found(Arc<Vec<u8>>),
    /// The log answered, but not with the certificate (the reason was logged), since then.
    Unavailable(Instant),
}

/// The issuers of one log.
pub struct Issuers {
    /// Monitoring prefix, ending in '/'.
    prefix: String,
    fetcher: Fetcher,
    cache: Arc<dyn IssuerCache>,
    memory: Mutex<HashMap<[u8; 32], Lookup>>,
    /// Held while one issuer is looked up in SQLite or fetched, so that tiles in flight together that name the
    /// same new issuer cause one request, not one each.
    lookup: tokio::sync::Mutex<()>,
}

impl Issuers {
    pub fn new(prefix: &str, fetcher: Fetcher, cache: Arc<dyn IssuerCache>) -> Issuers {
        Issuers {
            prefix: prefix.to_string(),
            fetcher,
            cache,
            memory: Mutex::new(HashMap::new()),
            lookup: tokio::sync::Mutex::new(()),
        }
    }

    /// The chain certificates named by `fingerprints`, issuer first, and the first fingerprint the log does not
    /// serve (if any).
    ///
    /// A certificate the log does not serve (404, or bytes with another hash) cuts the chain there: the entry is
    /// still verified by the tree and matched on its own names, and a shorter chain never puts the wrong
    /// certificate at position 0. Transient failures (after the fetcher's retries) are errors: the tile is tried
    /// again later.
    ///
    /// The certificates are shared (one copy per issuer, however many entries name it); an entry that matters gets
    /// its own copies when it is completed ([`super::ExtraData::complete`]).
    pub async fn chain(
        &self,
        fingerprints: &[[u8; 32]],
    ) -> Result<(Vec<Arc<Vec<u8>>>, Option<[u8; 32]>), LogError> {
        let mut chain = Vec::with_capacity(fingerprints.len().min(MAX_CHAIN));
        // A log controls how many fingerprints an entry lists (up to 2,048 fit a TileLeaf): resolving them all would
        // fetch that many issuers and copy each into every entry of the tile. What the chain check can use is the
        // issuer and, behind a precertificate signing certificate, the CA; a few more are shown in the live feed.
        for fp in fingerprints.iter().take(MAX_CHAIN) {
            match self.get(fp).await? {
                Lookup::Found(der) => chain.push(der),
                Lookup::Unavailable(_) => return Ok((chain, Some(*fp))),
            }
        }
        Ok((chain, None))
    }

    fn remembered(&self, fp: &[u8; 32]) -> Option<Lookup> {
        let memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        match memory.get(fp)? {
            Lookup::Unavailable(since) if since.elapsed() >= RETRY_UNAVAILABLE_AFTER => None,
            found => Some(found.clone()),
        }
    }

    fn remember(&self, fp: &[u8; 32], lookup: Lookup) -> Lookup {
        self.memory
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(*fp, lookup.clone());
        lookup
    }

    async fn get(&self, fp: &[u8; 32]) -> Result<Lookup, LogError> {
        if let Some(l) = self.remembered(fp) {
            return Ok(l);
        }
        let _one_at_a_time = self.lookup.lock().await;
        if let Some(l) = self.remembered(fp) {
            return Ok(l);
        }
        let (cache, key) = (self.cache.clone(), *fp);
        if let Ok(Some(der)) = tokio::task::spawn_blocking(move || cache.get_issuer(&key)).await {
            return Ok(self.remember(fp, Lookup::Found(Arc::new(der))));
        }
        let url = format!("{}issuer/{}", self.prefix, hex::encode(fp));
        let problem = match self.fetcher.get(&url).await.map(Body::into_vec) {
            Ok(der) => {
                let got: [u8; 32] = Sha256::digest(&der).into();
                if &got == fp {
                    let (cache, der) = (self.cache.clone(), Arc::new(der));
                    let stored = der.clone();
                    let _ =
                        tokio::task::spawn_blocking(move || cache.put_issuer(&key, &stored)).await;
                    return Ok(self.remember(fp, Lookup::Found(der)));
                }
                format!(
                    "GET {url}: the certificate served hashes to {}",
                    hex::encode(got)
                )
            }
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => e.to_string(),
        };
        tracing::warn!(
            "issuer certificate not available ({problem}); entries naming it keep the part of their chain before it"
        );
        Ok(self.remember(fp, Lookup::Unavailable(Instant::now())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache that holds one certificate and counts lookups.
    struct OneCert {
        fp: [u8; 32],
        der: Vec<u8>,
        lookups: std::sync::atomic::AtomicUsize,
    }

    impl IssuerCache for OneCert {
        fn get_issuer(&self, sha256: &[u8; 32]) -> Option<Vec<u8>> {
            self.lookups
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            (*sha256 == self.fp).then(|| self.der.clone())
        }
        fn put_issuer(&self, _: &[u8; 32], _: &[u8]) {}
    }

    #[tokio::test]
    async fn a_hostile_chain_list_is_cut_at_max_chain() {
        let cache = Arc::new(OneCert {
            fp: [7; 32],
            der: vec![0x30, 0x00],
            lookups: Default::default(),
        });
        let fetcher = Fetcher::new(reqwest::Client::new(), Default::default());
        // Never fetched: every fingerprint is the cached one.
        let issuers = Issuers::new("http://127.0.0.1:9/", fetcher, cache.clone());
        let (chain, missing) = issuers.chain(&[[7; 32]; 2048]).await.unwrap();
        assert_eq!(chain.len(), MAX_CHAIN);
        assert_eq!(missing, None);
        let (chain, _) = issuers.chain(&[[7; 32]; 2]).await.unwrap();
        assert_eq!(chain.len(), 2);
        assert_eq!(
            cache.lookups.load(std::sync::atomic::Ordering::Relaxed),
            1,
            "remembered after the first lookup"
        );
    }
}
