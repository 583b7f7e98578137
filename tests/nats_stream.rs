//! The NATS JetStream stream, end to end with the real binary and the real NATS server on 127.0.0.1:4222
//! (`CTWATCH_TEST_NATS_URL` overrides it; `scripts/test-services.sh` starts one). Each test uses its own stream
//! name and subject prefix and deletes the stream at the end. Without a reachable NATS these tests FAIL.
//!
//! Checked: every verified entry arrives once, on the subject of its entry type, with the certstream body plus
//! ctwatch's fields and `Nats-Msg-Id = <log_id>:<index>`; republishing is dropped by JetStream; `what = "matches"`;
//! a restart publishes again exactly what was committed but not acknowledged, without reporting anything twice;
//! SIGKILL mid-run and a restart leave no gap in the stream and no duplicate alert.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use base64::Engine;
use common::*;
use ctwatch::ct::merkle::{self, CollapsedTree};
use ctwatch_fakelog::{self as fakelog, FakeEntry, FakeLog};
use futures::StreamExt;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ctwatch");

fn nats_url() -> String {
    std::env::var("CTWATCH_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// JetStream on the test server, or a failure that says what is missing.
async fn jetstream() -> jetstream::Context {
    let url = nats_url();
    let client = tokio::time::timeout(Duration::from_secs(5), async_nats::connect(url.as_str()))
        .await
        .unwrap_or_else(|_| panic!("NATS at {url} did not answer within 5 s"))
        .unwrap_or_else(|e| {
            panic!(
                "NATS with JetStream is needed at {url} (set CTWATCH_TEST_NATS_URL, or run \
                 scripts/test-services.sh): {e}"
            )
        });
    // The account info request answers only where JetStream is enabled.
    let info = client
        .request("$JS.API.INFO", "".into())
        .await
        .unwrap_or_else(|e| {
            panic!("NATS at {url} has no JetStream (start nats-server with -js): {e}")
        });
    let info: Value = serde_json::from_slice(&info.payload).unwrap();
    assert!(
        info.get("error").is_none(),
        "NATS at {url} has no usable JetStream: {info}"
    );
    jetstream::new(client)
}

/// A stream name and subject prefix of this test alone.
fn unique(test: &str) -> (String, String) {
    let n = format!(
        "{test}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    (
        format!("CTWATCH_TEST_{n}"),
        format!("ctwatch-test.{n}.certs"),
    )
}

/// A config file with a `[stream]` section.
fn stream_config(env: &Env, name: &str, prefix: &str, what: &str) -> std::path::PathBuf {
    let path = env.dir.path().join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "[stream]\nnats = \"{}\"\nwhat = \"{what}\"\nname = \"{name}\"\nsubject_prefix = \"{prefix}\"\n\
             max_age_secs = 3600\nmax_bytes = 1073741824\n",
            nats_url()
        ),
    )
    .unwrap();
    path
}

fn ctwatch(
    env: &Env,
    list: &std::path::Path,
    watch: &str,
    config: Option<&std::path::Path>,
) -> Command {
    let watch_path = env.write_watchlist(watch);
    let mut c = Command::new(BIN);
    c.args([
        "run",
        "--json",
        "--start-at",
        "beginning",
        "--batch-entries",
        "256",
    ])
    .args(["--retry-base-ms", "20", "--no-probe"])
    .arg("--log-list")
    .arg(list)
    .arg("--watchlist")
    .arg(watch_path)
    .arg("--db")
    .arg(env.db_path())
    .env("RUST_LOG", "warn")
    .env_remove("CTWATCH_NATS")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    if let Some(cfg) = config {
        c.arg("--config").arg(cfg);
    }
    c
}

fn run_ok(mut c: Command) -> Vec<Value> {
    let out = c.arg("--once").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    lines(&out.stdout)
}

fn lines(out: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).expect(l))
        .collect()
}

/// One message read back from the stream.
struct Got {
    subject: String,
    msg_id: String,
    body: Value,
}

/// Every message of stream `name`, in stream order.
async fn read_stream(js: &jetstream::Context, name: &str) -> Vec<Got> {
    let mut stream = js.get_stream(name).await.expect("the stream exists");
    let total = stream.info().await.unwrap().state.messages as usize;
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig::default())
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut out = Vec::with_capacity(total);
    while out.len() < total {
        let m = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("the stream's messages arrive")
            .unwrap()
            .unwrap();
        let msg_id = m
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .map(|v| v.to_string())
            .unwrap_or_default();
        out.push(Got {
            subject: m.subject.to_string(),
            msg_id,
            body: serde_json::from_slice(&m.payload).unwrap(),
        });
    }
    out
}

async fn delete(js: &jetstream::Context, name: &str) {
    let _ = js.delete_stream(name).await;
}

fn log_id(env: &Env) -> [u8; 32] {
    let b64 = &env.store.list_logs().unwrap()[0].log_id;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
        .try_into()
        .unwrap()
}

fn tree_at(entries: &[FakeEntry], size: usize) -> CollapsedTree {
    let mut t = CollapsedTree::new();
    for e in &entries[..size] {
        t.push(merkle::leaf_hash(&e.leaf_input));
    }
    t
}

/// cert_index -> how many messages carry it.
fn index_counts(got: &[Got]) -> BTreeMap<u64, usize> {
    let mut m = BTreeMap::new();
    for g in got {
        *m.entry(g.body["data"]["cert_index"].as_u64().unwrap())
            .or_default() += 1;
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_entry_arrives_with_subject_body_and_message_id_and_repeats_are_dropped() {
    let js = jetstream().await;
    let (name, prefix) = unique("all");
    let entries = navigli_entries();
    let one = one_log(entries.clone()).await;
    let cfg = stream_config(&one.env, &name, &prefix, "all");
    let reports = run_ok(ctwatch(&one.env, &one.list, "mexi.my\n", Some(&cfg)));
    assert!(!tbs_set(&reports).is_empty());

    let got = read_stream(&js, &name).await;
    assert_eq!(got.len(), 1024, "one message per verified entry");
    let id = log_id(&one.env);
    let id_b64 = base64::engine::general_purpose::STANDARD.encode(id);
    for (i, g) in got.iter().enumerate() {
        let d = &g.body["data"];
        assert_eq!(g.body["message_type"], "certificate_update");
        assert_eq!(d["cert_index"], i as u64, "published in log order");
        assert_eq!(g.msg_id, format!("{id_b64}:{i}"));
        let kind = match d["update_type"].as_str().unwrap() {
            "X509LogEntry" => "x509_entry",
            "PrecertLogEntry" => "precert_entry",
            other => panic!("update_type {other}"),
        };
        assert_eq!(g.subject, format!("{prefix}.{kind}"));
        assert_eq!(d["verified"], true);
        assert_eq!(d["log_id"], id_b64.as_str());
        assert_eq!(d["tbs_sha256"].as_str().unwrap().len(), 64);
        assert_eq!(
            d["cert_sha256"].as_str().unwrap().to_uppercase(),
            d["leaf_cert"]["sha256"].as_str().unwrap().replace(':', ""),
        );
        assert!(d["leaf_cert"]["as_der"].as_str().unwrap().len() > 100);
        assert_eq!(d["source"]["url"], one.url.as_str());
    }
    assert_eq!(
        one.env.store.stream_position(&id).unwrap().unwrap().size(),
        1024
    );

    // Republishing everything (the published position back at 0): JetStream drops every repeat, the store
    // reports nothing again.
    one.env
        .store
        .set_stream_position(&id, &CollapsedTree::new())
        .unwrap();
    let again = run_ok(ctwatch(&one.env, &one.list, "mexi.my\n", Some(&cfg)));
    assert!(tbs_set(&again).is_empty(), "reported again: {again:?}");
    let mut stream = js.get_stream(&name).await.unwrap();
    assert_eq!(
        stream.info().await.unwrap().state.messages,
        1024,
        "repeats were stored"
    );
    assert_eq!(
        one.env.store.stream_position(&id).unwrap().unwrap().size(),
        1024
    );
    delete(&js, &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_publishes_exactly_what_was_not_acknowledged_and_reports_nothing_twice() {
    let js = jetstream().await;
    let (first, prefix) = unique("resume_a");
    let (second, prefix2) = unique("resume_b");
    let entries = navigli_entries();
    let one = one_log(entries.clone()).await;
    let reports = run_ok(ctwatch(
        &one.env,
        &one.list,
        "mexi.my\n",
        Some(&stream_config(&one.env, &first, &prefix, "all")),
    ));
    assert!(!tbs_set(&reports).is_empty());
    // As if the process died with entries 300.. committed but not acknowledged: the next start re-reads them from
    // the log (a new stream here, so that exactly what was republished is visible).
    let id = log_id(&one.env);
    one.env
        .store
        .set_stream_position(&id, &tree_at(&entries, 300))
        .unwrap();
    let again = run_ok(ctwatch(
        &one.env,
        &one.list,
        "mexi.my\n",
        Some(&stream_config(&one.env, &second, &prefix2, "all")),
    ));
    assert!(tbs_set(&again).is_empty(), "reported again: {again:?}");
    let got = read_stream(&js, &second).await;
    let counts = index_counts(&got);
    assert_eq!(
        counts.keys().copied().collect::<Vec<_>>(),
        (300..1024).collect::<Vec<_>>()
    );
    assert!(counts.values().all(|&n| n == 1));
    assert_eq!(
        one.env.store.stream_position(&id).unwrap().unwrap().size(),
        1024
    );
    delete(&js, &first).await;
    delete(&js, &second).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_matches_publishes_only_the_matched_certificates() {
    let js = jetstream().await;
    let (name, prefix) = unique("matches");
    let one = one_log(navigli_entries()).await;
    let cfg = stream_config(&one.env, &name, &prefix, "matches");
    let reports = run_ok(ctwatch(
        &one.env,
        &one.list,
        "mexi.my\nnip.io\n",
        Some(&cfg),
    ));
    let reported: BTreeSet<String> = tbs_set(&reports).into_iter().collect();
    assert!(reported.len() > 5, "{reported:?}");
    let got = read_stream(&js, &name).await;
    assert!(
        got.len() >= reported.len() && got.len() < 1024,
        "{} messages",
        got.len()
    );
    let streamed: BTreeSet<String> = got
        .iter()
        .map(|g| {
            assert!(!g.body["data"]["matches"].as_array().unwrap().is_empty());
            g.body["data"]["tbs_sha256"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        streamed, reported,
        "the stream carries exactly the reported certificates"
    );
    delete(&js, &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_run_then_restart_leaves_no_gap_and_reports_nothing_twice() {
    const N: usize = 8000;
    let js = jetstream().await;
    let entries = fakelog::synthesize(&navigli_entries(), N);
    let log = FakeLog::new(entries);
    let (url, _srv) = fakelog::serve(log.clone()).await.unwrap();
    let watch = "mexi.my\nnip.io\n";

    // Reference: an uninterrupted run with its own stream.
    let (ref_name, ref_prefix) = unique("kill_ref");
    let reference = Env::new();
    let list = reference.write_log_list(&[(&log, &url)]);
    let expected_reports = tbs_set(&run_ok(ctwatch(
        &reference,
        &list,
        watch,
        Some(&stream_config(&reference, &ref_name, &ref_prefix, "all")),
    )));
    let expected: BTreeSet<u64> = index_counts(&read_stream(&js, &ref_name).await)
        .into_keys()
        .collect();
    assert!(
        expected.len() > N / 2,
        "{} entries streamed",
        expected.len()
    );

    // Interrupted: SIGKILL mid catch-up, preferably while a committed batch is not acknowledged yet (committed >
    // published), so that the restart has to publish it again.
    let (name, prefix) = unique("kill");
    let env = Env::new();
    let cfg = stream_config(&env, &name, &prefix, "all");
    let mut c = ctwatch(&env, &list, watch, Some(&cfg));
    c.args(["--once", "--parallel-requests", "1", "--page-size", "64"]);
    let child = c.spawn().unwrap();
    let started = Instant::now();
    let unacknowledged =
        |l: &ctwatch::store::LogRow| l.verified_size > l.published_size.unwrap_or(0);
    while !env
        .store
        .list_logs()
        .unwrap_or_default()
        .first()
        .is_some_and(unacknowledged)
        && started.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut child = child;
    child.kill().unwrap();
    let first = child.wait_with_output().unwrap();
    let at_kill = env.store.list_logs().unwrap()[0].clone();
    assert!(
        (at_kill.verified_size as usize) < N,
        "the kill came too late to test anything"
    );
    eprintln!(
        "at the kill: committed {}, published {:?}",
        at_kill.verified_size, at_kill.published_size
    );

    let out = ctwatch(&env, &list, watch, Some(&cfg))
        .arg("--once")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut reports = tbs_set(&lines(&first.stdout));
    reports.extend(tbs_set(&lines(&out.stdout)));
    reports.sort();
    let total = reports.len();
    reports.dedup();
    assert_eq!(
        reports.len(),
        total,
        "a certificate was reported twice across the kill"
    );
    assert_eq!(reports, expected_reports, "reports lost across the kill");

    let counts = index_counts(&read_stream(&js, &name).await);
    let streamed: BTreeSet<u64> = counts.keys().copied().collect();
    let missing: Vec<_> = expected.difference(&streamed).take(10).collect();
    assert!(
        missing.is_empty(),
        "gap in the stream after the kill (committed {}, published {:?} at the kill): {missing:?}",
        at_kill.verified_size,
        at_kill.published_size
    );
    assert_eq!(streamed, expected);
    let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).take(10).collect();
    assert!(repeated.is_empty(), "JetStream kept repeats: {repeated:?}");
    delete(&js, &ref_name).await;
    delete(&js, &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_stream_with_other_settings_is_used_as_it_is_and_said_so() {
    let js = jetstream().await;
    let (name, prefix) = unique("existing");
    js.create_stream(jetstream::stream::Config {
        name: name.clone(),
        subjects: vec![format!("{prefix}.>")],
        max_age: Duration::from_secs(7200),
        duplicate_window: Duration::from_secs(60),
        ..Default::default()
    })
    .await
    .unwrap();
    let one = one_log(navigli_entries()).await;
    let cfg = stream_config(&one.env, &name, &prefix, "all");
    let out = ctwatch(&one.env, &one.list, "mexi.my\n", Some(&cfg))
        .arg("--once")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("as it is, with other settings than configured: max age 7200s")
            && err.contains("duplicate window 60s"),
        "{err}"
    );
    let mut stream = js.get_stream(&name).await.unwrap();
    let info = stream.info().await.unwrap();
    assert_eq!(
        info.config.max_age,
        Duration::from_secs(7200),
        "left as it was"
    );
    assert_eq!(info.state.messages, 1024);
    delete(&js, &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_does_not_capture_the_subjects_is_refused() {
    let js = jetstream().await;
    let (name, prefix) = unique("elsewhere");
    js.create_stream(jetstream::stream::Config {
        name: name.clone(),
        subjects: vec![format!("{prefix}.other")],
        ..Default::default()
    })
    .await
    .unwrap();
    let one = one_log(navigli_entries()[..16].to_vec()).await;
    let cfg = stream_config(&one.env, &name, &prefix, "all");
    let out = ctwatch(&one.env, &one.list, "mexi.my\n", Some(&cfg))
        .arg("--once")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("does not capture {prefix}.x509_entry")),
        "{err}"
    );
    delete(&js, &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_nats_stops_the_run_with_the_reason() {
    let one = one_log(navigli_entries()[..16].to_vec()).await;
    let out = ctwatch(&one.env, &one.list, "mexi.my\n", None)
        .args(["--once", "--nats", "nats://127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot connect to NATS at nats://127.0.0.1:1"),
        "{err}"
    );
}
