//! The overall deadline of `ctwatch run --once` (`--once-timeout-secs`), so that cron runs never pile up.
//!
//! ```text
//!  external shutdown (Ctrl-C / SIGTERM) ─┐
//!  --once: sleep(once_timeout) ──────────┴─> TailStop: one stop signal for every tailer
//!        tailers: finish the batch in hand (verified + committed), stop
//!        run: after TAIL_GRACE, abort tailers still stuck (a proof request to a hostile log)
//!        run: deliver what is queued within --deliver-timeout-secs, report what is left per log, exit 1
//! ```
//! Worst case wall time of a `--once` run: `once_timeout + TAIL_GRACE + deliver_timeout` (+ a few seconds).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

/// How long tailers get, after the stop signal, to commit the batch in hand before they are aborted.
pub const TAIL_GRACE: Duration = Duration::from_secs(30);

/// The tailers' stop signal: the external shutdown, or the `--once` deadline, whichever comes first.
pub struct TailStop {
    rx: watch::Receiver<bool>,
    hit: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl TailStop {
    /// Forward `shutdown`, and with `deadline` turn the signal on when it passes.
    pub fn spawn(mut shutdown: watch::Receiver<bool>, deadline: Option<Duration>) -> TailStop {
        let (tx, rx) = watch::channel(*shutdown.borrow());
        let hit = Arc::new(AtomicBool::new(false));
        let flag = hit.clone();
        let task = tokio::spawn(async move {
            let timer = async {
                match deadline {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => {}
                _ = timer => {
                    flag.store(true, Ordering::SeqCst);
                    tracing::warn!(
                        "--once deadline of {} s reached: committing what is verified and stopping",
                        deadline.unwrap_or_default().as_secs()
                    );
                }
            }
            let _ = tx.send(true);
        });
        TailStop { rx, hit, task }
    }

    pub fn receiver(&self) -> watch::Receiver<bool> {
        self.rx.clone()
    }

    /// Whether the deadline (not a shutdown signal) stopped the tailers.
    pub fn deadline_hit(&self) -> bool {
        self.hit.load(Ordering::SeqCst)
    }
}

impl Drop for TailStop {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What one log still had to do when the deadline passed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogLeft {
    pub url: String,
    /// Entries verified and committed (the position the next run resumes from).
    pub verified: u64,
    /// The newest signed head seen, if the log ever answered.
    pub head: Option<u64>,
}

impl LogLeft {
    /// Entries between the verified position and the head (None: the head is unknown).
    pub fn left(&self) -> Option<u64> {
        self.head.map(|h| h.saturating_sub(self.verified))
    }
}

impl std::fmt::Display for LogLeft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.head {
            Some(head) => write!(
                f,
                "{}: {} entries left (verified {} of {head})",
                self.url,
                head.saturating_sub(self.verified),
                self.verified
            ),
            None => write!(
                f,
                "{}: head unknown, the log never answered (verified {})",
                self.url, self.verified
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_deadline_stops_the_tailers_and_says_so() {
        let (_tx, rx) = watch::channel(false);
        let stop = TailStop::spawn(rx, Some(Duration::from_secs(600)));
        let mut r = stop.receiver();
        tokio::time::sleep(Duration::from_secs(599)).await;
        assert!(!*r.borrow() && !stop.deadline_hit());
        r.wait_for(|s| *s).await.unwrap();
        assert!(stop.deadline_hit());
    }

    #[tokio::test(start_paused = true)]
    async fn a_shutdown_signal_is_forwarded_and_is_not_the_deadline() {
        let (tx, rx) = watch::channel(false);
        let stop = TailStop::spawn(rx, None);
        tx.send(true).unwrap();
        stop.receiver().wait_for(|s| *s).await.unwrap();
        assert!(!stop.deadline_hit());
    }

    #[test]
    fn what_is_left_reads_well() {
        let l = LogLeft {
            url: "https://ct.example/".into(),
            verified: 512,
            head: Some(1024),
        };
        assert_eq!(l.left(), Some(512));
        assert_eq!(
            l.to_string(),
            "https://ct.example/: 512 entries left (verified 512 of 1024)"
        );
        let never = LogLeft { head: None, ..l };
        assert!(never.to_string().contains("never answered"));
    }
}
