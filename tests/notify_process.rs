//! The real binary and real programs: `ctwatch notify test`, `run --once --webhook` killed while a target holds
//! the request (nothing lost after the restart), and the `exec` hook.

mod common;
mod notify_support;

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use common::{Env, navigli_entries};
use ctwatch::notify::{
    DeliveryPolicy, Sink, SinkConfig, SinkType, build_sinks, drain, http_client,
};
use ctwatch::store::Store;
use ctwatch_fakelog::{self as fakelog, FakeLog};
use notify_support::*;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ctwatch");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_test_reports_each_sink() {
    let ok = Receiver::start().await;
    let gone = Receiver::start().await;
    gone.fallback(Answer::status(
        404,
        r#"{"message": "Unknown Webhook", "code": 10015}"#,
    ));
    let out = Command::new(BIN)
        .args([
            "notify",
            "test",
            "--webhook",
            &ok.url("/hook"),
            "--discord",
            &gone.url("/api/webhooks/1/t"),
        ])
        .env(
            "CTWATCH_WEBHOOK_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        )
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].starts_with("webhook:") && lines[0].ends_with(": ok"),
        "{}",
        lines[0]
    );
    assert!(lines[1].starts_with("discord:"), "{}", lines[1]);
    assert!(
        lines[1].ends_with(
            r#": FAILED: Discord answered HTTP 404: {"message": "Unknown Webhook", "code": 10015}"#
        ),
        "{}",
        lines[1]
    );
    let req = &ok.requests()[0];
    let body = req.json();
    assert_eq!(body["kind"], "test");
    assert_eq!(
        body["events"][0]["message"],
        "If you can read this, ctwatch can reach this channel."
    );
    assert!(req.header("webhook-signature").starts_with("v1,"));
    // With nothing configured it says so.
    let out = Command::new(BIN)
        .args(["notify", "test"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no sink configured"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_once_killed_while_a_webhook_hangs_loses_nothing() {
    let log = FakeLog::new(navigli_entries());
    let (url, _srv) = fakelog::serve(log.clone()).await.unwrap();
    let env = Env::new();
    let list = env.write_log_list(&[(&log, &url)]);
    let watch = env.write_watchlist("mexi.my\nnip.io\n");
    let rx = Receiver::start().await;
    rx.script([Answer::Hang]);
    let run = || {
        let mut c = Command::new(BIN);
        c.args([
            "run",
            "--once",
            "--json",
            "--start-at",
            "beginning",
            "--webhook",
            &rx.url("/hook"),
        ])
        .arg("--log-list")
        .arg(&list)
        .arg("--watchlist")
        .arg(&watch)
        .arg("--db")
        .arg(env.db_path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
        c
    };
    let mut child = run().spawn().unwrap();
    rx.wait_for(1, Duration::from_secs(60)).await;
    child.start_kill().unwrap(); // SIGKILL while the first request is held
    child.wait().await.unwrap();
    let out = run().output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answered: Vec<Request> = rx
        .requests()
        .into_iter()
        .filter(|r| r.answered == Some(200))
        .collect();
    let mut tbs: Vec<String> = answered
        .iter()
        .flat_map(|r| r.json()["events"].as_array().unwrap().clone())
        .filter(|e| e["kind"] != "health")
        .map(|e| e["tbs_sha256"].as_str().unwrap().to_string())
        .collect();
    tbs.sort();
    let n = tbs.len();
    tbs.dedup();
    assert_eq!(
        (n, tbs.len()),
        (61, 61),
        "every match delivered, none twice"
    );
}

fn exec_sink(
    script: &str,
    out: &std::path::Path,
) -> (tempfile::TempDir, Arc<Store>, Vec<Arc<dyn Sink>>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("db")).unwrap());
    let cfg = SinkConfig {
        name: Some("hook".into()),
        kind: Some(SinkType::Exec),
        command: Some("/bin/sh".into()),
        args: vec![
            "-c".into(),
            script.into(),
            "hook".into(),
            out.display().to_string(),
        ],
        timeout_secs: Some(5),
        ..Default::default()
    };
    let built = build_sinks(&[cfg], http_client().unwrap()).unwrap();
    store.set_sink_routes(built.iter().map(|(_, r)| r.clone()).collect());
    (dir, store, built.into_iter().map(|(s, _)| s).collect())
}

#[tokio::test]
async fn exec_runs_the_hook_with_certspotter_variables_and_json_on_stdin() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("out.txt");
    let script = r#"{ printf '%s\n' "$EVENT" "$WATCH_ITEM" "$TBS_SHA256" "$NOT_AFTER_RFC3339"; cat; cat "$JSON_FILENAME"; } >> "$1""#;
    let (_d, store, sinks) = exec_sink(script, &out);
    let ev = events(
        &fixture("letsencrypt_org_E8_leaf.der"),
        "letsencrypt.org lookalike=off",
        8,
    )
    .remove(0);
    store.queue_event(&ev).unwrap();
    let left = drain(
        &store,
        &sinks,
        &DeliveryPolicy::default(),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(left, [("hook".to_string(), 0)]);
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "discovered_cert");
    assert_eq!(lines[1], "letsencrypt.org");
    assert_eq!(lines[2], ev.payload["tbs_sha256"].as_str().unwrap());
    assert_eq!(lines[3], ev.payload["not_after"].as_str().unwrap());
    let stdin: serde_json::Value = serde_json::from_str(lines[4]).unwrap();
    assert_eq!(stdin, ev.payload);
    let file: serde_json::Value = serde_json::from_str(lines[5]).unwrap();
    assert_eq!(file, ev.payload);
}

#[tokio::test]
async fn a_failing_hook_is_retried_with_its_stderr_recorded() {
    let out_dir = tempfile::tempdir().unwrap();
    let (_d, store, sinks) = exec_sink(
        "echo 'mail server down' >&2; exit 3",
        &out_dir.path().join("x"),
    );
    store.queue_event(&five_events()[0]).unwrap();
    let left = drain(
        &store,
        &sinks,
        &DeliveryPolicy::default(),
        Duration::from_millis(1500),
    )
    .await;
    assert_eq!(left, [("hook".to_string(), 1)]);
    let items = store.undelivered(None, 10).unwrap();
    assert_eq!(items[0].status, "pending");
    assert_eq!(
        items[0].last_error.as_deref(),
        Some("/bin/sh exited with exit status: 3: mail server down")
    );
}
