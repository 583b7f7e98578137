//! Fuzz target: signed notes (checkpoints), verified with the real keys of the seeded logs.
//! What it does with the input is `harness::checkpoint` (fuzz/harness.rs), shared with the regression tests
//! (tests/fuzz_regressions.rs).
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::checkpoint(data));
