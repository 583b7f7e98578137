//! `ctwatch db migrate-to`: a SQLite database filled by a real run (plus probe history, findings, CAA checks,
//! pauses and a pending delivery) is copied into a fresh PostgreSQL database, killed half-way and resumed; the
//! copy answers every read exactly as the original does, and new ids continue after the copied ones.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::pg::TestDb;
use common::*;
use ctwatch::event::Event;
use ctwatch::probe::HostReport;
use ctwatch::probe::target::Target;
use ctwatch::store::{CaaRecordRow, ProbeRecord, SinkRoute, Store};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_ctwatch");

fn migrate(sqlite: &Path, url: &str) -> Command {
    let mut c = Command::new(BIN);
    c.args(["db", "migrate-to", url, "--chunk-rows", "7", "--db"])
        .arg(sqlite)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Everything the read paths show, as JSON, to compare two stores.
fn snapshot(store: &Store) -> serde_json::Value {
    let logs: Vec<_> = store
        .list_logs()
        .unwrap()
        .into_iter()
        .map(|mut l| {
            l.lag_secs = None;
            l
        })
        .collect();
    let positions: Vec<String> = logs
        .iter()
        .map(|l| {
            let id: [u8; 32] = base64_decode(&l.log_id).try_into().unwrap();
            let p = store.log_position(&id).unwrap().unwrap();
            format!("{} {}", p.tree.size(), hex::encode(p.tree.root()))
        })
        .collect();
    let status: Vec<_> = store.probe_status(None).unwrap();
    json!({
        "logs": logs,
        "positions": positions,
        "search": store.search("mexi.my", 10_000).unwrap(),
        "search_nip": store.search("nip.io", 10_000).unwrap(),
        "undelivered": store.undelivered(None, 10_000).unwrap(),
        "summary": store.outbox_summary().unwrap(),
        "events": store.events_since(0).unwrap(),
        "last_event": store.last_event_id().unwrap(),
        "probe": status,
        "findings": store.expiry_findings(Some(0)).unwrap(),
        "pauses": store.sink_pauses().unwrap(),
        "caa": store.caa_verdict(&[0x11; 32]).unwrap().map(|(v, d)| json!([v, d])),
        "fact": store.fact("log_list").unwrap(),
    })
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn report(domain: &str) -> HostReport {
    serde_json::from_value(json!({
        "domain": domain, "port": 443, "status": "ok", "level": "OK", "days_left": 40,
        "not_before": "2025-06-01T00:00:00Z", "not_after": "2025-09-01T00:00:00Z", "issuer": "CN=R11",
        "subject": null, "sans": [domain], "cert_sha256": "aa", "tbs_sha256": "bb", "seen_in_ct": false,
        "problems": [], "error": null, "addresses": [], "probed_at": "2025-06-15T14:13:20Z", "duration_ms": 12
    }))
    .unwrap()
}

/// The extras a run with the probe and CAA checks would have left.
fn add_extras(store: &Store) {
    store.set_sink_routes(vec![SinkRoute::all("chat")]);
    store
        .queue_event(&Event {
            kind: "test".into(),
            group_key: "g".into(),
            tags: vec![],
            payload: json!({"pending": true}),
        })
        .unwrap();
    store.pause_sink("chat", "HTTP 404", 1000).unwrap();
    let t = Target::new("www.example.com", 443).unwrap();
    store.add_probe_target(&t, &["ops".into()], 10).unwrap();
    let r = report("www.example.com");
    let finding = ctwatch::store::FindingRecord {
        finding: serde_json::from_value(json!({
            "kind": "renewal_missing",
            "served": {"cert_sha256": "aa", "tbs_sha256": null, "names": ["www.example.com"], "issuer": null,
                       "not_before": 0, "not_after": 100, "seen_in_ct": null, "addresses": []},
            "newer": null, "renewal_due_at": 50
        }))
        .unwrap(),
        event: Event {
            kind: "expiry".into(),
            group_key: "g".into(),
            tags: vec![],
            payload: json!({}),
        },
    };
    store
        .record_probe(&ProbeRecord {
            report: &r,
            probed_at: 2000,
            consecutive_failures: 0,
            snapshot: None,
            next_probe_at: 9000,
            event: None,
            findings: Some(&[finding]),
        })
        .unwrap();
    let cert_id = store.caa_candidates(0, i64::MAX, 1).unwrap()[0].cert_id;
    let detail = json!({"names": {}});
    store
        .record_caa_check(&CaaRecordRow {
            cert_id,
            verdict: "allowed",
            detail: &detail,
            checked_at: 3000,
            attempts: 1,
            next_check_at: None,
            event: None,
        })
        .unwrap();
    store.set_fact("log_list", "navigli").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_to_copies_everything_resumably() {
    let OneLog { env, list, .. } = one_log(navigli_entries()).await;
    let watch = env.write_watchlist("mexi.my\nnip.io\n");
    let out = Command::new(BIN)
        .args([
            "run",
            "--once",
            "--json",
            "--start-at",
            "beginning",
            "--no-probe",
            "--log-list",
        ])
        .arg(&list)
        .arg("--watchlist")
        .arg(&watch)
        .arg("--db")
        .arg(env.db_path())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    add_extras(&env.store);
    let want = snapshot(&env.store);
    assert!(want["search"].as_array().unwrap().len() > 10);

    let db = TestDb::new();
    // Interrupted copy: killed as soon as some chunks are in.
    let mut child = migrate(&env.db_path(), &db.url).spawn().unwrap();
    let started = Instant::now();
    loop {
        let table_ready =
            !common::pg::query_strings(&db.url, "SELECT to_regclass('sqlite_import')::text")
                .is_empty();
        let copied = table_ready
            && common::pg::query_strings(
                &db.url,
                "SELECT rows::text FROM sqlite_import WHERE tbl = 'certificates'",
            )
            .first()
            .is_some_and(|n| n != "0");
        if copied || started.elapsed() > Duration::from_secs(60) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    let killed = child.wait_with_output().unwrap();
    assert!(
        !killed.status.success(),
        "the copy finished before the kill: nothing resumed"
    );

    // Resumed copy, then a repeat that must change nothing.
    for _ in 0..2 {
        let out = migrate(&env.db_path(), &db.url).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("certificates"));
    }
    let pg = Store::open(Path::new(&db.url)).unwrap();
    let got = snapshot(&pg);
    for key in want.as_object().unwrap().keys() {
        assert_eq!(got[key], want[key], "{key} differs after the copy");
    }
    // New rows get ids after the copied ones.
    pg.set_sink_routes(vec![SinkRoute::all("chat")]);
    let id = pg
        .queue_event(&Event {
            kind: "test".into(),
            group_key: "g".into(),
            tags: vec![],
            payload: json!({}),
        })
        .unwrap();
    assert_eq!(id, want["last_event"].as_i64().unwrap() + 1);
    drop(pg);
}

#[test]
fn migrate_to_refuses_a_database_holding_other_data() {
    let env = Env::new();
    let db = TestDb::new();
    let other = Store::open(Path::new(&db.url)).unwrap();
    other
        .upsert_log(&ctwatch::store::LogMeta {
            log_id: [1; 32],
            url: "https://other.example/".into(),
            kind: "rfc6962",
            description: String::new(),
            operator: String::new(),
            state: String::new(),
        })
        .unwrap();
    drop(other);
    let out = migrate(&env.db_path(), &db.url).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("migrate into an empty database"), "{err}");
}
