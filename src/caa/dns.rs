//! [`CaaLookup`] over DNS with hickory-resolver: the system's resolvers (`/etc/resolv.conf`) or the name
//! servers given (`--caa-resolver 127.0.0.1:5353`). Answers are cached by the resolver for their TTL (at most
//! an hour; negative answers at most 5 minutes), so a burst of certificates for one zone asks once.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::rr::{RData, RecordType};

use super::{CaaLookup, CaaRecord, LookupError, LookupFuture};

/// CAA lookups through a caching stub resolver.
pub struct DnsCaa {
    resolver: TokioResolver,
}

impl std::fmt::Debug for DnsCaa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DnsCaa")
    }
}

fn options(timeout: Duration) -> ResolverOpts {
    let mut o = ResolverOpts::default();
    o.timeout = timeout;
    o.attempts = 2;
    o.cache_size = 4096;
    o.positive_max_ttl = Some(Duration::from_secs(3600));
    o.negative_max_ttl = Some(Duration::from_secs(300));
    o
}

impl DnsCaa {
    /// Asks `servers` (UDP, then TCP for truncated answers), or the system's resolvers when empty.
    pub fn new(servers: &[SocketAddr], timeout: Duration) -> anyhow::Result<DnsCaa> {
        let builder = if servers.is_empty() {
            TokioResolver::builder_tokio()
                .map_err(|e| anyhow::anyhow!("reading the system's DNS configuration: {e}"))?
        } else {
            let mut config = ResolverConfig::from_parts(None, vec![], vec![]);
            for s in servers {
                let mut udp = ConnectionConfig::udp();
                udp.port = s.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = s.port();
                config.add_name_server(NameServerConfig::new(s.ip(), true, vec![udp, tcp]));
            }
            TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
        };
        let resolver = builder
            .with_options(options(timeout))
            .build()
            .map_err(|e| anyhow::anyhow!("building the DNS resolver: {e}"))?;
        Ok(DnsCaa { resolver })
    }
}

impl CaaLookup for DnsCaa {
    fn caa<'a>(&'a self, name: &'a str) -> LookupFuture<'a> {
        Box::pin(async move {
            let fqdn = format!("{}.", name.trim_end_matches('.'));
            match self.resolver.lookup(fqdn.as_str(), RecordType::CAA).await {
                Ok(lookup) => Ok(lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::CAA(caa) => Some(CaaRecord {
                            critical: caa.issuer_critical,
                            tag: caa.tag.to_ascii_lowercase(),
                            value: String::from_utf8_lossy(&caa.value).into_owned(),
                        }),
                        _ => None,
                    })
                    .collect()),
                // NODATA and NXDOMAIN: no CAA records at this name (climb to the parent).
                Err(NetError::Dns(DnsError::NoRecordsFound(_))) => Ok(Vec::new()),
                Err(e) => Err(LookupError {
                    name: name.to_string(),
                    reason: e.to_string(),
                }),
            }
        })
    }
}
