//! Fuzz target: RFC 6962 leaf_input + extra_data, then leaf facts and the chain check.
//! What it does with the input is `harness::rfc6962_entry` (fuzz/harness.rs), shared with the regression tests
//! (tests/fuzz_regressions.rs).
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::rfc6962_entry(data));
