//! Byte surgery for hostile logs: what a log can change outside the Merkle leaf while every head it signs stays
//! correct — RFC 6962 `extra_data` (the pre_certificate, the chain) and a TileLeaf's trailing fields (the
//! pre_certificate, the chain fingerprints). Works on the wire bytes only, so the leaf hash never changes.

/// Entry type of a `TimestampedEntry` starting at `te` (0 = x509, 1 = precert).
fn entry_type(te: &[u8]) -> u16 {
    u16::from_be_bytes([te[8], te[9]])
}

fn u24(b: &[u8], at: usize) -> usize {
    (usize::from(b[at]) << 16) | (usize::from(b[at + 1]) << 8) | usize::from(b[at + 2])
}

fn push_u24(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(data);
}

/// Length of the `TimestampedEntry` at the start of `te`.
fn timestamped_entry_len(te: &[u8]) -> usize {
    let signed = if entry_type(te) == 1 { 10 + 32 } else { 10 };
    let after_cert = signed + 3 + u24(te, signed);
    after_cert + 2 + usize::from(u16::from_be_bytes([te[after_cert], te[after_cert + 1]]))
}

/// The certificates of a u24-length list of u24-length certificates.
fn split_chain(list: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 3 <= list.len() {
        let len = u24(list, at);
        out.push(list[at + 3..at + 3 + len].to_vec());
        at += 3 + len;
    }
    out
}

/// `extra_data` parts: (pre_certificate for a precert, chain).
fn split_extra_data(leaf_input: &[u8], extra_data: &[u8]) -> (Option<Vec<u8>>, Vec<Vec<u8>>) {
    let mut at = 0;
    let pre = (entry_type(&leaf_input[2..]) == 1).then(|| {
        let len = u24(extra_data, 0);
        at = 3 + len;
        extra_data[3..3 + len].to_vec()
    });
    let list_len = u24(extra_data, at);
    (pre, split_chain(&extra_data[at + 3..at + 3 + list_len]))
}

fn join_extra_data(pre: Option<&[u8]>, chain: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(pre) = pre {
        push_u24(&mut out, pre);
    }
    let mut list = Vec::new();
    for c in chain {
        push_u24(&mut list, c);
    }
    push_u24(&mut out, &list);
    out
}

/// `extra_data` whose chain starts with `issuer` instead of the real issuer (the rest of the chain kept).
pub fn extra_data_with_issuer(leaf_input: &[u8], extra_data: &[u8], issuer: &[u8]) -> Vec<u8> {
    let (pre, mut chain) = split_extra_data(leaf_input, extra_data);
    match chain.first_mut() {
        Some(first) => *first = issuer.to_vec(),
        None => chain.push(issuer.to_vec()),
    }
    join_extra_data(pre.as_deref(), &chain)
}

/// `extra_data` of a precert with another pre_certificate (the chain kept).
pub fn extra_data_with_pre_certificate(
    leaf_input: &[u8],
    extra_data: &[u8],
    pre_certificate: &[u8],
) -> Vec<u8> {
    let (_, chain) = split_extra_data(leaf_input, extra_data);
    join_extra_data(Some(pre_certificate), &chain)
}

/// Bytes that are no `extra_data` of any kind: a length prefix promising more than there is.
pub fn garbage_extra_data() -> Vec<u8> {
    b"\xff\xff\xffnot a chain".to_vec()
}

/// A TileLeaf's parts: (TimestampedEntry, pre_certificate for a precert, fingerprints).
fn split_tile_leaf(bytes: &[u8]) -> (&[u8], Option<&[u8]>, Vec<[u8; 32]>) {
    let te_len = timestamped_entry_len(bytes);
    let mut at = te_len;
    let pre = (entry_type(bytes) == 1).then(|| {
        let len = u24(bytes, at);
        at += 3 + len;
        &bytes[at - len..at]
    });
    let list_len = usize::from(u16::from_be_bytes([bytes[at], bytes[at + 1]]));
    let fps = bytes[at + 2..at + 2 + list_len]
        .chunks_exact(32)
        .map(|c| c.try_into().unwrap())
        .collect();
    (&bytes[..te_len], pre, fps)
}

fn join_tile_leaf(te: &[u8], pre: Option<&[u8]>, fps: &[[u8; 32]]) -> Vec<u8> {
    let mut out = te.to_vec();
    if let Some(pre) = pre {
        push_u24(&mut out, pre);
    }
    out.extend_from_slice(&((fps.len() * 32) as u16).to_be_bytes());
    for fp in fps {
        out.extend_from_slice(fp);
    }
    out
}

/// A precert TileLeaf with another pre_certificate (any bytes, even none), consistently framed.
pub fn tile_leaf_with_pre_certificate(bytes: &[u8], pre_certificate: &[u8]) -> Vec<u8> {
    let (te, _, fps) = split_tile_leaf(bytes);
    join_tile_leaf(te, Some(pre_certificate), &fps)
}

/// A TileLeaf whose first chain fingerprint is `issuer_sha256`.
pub fn tile_leaf_with_issuer(bytes: &[u8], issuer_sha256: [u8; 32]) -> Vec<u8> {
    let (te, pre, mut fps) = split_tile_leaf(bytes);
    match fps.first_mut() {
        Some(first) => *first = issuer_sha256,
        None => fps.push(issuer_sha256),
    }
    join_tile_leaf(te, pre, &fps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surgery_keeps_the_leaf_and_changes_only_what_is_asked() {
        let leaf = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/rfc6962/single-entries/scrape-ct-log_precert_leaf_input.bin"
        ))
        .unwrap();
        let extra = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/rfc6962/single-entries/scrape-ct-log_precert_extra_data.bin"
        ))
        .unwrap();
        let (pre, chain) = split_extra_data(&leaf, &extra);
        assert_eq!(join_extra_data(pre.as_deref(), &chain), extra);
        let swapped = extra_data_with_issuer(&leaf, &extra, b"issuer");
        let (pre2, chain2) = split_extra_data(&leaf, &swapped);
        assert_eq!(
            (pre2.as_ref(), chain2[0].as_slice()),
            (pre.as_ref(), &b"issuer"[..])
        );
        assert_eq!(chain2[1..], chain[1..]);
        let other = extra_data_with_pre_certificate(&leaf, &extra, b"pre");
        assert_eq!(split_extra_data(&leaf, &other).0.unwrap(), b"pre");

        let te = &leaf[2..];
        let tile_leaf = join_tile_leaf(te, pre.as_deref(), &[[1; 32], [2; 32]]);
        let (te2, pre3, fps) = split_tile_leaf(&tile_leaf);
        assert_eq!((te2, pre3, fps.len()), (te, pre.as_deref(), 2));
        let empty = tile_leaf_with_pre_certificate(&tile_leaf, b"");
        assert_eq!(split_tile_leaf(&empty).1, Some(&b""[..]));
        let forged = tile_leaf_with_issuer(&tile_leaf, [9; 32]);
        assert_eq!(split_tile_leaf(&forged).2, [[9; 32], [2; 32]]);
    }
}
