//! A tiny DER TLV reader and writer.
//!
//! `cert.rs` parses certificate fields with x509-parser, but computing the CT identity of a certificate means
//! *editing* a TBSCertificate (dropping two extensions) and re-encoding it byte-exactly. x509-parser does not
//! re-encode, so this module offers just enough DER to walk the element tree, keep the raw bytes of every element we
//! do not touch, and rebuild the enclosing lengths.
//!
//! Only what X.509 needs: single-byte identifier octets (tag numbers below 31) and definite lengths in their
//! minimal DER form. Anything else is an error rather than a guess, because a re-encoding that silently differs from
//! the input would produce an identity that matches nobody else's.

use thiserror::Error;

/// Why a DER element could not be read. Offsets are relative to the slice given to [`read_tlv`] / [`children`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DerError {
    #[error("DER: input ends at offset {offset} where an element header was expected")]
    Empty { offset: usize },
    #[error("DER: multi-byte tag 0x{tag:02x} at offset {offset} is not supported")]
    HighTagNumber { offset: usize, tag: u8 },
    #[error("DER: truncated length at offset {offset}")]
    TruncatedLength { offset: usize },
    #[error("DER: indefinite length at offset {offset} (BER only, not DER)")]
    IndefiniteLength { offset: usize },
    #[error("DER: length at offset {offset} uses {octets} length octets (at most 4 supported)")]
    LengthTooLong { offset: usize, octets: usize },
    #[error("DER: non-minimal length encoding at offset {offset}")]
    NonMinimalLength { offset: usize },
    #[error(
        "DER: element at offset {offset} declares {declared} content bytes but only {available} remain"
    )]
    TruncatedContent {
        offset: usize,
        declared: usize,
        available: usize,
    },
}

/// One element: its identifier octet, its content, and the raw bytes of the whole element (header + content).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    pub raw: &'a [u8],
}

/// SEQUENCE / SEQUENCE OF (universal 16, constructed).
pub const TAG_SEQUENCE: u8 = 0x30;
/// OBJECT IDENTIFIER (universal 6).
pub const TAG_OID: u8 = 0x06;
/// OCTET STRING (universal 4).
pub const TAG_OCTET_STRING: u8 = 0x04;
/// BOOLEAN (universal 1).
pub const TAG_BOOLEAN: u8 = 0x01;

/// `[n]` context-specific constructed tag, as used by EXPLICIT tagging (`[3]` wraps the TBS extensions).
pub const fn context_constructed(n: u8) -> u8 {
    0xa0 | n
}

/// Read one element from the start of `input`; return it and the bytes after it.
pub fn read_tlv(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), DerError> {
    read_tlv_at(input, 0)
}

/// Like [`read_tlv`], reporting offsets as `base + position in input`.
fn read_tlv_at(input: &[u8], base: usize) -> Result<(Tlv<'_>, &[u8]), DerError> {
    let (&tag, rest) = input
        .split_first()
        .ok_or(DerError::Empty { offset: base })?;
    if tag & 0x1f == 0x1f {
        return Err(DerError::HighTagNumber { offset: base, tag });
    }
    let len_offset = base + 1;
    let (&first, rest) = rest
        .split_first()
        .ok_or(DerError::TruncatedLength { offset: len_offset })?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else if first == 0x80 {
        return Err(DerError::IndefiniteLength { offset: len_offset });
    } else {
        let octets = usize::from(first & 0x7f);
        if octets > 4 {
            return Err(DerError::LengthTooLong {
                offset: len_offset,
                octets,
            });
        }
        if rest.len() < octets {
            return Err(DerError::TruncatedLength { offset: len_offset });
        }
        let (len_bytes, rest) = rest.split_at(octets);
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        // DER: the shortest form, so no leading zero octet and no long form for lengths below 128.
        if len_bytes[0] == 0 || len < 0x80 {
            return Err(DerError::NonMinimalLength { offset: len_offset });
        }
        (len, rest)
    };
    if rest.len() < len {
        return Err(DerError::TruncatedContent {
            offset: base,
            declared: len,
            available: rest.len(),
        });
    }
    let header_len = input.len() - rest.len();
    let (content, after) = rest.split_at(len);
    let tlv = Tlv {
        tag,
        content,
        raw: &input[..header_len + len],
    };
    Ok((tlv, after))
}

/// Split the content of a constructed element into its child elements (all of it must be consumed).
pub fn children(content: &[u8]) -> Result<Vec<Tlv<'_>>, DerError> {
    let mut out = Vec::new();
    let mut rest = content;
    while !rest.is_empty() {
        let offset = content.len() - rest.len();
        let (tlv, after) = read_tlv_at(rest, offset)?;
        out.push(tlv);
        rest = after;
    }
    Ok(out)
}

/// Append the DER length octets for `len` to `out` (short form below 128, otherwise minimal long form).
pub fn write_length(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
        return;
    }
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    let significant = &bytes[skip..];
    out.push(0x80 | significant.len() as u8);
    out.extend_from_slice(significant);
}

/// Append a complete element `tag | length | content` to `out`.
pub fn write_tlv(tag: u8, content: &[u8], out: &mut Vec<u8>) {
    out.push(tag);
    write_length(content.len(), out);
    out.extend_from_slice(content);
}

/// Build a complete element whose content is the concatenation of `parts` (raw child elements).
pub fn build_constructed(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let content_len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(content_len + 6);
    out.push(tag);
    write_length(content_len, &mut out);
    for part in parts {
        out.extend_from_slice(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded_length(len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        write_length(len, &mut out);
        out
    }

    #[test]
    fn lengths_cross_the_short_and_long_form_boundaries() {
        // Expected bytes written by hand from X.690 section 8.1.3.
        assert_eq!(encoded_length(0), [0x00]);
        assert_eq!(encoded_length(127), [0x7f]);
        assert_eq!(encoded_length(128), [0x81, 0x80]);
        assert_eq!(encoded_length(255), [0x81, 0xff]);
        assert_eq!(encoded_length(256), [0x82, 0x01, 0x00]);
        assert_eq!(encoded_length(65535), [0x82, 0xff, 0xff]);
        assert_eq!(encoded_length(65536), [0x83, 0x01, 0x00, 0x00]);
    }

    #[test]
    fn write_then_read_round_trips_at_each_boundary() {
        for len in [0usize, 1, 127, 128, 255, 256, 65535, 65536, 70000] {
            let content = vec![0x5a; len];
            let mut der = Vec::new();
            write_tlv(TAG_OCTET_STRING, &content, &mut der);
            der.push(0xee); // a following byte must be left untouched
            let (tlv, rest) = read_tlv(&der).unwrap();
            assert_eq!(tlv.tag, TAG_OCTET_STRING);
            assert_eq!(tlv.content.len(), len);
            assert_eq!(tlv.raw.len(), der.len() - 1);
            assert_eq!(rest, [0xee]);
        }
    }

    #[test]
    fn children_splits_a_sequence() {
        // SEQUENCE { INTEGER 5, BOOLEAN TRUE }
        let der = [0x30, 0x06, 0x02, 0x01, 0x05, 0x01, 0x01, 0xff];
        let (seq, rest) = read_tlv(&der).unwrap();
        assert!(rest.is_empty());
        let kids = children(seq.content).unwrap();
        assert_eq!(kids.len(), 2);
        assert_eq!(kids[0].raw, [0x02, 0x01, 0x05]);
        assert_eq!(kids[1].tag, TAG_BOOLEAN);
        assert_eq!(kids[1].content, [0xff]);
    }

    #[test]
    fn malformed_headers_are_rejected_with_their_offset() {
        assert_eq!(read_tlv(&[]), Err(DerError::Empty { offset: 0 }));
        assert_eq!(
            read_tlv(&[0x1f, 0x01]),
            Err(DerError::HighTagNumber {
                offset: 0,
                tag: 0x1f
            })
        );
        assert_eq!(
            read_tlv(&[0x30]),
            Err(DerError::TruncatedLength { offset: 1 })
        );
        assert_eq!(
            read_tlv(&[0x30, 0x80, 0x00, 0x00]),
            Err(DerError::IndefiniteLength { offset: 1 })
        );
        assert_eq!(
            read_tlv(&[0x04, 0x81, 0x05, 1, 2, 3, 4, 5]),
            Err(DerError::NonMinimalLength { offset: 1 })
        );
        assert_eq!(
            read_tlv(&[0x04, 0x82, 0x00, 0x80]),
            Err(DerError::NonMinimalLength { offset: 1 })
        );
        assert_eq!(
            read_tlv(&[0x04, 0x85, 1, 1, 1, 1, 1]),
            Err(DerError::LengthTooLong {
                offset: 1,
                octets: 5
            })
        );
        assert_eq!(
            read_tlv(&[0x04, 0x03, 0x01]),
            Err(DerError::TruncatedContent {
                offset: 0,
                declared: 3,
                available: 1
            })
        );
        // The offset of a bad child is relative to the parent's content.
        assert_eq!(
            children(&[0x02, 0x01, 0x05, 0x04, 0x09]),
            Err(DerError::TruncatedContent {
                offset: 3,
                declared: 9,
                available: 0
            })
        );
    }

    #[test]
    fn huge_declared_length_does_not_allocate() {
        // 4 GiB - 1 declared, 2 bytes present: must fail fast, not try to allocate.
        let der = [0x04, 0x84, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00];
        assert!(matches!(
            read_tlv(&der),
            Err(DerError::TruncatedContent {
                declared: 0xffff_ffff,
                available: 2,
                ..
            })
        ));
    }
}
