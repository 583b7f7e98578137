//! certstream `certificate_update` messages, as certstream-server-go writes them (pure: DER in, JSON out).
//!
//! ```text
//!  {"message_type": "certificate_update",
//!   "data": {"update_type": "X509LogEntry" | "PrecertLogEntry",
//!            "leaf_cert": {all_domains, as_der, extensions{...}, fingerprint, sha1, sha256, not_after, not_before,
//!                          serial_number, signature_algorithm, subject{...}, issuer{...}, is_ca},
//!            "chain": [leaf_cert without as_der ...],            (omitted when empty: tiled logs)
//!            "cert_index", "cert_link", "seen", "source": {"name", "url", "type"},
//!            "tbs_sha256", "cert_sha256", "log_id", "verified": true, "matches": [...]}}  <- ctwatch's additions
//!  lite:    the same without `as_der` and `chain`
//!  domains: {"message_type": "dns_entries", "data": [all_domains...]}
//! ```
//!
//! Shared by every publisher of the feed (the WebSocket/SSE live feed, message-queue publishers): they all send
//! the exact same JSON.

use base64::Engine;
use serde::Serialize;
use serde_json::{Map, Value, json};
use x509_parser::prelude::*;

/// Which log an entry comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Source {
    /// The log's description from the log list (`Google 'Argon2026h1'`).
    pub name: String,
    /// The log's URL (monitoring URL for tiled logs).
    pub url: String,
    /// `rfc6962` | `tiled`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// One watchlist match, as carried in ctwatch's `matches` extra.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MatchRef {
    pub item: String,
    pub name: String,
    /// Match kind (`domain`, `exact`, ..., `lookalike`, `unauthorized_issuer`).
    pub kind: String,
    /// The event kind it raises (`new_certificate`, `unauthorized_issuer`, `lookalike`).
    pub event_kind: String,
    pub tags: Vec<String>,
}

/// What one verified log entry contributes to a message.
pub struct UpdateInput<'a> {
    pub source: &'a Source,
    pub index: u64,
    pub precert: bool,
    /// The certificate (or precertificate) DER.
    pub cert_der: &'a [u8],
    /// Chain DERs, issuer first (may be empty).
    pub chain: &'a [Vec<u8>],
    pub tbs_sha256: &'a [u8; 32],
    /// The log's ID (SHA-256 of its public key), written in base64 as in log lists.
    pub log_id: &'a [u8; 32],
    /// Unix seconds (fractional) when ctwatch saw the entry.
    pub seen: f64,
    pub matches: &'a [MatchRef],
}

/// The three renderings of one update, serialized once and shared by every client.
#[derive(Clone, Debug)]
pub struct Rendered {
    pub full: String,
    pub lite: String,
    pub domains: String,
}

/// Why a certificate could not be described.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("certificate does not parse: {0}")]
pub struct BadCertificate(String);

/// Build the full, lite and domains messages of one entry.
pub fn render(input: &UpdateInput<'_>) -> Result<Rendered, BadCertificate> {
    let mut leaf = leaf_cert(input.cert_der)?;
    let cert_sha256 = hex::encode(ring::digest::digest(&ring::digest::SHA256, input.cert_der));
    let log_id = base64::engine::general_purpose::STANDARD.encode(input.log_id);
    let domains = leaf["all_domains"].clone();
    let chain: Vec<Value> = input
        .chain
        .iter()
        .filter_map(|der| leaf_cert(der).ok())
        .map(|mut c| {
            if let Some(o) = c.as_object_mut() {
                o.remove("as_der");
            }
            c
        })
        .collect();
    let data = |leaf: &Value, chain: Option<&Vec<Value>>| {
        let mut d = Map::new();
        d.insert("cert_index".into(), json!(input.index));
        d.insert(
            "cert_link".into(),
            json!(cert_link(input.source, input.index)),
        );
        if let Some(chain) = chain.filter(|c| !c.is_empty()) {
            d.insert("chain".into(), json!(chain));
        }
        d.insert("leaf_cert".into(), leaf.clone());
        d.insert("seen".into(), json!(input.seen));
        d.insert("source".into(), json!(input.source));
        let update = if input.precert {
            "PrecertLogEntry"
        } else {
            "X509LogEntry"
        };
        d.insert("update_type".into(), json!(update));
        d.insert("tbs_sha256".into(), json!(hex::encode(input.tbs_sha256)));
        d.insert("cert_sha256".into(), json!(cert_sha256));
        d.insert("log_id".into(), json!(log_id));
        d.insert("verified".into(), json!(true));
        d.insert("matches".into(), json!(input.matches));
        json!({"data": d, "message_type": "certificate_update"}).to_string()
    };
    let full = data(&leaf, Some(&chain));
    if let Some(o) = leaf.as_object_mut() {
        o.remove("as_der");
    }
    let lite = data(&leaf, None);
    let domains = json!({"data": domains, "message_type": "dns_entries"}).to_string();
    Ok(Rendered {
        full,
        lite,
        domains,
    })
}

/// A heartbeat message (sent every few seconds so clients can tell a quiet feed from a dead one).
pub fn heartbeat(now: f64) -> String {
    json!({"message_type": "heartbeat", "timestamp": now}).to_string()
}

/// Where the entry can be fetched from the log itself.
pub fn cert_link(source: &Source, index: u64) -> String {
    let base = source.url.trim_end_matches('/');
    if source.kind == "tiled" {
        format!("{base}/tile/data/{}", tile_path(index / 256))
    } else {
        format!("{base}/ct/v1/get-entries?start={index}&end={index}")
    }
}

/// The static-ct tile path of tile `n`: groups of three digits, all but the last prefixed with `x`.
fn tile_path(mut n: u64) -> String {
    let mut parts = vec![format!("{:03}", n % 1000)];
    n /= 1000;
    while n > 0 {
        parts.push(format!("x{:03}", n % 1000));
        n /= 1000;
    }
    parts.reverse();
    parts.join("/")
}

/// The precertificate poison extension (RFC 6962 section 3.1).
const CT_POISON_OID: &str = "1.3.6.1.4.1.11129.2.4.3";

/// certstream's `leaf_cert` object for one DER certificate.
fn leaf_cert(der: &[u8]) -> Result<Value, BadCertificate> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| BadCertificate(e.to_string()))?;
    let subject = name_json(cert.subject());
    let is_ca = cert.is_ca();
    let mut all_domains: Vec<String> = Vec::new();
    let mut extensions = Map::new();
    for ext in cert.extensions() {
        if ext.oid.to_id_string() == CT_POISON_OID {
            extensions.insert("ctlPoisonByte".into(), Value::Bool(true));
        }
        describe_extension(ext.parsed_extension(), &mut extensions, &mut all_domains);
    }
    if let Some(cn) = subject["CN"]
        .as_str()
        .filter(|cn| !cn.is_empty() && !is_ca && !all_domains.iter().any(|d| d == cn))
    {
        all_domains.push(cn.to_string());
    }
    let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der);
    let sha256 = ring::digest::digest(&ring::digest::SHA256, der);
    let fingerprint = colon_hex(sha1.as_ref());
    Ok(json!({
        "all_domains": all_domains,
        "as_der": base64::engine::general_purpose::STANDARD.encode(der),
        "extensions": extensions,
        "fingerprint": fingerprint,
        "sha1": fingerprint,
        "sha256": colon_hex(sha256.as_ref()),
        "not_after": cert.validity().not_after.timestamp(),
        "not_before": cert.validity().not_before.timestamp(),
        "serial_number": serial_hex(cert.raw_serial()),
        "signature_algorithm": signature_algorithm(&cert.signature_algorithm.algorithm.to_id_string()),
        "subject": subject,
        "issuer": name_json(cert.issuer()),
        "is_ca": is_ca,
    }))
}

fn describe_extension(
    ext: &ParsedExtension<'_>,
    out: &mut Map<String, Value>,
    domains: &mut Vec<String>,
) {
    let mut put = |k: &str, v: String| {
        out.insert(k.to_string(), Value::String(v));
    };
    match ext {
        ParsedExtension::KeyUsage(ku) => put("keyUsage", key_usage(ku)),
        ParsedExtension::BasicConstraints(bc) => {
            put("basicConstraints", format!("CA:{}", bc.ca).to_uppercase())
        }
        ParsedExtension::SubjectKeyIdentifier(k) => put("subjectKeyIdentifier", key_id(k.0)),
        ParsedExtension::AuthorityKeyIdentifier(a) => {
            if let Some(k) = &a.key_identifier {
                put("authorityKeyIdentifier", key_id(k.0));
            }
        }
        ParsedExtension::SubjectAlternativeName(san) => {
            let mut parts = Vec::new();
            for n in &san.general_names {
                match n {
                    GeneralName::DNSName(d) => {
                        domains.push(d.to_string());
                        parts.push(format!("DNS:{d}"));
                    }
                    GeneralName::RFC822Name(e) => parts.push(format!("email:{e}")),
                    GeneralName::IPAddress(ip) => parts.push(format!("IP Address:{}", ip_text(ip))),
                    _ => {}
                }
            }
            put("subjectAltName", parts.join(", "));
        }
        ParsedExtension::AuthorityInfoAccess(aia) => {
            let uris: Vec<String> = aia
                .accessdescs
                .iter()
                .filter_map(|d| match &d.access_location {
                    GeneralName::URI(u) => Some(format!("URI:{u}")),
                    _ => None,
                })
                .collect();
            put("authorityInfoAccess", uris.join(", "));
        }
        ParsedExtension::ExtendedKeyUsage(eku) => put("extendedKeyUsage", extended_key_usage(eku)),
        ParsedExtension::CertificatePolicies(p) => {
            let ids: Vec<String> = p
                .iter()
                .map(|i| format!("Policy: {}", i.policy_id.to_id_string()))
                .collect();
            put("certificatePolicies", ids.join(", "));
        }
        _ => {}
    }
}

/// certstream's subject/issuer object: C, CN, L, O, OU, ST, aggregated, email_address (null when absent).
fn name_json(name: &X509Name<'_>) -> Value {
    let join = |it: &mut dyn Iterator<Item = &AttributeTypeAndValue<'_>>| -> Option<String> {
        let v: Vec<&str> = it.filter_map(|a| a.as_str().ok()).collect();
        (!v.is_empty()).then(|| v.join(","))
    };
    let c = join(&mut name.iter_country());
    let cn = join(&mut name.iter_common_name());
    let l = join(&mut name.iter_locality());
    let o = join(&mut name.iter_organization());
    let ou = join(&mut name.iter_organizational_unit());
    let st = join(&mut name.iter_state_or_province());
    let email = join(&mut name.iter_email());
    let mut aggregated = String::new();
    for (k, v) in [
        ("C", &c),
        ("CN", &cn),
        ("L", &l),
        ("O", &o),
        ("OU", &ou),
        ("ST", &st),
    ] {
        if let Some(v) = v {
            aggregated.push_str(&format!("/{k}={v}"));
        }
    }
    json!({"C": c, "CN": cn, "L": l, "O": o, "OU": ou, "ST": st, "aggregated": aggregated, "email_address": email})
}

fn key_usage(ku: &KeyUsage) -> String {
    let names = [
        (ku.digital_signature(), "Digital Signature"),
        (ku.non_repudiation(), "Content Commitment"),
        (ku.key_encipherment(), "Key Encipherment"),
        (ku.data_encipherment(), "Data Encipherment"),
        (ku.key_agreement(), "Key Agreement"),
        (ku.key_cert_sign(), "Certificate Signing"),
        (ku.crl_sign(), "CRL Signing"),
        (ku.encipher_only(), "Encipher Only"),
        (ku.decipher_only(), "Decipher Only"),
    ];
    names
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

fn extended_key_usage(eku: &ExtendedKeyUsage<'_>) -> String {
    let names = [
        (eku.server_auth, "TLS Web Server Authentication"),
        (eku.client_auth, "TLS Web Client Authentication"),
        (eku.code_signing, "Code Signing"),
        (eku.email_protection, "E-mail Protection"),
        (eku.time_stamping, "Time Stamping"),
        (eku.ocsp_signing, "OCSP Signing"),
        (eku.any, "Any Extended Key Usage"),
    ];
    let mut out: Vec<String> = names
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| n.to_string())
        .collect();
    out.extend(eku.other.iter().map(|o| o.to_id_string()));
    out.join(", ")
}

fn signature_algorithm(oid: &str) -> &'static str {
    match oid {
        "1.2.840.113549.1.1.5" => "sha1, rsa",
        "1.2.840.113549.1.1.11" => "sha256, rsa",
        "1.2.840.113549.1.1.12" => "sha384, rsa",
        "1.2.840.113549.1.1.13" => "sha512, rsa",
        "1.2.840.113549.1.1.10" => "rsassa-pss",
        "1.2.840.10045.4.1" => "ecdsa, sha1",
        "1.2.840.10045.4.3.2" => "ecdsa, sha256",
        "1.2.840.10045.4.3.3" => "ecdsa, sha384",
        "1.2.840.10045.4.3.4" => "ecdsa, sha512",
        "1.3.101.112" => "ed25519",
        _ => "unknown",
    }
}

/// `keyid:aa:bb:...`, as certstream writes key identifiers.
fn key_id(id: &[u8]) -> String {
    format!(
        "keyid:{}",
        hex::encode(id)
            .as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(":")
    )
}

/// `AB:CD:...` upper-case.
fn colon_hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The serial as certstream-server-go prints a big integer: upper-case hex without leading zeros, padded to an
/// even number of digits.
fn serial_hex(raw: &[u8]) -> String {
    let s = hex::encode_upper(raw);
    let s = s.trim_start_matches('0');
    match s.len() {
        0 => "00".into(),
        n if n % 2 == 1 => format!("0{s}"),
        _ => s.to_string(),
    }
}

fn ip_text(ip: &[u8]) -> String {
    match ip.len() {
        4 => std::net::Ipv4Addr::from(<[u8; 4]>::try_from(ip).unwrap_or_default()).to_string(),
        16 => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(ip).unwrap_or_default()).to_string(),
        _ => hex::encode(ip),
    }
}

#[cfg(test)]
mod tests;
