//! Decoding CT log entries: RFC 6962 `get-entries` items and static-ct-api data tiles.
//!
//! Pure: bytes in, [`LogEntry`] values out. Both formats carry the same `TimestampedEntry`, so one parser serves
//! both; they differ only in the wrapper (RFC 6962 puts the chain in `extra_data`, a data tile appends the
//! pre-certificate and the chain *fingerprints* after each entry).
//!
//! ```text
//! struct {                                   // RFC 6962 leaf_input
//!     Version version;                       // u8, 0 = v1
//!     MerkleLeafType leaf_type;              // u8, 0 = timestamped_entry
//!     TimestampedEntry timestamped_entry;
//! } MerkleTreeLeaf;
//!
//! struct {
//!     uint64 timestamp;
//!     LogEntryType entry_type;               // u16, 0 = x509_entry, 1 = precert_entry
//!     select(entry_type) {
//!         case x509_entry: ASN.1Cert;        // opaque<1..2^24-1>
//!         case precert_entry: PreCert;       // opaque issuer_key_hash[32]; opaque tbs<1..2^24-1>
//!     } signed_entry;
//!     CtExtensions extensions;               // opaque<0..2^16-1>
//! } TimestampedEntry;
//!
//! struct {                                   // static-ct-api data tile entry
//!     TimestampedEntry timestamped_entry;
//!     select(entry_type) {
//!         case x509_entry: Empty;
//!         case precert_entry: ASN.1Cert pre_certificate;
//!     };
//!     Fingerprint certificate_chain<0..2^16-1>;   // SHA-256 of each chain cert
//! } TileLeaf;
//! ```
//!
//! Every length is checked against the bytes actually present before anything is copied, so a hostile length
//! field costs an error, never an allocation.

use std::io::Read;

use bytes::Bytes;
use serde::Serialize;
use thiserror::Error;

use crate::ct::merkle::{self, Hash};

/// A data tile holds at most this many entries (static-ct-api: tiles are 256 entries wide).
pub const TILE_WIDTH: usize = 256;

/// Upper bound for a decompressed data tile. Real full tiles are around 0.4-1 MiB; the bound only exists so that a
/// gzip bomb cannot exhaust memory.
pub const MAX_TILE_BYTES: u64 = 64 << 20;

/// The static-ct-api `leaf_index` extension type.
const EXTENSION_LEAF_INDEX: u8 = 0;

/// Why a leaf, `extra_data` or data tile could not be decoded. Offsets are byte positions inside the named buffer
/// (for tiles: inside the decompressed tile body).
#[derive(Debug, Error)]
pub enum LeafError {
    #[error("{what}: needs {needed} bytes at offset {offset}, only {available} left")]
    Truncated {
        what: &'static str,
        offset: usize,
        needed: usize,
        available: usize,
    },
    #[error("{what}: {len} unexpected trailing bytes at offset {offset}")]
    TrailingData {
        what: &'static str,
        offset: usize,
        len: usize,
    },
    #[error("leaf_input: unknown MerkleTreeLeaf version {0} (only 0 = v1 is defined)")]
    UnknownVersion(u8),
    #[error("leaf_input: unknown leaf_type {0} (only 0 = timestamped_entry is defined)")]
    UnknownLeafType(u8),
    #[error(
        "{what}: unknown entry_type {entry_type} at offset {offset} (0 = x509_entry, 1 = precert_entry)"
    )]
    UnknownEntryType {
        what: &'static str,
        offset: usize,
        entry_type: u16,
    },
    #[error("{what}: empty certificate at offset {offset} (ASN.1Cert must be at least 1 byte)")]
    EmptyCertificate { what: &'static str, offset: usize },
    #[error("tile entry extensions: {reason} at offset {offset}")]
    BadExtension { offset: usize, reason: &'static str },
    #[error(
        "tile entry: chain fingerprint list of {len} bytes at offset {offset} is not a multiple of 32"
    )]
    BadFingerprintList { offset: usize, len: usize },
    #[error("data tile entry {position}: leaf_index extension is {found}, expected {expected}")]
    LeafIndexMismatch {
        position: usize,
        expected: u64,
        found: u64,
    },
    #[error(
        "data tile: more than {TILE_WIDTH} entries (entry {TILE_WIDTH} starts at offset {offset})"
    )]
    TooManyEntries { offset: usize },
    #[error("data tile: body is empty")]
    EmptyTile,
    #[error("data tile: gzip decompression failed")]
    Gzip(#[source] std::io::Error),
    #[error("data tile: decompressed body exceeds {MAX_TILE_BYTES} bytes")]
    TileTooLarge,
    #[error("data tile entry {position} (log index {index})")]
    InTileEntry {
        position: usize,
        index: u64,
        #[source]
        source: Box<LeafError>,
    },
}

/// What kind of certificate an entry logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryType {
    X509,
    Precert,
}

impl EntryType {
    /// The name used in storage and JSON: `"x509"` or `"precert"`.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryType::X509 => "x509",
            EntryType::Precert => "precert",
        }
    }
}

/// One decoded log entry, independent of the log's API flavour.
///
/// Trust: only `timestamp_ms`, `entry_type`, `signed_entry` and `issuer_key_hash` come from the Merkle leaf, which
/// the signed tree head proves. `pre_certificate` and `chain` are served next to the leaf (RFC 6962 `extra_data`,
/// the TileLeaf's trailing fields and `issuer/` files) and prove nothing until `ct::chain` has checked them; when
/// they cannot even be read, the entry still decodes and `chain_error` says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub timestamp_ms: u64,
    pub entry_type: EntryType,
    /// Verified (in the leaf). x509: the certificate DER. precert: the TBSCertificate (poison removed by the log;
    /// issuer and authority key id rewritten when a precertificate signing certificate was used). A view of the
    /// downloaded buffer (no copy per entry); copy it out to keep it beyond the batch.
    pub signed_entry: Bytes,
    /// precert only, verified (in the leaf): SHA-256 of the issuing CA's SubjectPublicKeyInfo.
    pub issuer_key_hash: Option<[u8; 32]>,
    /// precert only, NOT verified: the pre_certificate DER as served; `None` when it could not be read.
    pub pre_certificate: Option<Bytes>,
    /// NOT verified: chain certificate DERs, issuer first, as served.
    pub chain: Vec<Vec<u8>>,
    /// Why the unverified fields (`pre_certificate`, `chain`) could not be read, if they could not.
    pub chain_error: Option<String>,
}

impl LogEntry {
    /// The certificate DER a fingerprint describes: the x509 certificate (verified) or the served pre_certificate
    /// (NOT verified: see `ct::chain` before trusting its hash).
    pub fn cert_der(&self) -> Option<&[u8]> {
        match self.entry_type {
            EntryType::X509 => Some(&self.signed_entry),
            EntryType::Precert => self.pre_certificate.as_deref(),
        }
    }
}

/// An entry's Merkle tree leaf (RFC 6962 `MerkleTreeLeaf`: version 0, leaf type 0, then the `TimestampedEntry`),
/// what the tree commits to, as downloaded: an RFC 6962 `leaf_input` is the whole leaf, a static-ct TileLeaf starts
/// with the `TimestampedEntry` alone. Either is a view of the downloaded buffer: nothing is copied per entry to
/// hash it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MerkleLeaf {
    /// The whole `MerkleTreeLeaf` (RFC 6962 `leaf_input`).
    Whole(Bytes),
    /// The `TimestampedEntry` of a leaf whose version and leaf type are 0 (static-ct).
    TimestampedEntry(Bytes),
}

impl MerkleLeaf {
    /// The leaf hash the tree commits to: SHA-256(0x00 | MerkleTreeLeaf).
    pub fn hash(&self) -> Hash {
        match self {
            MerkleLeaf::Whole(leaf) => merkle::leaf_hash(leaf),
            MerkleLeaf::TimestampedEntry(te) => merkle::leaf_hash_of_timestamped_entry(te),
        }
    }

    /// The `MerkleTreeLeaf` bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        match self {
            MerkleLeaf::Whole(leaf) => leaf.to_vec(),
            MerkleLeaf::TimestampedEntry(te) => {
                let mut v = Vec::with_capacity(2 + te.len());
                v.extend_from_slice(&[0, 0]);
                v.extend_from_slice(te);
                v
            }
        }
    }
}

/// One entry of a static-ct data tile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TileLeaf {
    /// The entry; `chain` is empty (see `chain_fingerprints`, resolved by the client).
    pub entry: LogEntry,
    /// The Merkle tree leaf: the TileLeaf's TimestampedEntry.
    pub leaf: MerkleLeaf,
    /// From the `leaf_index` extension (type 0, 40-bit big-endian), when present.
    pub leaf_index: Option<u64>,
    /// SHA-256 of each chain certificate, issuer first; fetch them from `issuer/<hex>`.
    pub chain_fingerprints: Fingerprints,
}

/// The chain fingerprints of a TileLeaf (32 bytes each): a view of the tile, not a copy per entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fingerprints(Bytes);

impl Fingerprints {
    /// `None` unless `list` is whole fingerprints.
    pub fn new(list: Bytes) -> Option<Fingerprints> {
        list.len().is_multiple_of(32).then_some(Fingerprints(list))
    }
}

impl std::ops::Deref for Fingerprints {
    type Target = [[u8; 32]];

    fn deref(&self) -> &[[u8; 32]] {
        self.0.as_chunks::<32>().0
    }
}

/// A cursor over one buffer. Errors report `base + pos`, so a reader over a nested vector reports offsets in the
/// enclosing buffer.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader::nested(buf, 0)
    }

    fn nested(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    fn offset(&self) -> usize {
        self.base + self.pos
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], LeafError> {
        if self.remaining() < n {
            return Err(LeafError::Truncated {
                what,
                offset: self.offset(),
                needed: n,
                available: self.remaining(),
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Big-endian unsigned integer of `n` (1..=8) bytes.
    fn uint(&mut self, n: usize, what: &'static str) -> Result<u64, LeafError> {
        let bytes = self.take(n, what)?;
        Ok(bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    /// `opaque<..2^(8*len_bytes)-1>`: a length prefix of `len_bytes` bytes, then that many bytes.
    fn vector(&mut self, len_bytes: usize, what: &'static str) -> Result<&'a [u8], LeafError> {
        let len = self.uint(len_bytes, what)? as usize;
        self.take(len, what)
    }

    /// An `ASN.1Cert` (`opaque<1..2^24-1>`).
    fn cert(&mut self, what: &'static str) -> Result<&'a [u8], LeafError> {
        let offset = self.offset();
        let cert = self.vector(3, what)?;
        if cert.is_empty() {
            return Err(LeafError::EmptyCertificate { what, offset });
        }
        Ok(cert)
    }

    fn finish(&self, what: &'static str) -> Result<(), LeafError> {
        match self.remaining() {
            0 => Ok(()),
            len => Err(LeafError::TrailingData {
                what,
                offset: self.offset(),
                len,
            }),
        }
    }
}

/// The parts of a `TimestampedEntry`, borrowed from the buffer it was read from.
struct Timestamped<'a> {
    timestamp_ms: u64,
    entry_type: EntryType,
    /// x509: the certificate; precert: the TBSCertificate.
    signed_der: &'a [u8],
    issuer_key_hash: Option<[u8; 32]>,
    extensions: &'a [u8],
    /// Offset of `extensions` content within the reader's buffer (for error messages).
    extensions_offset: usize,
}

fn read_timestamped_entry<'a>(
    r: &mut Reader<'a>,
    what: &'static str,
) -> Result<Timestamped<'a>, LeafError> {
    let timestamp_ms = r.uint(8, what)?;
    let type_offset = r.offset();
    let entry_type = match r.uint(2, what)? {
        0 => EntryType::X509,
        1 => EntryType::Precert,
        other => {
            return Err(LeafError::UnknownEntryType {
                what,
                offset: type_offset,
                entry_type: other as u16,
            });
        }
    };
    let (issuer_key_hash, signed_der) = match entry_type {
        EntryType::X509 => (None, r.cert(what)?),
        EntryType::Precert => {
            let hash: [u8; 32] = r.take(32, what)?.try_into().expect("took 32 bytes");
            (Some(hash), r.cert(what)?)
        }
    };
    let extensions = r.vector(2, what)?;
    Ok(Timestamped {
        timestamp_ms,
        entry_type,
        signed_der,
        issuer_key_hash,
        extensions,
        extensions_offset: r.offset() - extensions.len(),
    })
}

/// Split a u24-length list of u24-length certificates (the RFC 6962 `extra_data` chain).
fn read_chain(r: &mut Reader<'_>, what: &'static str) -> Result<Vec<Vec<u8>>, LeafError> {
    let list = r.vector(3, what)?;
    let mut inner = Reader::nested(list, r.offset() - list.len());
    let mut chain = Vec::new();
    while inner.remaining() > 0 {
        chain.push(inner.cert(what)?.to_vec());
    }
    Ok(chain)
}

/// Decode an RFC 6962 get-entries item (leaf_input and extra_data already base64-decoded).
///
/// Only `leaf_input` can make this fail: it is what the tree proves. A malformed `extra_data` (served outside the
/// tree) leaves `pre_certificate` and `chain` empty and is described in `chain_error`, so that a hostile log cannot
/// hide an entry by garbling what it serves next to it.
pub fn decode_rfc6962(leaf_input: &[u8], extra_data: &[u8]) -> Result<LogEntry, LeafError> {
    let mut entry = decode_rfc6962_leaf(leaf_input)?;
    attach_extra_data(&mut entry, extra_data);
    Ok(entry)
}

/// Fill an entry's unverified fields (`pre_certificate`, `chain`, or `chain_error` when they cannot be read) from
/// its RFC 6962 `extra_data`. Separate from [`decode_rfc6962_leaf`] so that a monitor decodes it only for the
/// entries that matter (it is the larger half of a get-entries item).
pub fn attach_extra_data(entry: &mut LogEntry, extra_data: &[u8]) {
    match decode_extra_data(entry.entry_type, extra_data) {
        Ok((pre, chain)) => {
            entry.pre_certificate = pre.map(Bytes::from);
            entry.chain = chain;
            entry.chain_error = None;
        }
        Err(e) => {
            entry.pre_certificate = None;
            entry.chain = Vec::new();
            entry.chain_error = Some(e.to_string());
        }
    }
}

/// Decode the RFC 6962 `leaf_input` alone (what the tree proves): `pre_certificate` and `chain` stay empty until
/// [`attach_extra_data`].
pub fn decode_rfc6962_leaf(leaf_input: &[u8]) -> Result<LogEntry, LeafError> {
    decode_rfc6962_leaf_bytes(&Bytes::copy_from_slice(leaf_input))
}

/// [`decode_rfc6962_leaf`] of a leaf in a shared buffer: the entry's `signed_entry` is a view of it, not a copy.
pub fn decode_rfc6962_leaf_bytes(leaf_input: &Bytes) -> Result<LogEntry, LeafError> {
    let mut leaf = Reader::new(leaf_input);
    let version = leaf.uint(1, "leaf_input")? as u8;
    if version != 0 {
        return Err(LeafError::UnknownVersion(version));
    }
    let leaf_type = leaf.uint(1, "leaf_input")? as u8;
    if leaf_type != 0 {
        return Err(LeafError::UnknownLeafType(leaf_type));
    }
    let te = read_timestamped_entry(&mut leaf, "leaf_input")?;
    leaf.finish("leaf_input")?;
    Ok(LogEntry {
        timestamp_ms: te.timestamp_ms,
        entry_type: te.entry_type,
        signed_entry: leaf_input.slice_ref(te.signed_der),
        issuer_key_hash: te.issuer_key_hash,
        pre_certificate: None,
        chain: Vec::new(),
        chain_error: None,
    })
}

/// Decode an RFC 6962 `extra_data` (unverified): for a precert `PrecertChainEntry { ASN.1Cert pre_certificate;
/// ASN.1Cert precertificate_chain<0..2^24-1>; }`, for an x509 entry `ASN.1Cert certificate_chain<0..2^24-1>`.
/// Returns the pre_certificate (precert only) and the chain.
#[allow(clippy::type_complexity)]
pub fn decode_extra_data(
    entry_type: EntryType,
    extra_data: &[u8],
) -> Result<(Option<Vec<u8>>, Vec<Vec<u8>>), LeafError> {
    let mut extra = Reader::new(extra_data);
    let pre_certificate = match entry_type {
        EntryType::X509 => None,
        EntryType::Precert => Some(extra.cert("extra_data: pre_certificate")?.to_vec()),
    };
    let chain = read_chain(&mut extra, "extra_data: certificate_chain")?;
    extra.finish("extra_data")?;
    Ok((pre_certificate, chain))
}

/// Find the `leaf_index` extension in a static-ct `CtExtensions` body (`u8 type | u16 length | data`, repeated).
fn parse_leaf_index(extensions: &[u8], base: usize) -> Result<Option<u64>, LeafError> {
    let mut r = Reader::nested(extensions, base);
    let mut leaf_index = None;
    while r.remaining() > 0 {
        let start = r.offset();
        let bad = |reason| LeafError::BadExtension {
            offset: start,
            reason,
        };
        let ext_type = r.uint(1, "").map_err(|_| bad("truncated extension type"))? as u8;
        let data = r
            .vector(2, "")
            .map_err(|_| bad("truncated extension data"))?;
        if ext_type == EXTENSION_LEAF_INDEX {
            if leaf_index.is_some() {
                return Err(bad("duplicate leaf_index extension"));
            }
            if data.len() != 5 {
                return Err(bad("leaf_index extension is not 5 bytes"));
            }
            leaf_index = Some(data.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)));
        }
    }
    Ok(leaf_index)
}

/// Read one `TileLeaf` starting at the reader's position.
///
/// The pre_certificate and the fingerprint list are outside the Merkle leaf: when their framing holds but their
/// content is unusable (an empty pre_certificate, a list length that is not a multiple of 32) the entry still
/// decodes, with `chain_error` set. Only framing that makes the next entry unfindable is an error.
///
/// `tile` is the buffer the reader reads: the entry's byte fields are views of it.
fn read_tile_leaf(tile: &Bytes, r: &mut Reader<'_>) -> Result<TileLeaf, LeafError> {
    let start = r.pos;
    let te = read_timestamped_entry(r, "tile entry")?;
    let leaf = MerkleLeaf::TimestampedEntry(tile.slice_ref(&r.buf[start..r.pos]));
    let leaf_index = parse_leaf_index(te.extensions, te.extensions_offset)?;

    let mut chain_error = None;
    let pre_certificate = match te.entry_type {
        EntryType::X509 => None,
        EntryType::Precert => {
            let offset = r.offset();
            let pre_certificate = r.vector(3, "tile entry: pre_certificate")?;
            if pre_certificate.is_empty() {
                chain_error = Some(
                    LeafError::EmptyCertificate {
                        what: "tile entry: pre_certificate",
                        offset,
                    }
                    .to_string(),
                );
                None
            } else {
                Some(tile.slice_ref(pre_certificate))
            }
        }
    };
    let list_offset = r.offset();
    let list = r.vector(2, "tile entry: certificate_chain")?;
    let chain_fingerprints = match Fingerprints::new(tile.slice_ref(list)) {
        Some(fingerprints) => fingerprints,
        None => {
            let e = LeafError::BadFingerprintList {
                offset: list_offset,
                len: list.len(),
            };
            chain_error.get_or_insert(e.to_string());
            Fingerprints::default()
        }
    };

    Ok(TileLeaf {
        entry: LogEntry {
            timestamp_ms: te.timestamp_ms,
            entry_type: te.entry_type,
            signed_entry: tile.slice_ref(te.signed_der),
            issuer_key_hash: te.issuer_key_hash,
            pre_certificate,
            chain: Vec::new(),
            chain_error,
        },
        leaf,
        leaf_index,
        chain_fingerprints,
    })
}

/// Gunzip `body` if it starts with the gzip magic, refusing to inflate beyond [`MAX_TILE_BYTES`].
pub fn maybe_gunzip(body: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, LeafError> {
    if !body.starts_with(&[0x1f, 0x8b]) {
        return Ok(std::borrow::Cow::Borrowed(body));
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(body)
        .take(MAX_TILE_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(LeafError::Gzip)?;
    if out.len() as u64 > MAX_TILE_BYTES {
        return Err(LeafError::TileTooLarge);
    }
    Ok(std::borrow::Cow::Owned(out))
}

/// Decode every entry of a data tile (full or partial); `first_index` is the index of entry 0 of the tile. Check each
/// leaf_index extension equals its position (error variant with both values). Accept a gzip-compressed tile body
/// (detect the 1f 8b magic, use flate2) as well as a plain one.
///
/// A missing `leaf_index` extension is tolerated (`TileLeaf::leaf_index` is `None`); a present but wrong one is an
/// error, since it means the tile is not the one we asked for.
pub fn decode_data_tile(body: &[u8], first_index: u64) -> Result<Vec<TileLeaf>, LeafError> {
    decode_data_tile_bytes(&Bytes::copy_from_slice(body), first_index)
}

/// [`decode_data_tile`] of a tile in a shared buffer (gunzipped if it was compressed): the entries' byte fields
/// are views of it, not copies.
pub fn decode_data_tile_bytes(body: &Bytes, first_index: u64) -> Result<Vec<TileLeaf>, LeafError> {
    match maybe_gunzip(body)? {
        std::borrow::Cow::Borrowed(_) => decode_plain_tile(body, first_index),
        std::borrow::Cow::Owned(v) => decode_plain_tile(&Bytes::from(v), first_index),
    }
}

/// The entries of an uncompressed data tile.
fn decode_plain_tile(body: &Bytes, first_index: u64) -> Result<Vec<TileLeaf>, LeafError> {
    if body.is_empty() {
        return Err(LeafError::EmptyTile);
    }
    let mut r = Reader::new(body);
    let mut leaves = Vec::with_capacity(TILE_WIDTH);
    while r.remaining() > 0 {
        let position = leaves.len();
        if position == TILE_WIDTH {
            return Err(LeafError::TooManyEntries { offset: r.offset() });
        }
        let expected = first_index.saturating_add(position as u64);
        let leaf = read_tile_leaf(body, &mut r).map_err(|e| LeafError::InTileEntry {
            position,
            index: expected,
            source: Box::new(e),
        })?;
        if let Some(found) = leaf.leaf_index
            && found != expected
        {
            return Err(LeafError::LeafIndexMismatch {
                position,
                expected,
                found,
            });
        }
        leaves.push(leaf);
    }
    Ok(leaves)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real precert entry (scrape-ct-log fixture): leaf_input is 1100 bytes, extra_data 4015.
    const LEAF: &[u8] = include_bytes!(
        "../../tests/fixtures/rfc6962/single-entries/scrape-ct-log_precert_leaf_input.bin"
    );
    const EXTRA: &[u8] = include_bytes!(
        "../../tests/fixtures/rfc6962/single-entries/scrape-ct-log_precert_extra_data.bin"
    );

    fn u24_at(buf: &[u8], at: usize) -> usize {
        (usize::from(buf[at]) << 16) | (usize::from(buf[at + 1]) << 8) | usize::from(buf[at + 2])
    }

    #[test]
    fn every_truncation_of_a_real_leaf_is_a_truncation_error() {
        assert!(decode_rfc6962(LEAF, EXTRA).is_ok());
        for n in 0..LEAF.len() {
            match decode_rfc6962(&LEAF[..n], EXTRA) {
                Err(LeafError::Truncated {
                    what: "leaf_input", ..
                }) => {}
                other => panic!("prefix {n}: {other:?}"),
            }
        }
    }

    #[test]
    fn trailing_bytes_are_rejected_with_their_position() {
        let leaf = [LEAF, &[1, 2, 3]].concat();
        match decode_rfc6962(&leaf, EXTRA) {
            Err(LeafError::TrailingData { what, offset, len }) => {
                assert_eq!((what, offset, len), ("leaf_input", LEAF.len(), 3));
            }
            other => panic!("{other:?}"),
        }
        let extra = [EXTRA, &[0]].concat();
        assert!(matches!(
            decode_extra_data(EntryType::Precert, &extra),
            Err(LeafError::TrailingData {
                what: "extra_data",
                offset: 4015,
                len: 1
            })
        ));
        // The leaf still decodes: extra_data is not part of what the tree proves.
        let entry = decode_rfc6962(LEAF, &extra).unwrap();
        assert_eq!(
            entry.chain_error.as_deref(),
            Some("extra_data: 1 unexpected trailing bytes at offset 4015")
        );
        assert!(entry.pre_certificate.is_none() && entry.chain.is_empty());
    }

    #[test]
    fn unknown_version_leaf_type_and_entry_type_are_named() {
        let mut leaf = LEAF.to_vec();
        leaf[0] = 1;
        assert!(matches!(
            decode_rfc6962(&leaf, EXTRA),
            Err(LeafError::UnknownVersion(1))
        ));
        let mut leaf = LEAF.to_vec();
        leaf[1] = 5;
        assert!(matches!(
            decode_rfc6962(&leaf, EXTRA),
            Err(LeafError::UnknownLeafType(5))
        ));
        let mut leaf = LEAF.to_vec();
        leaf[10..12].copy_from_slice(&[0, 7]);
        let err = decode_rfc6962(&leaf, EXTRA).unwrap_err();
        assert!(
            matches!(
                err,
                LeafError::UnknownEntryType {
                    offset: 10,
                    entry_type: 7,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "leaf_input: unknown entry_type 7 at offset 10 (0 = x509_entry, 1 = precert_entry)"
        );
    }

    #[test]
    fn hostile_lengths_fail_without_allocating() {
        // precert: 12 header bytes, 32 issuer_key_hash bytes, then the u24 TBS length.
        let mut leaf = LEAF.to_vec();
        leaf[44..47].copy_from_slice(&[0xff, 0xff, 0xff]);
        match decode_rfc6962(&leaf, EXTRA) {
            Err(LeafError::Truncated {
                offset,
                needed,
                available,
                ..
            }) => {
                assert_eq!(
                    (offset, needed, available),
                    (47, 0xff_ffff, LEAF.len() - 47)
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn chain_errors_report_offsets_in_extra_data() {
        // extra_data = u24 pre_certificate | u24 chain list length | (u24 cert)*. Make the first chain cert claim
        // the whole list length: it then overruns the list by 3 bytes.
        let precert_len = u24_at(EXTRA, 0);
        let list_at = 3 + precert_len;
        let list_len = u24_at(EXTRA, list_at);
        let mut extra = EXTRA.to_vec();
        extra[list_at + 3..list_at + 6].copy_from_slice(&EXTRA[list_at..list_at + 3]);
        match decode_extra_data(EntryType::Precert, &extra) {
            Err(LeafError::Truncated {
                what,
                offset,
                needed,
                available,
            }) => {
                assert_eq!(what, "extra_data: certificate_chain");
                assert_eq!(
                    (offset, needed, available),
                    (list_at + 6, list_len, list_len - 3)
                );
            }
            other => panic!("{other:?}"),
        }
        let mut extra = EXTRA.to_vec();
        extra[list_at + 3..list_at + 6].copy_from_slice(&[0, 0, 0]);
        assert!(matches!(
            decode_extra_data(EntryType::Precert, &extra),
            Err(LeafError::EmptyCertificate { offset, .. }) if offset == list_at + 3
        ));
    }
}
