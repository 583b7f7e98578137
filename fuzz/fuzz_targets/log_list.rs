//! Log lists (Google v3 JSON, logs and tiled_logs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ctwatch::ct::loglist::parse(data);
});
