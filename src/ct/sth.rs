//! RFC 6962 signed tree heads: the `get-sth` response and its TreeHeadSignature.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;

use crate::ct::merkle::Hash;
use crate::ct::sig::{LogKey, SigError};

/// A signed tree head as the log sent it (not yet verified).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedTreeHead {
    pub tree_size: u64,
    pub timestamp_ms: u64,
    pub root_hash: Hash,
    /// DigitallySigned bytes.
    pub signature: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SthError {
    #[error("get-sth response is not the expected JSON: {0}")]
    Json(String),
    #[error("get-sth field {field} is not valid base64: {message}")]
    Base64 {
        field: &'static str,
        message: String,
    },
    #[error("get-sth sha256_root_hash is {0} bytes, want 32")]
    RootLength(usize),
    #[error("tree head signature: {0}")]
    Signature(#[from] SigError),
}

/// Parse a `get-sth` body.
pub fn parse_get_sth(body: &[u8]) -> Result<SignedTreeHead, SthError> {
    #[derive(Deserialize)]
    struct Raw {
        tree_size: u64,
        timestamp: u64,
        sha256_root_hash: String,
        tree_head_signature: String,
    }
    let raw: Raw = serde_json::from_slice(body).map_err(|e| SthError::Json(e.to_string()))?;
    let b64 = |field: &'static str, v: &str| {
        B64.decode(v).map_err(|e| SthError::Base64 {
            field,
            message: e.to_string(),
        })
    };
    let root = b64("sha256_root_hash", &raw.sha256_root_hash)?;
    let root_hash: Hash = root
        .as_slice()
        .try_into()
        .map_err(|_| SthError::RootLength(root.len()))?;
    Ok(SignedTreeHead {
        tree_size: raw.tree_size,
        timestamp_ms: raw.timestamp,
        root_hash,
        signature: b64("tree_head_signature", &raw.tree_head_signature)?,
    })
}

/// The bytes a log signs: version v1 (0) | signature_type tree_hash (1) | timestamp u64 | tree_size u64 | root.
pub fn tree_head_signature_input(tree_size: u64, timestamp_ms: u64, root: &Hash) -> Vec<u8> {
    let mut m = Vec::with_capacity(50);
    m.push(0);
    m.push(1);
    m.extend_from_slice(&timestamp_ms.to_be_bytes());
    m.extend_from_slice(&tree_size.to_be_bytes());
    m.extend_from_slice(root);
    m
}

impl SignedTreeHead {
    /// Check the signature with the log's key.
    pub fn verify(&self, key: &LogKey) -> Result<(), SthError> {
        let msg = tree_head_signature_input(self.tree_size, self.timestamp_ms, &self.root_hash);
        Ok(key.verify_digitally_signed(&msg, &self.signature)?)
    }
}

/// Sign a tree head with an ECDSA P-256 key (test logs): the DigitallySigned bytes.
pub fn sign_tree_head(
    key: &ring::signature::EcdsaKeyPair,
    tree_size: u64,
    timestamp_ms: u64,
    root: &Hash,
) -> Vec<u8> {
    let msg = tree_head_signature_input(tree_size, timestamp_ms, root);
    let sig = key
        .sign(&ring::rand::SystemRandom::new(), &msg)
        .expect("ECDSA signing with a valid key");
    crate::ct::sig::digitally_signed(3, sig.as_ref())
}

/// Throw-away keys for test logs.
pub mod testkey {
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};

    /// DER prefix of a P-256 SubjectPublicKeyInfo, followed by the 65-byte uncompressed point.
    const P256_SPKI_PREFIX: [u8; 26] = [
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];

    /// A fresh P-256 key pair and its SPKI DER.
    pub fn test_p256_keypair() -> (EcdsaKeyPair, Vec<u8>) {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .expect("key generation");
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .expect("own key");
        let mut spki = P256_SPKI_PREFIX.to_vec();
        spki.extend_from_slice(key.public_key().as_ref());
        (key, spki)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> Vec<u8> {
        B64.decode(s).unwrap()
    }

    fn real_sths() -> Vec<(LogKey, SignedTreeHead, String)> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/sths/verified_sths.json"
        );
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        v["sths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let key = LogKey::from_spki_der(&b64(s["key"].as_str().unwrap())).unwrap();
                assert_eq!(key.log_id().to_vec(), b64(s["log_id"].as_str().unwrap()));
                let sth = parse_get_sth(s["sth"].to_string().as_bytes()).unwrap();
                (key, sth, s["log"].as_str().unwrap().to_string())
            })
            .collect()
    }

    #[test]
    fn all_real_sths_verify() {
        let sths = real_sths();
        assert_eq!(sths.len(), 15);
        for (key, sth, log) in &sths {
            sth.verify(key).unwrap_or_else(|e| panic!("{log}: {e}"));
        }
    }

    #[test]
    fn any_altered_field_fails() {
        for (key, sth, log) in real_sths() {
            let mut s = sth.clone();
            s.tree_size += 1;
            assert!(s.verify(&key).is_err(), "{log}: size");
            let mut s = sth.clone();
            s.timestamp_ms ^= 1;
            assert!(s.verify(&key).is_err(), "{log}: timestamp");
            let mut s = sth.clone();
            s.root_hash[7] ^= 0x40;
            assert!(s.verify(&key).is_err(), "{log}: root");
            let mut s = sth.clone();
            let n = s.signature.len();
            s.signature[n - 5] ^= 0x01;
            assert_eq!(
                s.verify(&key),
                Err(SthError::Signature(SigError::Invalid)),
                "{log}: signature"
            );
        }
    }

    #[test]
    fn wrong_key_and_placeholder_signature_fail() {
        let sths = real_sths();
        let (k0, _, _) = &sths[0];
        let (_, s1, _) = sths
            .iter()
            .find(|(k, _, _)| k.log_id() != k0.log_id())
            .unwrap();
        assert!(s1.verify(k0).is_err());
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/rfc6962/ctgo-scanner-four-entries/sth_UNSIGNED-placeholder.json"
        );
        let body = std::fs::read(path).unwrap();
        if let Ok(sth) = parse_get_sth(&body) {
            for (k, _, _) in &sths {
                assert!(sth.verify(k).is_err());
            }
        }
    }

    #[test]
    fn sign_and_verify_roundtrip_with_a_test_key() {
        let (kp, spki) = testkey::test_p256_keypair();
        let key = LogKey::from_spki_der(&spki).unwrap();
        let root = [9u8; 32];
        let sig = sign_tree_head(&kp, 1024, 1_700_000_000_000, &root);
        let sth = SignedTreeHead {
            tree_size: 1024,
            timestamp_ms: 1_700_000_000_000,
            root_hash: root,
            signature: sig,
        };
        sth.verify(&key).unwrap();
        let mut bad = sth.clone();
        bad.tree_size = 1023;
        assert!(bad.verify(&key).is_err());
    }

    #[test]
    fn malformed_responses_name_the_problem() {
        assert!(matches!(parse_get_sth(b"{}"), Err(SthError::Json(_))));
        let body = br#"{"tree_size":1,"timestamp":2,"sha256_root_hash":"AAAA","tree_head_signature":"BAMAAA=="}"#;
        assert_eq!(parse_get_sth(body), Err(SthError::RootLength(3)));
        let body =
            br#"{"tree_size":1,"timestamp":2,"sha256_root_hash":"!!","tree_head_signature":""}"#;
        assert!(matches!(
            parse_get_sth(body),
            Err(SthError::Base64 {
                field: "sha256_root_hash",
                ..
            })
        ));
    }
}

#[cfg(test)]
mod rsa_tests {
    use super::*;

    /// No real RSA-keyed log signed a head in the recorded data, so this uses a test RSA-2048 key
    /// (tests/fixtures/keys: a private key and its SPKI, made once with openssl).
    #[test]
    fn rsa_signed_tree_heads_verify() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keys/");
        let pkcs1 = std::fs::read(format!("{dir}test-rsa2048.der")).unwrap();
        let spki = std::fs::read(format!("{dir}test-rsa2048.spki")).unwrap();
        let kp = ring::signature::RsaKeyPair::from_der(&pkcs1)
            .or_else(|_| ring::signature::RsaKeyPair::from_pkcs8(&pkcs1))
            .map_err(|e| format!("{e:?}"))
            .unwrap();
        let key = LogKey::from_spki_der(&spki).unwrap();
        let root = [3u8; 32];
        let msg = tree_head_signature_input(77, 1234, &root);
        let mut sig = vec![0; kp.public().modulus_len()];
        kp.sign(
            &ring::signature::RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            &msg,
            &mut sig,
        )
        .unwrap();
        let sth = SignedTreeHead {
            tree_size: 77,
            timestamp_ms: 1234,
            root_hash: root,
            signature: crate::ct::sig::digitally_signed(1, &sig),
        };
        sth.verify(&key).unwrap();
        let mut bad = sth.clone();
        bad.root_hash[0] ^= 1;
        assert!(bad.verify(&key).is_err());
        // An RSA key refuses an ECDSA-labelled signature.
        let mut mislabeled = sth.clone();
        mislabeled.signature[1] = 3;
        assert!(matches!(
            mislabeled.verify(&key),
            Err(SthError::Signature(SigError::AlgorithmMismatch { .. }))
        ));
    }
}
