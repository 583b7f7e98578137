//! `/health` answers 503 while a log fails verification — entries that do not hash to the signed root, a tree
//! head with a bad signature — and 200 again once the log verifies. Real fake logs on 127.0.0.1.

mod common;
mod daemon;

use std::time::Duration;

use common::*;
use ctwatch::api::ApiConfig;
use ctwatch::health::HealthConfig;
use ctwatch_fakelog::{FakeLog, Faults};
use daemon::*;
use serde_json::Value;

async fn health_when(d: &Daemon, what: &str, want: u16) -> Value {
    let url = d.url("/health");
    eventually(what, Duration::from_secs(30), || {
        let url = url.clone();
        async move {
            let (status, body) = get_json(&url, None).await;
            (status == want).then_some(body)
        }
    })
    .await
}

fn only_problem(body: &Value) -> &Value {
    let problems = body["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{body}");
    &problems[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_503_while_a_log_fails_verification() {
    let log = FakeLog::new(navigli_entries()[..512].to_vec());
    let (url, _srv) = ctwatch_fakelog::serve(log.clone()).await.unwrap();
    let env = Env::new();
    let list = env.write_log_list(&[(&log, &url)]);
    let alerts_off = HealthConfig {
        alerts: false,
        ..HealthConfig::default()
    };
    let d = start(&env, &list, service(Some(ApiConfig::default()), alerts_off)).await;
    eventually("the first 512 entries", Duration::from_secs(30), || {
        let done = d.verified() == 512;
        async move { done.then_some(()) }
    })
    .await;
    assert_eq!(get_json(&d.url("/health"), None).await.0, 200);

    // New entries, one served altered: they no longer hash to the signed root.
    log.append(navigli_entries()[512..].to_vec());
    log.set_faults(Faults {
        tamper_index: Some(700),
        ..Faults::default()
    });
    let body = health_when(&d, "/health to turn 503 on the root mismatch", 503).await;
    let p = only_problem(&body);
    assert_eq!(p["check"], "log_misbehaving", "{body}");
    assert_eq!(p["subject"], d.log_url());
    let msg = p["message"].as_str().unwrap();
    assert!(
        msg.contains("fails verification") && msg.contains("ROOT MISMATCH"),
        "{msg}"
    );
    assert!(d.verified() < 1024);

    // The log serves the right entries again: verified, healthy.
    log.set_faults(Faults::default());
    health_when(&d, "/health to recover", 200).await;
    assert_eq!(d.verified(), 1024);

    // A tree head signed with the wrong key.
    log.set_faults(Faults {
        bad_signature: true,
        ..Faults::default()
    });
    let body = health_when(&d, "/health to turn 503 on a bad signature", 503).await;
    let msg = only_problem(&body)["message"].as_str().unwrap().to_string();
    assert!(msg.contains("signature"), "{msg}");
    log.set_faults(Faults::default());
    health_when(&d, "/health to recover again", 200).await;
    d.stop().await;
}
