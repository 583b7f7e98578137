//! Watchlist files, then matching a few names against what parsed.
#![no_main]

use ctwatch::watchlist::{MatchInput, Watchlist};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(wl) = Watchlist::parse_str("fuzz.txt", text) {
        let names: Vec<String> = text
            .split_whitespace()
            .take(8)
            .map(|s| s.to_string())
            .chain(["www.example.com".to_string(), "xn--pypal-4ve.com".to_string()])
            .collect();
        let _ = wl.match_cert(&MatchInput {
            dns_names: &names,
            ip_addresses: &["192.0.2.1".to_string()],
            issuer_org: Some("Let's Encrypt"),
            issuer_cn: Some("R10"),
            issuer_spki_sha256: None,
            issuer_proven: true,
        });
    }
});
