//! Hostile logs (issue 10 §1): fake logs on 127.0.0.1 that sign correct heads over the real entries but serve
//! altered data outside the Merkle leaf — garbage `extra_data`, a forged issuer, another pre_certificate, a tile
//! whose trailing fields were rewritten — and a proxy that garbles one response. Only the leaf may decide what is
//! reported: nothing may be hidden, and nothing unproven may count.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::*;
use ctwatch::tailer::StartAt;
use ctwatch_fakelog::tiled::{self as fakelog_tiled, FakeTiledLog, TiledFaults};
use ctwatch_fakelog::{FakeEntry, Faults};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// navigli entry 234: a Let's Encrypt staging precert for `mne.mexi.my`.
const MEXI: u64 = 234;

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(fixture(rel)).unwrap()
}

/// The real x509 entry for crt.sh (issued by Sectigo RSA Domain Validation Secure Server CA), chain included.
fn crt_sh_entry() -> FakeEntry {
    FakeEntry {
        leaf_input: read("rfc6962/single-entries/scrape-ct-log_x509_leaf_input.bin"),
        extra_data: read("rfc6962/single-entries/scrape-ct-log_x509_extra_data.bin"),
    }
}

/// Another real CA: GTS CA 1D2 (Google Trust Services).
fn gts_ca() -> Vec<u8> {
    let pem = read("certs/real/gts-1d2_intermediate.pem");
    x509_parser::pem::Pem::iter_from_buffer(&pem)
        .next()
        .unwrap()
        .unwrap()
        .contents
}

fn spki_hex(cert: &[u8]) -> String {
    let (_, c) = x509_parser::parse_x509_certificate(cert).unwrap();
    sha256_hex(c.public_key().raw)
}

fn u24(b: &[u8], at: usize) -> usize {
    (usize::from(b[at]) << 16) | (usize::from(b[at + 1]) << 8) | usize::from(b[at + 2])
}

/// The pre_certificate served for a navigli entry (the first field of its extra_data).
fn navigli_pre_certificate(index: usize) -> Vec<u8> {
    let extra = &navigli_entries()[index].extra_data;
    extra[3..3 + u24(extra, 0)].to_vec()
}

/// The certificate in an x509 leaf (version, leaf type, timestamp, entry type, then a u24-length certificate).
fn x509_leaf_certificate(leaf_input: &[u8]) -> Vec<u8> {
    leaf_input[15..15 + u24(leaf_input, 12)].to_vec()
}

/// The first chain certificate of an x509 entry's extra_data.
fn x509_issuer(extra_data: &[u8]) -> Vec<u8> {
    extra_data[6..6 + u24(extra_data, 3)].to_vec()
}

/// Certificate events (health alerts left out).
fn cert_events(events: Vec<Value>) -> Vec<Value> {
    events
        .into_iter()
        .filter(|e| e["kind"] != "health")
        .collect()
}

fn event_at(events: &[Value], index: u64) -> &Value {
    events
        .iter()
        .find(|e| e["index"] == index)
        .unwrap_or_else(|| panic!("no event for entry {index} in {events:#?}"))
}

/// Run `--once` from entry 0 over an RFC 6962 fake log with `entries` and `faults`; the events delivered.
async fn run_rfc6962(
    entries: Vec<FakeEntry>,
    faults: Faults,
    watchlist: &str,
) -> (Vec<Value>, OneLog) {
    let one = one_log(entries).await;
    one.log.set_faults(faults);
    let summary = run_once(
        &one.env,
        &one.list,
        watchlist,
        once_config(StartAt::Beginning),
    )
    .await;
    assert!(summary.ok(), "{summary:?}");
    (cert_events(one.env.sink.take()), one)
}

#[tokio::test]
async fn garbage_extra_data_does_not_hide_a_precert_match() {
    let entries = navigli_entries()[..256].to_vec();
    let faults = Faults {
        garbage_extra_data: Some(MEXI),
        ..Faults::default()
    };
    let (events, one) = run_rfc6962(entries, faults, "=mne.mexi.my\n").await;
    assert_eq!(events.len(), 1, "{events:#?}");
    let e = event_at(&events, MEXI);
    assert_eq!(e["dns_names"], serde_json::json!(["mne.mexi.my"]));
    assert_eq!(e["entry_type"], "precert");
    // Names, validity, serial and identity come from the leaf; the unreadable part is named.
    assert!(e["serial"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(e["tbs_sha256"].as_str().is_some());
    let chain_error = e["chain_error"].as_str().expect("chain_error");
    assert!(chain_error.contains("extra_data"), "{chain_error}");
    assert_eq!(e["cert_sha256"], Value::Null);
    assert!(one.env.store.malformed_entries(10).unwrap().is_empty());
}

#[tokio::test]
async fn garbage_extra_data_does_not_hide_an_x509_match() {
    let mut entries = navigli_entries()[..8].to_vec();
    entries.push(crt_sh_entry());
    let faults = Faults {
        garbage_extra_data: Some(8),
        ..Faults::default()
    };
    let (events, _one) = run_rfc6962(entries, faults, "crt.sh\n").await;
    let e = event_at(&events, 8);
    assert_eq!(e["dns_names"], serde_json::json!(["crt.sh", "www.crt.sh"]));
    // The certificate itself is in the leaf: its fingerprint is known.
    let cert = x509_leaf_certificate(&crt_sh_entry().leaf_input);
    assert_eq!(e["cert_sha256"], sha256_hex(&cert));
    assert!(e["chain_error"].as_str().is_some());
}

#[tokio::test]
async fn a_forged_issuer_cannot_silence_an_issuance_policy() {
    // Only GTS may issue for crt.sh; the real certificate is Sectigo's. The log serves GTS's CA certificate as
    // the issuer: its key did not sign the certificate, so the policy is not satisfied.
    let watch = format!(
        "crt.sh issuers=spki:{} lookalike=off\n",
        spki_hex(&gts_ca())
    );
    let faults = Faults {
        replace_issuer: Some((0, gts_ca())),
        ..Faults::default()
    };
    let (events, _one) = run_rfc6962(vec![crt_sh_entry()], faults, &watch).await;
    let e = event_at(&events, 0);
    assert_eq!(e["kind"], "unauthorized_issuer", "{events:#?}");
    assert_eq!(e["matched"][0]["reason"], "issuer not proven");
    assert!(e["chain_error"].as_str().is_some());
}

#[tokio::test]
async fn a_genuine_issuer_satisfies_its_policy() {
    let entry = crt_sh_entry();
    let watch = format!(
        "crt.sh issuers=spki:{} lookalike=off\n",
        spki_hex(&x509_issuer(&entry.extra_data))
    );
    let (events, _one) = run_rfc6962(vec![entry], Faults::default(), &watch).await;
    let e = event_at(&events, 0);
    assert_eq!(e["kind"], "new_certificate", "{events:#?}");
    assert!(e.get("chain_error").is_none(), "{e:#}");
}

#[tokio::test]
async fn a_substituted_pre_certificate_is_not_recorded_as_the_precert() {
    let entries = navigli_entries()[..256].to_vec();
    let other = navigli_pre_certificate(0);
    let faults = Faults {
        replace_pre_certificate: Some((MEXI, other.clone())),
        ..Faults::default()
    };
    let (events, one) = run_rfc6962(entries, faults, "mexi.my\n").await;
    let e = event_at(&events, MEXI);
    assert_eq!(e["cert_sha256"], Value::Null, "{e:#}");
    assert!(
        e["chain_error"]
            .as_str()
            .is_some_and(|c| c.contains("not the precertificate in the leaf")),
        "{e:#}"
    );
    let other_hash: [u8; 32] = Sha256::digest(&other).into();
    assert!(!one.env.store.seen_in_ct(&other_hash, None).unwrap());
}

#[tokio::test]
async fn a_transient_garbled_entry_is_fetched_again_not_stored_as_malformed() {
    let entries = navigli_entries()[..256].to_vec();
    let faults = Faults {
        garble_leaf: Some(100),
        garbage_times: 1,
        ..Faults::default()
    };
    let (_events, one) = run_rfc6962(entries, faults, "mexi.my\n").await;
    assert!(one.env.store.malformed_entries(10).unwrap().is_empty());
    assert!(one.log.request_count("get-entries") >= 2);
}

/// The real navigli tiles on a fake tiled log with `faults`; `--once` from entry 0; the events delivered.
async fn run_tiled(
    log: Arc<FakeTiledLog>,
    faults: TiledFaults,
    watchlist: &str,
) -> (Vec<Value>, Env) {
    log.set_faults(faults);
    let (url, _server) = fakelog_tiled::serve(log.clone()).await.unwrap();
    let env = Env::new();
    let list: PathBuf = env.dir.path().join("log_list.json");
    std::fs::write(&list, fakelog_tiled::log_list_json(&[], &[(&log, &url)])).unwrap();
    let summary = run_once(&env, &list, watchlist, once_config(StartAt::Beginning)).await;
    assert!(summary.ok(), "{summary:?}");
    let events = cert_events(env.sink.take());
    (events, env)
}

fn navigli_tiled() -> Arc<FakeTiledLog> {
    FakeTiledLog::from_tile_dir("navigli2025h2", &fixture("static-ct/navigli2025h2")).unwrap()
}

#[tokio::test]
async fn tiled_empty_pre_certificate_does_not_hide_a_match() {
    let faults = TiledFaults {
        replace_pre_certificate: Some((MEXI, Vec::new())),
        ..TiledFaults::default()
    };
    let (events, env) = run_tiled(navigli_tiled(), faults, "mexi.my\n").await;
    let e = event_at(&events, MEXI);
    assert_eq!(e["dns_names"], serde_json::json!(["mne.mexi.my"]));
    assert!(
        e["chain_error"]
            .as_str()
            .is_some_and(|c| c.contains("pre_certificate")),
        "{e:#}"
    );
    assert!(env.store.malformed_entries(10).unwrap().is_empty());
}

#[tokio::test]
async fn tiled_substituted_pre_certificate_is_not_recorded_as_the_precert() {
    let other = navigli_pre_certificate(0);
    let faults = TiledFaults {
        replace_pre_certificate: Some((MEXI, other.clone())),
        ..TiledFaults::default()
    };
    let (events, env) = run_tiled(navigli_tiled(), faults, "mexi.my\n").await;
    let e = event_at(&events, MEXI);
    assert_eq!(e["cert_sha256"], Value::Null, "{e:#}");
    let other_hash: [u8; 32] = Sha256::digest(&other).into();
    assert!(!env.store.seen_in_ct(&other_hash, None).unwrap());
}

#[tokio::test]
async fn tiled_forged_issuer_cannot_silence_an_issuance_policy() {
    let log = FakeTiledLog::new("hostile");
    log.append_rfc6962(&[crt_sh_entry()]).unwrap();
    let watch = format!(
        "crt.sh issuers=spki:{} lookalike=off\n",
        spki_hex(&gts_ca())
    );
    let faults = TiledFaults {
        replace_issuer: Some((0, gts_ca())),
        ..TiledFaults::default()
    };
    let (events, _env) = run_tiled(log, faults, &watch).await;
    let e = event_at(&events, 0);
    assert_eq!(e["kind"], "unauthorized_issuer", "{events:#?}");
    assert_eq!(e["matched"][0]["reason"], "issuer not proven");
}
