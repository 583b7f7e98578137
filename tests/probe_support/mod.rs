//! Test PKI and TLS servers for the probe: a root CA + intermediate made by rcgen, and servers
//! on 127.0.0.1 that present a given chain, close at once, or never answer.
//! Shared by tests/probe.rs and examples/bench_probe.rs.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use ctwatch::probe::TrustRoots;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

/// A root CA and an intermediate under it, like a public CA.
pub struct Pki {
    pub root: CertifiedIssuer<'static, KeyPair>,
    pub inter: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate chain and its key, ready to serve.
pub struct Served {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

pub fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(365);
    p.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(3650);
    p
}

/// notAfter is `to_days` and a half from now, so whole days left are exactly `to_days` whatever
/// second the probe lands in.
pub fn leaf_params(names: &[&str], from_days: i64, to_days: i64) -> CertificateParams {
    let now = time::OffsetDateTime::now_utc();
    let mut p =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, names[0]);
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.not_before = now + time::Duration::days(from_days);
    p.not_after = now + time::Duration::days(to_days) + time::Duration::hours(12);
    p
}

impl Pki {
    pub fn new() -> Self {
        let root = CertifiedIssuer::self_signed(
            ca_params("Probe Test Root"),
            KeyPair::generate().unwrap(),
        )
        .unwrap();
        let inter = CertifiedIssuer::signed_by(
            ca_params("Probe Test Intermediate"),
            KeyPair::generate().unwrap(),
            &root,
        )
        .unwrap();
        Pki { root, inter }
    }

    /// Leaf valid from `from_days` to `to_days` relative to now, served with its intermediate.
    pub fn leaf(&self, names: &[&str], from_days: i64, to_days: i64) -> Served {
        let key = KeyPair::generate().unwrap();
        let cert = leaf_params(names, from_days, to_days)
            .signed_by(&key, &self.inter)
            .unwrap();
        Served {
            chain: vec![cert.der().clone(), self.inter.der().clone()],
            key: pkcs8(&key),
        }
    }

    pub fn roots(&self) -> TrustRoots {
        let mut roots = TrustRoots::empty();
        roots.add_der(self.root.der()).unwrap();
        roots
    }
}

pub fn self_signed(names: &[&str]) -> Served {
    let key = KeyPair::generate().unwrap();
    let cert = leaf_params(names, -10, 80).self_signed(&key).unwrap();
    Served {
        chain: vec![cert.der().clone()],
        key: pkcs8(&key),
    }
}

pub fn pkcs8(key: &KeyPair) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()))
}

pub fn sha256_hex(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// A TLS server on `ip`:random port presenting `served` to every client.
pub async fn serve_tls(ip: &str, served: Served) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(served.chain, served.key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = acceptor.accept(tcp).await;
            });
        }
    });
    addr
}

/// Accepts TCP and closes at once, before any TLS.
pub async fn serve_closing() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            drop(tcp);
        }
    });
    addr
}

/// Accepts TCP and never says a word.
pub async fn serve_silent() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    addr
}

/// A port nobody listens on.
pub async fn dead_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}
