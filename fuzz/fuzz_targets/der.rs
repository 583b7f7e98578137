//! Fuzz target: the DER helpers, certificate facts and the chain check of a certificate and its issuer.
//! What it does with the input is `harness::der` (fuzz/harness.rs), shared with the regression tests
//! (tests/fuzz_regressions.rs).
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::der(data));
