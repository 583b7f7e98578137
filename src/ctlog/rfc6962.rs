//! RFC 6962 logs: `get-sth`, `get-entries`, `get-sth-consistency`, `get-proof-by-hash`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use serde::Deserialize;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::body::Chunks;
use super::http::Fetcher;
use super::{Admission, Body, CtLog, ExtraData, LogError, RawEntry, TreeHead};
use crate::ct::leaf::{self, MerkleLeaf};
use crate::ct::merkle::{CollapsedTree, Hash};
use crate::ct::sig::LogKey;
use crate::ct::sth;

/// The `get-entries` response body (base64 fields), as logs send it and as the fake log serves it.
#[derive(Debug, Deserialize, serde::Serialize)]
pub struct GetEntries {
    pub entries: Vec<GetEntriesItem>,
}

#[derive(Debug, Deserialize, serde::Serialize)]
pub struct GetEntriesItem {
    pub leaf_input: String,
    pub extra_data: String,
}

/// The SIMD base64 engine (AVX2 where the CPU has it; the same alphabet, padding and strictness as [`B64`]):
/// base64 decoding was the largest user-space cost of a catch-up in `perf`.
static B64_SIMD: std::sync::LazyLock<base64::engine::Simd> = std::sync::LazyLock::new(|| {
    base64::engine::Simd::standard(base64::engine::general_purpose::PAD)
});

/// An RFC 6962 log at `url` (ending in '/').
pub struct Rfc6962Log {
    url: String,
    key: LogKey,
    fetcher: Fetcher,
    /// Entries asked for per `get-entries`: the configured page size, lowered to what the log actually returns
    /// once it answers a full request with fewer entries (some logs cap pages at 32), so that parallel ranges
    /// match its pages instead of each range needing several sequential requests.
    page_size: AtomicU64,
}

/// A log's short page is learned down to this size at most (a log answering with a handful of entries once, e.g.
/// under load, must not shrink every later request to that).
const MIN_LEARNED_PAGE: u64 = 16;

impl Rfc6962Log {
    /// `page_size` is how many entries one `get-entries` asks for (logs may return fewer).
    pub fn new(url: &str, key: LogKey, fetcher: Fetcher, page_size: u64) -> Rfc6962Log {
        let url = if url.ends_with('/') {
            url.to_string()
        } else {
            format!("{url}/")
        };
        Rfc6962Log {
            url,
            key,
            fetcher,
            page_size: AtomicU64::new(page_size.max(1)),
        }
    }

    fn bad(&self, endpoint: &str, message: impl Into<String>) -> LogError {
        LogError::BadResponse {
            url: format!("{}ct/v1/{endpoint}", self.url),
            message: message.into(),
        }
    }

    /// One `get-entries` call: at most `end - start` entries starting at `start` (maybe fewer).
    async fn get_entries(
        &self,
        start: u64,
        end: u64,
        admission: Option<&Admission>,
    ) -> Result<Vec<RawEntry>, LogError> {
        let url = format!(
            "{}ct/v1/get-entries?start={start}&end={}",
            self.url,
            end - 1
        );
        let body = self.fetcher.get_admitted(&url, admission).await?;
        decode_get_entries(body, start, end - start).map_err(|e| self.bad("get-entries", e))
    }
}

/// Decode a `get-entries` body asked for from `start`: at most `wanted` items (a log may answer fewer; extra ones
/// are ignored), each leaf base64-decoded and decoded; `extra_data` stays as served, in the chunk of the body it
/// arrived in, until [`ExtraData::complete`] (only entries that matter need it). A leaf that does not decode is kept
/// with the reason in [`RawEntry::entry`], so the tailer can record it; only a body that is not the expected JSON,
/// or a `leaf_input` that is not base64, is an error (the message names the entry index and field).
pub fn decode_get_entries(body: Chunks, start: u64, wanted: u64) -> Result<Vec<RawEntry>, String> {
    let wanted = usize::try_from(wanted).unwrap_or(usize::MAX);
    let mut items: Vec<(Bytes, Bytes)> = match scan_get_entries(body.parts()) {
        Some(items) => items,
        None => parse_get_entries(body.into_contiguous())?,
    };
    items.truncate(wanted);
    // Every leaf is decoded into one buffer (from the pool of response buffers), which the entries share: no
    // allocation or copy per entry.
    let decoded_len: usize = items.iter().map(|(l, _)| l.len() / 4 * 3 + 3).sum();
    let mut leaves = Body::with_capacity(decoded_len);
    let mut ends = Vec::with_capacity(items.len());
    for (i, (leaf_input, _)) in items.iter().enumerate() {
        B64_SIMD
            .decode_vec(leaf_input, leaves.as_mut_vec())
            .map_err(|e| format!("entry {}: leaf_input: {e}", start.saturating_add(i as u64)))?;
        ends.push(leaves.len());
    }
    let leaves = Bytes::from_owner(leaves);
    let mut out = Vec::with_capacity(items.len());
    let mut begin = 0;
    for ((_, extra_data), end) in items.into_iter().zip(ends) {
        let leaf = leaves.slice(begin..end);
        begin = end;
        let entry = leaf::decode_rfc6962_leaf_bytes(&leaf).map_err(|e| e.to_string());
        out.push(RawEntry {
            leaf: MerkleLeaf::Whole(leaf),
            extra_data: ExtraData::Served(extra_data),
            entry,
        });
    }
    Ok(out)
}

/// The general path: any JSON serde accepts (escapes, other fields, any order). Field values are views of the
/// body where they can be.
fn parse_get_entries(body: Bytes) -> Result<Vec<(Bytes, Bytes)>, String> {
    #[derive(Deserialize)]
    struct Resp<'a> {
        #[serde(borrow)]
        entries: Vec<Item<'a>>,
    }
    #[derive(Deserialize)]
    struct Item<'a> {
        #[serde(borrow)]
        leaf_input: std::borrow::Cow<'a, str>,
        #[serde(borrow)]
        extra_data: std::borrow::Cow<'a, str>,
    }
    let resp: Resp = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    let text = |c: std::borrow::Cow<'_, str>| match c {
        std::borrow::Cow::Borrowed(s) => body.slice_ref(s.as_bytes()),
        std::borrow::Cow::Owned(s) => Bytes::from(s),
    };
    Ok(resp
        .entries
        .into_iter()
        .map(|i| (text(i.leaf_input), text(i.extra_data)))
        .collect())
}

/// The fast path, for the answer every log sends: `{"entries":[{"leaf_input":"…","extra_data":"…"},…]}` with any
/// whitespace between tokens, the two fields in either order, no escapes in their values and nothing else. It only
/// finds where the values are (a SIMD search for each quote), across the chunks the body arrived in; anything else
/// (an escape, another field, a duplicate, a number, trailing bytes) returns `None` and the body goes to
/// [`parse_get_entries`], which accepts what JSON allows and names what is wrong. In `perf`, serde_json's string
/// scanning was the largest user-space cost of a catch-up after base64 and SHA-256.
fn scan_get_entries(parts: &[Bytes]) -> Option<Vec<(Bytes, Bytes)>> {
    let mut s = Scanner {
        parts,
        part: 0,
        i: 0,
    };
    s.token(b'{')?;
    if &s.string()?[..] != b"entries" {
        return None;
    }
    s.token(b':')?;
    s.token(b'[')?;
    let mut items = Vec::with_capacity(256);
    if s.peek()? == b']' {
        s.i += 1;
    } else {
        loop {
            s.token(b'{')?;
            let (mut leaf, mut extra) = (None, None);
            loop {
                let key = s.string()?;
                s.token(b':')?;
                let value = s.string()?;
                match &key[..] {
                    b"leaf_input" if leaf.is_none() => leaf = Some(value),
                    b"extra_data" if extra.is_none() => extra = Some(value),
                    _ => return None,
                }
                match s.next()? {
                    b',' => continue,
                    b'}' => break,
                    _ => return None,
                }
            }
            items.push((leaf?, extra?));
            match s.next()? {
                b',' => continue,
                b']' => break,
                _ => return None,
            }
        }
    }
    s.token(b'}')?;
    s.peek().is_none().then_some(items)
}

/// A cursor over the JSON tokens of a body in chunks, for [`scan_get_entries`]: at byte `i` of `parts[part]`.
struct Scanner<'a> {
    parts: &'a [Bytes],
    part: usize,
    i: usize,
}

impl<'a> Scanner<'a> {
    /// The chunk the cursor is in, after moving past chunks it is at the end of (`None`: the body ended).
    fn chunk(&mut self) -> Option<&'a Bytes> {
        while self.i >= self.parts.get(self.part)?.len() {
            self.part += 1;
            self.i = 0;
        }
        self.parts.get(self.part)
    }

    /// The next byte that is not whitespace (consumed).
    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    /// The next byte that is not whitespace (not consumed).
    fn peek(&mut self) -> Option<u8> {
        loop {
            match self.chunk()?[self.i] {
                b' ' | b'\t' | b'\n' | b'\r' => self.i += 1,
                c => return Some(c),
            }
        }
    }

    fn token(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    /// A string without escapes: its contents, a view of the chunk it lies in, or a copy of its pieces when it
    /// crosses chunks (about one value per chunk of ~100-400 KB).
    fn string(&mut self) -> Option<Bytes> {
        self.token(b'"')?;
        // The pieces of a string that crosses chunks; `None` while it lies in one.
        let mut pieces: Option<Vec<u8>> = None;
        loop {
            let chunk = self.chunk()?;
            let from = self.i;
            let rest = &chunk[from..];
            match memchr::memchr2(b'"', b'\\', rest) {
                Some(len) if rest[len] == b'"' => {
                    self.i = from + len + 1;
                    return Some(match pieces {
                        None => chunk.slice(from..from + len),
                        Some(mut pieces) => {
                            pieces.extend_from_slice(&rest[..len]);
                            Bytes::from(pieces)
                        }
                    });
                }
                Some(_) => return None,
                None => {
                    pieces.get_or_insert_default().extend_from_slice(rest);
                    self.i = chunk.len();
                }
            }
        }
    }
}

/// Decode a `get-sth-consistency` body into its proof hashes.
pub fn decode_consistency(body: &[u8]) -> Result<Vec<Hash>, String> {
    #[derive(Deserialize)]
    struct Resp {
        consistency: Vec<String>,
    }
    let resp: Resp = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    decode_hashes("consistency", &resp.consistency)
}

/// Decode a `get-proof-by-hash` body: the leaf index the log names and its audit path.
pub fn decode_proof_by_hash(body: &[u8]) -> Result<(u64, Vec<Hash>), String> {
    #[derive(Deserialize)]
    struct Resp {
        leaf_index: u64,
        audit_path: Vec<String>,
    }
    let resp: Resp = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    Ok((
        resp.leaf_index,
        decode_hashes("audit_path", &resp.audit_path)?,
    ))
}

/// Base64-decode a list of 32-byte hashes; the message names `field[i]`.
fn decode_hashes(field: &str, items: &[String]) -> Result<Vec<Hash>, String> {
    items
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let bytes = B64.decode(s).map_err(|e| format!("{field}[{i}]: {e}"))?;
            Hash::try_from(bytes.as_slice())
                .map_err(|_| format!("{field}[{i}]: {} bytes, want 32", bytes.len()))
        })
        .collect()
}

impl CtLog for Rfc6962Log {
    fn url(&self) -> &str {
        &self.url
    }

    fn range_size(&self) -> u64 {
        self.page_size.load(Relaxed)
    }

    async fn latest_head(&self) -> Result<TreeHead, LogError> {
        let body = self
            .fetcher
            .get(&format!("{}ct/v1/get-sth", self.url))
            .await?;
        let sth = sth::parse_get_sth(&body).map_err(|e| self.bad("get-sth", e.to_string()))?;
        sth.verify(&self.key).map_err(|e| LogError::BadSignature {
            log: self.url.clone(),
            message: e.to_string(),
        })?;
        Ok(TreeHead {
            tree_size: sth.tree_size,
            timestamp_ms: sth.timestamp_ms,
            root_hash: sth.root_hash,
        })
    }

    async fn fetch_range(
        &self,
        start: u64,
        end: u64,
        _head: &TreeHead,
        admission: &Admission,
    ) -> Result<Vec<RawEntry>, LogError> {
        let mut out = Vec::with_capacity((end - start) as usize);
        let mut next = start;
        while next < end {
            let got = self.get_entries(next, end, Some(admission)).await?;
            if got.is_empty() {
                return Err(self.bad(
                    "get-entries",
                    format!("no entries returned for start={next} end={}", end - 1),
                ));
            }
            let asked = end - next;
            let got_n = got.len() as u64;
            if got_n < asked && got_n >= MIN_LEARNED_PAGE {
                self.page_size.fetch_min(got_n, Relaxed);
            }
            next += got_n;
            out.extend(got);
        }
        Ok(out)
    }

    async fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash>, LogError> {
        let url = format!(
            "{}ct/v1/get-sth-consistency?first={first}&second={second}",
            self.url
        );
        let body = self.fetcher.get(&url).await?;
        decode_consistency(&body).map_err(|e| self.bad("get-sth-consistency", e))
    }

    async fn tree_at(&self, size: u64, head: &TreeHead) -> Result<CollapsedTree, LogError> {
        if size == 0 {
            return Ok(CollapsedTree::new());
        }
        let last = self.get_entries(size - 1, size, None).await?;
        let Some(last) = last.into_iter().next() else {
            return Err(self.bad(
                "get-entries",
                format!("no entry returned for index {}", size - 1),
            ));
        };
        let leaf_hash = last.leaf.hash();
        let mut url = url::Url::parse(&format!("{}ct/v1/get-proof-by-hash", self.url))
            .map_err(|e| self.bad("get-proof-by-hash", e.to_string()))?;
        url.query_pairs_mut()
            .append_pair("hash", &B64.encode(leaf_hash))
            .append_pair("tree_size", &head.tree_size.to_string());
        let body = self.fetcher.get(url.as_str()).await?;
        let (leaf_index, path) =
            decode_proof_by_hash(&body).map_err(|e| self.bad("get-proof-by-hash", e))?;
        if leaf_index != size - 1 {
            return Err(LogError::Unsupported {
                log: self.url.clone(),
                message: format!(
                    "get-proof-by-hash for entry {} answered index {} (duplicate leaf?)",
                    size - 1,
                    leaf_index
                ),
            });
        }
        CollapsedTree::from_inclusion_proof(
            size - 1,
            head.tree_size,
            leaf_hash,
            &path,
            &head.root_hash,
        )
        .map_err(|e| LogError::RootMismatch {
            log: self.url.clone(),
            message: format!(
                "inclusion proof of entry {} in tree {}: {e}",
                size - 1,
                head.tree_size
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real navigli entries 0..=255 as served.
    fn body() -> Vec<u8> {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/rfc6962/navigli2025h2-converted-from-tiles/get-entries_start-0_end-255.json"
        ))
        .unwrap()
    }

    #[test]
    fn extra_data_is_read_only_on_demand_and_garbage_there_hides_nothing() {
        let mut entries = decode_get_entries(body().into(), 0, 256).unwrap();
        assert_eq!(entries.len(), 256);
        let raw = &mut entries[7];
        let entry = raw.entry.as_mut().unwrap();
        // The leaf alone: nothing from extra_data yet.
        assert!(entry.pre_certificate.is_none() && entry.chain.is_empty());
        raw.extra_data.complete(entry);
        assert!(entry.pre_certificate.is_some() && !entry.chain.is_empty());
        assert_eq!(entry.chain_error, None);
        // A log serving garbage next to a leaf: the entry still decodes (from its leaf), the reason is recorded.
        let text = String::from_utf8(body()).unwrap();
        let first_extra = {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            v["entries"][0]["extra_data"].as_str().unwrap().to_string()
        };
        let garbled = text.replacen(&first_extra, "!!not base64!!", 1);
        let mut entries = decode_get_entries(garbled.into_bytes().into(), 0, 256).unwrap();
        let raw = &mut entries[0];
        assert_eq!(raw.extra_data_bytes(), b"!!not base64!!");
        let entry = raw.entry.as_mut().unwrap();
        raw.extra_data.complete(entry);
        assert!(
            entry
                .chain_error
                .as_deref()
                .is_some_and(|e| e.starts_with("extra_data is not base64")),
            "{:?}",
            entry.chain_error
        );
        assert!(crate::ct::cert::leaf_info(entry).is_ok());
    }

    #[test]
    fn the_leaves_of_an_answer_share_one_buffer() {
        let entries = decode_get_entries(body().into(), 0, 256).unwrap();
        let leaves: Vec<&[u8]> = entries
            .iter()
            .map(|e| match &e.leaf {
                MerkleLeaf::Whole(b) => &b[..],
                other => panic!("{other:?}"),
            })
            .collect();
        for pair in leaves.windows(2) {
            // Decoded one after the other into the same buffer.
            assert_eq!(pair[0].as_ptr_range().end, pair[1].as_ptr());
        }
        for (e, leaf) in entries.iter().zip(&leaves) {
            // The certificate is a view of the leaf, not a copy.
            let signed = &e.entry.as_ref().unwrap().signed_entry;
            assert!(leaf.as_ptr_range().contains(&signed.as_ptr()));
        }
    }

    #[test]
    fn a_body_in_chunks_decodes_as_in_one_piece_and_is_not_copied() {
        let real = body();
        let whole = fields(&real).unwrap();
        for size in [7, 64, 1000, 4096, 65536, 400_000] {
            let chunks: Chunks = real.chunks(size).map(Bytes::copy_from_slice).collect();
            let entries = decode_get_entries(chunks.clone(), 0, 1000).unwrap();
            let got: Fields = entries
                .iter()
                .map(|e| (e.leaf.to_vec(), e.extra_data.as_bytes().to_vec()))
                .collect();
            assert!(got == whole, "chunks of {size} bytes");
            // Values inside one chunk are views of it; only the few that cross a chunk boundary are copies.
            let inside = |text: &[u8]| {
                chunks
                    .parts()
                    .iter()
                    .any(|p| p.as_ptr_range().contains(&text.as_ptr()))
            };
            let views = entries
                .iter()
                .filter(|e| inside(e.extra_data.as_bytes()))
                .count();
            if size >= 65536 {
                assert!(views >= entries.len() * 9 / 10, "{size}: {views} views");
            }
        }
        // A body cut anywhere in its tokens, or ending early, is still read or refused exactly as in one piece.
        let text = String::from_utf8(real).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let (l0, e0) = (
            v["entries"][0]["leaf_input"].as_str().unwrap(),
            v["entries"][0]["extra_data"].as_str().unwrap(),
        );
        let small = format!(
            " {{ \"entries\" : [ {{ \"leaf_input\" : \"{l0}\" , \"extra_data\" : \"{e0}\" }} ] }} "
        );
        for cut in 0..=small.len() {
            let (a, b) = small.as_bytes().split_at(cut);
            let two: Chunks = [a, b].into_iter().map(Bytes::copy_from_slice).collect();
            assert!(scan_get_entries(two.parts()).is_some(), "cut at {cut}");
            assert_eq!(
                fields(small.as_bytes()).unwrap(),
                decode_get_entries(two, 0, 10)
                    .unwrap()
                    .iter()
                    .map(|e| (e.leaf.to_vec(), e.extra_data.as_bytes().to_vec()))
                    .collect::<Fields>()
            );
            let short: Chunks = [a].into_iter().map(Bytes::copy_from_slice).collect();
            if cut < small.trim_end().len() {
                assert!(decode_get_entries(short, 0, 10).is_err(), "ends at {cut}");
            }
        }
    }

    /// (leaf_input, extra_data) of each item.
    type Fields = Vec<(Vec<u8>, Vec<u8>)>;

    /// What a decode gives, comparable across the fast and the general path.
    fn fields(body: &[u8]) -> Result<Fields, String> {
        let entries = decode_get_entries(body.to_vec().into(), 0, 1000)?;
        Ok(entries
            .into_iter()
            .map(|e| (e.leaf.to_vec(), e.extra_data.as_bytes().to_vec()))
            .collect())
    }

    #[test]
    fn the_fast_scan_reads_real_answers_and_agrees_with_serde_on_every_other_shape() {
        let real = body();
        let scan = |body: &[u8]| scan_get_entries(&[Bytes::copy_from_slice(body)]);
        assert!(scan(&real).is_some(), "a real answer takes the fast path");
        let want = fields(&real).unwrap();
        assert_eq!(want.len(), 256);
        // The general path alone gives the same.
        let general = parse_get_entries(Bytes::from(real.clone())).unwrap();
        for (i, (leaf, extra)) in general.iter().enumerate() {
            assert_eq!(B64.decode(leaf).unwrap(), want[i].0);
            assert_eq!(extra, &want[i].1[..]);
        }

        let text = String::from_utf8(real).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let item = |i: usize, f: &str| v["entries"][i][f].as_str().unwrap().to_string();
        let (l0, e0, l1, e1) = (
            item(0, "leaf_input"),
            item(0, "extra_data"),
            item(1, "leaf_input"),
            item(1, "extra_data"),
        );
        let two = |body: String| fields(body.as_bytes()).map(|f| f.len());
        // Whitespace anywhere between tokens, and the fields in the other order: fast path.
        let spaced = format!(
            " {{ \"entries\" :\n[ {{\"extra_data\":\"{e0}\" , \"leaf_input\" : \"{l0}\"}} ,\t{{ \"leaf_input\":\"{l1}\",\"extra_data\":\"{e1}\" }} ] }}\r\n"
        );
        assert!(scan(spaced.as_bytes()).is_some());
        assert_eq!(fields(spaced.as_bytes()).unwrap(), want[..2].to_vec());
        // Escaped slashes, an unknown field, another top-level field: the general path, same answer.
        let escaped = format!(
            "{{\"entries\":[{{\"leaf_input\":\"{}\",\"extra_data\":\"{}\",\"note\":1}},{{\"leaf_input\":\"{l1}\",\"extra_data\":\"{e1}\"}}],\"x\":[]}}",
            l0.replace('/', "\\/"),
            e0.replace('/', "\\/")
        );
        assert!(scan(escaped.as_bytes()).is_none());
        assert_eq!(fields(escaped.as_bytes()).unwrap(), want[..2].to_vec());
        assert_eq!(two("{\"entries\":[]}".into()), Ok(0));
        // What is not a get-entries answer is an error, named by serde.
        for bad in [
            format!("{{\"entries\":[{{\"leaf_input\":\"{l0}\"}}]}}"),
            format!(
                "{{\"entries\":[{{\"leaf_input\":\"{l0}\",\"leaf_input\":\"{l0}\",\"extra_data\":\"\"}}]}}"
            ),
            format!(
                "{{\"entries\":[{{\"leaf_input\":\"{l0}\",\"extra_data\":\"{e0}\"}}]}} trailing"
            ),
            format!("{{\"entries\":[{{\"leaf_input\":\"{l0}\",\"extra_data\":\"{e0}\"}},]}}"),
            "{\"entries\":[".to_string(),
            String::new(),
        ] {
            let err = two(bad.clone()).unwrap_err();
            assert!(
                !err.is_empty() && scan(bad.as_bytes()).is_none(),
                "{bad:.80}: {err}"
            );
        }
        // A leaf that is not base64 names its entry.
        let err = two(format!(
            "{{\"entries\":[{{\"leaf_input\":\"{l0}\",\"extra_data\":\"\"}},{{\"leaf_input\":\"!!\",\"extra_data\":\"\"}}]}}"
        ))
        .unwrap_err();
        assert!(err.starts_with("entry 1: leaf_input"), "{err}");
    }
}
