//! What each fuzz target does with its input, in one place: the libFuzzer targets (fuzz/fuzz_targets/*.rs) call
//! these functions, and `tests/fuzz_regressions.rs` in the ctwatch crate replays every input kept under
//! fuzz/regressions/<target>/ through the same function, so a finding stays fixed without cargo-fuzz.
//!
//! Each function takes arbitrary bytes and must neither panic nor run long nor allocate without bound; results
//! are thrown away (a parser's job here is to say no cleanly).
#![allow(dead_code)] // each fuzz target uses one of these

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ctwatch::ct::leaf::{self, EntryType, LeafError, LogEntry};
use ctwatch::ct::merkle::{self, CollapsedTree, Hash};
use ctwatch::ct::sig::LogKey;
use ctwatch::ct::{cert, chain, checkpoint, der, loglist, sth};
use ctwatch::ctlog::rfc6962;
use ctwatch::watchlist::{MatchInput, Watchlist};

/// The names of the targets, as in fuzz/Cargo.toml and fuzz/regressions/.
pub const TARGETS: &[&str] = &[
    "rfc6962_entry",
    "data_tile",
    "checkpoint",
    "log_json",
    "log_list",
    "der",
    "watchlist",
    "config",
];

/// Run target `name` on `data`.
pub fn run(name: &str, data: &[u8]) {
    match name {
        "rfc6962_entry" => rfc6962_entry(data),
        "data_tile" => data_tile(data),
        "checkpoint" => checkpoint(data),
        "log_json" => log_json(data),
        "log_list" => log_list(data),
        "der" => der(data),
        "watchlist" => watchlist(data),
        "config" => config(data),
        other => panic!("unknown fuzz target {other:?}"),
    }
}

/// Everything the tailer does with a decoded entry: leaf facts, then the chain check.
fn facts(entry: &LogEntry) {
    let _ = cert::leaf_info(entry);
    let _ = chain::check(entry);
}

/// RFC 6962 `leaf_input` + `extra_data`. Input: u16 big-endian length n of leaf_input, leaf_input, extra_data.
pub fn rfc6962_entry(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let n = usize::from(u16::from_be_bytes([data[0], data[1]])).min(data.len() - 2);
    let (leaf_input, extra_data) = data[2..].split_at(n);
    let _ = leaf::decode_extra_data(EntryType::Precert, extra_data);
    if let Ok(entry) = leaf::decode_rfc6962(leaf_input, extra_data) {
        facts(&entry);
    }
}

/// A static-ct data tile (plain or gzip), then the first few entries' facts. The tile index is not part of the
/// input: a tile whose first entry names another `leaf_index` than 0 is decoded again at that index (what a
/// client asking for the right tile would see), so real tiles of any index get past the `leaf_index` check.
pub fn data_tile(data: &[u8]) {
    let leaves = match leaf::decode_data_tile(data, 0) {
        Err(LeafError::LeafIndexMismatch {
            position: 0, found, ..
        }) => leaf::decode_data_tile(data, found),
        other => other,
    };
    if let Ok(leaves) = leaves {
        for l in leaves.iter().take(4) {
            facts(&l.entry);
        }
    }
}

/// A signed note (checkpoint), verified with the real key of the log its first line names (fuzz/checkpoint-keys.txt,
/// the ten logs whose checkpoints seed the corpus), else with Tuscolo's: every real seed reaches a successful
/// signature check, and mutations explore the signature lines around it.
pub fn checkpoint(data: &[u8]) {
    const DEFAULT_ORIGIN: &str = "tuscolo2026h2.sunlight.geomys.org";
    static KEYS: OnceLock<Vec<(String, LogKey)>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        include_str!("checkpoint-keys.txt")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let (origin, key) = l.split_once(' ').expect("origin and key");
                let spki = B64.decode(key.trim()).expect("base64 key");
                let key = LogKey::from_spki_der(&spki).expect("supported log key");
                (origin.to_string(), key)
            })
            .collect()
    });
    let first_line = data.split(|&b| b == b'\n').next().unwrap_or_default();
    let (origin, key) = keys
        .iter()
        .find(|(origin, _)| origin.as_bytes() == first_line)
        .or_else(|| keys.iter().find(|(origin, _)| origin == DEFAULT_ORIGIN))
        .expect("Tuscolo's key is listed");
    let _ = checkpoint::parse_and_verify(data, origin, key);
}

/// Argon2020's key and real tree heads (shared/ctdata/rfc6962/argon2020): the log_json seeds verify against them.
const ARGON2020_KEY: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE6Tx2p1yKY4015NyIYvdrk36es0uAc1zA4PQ+TGRY+3ZjUTIYY9Wyu+3q/147JG4vNVKLtDWarZwVqGkg6lAYzA==";
const ARGON2020_OLD_SIZE: u64 = 3_654_490;
const ARGON2020_OLD_ROOT: &str = "AuIZ5V6sDUj1vn3Y1K85oOaQ7y+FJJKtyRTl1edIKBQ=";
const ARGON2020_SIZE: u64 = 961_984_011;
const ARGON2020_ROOT: &str = "AWxD3p811N3m4WTinWRXPvBZHfT9IR9g/R4C7SKLPiU=";
const ARGON2020_LEAF_10000_HASH: &str = "nCs3mfIydh9x4CKyQ+u2xtmpxmFggA5MLymHwNQSlLg=";

struct Argon2020 {
    key: LogKey,
    old_root: Hash,
    root: Hash,
    leaf_10000: Hash,
}

fn argon2020() -> &'static Argon2020 {
    static A: OnceLock<Argon2020> = OnceLock::new();
    let hash = |b64: &str| -> Hash { B64.decode(b64).unwrap().try_into().unwrap() };
    A.get_or_init(|| Argon2020 {
        key: LogKey::from_spki_der(&B64.decode(ARGON2020_KEY).unwrap()).unwrap(),
        old_root: hash(ARGON2020_OLD_ROOT),
        root: hash(ARGON2020_ROOT),
        leaf_10000: hash(ARGON2020_LEAF_10000_HASH),
    })
}

/// What an RFC 6962 log answers in JSON, decoded and checked by the functions the client uses. The first byte
/// picks the endpoint (`% 4`), the rest is the body:
/// 0 `get-sth` (parsed, signature checked with Argon2020's key: the DigitallySigned parser);
/// 1 `get-entries` (items base64-decoded, leaves decoded, then the first entries' facts);
/// 2 `get-sth-consistency` (the proof checked between Argon2020's real heads 3,654,490 and 961,984,011);
/// 3 `get-proof-by-hash` (the audit path of Argon2020's entry 10,000, turned into a collapsed tree as the tailer
///   does when it starts in the middle of a log).
pub fn log_json(data: &[u8]) {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let a = argon2020();
    match which % 4 {
        0 => {
            if let Ok(head) = sth::parse_get_sth(body) {
                let _ = head.verify(&a.key);
            }
        }
        1 => {
            if let Ok(mut entries) = rfc6962::decode_get_entries(body.to_vec().into(), 0, 256) {
                for raw in entries.iter_mut().take(4) {
                    if let Ok(entry) = raw.entry.as_mut() {
                        // What the tailer does for an entry that matters: read the served extra_data.
                        raw.extra_data.complete(entry);
                        facts(entry);
                    }
                }
            }
        }
        2 => {
            if let Ok(proof) = rfc6962::decode_consistency(body) {
                let _ = merkle::verify_consistency(
                    ARGON2020_OLD_SIZE,
                    ARGON2020_SIZE,
                    &a.old_root,
                    &a.root,
                    &proof,
                );
            }
        }
        _ => {
            if let Ok((index, path)) = rfc6962::decode_proof_by_hash(body) {
                let _ = CollapsedTree::from_inclusion_proof(
                    index,
                    ARGON2020_SIZE,
                    a.leaf_10000,
                    &path,
                    &a.root,
                );
            }
        }
    }
}

/// A v3 log list (logs and tiled_logs).
pub fn log_list(data: &[u8]) {
    let _ = loglist::parse(data);
}

/// The DER helpers and what is built on them. Input: u16 big-endian length n, a certificate of n bytes, then the
/// DER of its issuer (maybe empty). The certificate is taken as an x509 entry (chain[0] = the issuer) and as a
/// precertificate (its TBS as the leaf, itself as the served pre_certificate; the issuer as chain[0], then as
/// chain[0] and chain[1] for the precertificate-signing-certificate path). The seeds pair real certificates with
/// their real issuers, so the signature checks start out succeeding.
pub fn der(data: &[u8]) {
    if let Ok((tlv, _)) = der::read_tlv(data) {
        let _ = der::children(tlv.content);
    }
    let _ = cert::tbs_identity(data);
    if data.len() < 2 {
        return;
    }
    let n = usize::from(u16::from_be_bytes([data[0], data[1]])).min(data.len() - 2);
    let (certificate, issuer) = data[2..].split_at(n);
    let entry = |entry_type, signed_entry: &[u8], chain: &[&[u8]]| LogEntry {
        timestamp_ms: 0,
        entry_type,
        signed_entry: signed_entry.to_vec().into(),
        issuer_key_hash: (entry_type == EntryType::Precert).then_some([0; 32]),
        pre_certificate: (entry_type == EntryType::Precert).then(|| certificate.to_vec().into()),
        chain: chain.iter().map(|c| c.to_vec()).collect(),
        chain_error: None,
    };
    facts(&entry(EntryType::X509, certificate, &[issuer]));
    let Ok(tbs) = cert::tbs_of_certificate(certificate) else {
        return;
    };
    facts(&entry(EntryType::Precert, tbs, &[issuer]));
    let _ = chain::check(&entry(EntryType::Precert, tbs, &[issuer, issuer]));
}

/// A watchlist file, then matching the words of the file itself and two fixed names against what parsed.
pub fn watchlist(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(wl) = Watchlist::parse_str("fuzz.txt", text) {
        let names: Vec<String> = text
            .split_whitespace()
            .take(8)
            .map(|s| s.to_string())
            .chain([
                "www.example.com".to_string(),
                "xn--pypal-4ve.com".to_string(),
            ])
            .collect();
        let _ = wl.match_cert(&MatchInput {
            dns_names: &names,
            ip_addresses: &["192.0.2.1".to_string()],
            issuer_org: Some("Let's Encrypt"),
            issuer_cn: Some("R10"),
            issuer_spki_sha256: None,
            issuer_proven: true,
        });
    }
}

/// The TOML configuration file.
pub fn config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ctwatch::config::parse(text);
    }
}
