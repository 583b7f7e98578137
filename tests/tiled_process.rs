//! The real binary against fake tiled logs: SIGKILL mid catch-up then restart loses and repeats nothing, and
//! `ctwatch logs` shows tiled logs next to RFC 6962 ones.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use ctwatch_fakelog::tiled::{self as fakelog_tiled, FakeTiledLog, TiledFaults};
use ctwatch_fakelog::{self as fakelog, FakeLog};

const BIN: &str = env!("CARGO_BIN_EXE_ctwatch");

fn ctwatch_run(env: &Env, list: &Path, watch: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args([
        "run",
        "--json",
        "--start-at",
        "beginning",
        "--batch-entries",
        "512",
        "--retry-base-ms",
        "20",
    ])
    .arg("--log-list")
    .arg(list)
    .arg("--watchlist")
    .arg(watch)
    .arg("--db")
    .arg(env.db_path())
    .args(extra)
    .env("RUST_LOG", "warn")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    c
}

fn lines(out: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).expect(l))
        .collect()
}

fn write_list(
    env: &Env,
    rfc: &[(&FakeLog, &str)],
    tiled: &[(&FakeTiledLog, &str)],
) -> std::path::PathBuf {
    let path = env.dir.path().join("log_list.json");
    std::fs::write(&path, fakelog_tiled::log_list_json(rfc, tiled)).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_during_tiled_catch_up_then_restart_loses_nothing_and_repeats_nothing() {
    kill_during_tiled_catch_up(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_during_tiled_catch_up_then_restart_loses_nothing_and_repeats_nothing_on_postgres() {
    kill_during_tiled_catch_up(Backend::Postgres).await;
}

async fn kill_during_tiled_catch_up(backend: Backend) {
    let log = FakeTiledLog::new("big");
    log.append_rfc6962(&fakelog::synthesize(&navigli_entries(), 20_000))
        .unwrap();
    let (url, _srv) = fakelog_tiled::serve(log.clone()).await.unwrap();
    let env = Env::on(backend);
    let list = write_list(&env, &[], &[(&log, &url)]);
    let watch = env.write_watchlist("mexi.my\nnip.io\n");

    let reference_env = Env::on(backend);
    let out = ctwatch_run(&reference_env, &list, &watch, &["--once"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = tbs_set(&lines(&out.stdout));
    assert!(expected.len() > 500, "only {} matches", expected.len());

    let mut child = ctwatch_run(&env, &list, &watch, &["--once", "--parallel-requests", "1"])
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let logs = env.store.list_logs().unwrap_or_default();
        if logs.first().is_some_and(|l| l.verified_size > 0)
            || started.elapsed() > Duration::from_secs(60)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().unwrap();
    let first = child.wait_with_output().unwrap();
    let verified_at_kill = env.store.list_logs().unwrap()[0].verified_size;
    assert!(
        verified_at_kill < 20_000,
        "the kill came too late to test anything"
    );
    assert_eq!(
        verified_at_kill % 256,
        0,
        "a tiled log commits whole tiles here"
    );

    // Delivery is at-least-once: an event written to stdout but not yet marked delivered when the process died
    // is written again. What was marked delivered must never be repeated, and nothing may be lost.
    let delivered_at_kill = delivered_events(&env.db_path());
    let printed_before_kill = tbs_set(&lines(&first.stdout));
    assert!(
        delivered_at_kill
            .iter()
            .all(|t| printed_before_kill.binary_search(t).is_ok())
    );

    let out = ctwatch_run(&env, &list, &watch, &["--once"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed_after = tbs_set(&lines(&out.stdout));
    for t in &printed_after {
        assert!(
            delivered_at_kill.binary_search(t).is_err(),
            "{t} was delivered before the kill and reported again"
        );
    }
    let mut got = printed_before_kill;
    got.extend(printed_after);
    got.sort();
    got.dedup();
    assert_eq!(got, expected, "reports lost across the kill");
    assert_eq!(env.store.list_logs().unwrap()[0].verified_size, 20_000);
}

/// tbs_sha256 of the events marked delivered to stdout, sorted.
fn delivered_events(db: &Path) -> Vec<String> {
    if let Some(url) = ctwatch::store::postgres_url(db) {
        let mut v = common::pg::query_strings(
            url,
            "SELECT e.payload::json ->> 'tbs_sha256' FROM events e
             JOIN deliveries d ON d.event_id = e.id WHERE d.sink = 'stdout' AND d.status = 'delivered'",
        );
        v.sort();
        return v;
    }
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT json_extract(e.payload, '$.tbs_sha256') FROM events e
             JOIN deliveries d ON d.event_id = e.id WHERE d.sink = 'stdout' AND d.status = 'delivered'",
        )
        .unwrap();
    let mut v: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_command_shows_tiled_and_rfc6962_logs() {
    let tiled =
        FakeTiledLog::from_tile_dir("navigli2025h2", &fixture("static-ct/navigli2025h2")).unwrap();
    let broken =
        FakeTiledLog::from_tile_dir("broken", &fixture("static-ct/navigli2025h2")).unwrap();
    broken.set_faults(TiledFaults {
        bad_signature: true,
        ..TiledFaults::default()
    });
    let rfc = FakeLog::new(navigli_entries());
    let (tiled_url, _a) = fakelog_tiled::serve(tiled.clone()).await.unwrap();
    let (broken_url, _b) = fakelog_tiled::serve(broken.clone()).await.unwrap();
    let (rfc_url, _c) = fakelog::serve(rfc.clone()).await.unwrap();
    tiled.publish(778);
    let env = Env::new();
    let list = write_list(
        &env,
        &[(&rfc, &rfc_url)],
        &[(&tiled, &tiled_url), (&broken, &broken_url)],
    );
    let summary = run_once(
        &env,
        &list,
        "mexi.my\n",
        once_config(ctwatch::tailer::StartAt::Beginning),
    )
    .await;
    assert_eq!(summary.failed_logs.len(), 1, "{summary:?}");

    let json = Command::new(BIN)
        .args(["logs", "--json", "--db"])
        .arg(env.db_path())
        .output()
        .unwrap();
    assert!(json.status.success());
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(rows.len(), 3);
    let row = |url: &str| rows.iter().find(|r| r["url"] == url).unwrap().clone();
    let t = row(&tiled_url);
    assert_eq!(
        (
            t["kind"].as_str(),
            t["operator"].as_str(),
            t["state"].as_str()
        ),
        (Some("tiled"), Some("ctwatch tests"), Some("usable"))
    );
    assert_eq!(
        (
            t["verified_size"].as_u64(),
            t["head_size"].as_u64(),
            t["backlog"].as_u64()
        ),
        (Some(778), Some(778), Some(0))
    );
    assert!(t["last_success_at"].as_i64().unwrap() > 1_700_000_000);
    assert!(t["last_error"].is_null());
    let r = row(&rfc_url);
    assert_eq!(
        (r["kind"].as_str(), r["verified_size"].as_u64()),
        (Some("rfc6962"), Some(1024))
    );
    let b = row(&broken_url);
    assert_eq!(
        (b["kind"].as_str(), b["verified_size"].as_u64()),
        (Some("tiled"), Some(0))
    );
    assert!(b["last_success_at"].is_null());
    assert!(
        b["last_error"].as_str().unwrap().contains("signature"),
        "{b}"
    );

    let text = Command::new(BIN)
        .args(["logs", "--db"])
        .arg(env.db_path())
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    let header = text.lines().next().unwrap();
    for col in [
        "KIND",
        "OPERATOR",
        "STATE",
        "VERIFIED",
        "HEAD",
        "BACKLOG",
        "LAST CONTACT",
    ] {
        assert!(header.contains(col), "{header}");
    }
    let tiled_line = text.lines().find(|l| l.ends_with(&tiled_url)).unwrap();
    let cols: Vec<&str> = tiled_line.split_whitespace().collect();
    assert_eq!(&cols[..3], ["tiled", "ctwatch", "tests"]);
    assert_eq!(&cols[3..7], ["usable", "778", "778", "0"]);
    assert!(text.contains("last error ("), "{text}");
}
