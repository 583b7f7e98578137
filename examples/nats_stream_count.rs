//! Print how many messages a JetStream stream holds (for `scripts/bench-stream.sh`), optionally deleting it.
//!
//! ```text
//! cargo run --release --example nats_stream_count -- nats://127.0.0.1:4222 STREAM [--delete]
//! ```

use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(name)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: nats_stream_count NATS_URL STREAM [--delete]");
    };
    let delete = args.next().as_deref() == Some("--delete");
    let client = async_nats::connect(url.as_str())
        .await
        .with_context(|| format!("connecting to {url}"))?;
    let js = async_nats::jetstream::new(client);
    let mut stream = js
        .get_stream(&name)
        .await
        .with_context(|| format!("stream {name}"))?;
    let messages = stream.info().await?.state.messages;
    println!("{messages}");
    if delete {
        js.delete_stream(&name).await?;
    }
    Ok(())
}
