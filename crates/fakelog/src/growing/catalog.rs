//! Unique certificates on demand: real template entries whose serial number and timestamp are rewritten per
//! entry, in both wire forms (RFC 6962 `leaf_input` + `extra_data`, and the static-ct TileLeaf), without storing
//! any entry: a growing log holds only leaf hashes and regenerates entry bytes when a client asks for them.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use crate::FakeEntry;
use crate::tiled::wire::{tile_leaf_bytes, timestamped_entry};
use ctwatch::ct::leaf::{self, EntryType};
use ctwatch::ct::merkle::{self, Hash};

/// Bytes of the serial number rewritten per entry (its last bytes; the first two stay, so DER stays minimal and
/// the sign bit unchanged).
const UID_BYTES: usize = 6;

/// One real entry prepared for rewriting.
struct Template {
    leaf: Vec<u8>,
    extra: Vec<u8>,
    /// Offsets of the rewritten serial bytes in `leaf`, `extra` and `tile`.
    leaf_offs: Vec<usize>,
    extra_offs: Vec<usize>,
    tile: Vec<u8>,
    tile_offs: Vec<usize>,
    /// Length of the TimestampedEntry at the start of `tile` (its last 5 bytes are the leaf_index extension).
    te_len: usize,
}

/// The templates of a simulation and the issuers their chains name (served by tiled logs).
pub struct Catalog {
    templates: Vec<Template>,
    pub issuers: HashMap<[u8; 32], Vec<u8>>,
}

impl Catalog {
    /// Prepare `entries` (real RFC 6962 entries). Entries whose serial is too short to rewrite, or that do not
    /// decode, are skipped: every generated certificate must be unique.
    pub fn new(entries: &[FakeEntry]) -> Result<Catalog, String> {
        let mut templates = Vec::new();
        let mut issuers = HashMap::new();
        for e in entries {
            let Some(serial) = crate::serial_of(e) else {
                continue;
            };
            if serial.len() < UID_BYTES + 2 {
                continue;
            }
            let entry =
                leaf::decode_rfc6962(&e.leaf_input, &e.extra_data).map_err(|e| e.to_string())?;
            let mut fps = Vec::with_capacity(entry.chain.len());
            for der in &entry.chain {
                let fp: [u8; 32] = Sha256::digest(der).into();
                issuers.entry(fp).or_insert_with(|| der.clone());
                fps.push(fp);
            }
            let te = timestamped_entry(&entry, 0);
            let tile = tile_leaf_bytes(&te, &entry, &fps);
            let tail = &serial[serial.len() - UID_BYTES..];
            let at = |hay: &[u8]| -> Vec<usize> {
                find_all(hay, &serial)
                    .into_iter()
                    .map(|i| i + serial.len() - tail.len())
                    .collect()
            };
            let t = Template {
                leaf_offs: at(&e.leaf_input),
                extra_offs: at(&e.extra_data),
                tile_offs: at(&tile),
                leaf: e.leaf_input.clone(),
                extra: e.extra_data.clone(),
                te_len: te.len(),
                tile,
            };
            if t.leaf_offs.is_empty()
                || (entry.entry_type == EntryType::Precert && t.extra_offs.is_empty())
            {
                continue;
            }
            templates.push(t);
        }
        if templates.is_empty() {
            return Err("no usable template entries".into());
        }
        Ok(Catalog { templates, issuers })
    }

    pub fn len(&self) -> usize {
        self.templates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }

    /// The template `t` itself in its RFC 6962 form (names and issuer are those of every entry made from it).
    pub fn template(&self, t: usize) -> FakeEntry {
        let tpl = &self.templates[t];
        FakeEntry {
            leaf_input: tpl.leaf.clone(),
            extra_data: tpl.extra.clone(),
        }
    }

    /// Which template entry `index` of a log is made from.
    pub fn template_of(&self, index: u64) -> usize {
        (index % self.templates.len() as u64) as usize
    }

    /// The RFC 6962 form of entry `uid` (unique across the simulation) made from template `t` at `timestamp_ms`.
    pub fn rfc6962(&self, t: usize, uid: u64, timestamp_ms: u64) -> FakeEntry {
        let tpl = &self.templates[t];
        let mut leaf_input = tpl.leaf.clone();
        let mut extra_data = tpl.extra.clone();
        write_uid(&mut leaf_input, &tpl.leaf_offs, uid);
        write_uid(&mut extra_data, &tpl.extra_offs, uid);
        leaf_input[2..10].copy_from_slice(&timestamp_ms.to_be_bytes());
        FakeEntry {
            leaf_input,
            extra_data,
        }
    }

    /// The TileLeaf bytes of the same entry at position `index` of a tiled log, and its Merkle leaf hash.
    pub fn tile_leaf(&self, t: usize, uid: u64, timestamp_ms: u64, index: u64) -> (Vec<u8>, Hash) {
        let tpl = &self.templates[t];
        let mut tile = tpl.tile.clone();
        write_uid(&mut tile, &tpl.tile_offs, uid);
        tile[..8].copy_from_slice(&timestamp_ms.to_be_bytes());
        tile[tpl.te_len - 5..tpl.te_len].copy_from_slice(&index.to_be_bytes()[3..]);
        let mut leaf_input = Vec::with_capacity(tpl.te_len + 2);
        leaf_input.extend_from_slice(&[0, 0]);
        leaf_input.extend_from_slice(&tile[..tpl.te_len]);
        (tile, merkle::leaf_hash(&leaf_input))
    }
}

fn write_uid(buf: &mut [u8], offsets: &[usize], uid: u64) {
    let bytes = &uid.to_be_bytes()[8 - UID_BYTES..];
    for &o in offsets {
        buf[o..o + UID_BYTES].copy_from_slice(bytes);
    }
}

fn find_all(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    if needle.is_empty() || needle.len() > hay.len() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        if &hay[i..i + needle.len()] == needle {
            out.push(i);
            i += needle.len();
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_entries_are_unique_and_decode_in_both_forms() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/rfc6962/navigli2025h2-converted-from-tiles/get-entries_start-0_end-255.json"
        );
        let entries = crate::entries_from_get_entries_json(&std::fs::read(dir).unwrap()).unwrap();
        let cat = Catalog::new(&entries).unwrap();
        assert!(cat.len() > 200, "{} usable templates", cat.len());
        let mut tbs = std::collections::HashSet::new();
        for uid in [1u64, 2, 1 << 40] {
            for t in [0, 1, cat.len() - 1] {
                let e = cat.rfc6962(t, uid, 1_800_000_000_000);
                let d = leaf::decode_rfc6962(&e.leaf_input, &e.extra_data).unwrap();
                assert_eq!(d.timestamp_ms, 1_800_000_000_000);
                let info = ctwatch::ct::cert::cert_info(&d).unwrap();
                assert!(tbs.insert(info.tbs_sha256), "duplicate certificate");
                let (tile, hash) = cat.tile_leaf(t, uid, 1_800_000_000_000, 77);
                let leaves = leaf::decode_data_tile(&tile, 77).unwrap();
                assert_eq!(leaves[0].leaf_index, Some(77));
                assert_eq!(leaves[0].leaf.hash(), hash);
                let info2 = ctwatch::ct::cert::cert_info(&leaves[0].entry).unwrap();
                assert_eq!(info2.tbs_sha256, info.tbs_sha256);
            }
        }
    }
}
