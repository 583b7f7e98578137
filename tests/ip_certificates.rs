//! IP-address certificates: an `ip:` watchlist item matches IP SANs of certificates read from a fake CT log on
//! 127.0.0.1, the address is queued for the probe, and the probe connects to it without SNI and checks the
//! certificate's IP SANs.

mod common;
mod probe_support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use ctwatch::probe::resolve::{ResolveError, ResolveFuture, Resolver};
use ctwatch::probe::schedule::DomainLimiter;
use ctwatch::probe::scheduler::{self, ScheduleConfig};
use ctwatch::probe::{ProbeOptions, Status, Timeouts};
use ctwatch::tailer::StartAt;
use ctwatch_fakelog::FakeEntry;
use probe_support::{Pki, Served, leaf_params, pkcs8};
use rcgen::KeyPair;
use tokio::net::TcpListener;

#[derive(Debug, Default)]
struct MapResolver(Mutex<HashMap<String, SocketAddr>>);

impl Resolver for MapResolver {
    fn resolve<'a>(&'a self, host: &'a str, _port: u16) -> ResolveFuture<'a> {
        let found = self.0.lock().unwrap().get(host).copied();
        Box::pin(async move {
            found
                .map(|a| vec![a])
                .ok_or_else(|| ResolveError::NoAddresses {
                    host: host.to_string(),
                })
        })
    }
}

/// A TLS server that records the SNI of every ClientHello (`None`: no SNI sent).
async fn serve_recording_sni(served: Served) -> (SocketAddr, Arc<Mutex<Vec<Option<String>>>>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(served.chain, served.key)
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (config, record) = (config.clone(), record.clone());
            tokio::spawn(async move {
                let acceptor =
                    tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp);
                if let Ok(start) = acceptor.await {
                    let sni = start.client_hello().server_name().map(String::from);
                    record.lock().unwrap().push(sni);
                    let _ = start.into_stream(config).await;
                }
            });
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn an_ip_item_matches_ip_sans_and_the_address_is_probed_without_sni() {
    let pki = Pki::new();
    let key = KeyPair::generate().unwrap();
    // Names: an IP SAN inside the watched network, one outside it, and a DNS name nobody watches.
    let cert = leaf_params(
        &["203.0.113.9", "198.51.100.1", "www.unwatched.test"],
        -1,
        60,
    )
    .signed_by(&key, &pki.inter)
    .unwrap();
    let entry = FakeEntry::x509(cert.der(), &[pki.inter.der()], 1_700_000_000_000);
    let one = one_log(vec![entry]).await;
    let env = &one.env;
    let watch = "ip:203.0.113.0/24 @net-team\n";
    assert!(
        run_once(env, &one.list, watch, once_config(StartAt::Beginning))
            .await
            .ok()
    );
    let events = env.sink.take();
    let certs: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["kind"] == "new_certificate")
        .collect();
    assert_eq!(certs.len(), 1, "{events:#?}");
    assert_eq!(certs[0]["matched"][0]["name"], "203.0.113.9");
    assert_eq!(certs[0]["matched"][0]["kind"], "ip");
    assert_eq!(
        certs[0]["matched"][0]["tags"],
        serde_json::json!(["net-team"])
    );
    let targets: Vec<String> = env
        .store
        .probe_targets()
        .unwrap()
        .into_iter()
        .map(|t| t.domain)
        .collect();
    assert_eq!(
        targets,
        ["203.0.113.9"],
        "only the watched address is queued"
    );

    // The address serves the certificate (the test resolver points it at 127.0.0.1).
    let served = Served {
        chain: vec![cert.der().clone(), pki.inter.der().clone()],
        key: pkcs8(&key),
    };
    let (addr, sni) = serve_recording_sni(served).await;
    let resolver = Arc::new(MapResolver::default());
    resolver
        .0
        .lock()
        .unwrap()
        .insert("203.0.113.9".into(), addr);
    let cfg = ScheduleConfig {
        options: ProbeOptions {
            roots: Arc::new(pki.roots()),
            resolver,
            timeouts: Timeouts {
                dns: Duration::from_secs(5),
                connect: Duration::from_secs(5),
                handshake: Duration::from_secs(10),
            },
            ..ProbeOptions::default()
        },
        ..ScheduleConfig::default()
    }
    .with_store(&env.store);
    let mut limiter = DomainLimiter::new(100);
    let now = ctwatch::store::unix_now() + 1;
    scheduler::probe_round(&env.store, &cfg, &mut limiter, now)
        .await
        .unwrap();
    let row = &env.store.probe_history("203.0.113.9", 443, 1).unwrap()[0];
    assert_eq!(row.status, Status::Ok, "the IP SAN covers the address");
    assert_eq!(row.seen_in_ct, Some(true));
    assert_eq!(*sni.lock().unwrap(), [None], "no SNI for an IP address");
}

#[test]
fn ip_items_parse_and_bad_ones_are_named() {
    use ctwatch::watchlist::Watchlist;
    let wl = Watchlist::parse_str(
        "w.txt",
        "ip:203.0.113.7/24\nip:2001:db8::1 @v6\nexample.com\n",
    )
    .unwrap();
    let _ = wl;
    let err = Watchlist::parse_str("w.txt", "ip:300.1.2.3\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("w.txt:1: invalid IP address or network in 'ip:300.1.2.3'"),
        "{err}"
    );
    assert!(
        err.contains("ip:203.0.113.0/24"),
        "the hint shows the syntax: {err}"
    );
    let err = Watchlist::parse_str("w.txt", "ip:10.0.0.0/8 issuers=letsencrypt\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not apply to ip items"), "{err}");
}
