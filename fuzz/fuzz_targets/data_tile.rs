//! Fuzz target: static-ct data tiles (plain or gzip) and the entries they hold.
//! What it does with the input is `harness::data_tile` (fuzz/harness.rs), shared with the regression tests
//! (tests/fuzz_regressions.rs).
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::data_tile(data));
