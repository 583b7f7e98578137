//! Reports on standard output: one human line, or one JSON object per line (`--json`).

use std::future::Future;
use std::io::Write;
use std::pin::Pin;

use super::{Sink, SinkError};
use crate::store::Delivery;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StdoutFormat {
    Human,
    Json,
}

/// Writes events to stdout, one line each, as soon as they are queued (no grouping: a pipe wants every event).
pub struct StdoutSink {
    pub format: StdoutFormat,
    name: String,
}

impl StdoutSink {
    /// The sink `ctwatch run` always has, named `stdout`.
    pub fn new(format: StdoutFormat) -> StdoutSink {
        StdoutSink::named("stdout", format)
    }

    /// Another stdout sink (from the configuration, with its own filter).
    pub fn named(name: &str, format: StdoutFormat) -> StdoutSink {
        StdoutSink {
            format,
            name: name.to_string(),
        }
    }
}

impl Sink for StdoutSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn max_batch(&self) -> usize {
        256
    }

    fn is_local(&self) -> bool {
        true
    }

    fn write_local(&self, events: &[Delivery]) -> Option<Result<(), SinkError>> {
        let mut buf = String::new();
        for d in events {
            match self.format {
                StdoutFormat::Json => buf.push_str(&d.payload.to_string()),
                StdoutFormat::Human => buf.push_str(&crate::event::human_line(&d.payload)),
            }
            buf.push('\n');
        }
        // One write for the whole batch, so a kill cannot cut a line in half.
        let mut out = std::io::stdout().lock();
        Some(
            out.write_all(buf.as_bytes())
                .and_then(|_| out.flush())
                .map_err(|e| SinkError::transient(format!("writing to stdout: {e}"))),
        )
    }

    fn send<'a>(
        &'a self,
        events: &'a [Delivery],
    ) -> Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + 'a>> {
        Box::pin(async move { self.write_local(events).unwrap_or(Ok(())) })
    }
}
