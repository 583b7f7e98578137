//! The real binary, operational edges: the API refuses to start key-less on a non-loopback address, and
//! `config check` validates API keys exactly as `run` does.

use std::process::{Command, Output};

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
