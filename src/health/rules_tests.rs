use super::*;

const T0: i64 = 1_750_000_000;

fn log(url: &str, last_success: i64) -> LogSample {
    LogSample {
        url: url.into(),
        last_success,
        ..Default::default()
    }
}

fn cfg() -> HealthConfig {
    HealthConfig {
        log_silence_secs: 900,
        sink_failing_secs: 3600,
        backlog_growth_checks: 3,
        ..HealthConfig::default()
    }
}

fn checks(alerts: &[Alert]) -> Vec<(AlertState, &'static str, String)> {
    alerts
        .iter()
        .map(|a| (a.state, a.problem.check, a.problem.subject.clone()))
        .collect()
}

#[test]
fn a_log_is_silent_only_past_the_threshold() {
    let t = HealthThresholds::default();
    let logs = [log("https://a/", T0 - 900), log("https://b/", T0 - 901)];
    let p = assess(T0, T0 - 5000, &logs, &[], &t);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].check, "log_silent");
    assert_eq!(p[0].subject, "https://b/");
    assert_eq!(p[0].since, Some(T0 - 901));
    assert_eq!(
        p[0].message,
        "no successful contact with https://b/ for 15m 01s (threshold 15m 00s)"
    );
}

#[test]
fn a_log_never_contacted_counts_from_process_start() {
    let t = HealthThresholds::default();
    let logs = [log("https://a/", 0)];
    assert!(assess(T0, T0 - 600, &logs, &[], &t).is_empty());
    let p = assess(T0, T0 - 3700, &logs, &[], &t);
    assert_eq!(p[0].since, Some(T0 - 3700));
    assert!(
        p[0].message.contains("since start 1h 01m ago"),
        "{}",
        p[0].message
    );
}

#[test]
fn a_sink_fails_only_past_its_threshold_and_no_logs_is_a_problem() {
    let t = HealthThresholds::default();
    let sinks = [
        SinkFailure {
            sink: "hook".into(),
            failing_since: T0 - 3601,
            deliveries: 4,
            last_error: Some("HTTP 502".into()),
        },
        SinkFailure {
            sink: "slack".into(),
            failing_since: T0 - 60,
            deliveries: 1,
            last_error: None,
        },
    ];
    let p = assess(T0, T0, &[], &sinks, &t);
    let got: Vec<_> = p.iter().map(|p| (p.check, p.subject.as_str())).collect();
    assert_eq!(got, [("no_logs", ""), ("sink_failing", "hook")]);
    assert_eq!(
        p[1].message,
        "sink hook has failed to deliver 4 notification(s) for 1h 00m: HTTP 502"
    );
}

#[test]
fn silence_fires_once_and_resolves_once() {
    let mut book = AlertBook::default();
    let c = cfg();
    let start = T0;
    let mut now = T0;
    let mut all = Vec::new();
    // Contact at T0, then silence for 20 checks a minute apart, then contact again.
    for _ in 0..20 {
        now += 60;
        all.extend(book.step(now, start, &[log("https://a/", T0)], &[], &c));
    }
    assert_eq!(
        checks(&all),
        [(AlertState::Firing, "log_silent", "https://a/".into())]
    );
    now += 60;
    let back = book.step(now, start, &[log("https://a/", now - 5)], &[], &c);
    assert_eq!(
        checks(&back),
        [(AlertState::Resolved, "log_silent", "https://a/".into())]
    );
    assert_eq!(
        back[0].problem.message,
        "https://a/ answers again after 21m 00s"
    );
    assert!(
        book.step(now + 60, start, &[log("https://a/", now)], &[], &c)
            .is_empty()
    );
}

#[test]
fn a_backlog_that_keeps_growing_fires_and_resolves_when_we_gain() {
    let mut book = AlertBook::default();
    let c = cfg(); // 3 checks
    let sample = |backlog| LogSample {
        url: "https://a/".into(),
        last_success: T0,
        backlog,
        ..Default::default()
    };
    let mut fired = Vec::new();
    for (i, b) in [100, 150, 150, 90, 200, 300, 300].into_iter().enumerate() {
        fired.push(book.step(T0 + i as i64, T0, &[sample(b)], &[], &c));
    }
    // Windows of 4 samples: [100,150,150,90] shrank; [150,150,90,200] shrank; [150,90,200,300] shrank;
    // [90,200,300,300] grew without shrinking: fires at the 7th check.
    assert!(fired[..6].iter().all(Vec::is_empty), "{fired:?}");
    assert_eq!(
        checks(&fired[6]),
        [(AlertState::Firing, "backlog_growing", "https://a/".into())]
    );
    assert!(
        fired[6][0]
            .problem
            .message
            .contains("grew from 90 to 300 entries over the last 3 checks")
    );
    // Still at or above 300: holds. Below 300: resolved.
    assert!(book.step(T0 + 10, T0, &[sample(310)], &[], &c).is_empty());
    let r = book.step(T0 + 11, T0, &[sample(299)], &[], &c);
    assert_eq!(
        checks(&r),
        [(AlertState::Resolved, "backlog_growing", "https://a/".into())]
    );
}

#[test]
fn misbehaviour_fires_on_new_errors_and_resolves_after_progress() {
    let mut book = AlertBook::default();
    let c = cfg();
    let sample = |misbehaviour, verified| LogSample {
        url: "https://a/".into(),
        last_success: T0,
        misbehaviour,
        verified,
        ..Default::default()
    };
    assert!(book.step(T0, T0, &[sample(0, 1000)], &[], &c).is_empty());
    let f = book.step(T0 + 60, T0, &[sample(2, 1000)], &[], &c);
    assert_eq!(
        checks(&f),
        [(AlertState::Firing, "log_misbehaving", "https://a/".into())]
    );
    assert!(
        f[0].problem.message.contains("(2 new root mismatch"),
        "{}",
        f[0].problem.message
    );
    // No new error but no progress either: holds. Another error: holds (no second alert).
    assert!(
        book.step(T0 + 120, T0, &[sample(2, 1000)], &[], &c)
            .is_empty()
    );
    assert!(
        book.step(T0 + 180, T0, &[sample(3, 1000)], &[], &c)
            .is_empty()
    );
    // Progress past the mark: resolved.
    let r = book.step(T0 + 240, T0, &[sample(3, 1500)], &[], &c);
    assert_eq!(
        checks(&r),
        [(AlertState::Resolved, "log_misbehaving", "https://a/".into())]
    );
    assert_eq!(
        r[0].problem.message,
        "https://a/ verifies again after 3m 00s"
    );
}

#[test]
fn a_log_that_leaves_the_list_resolves_its_incidents() {
    let mut book = AlertBook::default();
    let c = cfg();
    let f = book.step(T0 + 1000, T0, &[log("https://a/", T0)], &[], &c);
    assert_eq!(f.len(), 1);
    let r = book.step(T0 + 1060, T0, &[log("https://b/", T0 + 1050)], &[], &c);
    assert_eq!(
        checks(&r),
        [(AlertState::Resolved, "log_silent", "https://a/".into())]
    );
}

#[test]
fn heartbeat_every_period_with_entries_processed_since_the_last() {
    let mut book = AlertBook::default();
    let c = HealthConfig {
        heartbeat_hours: 24,
        ..cfg()
    };
    let sample = |processed, last| LogSample {
        url: "https://a/".into(),
        last_success: last,
        processed,
        ..Default::default()
    };
    let day = 86_400;
    assert!(
        book.step(T0 + day - 1, T0, &[sample(500, T0 + day - 2)], &[], &c)
            .is_empty()
    );
    let h = book.step(T0 + day, T0, &[sample(700, T0 + day - 1)], &[], &c);
    assert_eq!(
        checks(&h),
        [(AlertState::Notice, "heartbeat", String::new())]
    );
    assert_eq!(
        h[0].problem.message,
        "alive: 1 logs followed, 700 certificates processed in the last 24h 00m, 0 open problem(s)"
    );
    assert!(
        book.step(T0 + day + 60, T0, &[sample(800, T0 + day + 59)], &[], &c)
            .is_empty()
    );
    let h = book.step(T0 + 2 * day, T0, &[sample(1000, T0 + 2 * day)], &[], &c);
    assert!(
        h[0].problem.message.contains("300 certificates processed"),
        "{h:?}"
    );
    // Off by default.
    let mut quiet = AlertBook::default();
    assert!(
        quiet
            .step(
                T0 + 5 * day,
                T0,
                &[log("https://a/", T0 + 5 * day)],
                &[],
                &cfg()
            )
            .is_empty()
    );
}

#[test]
fn alert_events_carry_state_severity_and_group_key() {
    let alert = Alert {
        state: AlertState::Firing,
        problem: Problem {
            check: "log_silent",
            subject: "https://a/".into(),
            message: "m".into(),
            since: Some(0),
        },
    };
    let ev = crate::health::alert_event(&alert, 60);
    assert_eq!(ev.kind, "health");
    assert_eq!(ev.group_key, "health|log_silent|https://a/");
    assert_eq!(
        ev.payload,
        serde_json::json!({
            "version": 1, "kind": "health", "check": "log_silent", "state": "firing", "severity": "critical",
            "subject": "https://a/", "message": "m", "since": "1970-01-01T00:00:00Z", "at": "1970-01-01T00:01:00Z"
        })
    );
    assert_eq!(crate::event::human_line(&ev.payload), "[health] m");
}

#[test]
fn a_log_failing_verification_is_a_problem_until_it_verifies() {
    let failing = LogSample {
        failing_verification: Some((
            T0 - 30,
            "https://a/: ROOT MISMATCH: entries up to 768 ...".into(),
        )),
        ..log("https://a/", T0)
    };
    let t = cfg().thresholds();
    let problems = assess(T0, T0, std::slice::from_ref(&failing), &[], &t);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].check, "log_misbehaving");
    assert_eq!(problems[0].since, Some(T0 - 30));
    assert!(
        problems[0]
            .message
            .contains("fails verification since 30s ago"),
        "{}",
        problems[0].message
    );
    assert!(assess(T0, T0, &[log("https://a/", T0)], &[], &t).is_empty());
    // The alert book fires it once, under the same key as the misbehaviour counter (no duplicate alert).
    let mut book = AlertBook::default();
    let sample = LogSample {
        misbehaviour: 1,
        ..failing
    };
    let fired = book.step(T0, T0, std::slice::from_ref(&sample), &[], &cfg());
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert!(book.step(T0 + 60, T0, &[sample], &[], &cfg()).is_empty());
}

#[test]
fn a_growing_backlog_names_its_likely_cause() {
    let traffic = |requests, rate_limited, server_errors, window| Traffic {
        requests,
        rate_limited,
        server_errors,
        transport_errors: 0,
        window,
        max_window: 32,
    };
    assert!(
        traffic(1000, 40, 0, 3)
            .likely_cause()
            .starts_with("rate limited (40 of 1000")
    );
    assert!(
        traffic(1000, 0, 80, 3)
            .likely_cause()
            .starts_with("errors (80 server errors")
    );
    assert!(
        traffic(1000, 0, 0, 32)
            .likely_cause()
            .starts_with("slow answers (32 requests")
    );
    assert!(
        traffic(1000, 0, 0, 5)
            .likely_cause()
            .starts_with("local processing")
    );

    let c = cfg();
    let mut book = AlertBook::default();
    let sample = |backlog| LogSample {
        url: "https://a/".into(),
        last_success: T0,
        backlog,
        lag_secs: 125,
        traffic: traffic(500, 50, 0, 2),
        ..Default::default()
    };
    let mut fired = Vec::new();
    for (i, b) in [100, 200, 300, 400, 500].into_iter().enumerate() {
        fired.extend(book.step(T0 + i as i64, T0, &[sample(b)], &[], &c));
    }
    let msg = fired
        .iter()
        .find(|a| a.problem.check == "backlog_growing")
        .map(|a| a.problem.message.clone())
        .expect("backlog_growing fired");
    assert!(msg.contains("lag 2m 05s"), "{msg}");
    assert!(
        msg.contains("likely cause: rate limited (50 of 500 requests answered 429)"),
        "{msg}"
    );
}

#[test]
fn a_standby_instance_of_a_shared_database_follows_no_log_without_a_problem() {
    use std::sync::atomic::Ordering::Relaxed;
    let lease = crate::lease::LeaseStats::default();
    let _ = lease.instance_id.set("eu-2".into());
    lease.wanted.store(3, Relaxed);
    lease.last_heartbeat_unix.store(T0 as u64 - 2, Relaxed);
    let t = HealthConfig::default().thresholds();
    let mut problems = assess(T0, T0 - 600, &[], &[], &t);
    assert_eq!(problems[0].check, "no_logs");
    let view = SharedView::of(&lease, T0, T0 - 600).unwrap();
    assert!(view.standby);
    view.apply(&mut problems, T0);
    assert!(problems.is_empty(), "{problems:?}");
    // Alone (no instance ID): no view, `no_logs` stays a problem.
    assert!(SharedView::of(&crate::lease::LeaseStats::default(), T0, T0).is_none());
}

#[test]
fn a_stale_heartbeat_in_the_shared_database_is_a_problem() {
    use std::sync::atomic::Ordering::Relaxed;
    let lease = crate::lease::LeaseStats::default();
    let _ = lease.instance_id.set("eu-2".into());
    lease.last_heartbeat_unix.store(T0 as u64 - 300, Relaxed);
    let view = SharedView::of(&lease, T0, T0 - 3600).unwrap();
    assert!(!view.standby, "nothing wanted yet: not a standby");
    let mut problems = Vec::new();
    view.apply(&mut problems, T0);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].check, "lease_heartbeat");
    assert_eq!(problems[0].since, Some(T0 - 300));
    assert!(
        problems[0].message.contains("for 5m 00s:"),
        "{}",
        problems[0].message
    );
}
