//! Health alerts through the notification sinks: a fake log that goes silent raises one `log_silent` alert and
//! one `resolved` when it answers again (in a real run, and with tokio's paused clock); the binary serves
//! /health and /metrics on `--listen 127.0.0.1:0` and reports a restart after being killed.

mod common;
mod daemon;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use common::*;
use ctwatch::health::{HealthConfig, Monitor, tokio_clock};
use ctwatch::notify::{DeliveryPolicy, Sink, Wake};
use ctwatch::stats::{LogEntryStats, LogStats, Registry};
use ctwatch::store::{SinkRoute, Store};
use ctwatch_fakelog::{self as fakelog, FakeLog, Faults};
use daemon::*;
use serde_json::Value;

/// The health events among what the sink received: (check, state, subject).
fn health_events(events: &[Value]) -> Vec<(String, String, String)> {
    events
        .iter()
        .filter(|e| e["kind"] == "health")
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or("").to_string();
            (s("check"), s("state"), s("subject"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_log_raises_one_alert_through_the_sink_and_one_resolved() {
    let log = FakeLog::new(navigli_entries());
    let (url, _srv) = fakelog::serve(log.clone()).await.unwrap();
    let env = Env::new();
    let list = env.write_log_list(&[(&log, &url)]);
    let health = HealthConfig {
        check_interval_secs: 1,
        log_silence_secs: 2,
        ..HealthConfig::default()
    };
    let d = start(&env, &list, service(None, health)).await;
    caught_up(&env, &d, 1024, EXPECTED_MATCHES).await;
    assert!(health_events(&env.sink.take()).is_empty());

    log.set_faults(Faults {
        sth_down: true,
        ..Faults::default()
    });
    let sink = env.sink.clone();
    eventually("a log_silent alert", Duration::from_secs(15), || {
        let n = health_events(&sink.events.lock().unwrap()).len();
        async move { (n > 0).then_some(()) }
    })
    .await;
    // Silence goes on for a few more checks: still one alert.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let log_url = d.log_url();
    assert_eq!(
        health_events(&env.sink.events.lock().unwrap()),
        [(
            "log_silent".to_string(),
            "firing".to_string(),
            log_url.clone()
        )]
    );

    log.set_faults(Faults::default());
    let all = eventually("the resolved alert", Duration::from_secs(15), || {
        let h = health_events(&sink.events.lock().unwrap());
        async move { (h.len() >= 2).then_some(h) }
    })
    .await;
    assert_eq!(
        all,
        [
            (
                "log_silent".to_string(),
                "firing".to_string(),
                log_url.clone()
            ),
            (
                "log_silent".to_string(),
                "resolved".to_string(),
                log_url.clone()
            ),
        ]
    );
    let events = env.sink.take();
    let resolved = events.iter().rfind(|e| e["kind"] == "health").unwrap();
    assert!(
        resolved["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{log_url} answers again after"))
    );
    assert_eq!(resolved["severity"], "info");
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn paused_time_a_log_silent_for_15_minutes_alerts_once_then_resolves() {
    let store = Arc::new(Store::open_in_memory().unwrap());
    store.set_sink_routes(vec![SinkRoute::all("collect")]);
    let registry = Arc::new(Registry::default());
    let stats = Arc::new(LogStats::default());
    registry.add_log(LogEntryStats {
        url: "https://ct.example/log/".into(),
        kind: "rfc6962",
        operator: "Example".into(),
        description: "example log".into(),
        stats: stats.clone(),
    });
    let clock = tokio_clock();
    stats.last_success_unix.store(clock() as u64, Relaxed);

    let sink = Arc::new(Collect::default());
    let notify = Arc::new(tokio::sync::Notify::new());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let dyn_sink: Arc<dyn Sink> = sink.clone();
    let worker = tokio::spawn(ctwatch::notify::run_worker(
        store.clone(),
        dyn_sink,
        notify.clone(),
        DeliveryPolicy::default(),
        stopped.clone(),
    ));
    let monitor = Monitor {
        store: store.clone(),
        registry: registry.clone(),
        config: HealthConfig::default(), // checks every 60 s, silence threshold 900 s
        clock: clock.clone(),
        wake: Wake::new(vec![notify]),
        run_id: None,
    };
    let monitor = tokio::spawn(monitor.run(stopped));

    // 14.5 minutes of silence: below the threshold.
    tokio::time::sleep(Duration::from_secs(14 * 60 + 30)).await;
    assert!(sink.take().is_empty());
    // 20.5 minutes: one alert, not one per check.
    tokio::time::sleep(Duration::from_secs(6 * 60)).await;
    let fired = sink.take();
    assert_eq!(
        health_events(&fired),
        [(
            "log_silent".into(),
            "firing".into(),
            "https://ct.example/log/".into()
        )]
    );
    assert_eq!(
        fired[0]["since"],
        ctwatch::event::rfc3339(clock() - 20 * 60 - 30)
    );
    // The log answers again: resolved at the next check, once.
    stats.last_success_unix.store(clock() as u64, Relaxed);
    tokio::time::sleep(Duration::from_secs(5 * 60)).await;
    assert_eq!(
        health_events(&sink.take()),
        [(
            "log_silent".into(),
            "resolved".into(),
            "https://ct.example/log/".into()
        )]
    );
    stop.send(true).unwrap();
    monitor.await.unwrap();
    worker.await.unwrap();
}

/// Read the child's stderr on a thread; send the API address once it is logged, keep draining after.
fn api_addr_from_stderr(stderr: std::process::ChildStderr) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let ansi = regex::Regex::new("\x1b\\[[0-9;]*m").unwrap();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let line = ansi.replace_all(&line, "");
            if line.contains("HTTP API listening")
                && let Some(rest) = line.split("addr=").nth(1)
            {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
            }
        }
    });
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_health_and_metrics_and_reports_a_restart_after_a_kill() {
    const BIN: &str = env!("CARGO_BIN_EXE_ctwatch");
    let log = FakeLog::new(navigli_entries());
    let (url, _srv) = fakelog::serve(log.clone()).await.unwrap();
    let env = Env::new();
    let list = env.write_log_list(&[(&log, &url)]);
    let watch = env.write_watchlist(WATCH);
    let run = |extra: &[&str]| {
        let mut c = Command::new(BIN);
        c.args([
            "run",
            "--json",
            "--start-at",
            "beginning",
            "--retry-base-ms",
            "20",
        ])
        .arg("--log-list")
        .arg(&list)
        .arg("--watchlist")
        .arg(&watch)
        .arg("--db")
        .arg(env.db_path())
        .args(extra)
        .env("RUST_LOG", "warn,ctwatch=info");
        c
    };
    let mut child = run(&["--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = api_addr_from_stderr(child.stderr.take().unwrap())
        .recv_timeout(Duration::from_secs(30))
        .expect("the API address in the log");
    let base = format!("http://{addr}");
    let logs_url = format!("{base}/api/v1/logs");
    eventually("the binary to catch up", Duration::from_secs(30), || {
        let logs_url = logs_url.clone();
        async move {
            let (_, body) = get_json(&logs_url, None).await;
            (body["logs"][0]["verified_size"] == 1024).then_some(())
        }
    })
    .await;
    let (status, body) = get_json(&format!("{base}/health"), None).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("ok")),
        "{body}"
    );
    // The registry's figures follow the database commit by a moment: poll until they show it.
    let metrics_url = format!("{base}/metrics");
    eventually(
        "/metrics to show the verified size",
        Duration::from_secs(30),
        || {
            let metrics_url = metrics_url.clone();
            async move {
                let text = reqwest::get(metrics_url).await.ok()?.text().await.ok()?;
                let scrape =
                    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
                        .ok()?;
                let verified = scrape
                    .samples
                    .iter()
                    .find(|s| s.metric == "ctwatch_log_verified_size")?
                    .value
                    .clone();
                matches!(verified, prometheus_parse::Value::Gauge(v) if v == 1024.0).then_some(())
            }
        },
    )
    .await;

    // SIGKILL: no clean exit recorded. The next start reports it through the sinks (stdout here).
    let pid = child.id();
    child.kill().unwrap();
    child.wait().unwrap();
    let out = run(&["--once"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let crash: Vec<&Value> = events
        .iter()
        .filter(|e| e["check"] == "restart_after_crash")
        .collect();
    assert_eq!(crash.len(), 1, "{events:?}");
    assert_eq!(crash[0]["kind"], "health");
    assert_eq!(crash[0]["subject"], format!("pid {pid}"));
    assert!(
        crash[0]["message"]
            .as_str()
            .unwrap()
            .contains("crashed or was killed")
    );

    // That run exited cleanly: the next one reports nothing.
    let out = run(&["--once"]).output().unwrap();
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("restart_after_crash"));
}
