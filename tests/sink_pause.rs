//! A Discord webhook that answers 404 (deleted) pauses its sink in the database: the `--once` drain and the next
//! runs send it nothing — a deleted webhook does not burn one delivery per cron run — until
//! `ctwatch outbox retry --sink NAME` resumes it; then the queued events go out.

mod common;
mod notify_support;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use ctwatch::notify::{DeliveryPolicy, SinkConfig, SinkType, build_sinks, http_client};
use ctwatch::run::{RunOptions, RunSummary};
use ctwatch::tailer::StartAt;
use ctwatch::watchlist::Watchlist;
use ctwatch_fakelog::{self as fakelog, FakeLog};
use notify_support::{Answer, Receiver};

async fn run_once(env: &Env, list: &std::path::Path, hook: &str) -> RunSummary {
    let log_list = ctwatch::ct::loglist::parse(&std::fs::read(list).unwrap()).unwrap();
    let discord = SinkConfig {
        name: Some("chat".into()),
        ..SinkConfig::for_url(SinkType::Discord, hook)
    };
    let opts = RunOptions {
        log_list,
        log_list_source: None,
        log_list_refresh: Duration::from_secs(3600),
        // Every certificate matches, so that every run queues new events.
        watchlist: Watchlist::parse_str("watch.txt", "/./\n").unwrap(),
        watchlist_path: None,
        store: env.store.clone(),
        tail: once_config(StartAt::Beginning),
        retry: fast_retry(),
        page_size: 256,
        sinks: build_sinks(&[discord], http_client().unwrap()).unwrap(),
        delivery: DeliveryPolicy {
            base_delay: Duration::from_millis(50),
            ..DeliveryPolicy::default()
        },
        drain_timeout: Duration::from_secs(10),
        filter: Default::default(),
        registry: Default::default(),
        service: Default::default(),
        probe: None,
    };
    let (_tx, rx) = tokio::sync::watch::channel(false);
    ctwatch::run::run(opts, rx).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_webhook_stays_paused_across_runs_until_resumed() {
    let all = navigli_entries();
    let log: Arc<FakeLog> = FakeLog::new(all[..300].to_vec());
    let (url, _srv) = fakelog::serve(log.clone()).await.unwrap();
    let env = Env::new();
    let list = env.write_log_list(&[(&log, &url)]);
    let rx = Receiver::start().await;
    rx.fallback(Answer::json(
        404,
        serde_json::json!({"message": "Unknown Webhook", "code": 10015}),
    ));
    let hook = rx.url("/api/webhooks/1/token");

    let first = run_once(&env, &list, &hook).await;
    assert_eq!(rx.requests().len(), 1, "one try, then paused");
    assert_eq!(first.paused_sinks.len(), 1, "{first:?}");
    assert_eq!(first.paused_sinks[0].sink, "chat");
    assert!(first.paused_sinks[0].reason.contains("404"), "{first:?}");

    // Two more cron runs with new certificates: nothing is sent, everything stays queued.
    for upto in [600, 900] {
        log.append(all[log.published() as usize..upto].to_vec());
        let again = run_once(&env, &list, &hook).await;
        assert_eq!(rx.requests().len(), 1, "a paused sink was tried again");
        assert_eq!(again.paused_sinks.len(), 1);
        assert!(!again.ok());
    }
    let pending = env.store.outbox_summary().unwrap()[0].pending;
    assert!(pending > 0);

    // The webhook is fixed and the sink resumed (what `ctwatch outbox retry --sink chat` does).
    rx.fallback(Answer::status(204, ""));
    assert_eq!(env.store.resume_sinks(Some("chat")).unwrap(), ["chat"]);
    let fixed = run_once(&env, &list, &hook).await;
    assert!(fixed.ok(), "{fixed:?}");
    assert!(fixed.paused_sinks.is_empty());
    assert!(rx.requests().len() > 1);
    assert_eq!(env.store.outbox_summary().unwrap()[0].pending, 0);
}
