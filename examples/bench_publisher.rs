//! The NATS publisher alone (for `scripts/bench-stream.sh`): N messages of B bytes, in batches of 4096, through
//! `ctwatch::stream::Publisher` (pipelined acknowledgements, published positions stored in a SQLite file) into a
//! fresh stream, which is deleted at the end. Prints messages/s from the first publish to the last position stored.
//!
//! ```text
//! cargo run --release --example bench_publisher -- nats://127.0.0.1:4222 [MESSAGES] [BYTES]
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use ctwatch::ct::merkle::CollapsedTree;
use ctwatch::stream::{
    Publisher, StreamBatch, StreamConfig, StreamMessage, StreamSection, StreamStats,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "nats://127.0.0.1:4222".into());
    let n: usize = args.next().map_or(Ok(100_000), |a| a.parse())?;
    let bytes: usize = args.next().map_or(Ok(4096), |a| a.parse())?;
    let name = format!("CTWATCH_BENCH_PUBLISHER_{}", std::process::id());
    let section = StreamSection {
        name: Some(name.clone()),
        subject_prefix: Some(format!("ctwatch-bench-publisher.{}", std::process::id())),
        max_bytes: Some(0),
        ..Default::default()
    };
    let config = StreamConfig::resolve(&section, Some(&url))?.expect("a stream");
    let dir = tempfile::tempdir()?;
    let store = Arc::new(ctwatch::store::Store::open(&dir.path().join("bench.db"))?);
    let stats = Arc::new(StreamStats::default());
    let (publisher, _) = Publisher::connect(config.clone(), store.clone(), stats.clone()).await?;
    let (tx, rx) = tokio::sync::mpsc::channel(config.queue_batches);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(publisher.run(rx, stop_rx, Duration::from_secs(60)));
    let body = bytes::Bytes::from(vec![b'x'; bytes]);
    let log_stats = Arc::new(ctwatch::stats::LogStats::default());
    let started = Instant::now();
    let mut tree = CollapsedTree::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(4096) {
        let messages = chunk
            .iter()
            .map(|&i| {
                tree.push([(i % 251) as u8; 32]);
                StreamMessage {
                    index: i as u64,
                    precert: i % 2 == 0,
                    body: body.clone(),
                }
            })
            .collect();
        let batch = StreamBatch {
            log_id: [7; 32],
            end: tree.clone(),
            messages,
            stats: log_stats.clone(),
        };
        stats
            .queued_batches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tx.send(batch).await?;
    }
    drop(tx);
    let _ = stop_tx.send(true);
    task.await?;
    let took = started.elapsed();
    let published = store.stream_position(&[7; 32])?.map_or(0, |t| t.size());
    println!(
        "publisher alone: {n} messages of {bytes} B acknowledged in {:.2} s: {:.0} messages/s, {:.1} MB/s \
         (position stored: {published}, errors {})",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        (n * bytes) as f64 / took.as_secs_f64() / 1e6,
        stats.errors.load(std::sync::atomic::Ordering::Relaxed)
    );
    let client = async_nats::connect(url.as_str()).await?;
    async_nats::jetstream::new(client)
        .delete_stream(&name)
        .await?;
    Ok(())
}
