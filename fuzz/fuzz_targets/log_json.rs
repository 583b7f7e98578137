//! Fuzz target: RFC 6962 JSON answers: get-sth, get-entries, get-sth-consistency, get-proof-by-hash.
//! What it does with the input is `harness::log_json` (fuzz/harness.rs), shared with the regression tests
//! (tests/fuzz_regressions.rs).
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::log_json(data));
