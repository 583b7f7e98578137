//! What an RFC 6962 log answers in JSON: get-sth (first byte even) or get-entries (odd), decoded as the client does.
#![no_main]

use base64::Engine;
use ctwatch::ct::{leaf, sth};
use ctwatch::ctlog::rfc6962::GetEntries;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    if which % 2 == 0 {
        let _ = sth::parse_get_sth(body);
        return;
    }
    let Ok(resp) = serde_json::from_slice::<GetEntries>(body) else {
        return;
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    for item in resp.entries.iter().take(8) {
        if let (Ok(l), Ok(e)) = (b64.decode(&item.leaf_input), b64.decode(&item.extra_data)) {
            let _ = leaf::decode_rfc6962(&l, &e);
        }
    }
});
