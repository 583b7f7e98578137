//! Checking what a log serves outside the Merkle tree: the pre_certificate and the issuer chain.
//!
//! Pure. The tree proves the leaf (an x509 certificate, or a precertificate's TBSCertificate plus the issuing CA's
//! key hash); everything else a log serves next to it (RFC 6962 `extra_data`, a TileLeaf's `pre_certificate` and
//! chain fingerprints, `issuer/` files) is a claim. [`check`] turns those claims into facts or refuses them:
//!
//! ```text
//!  x509:    chain[0].subject == cert.issuer  and  chain[0]'s key verifies cert's signature
//!           => issuer proven (its SPKI hash), cert_sha256 = SHA-256(cert) (that one is in the leaf anyway)
//!  precert: pre_certificate's TBS minus the poison == the leaf's TBS (issuer and authority key id aside when
//!             chain[0] is a precertificate signing certificate, EKU 1.3.6.1.4.1.11129.2.4.4: the log rewrote them,
//!             RFC 6962 section 3.2; the leaf's issuer must then be the signing certificate's issuer)
//!           chain[0].subject == pre_certificate.issuer  and  chain[0]'s key verifies pre_certificate's signature
//!           chain[0] is a precertificate signing certificate?
//!             then the CA is chain[1], proven over chain[0] the same way; else the CA is chain[0]
//!           SHA-256(CA SPKI) == the leaf's issuer_key_hash
//!           => issuer proven, cert_sha256 = SHA-256(pre_certificate)
//! ```
//! Signatures are verified with rustls-webpki's algorithms (ring underneath), matched by the exact
//! AlgorithmIdentifier bytes of the signature and of the issuer's key, as webpki itself does, plus ring's legacy
//! RSA/SHA-1 for older chains.
//!
//! A check that fails is not an error of the entry: the names, validity and identity come from the leaf and are
//! reported as usual, with the reason in `chain_error` (certspotter's `CHAIN_ERROR`), and an `issuers=` policy
//! is never satisfied by an issuer that is not proven.

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::ct::der::{self, DerError};
use crate::ct::leaf::{EntryType, LogEntry};

/// DER content of OID 1.3.6.1.4.1.11129.2.4.3, the CT precertificate poison extension.
const OID_CT_POISON: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x03];
/// DER content of OID 1.3.6.1.4.1.11129.2.4.2, the embedded SCT list extension.
const OID_CT_SCT_LIST: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x02];
/// DER content of OID 1.3.6.1.4.1.11129.2.4.4, the precertificate signing certificate EKU.
const OID_PRECERT_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x04];
/// DER content of OID 2.5.29.37, extendedKeyUsage.
const OID_EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
/// DER content of OID 2.5.29.35, authorityKeyIdentifier.
const OID_AUTHORITY_KEY_ID: &[u8] = &[0x55, 0x1d, 0x23];
const TAG_BIT_STRING: u8 = 0x03;
/// AlgorithmIdentifier contents: sha1WithRSAEncryption (NULL parameters) and rsaEncryption (NULL parameters).
const ALG_SHA1_WITH_RSA: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05, 0x05, 0x00,
];
const ALG_RSA_ENCRYPTION: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];

/// What the served chain proves about an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proof {
    /// SHA-256 of the SubjectPublicKeyInfo of the CA proven to have issued the certificate (for a precert signed
    /// by a precertificate signing certificate: of the CA behind it).
    pub issuer_spki_sha256: [u8; 32],
    /// SHA-256 of the certificate DER: the leaf's certificate, or the served pre_certificate proven to be the
    /// leaf's precertificate as the CA signed it.
    pub cert_sha256: [u8; 32],
}

/// Why the served chain proves nothing. Positions are chain positions (0 = the issuer the log names first).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChainError {
    #[error("unreadable: {0}")]
    Unreadable(String),
    #[error("no pre_certificate served")]
    NoPreCertificate,
    #[error("no issuer certificate served")]
    NoIssuer,
    #[error("chain[0] is a precertificate signing certificate but no CA certificate follows it")]
    NoCaAfterPrecertSigner,
    #[error("{what}: {reason}")]
    Malformed { what: String, reason: String },
    #[error("chain[{position}] subject is not the issuer named by {signed}")]
    NameMismatch {
        position: usize,
        signed: &'static str,
    },
    #[error("chain[{position}] key does not verify the signature of {signed}")]
    BadSignature {
        position: usize,
        signed: &'static str,
    },
    #[error(
        "signature of {signed}: algorithm {algorithm} with the key of chain[{position}] is not supported"
    )]
    UnsupportedAlgorithm {
        position: usize,
        signed: &'static str,
        algorithm: String,
    },
    #[error("the served pre_certificate is not the precertificate in the leaf")]
    PrecertMismatch,
    #[error("the leaf's issuer_key_hash is not the key of the proven CA (chain[{position}])")]
    KeyHashMismatch { position: usize },
}

/// Check the unverified parts of `entry` (see the module doc). What could be read is used even when a later
/// part could not (a tiled log that does not serve chain[1] can still prove chain[0]); when the proof fails and
/// part of the served data was unreadable, that is the reason given.
pub fn check(entry: &LogEntry) -> Result<Proof, ChainError> {
    prove(entry).map_err(|e| match &entry.chain_error {
        Some(unreadable) => ChainError::Unreadable(unreadable.clone()),
        None => e,
    })
}

fn prove(entry: &LogEntry) -> Result<Proof, ChainError> {
    let chain: Vec<Cert<'_>> = entry
        .chain
        .iter()
        .enumerate()
        .map(|(i, der)| Cert::parse(der, &format!("chain[{i}]")))
        .collect::<Result<_, _>>()?;
    let issuer = chain.first().ok_or(ChainError::NoIssuer)?;
    match entry.entry_type {
        EntryType::X509 => {
            let cert = Cert::parse(&entry.signed_entry, "certificate")?;
            issued_by(&cert, "the certificate", issuer, 0)?;
            Ok(Proof {
                issuer_spki_sha256: sha256(issuer.spki),
                cert_sha256: sha256(cert.der),
            })
        }
        EntryType::Precert => {
            let der = entry
                .pre_certificate
                .as_deref()
                .ok_or(ChainError::NoPreCertificate)?;
            let pre = Cert::parse(der, "pre_certificate")?;
            let signer_is_precert_signer = issuer.is_precert_signer()?;
            let rewritten_issuer = signer_is_precert_signer.then_some(issuer.tbs.issuer);
            precert_matches_leaf(&pre, &entry.signed_entry, rewritten_issuer)?;
            issued_by(&pre, "the pre_certificate", issuer, 0)?;
            let (ca, position) = if signer_is_precert_signer {
                let ca = chain.get(1).ok_or(ChainError::NoCaAfterPrecertSigner)?;
                issued_by(issuer, "chain[0]", ca, 1)?;
                (ca, 1)
            } else {
                (issuer, 0)
            };
            let issuer_spki_sha256 = sha256(ca.spki);
            if entry.issuer_key_hash != Some(issuer_spki_sha256) {
                return Err(ChainError::KeyHashMismatch { position });
            }
            Ok(Proof {
                issuer_spki_sha256,
                cert_sha256: sha256(der),
            })
        }
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn malformed(what: &str) -> impl FnOnce(DerError) -> ChainError + '_ {
    move |e| ChainError::Malformed {
        what: what.to_string(),
        reason: e.to_string(),
    }
}

fn malformed_msg(what: &str, reason: &str) -> ChainError {
    ChainError::Malformed {
        what: what.to_string(),
        reason: reason.to_string(),
    }
}

/// The raw fields of a TBSCertificate a chain check needs.
struct Tbs<'a> {
    /// Every top-level field, in order.
    fields: Vec<der::Tlv<'a>>,
    /// Index of `issuer` in `fields`.
    issuer_at: usize,
    issuer: &'a [u8],
    subject: &'a [u8],
    /// The extensions (`[3]` content, each an `Extension` SEQUENCE); empty when absent.
    extensions: Vec<der::Tlv<'a>>,
}

impl<'a> Tbs<'a> {
    /// `TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber, signature, issuer, validity, subject,
    /// subjectPublicKeyInfo, [1] issuerUniqueID OPTIONAL, [2] subjectUniqueID OPTIONAL, [3] extensions OPTIONAL }`
    fn parse(raw: &'a [u8], what: &str) -> Result<Tbs<'a>, ChainError> {
        let (tbs, rest) = der::read_tlv(raw).map_err(malformed(what))?;
        if tbs.tag != der::TAG_SEQUENCE || !rest.is_empty() {
            return Err(malformed_msg(what, "TBSCertificate is not one SEQUENCE"));
        }
        let fields = der::children(tbs.content).map_err(malformed(what))?;
        let first = usize::from(fields.first().map(|f| f.tag) == Some(der::context_constructed(0)));
        let issuer_at = first + 2;
        if fields.len() < first + 6 {
            return Err(malformed_msg(what, "TBSCertificate has too few fields"));
        }
        let mut extensions = Vec::new();
        if let Some(ext) = fields[first + 6..]
            .iter()
            .find(|f| f.tag == der::context_constructed(3))
        {
            let (list, _) = der::read_tlv(ext.content).map_err(malformed(what))?;
            extensions = der::children(list.content).map_err(malformed(what))?;
        }
        Ok(Tbs {
            issuer: fields[issuer_at].raw,
            subject: fields[issuer_at + 2].raw,
            fields,
            issuer_at,
            extensions,
        })
    }

    /// The extension with OID content `oid`: its extnValue content.
    fn extension(&self, oid: &[u8]) -> Result<Option<&'a [u8]>, ChainError> {
        for ext in &self.extensions {
            if extension_oid(ext)? == oid {
                let parts = der::children(ext.content).map_err(malformed("Extension"))?;
                let value = parts
                    .last()
                    .filter(|v| v.tag == der::TAG_OCTET_STRING)
                    .ok_or_else(|| malformed_msg("Extension", "no extnValue"))?;
                return Ok(Some(value.content));
            }
        }
        Ok(None)
    }

    /// The fields as raw slices, with the CT poison and SCT list extensions left out, and — for a precert whose
    /// issuer was rewritten by the log — the issuer and the authority key identifier too. Extension elements
    /// follow a `[3]` marker that no DER element can equal, so a field cannot pose as an extension.
    fn comparable(&self, rewritten: bool) -> Result<Vec<&'a [u8]>, ChainError> {
        let mut out = Vec::with_capacity(self.fields.len() + self.extensions.len());
        for (i, field) in self.fields.iter().enumerate() {
            if field.tag == der::context_constructed(3) {
                continue;
            }
            if !(rewritten && i == self.issuer_at) {
                out.push(field.raw);
            }
        }
        out.push(b"[3]");
        for ext in &self.extensions {
            let oid = extension_oid(ext)?;
            let skip = oid == OID_CT_POISON
                || oid == OID_CT_SCT_LIST
                || (rewritten && oid == OID_AUTHORITY_KEY_ID);
            if !skip {
                out.push(ext.raw);
            }
        }
        Ok(out)
    }
}

fn extension_oid<'a>(ext: &der::Tlv<'a>) -> Result<&'a [u8], ChainError> {
    let (oid, _) = der::read_tlv(ext.content).map_err(malformed("Extension"))?;
    if ext.tag != der::TAG_SEQUENCE || oid.tag != der::TAG_OID {
        return Err(malformed_msg("Extension", "not SEQUENCE { OID, ... }"));
    }
    Ok(oid.content)
}

/// A certificate split into what signature checks need.
struct Cert<'a> {
    der: &'a [u8],
    tbs_raw: &'a [u8],
    tbs: Tbs<'a>,
    /// `signatureAlgorithm` content (what webpki's `signature_alg_id` is compared with).
    signature_alg: &'a [u8],
    signature: &'a [u8],
    /// The whole SubjectPublicKeyInfo element.
    spki: &'a [u8],
    /// Its `algorithm` content (compared with `public_key_alg_id`) and its key bits.
    spki_alg: &'a [u8],
    spki_key: &'a [u8],
}

impl<'a> Cert<'a> {
    /// `Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }`
    fn parse(der: &'a [u8], what: &str) -> Result<Cert<'a>, ChainError> {
        let (cert, rest) = der::read_tlv(der).map_err(malformed(what))?;
        if cert.tag != der::TAG_SEQUENCE || !rest.is_empty() {
            return Err(malformed_msg(what, "not one SEQUENCE"));
        }
        let parts = der::children(cert.content).map_err(malformed(what))?;
        let [tbs, alg, sig] = parts.as_slice() else {
            return Err(malformed_msg(what, "Certificate does not have 3 fields"));
        };
        if alg.tag != der::TAG_SEQUENCE || sig.tag != TAG_BIT_STRING {
            return Err(malformed_msg(
                what,
                "bad signatureAlgorithm or signatureValue",
            ));
        }
        let parsed = Tbs::parse(tbs.raw, what)?;
        let spki = parsed.fields[parsed.issuer_at + 3];
        let spki_parts = der::children(spki.content).map_err(malformed(what))?;
        let [key_alg, key] = spki_parts.as_slice() else {
            return Err(malformed_msg(
                what,
                "SubjectPublicKeyInfo does not have 2 fields",
            ));
        };
        if spki.tag != der::TAG_SEQUENCE || key_alg.tag != der::TAG_SEQUENCE {
            return Err(malformed_msg(what, "bad SubjectPublicKeyInfo"));
        }
        Ok(Cert {
            der,
            tbs_raw: tbs.raw,
            tbs: parsed,
            signature_alg: alg.content,
            signature: bit_string(sig, what)?,
            spki: spki.raw,
            spki_alg: key_alg.content,
            spki_key: bit_string(key, what)?,
        })
    }

    /// Does its extendedKeyUsage list the precertificate signing purpose?
    fn is_precert_signer(&self) -> Result<bool, ChainError> {
        let Some(value) = self.tbs.extension(OID_EXT_KEY_USAGE)? else {
            return Ok(false);
        };
        let (list, _) = der::read_tlv(value).map_err(malformed("extendedKeyUsage"))?;
        let purposes = der::children(list.content).map_err(malformed("extendedKeyUsage"))?;
        Ok(purposes.iter().any(|p| p.content == OID_PRECERT_SIGNING))
    }
}

/// The bits of a BIT STRING without unused bits.
fn bit_string<'a>(tlv: &der::Tlv<'a>, what: &str) -> Result<&'a [u8], ChainError> {
    match tlv.content.split_first() {
        Some((0, bits)) if tlv.tag == TAG_BIT_STRING => Ok(bits),
        _ => Err(malformed_msg(what, "BIT STRING with unused bits")),
    }
}

/// `issuer`'s subject is the issuer named by `cert`, and `issuer`'s key verifies `cert`'s signature.
fn issued_by(
    cert: &Cert<'_>,
    signed: &'static str,
    issuer: &Cert<'_>,
    position: usize,
) -> Result<(), ChainError> {
    if issuer.tbs.subject != cert.tbs.issuer {
        return Err(ChainError::NameMismatch { position, signed });
    }
    let mut supported = false;
    // RSA with SHA-1 (keys from 1024 bits): gone from the WebPKI but found in older logged chains (2013 Google
    // entries, Google's precert-signing test hierarchy); webpki does not offer it, ring does, for this legacy use.
    if cert.signature_alg == ALG_SHA1_WITH_RSA && issuer.spki_alg == ALG_RSA_ENCRYPTION {
        supported = true;
        let key = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
            issuer.spki_key,
        );
        if key.verify(cert.tbs_raw, cert.signature).is_ok() {
            return Ok(());
        }
    }
    for alg in webpki::ALL_VERIFICATION_ALGS {
        if alg.signature_alg_id().as_ref() != cert.signature_alg
            || alg.public_key_alg_id().as_ref() != issuer.spki_alg
        {
            continue;
        }
        supported = true;
        if alg
            .verify_signature(issuer.spki_key, cert.tbs_raw, cert.signature)
            .is_ok()
        {
            return Ok(());
        }
    }
    if supported {
        Err(ChainError::BadSignature { position, signed })
    } else {
        Err(ChainError::UnsupportedAlgorithm {
            position,
            signed,
            algorithm: hex::encode(cert.signature_alg),
        })
    }
}

/// The served pre_certificate is the leaf's precertificate: same TBS once the poison is gone (issuer and
/// authority key id aside when the log rewrote them for a precertificate signing certificate, in which case the
/// leaf must name the signing certificate's issuer).
fn precert_matches_leaf(
    pre: &Cert<'_>,
    leaf_tbs: &[u8],
    rewritten_issuer: Option<&[u8]>,
) -> Result<(), ChainError> {
    let leaf = Tbs::parse(leaf_tbs, "leaf TBSCertificate")?;
    if let Some(issuer) = rewritten_issuer
        && leaf.issuer != issuer
    {
        return Err(ChainError::PrecertMismatch);
    }
    let rewritten = rewritten_issuer.is_some();
    if pre.tbs.comparable(rewritten)? != leaf.comparable(rewritten)? {
        return Err(ChainError::PrecertMismatch);
    }
    Ok(())
}

#[cfg(test)]
#[path = "chain_tests.rs"]
mod tests;
