//! The events ctwatch would queue for a given certificate, built with the real pipeline functions
//! (`cert::cert_info`, the watchlist matcher, `event::certificate_events`). Tests use it to check message
//! formats on real certificates; it also lets a user preview what a sink would receive.

use anyhow::{Context, Result};

use crate::ct::leaf::{EntryType, LogEntry};
use crate::event::{Event, LogRef, certificate_events};
use crate::store::StoredEntry;
use crate::watchlist::{MatchInput, Watchlist};

/// A log to attribute sample events to.
pub fn sample_log() -> LogRef {
    LogRef {
        log_id: [7; 32],
        url: "https://ct.example.net/sample/".into(),
        description: "Sample log".into(),
    }
}

/// The events for certificate `der` (seen as an x509 entry at `index`, logged at `timestamp_ms`) against the
/// watchlist text `watchlist`.
pub fn certificate_events_for(
    der: &[u8],
    watchlist: &str,
    index: u64,
    timestamp_ms: u64,
) -> Result<Vec<Event>> {
    let entry = LogEntry {
        timestamp_ms,
        entry_type: EntryType::X509,
        signed_entry: bytes::Bytes::copy_from_slice(der),
        issuer_key_hash: None,
        pre_certificate: None,
        chain: Vec::new(),
        chain_error: None,
    };
    // No chain comes with a sample: the leaf alone (an event without a `chain_error` line).
    let info = crate::ct::cert::leaf_info(&entry).context("parsing the certificate")?;
    let wl = Watchlist::parse_str("sample.txt", watchlist)
        .map_err(|e| anyhow::anyhow!("watchlist: {e}"))?;
    let matches = wl.match_cert(&MatchInput::from_cert(&info));
    let stored = StoredEntry {
        index,
        timestamp_ms,
        entry_type: EntryType::X509,
        info,
        der: Some(der.to_vec()),
        matches,
    };
    Ok(certificate_events(&sample_log(), &stored))
}

/// The certificates of a PEM file, in file order.
pub fn pem_certificates(pem: &[u8]) -> Vec<Vec<u8>> {
    x509_parser::pem::Pem::iter_from_buffer(pem)
        .filter_map(|p| p.ok())
        .map(|p| p.contents)
        .collect()
}

/// Real-certificate payloads for the format tests (tests/fixtures/notify, see its PROVENANCE.md).
#[cfg(test)]
pub(crate) mod fixtures {
    use serde_json::Value;

    pub fn read(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/fixtures/notify/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    /// The payload of the first event for `der` against `watchlist`.
    pub fn payload(der: &[u8], watchlist: &str) -> Value {
        let events =
            super::certificate_events_for(der, watchlist, 1234, 1_631_497_117_000).unwrap();
        assert!(!events.is_empty(), "no match for {watchlist}");
        events[0].payload.clone()
    }

    /// The 129-SAN `*.google.com` leaf (third certificate of the chain file).
    pub fn google_der() -> Vec<u8> {
        super::pem_certificates(&read("google_com_fullchain.pem")).remove(2)
    }

    /// `*.google.com` matched by the watch item `google.com`.
    pub fn google() -> Value {
        payload(&google_der(), "google.com lookalike=off\n")
    }

    /// cloudflare-dns.com (IP SANs) matched by `cloudflare-dns.com`.
    pub fn cloudflare() -> Value {
        payload(
            &read("cloudflare-dns_ee.der"),
            "cloudflare-dns.com lookalike=off\n",
        )
    }
}
