//! What a served chain means: parsed leaf details, trust and name checks (pure: bytes in,
//! facts out).
//!
//! The handshake accepted whatever the server sent ([`super::tls`]); here the chain is judged
//! with rustls-webpki, trust and name separately, so an expired self-signed certificate for the
//! wrong name reports all three problems instead of the first one webpki trips over.

use rustls::pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use sha2::{Digest, Sha256};
use std::time::Duration;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use super::classify::{ChainFacts, Trust};

/// Computes a certificate's CT identity from its TBSCertificate DER (SHA-256 of the TBS with the
/// SCT-list extension removed). Supplied by the caller (`cert::tbs_identity` in the daemon).
pub type TbsIdentityFn = fn(&[u8]) -> Option<[u8; 32]>;

/// The certificates a server presented, exactly as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedChain {
    pub end_entity: CertificateDer<'static>,
    pub intermediates: Vec<CertificateDer<'static>>,
    /// Stapled OCSP response, empty when none was stapled.
    pub ocsp_response: Vec<u8>,
}

/// Human-facing fields of the served leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafDetails {
    pub subject: String,
    pub issuer: String,
    /// DNS names and IP addresses from the subjectAltName extension, in certificate order.
    pub sans: Vec<String>,
    pub serial: String,
    pub not_before: i64,
    pub not_after: i64,
    pub cert_sha256: [u8; 32],
    pub tbs_sha256: Option<[u8; 32]>,
    pub self_signed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("served certificate ({len} bytes) is not valid X.509: {reason}")]
    UnparsableLeaf { len: usize, reason: String },
}

/// Trust anchors a probe validates against.
#[derive(Debug, Clone)]
pub struct TrustRoots {
    anchors: Vec<TrustAnchor<'static>>,
}

#[derive(Debug, thiserror::Error)]
pub enum RootsError {
    #[error("reading CA file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("CA file {path} holds no certificate")]
    Empty { path: String },
    #[error("certificate #{index} in {path} is not a usable trust anchor: {reason}")]
    BadAnchor {
        path: String,
        index: usize,
        reason: String,
    },
}

impl TrustRoots {
    /// The Mozilla root program (webpki-roots), what browsers would trust.
    pub fn webpki() -> Self {
        TrustRoots {
            anchors: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        }
    }

    /// Only the given anchors (a private CA, or a test CA).
    pub fn empty() -> Self {
        TrustRoots {
            anchors: Vec::new(),
        }
    }

    pub fn add_der(&mut self, der: &CertificateDer<'_>) -> Result<(), webpki::Error> {
        self.anchors
            .push(webpki::anchor_from_trusted_cert(der)?.to_owned());
        Ok(())
    }

    /// Adds every certificate of a PEM file.
    pub fn add_pem_file(&mut self, path: &std::path::Path) -> Result<usize, RootsError> {
        use rustls::pki_types::pem::PemObject;
        let shown = path.display().to_string();
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
            .map_err(|e| RootsError::Read {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(RootsError::Empty { path: shown });
        }
        for (index, der) in certs.iter().enumerate() {
            self.add_der(der).map_err(|e| RootsError::BadAnchor {
                path: shown.clone(),
                index,
                reason: e.to_string(),
            })?;
        }
        Ok(certs.len())
    }

    pub fn anchors(&self) -> &[TrustAnchor<'static>] {
        &self.anchors
    }

    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }
}

/// Parses the leaf for display, CT lookup and dates.
pub fn leaf_details(
    der: &[u8],
    tbs_identity: Option<TbsIdentityFn>,
) -> Result<LeafDetails, ChainError> {
    let unparsable = |reason: String| ChainError::UnparsableLeaf {
        len: der.len(),
        reason,
    };
    let (rest, cert) = X509Certificate::from_der(der).map_err(|e| unparsable(e.to_string()))?;
    if !rest.is_empty() {
        return Err(unparsable(format!("{} trailing bytes", rest.len())));
    }
    let tbs = &cert.tbs_certificate;
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(d) => sans.push(d.to_string()),
                GeneralName::IPAddress(ip) => sans.push(ip_to_string(ip)),
                _ => {}
            }
        }
    }
    Ok(LeafDetails {
        subject: tbs.subject.to_string(),
        issuer: tbs.issuer.to_string(),
        sans,
        serial: hex::encode(tbs.raw_serial()),
        not_before: tbs.validity.not_before.timestamp(),
        not_after: tbs.validity.not_after.timestamp(),
        cert_sha256: Sha256::digest(der).into(),
        tbs_sha256: tbs_identity.and_then(|f| f(tbs.as_ref())),
        self_signed: tbs.subject.as_raw() == tbs.issuer.as_raw(),
    })
}

fn ip_to_string(raw: &[u8]) -> String {
    match raw.len() {
        4 => std::net::Ipv4Addr::from(<[u8; 4]>::try_from(raw).unwrap()).to_string(),
        16 => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(raw).unwrap()).to_string(),
        _ => hex::encode(raw),
    }
}

/// Judges trust and name of a served chain.
///
/// The path is verified at `now` clamped into the leaf's validity window: the classifier reports
/// the leaf's own dates, and trust then means "reaches an anchor" (an expired or not yet valid
/// intermediate still makes it untrusted).
pub fn chain_facts(
    chain: &ServedChain,
    leaf: &LeafDetails,
    name: &ServerName<'_>,
    roots: &TrustRoots,
    now: i64,
) -> ChainFacts {
    let ee = match webpki::EndEntityCert::try_from(&chain.end_entity) {
        Ok(ee) => ee,
        Err(e) => {
            return ChainFacts {
                not_before: leaf.not_before,
                not_after: leaf.not_after,
                trust: Trust::Untrusted {
                    reason: format!("certificate rejected by webpki: {e}"),
                },
                // Unknown rather than wrong: do not add a mismatch on top.
                name_matches: true,
            };
        }
    };
    let at = now.clamp(leaf.not_before, leaf.not_after).max(0);
    let algs = rustls::crypto::ring::default_provider()
        .signature_verification_algorithms
        .all;
    let verified = ee.verify_for_usage(
        algs,
        roots.anchors(),
        &chain.intermediates,
        UnixTime::since_unix_epoch(Duration::from_secs(at as u64)),
        webpki::KeyUsage::server_auth(),
        None,
        None,
    );
    let trust = match verified {
        Ok(_) => Trust::Trusted,
        Err(e) => Trust::Untrusted {
            reason: untrusted_reason(&e, leaf, chain.intermediates.len()),
        },
    };
    ChainFacts {
        not_before: leaf.not_before,
        not_after: leaf.not_after,
        trust,
        name_matches: ee.verify_is_valid_for_subject_name(name).is_ok(),
    }
}

/// Says what most likely went wrong, in the words an operator searches for.
fn untrusted_reason(e: &webpki::Error, leaf: &LeafDetails, intermediates: usize) -> String {
    match e {
        _ if leaf.self_signed => format!("self-signed certificate ({e})"),
        webpki::Error::UnknownIssuer if intermediates == 0 => {
            "unknown issuer: no intermediate was served and the issuer is not a trusted root \
             (missing intermediate or private CA)"
                .to_string()
        }
        webpki::Error::UnknownIssuer => {
            format!(
                "unknown issuer: the {intermediates} served intermediate(s) do not lead to a trusted root"
            )
        }
        webpki::Error::CertExpired { .. } => format!("a chain certificate has expired ({e})"),
        webpki::Error::CertNotValidYet { .. } => {
            format!("a chain certificate is not yet valid ({e})")
        }
        _ => format!("chain rejected: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/probe/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn pem_chain(name: &str) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_slice_iter(&fixture(name))
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn date(s: &str) -> i64 {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .unwrap()
            .unix_timestamp()
    }

    #[test]
    fn real_cloudflare_dns_leaf_details() {
        let der = fixture("cloudflare-dns_ee.der");
        let d = leaf_details(&der, None).unwrap();
        assert_eq!(
            d.sans,
            [
                "cloudflare-dns.com",
                "*.cloudflare-dns.com",
                "one.one.one.one",
                "1.1.1.1",
                "1.0.0.1",
                "162.159.36.1",
                "162.159.46.1",
                "2606:4700:4700::1111",
                "2606:4700:4700::1001",
                "2606:4700:4700::64",
                "2606:4700:4700::6400",
            ]
        );
        assert!(d.subject.contains("CN=cloudflare-dns.com"), "{}", d.subject);
        assert!(
            d.issuer.contains("DigiCert TLS Hybrid ECC SHA384 2020 CA1"),
            "{}",
            d.issuer
        );
        assert!(!d.self_signed);
        let want: [u8; 32] = Sha256::digest(&der).into();
        assert_eq!(d.cert_sha256, want);
        assert_eq!(d.tbs_sha256, None);
    }

    #[test]
    fn tbs_identity_gets_the_tbs_bytes() {
        fn first_32(tbs: &[u8]) -> Option<[u8; 32]> {
            // TBSCertificate is a SEQUENCE: first byte 0x30.
            (tbs[0] == 0x30).then(|| Sha256::digest(tbs).into())
        }
        let der = fixture("cloudflare-dns_ee.der");
        let d = leaf_details(&der, Some(first_32)).unwrap();
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        let want: [u8; 32] = Sha256::digest(cert.tbs_certificate.as_ref()).into();
        assert_eq!(d.tbs_sha256, Some(want));
        assert_ne!(d.tbs_sha256, Some(d.cert_sha256));
    }

    #[test]
    fn real_chain_trusted_by_mozilla_roots_within_its_validity() {
        let certs = pem_chain("cloudflaressl_we1_chain.pem");
        let chain = ServedChain {
            end_entity: certs[0].clone(),
            intermediates: certs[1..].to_vec(),
            ocsp_response: Vec::new(),
        };
        let leaf = leaf_details(&certs[0], None).unwrap();
        assert_eq!(
            leaf.sans,
            ["26d54cff.sni.cloudflaressl.com", "cloudflare.com"]
        );
        let roots = TrustRoots::webpki();
        let name = ServerName::try_from("cloudflare.com").unwrap();
        // Probed long after expiry: trust is still judged inside the leaf's window.
        let facts = chain_facts(&chain, &leaf, &name, &roots, date("2030-01-01T00:00:00Z"));
        assert_eq!(facts.trust, Trust::Trusted);
        assert!(facts.name_matches);
        assert!(facts.not_after < date("2030-01-01T00:00:00Z"));
        let other = ServerName::try_from("example.com").unwrap();
        let facts = chain_facts(&chain, &leaf, &other, &roots, leaf.not_before + 86_400);
        assert!(!facts.name_matches);
    }

    #[test]
    fn real_leaf_without_its_intermediate_is_untrusted() {
        let certs = pem_chain("cloudflaressl_we1_chain.pem");
        let chain = ServedChain {
            end_entity: certs[0].clone(),
            intermediates: Vec::new(),
            ocsp_response: Vec::new(),
        };
        let leaf = leaf_details(&certs[0], None).unwrap();
        let name = ServerName::try_from("cloudflare.com").unwrap();
        let facts = chain_facts(&chain, &leaf, &name, &TrustRoots::webpki(), leaf.not_before);
        match facts.trust {
            Trust::Untrusted { reason } => {
                assert!(reason.contains("missing intermediate"), "{reason}")
            }
            Trust::Trusted => panic!("a leaf without its intermediate must not be trusted"),
        }
    }

    #[test]
    fn garbage_is_an_error_with_its_length() {
        match leaf_details(&[0x30, 0x03, 0x02, 0x01], None) {
            Err(ChainError::UnparsableLeaf { len, .. }) => assert_eq!(len, 4),
            other => panic!("unexpected {other:?}"),
        }
    }
}
