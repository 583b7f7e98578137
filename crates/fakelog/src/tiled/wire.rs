//! Bytes on the wire of the fake tiled log: tile paths, TileLeaf records, gzip.

use ctwatch::ct::leaf::{EntryType, LogEntry};
use ctwatch::ctlog::static_ct::{TILE_WIDTH, tile_path};

pub(crate) fn gzip(body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(body).expect("writing to memory");
    enc.finish().expect("writing to memory")
}

/// `x001/x234/067.p/10` -> (1234067, 10); only the canonical spelling is accepted.
pub fn parse_tile_path(s: &str) -> Option<(u64, u64)> {
    let (index_part, width) = match s.split_once(".p/") {
        Some((i, w)) => (
            i,
            w.parse::<u64>()
                .ok()
                .filter(|w| (1..TILE_WIDTH).contains(w))?,
        ),
        None => (s, TILE_WIDTH),
    };
    let mut index = 0u64;
    let groups: Vec<&str> = index_part.split('/').collect();
    for (i, g) in groups.iter().enumerate() {
        let digits = if i + 1 < groups.len() {
            g.strip_prefix('x')?
        } else {
            g
        };
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        index = index.checked_mul(1000)?.checked_add(digits.parse().ok()?)?;
    }
    (tile_path(index, width) == s).then_some((index, width))
}

/// The TimestampedEntry of `entry` with a static-ct leaf_index extension for `index`.
pub(crate) fn timestamped_entry(entry: &LogEntry, index: u64) -> Vec<u8> {
    let mut out = entry.timestamp_ms.to_be_bytes().to_vec();
    match entry.entry_type {
        EntryType::X509 => {
            out.extend_from_slice(&[0, 0]);
            push_u24(&mut out, &entry.signed_entry);
        }
        EntryType::Precert => {
            out.extend_from_slice(&[0, 1]);
            out.extend_from_slice(&entry.issuer_key_hash.unwrap_or_default());
            push_u24(&mut out, &entry.signed_entry);
        }
    }
    // extensions<0..2^16-1> = { type 0 (leaf_index), u16 length 5, 40-bit index }
    out.extend_from_slice(&[0, 8, 0, 0, 5]);
    out.extend_from_slice(&index.to_be_bytes()[3..]);
    out
}

/// TileLeaf = TimestampedEntry | (precert: u24 pre_certificate) | u16-length list of chain fingerprints.
pub(crate) fn tile_leaf_bytes(
    timestamped: &[u8],
    entry: &LogEntry,
    fingerprints: &[[u8; 32]],
) -> Vec<u8> {
    let mut out = timestamped.to_vec();
    if entry.entry_type == EntryType::Precert {
        push_u24(
            &mut out,
            entry.pre_certificate.as_deref().unwrap_or_default(),
        );
    }
    out.extend_from_slice(&((fingerprints.len() * 32) as u16).to_be_bytes());
    for fp in fingerprints {
        out.extend_from_slice(fp);
    }
    out
}

fn push_u24(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(data);
}
