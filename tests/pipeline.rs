//! The core pipeline against a fake RFC 6962 log serving the 1024 real navigli2025h2 entries.

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use ctwatch::tailer::StartAt;
use ctwatch_fakelog::{self as fakelog, FakeLog, Faults};

const WATCH: &str = "mexi.my\nnip.io\n";
/// certspotter 0.16 reports 61 certificates for this watchlist over these 1024 entries (../shared/ctdata/CERTSPOTTER.md,
/// re-checked by scripts/compare-certspotter.sh).
const EXPECTED_MATCHES: usize = 61;

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn verified(env: &Env) -> (u64, Option<Vec<u8>>) {
    let logs = env.store.list_logs().unwrap();
    let pos = env
        .store
        .log_position(&b64(&logs[0].log_id).try_into().unwrap())
        .unwrap()
        .map(|p| (p.tree.size(), Some(p.tree.root().to_vec())));
    pos.unwrap_or((0, None))
}

#[tokio::test]
async fn once_from_beginning_reports_every_match_once_with_verified_root() {
    let OneLog {
        log: _,
        url,
        env,
        list,
        ..
    } = one_log(navigli_entries()).await;
    let summary = run_once(&env, &list, WATCH, once_config(StartAt::Beginning)).await;
    assert!(summary.ok(), "{summary:?}");
    let events = env.sink.take();
    assert_eq!(events.len(), EXPECTED_MATCHES);
    let tbs = tbs_set(&events);
    let mut dedup = tbs.clone();
    dedup.dedup();
    assert_eq!(dedup.len(), tbs.len(), "a certificate was reported twice");
    for e in &events {
        assert_eq!(e["entry_type"], "precert");
        assert_eq!(e["log"], url.as_str());
        let names: Vec<&str> = e["dns_names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        assert!(
            names
                .iter()
                .any(|n| n.ends_with(".mexi.my") || n.ends_with(".nip.io") || *n == "mexi.my"),
            "{names:?}"
        );
        for field in [
            "timestamp",
            "cert_sha256",
            "tbs_sha256",
            "issuer",
            "subject",
            "serial",
            "not_before",
            "not_after",
        ] {
            assert!(
                e[field].as_str().is_some_and(|s| !s.is_empty()),
                "missing {field} in {e}"
            );
        }
        assert!(e["index"].as_u64().unwrap() < 1024);
        assert!(!e["matched"].as_array().unwrap().is_empty());
        assert!(e["not_after"].as_str().unwrap().ends_with('Z'));
    }
    let (size, root) = verified(&env);
    assert_eq!(size, 1024);
    assert_eq!(root.unwrap(), b64(NAVIGLI_ROOT_1024));
}

#[tokio::test]
async fn restart_resumes_where_it_stopped_without_duplicates() {
    let OneLog {
        log,
        url: _,
        env,
        list,
        ..
    } = one_log(navigli_entries()).await;
    log.publish(778);
    assert!(
        run_once(&env, &list, WATCH, once_config(StartAt::Beginning))
            .await
            .ok()
    );
    let first = env.sink.take();
    let (size, root) = verified(&env);
    assert_eq!(size, 778);
    assert_eq!(root.unwrap(), b64(NAVIGLI_ROOT_778));
    log.publish(1024);
    assert!(
        run_once(&env, &list, WATCH, once_config(StartAt::Beginning))
            .await
            .ok()
    );
    let second = env.sink.take();
    assert!(first.iter().all(|e| e["index"].as_u64().unwrap() < 778));
    assert!(second.iter().all(|e| e["index"].as_u64().unwrap() >= 778));
    let mut all = tbs_set(&first);
    all.extend(tbs_set(&second));
    all.sort();
    let n = all.len();
    all.dedup();
    assert_eq!(all.len(), n, "duplicate report across restart");
    assert_eq!(n, EXPECTED_MATCHES);
    // A third run with nothing new reports nothing.
    assert!(
        run_once(&env, &list, WATCH, once_config(StartAt::Beginning))
            .await
            .ok()
    );
    assert!(env.sink.take().is_empty());
}

#[tokio::test]
async fn tampered_entry_is_never_reported_and_position_does_not_pass_it() {
    let OneLog {
        log,
        url: _,
        env,
        list,
        ..
    } = one_log(navigli_entries()).await;
    log.set_faults(Faults {
        tamper_index: Some(300),
        ..Faults::default()
    });
    let summary = run_once(&env, &list, WATCH, once_config(StartAt::Beginning)).await;
    assert!(!summary.ok(), "a root mismatch must fail the run");
    assert!(
        summary.failed_logs[0].1.contains("ROOT MISMATCH"),
        "{:?}",
        summary.failed_logs
    );
    let (size, _) = verified(&env);
    assert!(
        size <= 256,
        "position advanced past the tampered entry: {size}"
    );
    let before = env.sink.take();
    assert!(before.iter().all(|e| e["index"].as_u64().unwrap() < 256));
    let logs = env.store.list_logs().unwrap();
    assert!(
        logs[0]
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("ROOT MISMATCH")
    );

    // The log heals: the rest is verified and reported, and nothing twice.
    log.set_faults(Faults::default());
    assert!(
        run_once(&env, &list, WATCH, once_config(StartAt::Beginning))
            .await
            .ok()
    );
    let after = env.sink.take();
    let mut all = tbs_set(&before);
    all.extend(tbs_set(&after));
    all.sort();
    all.dedup();
    assert_eq!(all.len(), before.len() + after.len());
    assert_eq!(all.len(), EXPECTED_MATCHES);
    assert_eq!(verified(&env).0, 1024);
}

#[tokio::test]
async fn bad_sth_signature_downloads_nothing() {
    let OneLog {
        log,
        url: _,
        env,
        list,
        ..
    } = one_log(navigli_entries()).await;
    log.set_faults(Faults {
        bad_signature: true,
        ..Faults::default()
    });
    let summary = run_once(&env, &list, WATCH, once_config(StartAt::Beginning)).await;
    assert!(!summary.ok());
    assert!(
        summary.failed_logs[0].1.contains("signature"),
        "{:?}",
        summary.failed_logs
    );
    assert_eq!(log.request_count("get-entries"), 0);
    assert!(env.sink.take().is_empty());
    assert_eq!(verified(&env).0, 0);
}

#[tokio::test]
async fn short_pages_rate_limits_and_server_errors_are_survived() {
    let OneLog {
        log,
        url: _,
        env,
        list,
        ..
    } = one_log(navigli_entries()).await;
    log.set_faults(Faults {
        short_page: 32,
        rate_limit_every: 5,
        retry_after_secs: 1,
        server_error_every: 7,
        ..Faults::default()
    });
    let started = Instant::now();
    let summary = run_once(&env, &list, WATCH, once_config(StartAt::Beginning)).await;
    assert!(summary.ok(), "{summary:?}");
    assert_eq!(env.sink.take().len(), EXPECTED_MATCHES);
    assert_eq!(verified(&env).0, 1024);
    // 1024 entries in pages of 32 is at least 32 successful requests, plus the refused ones.
    assert!(log.request_count("get-entries") >= 32 + 32 / 5);
    // Retry-After: 1 was honoured at least once.
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[tokio::test]
async fn malformed_leaves_are_stored_and_tailing_goes_on() {
    let mut entries = navigli_entries();
    entries[10].leaf_input.truncate(40); // a truncated MerkleTreeLeaf
    let n = entries[11].leaf_input.len();
    entries[11].leaf_input[n / 2..n - 2].fill(0x42); // valid framing, garbage certificate bytes
    entries[12].leaf_input[1] = 7; // unknown leaf type
    let OneLog {
        log: _,
        url,
        env,
        list,
        ..
    } = one_log(entries).await;
    let summary = run_once(&env, &list, WATCH, once_config(StartAt::Beginning)).await;
    assert!(summary.ok(), "{summary:?}");
    assert_eq!(verified(&env).0, 1024);
    let malformed = env.store.malformed_entries(10).unwrap();
    let idx: Vec<u64> = malformed.iter().map(|m| m.index).collect();
    assert_eq!(idx, vec![10, 11, 12], "{malformed:?}");
    for m in &malformed {
        assert!(!m.reason.is_empty());
        assert_eq!(m.log, url);
    }
}

#[tokio::test]
async fn start_at_end_proves_the_position_and_reports_only_new_entries() {
    let OneLog {
        log,
        url: _,
        env,
        list,
        ..
    } = one_log(navigli_entries()).await;
    log.publish(778);
    assert!(
        run_once(&env, &list, WATCH, once_config(StartAt::End))
            .await
            .ok()
    );
    assert!(env.sink.take().is_empty());
    assert_eq!(verified(&env), (778, Some(b64(NAVIGLI_ROOT_778))));
    assert_eq!(log.request_count("get-proof-by-hash"), 1);
    assert_eq!(
        log.request_count("get-entries"),
        1,
        "only entry 777 is needed to start at the end"
    );
    log.publish(1024);
    assert!(
        run_once(&env, &list, WATCH, once_config(StartAt::End))
            .await
            .ok()
    );
    let new = env.sink.take();
    assert!(!new.is_empty());
    assert!(new.iter().all(|e| e["index"].as_u64().unwrap() >= 778));
    assert_eq!(verified(&env).0, 1024);
}

#[tokio::test]
async fn start_at_index_without_proof_support_downloads_from_zero() {
    let OneLog {
        log,
        url: _,
        env,
        list,
        ..
    } = one_log(navigli_entries()).await;
    log.set_faults(Faults {
        no_proof_by_hash: true,
        ..Faults::default()
    });
    assert!(
        run_once(&env, &list, WATCH, once_config(StartAt::Index(500)))
            .await
            .ok()
    );
    assert_eq!(env.sink.take().len(), EXPECTED_MATCHES);
    assert_eq!(verified(&env).0, 1024);
}

#[tokio::test]
async fn start_at_index_with_proof_starts_there() {
    let OneLog {
        log: _,
        url: _,
        env,
        list,
        ..
    } = one_log(navigli_entries()).await;
    assert!(
        run_once(&env, &list, WATCH, once_config(StartAt::Index(500)))
            .await
            .ok()
    );
    let events = env.sink.take();
    assert!(!events.is_empty() && events.len() < EXPECTED_MATCHES);
    assert!(events.iter().all(|e| e["index"].as_u64().unwrap() >= 500));
}

#[tokio::test]
async fn same_certificates_in_two_logs_are_reported_once_with_two_sightings() {
    let a = FakeLog::new(navigli_entries());
    let b = FakeLog::new(navigli_entries());
    let (url_a, _sa) = fakelog::serve(a.clone()).await.unwrap();
    let (url_b, _sb) = fakelog::serve(b.clone()).await.unwrap();
    let env = Env::new();
    let list = env.write_log_list(&[(&a, &url_a), (&b, &url_b)]);
    assert!(
        run_once(&env, &list, WATCH, once_config(StartAt::Beginning))
            .await
            .ok()
    );
    let events = env.sink.take();
    assert_eq!(events.len(), EXPECTED_MATCHES);
    let found = env.store.search("mexi.my", 1000).unwrap();
    assert!(!found.is_empty());
    for c in &found {
        assert_eq!(c.sightings.len(), 2, "{c:?}");
        let logs: Vec<&str> = c.sightings.iter().map(|s| s.log.as_str()).collect();
        assert!(logs.contains(&url_a.as_str()) && logs.contains(&url_b.as_str()));
        assert!(
            c.dns_names
                .iter()
                .any(|n| n == "mexi.my" || n.ends_with(".mexi.my"))
        );
    }
    let nip = env.store.search("nip.io", 1000).unwrap();
    assert_eq!(found.len() + nip.len(), EXPECTED_MATCHES);
}

#[tokio::test]
async fn a_dead_log_does_not_stall_the_others() {
    let good = FakeLog::new(navigli_entries());
    let dead = FakeLog::new(navigli_entries());
    dead.set_faults(Faults {
        sth_down: true,
        ..Faults::default()
    });
    let (url_g, _sg) = fakelog::serve(good.clone()).await.unwrap();
    let (url_d, _sd) = fakelog::serve(dead.clone()).await.unwrap();
    let env = Env::new();
    let list = env.write_log_list(&[(&dead, &url_d), (&good, &url_g)]);
    let summary = run_once(&env, &list, WATCH, once_config(StartAt::Beginning)).await;
    assert_eq!(summary.failed_logs.len(), 1);
    assert_eq!(summary.failed_logs[0].0, url_d);
    assert_eq!(env.sink.take().len(), EXPECTED_MATCHES);
}
