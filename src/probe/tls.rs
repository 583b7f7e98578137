//! TCP connect + TLS handshake to one address, keeping whatever chain the server sends.
//!
//! The client's certificate verifier records the chain and accepts it: judging it is the job of
//! [`super::chain`], after the handshake, so an expired or untrusted chain is still captured and
//! reported with all its details (blackbox_exporter's well-known gap). The handshake signatures
//! are still checked, so the peer did prove it holds the leaf's key. rustls speaks TLS 1.2 and
//! 1.3 only: a server limited to TLS 1.0/1.1 ends as a handshake failure that says so.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::Resumption;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::chain::ServedChain;

/// How one connection attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsOutcome {
    /// Handshake completed; the chain is as sent.
    Served {
        chain: ServedChain,
        /// "TLSv1.3" or "TLSv1.2".
        tls_version: String,
    },
    /// No TCP connection (refused, no route, timeout).
    Unreachable {
        error: String,
        /// The address family has no route from this machine (typically IPv6 on an
        /// IPv4-only host): says nothing about the server.
        no_route: bool,
    },
    /// TCP connected but TLS did not complete; `chain` is set if the server got as far as
    /// sending its certificates.
    HandshakeFailed {
        error: String,
        chain: Option<ServedChain>,
    },
}

/// A TLS client for probes; cheap to share, one per probe run.
#[derive(Debug, Clone)]
pub struct ProbeClient {
    base: ClientConfig,
    provider: Arc<CryptoProvider>,
}

impl Default for ProbeClient {
    fn default() -> Self {
        Self::new()
    }
}

impl ProbeClient {
    pub fn new() -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let recorder = Arc::new(ChainRecorder::new(provider.clone()));
        let mut base = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(rustls::ALL_VERSIONS)
            .expect("the ring provider supports TLS 1.2 and 1.3")
            .dangerous()
            .with_custom_certificate_verifier(recorder)
            .with_no_client_auth();
        // Every probe must see a full handshake with the full chain.
        base.resumption = Resumption::disabled();
        ProbeClient { base, provider }
    }

    /// Connects to `addr` and handshakes with SNI `name`, each phase under its own timeout.
    pub async fn fetch_chain(
        &self,
        addr: SocketAddr,
        name: ServerName<'static>,
        connect_timeout: Duration,
        handshake_timeout: Duration,
    ) -> TlsOutcome {
        let tcp = match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
            Err(_) => {
                return TlsOutcome::Unreachable {
                    error: format!("connect timed out after {}", secs(connect_timeout)),
                    no_route: false,
                };
            }
            Ok(Err(e)) => {
                return TlsOutcome::Unreachable {
                    no_route: addr.is_ipv6() && is_no_route(&e),
                    error: format!("connect failed: {e}"),
                };
            }
            Ok(Ok(tcp)) => tcp,
        };
        let _ = tcp.set_nodelay(true);
        // A fresh verifier per connection: it is where this connection's chain lands.
        let recorder = Arc::new(ChainRecorder::new(self.provider.clone()));
        let mut config = self.base.clone();
        config
            .dangerous()
            .set_certificate_verifier(recorder.clone());
        let connector = TlsConnector::from(Arc::new(config));
        let handshake = tokio::time::timeout(handshake_timeout, connector.connect(name, tcp)).await;
        let chain = recorder.take();
        match (handshake, chain) {
            (Ok(Ok(tls)), Some(chain)) => {
                let version = tls.get_ref().1.protocol_version();
                TlsOutcome::Served {
                    chain,
                    tls_version: version.map_or("unknown".into(), version_name),
                }
            }
            (Ok(Ok(_)), None) => TlsOutcome::HandshakeFailed {
                error: "handshake completed without a server certificate".into(),
                chain: None,
            },
            (Ok(Err(e)), chain) => TlsOutcome::HandshakeFailed {
                error: handshake_error(&e),
                chain,
            },
            (Err(_), chain) => TlsOutcome::HandshakeFailed {
                error: format!("TLS handshake timed out after {}", secs(handshake_timeout)),
                chain,
            },
        }
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn version_name(v: rustls::ProtocolVersion) -> String {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".into(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".into(),
        other => format!("{other:?}"),
    }
}

/// The local machine cannot reach this address family at all.
fn is_no_route(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        NetworkUnreachable | AddrNotAvailable | Unsupported
    )
}

/// Handshake error text, with a hint for the cases operators ask about.
fn handshake_error(e: &std::io::Error) -> String {
    let tls = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls {
        Some(
            rustls::Error::AlertReceived(rustls::AlertDescription::ProtocolVersion)
            | rustls::Error::PeerIncompatible(_),
        ) => format!(
            "TLS handshake failed: {e} (the server may only speak TLS 1.0/1.1 or unsupported \
             ciphers; this probe speaks TLS 1.2 and 1.3)"
        ),
        Some(_) => format!("TLS handshake failed: {e}"),
        None if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            "TLS handshake failed: the server closed the connection".into()
        }
        None => format!("TLS handshake failed: {e}"),
    }
}

/// Records the presented chain and accepts it; see the module comment for why.
#[derive(Debug)]
struct ChainRecorder {
    provider: Arc<CryptoProvider>,
    seen: Mutex<Option<ServedChain>>,
}

impl ChainRecorder {
    fn new(provider: Arc<CryptoProvider>) -> Self {
        ChainRecorder {
            provider,
            seen: Mutex::new(None),
        }
    }

    fn take(&self) -> Option<ServedChain> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl ServerCertVerifier for ChainRecorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain = ServedChain {
            end_entity: end_entity.clone().into_owned(),
            intermediates: intermediates
                .iter()
                .map(|c| c.clone().into_owned())
                .collect(),
            ocsp_response: ocsp_response.to_vec(),
        };
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(chain);
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
