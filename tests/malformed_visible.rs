//! Malformed entries are visible (issue 10 §1): a log whose tree holds leaves that do not decode is counted in
//! `ctwatch logs`, `/metrics` (`ctwatch_malformed_entries_total{log}`), `/health` (a warning, still 200) and a
//! `health` alert through the sinks — never only a line in a log file.

mod common;
mod daemon;

use std::process::Command;
use std::time::Duration;

use common::*;
use ctwatch::api::ApiConfig;
use ctwatch::health::HealthConfig;
use ctwatch_fakelog::{self as fakelog, FakeLog};
use daemon::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_entries_show_in_logs_metrics_health_and_an_alert() {
    let mut entries = navigli_entries();
    entries[10].leaf_input.truncate(40); // a truncated MerkleTreeLeaf, in the tree as such
    entries[12].leaf_input[1] = 7; // an unknown leaf type
    let log = FakeLog::new(entries);
    let (url, _srv) = fakelog::serve(log.clone()).await.unwrap();
    let env = Env::new();
    let list = env.write_log_list(&[(&log, &url)]);
    let health = HealthConfig {
        check_interval_secs: 1,
        ..HealthConfig::default()
    };
    let d = start(&env, &list, service(Some(ApiConfig::default()), health)).await;
    eventually("catch-up", Duration::from_secs(60), || {
        let done = d.verified() == 1024;
        async move { done.then_some(()) }
    })
    .await;
    let log_url = d.log_url();

    let (status, body) = get_json(&d.url("/health"), None).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("warning")),
        "{body}"
    );
    assert_eq!(body["warnings"][0]["check"], "malformed_entries", "{body}");
    assert_eq!(body["warnings"][0]["subject"], log_url.as_str());

    let text = reqwest::get(d.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let malformed = scrape
        .samples
        .iter()
        .find(|s| s.metric == "ctwatch_malformed_entries_total")
        .expect("ctwatch_malformed_entries_total");
    assert_eq!(malformed.labels.get("log"), Some(log_url.as_str()));
    assert!(
        matches!(malformed.value, prometheus_parse::Value::Counter(v) if v == 2.0),
        "{:?}",
        malformed.value
    );

    let alert = eventually("a malformed_entries alert", Duration::from_secs(15), || {
        let found = env
            .sink
            .events
            .lock()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "health" && e["check"] == "malformed_entries")
            .cloned();
        async move { found }
    })
    .await;
    assert_eq!(alert["severity"], "warning");
    assert_eq!(alert["subject"], log_url.as_str());
    assert!(
        alert["message"]
            .as_str()
            .unwrap()
            .contains("2 new malformed entries"),
        "{alert}"
    );
    d.stop().await;

    const BIN: &str = env!("CARGO_BIN_EXE_ctwatch");
    let out = Command::new(BIN)
        .args(["logs", "--json", "--db"])
        .arg(env.db_path())
        .output()
        .unwrap();
    let logs: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(logs[0]["malformed_entries"], 2);
    let out = Command::new(BIN)
        .args(["logs", "--db"])
        .arg(env.db_path())
        .output()
        .unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    let header = table.lines().next().unwrap();
    let row = table.lines().nth(1).unwrap();
    // A right-aligned column: the value sits under the header's characters.
    let at = header.find("MALFORMED").expect("a MALFORMED column");
    assert_eq!(row[at..at + "MALFORMED".len()].trim(), "2", "{table}");
}
