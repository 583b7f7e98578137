//! Real-data tests for `leaf` and `cert`: the 1024 navigli2025h2 entries in both API forms (RFC 6962 JSON and
//! static-ct data tiles), real single entries, real certificates, and certspotter 0.16's output for the same
//! entries as ground truth (see tests/fixtures/certspotter_0.16_truth.json, "provenance").
//!
//! Every other file under tests/fixtures/ is a byte copy of /work/shared/ctdata at the same relative path (see its
//! PROVENANCE.md): `rfc6962/`, `static-ct/navigli2025h2/`, `certs/`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use base64::Engine;
use ctwatch::ct::cert::{
    CertError, LeafNames, cert_info, leaf_info, leaf_names, tbs_identity, tbs_of_certificate,
};
use ctwatch::ct::der;
use ctwatch::ct::leaf::{EntryType, LeafError, LogEntry, decode_data_tile, decode_rfc6962};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn fixture(rel: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn b64(s: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s.as_str().expect("base64 string"))
        .expect("valid base64")
}

/// (leaf_input, extra_data) pairs of a get-entries JSON fixture.
fn json_entries(rel: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let doc: Value = serde_json::from_slice(&fixture(rel)).unwrap();
    doc["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (b64(&e["leaf_input"]), b64(&e["extra_data"])))
        .collect()
}

/// All 1024 navigli entries, in index order.
fn navigli_json() -> Vec<(Vec<u8>, Vec<u8>)> {
    let dir = "rfc6962/navigli2025h2-converted-from-tiles";
    [(0, 255), (256, 511), (512, 767), (768, 1023)]
        .iter()
        .flat_map(|(a, b)| json_entries(&format!("{dir}/get-entries_start-{a}_end-{b}.json")))
        .collect()
}

fn navigli_entry(index: usize) -> LogEntry {
    let (leaf, extra) = &navigli_json()[index];
    decode_rfc6962(leaf, extra).unwrap()
}

fn unix(rfc3339: &Value) -> i64 {
    let format = time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(rfc3339.as_str().unwrap(), &format)
        .unwrap()
        .unix_timestamp()
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn truth() -> Value {
    serde_json::from_slice(&fixture("certspotter_0.16_truth.json")).unwrap()
}

/// Compare our facts with certspotter's for one certificate.
fn assert_matches_certspotter(entry: &LogEntry, expected: &Value, label: &str) {
    let info = cert_info(entry).unwrap_or_else(|e| panic!("{label}: {e}"));
    assert_eq!(
        hex::encode(info.cert_sha256.expect("served certificate proven")),
        expected["cert_sha256"],
        "{label} cert_sha256"
    );
    assert_eq!(
        hex::encode(info.tbs_sha256),
        expected["tbs_sha256"],
        "{label} tbs_sha256"
    );
    assert_eq!(
        hex::encode(info.pubkey_sha256),
        expected["pubkey_sha256"],
        "{label} pubkey_sha256"
    );
    assert_eq!(
        info.not_before,
        unix(&expected["not_before"]),
        "{label} not_before"
    );
    assert_eq!(
        info.not_after,
        unix(&expected["not_after"]),
        "{label} not_after"
    );
    let dns: BTreeSet<String> = info.dns_names.iter().cloned().collect();
    assert_eq!(
        dns.len(),
        info.dns_names.len(),
        "{label}: duplicates in {:?}",
        info.dns_names
    );
    assert_eq!(dns, strings(&expected["dns_names"]), "{label} dns_names");
    let ips: BTreeSet<String> = info.ip_addresses.iter().cloned().collect();
    assert_eq!(
        ips,
        strings(&expected["ip_addresses"]),
        "{label} ip_addresses"
    );
}

#[test]
fn all_navigli_entries_decode_and_match_certspotter() {
    let entries = navigli_json();
    assert_eq!(entries.len(), 1024);
    let truth = truth();
    let rows = truth["navigli"].as_array().unwrap();
    assert_eq!(rows.len(), 1024);
    for row in rows {
        let index = row["index"].as_u64().unwrap() as usize;
        let (leaf, extra) = &entries[index];
        let entry = decode_rfc6962(leaf, extra).unwrap_or_else(|e| panic!("entry {index}: {e}"));
        assert_eq!(entry.entry_type, EntryType::Precert);
        assert!(!entry.chain.is_empty(), "entry {index} has a chain");
        assert_matches_certspotter(&entry, row, &format!("navigli entry {index}"));
        let info = cert_info(&entry).unwrap();
        assert!(info.is_precert);
        assert_eq!(info.issuer_spki_sha256, entry.issuer_key_hash);
    }
}

#[test]
fn certspotter_tbs_sha256_for_a_handful_of_navigli_entries() {
    // Hard-coded from certspotter 0.16 output (v1.json tbs_sha256), independent of the fixture file above.
    let expected = [
        (
            0,
            "09013d4b9032ffe49880f9e84a9fc4baf9d15163d3848b7f4a1e2d1118bf1257",
        ),
        (
            2,
            "f70397ab2c73e8ac16b836cfab1291aacb20f64ec92be9c92dd6311f0dbdb50b",
        ),
        (
            60,
            "da0a782061a828fc823e1e4c696c6dac4afe40477b55ef6055f1b9d9d86bdc37",
        ),
        (
            281,
            "6a1a54918f147e60f443a36a0dc918709d78dc843a8ef88129117023d7be52f5",
        ),
        (
            777,
            "29b11797bc70d69ac8631a525c3bb2f1810983c42e0ef215d4cff8963bfc24ab",
        ),
        (
            1023,
            "b56a5e4ae21467327dd12d4e9425856c83f2ba34d4406c611944b94f5ca85b69",
        ),
    ];
    let entries = navigli_json();
    for (index, tbs) in expected {
        let (leaf, extra) = &entries[index];
        let info = cert_info(&decode_rfc6962(leaf, extra).unwrap()).unwrap();
        assert_eq!(hex::encode(info.tbs_sha256), tbs, "entry {index}");
    }
}

#[test]
fn navigli_spot_checks_written_by_hand() {
    // Values read with `openssl x509 -inform der` from certs/le-staging-precerts-from-navigli/*.der.
    let e0 = cert_info(&navigli_entry(0)).unwrap();
    assert_eq!(
        e0.dns_names,
        [
            "*.gated.dev-euw1.x0a839b.drive-platform.io",
            "*.gated.euw1.x0a839b.drive-platform.io",
            "*.gated.prd-euw1.x0a839b.drive-platform.io",
            "*.gated.stg-euw1.x0a839b.drive-platform.io",
            "*.public.dev-euw1.x0a839b.drive-platform.io",
            "*.public.euw1.x0a839b.drive-platform.io",
            "*.public.prd-euw1.x0a839b.drive-platform.io",
            "*.public.stg-euw1.x0a839b.drive-platform.io",
        ]
    );
    assert!(e0.ip_addresses.is_empty());
    assert_eq!(e0.subject, "CN=*.gated.dev-euw1.x0a839b.drive-platform.io");
    assert_eq!(
        e0.issuer,
        "CN=(STAGING) Counterfeit Cashew R10, O=(STAGING) Let's Encrypt, C=US"
    );
    assert_eq!(
        e0.issuer_cn.as_deref(),
        Some("(STAGING) Counterfeit Cashew R10")
    );
    assert_eq!(e0.issuer_org.as_deref(), Some("(STAGING) Let's Encrypt"));
    assert_eq!(e0.serial, "2cd9f1fa9d6bdf32183a294d63683152aa60");
    assert_eq!(e0.not_before, 1746288888); // May  3 16:14:48 2025 GMT
    assert_eq!(e0.not_after, 1754064887); // Aug  1 16:14:47 2025 GMT

    let e2 = cert_info(&navigli_entry(2)).unwrap();
    assert_eq!(e2.subject, "");
    assert_eq!(
        e2.dns_names,
        ["chat.basketblogin.secure.blog.cr.suoadappwi-proxy.ezbricks-dev.codetools.in"]
    );
    assert_eq!(e2.issuer_cn.as_deref(), Some("(STAGING) Pseudo Plum E5"));

    let e60 = cert_info(&navigli_entry(60)).unwrap();
    assert_eq!(
        e60.dns_names,
        ["www.www.www.www.www.www.eqedhwww.22aad572.nip.io"]
    );
    assert_eq!(e60.serial, "2c4bb8e4dafadb8c69c6d4d0c015e98b9754");

    let e281 = cert_info(&navigli_entry(281)).unwrap();
    assert_eq!(e281.dns_names.len(), 24);
    assert_eq!(e281.dns_names[0], "basetool.com");
    assert_eq!(e281.dns_names[12], "ostgotadagarna.se");
    assert_eq!(e281.dns_names[23], "www.swemaps.se");
    assert_eq!(e281.subject, "CN=basetool.com");
}

#[test]
fn navigli_pre_certificates_are_the_extracted_files() {
    let dir = "certs/le-staging-precerts-from-navigli";
    for (index, file) in [
        (0, "navigli_idx0_rsa2048+wildcard.der"),
        (2, "navigli_idx2_empty-subject.der"),
        (60, "navigli_idx60_rsa4096.der"),
        (281, "navigli_idx281_max-24-sans.der"),
    ] {
        let der = fixture(&format!("{dir}/{file}"));
        let entry = navigli_entry(index);
        assert_eq!(
            entry.pre_certificate.as_deref(),
            Some(&der[..]),
            "entry {index}"
        );
        assert_eq!(
            cert_info(&entry).unwrap().cert_sha256,
            Some(sha256(&der)),
            "entry {index}"
        );
        // The leaf TBS is the pre-certificate's TBS minus the poison, so their identities agree.
        let precert_tbs = tbs_of_certificate(&der).unwrap();
        assert_ne!(sha256(precert_tbs), sha256(&entry.signed_entry));
        assert_eq!(
            tbs_identity(precert_tbs).unwrap(),
            tbs_identity(&entry.signed_entry).unwrap(),
            "entry {index}"
        );
    }
}

const TILES: [(&str, u64, usize); 5] = [
    ("000", 0, 256),
    ("001", 256, 256),
    ("002", 512, 256),
    ("003", 768, 256),
    ("003.p/10", 768, 10),
];

/// Decoding a tile copies nothing per entry: the certificate, the pre_certificate and the Merkle leaf are views of
/// the downloaded tile.
#[test]
fn tile_entries_are_views_of_the_tile_buffer() {
    let tile = bytes::Bytes::from(fixture("static-ct/navigli2025h2/tile/data/000"));
    let range = tile.as_ptr() as usize..tile.as_ptr() as usize + tile.len();
    let inside = |b: &[u8]| range.contains(&(b.as_ptr() as usize));
    let leaves = ctwatch::ct::leaf::decode_data_tile_bytes(&tile, 0).unwrap();
    assert_eq!(leaves.len(), 256);
    let mut precerts = 0;
    for l in &leaves {
        assert!(inside(&l.entry.signed_entry));
        if let Some(pre) = &l.entry.pre_certificate {
            assert!(inside(pre));
            precerts += 1;
        }
        match &l.leaf {
            ctwatch::ct::leaf::MerkleLeaf::TimestampedEntry(te) => assert!(inside(te)),
            other => panic!("{other:?}"),
        }
    }
    assert!(precerts > 0);
    // The same entries as the copying decoder gives.
    assert_eq!(leaves, decode_data_tile(&tile, 0).unwrap());
}

#[test]
fn data_tiles_match_the_rfc6962_form_and_the_level0_hash_tiles() {
    let json = navigli_json();
    for (name, first, count) in TILES {
        let leaves = decode_data_tile(
            &fixture(&format!("static-ct/navigli2025h2/tile/data/{name}")),
            first,
        )
        .unwrap_or_else(|e| panic!("tile {name}: {e}"));
        let hashes = fixture(&format!("static-ct/navigli2025h2/tile/0/{name}"));
        assert_eq!(leaves.len(), count, "tile {name}");
        assert_eq!(hashes.len(), 32 * count, "hash tile {name}");
        for (pos, leaf) in leaves.iter().enumerate() {
            let index = first as usize + pos;
            let (leaf_input, extra) = &json[index];
            assert_eq!(&leaf.leaf.to_vec(), leaf_input, "index {index}");
            assert_eq!(leaf.leaf_index, Some(index as u64));
            let mut hashed = vec![0u8];
            hashed.extend_from_slice(&leaf.leaf.to_vec());
            assert_eq!(
                sha256(&hashed),
                hashes[32 * pos..32 * pos + 32],
                "leaf hash {index}"
            );
            assert_eq!(
                leaf.leaf.hash(),
                hashes[32 * pos..32 * pos + 32],
                "leaf hash {index}, hashed in parts"
            );

            let rfc = decode_rfc6962(leaf_input, extra).unwrap();
            assert!(leaf.entry.chain.is_empty());
            assert_eq!(
                LogEntry {
                    chain: Vec::new(),
                    ..rfc.clone()
                },
                leaf.entry,
                "index {index}"
            );
            let fingerprints: Vec<[u8; 32]> = rfc.chain.iter().map(|c| sha256(c)).collect();
            assert_eq!(*leaf.chain_fingerprints, fingerprints[..], "index {index}");
            for fp in leaf.chain_fingerprints.iter() {
                let issuer = fixture(&format!(
                    "static-ct/navigli2025h2/issuer/{}",
                    hex::encode(fp)
                ));
                assert_eq!(&sha256(&issuer), fp);
            }
        }
    }
}

#[test]
fn gzipped_tile_decodes_like_the_plain_one() {
    use std::io::Write;
    let plain = fixture("static-ct/navigli2025h2/tile/data/001");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).unwrap();
    let gz = gz.finish().unwrap();
    assert_eq!(&gz[..2], [0x1f, 0x8b]);
    assert_eq!(
        decode_data_tile(&gz, 256).unwrap(),
        decode_data_tile(&plain, 256).unwrap()
    );
    let err = decode_data_tile(&gz[..gz.len() / 2], 256).unwrap_err();
    assert!(matches!(err, LeafError::Gzip(_)), "{err:?}");
}

#[test]
fn tile_with_the_wrong_leaf_index_is_rejected() {
    let tile = fixture("static-ct/navigli2025h2/tile/data/000");
    match decode_data_tile(&tile, 256) {
        Err(LeafError::LeafIndexMismatch {
            position,
            expected,
            found,
        }) => {
            assert_eq!((position, expected, found), (0, 256, 0));
        }
        other => panic!("expected LeafIndexMismatch, got {other:?}"),
    }
    // Same bytes, one entry's leaf_index edited: entry 3 of tile 003.p/10 claims to be 999.
    let mut tile = fixture("static-ct/navigli2025h2/tile/data/003.p/10");
    let leaves = decode_data_tile(&tile, 768).unwrap();
    let needle = [0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x03, 0x03]; // type 0, len 5, 771 = 0x303
    let at = tile
        .windows(8)
        .position(|w| w == needle)
        .expect("leaf_index 771 encoded");
    tile[at + 6..at + 8].copy_from_slice(&[0x03, 0xe7]);
    match decode_data_tile(&tile, 768) {
        Err(LeafError::LeafIndexMismatch {
            position,
            expected,
            found,
        }) => {
            assert_eq!((position, expected, found), (3, 771, 999));
        }
        other => panic!("expected LeafIndexMismatch, got {other:?}"),
    }
    assert_eq!(leaves.len(), 10);
}

#[test]
fn malformed_tiles_are_errors_not_panics() {
    let tile = fixture("static-ct/navigli2025h2/tile/data/003.p/10");
    // Cutting the last byte leaves entry 9 truncated.
    match decode_data_tile(&tile[..tile.len() - 1], 768) {
        Err(LeafError::InTileEntry {
            position,
            index,
            source,
        }) => {
            assert_eq!((position, index), (9, 777));
            assert!(matches!(*source, LeafError::Truncated { .. }), "{source:?}");
        }
        other => panic!("expected InTileEntry, got {other:?}"),
    }
    // Every prefix either decodes (ends on an entry boundary) or fails; none panics.
    let boundaries = (0..tile.len())
        .filter(|&n| decode_data_tile(&tile[..n], 768).is_ok())
        .count();
    assert_eq!(boundaries, 9, "prefixes ending after entries 1..=9");
    assert!(matches!(
        decode_data_tile(&[], 0),
        Err(LeafError::EmptyTile)
    ));
    // 257 entries: a full tile plus one more.
    let mut big = fixture("static-ct/navigli2025h2/tile/data/000");
    big.extend_from_slice(&tile);
    assert!(matches!(
        decode_data_tile(&big, 0),
        Err(LeafError::TooManyEntries { .. })
    ));
}

fn precert_leaf() -> (Vec<u8>, Vec<u8>) {
    (
        fixture("rfc6962/single-entries/scrape-ct-log_precert_leaf_input.bin"),
        fixture("rfc6962/single-entries/scrape-ct-log_precert_extra_data.bin"),
    )
}

#[test]
fn single_entries_decode_both_types() {
    let x509 = decode_rfc6962(
        &fixture("rfc6962/single-entries/scrape-ct-log_x509_leaf_input.bin"),
        &fixture("rfc6962/single-entries/scrape-ct-log_x509_extra_data.bin"),
    )
    .unwrap();
    assert_eq!(x509.entry_type, EntryType::X509);
    assert!(x509.pre_certificate.is_none() && x509.issuer_key_hash.is_none());
    let (leaf, extra) = precert_leaf();
    let precert = decode_rfc6962(&leaf, &extra).unwrap();
    assert_eq!(precert.entry_type, EntryType::Precert);
    assert_eq!(
        serde_json::to_string(&precert.entry_type).unwrap(),
        "\"precert\""
    );
    assert_eq!(EntryType::X509.as_str(), "x509");
    // The JSON form of the same two entries decodes to the same values.
    let json = json_entries("rfc6962/single-entries/scrape-ct-log_get-entries_precert+x509.json");
    assert_eq!(decode_rfc6962(&json[0].0, &json[0].1).unwrap(), precert);
    assert_eq!(decode_rfc6962(&json[1].0, &json[1].1).unwrap(), x509);
    // Both carry their chains, issuer first.
    assert_eq!(x509.chain.len(), 2);
    assert_eq!(precert.chain.len(), 2);
}

/// Base64 bodies of the PEM blocks in `pem`, in file order.
fn pem_certs(pem: &[u8]) -> Vec<Vec<u8>> {
    let text = std::str::from_utf8(pem).unwrap();
    let mut out = Vec::new();
    let mut body: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line == "-----BEGIN CERTIFICATE-----" {
            body = Some(String::new());
        } else if line == "-----END CERTIFICATE-----" {
            let b = body.take().unwrap();
            out.push(base64::engine::general_purpose::STANDARD.decode(b).unwrap());
        } else if let Some(b) = body.as_mut() {
            b.push_str(line);
        }
    }
    out
}

/// The x509 entry certspotter saw for a `source` of the truth file (see its provenance).
fn x509_entry_for(source: &str) -> LogEntry {
    let x509 = |cert: Vec<u8>, chain: Vec<Vec<u8>>| LogEntry {
        timestamp_ms: 0,
        entry_type: EntryType::X509,
        signed_entry: cert.into(),
        issuer_key_hash: None,
        pre_certificate: None,
        chain,
        chain_error: None,
    };
    if let Some((file, n)) = source.split_once('#') {
        let (leaf, extra) = &json_entries(file)[n.parse::<usize>().unwrap()];
        return decode_rfc6962(leaf, extra).unwrap();
    }
    if source == "certs/real/google_com_fullchain.pem[2]+[0]" {
        let mut certs = pem_certs(&fixture("certs/real/google_com_fullchain.pem"));
        let leaf = certs.remove(2);
        return x509(leaf, vec![certs.remove(0)]);
    }
    if let Some((a, b)) = source.split_once('+') {
        return x509(fixture(a), vec![fixture(b)]);
    }
    if source.ends_with(".pem") {
        let mut certs = pem_certs(&fixture(source));
        let leaf = certs.remove(0);
        return x509(leaf, certs);
    }
    x509(fixture(source), Vec::new())
}

#[test]
fn x509_entries_and_real_certs_with_scts_match_certspotter() {
    let truth = truth();
    let rows = truth["x509"].as_array().unwrap();
    assert_eq!(rows.len(), 16);
    let mut with_scts = 0;
    for row in rows {
        let source = row["source"].as_str().unwrap();
        let entry = x509_entry_for(source);
        assert_matches_certspotter(&entry, row, source);
        let info = cert_info(&entry).unwrap();
        assert!(!info.is_precert);
        // Every served chain proves its issuer (SHA-1 and 1024-bit RSA included: 2013 entries); without one,
        // nothing is proven and the reason says so.
        if entry.chain.is_empty() {
            assert_eq!(
                info.chain.error(),
                Some("no issuer certificate served"),
                "{source}"
            );
            assert_eq!(info.issuer_spki_sha256, None, "{source}");
        } else {
            assert!(info.chain.is_proven(), "{source}: {:?}", info.chain);
            assert!(info.issuer_spki_sha256.is_some(), "{source}");
        }
        let tbs = tbs_of_certificate(&entry.signed_entry).unwrap();
        if sha256(tbs) != info.tbs_sha256 {
            with_scts += 1;
        }
    }
    // The leaves with embedded SCTs (crt.sh from scrape-ct-log, E8, P-384, RSA-4096, cloudflare-dns, bloomberg,
    // github, babylonhealth, cloudflaressl, *.google.com; checked with `openssl x509 -text`) had the SCT list
    // removed, and certspotter's re-encoding agrees with ours on every one.
    assert_eq!(with_scts, 10);
}

#[test]
fn certspotter_tbs_sha256_for_real_certs_with_scts() {
    // Hard-coded from certspotter 0.16 output (v1.json tbs_sha256 and dns_names count).
    let e8 = cert_info(&x509_entry_for("certs/real/letsencrypt_org_E8_leaf.der")).unwrap();
    assert_eq!(
        hex::encode(e8.tbs_sha256),
        "3b31b47777f5742931595231cdbe0805e00349545ab20293c559941ce9d5b429"
    );
    let google = cert_info(&x509_entry_for(
        "certs/real/google_com_fullchain.pem[2]+[0]",
    ))
    .unwrap();
    assert_eq!(
        hex::encode(google.tbs_sha256),
        "de77fc975f2f14e1b2df21bf5587ce6153a2b448650d2d482ab9d39f70847686"
    );
    assert_eq!(google.dns_names.len(), 129);
    assert_eq!(google.dns_names[0], "*.google.com");
}

#[test]
fn issuer_key_hash_is_the_spki_hash_of_the_issuer_certificate() {
    // The log computed issuer_key_hash itself; our SPKI extraction for x509 chains must agree with it.
    for (leaf, extra) in navigli_json().iter().step_by(37) {
        let precert = decode_rfc6962(leaf, extra).unwrap();
        let as_x509 = LogEntry {
            entry_type: EntryType::X509,
            signed_entry: precert.pre_certificate.clone().unwrap(),
            pre_certificate: None,
            issuer_key_hash: None,
            ..precert.clone()
        };
        let info = cert_info(&as_x509).unwrap();
        assert_eq!(info.issuer_spki_sha256, precert.issuer_key_hash);
    }
}

/// OID content octets of the embedded SCT list extension, 1.3.6.1.4.1.11129.2.4.2.
const SCT_OID: [u8; 10] = [0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x02];
/// ... and of the precertificate poison, 1.3.6.1.4.1.11129.2.4.3.
const POISON_OID: [u8; 10] = [0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x03];

/// `Extension ::= SEQUENCE { extnID, extnValue OCTET STRING }` with the given OID content and value.
fn extension(oid: &[u8], value: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    der::write_tlv(der::TAG_OID, oid, &mut body);
    der::write_tlv(der::TAG_OCTET_STRING, value, &mut body);
    let mut out = Vec::new();
    der::write_tlv(der::TAG_SEQUENCE, &body, &mut out);
    out
}

/// Rebuild `tbs` with its extension list replaced by `edit(old list)` (the [3] wrapper is kept even if empty).
fn edit_extensions(tbs: &[u8], edit: impl Fn(Vec<Vec<u8>>) -> Vec<Vec<u8>>) -> Vec<u8> {
    let (outer, _) = der::read_tlv(tbs).unwrap();
    let mut fields: Vec<Vec<u8>> = Vec::new();
    for field in der::children(outer.content).unwrap() {
        if field.tag != 0xa3 {
            fields.push(field.raw.to_vec());
            continue;
        }
        let (list, _) = der::read_tlv(field.content).unwrap();
        let exts = der::children(list.content)
            .unwrap()
            .iter()
            .map(|e| e.raw.to_vec())
            .collect();
        let edited = edit(exts);
        let exts: Vec<&[u8]> = edited.iter().map(|e| e.as_slice()).collect();
        let list = der::build_constructed(der::TAG_SEQUENCE, &exts);
        fields.push(der::build_constructed(0xa3, &[&list]));
    }
    let parts: Vec<&[u8]> = fields.iter().map(|f| f.as_slice()).collect();
    der::build_constructed(der::TAG_SEQUENCE, &parts)
}

fn is_oid(ext: &[u8], oid: &[u8]) -> bool {
    let (seq, _) = der::read_tlv(ext).unwrap();
    der::read_tlv(seq.content).unwrap().0.content == oid
}

#[test]
fn precert_and_final_tbs_have_the_same_identity() {
    let pem = fixture("certs/real/gts-1d2_precert_certificate.transparency.dev.pem");
    let der_files = [
        pem_certs(&pem).remove(0),
        fixture("certs/real/google-merge-delay_precert.der"),
        pem_certs(&fixture("certs/real/google-mmd-preissuer-chain.pem")).remove(0),
    ];
    for precert in der_files {
        let precert_tbs = tbs_of_certificate(&precert).unwrap();
        // The final certificate's TBS: the poison replaced by an SCT list, at the same position.
        let final_tbs = edit_extensions(precert_tbs, |exts| {
            exts.into_iter()
                .map(|e| {
                    if is_oid(&e, &POISON_OID) {
                        extension(&SCT_OID, &[0x04, 0x03, 1, 2, 3])
                    } else {
                        e
                    }
                })
                .collect()
        });
        // The log's view: the precert TBS without the poison.
        let leaf_tbs = edit_extensions(precert_tbs, |exts| {
            exts.into_iter()
                .filter(|e| !is_oid(e, &POISON_OID))
                .collect()
        });
        assert_ne!(final_tbs, precert_tbs);
        assert!(leaf_tbs.len() < precert_tbs.len());
        let identity = tbs_identity(precert_tbs).unwrap();
        assert_eq!(tbs_identity(&final_tbs).unwrap(), identity);
        assert_eq!(tbs_identity(&leaf_tbs).unwrap(), identity);
        // Nothing to remove: the hash of the unchanged bytes.
        assert_eq!(identity, sha256(&leaf_tbs));
    }
}

#[test]
fn re_encoding_crosses_the_long_form_length_boundaries() {
    // TBS-shaped SEQUENCE { INTEGER 1, [3] { SEQUENCE { padding extension, SCT list } } }: removing the SCT list
    // must give exactly the bytes of the same structure built without it, for every size around 127/255/65535.
    let sct = extension(&SCT_OID, &[0x5a; 300]);
    let build = |pad_len: usize, with_sct: bool| {
        let pad = extension(&[0x2a, 0x03], &vec![0xa5; pad_len]); // OID 1.2.3
        let mut exts: Vec<&[u8]> = vec![&pad];
        if with_sct {
            exts.push(&sct);
        }
        let list = der::build_constructed(der::TAG_SEQUENCE, &exts);
        let wrapper = der::build_constructed(0xa3, &[&list]);
        der::build_constructed(der::TAG_SEQUENCE, &[&[0x02, 0x01, 0x01], &wrapper])
    };
    let ranges = [100..140, 225..265, 65_480..65_540];
    let mut lengths_seen = BTreeSet::new();
    for pad_len in ranges.into_iter().flatten() {
        let without = build(pad_len, false);
        let with = build(pad_len, true);
        lengths_seen.insert(without[1]); // first length octet of the outer SEQUENCE: 0x7f/0x81/0x82/0x83 forms
        assert_eq!(
            tbs_identity(&with).unwrap(),
            sha256(&without),
            "pad {pad_len}"
        );
        assert_eq!(
            tbs_identity(&without).unwrap(),
            sha256(&without),
            "pad {pad_len}"
        );
    }
    assert!(
        lengths_seen.contains(&0x81)
            && lengths_seen.contains(&0x82)
            && lengths_seen.contains(&0x83)
    );
    assert!(lengths_seen.iter().any(|&b| b < 0x80), "short form reached");

    // SCT list as the only extension: the [3] wrapper disappears.
    let list = der::build_constructed(der::TAG_SEQUENCE, &[&sct]);
    let wrapper = der::build_constructed(0xa3, &[&list]);
    let only_sct = der::build_constructed(der::TAG_SEQUENCE, &[&[0x02, 0x01, 0x01], &wrapper]);
    assert_eq!(
        tbs_identity(&only_sct).unwrap(),
        sha256(&[0x30, 0x03, 0x02, 0x01, 0x01])
    );
}

#[test]
fn odd_certificates_are_described_correctly() {
    // cloudflare-dns.com: IP SANs (v4 and v6) and a comma in O; values read with `openssl x509 -text`.
    let info = cert_info(&x509_entry_for("certs/real/cloudflare-dns_ee.der")).unwrap();
    assert_eq!(
        info.dns_names,
        [
            "cloudflare-dns.com",
            "*.cloudflare-dns.com",
            "one.one.one.one"
        ]
    );
    assert_eq!(
        info.ip_addresses,
        [
            "1.1.1.1",
            "1.0.0.1",
            "162.159.36.1",
            "162.159.46.1",
            "2606:4700:4700::1111",
            "2606:4700:4700::1001",
            "2606:4700:4700::64",
            "2606:4700:4700::6400"
        ]
    );
    assert_eq!(
        info.subject,
        "CN=cloudflare-dns.com, O=Cloudflare\\, Inc., L=San Francisco, ST=California, C=US"
    );
    assert_eq!(
        info.issuer_cn.as_deref(),
        Some("DigiCert TLS Hybrid ECC SHA384 2020 CA1")
    );
    assert_eq!(info.serial, "0f75a36d32c16b03c7ca5f5f714a0370");
    assert_eq!(info.not_before, 1635120000); // Oct 25 00:00:00 2021 GMT
    assert_eq!(info.issuer_spki_sha256, None);

    // A 2013 x509 entry (ct-go scanner): CN is a host name also listed in the SANs, so it appears once.
    let info = cert_info(&x509_entry_for(
        "rfc6962/ctgo-scanner-four-entries/get-entries_4-entries.json#0",
    ))
    .unwrap();
    let unique: BTreeSet<&String> = info.dns_names.iter().collect();
    assert_eq!(unique.len(), info.dns_names.len());
    assert!(!info.is_precert);
}

#[test]
fn garbage_certificates_are_errors_that_say_what() {
    let entry = |cert: &[u8]| LogEntry {
        timestamp_ms: 0,
        entry_type: EntryType::X509,
        signed_entry: bytes::Bytes::copy_from_slice(cert),
        issuer_key_hash: None,
        pre_certificate: None,
        chain: Vec::new(),
        chain_error: None,
    };
    let err = cert_info(&entry(b"garbage")).unwrap_err();
    assert!(
        matches!(
            err,
            CertError::Der {
                what: "Certificate",
                ..
            }
        ),
        "{err:?}"
    );
    // A well-formed DER shell whose TBS is not a TBSCertificate.
    let err = cert_info(&entry(&[0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x01])).unwrap_err();
    assert!(
        matches!(
            err,
            CertError::Parse {
                what: "TBSCertificate",
                ..
            }
        ),
        "{err:?}"
    );
    // A real certificate followed by junk.
    let mut cert = fixture("certs/real/letsencrypt_org_E8_leaf.der");
    cert.push(0);
    let err = cert_info(&entry(&cert)).unwrap_err();
    assert!(
        matches!(
            err,
            CertError::TrailingData {
                what: "Certificate",
                len: 1
            }
        ),
        "{err:?}"
    );
    // A precert entry whose leaf holds a whole certificate instead of a TBSCertificate.
    cert.pop();
    let precert = LogEntry {
        entry_type: EntryType::Precert,
        ..entry(&cert)
    };
    assert!(matches!(
        cert_info(&precert),
        Err(CertError::Parse {
            what: "TBSCertificate",
            ..
        })
    ));
}

/// Every real entry and certificate the fixtures hold, as log entries.
fn every_real_entry() -> Vec<(String, LogEntry)> {
    let mut out: Vec<(String, LogEntry)> = navigli_json()
        .iter()
        .enumerate()
        .map(|(i, (leaf, extra))| (format!("navigli {i}"), decode_rfc6962(leaf, extra).unwrap()))
        .collect();
    for row in truth()["x509"].as_array().unwrap() {
        let source = row["source"].as_str().unwrap();
        out.push((source.to_string(), x509_entry_for(source)));
    }
    out.push((
        "cloudflare-dns".into(),
        x509_entry_for("certs/real/cloudflare-dns_ee.der"),
    ));
    out
}

#[test]
fn the_cheap_name_walk_reads_exactly_the_names_of_the_full_parse() {
    // `leaf_names` decides, for every entry of the firehose, whether the full `leaf_info` is needed: it must
    // never see fewer (or other) names than the full parse does.
    let entries = every_real_entry();
    assert!(entries.len() > 1030, "{}", entries.len());
    let mut with_ips = 0;
    for (label, entry) in &entries {
        let full = leaf_info(entry).unwrap_or_else(|e| panic!("{label}: {e}"));
        let cheap = leaf_names(entry).unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(
            cheap,
            LeafNames {
                dns_names: full.dns_names.clone(),
                ip_addresses: full.ip_addresses.clone(),
            },
            "{label}"
        );
        with_ips += usize::from(!cheap.ip_addresses.is_empty());
    }
    assert!(with_ips > 0, "IP SANs are covered");
}

#[test]
fn the_cheap_name_walk_refuses_what_the_full_parse_refuses_in_names() {
    let entry = |cert: &[u8]| LogEntry {
        timestamp_ms: 0,
        entry_type: EntryType::X509,
        signed_entry: bytes::Bytes::copy_from_slice(cert),
        issuer_key_hash: None,
        pre_certificate: None,
        chain: Vec::new(),
        chain_error: None,
    };
    assert!(leaf_names(&entry(b"garbage")).is_err());
    assert!(leaf_names(&entry(&[0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x01])).is_err());
    // An IP SAN of 5 bytes is refused by both.
    let real = x509_entry_for("certs/real/cloudflare-dns_ee.der");
    let tbs = tbs_of_certificate(&real.signed_entry).unwrap().to_vec();
    let ip = [0x87, 0x04, 1, 1, 1, 1];
    let at = tbs
        .windows(ip.len())
        .position(|w| w == ip)
        .expect("1.1.1.1 SAN");
    // Same length, so every enclosing length stays right: turn the 4-byte address into a 3-byte one + a NULL.
    let mut bad = tbs.clone();
    bad[at..at + 6].copy_from_slice(&[0x87, 0x03, 1, 1, 1, 0x00]);
    let precert = LogEntry {
        entry_type: EntryType::Precert,
        ..entry(&bad)
    };
    assert!(matches!(
        leaf_info(&precert),
        Err(CertError::BadIpAddress { .. }) | Err(CertError::Parse { .. })
    ));
    assert!(leaf_names(&precert).is_err());
}
