//! The real binary: SIGKILL in the middle of a catch-up followed by a restart loses nothing and reports nothing
//! twice; SIGTERM finishes the batch in hand and exits 0; a bad watchlist line stops `run` with file:line.
//! The database tests run twice: on SQLite and on PostgreSQL (`*_on_postgres`, see `common::pg`).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use ctwatch_fakelog::{self as fakelog, FakeLog};

const BIN: &str = env!("CARGO_BIN_EXE_ctwatch");

fn ctwatch(env: &Env, list: &std::path::Path, watch: &std::path::Path, extra: &[&str]) -> Command {
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

/// 20k synthesized entries; the watchlist matches the (rewritten) navigli names of the whole log.
async fn big_log() -> (std::sync::Arc<FakeLog>, String, tokio::task::JoinHandle<()>) {
    let log = FakeLog::new(fakelog::synthesize(&navigli_entries(), 20_000));
    let (url, srv) = fakelog::serve(log.clone()).await.unwrap();
    (log, url, srv)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_during_catch_up_then_restart_loses_nothing_and_repeats_nothing() {
    kill_during_catch_up(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_during_catch_up_then_restart_loses_nothing_and_repeats_nothing_on_postgres() {
    kill_during_catch_up(Backend::Postgres).await;
}

async fn kill_during_catch_up(backend: Backend) {
    let (log, url, _srv) = big_log().await;
    let env = Env::on(backend);
    let list = env.write_log_list(&[(&log, &url)]);
    let watch = env.write_watchlist("mexi.my\nnip.io\n");

    // Reference: an uninterrupted run into another database.
    let reference_env = Env::on(backend);
    let out = ctwatch(&reference_env, &list, &watch, &["--once"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = tbs_set(&lines(&out.stdout));
    assert!(expected.len() > 500, "only {} matches", expected.len());

    // Interrupted: SIGKILL as soon as the first reports appear, i.e. mid catch-up.
    let mut child = ctwatch(
        &env,
        &list,
        &watch,
        &["--once", "--parallel-requests", "1", "--page-size", "64"],
    )
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

    let out = ctwatch(&env, &list, &watch, &["--once"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The restart is also reported, as a health alert: the previous run was killed.
    let (health, certs): (Vec<_>, Vec<_>) = lines(&out.stdout)
        .into_iter()
        .partition(|e| e["kind"] == "health");
    assert_eq!(health.len(), 1, "{health:?}");
    assert_eq!(health[0]["check"], "restart_after_crash");
    let mut got = tbs_set(&lines(&first.stdout));
    got.extend(tbs_set(&certs));
    got.sort();
    let total = got.len();
    got.dedup();
    assert_eq!(
        got.len(),
        total,
        "a certificate was reported twice across the kill"
    );
    assert_eq!(got, expected, "reports lost across the kill");
    assert_eq!(env.store.list_logs().unwrap()[0].verified_size, 20_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_commits_the_batch_in_hand_and_exits_zero() {
    sigterm_commits(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_commits_the_batch_in_hand_and_exits_zero_on_postgres() {
    sigterm_commits(Backend::Postgres).await;
}

async fn sigterm_commits(backend: Backend) {
    let (log, url, _srv) = big_log().await;
    let env = Env::on(backend);
    let list = env.write_log_list(&[(&log, &url)]);
    let watch = env.write_watchlist("mexi.my\n");
    let child = ctwatch(
        &env,
        &list,
        &watch,
        // No probe: it would resolve the matched real names (network).
        &[
            "--parallel-requests",
            "1",
            "--page-size",
            "64",
            "--no-probe",
        ],
    )
    .spawn()
    .unwrap();
    let started = Instant::now();
    while log.request_count("get-entries") < 5 && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    // What was downloaded before the signal was verified and committed (not thrown away).
    let verified = env.store.list_logs().unwrap()[0].verified_size;
    assert!(verified >= 64, "nothing committed on SIGTERM: {verified}");
}

#[test]
fn bad_watchlist_line_names_file_and_line() {
    let env = Env::new();
    let watch = env.write_watchlist("example.com\n\nexa mple..com\n");
    let log = FakeLog::new(Vec::new());
    let list = env.write_log_list(&[(&log, "http://127.0.0.1:9/")]);
    let out = ctwatch(&env, &list, &watch, &["--once"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("watch.txt:3"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_and_logs_commands_read_what_run_stored() {
    search_and_logs(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_and_logs_commands_read_what_run_stored_on_postgres() {
    search_and_logs(Backend::Postgres).await;
}

async fn search_and_logs(backend: Backend) {
    let OneLog {
        log: _,
        url,
        env,
        list,
        ..
    } = one_log_on(navigli_entries(), backend).await;
    let watch = env.write_watchlist("mexi.my\nnip.io\n");
    let out = ctwatch(&env, &list, &watch, &["--once"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reported = lines(&out.stdout);

    let search = Command::new(BIN)
        .args(["search", "mexi.my", "--json", "--db"])
        .arg(env.db_path())
        .output()
        .unwrap();
    assert!(search.status.success());
    let found: Vec<serde_json::Value> = serde_json::from_slice(&search.stdout).unwrap();
    let expected = reported
        .iter()
        .filter(|e| {
            e["dns_names"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n.as_str().unwrap().ends_with("mexi.my"))
        })
        .count();
    assert_eq!(found.len(), expected);
    assert!(expected > 0);
    for c in &found {
        assert_eq!(c["sightings"].as_array().unwrap().len(), 1);
        assert_eq!(c["sightings"][0]["log"], url.as_str());
    }
    // A name that matched nothing has no result; a sub-name finds its certificate.
    let none = Command::new(BIN)
        .args(["search", "example.com", "--db"])
        .arg(env.db_path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&none.stdout).contains("no stored certificate"));

    let logs = Command::new(BIN)
        .args(["logs", "--json", "--db"])
        .arg(env.db_path())
        .output()
        .unwrap();
    let logs: Vec<serde_json::Value> = serde_json::from_slice(&logs.stdout).unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["verified_size"], 1024);
    assert_eq!(logs[0]["head_size"], 1024);
    assert_eq!(logs[0]["backlog"], 0);
    assert_eq!(logs[0]["kind"], "rfc6962");
    assert!(logs[0]["last_success_at"].as_i64().is_some());
}
