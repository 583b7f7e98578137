use super::*;

fn snapshot() -> Snapshot {
    Snapshot {
        version: "0.1.0".into(),
        start_time: 1_750_000_000.5,
        logs: vec![LogFigures {
            url: "https://ct.example/log\"1\"\\x\n".into(),
            kind: "rfc6962".into(),
            operator: "Example Op".into(),
            verified: 1024,
            head: 1500,
            backlog: 476,
            last_success: 1_750_000_100,
            processed: 1024,
            downloaded: 1100,
            malformed: 2,
            errors: [("transport".to_string(), 3)].into_iter().collect(),
            lag_secs: 12.5,
            window: 7,
            requests: 420,
            rate_limited: 9,
            server_errors: 2,
            transport_errors: 1,
            retries: 12,
            bytes: 123_456,
            stream_lag: Some(24),
        }],
        events: [
            ("health".to_string(), 2),
            ("new_certificate".to_string(), 61),
        ]
        .into_iter()
        .collect(),
        outbox: vec![OutboxSummary {
            sink: "stdout".into(),
            pending: 1,
            failed: 0,
            delivered: 62,
        }],
        probes: Some(vec![ProbeSample {
            domain: "a.example".into(),
            status: "expired".into(),
            not_after: Some(1_735_689_600),
            probed_at: Some(1_750_000_000),
        }]),
        hosts: vec![
            HostGauge {
                host: "a.example".into(),
                tags: vec!["client-a".into(), "vip".into()],
                days_left: Some(-3),
                level: crate::probe::Level::Critical,
                stale_deployment: false,
            },
            HostGauge {
                host: "b.example:8443".into(),
                tags: vec![],
                days_left: Some(40),
                level: crate::probe::Level::Ok,
                stale_deployment: true,
            },
            HostGauge {
                host: "mail.example".into(),
                tags: vec![],
                days_left: None,
                level: crate::probe::Level::Critical,
                stale_deployment: false,
            },
        ],
        stream: None,
        lease: Some(LeaseFigures {
            instance: "host-a-123-0000abcd".into(),
            owned: 3,
            wanted: 7,
            live_instances: 3,
            acquired: 4,
            released: 1,
            lost: 0,
            round_errors: 0,
            last_heartbeat: 1_750_000_200,
        }),
    }
}

#[test]
fn stream_families_only_with_a_stream() {
    assert!(!render(&snapshot()).contains("ctwatch_stream_"));
    let snap = Snapshot {
        stream: Some(StreamFigures {
            published: 5000,
            duplicates: 12,
            errors: 3,
            per_sec: 812.5,
            queued_batches: 2,
            backpressure_secs: 1.25,
            failing: true,
        }),
        ..snapshot()
    };
    let text = render(&snap);
    for line in [
        "ctwatch_stream_published_messages_total 5000",
        "ctwatch_stream_published_messages_per_second 812.5",
        "ctwatch_stream_duplicate_messages_total 12",
        "ctwatch_stream_publish_errors_total 3",
        "ctwatch_stream_queued_batches 2",
        "ctwatch_stream_backpressure_seconds_total 1.25",
        "ctwatch_stream_failing 1",
        "# TYPE ctwatch_stream_lag_entries gauge",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing in:\n{text}"
        );
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("ctwatch_stream_lag_entries{") && l.ends_with("} 24")),
        "{text}"
    );
}

#[test]
fn exact_lines_with_escaped_labels() {
    let text = render(&snapshot());
    let label = r#"log="https://ct.example/log\"1\"\\x\n",kind="rfc6962",operator="Example Op""#;
    for line in [
        "# HELP ctwatch_build_info Always 1; the version of ctwatch in a label.".to_string(),
        "# TYPE ctwatch_build_info gauge".to_string(),
        "ctwatch_build_info{version=\"0.1.0\"} 1".to_string(),
        "ctwatch_process_start_time_seconds 1750000000.5".to_string(),
        "ctwatch_logs_followed 1".to_string(),
        format!("ctwatch_log_verified_size{{{label}}} 1024"),
        format!("ctwatch_log_head_size{{{label}}} 1500"),
        format!("ctwatch_log_backlog_entries{{{label}}} 476"),
        format!("ctwatch_log_last_success_timestamp_seconds{{{label}}} 1750000100"),
        "# TYPE ctwatch_log_entries_processed_total counter".to_string(),
        format!("ctwatch_log_entries_processed_total{{{label}}} 1024"),
        format!("ctwatch_log_errors_total{{{label},error=\"transport\"}} 3"),
        format!("ctwatch_log_lag_seconds{{{label}}} 12.5"),
        format!("ctwatch_log_requests_in_flight_limit{{{label}}} 7"),
        format!("ctwatch_log_http_requests_total{{{label}}} 420"),
        format!("ctwatch_log_http_rate_limited_total{{{label}}} 9"),
        format!("ctwatch_log_http_server_errors_total{{{label}}} 2"),
        format!("ctwatch_log_http_transport_errors_total{{{label}}} 1"),
        format!("ctwatch_log_http_retries_total{{{label}}} 12"),
        format!("ctwatch_log_http_received_bytes_total{{{label}}} 123456"),
        "ctwatch_events_total{kind=\"new_certificate\"} 61".to_string(),
        "ctwatch_outbox_pending{sink=\"stdout\"} 1".to_string(),
        "ctwatch_outbox_failed{sink=\"stdout\"} 0".to_string(),
        "ctwatch_outbox_delivered_total{sink=\"stdout\"} 62".to_string(),
        "ctwatch_cert_expiry_timestamp_seconds{domain=\"a.example\"} 1735689600".to_string(),
        "ctwatch_probe_status{domain=\"a.example\",status=\"expired\"} 1".to_string(),
        "ctwatch_probe_days_left{host=\"a.example\",tag=\"client-a\"} -3".to_string(),
        "ctwatch_probe_days_left{host=\"a.example\",tag=\"vip\"} -3".to_string(),
        "ctwatch_probe_days_left{host=\"b.example:8443\",tag=\"\"} 40".to_string(),
        "ctwatch_probe_level{host=\"a.example\",tag=\"vip\"} 2".to_string(),
        "ctwatch_probe_level{host=\"b.example:8443\",tag=\"\"} 0".to_string(),
        "ctwatch_probe_level{host=\"mail.example\",tag=\"\"} 2".to_string(),
        "ctwatch_probe_stale_deployment{host=\"a.example\"} 0".to_string(),
        "ctwatch_probe_stale_deployment{host=\"b.example:8443\"} 1".to_string(),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    // Every family has exactly one HELP and one TYPE line.
    let types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE ")).collect();
    let mut names: Vec<&str> = types.iter().map(|l| l.split(' ').nth(2).unwrap()).collect();
    let n = names.len();
    names.dedup();
    assert_eq!(names.len(), n);
    assert_eq!(text.lines().filter(|l| l.starts_with("# HELP ")).count(), n);
}

#[test]
fn no_probe_families_without_probe_results() {
    let snap = Snapshot {
        probes: None,
        hosts: vec![],
        ..snapshot()
    };
    assert!(!render(&snap).contains("ctwatch_cert_expiry"));
    assert!(!render(&snap).contains("ctwatch_probe_days_left"));
}

#[test]
fn parses_with_a_prometheus_parser() {
    let mut snap = snapshot();
    snap.logs[0].url = "https://ct.example/log/".into();
    let text = render(&snap);
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
    let verified = scrape
        .samples
        .iter()
        .find(|s| s.metric == "ctwatch_log_verified_size")
        .unwrap();
    assert_eq!(verified.labels.get("operator"), Some("Example Op"));
    assert!(matches!(verified.value, prometheus_parse::Value::Gauge(v) if v == 1024.0));
    let stale: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "ctwatch_probe_stale_deployment")
        .collect();
    assert_eq!(stale.len(), 3);
}

#[test]
fn lease_figures_name_the_instance() {
    let text = render(&snapshot());
    assert!(
        text.contains("ctwatch_lease_owned_logs{instance_id=\"host-a-123-0000abcd\"} 3\n"),
        "{text}"
    );
    assert!(text.contains("ctwatch_lease_live_instances{instance_id=\"host-a-123-0000abcd\"} 3\n"));
    let single = Snapshot {
        lease: Some(LeaseFigures {
            owned: 2,
            wanted: 2,
            live_instances: 1,
            ..LeaseFigures::default()
        }),
        ..snapshot()
    };
    assert!(render(&single).contains("ctwatch_lease_owned_logs 2\n"));
}
