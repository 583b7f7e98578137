//! Certificate facts a monitor needs from a [`LogEntry`]: names, issuer, validity, fingerprints, and the identity
//! shared by a precertificate and its final certificate.
//!
//! Pure. Fields are parsed with x509-parser; the identity needs an *edited* TBSCertificate, which x509-parser cannot
//! produce, so [`tbs_identity`] walks the DER itself (see `der.rs`).
//!
//! Which TBSCertificate is described: for a precert entry, the one in the leaf (`signed_entry`) — that is the final
//! certificate's TBS minus the SCT list, with the issuer already rewritten when a precert-signing certificate was
//! used — and for an x509 entry, the certificate's own. This matches certspotter, whose `tbs_sha256` is the SHA-256
//! of the leaf's TBS for precerts and of the certificate's TBS without the SCT list extension for certificates.

use std::borrow::Cow;
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use sha2::{Digest, Sha256};
use thiserror::Error;
use x509_parser::certificate::TbsCertificate;
use x509_parser::der_parser::asn1_rs::{Any, Class, FromDer};
use x509_parser::extensions::GeneralName;
use x509_parser::x509::X509Name;

use crate::ct::chain;
use crate::ct::der::{self, DerError};
use crate::ct::leaf::{EntryType, LogEntry};

/// DER content of OID 1.3.6.1.4.1.11129.2.4.3, the CT precertificate poison extension (RFC 6962 section 3.1).
const OID_CT_POISON: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x03];
/// DER content of OID 1.3.6.1.4.1.11129.2.4.2, the embedded SCT list extension (RFC 6962 section 3.3).
const OID_CT_SCT_LIST: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x02];

/// Why certificate facts could not be extracted.
#[derive(Debug, Error)]
pub enum CertError {
    #[error("{what}: malformed DER")]
    Der {
        what: &'static str,
        #[source]
        source: DerError,
    },
    #[error("{what}: expected tag 0x{expected:02x}, found 0x{found:02x}")]
    UnexpectedTag {
        what: &'static str,
        expected: u8,
        found: u8,
    },
    #[error("{what}: {len} trailing bytes after the element")]
    TrailingData { what: &'static str, len: usize },
    #[error("TBSCertificate: more than one extensions [3] field")]
    DuplicateExtensionsField,
    #[error("{what}: {reason}")]
    Parse { what: &'static str, reason: String },
    #[error("subjectAltName iPAddress of {len} bytes (expected 4 or 16)")]
    BadIpAddress { len: usize },
    #[error("subjectAltName dNSName is not valid text: {bytes:02x?}")]
    BadDnsName { bytes: Vec<u8> },
}

fn der_err(what: &'static str) -> impl FnOnce(DerError) -> CertError {
    move |source| CertError::Der { what, source }
}

/// Facts about one logged certificate or precertificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// SAN dNSNames, then the subject CN when it is a host name (or `*.host`); lowercased, trailing dot removed,
    /// deduplicated, order preserved.
    pub dns_names: Vec<String>,
    /// SAN iPAddresses as text (v4 dotted, v6 RFC 5952), then the subject CN if it is an IP literal.
    pub ip_addresses: Vec<String>,
    /// RFC 4514 order (last RDN first), e.g. `"CN=example.com, O=Example, C=US"`; empty for an empty subject.
    pub subject: String,
    pub issuer: String,
    /// The issuer's first O attribute.
    pub issuer_org: Option<String>,
    /// The issuer's first CN attribute.
    pub issuer_cn: Option<String>,
    /// Lowercase hex of the DER INTEGER content (so a sign byte `00` stays, as DER has it).
    pub serial: String,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// SHA-256 of the certificate DER: for an x509 entry the leaf's certificate; for a precert the served
    /// pre_certificate, only once [`chain::check`] proved it is the leaf's (`None` before or otherwise).
    pub cert_sha256: Option<[u8; 32]>,
    /// The issuance identity shared by precert and final cert; see [`tbs_identity`].
    pub tbs_sha256: [u8; 32],
    /// SHA-256 of the subject SubjectPublicKeyInfo DER (certspotter's `pubkey_sha256`).
    pub pubkey_sha256: [u8; 32],
    /// SHA-256 of the SubjectPublicKeyInfo of the issuing CA, once [`chain::check`] proved it; `None` otherwise.
    pub issuer_spki_sha256: Option<[u8; 32]>,
    /// What the served chain proved (see [`ChainStatus`]).
    pub chain: ChainStatus,
    pub is_precert: bool,
}

/// Whether the unverified fields of an entry (pre_certificate, chain) were checked, and what came of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainStatus {
    /// Not checked: [`leaf_info`] only reads the leaf.
    Unchecked,
    /// The issuer is proven and, for a precert, the served pre_certificate is the leaf's.
    Proven,
    /// The served fields could not be read or proved nothing: why (certspotter's `CHAIN_ERROR`).
    Error(String),
}

impl ChainStatus {
    pub fn is_proven(&self) -> bool {
        *self == ChainStatus::Proven
    }

    /// The reason, when the check failed.
    pub fn error(&self) -> Option<&str> {
        match self {
            ChainStatus::Error(e) => Some(e),
            _ => None,
        }
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Read exactly one element of tag `tag` spanning all of `input`.
fn single<'a>(input: &'a [u8], tag: u8, what: &'static str) -> Result<der::Tlv<'a>, CertError> {
    let (tlv, rest) = der::read_tlv(input).map_err(der_err(what))?;
    if tlv.tag != tag {
        return Err(CertError::UnexpectedTag {
            what,
            expected: tag,
            found: tlv.tag,
        });
    }
    if !rest.is_empty() {
        return Err(CertError::TrailingData {
            what,
            len: rest.len(),
        });
    }
    Ok(tlv)
}

/// Extract the raw TBSCertificate bytes from a certificate DER.
pub fn tbs_of_certificate(cert_der: &[u8]) -> Result<&[u8], CertError> {
    let cert = single(cert_der, der::TAG_SEQUENCE, "Certificate")?;
    let (tbs, _signature_parts) = der::read_tlv(cert.content).map_err(der_err("TBSCertificate"))?;
    if tbs.tag != der::TAG_SEQUENCE {
        return Err(CertError::UnexpectedTag {
            what: "TBSCertificate",
            expected: der::TAG_SEQUENCE,
            found: tbs.tag,
        });
    }
    Ok(tbs.raw)
}

/// Is this `Extension` element the CT poison or the embedded SCT list?
fn is_ct_extension(ext: &der::Tlv<'_>) -> Result<bool, CertError> {
    if ext.tag != der::TAG_SEQUENCE {
        return Err(CertError::UnexpectedTag {
            what: "Extension",
            expected: der::TAG_SEQUENCE,
            found: ext.tag,
        });
    }
    let (oid, _) = der::read_tlv(ext.content).map_err(der_err("Extension extnID"))?;
    if oid.tag != der::TAG_OID {
        return Err(CertError::UnexpectedTag {
            what: "Extension extnID",
            expected: der::TAG_OID,
            found: oid.tag,
        });
    }
    Ok(oid.content == OID_CT_POISON || oid.content == OID_CT_SCT_LIST)
}

/// SHA-256 of the TBSCertificate with the CT poison (1.3.6.1.4.1.11129.2.4.3) and embedded SCT list
/// (1.3.6.1.4.1.11129.2.4.2) extensions removed, re-encoded as correct DER (fix every enclosing length; drop the
/// extensions [3] wrapper entirely if no extension remains).
///
/// Why: the same issuance is logged as a precertificate (poison, no SCTs) and as the final certificate (SCTs, no
/// poison); without those two extensions their TBSCertificates are identical, so this hash lets a monitor alert
/// once per issuance. When neither extension is present the input bytes are hashed unchanged — which is exactly
/// certspotter's `tbs_sha256` for precert leaves, whose TBS the log has already stripped of the poison.
pub fn tbs_identity(tbs_der: &[u8]) -> Result<[u8; 32], CertError> {
    let tbs = single(tbs_der, der::TAG_SEQUENCE, "TBSCertificate")?;
    let fields = der::children(tbs.content).map_err(der_err("TBSCertificate fields"))?;
    let mut parts: Vec<std::borrow::Cow<'_, [u8]>> = Vec::with_capacity(fields.len());
    let mut removed_any = false;
    let mut seen_extensions = false;
    for field in &fields {
        if field.tag != der::context_constructed(3) {
            parts.push(field.raw.into());
            continue;
        }
        if seen_extensions {
            return Err(CertError::DuplicateExtensionsField);
        }
        seen_extensions = true;
        let list = single(field.content, der::TAG_SEQUENCE, "Extensions")?;
        let extensions = der::children(list.content).map_err(der_err("Extensions"))?;
        let mut kept: Vec<&[u8]> = Vec::with_capacity(extensions.len());
        for ext in &extensions {
            if !is_ct_extension(ext)? {
                kept.push(ext.raw);
            }
        }
        if kept.len() == extensions.len() {
            parts.push(field.raw.into());
            continue;
        }
        removed_any = true;
        if !kept.is_empty() {
            let list = der::build_constructed(der::TAG_SEQUENCE, &kept);
            parts.push(der::build_constructed(der::context_constructed(3), &[&list]).into());
        }
    }
    if !removed_any {
        return Ok(sha256(tbs_der));
    }
    let parts: Vec<&[u8]> = parts.iter().map(|p| p.as_ref()).collect();
    Ok(sha256(&der::build_constructed(der::TAG_SEQUENCE, &parts)))
}

/// Parse a TBSCertificate that must span all of `tbs_der`.
fn parse_tbs<'a>(tbs_der: &'a [u8], what: &'static str) -> Result<TbsCertificate<'a>, CertError> {
    let (rest, tbs) = TbsCertificate::from_der(tbs_der).map_err(|e| CertError::Parse {
        what,
        reason: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(CertError::TrailingData {
            what,
            len: rest.len(),
        });
    }
    Ok(tbs)
}

/// Facts from the leaf alone (what the tree proves): names, subject, issuer name, serial, validity, `tbs_sha256`,
/// `pubkey_sha256`; `cert_sha256` for x509 entries. Nothing served outside the tree is read: the issuer is not
/// proven and a precert's `cert_sha256` is unknown until [`CertInfo::apply_chain`]. Cheap enough for every entry
/// of a firehose; run the chain check only for entries that matter (it verifies signatures).
pub fn leaf_info(entry: &LogEntry) -> Result<CertInfo, CertError> {
    let tbs_der: &[u8] = match entry.entry_type {
        EntryType::X509 => tbs_of_certificate(&entry.signed_entry)?,
        EntryType::Precert => &entry.signed_entry,
    };
    let tbs = parse_tbs(tbs_der, "TBSCertificate")?;
    let (dns_names, ip_addresses) = names(&tbs)?;
    Ok(CertInfo {
        dns_names,
        ip_addresses,
        subject: format_name(&tbs.subject),
        issuer: format_name(&tbs.issuer),
        issuer_org: first_attribute(&tbs.issuer, OID_ORGANIZATION),
        issuer_cn: first_attribute(&tbs.issuer, OID_COMMON_NAME),
        serial: hex::encode(tbs.raw_serial()),
        not_before: tbs.validity.not_before.timestamp(),
        not_after: tbs.validity.not_after.timestamp(),
        cert_sha256: match entry.entry_type {
            EntryType::X509 => Some(sha256(&entry.signed_entry)),
            EntryType::Precert => None,
        },
        tbs_sha256: tbs_identity(tbs_der)?,
        pubkey_sha256: sha256(tbs.subject_pki.raw),
        issuer_spki_sha256: None,
        chain: ChainStatus::Unchecked,
        is_precert: entry.entry_type == EntryType::Precert,
    })
}

/// The names of a leaf: what matching needs from every entry of a firehose.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeafNames {
    /// As [`CertInfo::dns_names`].
    pub dns_names: Vec<String>,
    /// As [`CertInfo::ip_addresses`].
    pub ip_addresses: Vec<String>,
}

/// The DNS names and IP addresses of the leaf, exactly as [`leaf_info`] reads them, with a walk over the DER (no
/// full X.509 parse, no DN formatting, no hashing): cheap enough for every entry. Only an entry whose names match
/// (or that is stored or streamed) needs [`leaf_info`].
pub fn leaf_names(entry: &LogEntry) -> Result<LeafNames, CertError> {
    let tbs_der: &[u8] = match entry.entry_type {
        EntryType::X509 => tbs_of_certificate(&entry.signed_entry)?,
        EntryType::Precert => &entry.signed_entry,
    };
    names_of_tbs(tbs_der)
}

/// DER content of OID 2.5.29.17, subjectAltName.
const OID_SAN: &[u8] = &[0x55, 0x1d, 0x11];
/// DER content of OID 2.5.4.3, commonName.
const OID_CN: &[u8] = &[0x55, 0x04, 0x03];

/// Read the elements of a constructed element's content one by one.
fn each_child<'a>(
    content: &'a [u8],
    what: &'static str,
    mut f: impl FnMut(der::Tlv<'a>) -> Result<(), CertError>,
) -> Result<(), CertError> {
    let mut rest = content;
    while !rest.is_empty() {
        let (tlv, after) = der::read_tlv(rest).map_err(der_err(what))?;
        f(tlv)?;
        rest = after;
    }
    Ok(())
}

fn expect_tag(tlv: &der::Tlv<'_>, tag: u8, what: &'static str) -> Result<(), CertError> {
    if tlv.tag == tag {
        Ok(())
    } else {
        Err(CertError::UnexpectedTag {
            what,
            expected: tag,
            found: tlv.tag,
        })
    }
}

/// [`names`] over the raw TBSCertificate: SAN dNSNames and iPAddresses, then subject CNs that are host names or
/// IP literals.
fn names_of_tbs(tbs_der: &[u8]) -> Result<LeafNames, CertError> {
    let tbs = single(tbs_der, der::TAG_SEQUENCE, "TBSCertificate")?;
    // version [0] (optional), serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo,
    // issuerUniqueID [1], subjectUniqueID [2], extensions [3].
    let mut position = 0;
    let mut subject = None;
    let mut extensions = None;
    each_child(tbs.content, "TBSCertificate fields", |field| {
        if position == 0 && field.tag == der::context_constructed(0) {
            return Ok(());
        }
        position += 1;
        match position {
            5 => subject = Some(field),
            7.. if field.tag == der::context_constructed(3)
                && extensions.replace(field).is_some() =>
            {
                return Err(CertError::DuplicateExtensionsField);
            }
            _ => {}
        }
        Ok(())
    })?;
    let Some(subject) = subject else {
        return Err(CertError::Parse {
            what: "TBSCertificate",
            reason: "no subject".into(),
        });
    };
    expect_tag(&subject, der::TAG_SEQUENCE, "subject")?;
    let mut dns = UniqueNames::default();
    let mut ips = UniqueNames::default();
    if let Some(field) = extensions {
        let list = single(field.content, der::TAG_SEQUENCE, "Extensions")?;
        let mut san = None;
        each_child(list.content, "Extensions", |ext| {
            expect_tag(&ext, der::TAG_SEQUENCE, "Extension")?;
            let (oid, rest) = der::read_tlv(ext.content).map_err(der_err("Extension"))?;
            expect_tag(&oid, der::TAG_OID, "Extension extnID")?;
            if oid.content != OID_SAN {
                return Ok(());
            }
            // critical BOOLEAN DEFAULT FALSE, then extnValue OCTET STRING.
            let (mut value, mut rest) = der::read_tlv(rest).map_err(der_err("subjectAltName"))?;
            if value.tag == der::TAG_BOOLEAN {
                (value, rest) = der::read_tlv(rest).map_err(der_err("subjectAltName"))?;
            }
            expect_tag(&value, der::TAG_OCTET_STRING, "subjectAltName extnValue")?;
            if !rest.is_empty() {
                return Err(CertError::TrailingData {
                    what: "subjectAltName",
                    len: rest.len(),
                });
            }
            if san.replace(value.content).is_some() {
                return Err(CertError::Parse {
                    what: "subjectAltName",
                    reason: "duplicate extension".into(),
                });
            }
            Ok(())
        })?;
        if let Some(value) = san {
            let general_names = single(value, der::TAG_SEQUENCE, "subjectAltName")?;
            each_child(general_names.content, "subjectAltName", |gn| {
                // Context-specific [0]..[8], primitive or constructed.
                if gn.tag & 0xc0 != 0x80 || gn.tag & 0x1f > 8 {
                    return Err(CertError::Parse {
                        what: "subjectAltName",
                        reason: format!("unexpected GeneralName tag 0x{:02x}", gn.tag),
                    });
                }
                match gn.tag {
                    0x82 => {
                        let Ok(text) = std::str::from_utf8(gn.content) else {
                            return Err(CertError::BadDnsName {
                                bytes: gn.content.to_vec(),
                            });
                        };
                        let name = normalize_dns_name(text);
                        if !name.is_empty() {
                            dns.push(name);
                        }
                    }
                    0x87 => ips.push(ip_to_string(gn.content)?),
                    _ => {}
                }
                Ok(())
            })?;
        }
    }
    // Subject: SEQUENCE OF SET OF AttributeTypeAndValue { type OID, value ANY }.
    each_child(subject.content, "subject", |rdn| {
        each_child(rdn.content, "subject RDN", |atv| {
            let (oid, rest) = der::read_tlv(atv.content).map_err(der_err("subject attribute"))?;
            if oid.tag != der::TAG_OID || oid.content != OID_CN {
                return Ok(());
            }
            let (value, _) = der::read_tlv(rest).map_err(der_err("subject CN"))?;
            let Some(cn) = decode_directory_string(value.tag, value.content) else {
                return Ok(());
            };
            let cn = cn.trim();
            // Only a CN that starts with a digit or holds a ':' can be an IP literal.
            if (cn.starts_with(|c: char| c.is_ascii_digit()) || cn.contains(':'))
                && let Ok(ip) = cn.parse::<IpAddr>()
            {
                ips.push(ip.to_string());
                return Ok(());
            }
            // Nearly always the CN repeats a SAN: nothing to add, no need to look further.
            if dns.holds_dns_name(cn) {
                return Ok(());
            }
            let cn = normalize_dns_name(cn);
            if is_host_name(&cn) {
                dns.push(cn);
            }
            Ok(())
        })
    })?;
    Ok(LeafNames {
        dns_names: dns.list,
        ip_addresses: ips.list,
    })
}

/// Everything: [`leaf_info`], then the served chain checked with [`chain::check`].
pub fn cert_info(entry: &LogEntry) -> Result<CertInfo, CertError> {
    let mut info = leaf_info(entry)?;
    info.apply_chain(chain::check(entry));
    Ok(info)
}

impl CertInfo {
    /// Record the outcome of [`chain::check`] for this entry.
    pub fn apply_chain(&mut self, proof: Result<chain::Proof, chain::ChainError>) {
        match proof {
            Ok(p) => {
                self.issuer_spki_sha256 = Some(p.issuer_spki_sha256);
                self.cert_sha256 = Some(p.cert_sha256);
                self.chain = ChainStatus::Proven;
            }
            Err(e) => {
                self.issuer_spki_sha256 = None;
                self.chain = ChainStatus::Error(e.to_string());
            }
        }
    }
}

/// Names in first-seen order, without duplicates. The set beside the list keeps each addition O(1): what a leaf
/// holds is the log's choice, and a certificate of a few MiB can carry hundreds of thousands of names, where a scan
/// of the list per name (quadratic) would stall the tailer for minutes.
#[derive(Default)]
struct UniqueNames {
    list: Vec<String>,
    seen: HashSet<String>,
}

impl UniqueNames {
    /// Up to this many names a linear scan is cheaper than hashing (almost every certificate); beyond it, a set
    /// keeps a certificate with 100,000 names linear.
    const SCAN: usize = 16;

    /// Whether a short list already holds `name` as [`normalize_dns_name`] would make it, without making it (a
    /// long list answers false: `push` then settles it with the set).
    fn holds_dns_name(&self, name: &str) -> bool {
        let bare = name.strip_suffix('.').unwrap_or(name);
        self.list.len() <= Self::SCAN && self.list.iter().any(|n| n.eq_ignore_ascii_case(bare))
    }

    fn push(&mut self, value: String) {
        if self.list.len() < Self::SCAN {
            if !self.list.contains(&value) {
                self.list.push(value);
            }
            return;
        }
        if self.seen.is_empty() {
            self.seen.extend(self.list.iter().cloned());
        }
        if self.seen.insert(value.clone()) {
            self.list.push(value);
        }
    }
}

/// Lowercase (ASCII only: DNS names are ASCII, IDNs come as punycode) and drop one trailing root dot.
fn normalize_dns_name(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// Does a (normalized) subject CN look like a host name, so that it names the site just like a SAN would?
/// Labels of letters, digits, `-` and `_` (seen in the wild), at most 63 each; the first label may be `*`.
fn is_host_name(name: &str) -> bool {
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    name.split('.').enumerate().all(|(i, label)| {
        (i == 0 && label == "*")
            || (!label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    })
}

/// DNS names and IP addresses: SAN entries first, then subject CNs that are host names or IP literals.
fn names(tbs: &TbsCertificate<'_>) -> Result<(Vec<String>, Vec<String>), CertError> {
    let mut dns = UniqueNames::default();
    let mut ips = UniqueNames::default();
    let san = tbs
        .subject_alternative_name()
        .map_err(|e| CertError::Parse {
            what: "subjectAltName",
            reason: e.to_string(),
        })?;
    for name in san.iter().flat_map(|ext| &ext.value.general_names) {
        match name {
            GeneralName::DNSName(s) => {
                let s = normalize_dns_name(s);
                if !s.is_empty() {
                    dns.push(s);
                }
            }
            GeneralName::IPAddress(bytes) => ips.push(ip_to_string(bytes)?),
            GeneralName::Invalid(tag, bytes) if tag.0 == 2 => {
                return Err(CertError::BadDnsName {
                    bytes: bytes.to_vec(),
                });
            }
            _ => {}
        }
    }
    for atv in tbs.subject.iter_common_name() {
        let Some(cn) = decode_string(atv.attr_value()) else {
            continue;
        };
        let cn = cn.trim();
        if let Ok(ip) = cn.parse::<IpAddr>() {
            ips.push(ip.to_string());
            continue;
        }
        let cn = normalize_dns_name(cn);
        if is_host_name(&cn) {
            dns.push(cn);
        }
    }
    Ok((dns.list, ips.list))
}

fn ip_to_string(bytes: &[u8]) -> Result<String, CertError> {
    match bytes.len() {
        4 => Ok(Ipv4Addr::from(<[u8; 4]>::try_from(bytes).expect("4 bytes")).to_string()),
        16 => Ok(Ipv6Addr::from(<[u8; 16]>::try_from(bytes).expect("16 bytes")).to_string()),
        len => Err(CertError::BadIpAddress { len }),
    }
}

const OID_COMMON_NAME: &str = "2.5.4.3";
const OID_ORGANIZATION: &str = "2.5.4.10";

/// Short names for the attribute types RFC 4514 lists, plus a few common in WebPKI subjects.
fn attribute_label(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        "2.5.4.5" => "serialNumber",
        "2.5.4.17" => "postalCode",
        "2.5.4.15" => "businessCategory",
        "1.2.840.113549.1.9.1" => "emailAddress",
        _ => return None,
    })
}

/// Decode a directory string into text; `None` for non-string types or undecodable bytes.
fn decode_string(value: &Any<'_>) -> Option<String> {
    if value.header.class() != Class::Universal || value.header.tag().0 > 30 {
        return None;
    }
    decode_directory_string(value.header.tag().0 as u8, value.data).map(Cow::into_owned)
}

/// [`decode_string`] from the identifier octet (universal, primitive) and content.
fn decode_directory_string(tag: u8, data: &[u8]) -> Option<Cow<'_, str>> {
    match tag {
        // UTF8String, NumericString, PrintableString, IA5String, VisibleString: the bytes themselves.
        12 | 18 | 19 | 22 | 26 => std::str::from_utf8(data).ok().map(Cow::Borrowed),
        // TeletexString: in practice Latin-1
        20 => Some(Cow::Owned(data.iter().map(|&b| char::from(b)).collect())),
        // BMPString: UTF-16BE
        30 if data.len().is_multiple_of(2) => {
            let units = data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .ok()
                .map(Cow::Owned)
        }
        // UniversalString: UTF-32BE
        28 if data.len().is_multiple_of(4) => data
            .chunks_exact(4)
            .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
            .collect::<Option<String>>()
            .map(Cow::Owned),
        _ => None,
    }
}

/// RFC 4514 section 2.4 escaping of an attribute value.
fn escape_value(value: &str, out: &mut String) {
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            _ => out.push(c),
        }
    }
}

/// RFC 4514 string: RDNs in reverse order separated by `", "`, multi-valued RDNs joined by `+`; values that are
/// not text are written as `#` + hex of their DER, as RFC 4514 prescribes.
fn format_name(name: &X509Name<'_>) -> String {
    let rdns: Vec<_> = name.iter_rdn().collect();
    let mut out = String::new();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        for (j, atv) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            let oid = atv.attr_type().to_id_string();
            out.push_str(attribute_label(&oid).unwrap_or(&oid));
            out.push('=');
            match decode_string(atv.attr_value()) {
                Some(text) => escape_value(&text, &mut out),
                None => {
                    let value = atv.attr_value();
                    let mut der_bytes = Vec::new();
                    let header = &value.header;
                    let tag_byte = ((header.class() as u8) << 6)
                        | (u8::from(header.is_constructed()) << 5)
                        | (header.tag().0 as u8 & 0x1f);
                    der::write_tlv(tag_byte, value.data, &mut der_bytes);
                    out.push('#');
                    out.push_str(&hex::encode(der_bytes));
                }
            }
        }
    }
    out
}

/// The text of the first attribute of type `oid` in `name`.
fn first_attribute(name: &X509Name<'_>, oid: &str) -> Option<String> {
    name.iter_attributes()
        .find(|atv| atv.attr_type().to_id_string() == oid)
        .and_then(|atv| decode_string(atv.attr_value()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Extension { extnID 1.3.6.1.4.1.11129.2.4.3, critical TRUE, extnValue OCTET STRING { NULL } }`, by hand.
    const POISON: [u8; 21] = [
        0x30, 0x13, 0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x03, 0x01,
        0x01, 0xff, 0x04, 0x02, 0x05, 0x00,
    ];

    #[test]
    fn poison_only_extension_list_is_dropped_with_its_wrapper() {
        // SEQUENCE { INTEGER 1, [3] { SEQUENCE { poison } } }
        let mut tbs = vec![0x30, 0x1c, 0x02, 0x01, 0x01, 0xa3, 0x17, 0x30, 0x15];
        tbs.extend_from_slice(&POISON);
        assert_eq!(tbs.len(), 2 + 0x1c);
        let expected = sha256(&[0x30, 0x03, 0x02, 0x01, 0x01]);
        assert_eq!(tbs_identity(&tbs).unwrap(), expected);
        // With a second, ordinary extension (basicConstraints, empty SEQUENCE) it stays, lengths shrink by 21.
        let bc = [0x30, 0x07, 0x06, 0x03, 0x55, 0x1d, 0x13, 0x30, 0x00];
        let mut two = vec![0x30, 0x25, 0x02, 0x01, 0x01, 0xa3, 0x20, 0x30, 0x1e];
        two.extend_from_slice(&POISON);
        two.extend_from_slice(&bc);
        assert_eq!(two.len(), 2 + 0x25);
        let kept = [
            &[0x30, 0x10, 0x02, 0x01, 0x01, 0xa3, 0x0b, 0x30, 0x09][..],
            &bc[..],
        ]
        .concat();
        assert_eq!(tbs_identity(&two).unwrap(), sha256(&kept));
        assert_eq!(tbs_identity(&kept).unwrap(), sha256(&kept));
    }

    #[test]
    fn malformed_tbs_is_rejected() {
        assert!(matches!(
            tbs_identity(&[0x31, 0x00]),
            Err(CertError::UnexpectedTag {
                what: "TBSCertificate",
                expected: 0x30,
                found: 0x31
            })
        ));
        assert!(matches!(
            tbs_identity(&[0x30, 0x00, 0x00]),
            Err(CertError::TrailingData {
                what: "TBSCertificate",
                len: 1
            })
        ));
        // Two [3] fields.
        let tbs = [0x30, 0x08, 0xa3, 0x02, 0x30, 0x00, 0xa3, 0x02, 0x30, 0x00];
        assert!(matches!(
            tbs_identity(&tbs),
            Err(CertError::DuplicateExtensionsField)
        ));
        // An extension that is not a SEQUENCE.
        let tbs = [0x30, 0x06, 0xa3, 0x04, 0x30, 0x02, 0x05, 0x00];
        assert!(matches!(
            tbs_identity(&tbs),
            Err(CertError::UnexpectedTag {
                what: "Extension",
                ..
            })
        ));
    }

    #[test]
    fn host_names_and_their_normal_form() {
        for name in [
            "example.com",
            "*.example.com",
            "a_b.example",
            "localhost",
            "xn--bcher-kva.de",
        ] {
            assert!(is_host_name(name), "{name}");
        }
        for name in [
            "",
            "Example Corp",
            "a..b",
            "*.*.example",
            "ex*ample.com",
            "a.*.b",
            "é.com",
        ] {
            assert!(!is_host_name(name), "{name}");
        }
        assert!(!is_host_name(&format!("{}.com", "a".repeat(64))));
        assert_eq!(normalize_dns_name("WWW.Example.COM."), "www.example.com");
    }

    #[test]
    fn ip_addresses_and_escaping() {
        assert_eq!(ip_to_string(&[192, 0, 2, 1]).unwrap(), "192.0.2.1");
        let v6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(ip_to_string(&v6).unwrap(), "2001:db8::1");
        assert!(matches!(
            ip_to_string(&[1, 2, 3]),
            Err(CertError::BadIpAddress { len: 3 })
        ));
        let mut out = String::new();
        escape_value(" #a,b+c\"d\\e;<f> ", &mut out);
        assert_eq!(out, "\\ #a\\,b\\+c\\\"d\\\\e\\;\\<f\\>\\ ");
        let mut out = String::new();
        escape_value("#x", &mut out);
        assert_eq!(out, "\\#x");
    }
}
