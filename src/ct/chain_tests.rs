//! Chain checks on real precertificates and chains: GTS CA 1D2 (signed directly by the CA), Google's Merge Delay
//! monitor precert (signed by a precertificate signing certificate), Let's Encrypt staging entries of navigli, and
//! the forgeries a hostile log could serve instead.

use super::*;
use crate::ct::leaf::decode_rfc6962;

fn fixture(rel: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The DER certificates of a PEM file (text around the blocks is ignored).
pub(crate) fn pem_certs(rel: &str) -> Vec<Vec<u8>> {
    use base64::Engine;
    let text = String::from_utf8(fixture(rel)).unwrap();
    let mut out = Vec::new();
    let mut block: Option<String> = None;
    for line in text.lines() {
        match (line.trim(), block.as_mut()) {
            ("-----BEGIN CERTIFICATE-----", _) => block = Some(String::new()),
            ("-----END CERTIFICATE-----", Some(b)) => {
                out.push(
                    base64::engine::general_purpose::STANDARD
                        .decode(&b)
                        .unwrap(),
                );
                block = None;
            }
            (l, Some(b)) => b.push_str(l),
            _ => {}
        }
    }
    out
}

fn tbs_of(cert: &[u8]) -> &[u8] {
    crate::ct::cert::tbs_of_certificate(cert).unwrap()
}

/// The TBSCertificate a log puts in the leaf for `pre_certificate` (RFC 6962 section 3.2): the poison removed and,
/// when signed by the precertificate signing certificate `psc`, the issuer and authority key id taken from `psc`.
pub(crate) fn leaf_tbs(pre_certificate: &[u8], psc: Option<&[u8]>) -> Vec<u8> {
    let pre = Tbs::parse(tbs_of(pre_certificate), "pre").unwrap();
    let psc = psc.map(|d| Tbs::parse(tbs_of(d), "psc").unwrap());
    let mut fields: Vec<Vec<u8>> = Vec::new();
    for (i, f) in pre.fields.iter().enumerate() {
        if f.tag == der::context_constructed(3) {
            let mut exts: Vec<&[u8]> = Vec::new();
            for e in &pre.extensions {
                let oid = extension_oid(e).unwrap();
                if oid == OID_CT_POISON {
                    continue;
                }
                if oid == OID_AUTHORITY_KEY_ID
                    && let Some(psc) = &psc
                {
                    let aki = psc
                        .extensions
                        .iter()
                        .find(|e| extension_oid(e).unwrap() == OID_AUTHORITY_KEY_ID);
                    exts.extend(aki.map(|e| e.raw));
                    continue;
                }
                exts.push(e.raw);
            }
            let list = der::build_constructed(der::TAG_SEQUENCE, &exts);
            fields.push(der::build_constructed(
                der::context_constructed(3),
                &[&list],
            ));
        } else if i == pre.issuer_at
            && let Some(psc) = &psc
        {
            fields.push(psc.issuer.to_vec());
        } else {
            fields.push(f.raw.to_vec());
        }
    }
    let parts: Vec<&[u8]> = fields.iter().map(|f| f.as_slice()).collect();
    der::build_constructed(der::TAG_SEQUENCE, &parts)
}

/// Flip the lowest bit of byte `at` of a served pre_certificate.
fn flip(pre: &mut Option<bytes::Bytes>, at: usize) {
    let mut v = pre.as_ref().unwrap().to_vec();
    v[at] ^= 0x01;
    *pre = Some(v.into());
}

fn spki_hash(cert: &[u8]) -> [u8; 32] {
    sha256(Cert::parse(cert, "c").unwrap().spki)
}

fn precert_entry(pre: &[u8], leaf_tbs: Vec<u8>, ca: &[u8], chain: Vec<Vec<u8>>) -> LogEntry {
    LogEntry {
        timestamp_ms: 1,
        entry_type: EntryType::Precert,
        signed_entry: leaf_tbs.into(),
        issuer_key_hash: Some(spki_hash(ca)),
        pre_certificate: Some(bytes::Bytes::copy_from_slice(pre)),
        chain,
        chain_error: None,
    }
}

/// GTS CA 1D2's precertificate for certificate.transparency.dev, as a log would serve it.
fn gts() -> (LogEntry, Vec<u8>) {
    let pre = pem_certs("certs/real/gts-1d2_precert_certificate.transparency.dev.pem").remove(0);
    let ca = pem_certs("certs/real/gts-1d2_intermediate.pem").remove(0);
    let entry = precert_entry(&pre, leaf_tbs(&pre, None), &ca, vec![ca.clone()]);
    (entry, ca)
}

/// Google's Merge Delay monitor precert, signed by a precertificate signing certificate: chain = [psc, CA, root].
fn mmd() -> LogEntry {
    let pem = pem_certs("certs/real/google-mmd-preissuer-chain.pem");
    let (pre, psc, ca, root) = (&pem[0], &pem[1], &pem[2], &pem[3]);
    precert_entry(
        pre,
        leaf_tbs(pre, Some(psc)),
        ca,
        vec![psc.clone(), ca.clone(), root.clone()],
    )
}

#[test]
fn a_precert_signed_by_its_ca_is_proven() {
    let (entry, ca) = gts();
    let proof = check(&entry).unwrap();
    assert_eq!(proof.issuer_spki_sha256, spki_hash(&ca));
    assert_eq!(
        proof.cert_sha256,
        sha256(entry.pre_certificate.as_ref().unwrap())
    );
}

#[test]
fn a_precert_signed_by_a_precert_signing_certificate_proves_the_ca_behind_it() {
    let entry = mmd();
    let proof = check(&entry).unwrap();
    assert_eq!(proof.issuer_spki_sha256, spki_hash(&entry.chain[1]));
    // The leaf names the CA, not the signing certificate.
    let leaf = Tbs::parse(&entry.signed_entry, "leaf").unwrap();
    let ca = Cert::parse(&entry.chain[1], "ca").unwrap();
    assert_eq!(leaf.issuer, ca.tbs.subject);
}

#[test]
fn a_precert_signing_certificate_needs_its_ca_proven_too() {
    let mut entry = mmd();
    entry.chain.truncate(1);
    assert_eq!(check(&entry), Err(ChainError::NoCaAfterPrecertSigner));
    // The CA swapped for the root: the root did not sign the signing certificate.
    let mut entry = mmd();
    entry.chain.remove(1);
    assert_eq!(
        check(&entry),
        Err(ChainError::NameMismatch {
            position: 1,
            signed: "chain[0]"
        })
    );
    // The leaf names another issuer than the signing certificate's.
    let mut entry = mmd();
    entry.signed_entry = leaf_tbs(entry.pre_certificate.as_ref().unwrap(), Some(&gts_ca())).into();
    assert_eq!(check(&entry), Err(ChainError::PrecertMismatch));
}

fn gts_ca() -> Vec<u8> {
    pem_certs("certs/real/gts-1d2_intermediate.pem").remove(0)
}

#[test]
fn another_ca_in_place_of_the_issuer_proves_nothing() {
    // The MMD intermediate offered as the issuer of GTS's precert: wrong name.
    let (mut entry, _) = gts();
    entry.chain = vec![mmd().chain[1].clone()];
    assert_eq!(
        check(&entry),
        Err(ChainError::NameMismatch {
            position: 0,
            signed: "the pre_certificate"
        })
    );
    // A certificate with the right subject but another key: its key does not verify the signature.
    let (mut entry, ca) = gts();
    let mut forged = ca.clone();
    let c = Cert::parse(&ca, "ca").unwrap();
    let key_at = c.spki_key.as_ptr() as usize - ca.as_ptr() as usize;
    forged[key_at + 40] ^= 0x01;
    entry.chain = vec![forged];
    assert_eq!(
        check(&entry),
        Err(ChainError::BadSignature {
            position: 0,
            signed: "the pre_certificate"
        })
    );
}

#[test]
fn a_pre_certificate_that_is_not_the_leafs_is_refused() {
    // The leaf says one thing, the served pre_certificate (validly signed) another: its hash is not the leaf's.
    let (mut entry, _) = gts();
    let other = mmd();
    entry.signed_entry = other.signed_entry.clone();
    assert_eq!(check(&entry), Err(ChainError::PrecertMismatch));
    // A pre_certificate edited by the log: it is no longer the leaf's.
    let (mut entry, _) = gts();
    flip(&mut entry.pre_certificate, 15); // in the serial number
    assert_eq!(check(&entry), Err(ChainError::PrecertMismatch));
    // The leaf's TBS with a signature that is not the CA's: its hash would not be the precert's.
    let (mut entry, _) = gts();
    let last = entry.pre_certificate.as_ref().unwrap().len() - 1;
    flip(&mut entry.pre_certificate, last);
    assert_eq!(
        check(&entry),
        Err(ChainError::BadSignature {
            position: 0,
            signed: "the pre_certificate"
        })
    );
    // Garbage.
    let (mut entry, _) = gts();
    entry.pre_certificate = Some(vec![0x30, 0x03, 0x02, 0x01, 0x01].into());
    assert!(matches!(check(&entry), Err(ChainError::Malformed { .. })));
    entry.pre_certificate = None;
    assert_eq!(check(&entry), Err(ChainError::NoPreCertificate));
}

#[test]
fn the_leafs_issuer_key_hash_must_be_the_proven_ca() {
    let (mut entry, _) = gts();
    entry.issuer_key_hash = Some([7; 32]);
    assert_eq!(
        check(&entry),
        Err(ChainError::KeyHashMismatch { position: 0 })
    );
}

#[test]
fn unreadable_or_missing_chains_are_named() {
    let (mut entry, _) = gts();
    entry.chain.clear();
    assert_eq!(check(&entry), Err(ChainError::NoIssuer));
    entry.chain_error = Some("extra_data: boom".into());
    assert_eq!(
        check(&entry).unwrap_err().to_string(),
        "unreadable: extra_data: boom"
    );
}

/// The real x509 entry of the scrape-ct-log fixture (issuer in its extra_data chain).
fn real_x509() -> LogEntry {
    let leaf = fixture("rfc6962/single-entries/scrape-ct-log_x509_leaf_input.bin");
    let extra = fixture("rfc6962/single-entries/scrape-ct-log_x509_extra_data.bin");
    decode_rfc6962(&leaf, &extra).unwrap()
}

#[test]
fn an_x509_entry_is_proven_by_its_issuer_and_not_by_another_ca() {
    let entry = real_x509();
    let proof = check(&entry).unwrap();
    assert_eq!(proof.issuer_spki_sha256, spki_hash(&entry.chain[0]));
    assert_eq!(proof.cert_sha256, sha256(&entry.signed_entry));
    let mut forged = entry.clone();
    forged.chain = vec![gts_ca()];
    assert!(matches!(
        check(&forged),
        Err(ChainError::NameMismatch { position: 0, .. })
    ));
}

#[test]
fn every_navigli_entry_is_proven_by_its_real_chain() {
    let mut proven = 0;
    for part in ["0_end-255", "256_end-511", "512_end-767", "768_end-1023"] {
        let body = fixture(&format!(
            "rfc6962/navigli2025h2-converted-from-tiles/get-entries_start-{part}.json"
        ));
        let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
        for item in doc["entries"].as_array().unwrap() {
            use base64::Engine;
            let b64 = |k: &str| {
                base64::engine::general_purpose::STANDARD
                    .decode(item[k].as_str().unwrap())
                    .unwrap()
            };
            let entry = decode_rfc6962(&b64("leaf_input"), &b64("extra_data")).unwrap();
            let proof = check(&entry).unwrap_or_else(|e| panic!("entry {proven}: {e}"));
            assert_eq!(Some(proof.issuer_spki_sha256), entry.issuer_key_hash);
            proven += 1;
        }
    }
    assert_eq!(proven, 1024);
}
