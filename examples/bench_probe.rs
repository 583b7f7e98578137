//! Benchmark (not a test): probe N local TLS endpoints and report probes/second and peak RSS.
//!
//! Usage: `cargo run --example bench_probe -- [--endpoints 1000] [--concurrency 50] [--rounds 3]`
//! (or scripts/bench-probe.sh, which also raises the open-files limit).
//!
//! The TLS servers run in a child process (this binary with `--serve N`) so that the peak RSS
//! reported (VmHWM of /proc/self/status) is the prober's alone. Each endpoint has its own
//! listener on 127.0.0.1 and its own certificate `h<i>.bench.test` from a test CA.

#[path = "../tests/probe_support/mod.rs"]
mod probe_support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use ctwatch::probe::{ProbeOptions, StaticResolver, Status, Target, TrustRoots, probe_hosts};
use rustls::pki_types::CertificateDer;

fn flag(args: &[String], name: &str, default: usize) -> anyhow::Result<usize> {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .context(format!("{name} needs a value"))?
            .parse()
            .context(format!("{name} takes a number")),
        None => Ok(default),
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Runtime::new()?;
    if args.get(1).map(String::as_str) == Some("--serve") {
        let n = flag(&args, "--serve", 1000)?;
        return runtime.block_on(serve(n));
    }
    let endpoints = flag(&args, "--endpoints", 1000)?;
    let concurrency = flag(&args, "--concurrency", 50)?;
    let rounds = flag(&args, "--rounds", 3)?;
    runtime.block_on(bench(endpoints, concurrency, rounds))
}

/// Child: start `n` TLS servers, print the CA and the endpoints, run until stdin closes.
async fn serve(n: usize) -> anyhow::Result<()> {
    let pki = probe_support::Pki::new();
    let mut out = std::io::stdout().lock();
    writeln!(out, "ca {}", hex::encode(pki.root.der()))?;
    for i in 0..n {
        let name = format!("h{i}.bench.test");
        let addr = probe_support::serve_tls("127.0.0.1", pki.leaf(&[&name], -30, 60)).await;
        writeln!(out, "endpoint {name} {addr}")?;
    }
    writeln!(out, "ready")?;
    out.flush()?;
    drop(out);
    tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin(), &mut std::io::sink()))
        .await??;
    Ok(())
}

async fn bench(endpoints: usize, concurrency: usize, rounds: usize) -> anyhow::Result<()> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["--serve", &endpoints.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the server process")?;
    let started = Instant::now();
    let mut roots = TrustRoots::empty();
    let mut resolver = StaticResolver::new();
    let mut targets = Vec::new();
    for line in BufReader::new(child.stdout.take().context("child stdout")?).lines() {
        let line = line?;
        let words: Vec<&str> = line.split(' ').collect();
        match words.as_slice() {
            ["ca", der] => roots.add_der(&CertificateDer::from(hex::decode(der)?))?,
            ["endpoint", name, addr] => {
                resolver.insert(name, [addr.parse()?]);
                targets.push(Target::parse(name, 443)?);
            }
            ["ready"] => break,
            _ => bail!("unexpected line from the server process: {line}"),
        }
    }
    println!(
        "{} endpoints up in {:.1} s (server process)",
        targets.len(),
        started.elapsed().as_secs_f64()
    );
    let opts = ProbeOptions {
        concurrency,
        roots: Arc::new(roots),
        resolver: Arc::new(resolver),
        ..ProbeOptions::default()
    };
    for round in 1..=rounds {
        let t = Instant::now();
        let reports = probe_hosts(targets.clone(), &opts).await;
        let secs = t.elapsed().as_secs_f64();
        let ok = reports.iter().filter(|r| r.status == Status::Ok).count();
        println!(
            "round {round}: {} probes, concurrency {concurrency}: {secs:.2} s, {:.0} probes/s, {ok} ok",
            reports.len(),
            reports.len() as f64 / secs
        );
        if ok != reports.len() {
            let bad = reports.iter().find(|r| r.status != Status::Ok).unwrap();
            bail!("{}: {} {:?}", bad.domain, bad.status, bad.error);
        }
    }
    println!("prober peak RSS (VmHWM): {}", proc_status("VmHWM")?);
    drop(child.stdin.take());
    child.wait()?;
    Ok(())
}

fn proc_status(key: &str) -> anyhow::Result<String> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix(key)
                .map(|v| v.trim_start_matches(':').trim().to_string())
        })
        .context(format!("{key} not in /proc/self/status"))
}
