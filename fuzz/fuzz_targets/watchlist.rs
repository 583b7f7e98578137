//! Fuzz target: watchlist files, then matching names against what parsed.
//! What it does with the input is `harness::watchlist` (fuzz/harness.rs), shared with the regression tests
//! (tests/fuzz_regressions.rs).
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::watchlist(data));
