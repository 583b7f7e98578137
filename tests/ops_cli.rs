//! The real binary, operational edges: the API refuses to start key-less on a non-loopback address, and
//! `config check` validates API keys exactly as `run` does; one writer per database (a second `run` exits 3 at
//! once naming the first, readers still work) and a race-free migration of a fresh database.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ctwatch");

fn ctwatch(args: &[&str], dir: &std::path::Path) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .env_remove("CTWATCH_CONFIG")
        .env_remove("CTWATCH_DB")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn config_check_rejects_the_short_key_that_run_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        "[api]\nlisten = \"127.0.0.1:0\"\n[[api.keys]]\nname = \"ops\"\nkey = \"abcde\"\n",
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap();
    let check = ctwatch(&["config", "check", cfg], dir.path());
    assert!(
        !check.status.success(),
        "config check accepted a 5-character key"
    );
    assert!(
        stderr(&check).contains("at least 16 characters (got 5)"),
        "{}",
        stderr(&check)
    );
    let db = dir.path().join("db.sqlite");
    let run = ctwatch(
        &[
            "run",
            "--once",
            "--config",
            cfg,
            "--db",
            db.to_str().unwrap(),
            "--log-list",
            "none.json",
        ],
        dir.path(),
    );
    assert_eq!(run.status.code(), Some(3), "{}", stderr(&run));
    assert!(
        stderr(&run).contains("at least 16 characters (got 5)"),
        "{}",
        stderr(&run)
    );
}

#[test]
fn a_keyless_api_on_all_interfaces_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite");
    let run = ctwatch(
        &[
            "run",
            "--once",
            "--listen",
            "0.0.0.0:0",
            "--db",
            db.to_str().unwrap(),
            "--log-list",
            "none.json",
        ],
        dir.path(),
    );
    assert_eq!(run.status.code(), Some(3), "{}", stderr(&run));
    let err = stderr(&run);
    assert!(
        err.contains("0.0.0.0:0") && err.contains("without any API key"),
        "{err}"
    );
    assert!(
        err.contains("[[api.keys]]") && err.contains("127.0.0.1"),
        "{err}"
    );
    // The same config with a key passes `config check`.
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        "[api]\nlisten = \"0.0.0.0:8080\"\n[[api.keys]]\nname = \"ops\"\nkey_env = \"OPS_KEY_FOR_TEST\"\n",
    )
    .unwrap();
    let check = Command::new(BIN)
        .args(["config", "check", cfg.to_str().unwrap()])
        .env("OPS_KEY_FOR_TEST", "0123456789abcdef0123")
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", stderr(&check));
    let open = dir.path().join("open.toml");
    std::fs::write(&open, "[api]\nlisten = \"0.0.0.0:8080\"\n").unwrap();
    let check = ctwatch(&["config", "check", open.to_str().unwrap()], dir.path());
    assert!(!check.status.success());
    assert!(
        stderr(&check).contains("without any API key"),
        "{}",
        stderr(&check)
    );
}

#[test]
fn simultaneous_opens_of_a_fresh_database_all_succeed() {
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("ctwatch.db");
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(12));
        let opens: Vec<_> = (0..12)
            .map(|_| {
                let (db, barrier) = (db.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    ctwatch::store::Store::open(&db).map(|_| ())
                })
            })
            .collect();
        for o in opens {
            o.join().unwrap().expect("a simultaneous open failed");
        }
        let conn = rusqlite::Connection::open(&db).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, ctwatch::store::SCHEMA_VERSION);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_on_the_same_database_exits_3_at_once() {
    let one = common::one_log(common::navigli_entries()).await;
    let env = &one.env;
    let watch = env.write_watchlist("mexi.my\n");
    let db = env.db_path();
    let run = |extra: &[&str]| {
        let mut c = Command::new(BIN);
        c.args([
            "run",
            "--start-at",
            "beginning",
            "--poll-interval-secs",
            "1",
        ])
        .arg("--log-list")
        .arg(&one.list)
        .arg("--watchlist")
        .arg(&watch)
        .arg("--db")
        .arg(&db)
        .args(extra)
        .env("RUST_LOG", "warn")
        .env_remove("CTWATCH_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        c
    };
    let mut first = run(&[]).spawn().unwrap();
    let started = Instant::now();
    while env
        .store
        .list_logs()
        .unwrap_or_default()
        .first()
        .map(|l| l.verified_size)
        != Some(1024)
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the first run did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let t = Instant::now();
    let second = run(&["--once"]).output().unwrap();
    let took = t.elapsed();
    assert_eq!(second.status.code(), Some(3), "{}", stderr(&second));
    let expected = format!(
        "another ctwatch (pid {}) is running on {}",
        first.id(),
        db.display()
    );
    assert!(stderr(&second).contains(&expected), "{}", stderr(&second));
    assert!(
        took < Duration::from_secs(20),
        "the second run took {took:?} to give up"
    );
    // Readers are not blocked by the lock.
    let logs = Command::new(BIN)
        .args(["logs", "--json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(logs.status.success(), "{}", stderr(&logs));
    assert!(String::from_utf8_lossy(&logs.stdout).contains("\"verified_size\": 1024"));
    // SIGTERM: the first exits cleanly and frees the database for the next run.
    Command::new("kill")
        .arg(first.id().to_string())
        .status()
        .unwrap();
    let status = first.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let third = run(&["--once"]).output().unwrap();
    assert_eq!(third.status.code(), Some(0), "{}", stderr(&third));
}
