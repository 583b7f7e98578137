//! Reports on standard output: one human line, or one JSON object per line (`--json`).

use std::future::Future;
use std::io::Write;
use std::pin::Pin;

use super::{Sink, SinkError};
use crate::store::Delivery;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StdoutFormat {
    Human,
    Json,
}

/// Writes events to stdout.
pub struct StdoutSink {
    pub format: StdoutFormat,
}

impl Sink for StdoutSink {
    fn name(&self) -> &str {
        "stdout"
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
                .map_err(|e| SinkError {
                    message: format!("writing to stdout: {e}"),
                    retry_after: None,
                    permanent: false,
                }),
        )
    }

    fn send<'a>(
        &'a self,
        events: &'a [Delivery],
    ) -> Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + 'a>> {
        Box::pin(async move { self.write_local(events).unwrap_or(Ok(())) })
    }
}
