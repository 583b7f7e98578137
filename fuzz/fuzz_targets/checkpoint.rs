//! Signed notes (checkpoints), verified with a real log key (Sunlight's tuscolo2026h2) so that well-formed
//! signature lines reach the signature check.
#![no_main]

use std::sync::OnceLock;

use base64::Engine;
use ctwatch::ct::checkpoint;
use ctwatch::ct::sig::LogKey;
use libfuzzer_sys::fuzz_target;

const ORIGIN: &str = "tuscolo2026h2.sunlight.geomys.org";

fn key() -> &'static LogKey {
    static KEY: OnceLock<LogKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let spki = base64::engine::general_purpose::STANDARD
            .decode(include_str!("../tuscolo2026h2.key").trim())
            .unwrap();
        LogKey::from_spki_der(&spki).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = checkpoint::parse_and_verify(data, ORIGIN, key());
});
