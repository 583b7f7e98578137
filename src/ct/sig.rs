//! Log public keys and TLS `DigitallySigned` signatures (RFC 5246 section 4.7), as used by RFC 6962 tree heads and
//! static-ct checkpoints. ECDSA P-256 and RSA PKCS#1 v1.5, both with SHA-256; verification by ring.

use ring::signature::{self, UnparsedPublicKey};
use sha2::{Digest, Sha256};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_RSA: &str = "1.2.840.113549.1.1.1";

/// Errors from key parsing and signature verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    #[error("public key is not a valid SubjectPublicKeyInfo: {0}")]
    BadSpki(String),
    #[error("unsupported public key algorithm {0} (ctwatch supports ECDSA P-256 and RSA)")]
    UnsupportedKey(String),
    #[error("DigitallySigned is {0} bytes, too short")]
    Truncated(usize),
    #[error("DigitallySigned length field says {declared} bytes but {actual} follow")]
    LengthMismatch { declared: usize, actual: usize },
    #[error("hash algorithm {0} is not SHA-256 (4)")]
    UnsupportedHash(u8),
    #[error("signature algorithm {got} does not match the key ({want})")]
    AlgorithmMismatch { got: u8, want: u8 },
    #[error("signature does not verify with the log's key")]
    Invalid,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    EcdsaP256,
    Rsa,
}

impl Kind {
    /// The TLS SignatureAlgorithm code.
    fn tls_code(self) -> u8 {
        match self {
            Kind::EcdsaP256 => 3,
            Kind::Rsa => 1,
        }
    }
}

/// A log's public key, from the DER SubjectPublicKeyInfo published in the log list.
#[derive(Clone)]
pub struct LogKey {
    spki: Vec<u8>,
    /// The raw key inside the SPKI bit string (EC point, or RSAPublicKey DER), as ring wants it.
    raw: Vec<u8>,
    kind: Kind,
    log_id: [u8; 32],
}

impl std::fmt::Debug for LogKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "LogKey({:?}, log_id {})",
            self.kind,
            hex::encode(self.log_id)
        )
    }
}

impl LogKey {
    /// Parse a DER SPKI. ECDSA keys must be on P-256; RSA keys must be 2048 to 8192 bits (checked at verify).
    pub fn from_spki_der(der: &[u8]) -> Result<Self, SigError> {
        let (rest, spki) =
            SubjectPublicKeyInfo::from_der(der).map_err(|e| SigError::BadSpki(e.to_string()))?;
        if !rest.is_empty() {
            return Err(SigError::BadSpki(format!("{} trailing bytes", rest.len())));
        }
        let alg = spki.algorithm.algorithm.to_id_string();
        let kind = match alg.as_str() {
            OID_EC_PUBLIC_KEY => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .map(|o| o.to_id_string())
                    .unwrap_or_default();
                if curve != OID_P256 {
                    return Err(SigError::UnsupportedKey(format!("ECDSA on curve {curve}")));
                }
                Kind::EcdsaP256
            }
            OID_RSA => Kind::Rsa,
            other => return Err(SigError::UnsupportedKey(other.to_string())),
        };
        Ok(LogKey {
            spki: der.to_vec(),
            raw: spki.subject_public_key.data.to_vec(),
            kind,
            log_id: Sha256::digest(der).into(),
        })
    }

    /// The log ID: SHA-256 of the SPKI DER.
    pub fn log_id(&self) -> [u8; 32] {
        self.log_id
    }

    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// Verify a DigitallySigned struct (hash u8 | signature algorithm u8 | u16 length | signature) over `msg`.
    pub fn verify_digitally_signed(
        &self,
        msg: &[u8],
        digitally_signed: &[u8],
    ) -> Result<(), SigError> {
        if digitally_signed.len() < 4 {
            return Err(SigError::Truncated(digitally_signed.len()));
        }
        let (hash, alg) = (digitally_signed[0], digitally_signed[1]);
        let declared = u16::from_be_bytes([digitally_signed[2], digitally_signed[3]]) as usize;
        let sig = &digitally_signed[4..];
        if declared != sig.len() {
            return Err(SigError::LengthMismatch {
                declared,
                actual: sig.len(),
            });
        }
        if hash != 4 {
            return Err(SigError::UnsupportedHash(hash));
        }
        if alg != self.kind.tls_code() {
            return Err(SigError::AlgorithmMismatch {
                got: alg,
                want: self.kind.tls_code(),
            });
        }
        let algorithm: &dyn signature::VerificationAlgorithm = match self.kind {
            Kind::EcdsaP256 => &signature::ECDSA_P256_SHA256_ASN1,
            Kind::Rsa => &signature::RSA_PKCS1_2048_8192_SHA256,
        };
        UnparsedPublicKey::new(algorithm, &self.raw)
            .verify(msg, sig)
            .map_err(|_| SigError::Invalid)
    }
}

/// Encode a DigitallySigned struct.
pub fn digitally_signed(sig_alg: u8, signature: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + signature.len());
    out.push(4);
    out.push(sig_alg);
    out.extend_from_slice(&(signature.len() as u16).to_be_bytes());
    out.extend_from_slice(signature);
    out
}
