//! The README's walkthrough, step by step, with the real binary: `scripts/install.sh` into a DESTDIR, the
//! watchlist check, `run --once` against a fake log on 127.0.0.1 (first `--start-at end`, then new entries,
//! then history with `--restart-at`), `search`, `notify test` reading the config's `env_file` and reaching a
//! local Discord receiver, `logs`, and the daemon's `/health`. Every command runs with a private HOME, so
//! nothing outside the test's directory is read or written.

mod common;
mod notify_support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::*;
use ctwatch_fakelog::{self as fakelog, FakeLog};
use notify_support::Receiver;

const BIN: &str = env!("CARGO_BIN_EXE_ctwatch");

/// A place for one walk: the staging tree, a home directory, the database.
struct Walk {
    dir: tempfile::TempDir,
}

impl Walk {
    fn new() -> Walk {
        Walk {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn stage(&self) -> PathBuf {
        self.dir.path().join("stage")
    }
    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }
    fn db(&self) -> PathBuf {
        self.dir.path().join("state/ctwatch.db")
    }
    fn config(&self) -> PathBuf {
        self.stage().join("etc/ctwatch/config.toml")
    }

    /// `ctwatch ARGS` with a private HOME and the walk's database (the README: "use --config/--db of your
    /// choice" without root).
    fn ctwatch(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(self.stage().join("usr/local/bin/ctwatch"));
        c.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home())
            .env("XDG_CONFIG_HOME", self.home().join(".config"))
            .env("XDG_DATA_HOME", self.home().join(".local/share"))
            .env("CTWATCH_DB", self.db())
            .kill_on_drop(true);
        c
    }

    async fn run(&self, args: &[&str]) -> Output {
        self.ctwatch(args).output().await.unwrap()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[track_caller]
fn ok(out: &Output) -> (String, String) {
    let (o, e) = (text(&out.stdout), text(&out.stderr));
    assert!(
        out.status.success(),
        "{:?}\nstdout:\n{o}\nstderr:\n{e}",
        out.status
    );
    (o, e)
}

/// Step 1: `scripts/install.sh` with DESTDIR, a CARGO_TARGET_DIR and a stand-in `cargo` (the test binary is the
/// "release build": no second build inside the test).
fn install(walk: &Walk) -> String {
    let target = walk.dir.path().join("target");
    std::fs::create_dir_all(target.join("release")).unwrap();
    std::fs::copy(BIN, target.join("release/ctwatch")).unwrap();
    let fake_bin = walk.dir.path().join("fakebin");
    std::fs::create_dir_all(&fake_bin).unwrap();
    let cargo = fake_bin.join("cargo");
    std::fs::write(&cargo, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&cargo, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        fake_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install.sh"),
    )
    .env("DESTDIR", walk.stage())
    .env("CARGO_TARGET_DIR", &target)
    .env("PATH", path)
    .env("HOME", walk.home())
    .output()
    .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "install.sh: {stdout}\n{stderr}");
    stdout
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_walkthrough_works_as_written() {
    let walk = Walk::new();

    // 1. Install: every path is printed under DESTDIR; the sample watchlist is not active; db and env_file are
    //    in the config; the binary is stripped when `strip` exists.
    let printed = install(&walk);
    let stage = walk.stage().display().to_string();
    for path in [
        "/usr/local/bin/ctwatch",
        "/etc/ctwatch/config.toml",
        "/etc/ctwatch/watchlists/example.txt.sample",
        "/etc/ctwatch/env",
        "/etc/systemd/system/ctwatch.service",
    ] {
        assert!(
            printed.contains(&format!("{stage}{path}")),
            "{path} not printed under DESTDIR:\n{printed}"
        );
        assert!(walk.stage().join(&path[1..]).exists(), "{path} missing");
    }
    let config = std::fs::read_to_string(walk.config()).unwrap();
    assert!(
        config.contains("\ndb = \"/var/lib/ctwatch/ctwatch.db\"\n"),
        "{config}"
    );
    assert!(config.contains("\nenv_file = \"env\"\n"), "{config}");
    let unit =
        std::fs::read_to_string(walk.stage().join("etc/systemd/system/ctwatch.service")).unwrap();
    assert!(
        !unit.contains("--db"),
        "one database, from the config:\n{unit}"
    );
    let installed = std::fs::metadata(walk.stage().join("usr/local/bin/ctwatch"))
        .unwrap()
        .len();
    if which("strip") {
        assert!(
            installed < std::fs::metadata(BIN).unwrap().len(),
            "not stripped"
        );
    }

    // 2. The empty watchlist is explained; then a domain is added and checked.
    let watchlists = walk.stage().join("etc/ctwatch/watchlists");
    let wl = watchlists.display().to_string();
    let (o, _) = ok(&walk.run(&["watchlist", "check", &wl]).await);
    assert!(
        o.contains("no watch items: nothing will be reported"),
        "{o}"
    );
    std::fs::write(
        watchlists.join("mycompany.txt"),
        "mexi.my\nnip.io\nsslip.io\n",
    )
    .unwrap();
    let (o, _) = ok(&walk.run(&["watchlist", "check", &wl]).await);
    assert!(o.contains("3 items in 1 file(s)"), "{o}");

    // A fake log with the 1024 real navigli entries, the first half announced.
    let log = FakeLog::new(navigli_entries());
    log.publish(512);
    let (url, _srv) = fakelog::serve(log.clone()).await.unwrap();
    let list = walk.dir.path().join("log_list.json");
    std::fs::write(&list, log.log_list_json(&url, "fake navigli")).unwrap();
    let list = list.display().to_string();
    let cfg = walk.config().display().to_string();
    let run_once = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "--once",
            "--config",
            &cfg,
            "--log-list",
            &list,
            "--retry-base-ms",
            "20",
        ];
        args.extend_from_slice(extra);
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };

    // 3. `run --once --start-at end` records where the log is and reports nothing ...
    let args = run_once(&["--start-at", "end"]);
    let (o, e) = ok(&walk
        .run(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .await);
    assert_eq!(o, "", "{e}");
    assert!(!e.contains('\u{1b}'), "colour codes on a pipe: {e:?}");
    // ... the next run reports each new certificate once ...
    log.publish(1024);
    let args = run_once(&[]);
    let (o, e) = ok(&walk
        .run(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .await);
    let new_ones = o
        .lines()
        .filter(|l| l.starts_with("[new_certificate]"))
        .count();
    assert!(new_ones > 0, "no report for entries 512..1024:\n{o}\n{e}");
    assert!(o.lines().all(|l| l.contains(&format!("{url}#"))), "{o}");
    // ... `--start-at 0` for the known log says it is ignored, and how to rewind ...
    let args = run_once(&["--start-at", "0"]);
    let (o, e) = ok(&walk
        .run(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .await);
    assert_eq!(o, "");
    assert!(
        e.contains("--start-at 0 ignored for")
            && e.contains("stored position 1024")
            && e.contains("--restart-at"),
        "{e}"
    );
    // ... and `--restart-at 0 --include-log` shows the matches from history (those not reported yet).
    let args = run_once(&["--restart-at", "0", "--include-log", "127.0.0.1", "--json"]);
    let (o, e) = ok(&walk
        .run(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .await);
    let history: Vec<serde_json::Value> = o
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!history.is_empty(), "nothing from history: {e}");
    assert!(
        history.iter().all(|h| h["index"].as_u64().unwrap() < 512),
        "{o}"
    );
    let (o, _) = ok(&walk.run(&["search", "mexi.my", "--config", &cfg]).await);
    assert!(o.contains("names:") && o.contains("mexi.my"), "{o}");

    // 4. Discord through the config, its URL in the env file that systemd loads: `notify test` reads it too.
    let discord = Receiver::start().await;
    let mut config = std::fs::read_to_string(walk.config()).unwrap();
    config.push_str(
        "\n[[sinks]]\nname = \"discord\"\ntype = \"discord\"\nurl_env = \"CTWATCH_DISCORD_URL\"\n",
    );
    std::fs::write(walk.config(), config).unwrap();
    // The variable in neither place: the error says where it was looked for.
    let out = walk.run(&["notify", "test", "--config", &cfg]).await;
    let e = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{e}");
    assert!(
        e.contains("CTWATCH_DISCORD_URL, which is not set (nor in env_file ")
            && e.contains("etc/ctwatch/env)"),
        "{e}"
    );
    let env_file = walk.stage().join("etc/ctwatch/env");
    std::fs::write(
        &env_file,
        format!(
            "CTWATCH_DISCORD_URL={}\n",
            discord.url("/api/webhooks/1/token")
        ),
    )
    .unwrap();
    let (o, _) = ok(&walk.run(&["config", "check", &cfg]).await);
    assert!(o.ends_with(": ok\n"), "{o}");
    let (o, _) = ok(&walk.run(&["notify", "test", "--config", &cfg]).await);
    assert_eq!(o, "discord: ok\n");
    let got = discord.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].path, "/api/webhooks/1/token");

    // 5. `ctwatch logs` shows the log and the list it came from; the daemon answers /health.
    let (o, _) = ok(&walk.run(&["logs", "--config", &cfg]).await);
    assert!(o.starts_with("log list: v"), "{o}");
    assert!(o.contains(&url) && o.contains("1024"), "{o}");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut daemon = walk
        .ctwatch(&[
            "run",
            "--config",
            &cfg,
            "--log-list",
            &list,
            "--listen",
            &listen,
            "--no-probe",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let health = wait_for_health(&format!("http://{listen}/health")).await;
    assert!(health.contains("\"status\":\"ok\""), "{health}");
    // Read-only commands work while the daemon runs.
    ok(&walk.run(&["logs", "--config", &cfg, "--json"]).await);
    ok(&walk.run(&["outbox", "--config", &cfg]).await);
    let pid = daemon.id().unwrap() as i32;
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let status = tokio::time::timeout(Duration::from_secs(60), daemon.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
}

async fn wait_for_health(url: &str) -> String {
    let started = Instant::now();
    loop {
        if let Ok(r) = reqwest::get(url).await
            && r.status() == 200
        {
            return r.text().await.unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no healthy /health at {url}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}
