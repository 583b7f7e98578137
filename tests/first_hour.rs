//! The traps of a new user's first hour (issue 11), each with the real binary: exit codes, closed pipes,
//! read-only commands and their database, rewinding a known log, `--start-at` beyond the head, orphaned
//! outbox items, error messages that name what the user typed, `check --db`, unknown names.

mod common;
mod probe_support;

use std::path::PathBuf;
use std::process::{Output, Stdio};

use common::*;
use ctwatch_fakelog::{self as fakelog, FakeLog};

const BIN: &str = env!("CARGO_BIN_EXE_ctwatch");

/// A private HOME, a log list naming one fake log with the 1024 real navigli entries, a watchlist.
struct Place {
    dir: tempfile::TempDir,
    list: PathBuf,
    url: String,
    log: std::sync::Arc<FakeLog>,
    _server: tokio::task::JoinHandle<()>,
}

impl Place {
    async fn new(watch: &str) -> Place {
        let dir = tempfile::tempdir().unwrap();
        let log = FakeLog::new(navigli_entries());
        let (url, server) = fakelog::serve(log.clone()).await.unwrap();
        let list = dir.path().join("log_list.json");
        std::fs::write(&list, log.log_list_json(&url, "fake navigli")).unwrap();
        std::fs::write(dir.path().join("watch.txt"), watch).unwrap();
        Place {
            dir,
            list,
            url,
            log,
            _server: server,
        }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("ctwatch.db")
    }

    fn cmd(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(BIN);
        c.args(args)
            .env_clear()
            .env("HOME", self.dir.path().join("home"))
            .env("XDG_CONFIG_HOME", self.dir.path().join("home/.config"))
            .env("XDG_DATA_HOME", self.dir.path().join("home/.local/share"))
            .kill_on_drop(true);
        c
    }

    /// `ctwatch ARGS` (run commands get the list, the watchlist, the database and fast retries).
    async fn ctwatch(&self, args: &[&str]) -> Output {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        if args.first() == Some(&"run") {
            all.extend(
                [
                    "--log-list",
                    &self.list.display().to_string(),
                    "--watchlist",
                    &self.dir.path().join("watch.txt").display().to_string(),
                    "--retry-base-ms",
                    "20",
                    "--no-probe",
                ]
                .map(String::from),
            );
        }
        if !args.contains(&"--db") && !args.contains(&"--config") {
            all.extend(["--db".to_string(), self.db().display().to_string()]);
        }
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        self.cmd(&refs).output().await.unwrap()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[track_caller]
fn code(out: &Output, want: i32) -> (String, String) {
    let (o, e) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(want), "stdout:\n{o}\nstderr:\n{e}");
    (o, e)
}

#[tokio::test]
async fn usage_errors_exit_3_and_help_exits_0() {
    let p = Place::new("mexi.my\n").await;
    for args in [
        &["check", "--bogus"][..],
        &["run", "--start-at", "nonsense"],
        &["logs", "--limit", "x"],
        &["outbox", "frobnicate"],
        &[],
    ] {
        let out = p.cmd(args).output().await.unwrap();
        assert_eq!(
            out.status.code(),
            Some(3),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    let out = p.cmd(&["--help"]).output().await.unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("Usage"));
    // A missing watchlist path is a failure of ctwatch itself (3), not "errors in the watchlist" (1).
    let out = p
        .cmd(&["watchlist", "check", "/nonexistent/w"])
        .output()
        .await
        .unwrap();
    let (_, e) = code(&out, 3);
    assert!(e.contains("no watchlist at /nonexistent/w"), "{e}");
}

#[tokio::test]
async fn every_flag_has_a_help_line() {
    use clap::CommandFactory;
    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                missing.push(format!("{path} {id}"));
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, &format!("{path} {}", sub.get_name()), missing);
        }
    }
    let mut missing = Vec::new();
    walk(&ctwatch::cli::Cli::command(), "ctwatch", &mut missing);
    assert!(missing.is_empty(), "flags without help: {missing:?}");
}

#[tokio::test]
async fn errors_name_the_flag_the_user_typed() {
    let p = Place::new("mexi.my\n").await;
    let (_, e) = code(
        &p.ctwatch(&["run", "--once", "--discord", "not-a-url"])
            .await,
        3,
    );
    assert!(e.contains("--discord: not an http(s) URL"), "{e}");
    let (_, e) = code(&p.ctwatch(&["run", "--once", "--page-size", "0"]).await, 3);
    assert!(e.contains("--page-size 0 is out of range"), "{e}");
}

#[tokio::test]
async fn read_only_commands_never_create_a_database() {
    let p = Place::new("mexi.my\n").await;
    let missing = p.dir.path().join("typo/ctwatch.db");
    let m = missing.display().to_string();
    for cmd in [
        "search example.com",
        "logs",
        "outbox",
        "report",
        "inventory",
    ] {
        let mut args: Vec<&str> = cmd.split(' ').collect();
        args.extend(["--db", &m]);
        let (_, e) = code(&p.ctwatch(&args).await, 3);
        assert!(e.contains(&format!("no database at {m}")), "{cmd}: {e}");
        assert!(
            !p.dir.path().join("typo").exists(),
            "{cmd} created a directory"
        );
    }
    // The default database is not created either.
    let (_, e) = code(&p.cmd(&["logs"]).output().await.unwrap(), 3);
    assert!(e.contains("no database at"), "{e}");
    assert!(!p.dir.path().join("home/.local").exists());

    // A database written by a run, then made read-only: every read-only command still works and changes
    // nothing.
    code(
        &p.ctwatch(&["run", "--once", "--start-at", "beginning"])
            .await,
        0,
    );
    let before = std::fs::read(p.db()).unwrap();
    let mut perms = std::fs::metadata(p.db()).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o444);
    std::fs::set_permissions(p.db(), perms).unwrap();
    for cmd in ["search mexi.my", "logs", "outbox", "report", "inventory"] {
        let args: Vec<&str> = cmd.split(' ').collect();
        let (o, _) = code(&p.ctwatch(&args).await, 0);
        if cmd.starts_with("search") {
            assert!(o.contains("mexi.my"), "{o}");
        }
    }
    assert_eq!(std::fs::read(p.db()).unwrap(), before);
}

/// `| head`: the reader goes away after a few bytes. The command ends quietly (no panic message).
async fn closed_pipe(p: &Place, args: &[&str]) {
    let mut all: Vec<&str> = args.to_vec();
    let db = p.db().display().to_string();
    all.extend(["--db", &db]);
    let mut child = p
        .cmd(&all)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    tokio::io::AsyncReadExt::read_exact(&mut stdout, &mut first)
        .await
        .unwrap();
    drop(stdout);
    let out = child.wait_with_output().await.unwrap();
    let e = text(&out.stderr);
    assert!(
        !e.contains("panicked") && !e.contains("Broken pipe"),
        "{args:?}: {e}"
    );
    use std::os::unix::process::ExitStatusExt;
    assert!(
        out.status.success() || out.status.signal() == Some(libc::SIGPIPE),
        "{args:?}: {:?} {e}",
        out.status
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pipe_ends_listings_quietly() {
    // Everything matches (every certificate, its hosts queued for the probe) and a sink that refuses keeps
    // every notification pending: long listings for search, outbox and report.
    let p = Place::new("/./\n").await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hook = format!("http://127.0.0.1:{port}/hook");
    code(
        &p.ctwatch(&[
            "run",
            "--once",
            "--start-at",
            "beginning",
            "--webhook",
            &hook,
            "--deliver-timeout-secs",
            "1",
        ])
        .await,
        1,
    );
    closed_pipe(&p, &["search", "my"]).await;
    closed_pipe(&p, &["outbox", "--limit", "100000"]).await;
    closed_pipe(&p, &["report"]).await;
    closed_pipe(&p, &["logs", "--json"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_logs_rewind_and_start_at_beyond_the_head_is_an_error() {
    let p = Place::new("mexi.my\nnip.io\nsslip.io\n").await;
    let (_, e) = code(
        &p.ctwatch(&["run", "--once", "--start-at", "5000"]).await,
        1,
    );
    assert!(e.contains("--start-at 5000 is beyond the head"), "{e}");
    assert!(e.contains("(its signed tree has 1024 entries)"), "{e}");
    assert!(!e.contains("reachable"), "{e}");

    code(&p.ctwatch(&["run", "--once", "--start-at", "end"]).await, 0);
    // --start-at for a known log: a warning naming the log, its position and the way to rewind.
    let (o, e) = code(&p.ctwatch(&["run", "--once", "--start-at", "0"]).await, 0);
    assert_eq!(o, "");
    assert!(
        e.contains(&format!("--start-at 0 ignored for {}", p.url))
            && e.contains("stored position 1024"),
        "{e}"
    );
    // `logs rewind`: unknown log and beyond the head are errors; a good one is applied by the next run.
    let (_, e) = code(
        &p.ctwatch(&["logs", "rewind", "nosuchlog", "--to", "0"])
            .await,
        3,
    );
    assert!(e.contains("no known log matches"), "{e}");
    let (_, e) = code(
        &p.ctwatch(&["logs", "rewind", "127.0.0.1", "--to", "2000"])
            .await,
        3,
    );
    assert!(e.contains("beyond the head"), "{e}");
    let (o, _) = code(
        &p.ctwatch(&["logs", "rewind", "127.0.0.1", "--to", "0"])
            .await,
        0,
    );
    assert!(
        o.contains("the next run re-reads it from entry 0 (stored position: 1024"),
        "{o}"
    );
    let (o, _) = code(&p.ctwatch(&["run", "--once", "--json"]).await, 0);
    let first: Vec<serde_json::Value> = o
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!first.is_empty());
    // Rewinding again re-reads, but what was reported is not reported twice.
    code(
        &p.ctwatch(&["logs", "rewind", "127.0.0.1", "--to", "0"])
            .await,
        0,
    );
    let (o, _) = code(&p.ctwatch(&["run", "--once", "--json"]).await, 0);
    assert_eq!(o, "");
    let store = ctwatch::store::Store::open(&p.db()).unwrap();
    assert_eq!(store.list_logs().unwrap()[0].verified_size, 1024);
    assert!(p.log.request_count("get-entries") > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphaned_outbox_items_are_reported_once_and_can_be_dropped() {
    let p = Place::new("mexi.my\n").await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hook = format!("http://127.0.0.1:{port}/hook");
    let (_, e) = code(
        &p.ctwatch(&[
            "run",
            "--once",
            "--start-at",
            "beginning",
            "--webhook",
            &hook,
            "--deliver-timeout-secs",
            "1",
        ])
        .await,
        1,
    );
    let sink = "webhook:127.0.0.1#";
    assert!(
        e.contains(sink),
        "flag sinks are named with their host: {e}"
    );
    let name: String = e[e.find(sink).unwrap()..]
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches([',', ';', ':'])
        .to_string();

    // The webhook is gone from the command line: its items are orphaned, said once, exit 0.
    let (_, e) = code(&p.ctwatch(&["run", "--once"]).await, 0);
    assert!(
        e.contains(&format!(
            "queued for sink {name}, which is not configured any more"
        )),
        "{e}"
    );
    let (_, e) = code(&p.ctwatch(&["run", "--once"]).await, 0);
    assert!(!e.contains("not configured any more"), "said twice: {e}");
    let (o, _) = code(&p.ctwatch(&["outbox"]).await, 0);
    assert!(o.contains(&name) && o.contains("(orphaned"), "{o}");
    let (o, _) = code(&p.ctwatch(&["outbox", "--json"]).await, 0);
    let v: serde_json::Value = serde_json::from_str(&o).unwrap();
    assert_eq!(v["orphaned"], serde_json::json!([name]), "{o}");

    // Unknown names are said; drop deletes the undelivered ones.
    let (_, e) = code(&p.ctwatch(&["outbox", "--sink", "nope"]).await, 3);
    assert!(
        e.contains("no sink named \"nope\"") && e.contains(&name),
        "{e}"
    );
    let (_, e) = code(&p.ctwatch(&["outbox", "drop", "--sink", "nope"]).await, 3);
    assert!(e.contains("no sink named"), "{e}");
    let (o, _) = code(&p.ctwatch(&["outbox", "drop", "--sink", &name]).await, 0);
    assert!(
        o.starts_with("dropped ") && !o.starts_with("dropped 0"),
        "{o}"
    );
    let (o, _) = code(&p.ctwatch(&["outbox", "--json"]).await, 0);
    let v: serde_json::Value = serde_json::from_str(&o).unwrap();
    assert_eq!(v["undelivered"].as_array().unwrap().len(), 0, "{o}");
    let (_, e) = code(&p.ctwatch(&["report", "--tag", "client-x"]).await, 0);
    assert!(e.contains("no probed host has the tag \"client-x\""), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_reachable_is_one_line() {
    let p = Place::new("mexi.my\n").await;
    // Three logs whose host does not resolve (.invalid never does, RFC 6761) and nothing else.
    let mut list: serde_json::Value =
        serde_json::from_str(&p.log.log_list_json("http://a.invalid/", "a")).unwrap();
    let log0 = list["operators"][0]["logs"][0].clone();
    for (i, host) in ["b.invalid", "c.invalid"].iter().enumerate() {
        let mut l = log0.clone();
        l["url"] = format!("http://{host}/").into();
        l["description"] = format!("log {i}").into();
        list["operators"][0]["logs"].as_array_mut().unwrap().push(l);
    }
    let path = p.dir.path().join("unreachable.json");
    std::fs::write(&path, list.to_string()).unwrap();
    let path = path.display().to_string();
    let w = p.dir.path().join("watch.txt").display().to_string();
    let db = p.db().display().to_string();
    let args = [
        "run",
        "--once",
        "--log-list",
        &path,
        "--watchlist",
        &w,
        "--db",
        &db,
        "--retry-base-ms",
        "1",
        "--max-attempts",
        "1",
    ];
    let out = p.cmd(&args).output().await.unwrap();
    let (_, e) = code(&out, 1);
    let lines: Vec<&str> = e.lines().collect();
    // Same log id three times: one log is followed. What matters: one line, with the diagnosis.
    assert_eq!(lines.len(), 1, "{e}");
    assert!(
        lines[0].starts_with("ctwatch: 0 of ")
            && lines[0].contains("logs reachable: DNS lookups fail"),
        "{e}"
    );
    let mut verbose = args.to_vec();
    verbose.push("-v");
    let out = p.cmd(&verbose).output().await.unwrap();
    assert!(
        text(&out.stderr).contains("did not catch up"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn check_with_a_database_fills_seen_in_ct_and_tbs_sha256() {
    let p = Place::new("mexi.my\n").await;
    let missing = p.dir.path().join("nope.db").display().to_string();
    let (_, e) = code(
        &p.cmd(&["check", "example.invalid", "--db", &missing])
            .output()
            .await
            .unwrap(),
        3,
    );
    assert!(e.contains("no database at"), "{e}");
    code(&p.ctwatch(&["run", "--once", "--start-at", "end"]).await, 0);
    // A local TLS server with a certificate no log has seen.
    let pki = probe_support::Pki::new();
    let addr = probe_support::serve_tls("127.0.0.1", pki.leaf(&["seen.test"], -1, 80)).await;
    let ca_path = p.dir.path().join("ca.pem");
    std::fs::write(&ca_path, pki.root.pem()).unwrap();
    let db = p.db().display().to_string();
    let resolve = format!("seen.test:{}:127.0.0.1", addr.port());
    let ca = ca_path.display().to_string();
    let target = format!("seen.test:{}", addr.port());
    let out = p
        .cmd(&[
            "check",
            &target,
            "--resolve",
            &resolve,
            "--ca-file",
            &ca,
            "--json",
            "--db",
            &db,
        ])
        .output()
        .await
        .unwrap();
    let o = text(&out.stdout);
    let v: serde_json::Value =
        serde_json::from_str(&o).unwrap_or_else(|e| panic!("{e}: {o} {}", text(&out.stderr)));
    assert_eq!(v[0]["seen_in_ct"], false, "{o}");
    assert_eq!(v[0]["tbs_sha256"].as_str().map(str::len), Some(64), "{o}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successful_once_run_ends_with_one_line_on_a_terminal_only() {
    let p = Place::new("mexi.my\nnip.io\nsslip.io\n").await;
    // On a pipe: nothing on stderr.
    let (o, e) = code(
        &p.ctwatch(&["run", "--once", "--start-at", "512", "--json"])
            .await,
        0,
    );
    assert_eq!(e, "", "stderr on a pipe");
    let reported = o.lines().count();
    assert!(reported > 0);
    // On a terminal (util-linux `script` gives the command a pseudo-terminal): one line saying what it did.
    let has_script = std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_script {
        eprintln!("skipped the terminal half: util-linux `script` is not installed");
        return;
    }
    let shell = format!(
        "{BIN} run --once --log-list {} --watchlist {} --db {} --no-probe --start-at 0 --restart-at 0 \
         --include-log 127.0.0.1 --json",
        p.list.display(),
        p.dir.path().join("watch.txt").display(),
        p.db().display()
    );
    let out = tokio::process::Command::new("script")
        .args(["-qec", &shell, "/dev/null"])
        .env("HOME", p.dir.path().join("home"))
        .env("TERM", "dumb")
        .env("NO_COLOR", "1")
        .output()
        .await
        .unwrap();
    let all = text(&out.stdout);
    let last = all
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    assert!(
        last.starts_with("ctwatch: 1 log caught up, 1024 entries verified, ")
            && last.contains("matching certificates")
            && last.contains("notification(s) sent"),
        "{all}"
    );
}
