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

    fn send<'a>(
        &'a self,
        events: &'a [Delivery],
    ) -> Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + 'a>> {
        Box::pin(async move {
            let mut out = std::io::stdout().lock();
            for d in events {
                let line = match self.format {
                    StdoutFormat::Json => d.payload.to_string(),
                    StdoutFormat::Human => crate::event::human_line(&d.payload),
                };
                writeln!(out, "{line}").map_err(|e| SinkError {
                    message: format!("writing to stdout: {e}"),
                    retry_after: None,
                    permanent: false,
                })?;
            }
            out.flush().map_err(|e| SinkError {
                message: format!("flushing stdout: {e}"),
                retry_after: None,
                permanent: false,
            })
        })
    }
}
