//! static-ct data tiles (plain or gzip), and the entries they hold.
#![no_main]

use ctwatch::ct::{cert, chain, leaf};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(leaves) = leaf::decode_data_tile(data, 768) {
        for l in leaves.iter().take(4) {
            let _ = cert::leaf_info(&l.entry);
            let _ = chain::check(&l.entry);
        }
    }
});
