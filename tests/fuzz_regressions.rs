//! What the fuzz targets (fuzz/, cargo-fuzz) found, kept as ordinary tests so that it stays fixed without a
//! fuzzer: every input under fuzz/regressions/<target>/ and every real seed under fuzz/seeds/<target>/ is replayed
//! through the very code the target runs (fuzz/harness.rs), and the hostile shapes found while fuzzing that are
//! too large to keep as files are built here.
//!
//! See fuzz/README.md for how the targets are run and how a finding becomes a file under fuzz/regressions/.

#[path = "../fuzz/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ctwatch::ct::leaf::{self, EntryType, LogEntry};
use ctwatch::ct::{cert, checkpoint, der, loglist};

fn fuzz_dir(kind: &str, target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind)
        .join(target)
}

/// The files of `fuzz/<kind>/<target>/`, sorted (none when the folder does not exist).
fn inputs(kind: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(dir) = std::fs::read_dir(fuzz_dir(kind, target)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = dir.map(|e| e.unwrap().path()).collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

/// Run `target` on `data`, failing on a panic or on more than `limit` (debug build, shared CI machine: generous).
fn replay(target: &str, path: &Path, data: &[u8], limit: Duration) {
    let start = Instant::now();
    harness::run(target, data);
    let took = start.elapsed();
    assert!(
        took < limit,
        "{target}: {} took {took:?} (limit {limit:?})",
        path.display()
    );
}

/// Every input under fuzz/regressions/<target>/ (none yet: the runs recorded in fuzz/README.md found nothing the
/// targets flag; the hostile shapes found by review are built by the tests below and in `ct::checkpoint`).
#[test]
fn kept_fuzz_findings_stay_fixed() {
    for target in harness::TARGETS {
        for (path, data) in inputs("regressions", target) {
            replay(target, &path, &data, Duration::from_secs(10));
        }
    }
}

#[test]
fn every_real_seed_runs_through_its_target() {
    for target in harness::TARGETS {
        let seeds = inputs("seeds", target);
        assert!(!seeds.is_empty(), "fuzz/seeds/{target}/ is empty");
        for (path, data) in seeds {
            replay(target, &path, &data, Duration::from_secs(10));
        }
    }
}

/// The seeds are real data the parsers accept (so the fuzzers start from the accepting paths, not from errors).
#[test]
fn the_seeds_are_accepted_by_their_parsers() {
    for (path, data) in inputs("seeds", "rfc6962_entry") {
        let n = usize::from(u16::from_be_bytes([data[0], data[1]]));
        let (leaf_input, extra_data) = data[2..].split_at(n);
        let entry = leaf::decode_rfc6962(leaf_input, extra_data)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(entry.chain_error.is_none(), "{}", path.display());
        cert::leaf_info(&entry).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    for (path, data) in inputs("seeds", "data_tile") {
        let leaves = match leaf::decode_data_tile(&data, 0) {
            Err(leaf::LeafError::LeafIndexMismatch { found, .. }) => {
                leaf::decode_data_tile(&data, found)
            }
            other => other,
        }
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!leaves.is_empty());
        for l in &leaves {
            cert::leaf_info(&l.entry).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
    let keys = std::fs::read_to_string(fuzz_dir("", "checkpoint-keys.txt")).unwrap();
    let checkpoints = inputs("seeds", "checkpoint");
    assert_eq!(checkpoints.len(), 10);
    for (path, data) in checkpoints {
        let origin = std::str::from_utf8(&data).unwrap().lines().next().unwrap();
        let key = keys
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{origin} ")))
            .unwrap_or_else(|| panic!("no key for {origin}"));
        let key = ctwatch::ct::sig::LogKey::from_spki_der(&b64(key)).unwrap();
        checkpoint::parse_and_verify(&data, origin, &key)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    for (path, data) in inputs("seeds", "log_list") {
        let list = loglist::parse(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(list.logs.len() > 20, "{}", path.display());
    }
    for (path, data) in inputs("seeds", "der") {
        let n = usize::from(u16::from_be_bytes([data[0], data[1]]));
        let entry = x509_entry(data[2..2 + n].to_vec());
        cert::leaf_info(&entry).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

fn b64(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .unwrap()
}

fn x509_entry(certificate: Vec<u8>) -> LogEntry {
    LogEntry {
        timestamp_ms: 0,
        entry_type: EntryType::X509,
        signed_entry: certificate.into(),
        issuer_key_hash: None,
        pre_certificate: None,
        chain: Vec::new(),
        chain_error: None,
    }
}

/// The real precertificate TBS of navigli entry 281 (24 SANs) with its subjectAltName replaced by `names`.
fn tbs_with_names(names: &[String]) -> Vec<u8> {
    let precert = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/certs/le-staging-precerts-from-navigli/navigli_idx281_max-24-sans.der"
    ))
    .unwrap();
    let tbs = cert::tbs_of_certificate(&precert).unwrap();
    let (tbs, _) = der::read_tlv(tbs).unwrap();
    let mut general_names = Vec::new();
    for name in names {
        der::write_tlv(0x82, name.as_bytes(), &mut general_names); // [2] dNSName
    }
    let mut value = Vec::new();
    der::write_tlv(der::TAG_SEQUENCE, &general_names, &mut value);
    let mut san = Vec::new();
    der::write_tlv(der::TAG_OID, &[0x55, 0x1d, 0x11], &mut san);
    der::write_tlv(der::TAG_OCTET_STRING, &value, &mut san);
    let san = der::build_constructed(der::TAG_SEQUENCE, &[&san]);

    let mut fields: Vec<Vec<u8>> = Vec::new();
    for field in der::children(tbs.content).unwrap() {
        if field.tag != der::context_constructed(3) {
            fields.push(field.raw.to_vec());
            continue;
        }
        let (list, _) = der::read_tlv(field.content).unwrap();
        let mut extensions: Vec<&[u8]> = Vec::new();
        for ext in der::children(list.content).unwrap() {
            let (oid, _) = der::read_tlv(ext.content).unwrap();
            extensions.push(if oid.content == [0x55, 0x1d, 0x11] {
                &san
            } else {
                ext.raw
            });
        }
        let list = der::build_constructed(der::TAG_SEQUENCE, &extensions);
        fields.push(der::build_constructed(
            der::context_constructed(3),
            &[&list],
        ));
    }
    let parts: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
    der::build_constructed(der::TAG_SEQUENCE, &parts)
}

/// A leaf is whatever the log put in its tree. A precertificate with 100,000 distinct SANs (2.2 MB, far below the
/// 16 MiB a leaf may hold) took minutes in `leaf_info`, which de-duplicated names by scanning the list for each
/// one (quadratic); every entry of a firehose goes through it, so one such leaf stalled the tailer.
#[test]
fn a_leaf_with_100k_names_is_read_in_linear_time() {
    let names: Vec<String> = (0..100_000)
        .map(|i| format!("n{i:06}.example.com"))
        .collect();
    let entry = LogEntry {
        timestamp_ms: 0,
        entry_type: EntryType::Precert,
        signed_entry: tbs_with_names(&names).into(),
        issuer_key_hash: Some([0; 32]),
        pre_certificate: None,
        chain: Vec::new(),
        chain_error: None,
    };
    let start = Instant::now();
    let info = cert::leaf_info(&entry).unwrap();
    let took = start.elapsed();
    // The SANs in order, then the subject CN (a host name, not among them).
    assert_eq!(info.dns_names.len(), names.len() + 1);
    assert_eq!(info.dns_names[..names.len()], names[..]);
    assert!(took < Duration::from_secs(10), "leaf_info took {took:?}");
}
