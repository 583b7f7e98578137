//! Fuzz target: v3 log lists (logs and tiled_logs).
//! What it does with the input is `harness::log_list` (fuzz/harness.rs), shared with the regression tests
//! (tests/fuzz_regressions.rs).
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::log_list(data));
