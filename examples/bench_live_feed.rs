//! Live-feed load: many WebSocket clients on a running ctwatch while a log grows; see scripts/bench-live-feed.sh.
//!
//! ```text
//! bench_live_feed WS_BASE CTWATCH_PID SECONDS CLIENTS SLOW PATH
//! ```
//! Connects CLIENTS clients to WS_BASE+PATH, SLOW of which read only 20 messages per second, runs for SECONDS,
//! samples the ctwatch process (CPU from /proc/PID/stat, RSS from /proc/PID/status), and prints one summary.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio_tungstenite::tungstenite::Message;

#[derive(Default)]
struct Counts {
    messages: AtomicU64,
    bytes: AtomicU64,
    heartbeats: AtomicU64,
    dropped: AtomicU64,
    other_end: AtomicU64,
}

/// utime + stime of `pid`, in seconds.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// (current, peak) resident set size of `pid`, in MiB.
fn rss_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

async fn client(
    url: String,
    slow: bool,
    counts: Arc<Counts>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let Ok((mut ws, _)) = tokio_tungstenite::connect_async(&url).await else {
        counts.other_end.fetch_add(1, Relaxed);
        return;
    };
    let mut stop = stop;
    loop {
        let msg = tokio::select! {
            m = ws.next() => m,
            _ = stop.wait_for(|s| *s) => return,
        };
        match msg {
            Some(Ok(Message::Text(t))) => {
                if t.starts_with("{\"message_type\":\"heartbeat\"") {
                    counts.heartbeats.fetch_add(1, Relaxed);
                } else {
                    counts.messages.fetch_add(1, Relaxed);
                    counts.bytes.fetch_add(t.len() as u64, Relaxed);
                }
                if slow {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            Some(Ok(Message::Close(frame))) => {
                let too_slow = frame.is_some_and(|f| f.reason.contains("too slow"));
                if too_slow {
                    counts.dropped.fetch_add(1, Relaxed);
                } else {
                    counts.other_end.fetch_add(1, Relaxed);
                }
                return;
            }
            Some(Ok(_)) => {}
            _ => {
                counts.other_end.fetch_add(1, Relaxed);
                return;
            }
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        a.len() == 7,
        "usage: bench_live_feed WS_BASE CTWATCH_PID SECONDS CLIENTS SLOW PATH"
    );
    let (base, pid, secs, clients, slow, path) = (
        a[1].clone(),
        a[2].parse::<u32>()?,
        a[3].parse::<u64>()?,
        a[4].parse::<usize>()?,
        a[5].parse::<usize>()?,
        a[6].clone(),
    );
    let fast = Arc::new(Counts::default());
    let slowc = Arc::new(Counts::default());
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for i in 0..clients {
        let is_slow = i < slow;
        let counts = if is_slow { slowc.clone() } else { fast.clone() };
        tasks.push(tokio::spawn(client(
            format!("{base}{path}"),
            is_slow,
            counts,
            stop.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_secs(2)).await; // everyone connected
    let (connected_fast, connected_slow) =
        (fast.other_end.load(Relaxed), slowc.other_end.load(Relaxed));
    anyhow::ensure!(
        connected_fast + connected_slow == 0,
        "{} clients could not connect (max_clients / max_clients_per_key?)",
        connected_fast + connected_slow
    );
    let (m0, cpu0, t0) = (fast.messages.load(Relaxed), cpu_secs(pid), Instant::now());
    let mut peak_rss = 0.0f64;
    for _ in 0..secs {
        tokio::time::sleep(Duration::from_secs(1)).await;
        peak_rss = peak_rss.max(rss_mib(pid).0);
    }
    let wall = t0.elapsed().as_secs_f64();
    let (m1, cpu1) = (fast.messages.load(Relaxed), cpu_secs(pid));
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    let normal = clients - slow;
    let msgs = (m1 - m0) as f64 / wall;
    println!("clients            {clients} on {path} ({normal} normal, {slow} reading 20 msg/s)");
    println!("measured           {wall:.1} s");
    println!(
        "messages/s         {msgs:.0} delivered to the normal clients ({:.0} per client)",
        msgs / normal.max(1) as f64
    );
    println!(
        "entries/s seen     {:.0} per normal client (the log grows at the rate given to fake_log)",
        msgs / normal.max(1) as f64
    );
    println!(
        "MB/s               {:.1}",
        fast.bytes.load(Relaxed) as f64 / 1e6 / (wall + 2.0)
    );
    println!(
        "ctwatch CPU        {:.0} % of one core",
        (cpu1 - cpu0) / wall * 100.0
    );
    println!(
        "ctwatch RSS        {peak_rss:.0} MiB (sampled peak during the run; VmHWM {:.0} MiB)",
        rss_mib(pid).1
    );
    println!(
        "dropped as slow    {} of {slow} slow clients, {} of {normal} normal clients",
        slowc.dropped.load(Relaxed),
        fast.dropped.load(Relaxed)
    );
    println!(
        "other disconnects  {} (slow) {} (normal)",
        slowc.other_end.load(Relaxed),
        fast.other_end.load(Relaxed)
    );
    Ok(())
}
