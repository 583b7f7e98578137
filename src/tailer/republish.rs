//! Resuming the NATS stream after a crash: entries committed by a previous process but never acknowledged by
//! JetStream (`[published, committed)`) are downloaded again, verified again against the signed head, and queued
//! for the stream only. Nothing is written to the store, so no match is reported twice; JetStream drops the
//! messages it already had (same `Nats-Msg-Id`) inside its duplicate window.

use std::sync::atomic::Ordering::Relaxed;

use super::pipeline::{self, Mode};
use super::{TailError, TailOutcome, Tailer, blocking};
use crate::ct::merkle::CollapsedTree;
use crate::ctlog::{CtLog, TreeHead};

impl<L: CtLog> Tailer<L> {
    /// Once per log and process: publish again what was committed but not acknowledged. A log the stream never
    /// saw starts publishing at its committed position.
    pub(super) async fn republish_unacknowledged(
        &mut self,
        committed: &CollapsedTree,
        head: &TreeHead,
    ) -> Result<TailOutcome, TailError> {
        let Some(stream) = &self.stream else {
            return Ok(TailOutcome::CaughtUp);
        };
        if stream.resumed.load(Relaxed) {
            return Ok(TailOutcome::CaughtUp);
        }
        let resumed = stream.resumed.clone();
        let store = self.store.clone();
        let (id, start) = (self.info.log_id, committed.clone());
        let published = blocking(move || {
            store.init_stream_position(&id, &start)?;
            store.stream_position(&id)
        })
        .await?
        .unwrap_or_else(|| committed.clone());
        self.stats.published_size.store(published.size(), Relaxed);
        let outcome = if published.size() < committed.size() {
            tracing::info!(
                log = %self.info.url,
                from = published.size(),
                to = committed.size(),
                "publishing again what was committed but not acknowledged by the stream"
            );
            let until = committed.size();
            pipeline::catch_up(self, published, *head, Mode::Republish { until }).await?
        } else {
            TailOutcome::CaughtUp
        };
        if outcome == TailOutcome::CaughtUp {
            resumed.store(true, Relaxed);
        }
        Ok(outcome)
    }
}
