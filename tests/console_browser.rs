//! The web console in a real headless browser: Debian's chromium, driven by playwright-core
//! (tests/browser/console.mjs), against a daemon fed from a fake log on 127.0.0.1. Pages, filters, pagination,
//! the re-queue button, login/logout, the CSP, and hostile SANs shown as text.
//! `scripts/install-test-deps.sh` installs chromium and playwright-core (.ci/run calls it).
//! With SCREENSHOT_DIR set, the browser also writes a PNG of every page there (scripts/screenshots.sh).

mod common;
mod console_support;

use std::path::Path;
use std::time::Duration;

use console_support::{
    KEY, XSS_IMG, XSS_SCRIPT, cert_der, entries, keyed_api, seed_probes, start, x509_entry,
};

const LIVE_NAME: &str = "live.evil.example";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_headless_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    for (what, path) in [
        ("chromium", Path::new(&chromium).to_path_buf()),
        (
            "playwright-core",
            root.join("tests/browser/node_modules/playwright-core"),
        ),
    ] {
        assert!(
            path.exists(),
            "{what} is missing ({}): run scripts/install-test-deps.sh (.ci/run does)",
            path.display()
        );
    }
    let c = start(keyed_api(), entries(), 1026, false).await;
    c.wait_verified(1026).await;
    // Wait for the failing sink to give up on every event (the Outbox page's re-queue needs failed ones).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let s = c.env.store.outbox_summary().unwrap();
        let failed = s
            .iter()
            .find(|s| s.sink == "webhook:ops")
            .map_or(0, |s| s.failed);
        if failed >= 63 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "failed deliveries: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    seed_probes(&c.env.store);
    // A broken watchlist file: the Watchlists page must show the error with its location.
    std::fs::write(c.watch_dir.join("broken.txt"), "/unclosed\n").unwrap();

    let mut node = tokio::process::Command::new("node")
        .arg(root.join("tests/browser/console.mjs"))
        .current_dir(root.join("tests/browser"))
        .env("CTWATCH_URL", c.url(""))
        .env("CTWATCH_KEY", KEY)
        .env("XSS_SCRIPT", XSS_SCRIPT)
        .env("XSS_IMG", XSS_IMG)
        .env("LIVE_NAME", LIVE_NAME)
        .env("CHROMIUM", &chromium)
        .kill_on_drop(true)
        .spawn()
        .expect("node (from Debian's nodejs) runs");
    // When the Live page listens, publish one more certificate (with a hostile name next to LIVE_NAME).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    while c.registry.feed.clients() == 0 {
        if let Ok(Some(status)) = node.try_wait() {
            panic!("the browser test ended before the Live page: {status}");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the Live page never connected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let der = cert_der(
        &[LIVE_NAME, "<img src=x onerror=alert(3)>.live.evil.example"],
        30,
    );
    c.log.append(vec![x509_entry(&der, 1_764_000_100_000)]);
    let status = tokio::time::timeout(Duration::from_secs(240), node.wait())
        .await
        .expect("the browser test timed out")
        .unwrap();
    assert!(
        status.success(),
        "the browser checks failed (see the output above)"
    );
    c.stop().await;
}
