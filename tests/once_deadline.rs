//! Cron-safe `run --once`: an overall deadline against a log that never answers, a capped hostile Retry-After,
//! what is verified before the deadline is committed and reported, and a hanging webhook cannot stretch
//! `--deliver-timeout-secs`.

mod common;
mod notify_support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use ctwatch::ctlog::http::RetryPolicy;
use ctwatch::notify::{DeliveryPolicy, SinkConfig, SinkType, build_sinks, http_client};
use ctwatch::run::{RunOptions, RunSummary};
use ctwatch::tailer::{StartAt, TailConfig};
use ctwatch::watchlist::Watchlist;
use ctwatch_fakelog::{FakeLog, Faults};
use notify_support::{Answer, Receiver};

/// A TCP listener on 127.0.0.1 that accepts and never answers; its URL.
async fn blackhole() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    url
}

struct Opts {
    tail: TailConfig,
    retry: RetryPolicy,
    sinks: Vec<SinkConfig>,
    drain: Duration,
}

/// `ctwatch run --once` in-process; fails the test instead of hanging for minutes.
async fn run_once(env: &Env, list: &Path, o: Opts, limit: Duration) -> (RunSummary, Duration) {
    let log_list = ctwatch::ct::loglist::parse(&std::fs::read(list).unwrap()).unwrap();
    let mut sinks = build_sinks(&o.sinks, http_client().unwrap()).unwrap();
    let collect: Arc<dyn ctwatch::notify::Sink> = env.sink.clone();
    sinks.push((collect, ctwatch::store::SinkRoute::all("collect")));
    let opts = RunOptions {
        log_list,
        log_list_source: None,
        log_list_refresh: Duration::from_secs(3600),
        watchlist: Watchlist::parse_str("watch.txt", "mexi.my\nnip.io\n").unwrap(),
        watchlist_path: None,
        store: env.store.clone(),
        tail: o.tail,
        retry: o.retry,
        page_size: 256,
        sinks,
        delivery: DeliveryPolicy {
            base_delay: Duration::from_millis(100),
            ..DeliveryPolicy::default()
        },
        drain_timeout: o.drain,
        filter: Default::default(),
        registry: Default::default(),
        service: Default::default(),
        probe: None,
    };
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let t = Instant::now();
    let summary = tokio::time::timeout(limit, ctwatch::run::run(opts, rx))
        .await
        .unwrap_or_else(|_| panic!("run --once still running after {limit:?}"))
        .unwrap();
    (summary, t.elapsed())
}

fn defaults(once_timeout: Duration) -> Opts {
    Opts {
        tail: TailConfig {
            once: true,
            start_at: StartAt::Beginning,
            batch_entries: 256,
            parallel_requests: 1,
            once_timeout,
            ..TailConfig::default()
        },
        // The production retry policy: 6 attempts, 30 s per request.
        retry: RetryPolicy::default(),
        sinks: Vec::new(),
        drain: Duration::from_secs(5),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_never_answering_log_ends_at_the_once_deadline() {
    let log = FakeLog::new(navigli_entries());
    let url = blackhole().await;
    let env = Env::new();
    let list = env.write_log_list(&[(&log, &url)]);
    let (summary, took) = run_once(
        &env,
        &list,
        defaults(Duration::from_secs(3)),
        Duration::from_secs(60),
    )
    .await;
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(!summary.ok());
    let left = summary.deadline.expect("the deadline is reported");
    assert_eq!(left.len(), 1);
    assert_eq!((left[0].url.as_str(), left[0].head), (url.as_str(), None));
    assert!(
        left[0].to_string().contains("never answered"),
        "{}",
        left[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_verified_before_the_deadline_is_committed_and_what_is_left_is_reported() {
    let one = one_log(navigli_entries()).await;
    // Every second get-entries answers 429 with a hostile Retry-After, capped at 3 s: page 1 at once, page 2
    // after 3 s, page 3 at once, page 4 after 6 s. The deadline falls in between.
    one.log.set_faults(Faults {
        rate_limit_every: 2,
        retry_after_secs: 999_999,
        ..Faults::default()
    });
    let mut o = defaults(Duration::from_secs(4));
    o.retry = RetryPolicy {
        base_delay: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(3),
        ..RetryPolicy::default()
    };
    let (summary, took) = run_once(&one.env, &one.list, o, Duration::from_secs(60)).await;
    assert!(took < Duration::from_secs(20), "took {took:?}");
    let left = summary.deadline.expect("the deadline is reported");
    let verified = one.env.store.list_logs().unwrap()[0].verified_size;
    assert!((256..1024).contains(&verified), "verified {verified}");
    assert_eq!(left[0].verified, verified);
    assert_eq!(left[0].left(), Some(1024 - verified));
    // The matches of the committed entries were delivered before the exit.
    let delivered = tbs_set(&one.env.sink.take());
    let stored = one.env.store.outbox_summary().unwrap();
    let collect = stored.iter().find(|s| s.sink == "collect").unwrap();
    assert_eq!(
        (collect.pending, collect.delivered as usize),
        (0, delivered.len())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_retry_after_is_capped() {
    let one = one_log(navigli_entries()).await;
    one.log.set_faults(Faults {
        rate_limit_every: 1,
        retry_after_secs: 999_999,
        ..Faults::default()
    });
    let mut o = defaults(Duration::from_secs(600));
    o.tail.once_max_failures = 1;
    o.retry = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(1),
        ..RetryPolicy::default()
    };
    let (summary, took) = run_once(&one.env, &one.list, o, Duration::from_secs(60)).await;
    // Two capped waits of 1 s, then the cycle fails: not 999999 s, not even the 300 s backoff cap.
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert_eq!(summary.failed_logs.len(), 1, "{summary:?}");
    assert!(summary.failed_logs[0].1.contains("429"), "{summary:?}");
    assert!(summary.deadline.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_webhook_does_not_stretch_the_deliver_timeout() {
    let one = one_log(navigli_entries()).await;
    // A slowish log (every second page waits 1 s), so that the first webhook send is in flight, hanging, when
    // the catch-up ends.
    one.log.set_faults(Faults {
        rate_limit_every: 2,
        retry_after_secs: 1,
        ..Faults::default()
    });
    let rx = Receiver::start().await;
    rx.fallback(Answer::Hang);
    let mut o = defaults(Duration::from_secs(600));
    o.retry.base_delay = Duration::from_millis(20);
    o.drain = Duration::from_secs(3);
    // The webhook's own request timeout is the default 20 s: longer than the whole delivery budget.
    o.sinks = vec![SinkConfig {
        name: Some("ops".into()),
        group_window_secs: Some(0),
        ..SinkConfig::for_url(SinkType::Webhook, &rx.url("/hook"))
    }];
    let (summary, took) = run_once(&one.env, &one.list, o, Duration::from_secs(120)).await;
    assert!(!rx.requests().is_empty(), "the webhook was tried");
    assert!(!summary.ok());
    assert!(
        summary
            .undelivered
            .iter()
            .any(|(s, n)| s == "ops" && *n > 0),
        "{summary:?}"
    );
    // Catch-up takes about 2 s; then at most the 3 s delivery budget (plus slack for a loaded machine), where
    // the hanging send used to hold the exit for its whole 20 s timeout on top.
    assert!(took < Duration::from_secs(14), "took {took:?}");
}
