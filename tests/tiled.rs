//! Tiled (static-ct-api) logs through the whole pipeline, against a fake tiled log on 127.0.0.1 serving the real
//! navigli2025h2 tiles (checkpoints signed with a test key: no signed checkpoint of that log was published).

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use ctwatch::store::Store;
use ctwatch::tailer::{StartAt, TailConfig};
use ctwatch_fakelog::tiled::{self as fakelog_tiled, FakeTiledLog, TileCompression, TiledFaults};
use ctwatch_fakelog::{self as fakelog, FakeLog};

const WATCH: &str = "mexi.my\nnip.io\n";
/// What certspotter 0.16 reports for this watchlist over the 1024 entries (see tests/pipeline.rs).
const EXPECTED_MATCHES: usize = 61;

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

/// The real navigli tiles, served as recorded.
fn navigli_tiled() -> Arc<FakeTiledLog> {
    FakeTiledLog::from_tile_dir("navigli2025h2", &fixture("static-ct/navigli2025h2")).unwrap()
}

fn write_list(env: &Env, rfc: &[(&FakeLog, &str)], tiled: &[(&FakeTiledLog, &str)]) -> PathBuf {
    let path = env.dir.path().join("log_list.json");
    std::fs::write(&path, fakelog_tiled::log_list_json(rfc, tiled)).unwrap();
    path
}

/// (verified size, verified root) of the log at `url`.
fn verified(store: &Store, url: &str) -> (u64, Option<Vec<u8>>) {
    let logs = store.list_logs().unwrap();
    let log = logs.iter().find(|l| l.url == url).expect("log is known");
    let id: [u8; 32] = b64(&log.log_id).try_into().unwrap();
    store
        .log_position(&id)
        .unwrap()
        .map(|p| (p.tree.size(), Some(p.tree.root().to_vec())))
        .unwrap_or((0, None))
}

fn indexes(events: &[serde_json::Value]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect()
}

/// tbs_sha256 -> sorted DNS names, of reported events.
fn names_by_tbs(events: &[serde_json::Value]) -> BTreeMap<String, Vec<String>> {
    events
        .iter()
        .map(|e| {
            let mut names: Vec<String> = e["dns_names"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap().to_string())
                .collect();
            names.sort();
            (e["tbs_sha256"].as_str().unwrap().to_string(), names)
        })
        .collect()
}

/// Every stored certificate: hex tbs_sha256 -> dns_names JSON.
fn stored_certificates(db: &std::path::Path) -> BTreeMap<String, String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT hex(tbs_sha256), dns_names FROM certificates")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn store_all(start_at: StartAt) -> TailConfig {
    TailConfig {
        store_all: true,
        ..once_config(start_at)
    }
}

#[tokio::test]
async fn real_tiles_give_exactly_the_certificates_of_the_rfc6962_form() {
    let tiled = navigli_tiled();
    let (tiled_url, _st) = fakelog_tiled::serve(tiled.clone()).await.unwrap();
    let tiled_env = Env::new();
    let list = write_list(&tiled_env, &[], &[(&tiled, &tiled_url)]);
    let summary = run_once(&tiled_env, &list, WATCH, store_all(StartAt::Beginning)).await;
    assert!(summary.ok(), "{summary:?}");
    let from_tiles = tiled_env.sink.take();

    let rfc = FakeLog::new(navigli_entries());
    let (rfc_url, _sr) = fakelog::serve(rfc.clone()).await.unwrap();
    let rfc_env = Env::new();
    let list = write_list(&rfc_env, &[(&rfc, &rfc_url)], &[]);
    let summary = run_once(&rfc_env, &list, WATCH, store_all(StartAt::Beginning)).await;
    assert!(summary.ok(), "{summary:?}");
    let from_rfc = rfc_env.sink.take();

    assert_eq!(from_tiles.len(), EXPECTED_MATCHES);
    assert_eq!(tbs_set(&from_tiles), tbs_set(&from_rfc));
    assert_eq!(names_by_tbs(&from_tiles), names_by_tbs(&from_rfc));
    assert_eq!(indexes(&from_tiles).len(), EXPECTED_MATCHES);
    for e in &from_tiles {
        assert_eq!(e["log"], tiled_url.as_str());
        assert_eq!(e["entry_type"], "precert");
    }
    // Not only the matches: every certificate of the log, with its names.
    let all_tiled = stored_certificates(&tiled_env.db_path());
    assert_eq!(all_tiled.len(), 1024);
    assert_eq!(all_tiled, stored_certificates(&rfc_env.db_path()));
    assert_eq!(
        verified(&tiled_env.store, &tiled_url),
        (1024, Some(b64(NAVIGLI_ROOT_1024)))
    );
    assert!(tiled_env.store.malformed_entries(10).unwrap().is_empty());
}

#[tokio::test]
async fn checkpoint_at_778_reads_the_partial_tile_then_resumes_to_1024() {
    let log = navigli_tiled();
    let (url, _s) = fakelog_tiled::serve(log.clone()).await.unwrap();
    let env = Env::new();
    let list = write_list(&env, &[], &[(&log, &url)]);
    log.publish(778);
    let summary = run_once(&env, &list, WATCH, once_config(StartAt::Beginning)).await;
    assert!(summary.ok(), "{summary:?}");
    let first = env.sink.take();
    assert_eq!(
        verified(&env.store, &url),
        (778, Some(b64(NAVIGLI_ROOT_778)))
    );
    assert_eq!(log.request_count("tile/data/003.p/10"), 1);
    assert_eq!(
        log.request_count("tile/data/003"),
        0,
        "full tile fetched early"
    );
    assert!(indexes(&first).iter().all(|&i| i < 778));

    log.publish(1024);
    let summary = run_once(&env, &list, WATCH, once_config(StartAt::Beginning)).await;
    assert!(summary.ok(), "{summary:?}");
    let second = env.sink.take();
    assert!(indexes(&second).iter().all(|&i| i >= 778));
    assert_eq!(log.request_count("tile/data/003"), 1);
    let mut all = tbs_set(&first);
    all.extend(tbs_set(&second));
    all.sort();
    let n = all.len();
    all.dedup();
    assert_eq!((n, all.len()), (EXPECTED_MATCHES, EXPECTED_MATCHES));
    assert_eq!(
        verified(&env.store, &url),
        (1024, Some(b64(NAVIGLI_ROOT_1024)))
    );

    // Nothing new: nothing reported, no data tile fetched.
    let data_before = log.request_count("data");
    assert!(
        run_once(&env, &list, WATCH, once_config(StartAt::Beginning))
            .await
            .ok()
    );
    assert!(env.sink.take().is_empty());
    assert_eq!(log.request_count("data"), data_before);
}

#[tokio::test]
async fn same_certificate_in_an_rfc6962_log_and_a_tiled_log_is_reported_once() {
    let tiled = navigli_tiled();
    let rfc = FakeLog::new(navigli_entries());
    let (tiled_url, _st) = fakelog_tiled::serve(tiled.clone()).await.unwrap();
    let (rfc_url, _sr) = fakelog::serve(rfc.clone()).await.unwrap();
    let env = Env::new();
    let list = write_list(&env, &[(&rfc, &rfc_url)], &[(&tiled, &tiled_url)]);
    let summary = run_once(&env, &list, WATCH, once_config(StartAt::Beginning)).await;
    assert!(summary.ok(), "{summary:?}");
    assert_eq!(summary.logs, 2);
    let events = env.sink.take();
    assert_eq!(events.len(), EXPECTED_MATCHES);
    let tbs = tbs_set(&events);
    let mut dedup = tbs.clone();
    dedup.dedup();
    assert_eq!(
        dedup.len(),
        EXPECTED_MATCHES,
        "a certificate was reported twice"
    );
    let mut found = env.store.search("mexi.my", 1000).unwrap();
    found.extend(env.store.search("nip.io", 1000).unwrap());
    assert_eq!(found.len(), EXPECTED_MATCHES);
    for c in &found {
        let mut logs: Vec<&str> = c.sightings.iter().map(|s| s.log.as_str()).collect();
        logs.sort();
        let mut want = vec![rfc_url.as_str(), tiled_url.as_str()];
        want.sort();
        assert_eq!(logs, want, "{c:?}");
        assert_eq!(c.sightings[0].index, c.sightings[1].index);
    }
    assert_eq!(verified(&env.store, &tiled_url).0, 1024);
    assert_eq!(verified(&env.store, &rfc_url).0, 1024);
}

#[tokio::test]
async fn tampered_tile_entry_is_never_reported_and_position_does_not_pass_it() {
    let log = navigli_tiled();
    let (url, _s) = fakelog_tiled::serve(log.clone()).await.unwrap();
    let env = Env::new();
    let list = write_list(&env, &[], &[(&log, &url)]);
    log.set_faults(TiledFaults {
        tamper_index: Some(300),
        ..TiledFaults::default()
    });
    let summary = run_once(&env, &list, WATCH, once_config(StartAt::Beginning)).await;
    assert!(!summary.ok(), "a root mismatch must fail the run");
    assert!(
        summary.failed_logs[0].1.contains("ROOT MISMATCH"),
        "{:?}",
        summary.failed_logs
    );
    // Tile 0 was verified (consistency proof from hash tiles) and committed; tile 1 holds the bad entry.
    assert_eq!(verified(&env.store, &url).0, 256);
    let before = env.sink.take();
    assert!(indexes(&before).iter().all(|&i| i < 256));
    let logs = env.store.list_logs().unwrap();
    assert!(
        logs[0]
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("ROOT MISMATCH")
    );

    log.set_faults(TiledFaults::default());
    let summary = run_once(&env, &list, WATCH, once_config(StartAt::Beginning)).await;
    assert!(summary.ok(), "{summary:?}");
    let after = env.sink.take();
    let mut all = tbs_set(&before);
    all.extend(tbs_set(&after));
    all.sort();
    all.dedup();
    assert_eq!(all.len(), before.len() + after.len());
    assert_eq!(all.len(), EXPECTED_MATCHES);
    assert_eq!(
        verified(&env.store, &url),
        (1024, Some(b64(NAVIGLI_ROOT_1024)))
    );
}

async fn checkpoint_is_refused(faults: TiledFaults, expect_in_error: &str) {
    let log = navigli_tiled();
    let (url, _s) = fakelog_tiled::serve(log.clone()).await.unwrap();
    let env = Env::new();
    let list = write_list(&env, &[], &[(&log, &url)]);
    log.set_faults(faults);
    let summary = run_once(&env, &list, WATCH, once_config(StartAt::Beginning)).await;
    assert!(!summary.ok());
    assert!(
        summary.failed_logs[0].1.contains(expect_in_error),
        "{:?}",
        summary.failed_logs
    );
    assert_eq!(log.request_count("data"), 0);
    assert_eq!(log.request_count("hash"), 0);
    assert!(env.sink.take().is_empty());
    assert_eq!(verified(&env.store, &url).0, 0);
}

#[tokio::test]
async fn checkpoint_with_a_bad_signature_downloads_nothing() {
    checkpoint_is_refused(
        TiledFaults {
            bad_signature: true,
            ..TiledFaults::default()
        },
        "no valid signature by the log's key",
    )
    .await;
}

#[tokio::test]
async fn checkpoint_with_a_wrong_origin_downloads_nothing() {
    checkpoint_is_refused(
        TiledFaults {
            wrong_origin: true,
            ..TiledFaults::default()
        },
        "checkpoint origin is \"evil.ctwatch.invalid/log\"",
    )
    .await;
}

#[tokio::test]
async fn start_at_end_uses_hash_tiles_only_then_follows_new_entries() {
    let log = navigli_tiled();
    let (url, _s) = fakelog_tiled::serve(log.clone()).await.unwrap();
    let env = Env::new();
    let list = write_list(&env, &[], &[(&log, &url)]);
    log.publish(778);
    let summary = run_once(&env, &list, WATCH, once_config(StartAt::End)).await;
    assert!(summary.ok(), "{summary:?}");
    assert!(env.sink.take().is_empty());
    assert_eq!(
        verified(&env.store, &url),
        (778, Some(b64(NAVIGLI_ROOT_778)))
    );
    assert_eq!(
        log.request_count("data"),
        0,
        "starting at the end needs no entry"
    );
    // 778 = 512 + 256 + 8 + 2: two nodes from the level-1 tile, two from the partial level-0 tile.
    assert_eq!(log.request_count("tile/1/000.p/3"), 1);
    assert_eq!(log.request_count("tile/0/003.p/10"), 1);

    log.publish(1024);
    let summary = run_once(&env, &list, WATCH, once_config(StartAt::End)).await;
    assert!(summary.ok(), "{summary:?}");
    let new = env.sink.take();
    assert!(!new.is_empty());
    assert!(indexes(&new).iter().all(|&i| i >= 778));
    assert_eq!(
        verified(&env.store, &url),
        (1024, Some(b64(NAVIGLI_ROOT_1024)))
    );
}

#[tokio::test]
async fn start_at_an_index_is_proven_from_hash_tiles() {
    let log = navigli_tiled();
    let (url, _s) = fakelog_tiled::serve(log.clone()).await.unwrap();
    let env = Env::new();
    let list = write_list(&env, &[], &[(&log, &url)]);
    let summary = run_once(&env, &list, WATCH, once_config(StartAt::Index(500))).await;
    assert!(summary.ok(), "{summary:?}");
    let events = env.sink.take();
    assert!(!events.is_empty() && events.len() < EXPECTED_MATCHES);
    assert!(indexes(&events).iter().all(|&i| i >= 500));
    assert_eq!(log.request_count("tile/data/000"), 0);
    assert_eq!(
        verified(&env.store, &url),
        (1024, Some(b64(NAVIGLI_ROOT_1024)))
    );
}

#[tokio::test]
async fn issuers_are_fetched_once_and_cached_in_sqlite_across_runs() {
    let log = navigli_tiled();
    let (url, _s) = fakelog_tiled::serve(log.clone()).await.unwrap();
    let mut env = Env::new();
    let list = write_list(&env, &[], &[(&log, &url)]);
    log.publish(778);
    let summary = run_once(&env, &list, WATCH, once_config(StartAt::Beginning)).await;
    assert!(summary.ok(), "{summary:?}");
    let fps = log.issuer_fingerprints();
    let fetched: u64 = fps
        .iter()
        .map(|fp| {
            let n = log.request_count(&format!("issuer/{}", hex::encode(fp)));
            assert!(n <= 1, "issuer {} fetched {n} times", hex::encode(fp));
            n
        })
        .sum();
    assert!(fetched >= 2, "only {fetched} issuers fetched");
    assert_eq!(log.request_count("issuer"), fetched);
    let conn = rusqlite::Connection::open(env.db_path()).unwrap();
    let count_cached = || -> u64 {
        conn.query_row("SELECT count(*) FROM issuers", [], |r| r.get::<_, i64>(0))
            .unwrap() as u64
    };
    let cached = count_cached();
    assert_eq!(cached, fetched);

    // A new process (new store handle, new log client) reads them from SQLite.
    env.store = Arc::new(Store::open(&env.db_path()).unwrap());
    log.publish(1024);
    let summary = run_once(&env, &list, WATCH, once_config(StartAt::Beginning)).await;
    assert!(summary.ok(), "{summary:?}");
    let new_fetches = log.request_count("issuer") - fetched;
    let cached_after = count_cached();
    assert_eq!(
        new_fetches,
        cached_after - cached,
        "only issuers first named after entry 778 may be fetched"
    );
    assert!(cached_after as usize <= fps.len());
}

#[tokio::test]
async fn missing_issuers_cut_the_chain_but_entries_are_still_verified_and_reported() {
    let log = navigli_tiled();
    let (url, _s) = fakelog_tiled::serve(log.clone()).await.unwrap();
    let env = Env::new();
    let list = write_list(&env, &[], &[(&log, &url)]);
    log.set_faults(TiledFaults {
        missing_issuers: true,
        ..TiledFaults::default()
    });
    let summary = run_once(&env, &list, WATCH, once_config(StartAt::Beginning)).await;
    assert!(summary.ok(), "{summary:?}");
    assert_eq!(env.sink.take().len(), EXPECTED_MATCHES);
    assert_eq!(verified(&env.store, &url).0, 1024);
    // Each missing issuer was asked for once, not once per entry.
    assert!(log.request_count("issuer") <= log.issuer_fingerprints().len() as u64);
}

#[tokio::test]
async fn gzip_tiles_and_deleted_partial_tiles_are_handled() {
    for compression in [TileCompression::ContentEncoding, TileCompression::Body] {
        let log = navigli_tiled();
        let (url, _s) = fakelog_tiled::serve(log.clone()).await.unwrap();
        let env = Env::new();
        let list = write_list(&env, &[], &[(&log, &url)]);
        // The checkpoint says 778 but the log has grown since and deleted the partial tiles of 778.
        log.publish(778);
        log.set_faults(TiledFaults {
            compression,
            drop_partial_tiles: true,
            ..TiledFaults::default()
        });
        let summary = run_once(&env, &list, WATCH, once_config(StartAt::Beginning)).await;
        assert!(summary.ok(), "{compression:?}: {summary:?}");
        assert_eq!(log.request_count("tile/data/003.p/10"), 1);
        assert_eq!(
            log.request_count("tile/data/003"),
            1,
            "fallback to the full tile"
        );
        assert_eq!(
            verified(&env.store, &url),
            (778, Some(b64(NAVIGLI_ROOT_778)))
        );
        let events = env.sink.take();
        assert!(!events.is_empty() && indexes(&events).iter().all(|&i| i < 778));
    }
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_survived() {
    let log = navigli_tiled();
    let (url, _s) = fakelog_tiled::serve(log.clone()).await.unwrap();
    let env = Env::new();
    let list = write_list(&env, &[], &[(&log, &url)]);
    log.set_faults(TiledFaults {
        rate_limit_every: 3,
        retry_after_secs: 1,
        server_error_every: 5,
        ..TiledFaults::default()
    });
    let started = Instant::now();
    let summary = run_once(&env, &list, WATCH, once_config(StartAt::Beginning)).await;
    assert!(summary.ok(), "{summary:?}");
    assert_eq!(env.sink.take().len(), EXPECTED_MATCHES);
    assert_eq!(
        verified(&env.store, &url),
        (1024, Some(b64(NAVIGLI_ROOT_1024)))
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After ignored"
    );
}

#[tokio::test]
async fn malformed_tile_entries_are_stored_and_tailing_goes_on() {
    let mut entries = navigli_entries();
    // Valid framing, garbage TBS bytes (the last 10 bytes of the leaf are the leaf_index extension).
    let n = entries[11].leaf_input.len();
    entries[11].leaf_input[n / 2..n - 12].fill(0x42);
    let log = FakeTiledLog::new("malformed");
    log.append_rfc6962(&entries).unwrap();
    let (url, _s) = fakelog_tiled::serve(log.clone()).await.unwrap();
    let env = Env::new();
    let list = write_list(&env, &[], &[(&log, &url)]);
    let summary = run_once(&env, &list, WATCH, once_config(StartAt::Beginning)).await;
    assert!(summary.ok(), "{summary:?}");
    assert_eq!(
        verified(&env.store, &url),
        (1024, Some(log.root(1024).to_vec()))
    );
    let malformed = env.store.malformed_entries(10).unwrap();
    assert_eq!(
        malformed.iter().map(|m| m.index).collect::<Vec<_>>(),
        vec![11]
    );
    assert!(
        malformed[0].reason.starts_with("certificate:"),
        "{malformed:?}"
    );
    assert_eq!(malformed[0].log, url);
}
