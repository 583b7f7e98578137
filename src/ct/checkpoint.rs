//! Static-ct checkpoints: signed notes (c2sp.org/signed-note, tlog-checkpoint) carrying an RFC6962NoteSignature
//! (c2sp.org/static-ct-api).
//!
//! ```text
//! <origin>\n<tree size>\n<base64 root hash>\n[extension lines\n]
//! \n
//! — <key name> <base64(key ID[4] | timestamp u64 | DigitallySigned(TreeHeadSignature))>\n   (one or more)
//! ```

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha256};

use crate::ct::merkle::Hash;
use crate::ct::sig::LogKey;
use crate::ct::sth::tree_head_signature_input;

/// A verified checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub tree_size: u64,
    pub root_hash: Hash,
    /// From the log's signature.
    pub timestamp_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint is not valid UTF-8 text")]
    NotText,
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
    #[error("checkpoint origin is {found:?}, expected {expected:?}")]
    WrongOrigin { expected: String, found: String },
    #[error("checkpoint has no valid signature by the log's key ({0})")]
    NoValidSignature(String),
}

/// Most signature lines a checkpoint may carry. c2sp.org/signed-note asks verifiers to bound the number of signatures
/// and to accept at least 16; real checkpoints carry 2 to 6 (log, grease, witnesses, post-quantum). Without a bound
/// a hostile log's multi-megabyte note would be scanned line by line on every poll.
pub const MAX_SIGNATURE_LINES: usize = 100;

/// The RFC6962NoteSignature key ID: SHA-256(key name | "\n" | 0x05 | log ID)[:4].
pub fn key_id(name: &str, log_id: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n\x05");
    h.update(log_id);
    h.finalize()[..4].try_into().expect("4 bytes")
}

/// Parse `note`, check its origin, and verify the log's RFC6962NoteSignature with `key`. Signature lines of other
/// keys or algorithms (grease, witness cosignatures, post-quantum signatures) are ignored. A signature of the log's
/// key (its name and key ID) that does not verify rejects the note at once, as c2sp.org/signed-note recommends: at
/// most one signature is ever checked, whatever the log sends. More than [`MAX_SIGNATURE_LINES`] lines are refused.
pub fn parse_and_verify(
    note: &[u8],
    expected_origin: &str,
    key: &LogKey,
) -> Result<Checkpoint, CheckpointError> {
    let text = std::str::from_utf8(note).map_err(|_| CheckpointError::NotText)?;
    let Some(split) = text.find("\n\n") else {
        return Err(CheckpointError::Malformed(
            "no blank line before the signatures".into(),
        ));
    };
    let (body, sigs) = (&text[..split + 1], &text[split + 2..]);
    let mut lines = body.lines();
    let origin = lines.next().unwrap_or_default();
    if origin != expected_origin {
        return Err(CheckpointError::WrongOrigin {
            expected: expected_origin.into(),
            found: origin.into(),
        });
    }
    let size_line = lines
        .next()
        .ok_or_else(|| CheckpointError::Malformed("missing tree size line".into()))?;
    let tree_size: u64 = size_line.parse().map_err(|_| {
        CheckpointError::Malformed(format!("tree size {size_line:?} is not a number"))
    })?;
    let root_line = lines
        .next()
        .ok_or_else(|| CheckpointError::Malformed("missing root hash line".into()))?;
    let root = B64
        .decode(root_line)
        .map_err(|e| CheckpointError::Malformed(format!("root hash: {e}")))?;
    let root_hash: Hash = root.as_slice().try_into().map_err(|_| {
        CheckpointError::Malformed(format!("root hash is {} bytes, want 32", root.len()))
    })?;

    let want_id = key_id(expected_origin, &key.log_id());
    let msg_for = |ts: u64| tree_head_signature_input(tree_size, ts, &root_hash);
    let lines = sigs.lines().count();
    if lines > MAX_SIGNATURE_LINES {
        return Err(CheckpointError::Malformed(format!(
            "{lines} signature lines (at most {MAX_SIGNATURE_LINES} accepted)"
        )));
    }
    for line in sigs.lines() {
        let Some(rest) = line.strip_prefix("— ") else {
            return Err(CheckpointError::Malformed(format!(
                "signature line without '— ': {line:?}"
            )));
        };
        let Some((name, b64)) = rest.split_once(' ') else {
            continue;
        };
        if name != expected_origin {
            continue;
        }
        let Ok(sig) = B64.decode(b64) else { continue };
        if sig.len() < 4 + 8 + 4 || sig[..4] != want_id {
            continue; // another algorithm under the same name (e.g. Ed25519, ML-DSA)
        }
        let ts = u64::from_be_bytes(sig[4..12].try_into().expect("8 bytes"));
        return match key.verify_digitally_signed(&msg_for(ts), &sig[12..]) {
            Ok(()) => Ok(Checkpoint {
                origin: origin.to_string(),
                tree_size,
                root_hash,
                timestamp_ms: ts,
            }),
            Err(e) => Err(CheckpointError::NoValidSignature(e.to_string())),
        };
    }
    Err(CheckpointError::NoValidSignature(
        "no signature line by the log".into(),
    ))
}

/// A signed checkpoint for a test log (ECDSA P-256 key).
pub fn sign_checkpoint(
    origin: &str,
    tree_size: u64,
    root: &Hash,
    timestamp_ms: u64,
    key: &ring::signature::EcdsaKeyPair,
    log_id: &[u8; 32],
) -> String {
    let ds = crate::ct::sth::sign_tree_head(key, tree_size, timestamp_ms, root);
    let mut sig = key_id(origin, log_id).to_vec();
    sig.extend_from_slice(&timestamp_ms.to_be_bytes());
    sig.extend_from_slice(&ds);
    format!(
        "{origin}\n{tree_size}\n{}\n\n— {origin} {}\n",
        B64.encode(root),
        B64.encode(sig)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn real() -> Vec<(String, Vec<u8>, LogKey, serde_json::Value)> {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/static-ct/checkpoints/"
        );
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(format!("{dir}logs.json")).unwrap()).unwrap();
        let logs: Vec<(String, serde_json::Value)> = match &meta["logs"] {
            serde_json::Value::Array(a) => a
                .iter()
                .map(|p| (p[0].as_str().unwrap().to_string(), p[1].clone()))
                .collect(),
            serde_json::Value::Object(o) => o.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            _ => panic!("logs.json layout"),
        };
        logs.into_iter()
            .map(|(origin, l)| {
                let note = std::fs::read(format!("{dir}{}", l["file"].as_str().unwrap())).unwrap();
                let key = LogKey::from_spki_der(&B64.decode(l["key"].as_str().unwrap()).unwrap())
                    .unwrap();
                let expected = meta["verification_by_collector"][&origin].clone();
                (origin, note, key, expected)
            })
            .collect()
    }

    #[test]
    fn ten_real_checkpoints_verify() {
        let all = real();
        assert_eq!(all.len(), 10);
        for (origin, note, key, expected) in &all {
            let cp =
                parse_and_verify(note, origin, key).unwrap_or_else(|e| panic!("{origin}: {e}"));
            assert_eq!(
                cp.tree_size,
                expected["tree_size"].as_u64().unwrap(),
                "{origin}"
            );
            assert_eq!(
                B64.encode(cp.root_hash),
                expected["root"].as_str().unwrap(),
                "{origin}"
            );
            assert_eq!(
                cp.timestamp_ms,
                expected["timestamp_ms"].as_u64().unwrap(),
                "{origin}"
            );
        }
    }

    #[test]
    fn one_altered_byte_fails() {
        for (origin, note, key, _) in real() {
            let text = String::from_utf8(note.clone()).unwrap();
            let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
            // size
            let mut l = lines.clone();
            l[1] = format!("{}", l[1].parse::<u64>().unwrap() + 1);
            assert!(
                parse_and_verify(l.join("\n").as_bytes(), &origin, &key).is_err(),
                "{origin}: size"
            );
            // root: flip a base64 character that stays valid
            let mut l = lines.clone();
            let mut root = B64.decode(&l[2]).unwrap();
            root[0] ^= 1;
            l[2] = B64.encode(root);
            assert!(
                parse_and_verify(l.join("\n").as_bytes(), &origin, &key).is_err(),
                "{origin}: root"
            );
            // signature: flip one byte of every signature by the log's name
            for line in lines.iter_mut().skip(4) {
                if let Some(b64) = line.strip_prefix(&format!("— {origin} ")) {
                    let mut sig = B64.decode(b64).unwrap();
                    let n = sig.len();
                    sig[n - 2] ^= 1;
                    *line = format!("— {origin} {}", B64.encode(sig));
                }
            }
            let err = parse_and_verify(lines.join("\n").as_bytes(), &origin, &key).unwrap_err();
            assert!(
                matches!(err, CheckpointError::NoValidSignature(_)),
                "{origin}: {err}"
            );
            // origin
            let err = parse_and_verify(&note, "evil.example", &key).unwrap_err();
            assert!(matches!(err, CheckpointError::WrongOrigin { .. }));
        }
    }

    /// The real Tuscolo checkpoint split into its text and its signature lines.
    fn tuscolo() -> (String, Vec<String>, LogKey) {
        let (origin, note, key, _) = real()
            .into_iter()
            .find(|(origin, ..)| origin == "tuscolo2026h2.sunlight.geomys.org")
            .unwrap();
        let text = String::from_utf8(note).unwrap();
        let (body, sigs) = text.split_once("\n\n").unwrap();
        assert!(sigs.lines().any(|l| l.starts_with(&format!("— {origin} "))));
        (
            format!("{body}\n\n"),
            sigs.lines().map(str::to_string).collect(),
            key,
        )
    }

    #[test]
    fn signature_lines_are_bounded() {
        let (body, sigs, key) = tuscolo();
        let origin = "tuscolo2026h2.sunlight.geomys.org";
        let grease = sigs
            .iter()
            .find(|l| !l.starts_with(&format!("— {origin} ")))
            .unwrap();
        // Grease lines before the real ones, up to the limit: still verifies.
        let mut lines = vec![grease.clone(); MAX_SIGNATURE_LINES - sigs.len()];
        lines.extend(sigs.iter().cloned());
        let note = format!("{body}{}\n", lines.join("\n"));
        assert!(parse_and_verify(note.as_bytes(), origin, &key).is_ok());
        // One more line: refused before any signature is checked.
        let note = format!("{body}{grease}\n{}\n", lines.join("\n"));
        let err = parse_and_verify(note.as_bytes(), origin, &key).unwrap_err();
        assert_eq!(
            err,
            CheckpointError::Malformed(format!(
                "{} signature lines (at most {MAX_SIGNATURE_LINES} accepted)",
                MAX_SIGNATURE_LINES + 1
            ))
        );
    }

    #[test]
    fn a_failing_signature_of_the_log_key_rejects_the_note() {
        // A copy of the log's signature line with one byte changed, placed before the real one: the note is
        // rejected at the first (c2sp.org/signed-note: a known key's failing signature rejects the whole note), so
        // a hostile log cannot make us verify signature after signature.
        let (body, sigs, key) = tuscolo();
        let origin = "tuscolo2026h2.sunlight.geomys.org";
        let prefix = format!("— {origin} ");
        let good = sigs
            .iter()
            .find(|l| {
                l.strip_prefix(&prefix)
                    .and_then(|b| B64.decode(b).ok())
                    .is_some_and(|sig| sig[..4] == key_id(origin, &key.log_id()))
            })
            .unwrap();
        let mut sig = B64.decode(good.strip_prefix(&prefix).unwrap()).unwrap();
        let n = sig.len();
        sig[n - 2] ^= 1;
        let bad = format!("{prefix}{}", B64.encode(sig));
        let note = format!("{body}{bad}\n{}\n", sigs.join("\n"));
        let err = parse_and_verify(note.as_bytes(), origin, &key).unwrap_err();
        assert!(matches!(err, CheckpointError::NoValidSignature(_)), "{err}");
    }

    #[test]
    fn signed_test_checkpoint_roundtrips() {
        let (kp, spki) = crate::ct::sth::testkey::test_p256_keypair();
        let key = LogKey::from_spki_der(&spki).unwrap();
        let note = sign_checkpoint(
            "log.example/test",
            1024,
            &[5; 32],
            1_700_000_000_123,
            &kp,
            &key.log_id(),
        );
        let cp = parse_and_verify(note.as_bytes(), "log.example/test", &key).unwrap();
        assert_eq!(
            (cp.tree_size, cp.root_hash, cp.timestamp_ms),
            (1024, [5; 32], 1_700_000_000_123)
        );
        let (_, other) = crate::ct::sth::testkey::test_p256_keypair();
        let other = LogKey::from_spki_der(&other).unwrap();
        assert!(parse_and_verify(note.as_bytes(), "log.example/test", &other).is_err());
    }
}
