//! RFC 6962 `leaf_input` + `extra_data` (input: u16 big-endian length of leaf_input, leaf_input, extra_data), then
//! everything the tailer does with a decoded entry: leaf facts, the chain check, the identity.
#![no_main]

use ctwatch::ct::{cert, chain, leaf};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let n = usize::from(u16::from_be_bytes([data[0], data[1]])).min(data.len() - 2);
    let (leaf_input, extra_data) = data[2..].split_at(n);
    if let Ok(entry) = leaf::decode_rfc6962(leaf_input, extra_data) {
        let _ = cert::leaf_info(&entry);
        let _ = chain::check(&entry);
        let _ = leaf::decode_extra_data(entry.entry_type, extra_data);
    }
});
