//! The outbox worker: retry timing and give-up (paused tokio time, an in-process sink: no socket timers),
//! grouping windows, a slow target beside a healthy one, a restart in the middle of a delivery, and the
//! `--once` drain of a real pipeline run (a burst of 200 matches is ONE message; what cannot be delivered
//! stays queued and goes out with the next run).

mod common;
mod notify_support;

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Env, fast_retry, navigli_entries, once_config};
use ctwatch::notify::{
    Batching, Clock, DeliveryPolicy, Sink, SinkConfig, SinkError, SinkType, build_sinks, drain,
    http_client, run_worker,
};
use ctwatch::run::{RunOptions, RunSummary};
use ctwatch::store::{Delivery, SinkRoute, Store};
use ctwatch::tailer::StartAt;
use ctwatch::watchlist::Watchlist;
use ctwatch_fakelog::{self as fakelog, FakeLog};
use notify_support::*;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// An in-process sink that answers from a script and records when it was called with what.
struct Scripted {
    batching: Batching,
    script: Mutex<VecDeque<Result<(), SinkError>>>,
    calls: Mutex<Vec<(Instant, Vec<i64>)>>,
    called: Notify,
}

impl Scripted {
    fn new(window_secs: u64, script: Vec<Result<(), SinkError>>) -> Arc<Scripted> {
        Arc::new(Scripted {
            batching: Batching {
                window_secs,
                max_batch: 1000,
            },
            script: Mutex::new(script.into()),
            calls: Mutex::new(Vec::new()),
            called: Notify::new(),
        })
    }
    fn calls(&self) -> Vec<(Instant, Vec<i64>)> {
        self.calls.lock().unwrap().clone()
    }
    async fn wait_calls(&self, n: usize) {
        loop {
            let notified = self.called.notified();
            if self.calls.lock().unwrap().len() >= n {
                return;
            }
            notified.await;
        }
    }
}

impl Sink for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }
    fn batching(&self) -> Batching {
        self.batching
    }
    fn send<'a>(
        &'a self,
        events: &'a [Delivery],
    ) -> Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + 'a>> {
        Box::pin(async move {
            let ids = events.iter().map(|d| d.event_id).collect();
            self.calls.lock().unwrap().push((Instant::now(), ids));
            self.called.notify_waiters();
            self.script.lock().unwrap().pop_front().unwrap_or(Ok(()))
        })
    }
}

struct Worker {
    store: Arc<Store>,
    clock: Clock,
    wake: Arc<Notify>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// A worker for `sink` on an in-memory store, with a clock that follows paused tokio time.
fn start(sink: Arc<Scripted>, give_up_after: Duration) -> Worker {
    let store = Arc::new(Store::open_in_memory().unwrap());
    store.set_sink_routes(vec![SinkRoute::all("scripted")]);
    let clock = Clock::tokio();
    let policy = DeliveryPolicy {
        base_delay: Duration::from_secs(2),
        max_delay: Duration::from_secs(600),
        give_up_after,
        clock: clock.clone(),
    };
    let wake = Arc::new(Notify::new());
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(run_worker(store.clone(), sink, wake.clone(), policy, rx));
    Worker {
        store,
        clock,
        wake,
        stop,
        task,
    }
}

impl Worker {
    fn queue(&self, ev: &ctwatch::event::Event) -> i64 {
        let id = self
            .store
            .queue_event_at(ev, self.clock.now_secs())
            .unwrap();
        self.wake.notify_one();
        id
    }
    async fn stop(self) {
        let _ = self.stop.send(true);
        self.task.await.unwrap();
    }
}

fn secs(t0: Instant, t: Instant) -> f64 {
    (t - t0).as_secs_f64()
}

#[tokio::test(start_paused = true)]
async fn retries_back_off_with_jitter_then_honour_retry_after() {
    let sink = Scripted::new(
        0,
        vec![
            Err(SinkError::transient("HTTP 500")),
            Err(SinkError::transient("HTTP 500")),
            Err(SinkError::rate_limited("HTTP 429", Duration::from_secs(45))),
            Ok(()),
        ],
    );
    let t0 = Instant::now();
    let w = start(sink.clone(), Duration::from_secs(3600));
    let id = w.queue(&five_events()[0]);
    sink.wait_calls(4).await;
    let at: Vec<f64> = sink.calls().iter().map(|(t, _)| secs(t0, *t)).collect();
    // 1st retry after base 2 s x [0.5, 1) (rounded up to the second the row is due), 2nd after 4 s x [0.5, 1),
    // then exactly the 45 s the target asked for.
    assert_eq!(at[0], 0.0);
    assert!((1.0..=2.0).contains(&at[1]), "{at:?}");
    assert!((2.0..=4.0).contains(&(at[2] - at[1])), "{at:?}");
    assert_eq!(at[3] - at[2], 45.0, "{at:?}");
    assert!(sink.calls().iter().all(|(_, ids)| ids == &[id]));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let s = w.store.outbox_summary().unwrap();
    assert_eq!((s[0].delivered, s[0].pending, s[0].failed), (1, 0, 0));
    w.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_target_that_stays_down_is_given_up_on_and_the_failure_stays_visible() {
    let failures = (0..50)
        .map(|_| Err(SinkError::transient("cannot connect: connection refused")))
        .collect();
    let sink = Scripted::new(0, failures);
    let w = start(sink.clone(), Duration::from_secs(60));
    w.queue(&five_events()[0]);
    // 0, ~1-2, ~3-6, ~7-14, ~15-30, ~31-62: the attempt whose retry would fall after 60 s is the last.
    tokio::time::sleep(Duration::from_secs(600)).await;
    let calls = sink.calls().len();
    assert!((5..=6).contains(&calls), "{calls} attempts");
    let items = w.store.undelivered(None, 10).unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].status, "failed");
    assert_eq!(items[0].attempts as usize, calls);
    assert_eq!(
        items[0].last_error.as_deref(),
        Some("cannot connect: connection refused")
    );
    // Given up: no more attempts.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(sink.calls().len(), calls);
    w.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_group_goes_out_when_its_window_closes_and_a_lone_event_waits_at_most_the_window() {
    let sink = Scripted::new(30, vec![]);
    let t0 = Instant::now();
    let w = start(sink.clone(), Duration::from_secs(3600));
    let evs = five_events();
    // 200 events of one group over 20 s, and one of another group at 5 s.
    let mut ids = vec![w.queue(&evs[0])];
    for i in 1..200 {
        if i == 50 {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        if i % 10 == 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        ids.push(w.queue(&evs[0]));
    }
    let lone = w.queue(&evs[1]);
    sink.wait_calls(1).await;
    let calls = sink.calls();
    assert_eq!(secs(t0, calls[0].0), 30.0);
    assert_eq!(calls[0].1, ids, "the whole burst in one send");
    sink.wait_calls(2).await;
    let calls = sink.calls();
    assert_eq!(calls[1].1, [lone]);
    assert_eq!(
        secs(t0, calls[1].0),
        24.0 + 30.0,
        "queued at 24 s, sent when its own window closed"
    );
    // A later event of the first group opens a new window.
    let late = w.queue(&evs[0]);
    sink.wait_calls(3).await;
    assert_eq!(sink.calls()[2].1, [late]);
    assert_eq!(secs(t0, sink.calls()[2].0), 54.0 + 30.0);
    w.stop().await;
}

fn http_sinks(cfgs: Vec<SinkConfig>, store: &Store) -> Vec<Arc<dyn Sink>> {
    let built = build_sinks(&cfgs, http_client().unwrap()).unwrap();
    store.set_sink_routes(built.iter().map(|(_, r)| r.clone()).collect());
    built.into_iter().map(|(s, _)| s).collect()
}

fn webhook(name: &str, url: String, timeout_secs: u64) -> SinkConfig {
    SinkConfig {
        name: Some(name.into()),
        group_window_secs: Some(0),
        timeout_secs: Some(timeout_secs),
        ..SinkConfig::for_url(SinkType::Webhook, &url)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_target_does_not_hold_up_another_sink() {
    let slow = Receiver::start().await;
    slow.fallback(Answer::Hang);
    let fast = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("db")).unwrap());
    let sinks = http_sinks(
        vec![
            webhook("slow", slow.url("/"), 30),
            webhook("fast", fast.url("/"), 30),
        ],
        &store,
    );
    let (stop, rx) = watch::channel(false);
    let mut wakes = Vec::new();
    let mut tasks = Vec::new();
    for s in &sinks {
        let n = Arc::new(Notify::new());
        wakes.push(n.clone());
        tasks.push(tokio::spawn(run_worker(
            store.clone(),
            s.clone(),
            n,
            DeliveryPolicy::default(),
            rx.clone(),
        )));
    }
    let started = std::time::Instant::now();
    for ev in &five_events() {
        store.queue_event(ev).unwrap();
        wakes.iter().for_each(|n| n.notify_one());
    }
    fast.wait_for(5, Duration::from_secs(5)).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // The slow sink's first request may reach its receiver after the fast sink finished (a loaded machine): wait
    // for it, then check that it is still the only one (hanging, not retried or doubled).
    slow.wait_for(1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        slow.requests().len(),
        1,
        "the slow sink is still on its first request"
    );
    let _ = stop.send(true);
    for t in tasks {
        t.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_in_the_middle_of_a_delivery_loses_nothing() {
    let rx = Receiver::start().await;
    rx.script([Answer::Hang]);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ctwatch.db");
    let cfg = || webhook("ops", rx.url("/hook"), 30);
    {
        let store = Arc::new(Store::open(&db).unwrap());
        let sinks = http_sinks(vec![cfg()], &store);
        store.queue_event(&five_events()[2]).unwrap();
        let (_stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run_worker(
            store.clone(),
            sinks[0].clone(),
            Arc::new(Notify::new()),
            DeliveryPolicy::default(),
            stop_rx,
        ));
        rx.wait_for(1, Duration::from_secs(5)).await;
        // The process dies while the target holds the request: nothing was marked.
        task.abort();
        let _ = task.await;
        assert_eq!(store.outbox_summary().unwrap()[0].pending, 1);
    }
    let store = Arc::new(Store::open(&db).unwrap());
    let sinks = http_sinks(vec![cfg()], &store);
    let left = drain(
        &store,
        &sinks,
        &DeliveryPolicy::default(),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(left, [("ops".to_string(), 0)]);
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].answered, Some(200));
    // The same message: a receiver that de-duplicates on webhook-id sees it once.
    assert_eq!(reqs[0].header("webhook-id"), reqs[1].header("webhook-id"));
    assert_eq!(reqs[0].body, reqs[1].body);
    assert_eq!(store.outbox_summary().unwrap()[0].delivered, 1);
}

/// `ctwatch run --once` in-process with the given sinks.
async fn run_once(
    env: &Env,
    log: &Arc<FakeLog>,
    url: &str,
    watch: &str,
    cfgs: Vec<SinkConfig>,
    drain_secs: u64,
) -> RunSummary {
    let list_path = env.write_log_list(&[(log, url)]);
    let list = ctwatch::ct::loglist::parse(&std::fs::read(list_path).unwrap()).unwrap();
    let sinks = build_sinks(&cfgs, http_client().unwrap()).unwrap();
    let opts = RunOptions {
        log_list: list,
        log_list_source: None,
        log_list_refresh: Duration::from_secs(3600),
        watchlist: Watchlist::parse_str("watch.txt", watch).unwrap(),
        watchlist_path: None,
        store: env.store.clone(),
        tail: once_config(StartAt::Beginning),
        retry: fast_retry(),
        page_size: 256,
        sinks,
        delivery: DeliveryPolicy {
            base_delay: Duration::from_millis(200),
            ..DeliveryPolicy::default()
        },
        drain_timeout: Duration::from_secs(drain_secs),
        filter: Default::default(),
        registry: Default::default(),
        service: Default::default(),
        probe: None,
    };
    let (_tx, rx) = watch::channel(false);
    ctwatch::run::run(opts, rx).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_200_matches_is_one_discord_message() {
    let log = FakeLog::new(navigli_entries()[..200].to_vec());
    let (url, _srv) = fakelog::serve(log.clone()).await.unwrap();
    let rx = Receiver::start().await;
    rx.fallback(Answer::status(204, ""));
    let env = Env::new();
    let discord = SinkConfig {
        name: Some("chat".into()),
        ..SinkConfig::for_url(SinkType::Discord, &rx.url("/api/webhooks/1/t"))
    };
    // Every certificate matches; the tag makes them one group.
    let summary = run_once(&env, &log, &url, "@burst\n/./\n", vec![discord], 20).await;
    assert!(summary.ok(), "{summary:?}");
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 1, "one message for the burst");
    let embed = &reqs[0].json()["embeds"][0];
    assert_eq!(embed["title"], "200 new certificates: burst");
    let lines: Vec<&str> = embed["description"].as_str().unwrap().lines().collect();
    assert_eq!(lines.len(), 11);
    assert!(lines[0].starts_with("• `*.gated.dev-euw1.x0a839b.drive-platform.io` (+7 names), issuer (STAGING) Counterfeit Cashew R10"), "{}", lines[0]);
    assert_eq!(lines[10], "… and 190 more");
    let s = env.store.outbox_summary().unwrap();
    assert_eq!((s[0].delivered, s[0].pending), (200, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_reports_what_stays_queued_and_the_next_run_sends_it_exactly_once() {
    let log = FakeLog::new(navigli_entries());
    let (url, _srv) = fakelog::serve(log.clone()).await.unwrap();
    let rx = Receiver::start().await;
    rx.stop();
    let env = Env::new();
    let hook = || SinkConfig {
        name: Some("ops".into()),
        ..SinkConfig::for_url(SinkType::Webhook, &rx.url("/hook"))
    };
    // 61 matches (certspotter's count for this watchlist, see tests/pipeline.rs); the target is down.
    let first = run_once(&env, &log, &url, "mexi.my\nnip.io\n", vec![hook()], 2).await;
    assert!(!first.ok());
    assert_eq!(first.undelivered, [("ops".to_string(), 61)]);
    rx.restart().await;
    let second = run_once(&env, &log, &url, "mexi.my\nnip.io\n", vec![hook()], 20).await;
    assert!(second.ok(), "{second:?}");
    assert_eq!(second.undelivered, [("ops".to_string(), 0)]);
    // Two groups (one per watch item), every certificate exactly once.
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 2);
    let mut tbs: Vec<String> = reqs
        .iter()
        .flat_map(|r| r.json()["events"].as_array().unwrap().clone())
        .map(|e| e["tbs_sha256"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(tbs.len(), 61);
    tbs.sort();
    tbs.dedup();
    assert_eq!(tbs.len(), 61);
    let keys: Vec<String> = reqs
        .iter()
        .map(|r| r.json()["group_key"].as_str().unwrap().to_string())
        .collect();
    assert!(
        keys.contains(&"new_certificate|mexi.my".to_string())
            && keys.contains(&"new_certificate|nip.io".to_string()),
        "{keys:?}"
    );
}
