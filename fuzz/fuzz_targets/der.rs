//! The DER helpers and everything built on them: TLV walking, the TBS identity, certificate facts of a DER taken
//! as a certificate (x509 entry) and as a precert TBS.
#![no_main]

use ctwatch::ct::leaf::{EntryType, LogEntry};
use ctwatch::ct::{cert, chain, der};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((tlv, _)) = der::read_tlv(data) {
        let _ = der::children(tlv.content);
    }
    let _ = cert::tbs_identity(data);
    let _ = cert::tbs_of_certificate(data);
    for entry_type in [EntryType::X509, EntryType::Precert] {
        let entry = LogEntry {
            timestamp_ms: 0,
            entry_type,
            signed_entry: data.to_vec(),
            issuer_key_hash: Some([0; 32]),
            pre_certificate: Some(data.to_vec()),
            chain: vec![data.to_vec()],
            chain_error: None,
        };
        let _ = cert::leaf_info(&entry);
        let _ = chain::check(&entry);
    }
});
