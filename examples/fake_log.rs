//! Serve a fake RFC 6962 or static-ct (tiled) log on 127.0.0.1 for benchmarks and reference comparisons.
//!
//! ```text
//! cargo run --release --example fake_log -- [--tiled] --entries 200000 --out DIR
//! ```
//! Writes `DIR/log_list.json` (naming the log) and `DIR/url` once it listens, then serves until killed.
//! With `--entries N` the log holds N distinct entries synthesized from the real navigli2025h2 templates in
//! tests/fixtures (see `ctwatch_fakelog::synthesize`); without it, exactly the 1024 real entries (with `--tiled`:
//! the recorded navigli2025h2 tiles, served as recorded).
//!
//! Hostile modes for the cron-safety measurements (scripts/measure-once-deadline.sh):
//! `--hang`: the log list names a log that accepts connections and never answers;
//! `--retry-after SECS`: every get-entries request answers 429 with `Retry-After: SECS`.
//! With `--rate R` (RFC 6962 only) the signed head starts at 0 and grows by R entries per second, for benchmarks
//! of a live log (`scripts/bench-live-feed.sh`).

use std::path::{Path, PathBuf};

use ctwatch_fakelog::tiled::{self as fakelog_tiled, FakeTiledLog};
use ctwatch_fakelog::{self as fakelog, FakeEntry, FakeLog};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut entries_wanted: Option<usize> = None;
    let mut out = PathBuf::from(".");
    let mut tiled = false;
    let mut hang = false;
    let mut retry_after: Option<u64> = None;
    let mut rate: Option<u64> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--entries" => entries_wanted = Some(args.next().unwrap_or_default().parse()?),
            "--out" => out = PathBuf::from(args.next().unwrap_or_default()),
            "--tiled" => tiled = true,
            "--hang" => hang = true,
            "--retry-after" => retry_after = Some(args.next().unwrap_or_default().parse()?),
            "--rate" => rate = Some(args.next().unwrap_or_default().parse()?),
            other => {
                anyhow::bail!(
                    "unknown argument {other} (use [--tiled] [--hang] [--retry-after SECS] [--rate R] --entries N --out DIR)"
                )
            }
        }
    }
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    if tiled {
        return serve_tiled(&fixtures, entries_wanted, &out).await;
    }
    let templates = navigli_templates(&fixtures)?;
    let entries = match entries_wanted {
        Some(n) => fakelog::synthesize(&templates, n),
        None => templates,
    };
    let n = entries.len();
    let log = FakeLog::new(entries);
    if let Some(secs) = retry_after {
        log.set_faults(ctwatch_fakelog::Faults {
            rate_limit_every: 1,
            retry_after_secs: secs,
            ..Default::default()
        });
    }
    let (url, server) = if hang {
        blackhole().await?
    } else {
        fakelog::serve(log.clone()).await?
    };
    std::fs::create_dir_all(&out)?;
    std::fs::write(
        out.join("log_list.json"),
        log.log_list_json(&url, "ctwatch fake log"),
    )?;
    std::fs::write(out.join("url"), &url)?;
    eprintln!("fake log with {n} entries at {url}");
    if let Some(rate) = rate {
        log.publish(0);
        tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
            loop {
                tick.tick().await;
                log.publish((start.elapsed().as_secs_f64() * rate as f64) as u64);
            }
        });
    }
    server.await?;
    Ok(())
}

/// A TCP server on 127.0.0.1 that accepts every connection and never sends a byte.
async fn blackhole() -> std::io::Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/", listener.local_addr()?);
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    Ok((url, task))
}

/// The 1024 real navigli2025h2 entries in their RFC 6962 form.
fn navigli_templates(fixtures: &Path) -> anyhow::Result<Vec<FakeEntry>> {
    let dir = fixtures.join("rfc6962/navigli2025h2-converted-from-tiles");
    let mut templates = Vec::new();
    for (a, b) in [(0, 255), (256, 511), (512, 767), (768, 1023)] {
        let body = std::fs::read(dir.join(format!("get-entries_start-{a}_end-{b}.json")))?;
        templates
            .extend(fakelog::entries_from_get_entries_json(&body).map_err(anyhow::Error::msg)?);
    }
    Ok(templates)
}

async fn serve_tiled(fixtures: &Path, entries: Option<usize>, out: &Path) -> anyhow::Result<()> {
    let log = match entries {
        Some(n) => {
            let log = FakeTiledLog::new("ctwatch-bench");
            let synthesized = fakelog::synthesize(&navigli_templates(fixtures)?, n);
            log.append_rfc6962(&synthesized)
                .map_err(anyhow::Error::msg)?;
            log
        }
        None => {
            FakeTiledLog::from_tile_dir("navigli2025h2", &fixtures.join("static-ct/navigli2025h2"))
                .map_err(anyhow::Error::msg)?
        }
    };
    let n = log.published();
    let (url, server) = fakelog_tiled::serve(log.clone()).await?;
    std::fs::create_dir_all(out)?;
    std::fs::write(
        out.join("log_list.json"),
        fakelog_tiled::log_list_json(&[], &[(&log, &url)]),
    )?;
    std::fs::write(out.join("url"), &url)?;
    eprintln!("fake tiled log with {n} entries at {url}");
    server.await?;
    Ok(())
}
