//! The CT firehose on 127.0.0.1: N RFC 6962 and M tiled logs that GROW, for `scripts/bench-firehose.sh`.
//!
//! ```text
//! cargo run --release --example firehose -- --out DIR [--rfc6962 40] [--tiled 60] [--rate 2000] \
//!     [--hot-rate 350] [--hot-latency-ms 2000-5000] [--hot-rps 10] [--hot-page 256] [--initial 1000] \
//!     [--error-rate 0.01]
//! ```
//! Log 0 is the hot RFC 6962 log (`--hot-rate` entries/s, slow, rate limited); the other logs share the rest of
//! `--rate` (weights 1..5), each with its own latency, page cap, rate limit and random 5xx (see `knobs`). Every
//! log starts with `--initial` entries and then grows once a second with a new signed head. Certificates are
//! unique (real navigli2025h2 entries with rewritten serials, see `ctwatch_fakelog::growing::Catalog`).
//!
//! Files in DIR (the bench script reads them):
//! - `log_list.json` (all logs), `log_list_rfc6962.json` (only the RFC 6962 logs, for certspotter 0.16)
//! - `logs.tsv`: number, kind, class (hot / rfc6962 / tiled), log id (hex), URL
//! - `templates.tsv`: template number and its DNS names (entry i of a log is made from template i % count)
//! - `growth.tsv`: unix ms, log number, published size — one line per log per second
//! - `served.tsv`: per log and client (User-Agent): requests, 429s, 5xx, bytes — rewritten every second
//! - `ready` once every log listens.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use ctwatch_fakelog::FakeEntry;
use ctwatch_fakelog::growing::{Catalog, GrowingLog, Kind, Knobs};

struct Args {
    out: PathBuf,
    rfc6962: u32,
    tiled: u32,
    rate: f64,
    hot_rate: f64,
    hot_latency_ms: (u64, u64),
    hot_rps: f64,
    hot_page: usize,
    initial: u64,
    error_rate: f64,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        out: PathBuf::from("firehose"),
        rfc6962: 40,
        tiled: 60,
        rate: 2000.0,
        hot_rate: 350.0,
        hot_latency_ms: (2000, 5000),
        hot_rps: 10.0,
        hot_page: 256,
        initial: 1000,
        error_rate: 0.01,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let v = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--out" => a.out = PathBuf::from(v),
            "--rfc6962" => a.rfc6962 = v.parse()?,
            "--tiled" => a.tiled = v.parse()?,
            "--rate" => a.rate = v.parse()?,
            "--hot-rate" => a.hot_rate = v.parse()?,
            "--hot-latency-ms" => {
                let (lo, hi) = v.split_once('-').context("--hot-latency-ms LO-HI")?;
                a.hot_latency_ms = (lo.parse()?, hi.parse()?);
            }
            "--hot-rps" => a.hot_rps = v.parse()?,
            "--hot-page" => a.hot_page = v.parse()?,
            "--initial" => a.initial = v.parse()?,
            "--error-rate" => a.error_rate = v.parse()?,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    anyhow::ensure!(
        a.rfc6962 >= 1,
        "--rfc6962 must be at least 1 (log 0 is the hot log)"
    );
    Ok(a)
}

/// The behaviour of log `n` (0 = hot) of `kind`.
fn knobs(a: &Args, n: u32, kind: Kind) -> Knobs {
    if n == 0 {
        return Knobs {
            latency_ms: a.hot_latency_ms,
            page_cap: a.hot_page,
            rate_limit_per_sec: a.hot_rps,
            error_rate: a.error_rate,
        };
    }
    match kind {
        Kind::Rfc6962 => Knobs {
            latency_ms: (50, 500),
            // Some logs return short pages, like real ones (32 entries).
            page_cap: if n % 4 == 1 { 32 } else { 256 },
            rate_limit_per_sec: if n.is_multiple_of(3) { 20.0 } else { 0.0 },
            error_rate: a.error_rate,
        },
        Kind::Tiled => Knobs {
            latency_ms: (20, 200),
            page_cap: 0,
            rate_limit_per_sec: if n.is_multiple_of(5) { 20.0 } else { 0.0 },
            error_rate: a.error_rate / 2.0,
        },
    }
}

struct Sim {
    log: Arc<GrowingLog>,
    number: u32,
    class: &'static str,
    url: String,
    rate: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = parse_args()?;
    std::fs::create_dir_all(&a.out)?;
    let templates = navigli_templates()?;
    let catalog = Arc::new(Catalog::new(&templates).map_err(anyhow::Error::msg)?);
    write_templates(&a.out, &catalog)?;

    let total = a.rfc6962 + a.tiled;
    let weight = |n: u32| f64::from(1 + n % 5);
    let weights: f64 = (1..total).map(weight).sum();
    let mut sims = Vec::new();
    for n in 0..total {
        let (kind, class) = match n {
            0 => (Kind::Rfc6962, "hot"),
            n if n < a.rfc6962 => (Kind::Rfc6962, "rfc6962"),
            _ => (Kind::Tiled, "tiled"),
        };
        let log = GrowingLog::new(kind, n, catalog.clone(), knobs(&a, n, kind));
        log.grow(a.initial, now_ms());
        let (url, _server) = ctwatch_fakelog::growing::serve(log.clone()).await?;
        let rate = if n == 0 {
            a.hot_rate
        } else {
            (a.rate - a.hot_rate).max(0.0) * weight(n) / weights.max(1.0)
        };
        sims.push(Sim {
            log,
            number: n,
            class,
            url,
            rate,
        });
    }
    write_lists(&a.out, &sims)?;
    std::fs::write(a.out.join("ready"), "")?;
    eprintln!(
        "firehose: {} RFC 6962 + {} tiled logs, {} entries/s (hot log {}/s) in {}",
        a.rfc6962,
        a.tiled,
        a.rate,
        a.hot_rate,
        a.out.display()
    );
    let sims = Arc::new(sims);
    let out = a.out.clone();
    // Growth runs on its own thread: hashing thousands of new entries a second must not delay the servers.
    std::thread::spawn(move || grow_forever(&sims, &out));
    std::future::pending::<()>().await;
    Ok(())
}

fn grow_forever(sims: &[Sim], out: &Path) {
    let mut owed = vec![0.0f64; sims.len()];
    let mut last = std::time::Instant::now();
    let mut growth = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out.join("growth.tsv"))
        .expect("growth.tsv");
    loop {
        let now = now_ms();
        for s in sims {
            let _ = writeln!(growth, "{now}\t{}\t{}", s.number, s.log.published());
        }
        let _ = growth.flush();
        let _ = write_served(out, sims);
        let next = last + Duration::from_secs(1);
        std::thread::sleep(next.saturating_duration_since(std::time::Instant::now()));
        let dt = next.duration_since(last).as_secs_f64();
        last = next;
        let now = now_ms();
        for (s, owed) in sims.iter().zip(owed.iter_mut()) {
            *owed += s.rate * dt;
            let n = owed.floor();
            *owed -= n;
            s.log.grow(n as u64, now);
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn navigli_templates() -> anyhow::Result<Vec<FakeEntry>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/rfc6962/navigli2025h2-converted-from-tiles");
    let mut out = Vec::new();
    for (a, b) in [(0, 255), (256, 511), (512, 767), (768, 1023)] {
        let body = std::fs::read(dir.join(format!("get-entries_start-{a}_end-{b}.json")))?;
        out.extend(
            ctwatch_fakelog::entries_from_get_entries_json(&body).map_err(anyhow::Error::msg)?,
        );
    }
    Ok(out)
}

fn write_templates(out: &Path, catalog: &Catalog) -> anyhow::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(out.join("templates.tsv"))?);
    for t in 0..catalog.len() {
        let e = catalog.template(t);
        let entry = ctwatch::ct::leaf::decode_rfc6962(&e.leaf_input, &e.extra_data)?;
        let info = ctwatch::ct::cert::cert_info(&entry)?;
        writeln!(f, "{t}\t{}", info.dns_names.join(" "))?;
    }
    Ok(())
}

fn write_lists(out: &Path, sims: &[Sim]) -> anyhow::Result<()> {
    let mut tsv = String::new();
    let (mut logs, mut tiled) = (Vec::new(), Vec::new());
    for s in sims {
        let entry = s
            .log
            .log_list_entry(&s.url, &format!("firehose {} {}", s.class, s.number));
        match s.log.kind {
            Kind::Rfc6962 => logs.push(entry),
            Kind::Tiled => tiled.push(entry),
        }
        let kind = if s.log.kind == Kind::Rfc6962 {
            "rfc6962"
        } else {
            "tiled"
        };
        tsv.push_str(&format!(
            "{}\t{kind}\t{}\t{}\t{}\n",
            s.number,
            s.class,
            hex::encode(s.log.log_id()),
            s.url
        ));
    }
    std::fs::write(out.join("logs.tsv"), tsv)?;
    let list = |logs: &[serde_json::Value], tiled: &[serde_json::Value]| {
        serde_json::json!({
            "version": "1.0",
            "log_list_timestamp": "2026-01-01T00:00:00Z",
            "operators": [{"name": "firehose", "email": ["test@example.invalid"],
                           "logs": logs, "tiled_logs": tiled}]
        })
        .to_string()
    };
    std::fs::write(out.join("log_list.json"), list(&logs, &tiled))?;
    std::fs::write(out.join("log_list_rfc6962.json"), list(&logs, &[]))?;
    Ok(())
}

fn write_served(out: &Path, sims: &[Sim]) -> std::io::Result<()> {
    let mut s = String::new();
    for sim in sims {
        for (client, c) in sim.log.counters() {
            s.push_str(&format!(
                "{}\t{client}\t{}\t{}\t{}\t{}\n",
                sim.number, c.requests, c.rate_limited, c.server_errors, c.bytes
            ));
        }
    }
    let tmp = out.join("served.tsv.tmp");
    std::fs::write(&tmp, s)?;
    std::fs::rename(tmp, out.join("served.tsv"))
}
