//! Name resolution behind a small trait, so tests (and `--resolve`) can pin names to addresses.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

/// Why a name gave no address to probe; becomes a `dns_error` with this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("lookup of {host} failed: {reason}")]
    Lookup { host: String, reason: String },
    #[error("{host} has no A or AAAA record")]
    NoAddresses { host: String },
}

pub type ResolveFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<SocketAddr>, ResolveError>> + Send + 'a>>;

/// Turns a host and port into every address to probe.
///
/// Contract: returns all A and AAAA addresses (deduplicated, order kept), each with the port to
/// connect to; an empty answer is an error, not `Ok(vec![])`. Called concurrently from many
/// tasks; the caller applies the DNS timeout and does not retry.
pub trait Resolver: Send + Sync + std::fmt::Debug {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> ResolveFuture<'a>;
}

/// The system resolver (getaddrinfo via `tokio::net::lookup_host`): A and AAAA, /etc/hosts.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> ResolveFuture<'a> {
        Box::pin(async move {
            let found =
                tokio::net::lookup_host((host, port))
                    .await
                    .map_err(|e| ResolveError::Lookup {
                        host: host.to_string(),
                        reason: e.to_string(),
                    })?;
            let mut addrs: Vec<SocketAddr> = Vec::new();
            for addr in found {
                if !addrs.contains(&addr) {
                    addrs.push(addr);
                }
            }
            if addrs.is_empty() {
                return Err(ResolveError::NoAddresses {
                    host: host.to_string(),
                });
            }
            Ok(addrs)
        })
    }
}

/// Fixed answers for some names, like curl's `--resolve`; other names go to `fallback`
/// (or fail with `NoAddresses` when there is none).
///
/// An entry maps a host name to full socket addresses: the port in the entry wins over the
/// target's, which lets a test serve `two.test` from 127.0.0.1:p1 and 127.0.0.2:p2.
#[derive(Debug, Default)]
pub struct StaticResolver {
    entries: HashMap<String, Vec<SocketAddr>>,
    fallback: Option<Box<dyn Resolver>>,
}

impl StaticResolver {
    pub fn new() -> Self {
        Self::default()
    }

    /// Names not in the map are resolved by `fallback`.
    pub fn with_fallback(fallback: Box<dyn Resolver>) -> Self {
        StaticResolver {
            entries: HashMap::new(),
            fallback: Some(fallback),
        }
    }

    /// Adds addresses for `host` (case-insensitive, trailing dot ignored).
    pub fn insert(&mut self, host: &str, addrs: impl IntoIterator<Item = SocketAddr>) {
        let key = host.trim_end_matches('.').to_ascii_lowercase();
        let list = self.entries.entry(key).or_default();
        for addr in addrs {
            if !list.contains(&addr) {
                list.push(addr);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Resolver for StaticResolver {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> ResolveFuture<'a> {
        let key = host.trim_end_matches('.').to_ascii_lowercase();
        if let Some(addrs) = self.entries.get(&key).filter(|a| !a.is_empty()) {
            let addrs = addrs.clone();
            return Box::pin(async move { Ok(addrs) });
        }
        match &self.fallback {
            Some(fallback) => fallback.resolve(host, port),
            None => Box::pin(async move {
                Err(ResolveError::NoAddresses {
                    host: host.to_string(),
                })
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn static_entries_win_and_keep_their_port() {
        let a: SocketAddr = "127.0.0.1:1111".parse().unwrap();
        let b: SocketAddr = "127.0.0.2:2222".parse().unwrap();
        let mut r = StaticResolver::new();
        r.insert("Two.Test.", [a, b, a]);
        assert_eq!(r.resolve("two.test", 443).await, Ok(vec![a, b]));
        assert_eq!(
            r.resolve("other.test", 443).await,
            Err(ResolveError::NoAddresses {
                host: "other.test".into()
            })
        );
    }

    #[tokio::test]
    async fn fallback_to_system_for_ip_literals() {
        let r = StaticResolver::with_fallback(Box::new(SystemResolver));
        let got = r.resolve("127.0.0.1", 8443).await.unwrap();
        assert_eq!(got, vec!["127.0.0.1:8443".parse::<SocketAddr>().unwrap()]);
    }
}
