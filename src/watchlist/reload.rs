//! Re-reading watchlists without a restart.
//!
//! Readers call [`WatchlistHandle::get`] (or `borrow()` a [`WatchlistHandle::subscribe`] receiver) per certificate
//! batch and keep the `Arc` they got for the whole batch, so a swap never changes the list under a batch. The reloader task polls the files' (path, mtime, size) every interval
//! and also reloads on SIGHUP; a new list that does not load keeps the old one in place and logs every error.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Watchlist, WatchlistError, WatchlistErrors};

/// The watchlist files behind `path`: the file itself, or the `*.txt` files of a directory sorted by name.
pub(super) fn watchlist_files(path: &Path) -> Result<Vec<PathBuf>, WatchlistError> {
    let error = |message: String, hint: &str| WatchlistError {
        source: path.display().to_string(),
        line: 0,
        message,
        hint: Some(hint.to_string()),
    };
    let metadata = std::fs::metadata(path).map_err(|e| {
        error(
            format!("cannot open: {e}"),
            "give a watchlist file or a directory of *.txt files",
        )
    })?;
    if !metadata.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path)
        .map_err(|e| error(format!("cannot list: {e}"), "check permissions"))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "txt") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// (path, modification time, size) of every watchlist file behind `path`; any edit, new file or removed file changes
/// it. An unreadable path gives an empty fingerprint (and the reload then reports why).
pub fn fingerprint(path: &Path) -> Vec<(PathBuf, Option<SystemTime>, u64)> {
    let files = watchlist_files(path).unwrap_or_default();
    files
        .into_iter()
        .map(|file| {
            let meta = std::fs::metadata(&file).ok();
            let modified = meta.as_ref().and_then(|m| m.modified().ok());
            let len = meta.map_or(0, |m| m.len());
            (file, modified, len)
        })
        .collect()
}

/// A shared, swappable watchlist. Cloning is cheap; all clones see the same list.
///
/// Built on a `tokio::sync::watch` channel so tasks can either call [`WatchlistHandle::get`] or hold a
/// [`WatchlistHandle::subscribe`] receiver and `borrow()` the latest list.
#[derive(Clone, Debug)]
pub struct WatchlistHandle {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    current: watch::Sender<Arc<Watchlist>>,
    generation: AtomicU64,
}

impl WatchlistHandle {
    pub fn new(list: Watchlist) -> WatchlistHandle {
        let (current, _) = watch::channel(Arc::new(list));
        WatchlistHandle {
            shared: Arc::new(Shared {
                current,
                generation: AtomicU64::new(0),
            }),
        }
    }

    /// The current list; keep the `Arc` for a whole batch.
    pub fn get(&self) -> Arc<Watchlist> {
        self.shared.current.borrow().clone()
    }

    /// A receiver that always holds the latest list (and wakes `changed()` on each swap).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Watchlist>> {
        self.shared.current.subscribe()
    }

    /// How many times the list was replaced since the handle was created.
    pub fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::Acquire)
    }

    pub fn replace(&self, list: Watchlist) {
        self.shared.current.send_replace(Arc::new(list));
        self.shared.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Loads `path` again (blocking I/O) and swaps it in; on errors the current list stays.
    pub fn reload(&self, path: &Path) -> Result<(), WatchlistErrors> {
        let list = Watchlist::load(path)?;
        self.replace(list);
        Ok(())
    }

    /// Spawns the reloader: it reloads `path` when its fingerprint changes (checked every `interval`) or on SIGHUP,
    /// and ends when `shutdown` becomes true or its sender is dropped. Must be called inside a tokio runtime; the
    /// SIGHUP handler is installed before this returns, so a SIGHUP sent afterwards is never lost.
    pub fn spawn_reloader(
        &self,
        path: PathBuf,
        interval: Duration,
        shutdown: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let hangup = hangup_signal();
        let handle = self.clone();
        // Taken now, not in the task: a change made between this call and the task's first poll must count.
        let last = fingerprint(&path);
        tokio::spawn(async move {
            handle
                .reload_loop(path, interval, shutdown, hangup, last)
                .await
        })
    }

    async fn reload_loop(
        self,
        path: PathBuf,
        interval: Duration,
        mut shutdown: watch::Receiver<bool>,
        mut hangup: Hangup,
        mut last: Vec<(PathBuf, Option<SystemTime>, u64)>,
    ) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await; // the first tick completes at once
        while !*shutdown.borrow() {
            let forced = tokio::select! {
                changed = shutdown.changed() => {
                    if changed.is_err() { break; }
                    continue;
                }
                _ = ticker.tick() => false,
                () = hangup.recv() => true,
            };
            let now = fingerprint_off_thread(&path).await;
            if !forced && now == last {
                continue;
            }
            last = now;
            self.reload_off_thread(&path, if forced { "SIGHUP" } else { "file change" })
                .await;
        }
    }

    async fn reload_off_thread(&self, path: &Path, reason: &str) {
        let owned = path.to_path_buf();
        match tokio::task::spawn_blocking(move || Watchlist::load(&owned)).await {
            Ok(Ok(list)) => {
                tracing::info!(path = %path.display(), items = list.len(), reason, "watchlist reloaded");
                self.replace(list);
            }
            Ok(Err(errors)) => {
                for e in &errors.0 {
                    tracing::error!(
                        reason,
                        "watchlist not reloaded, keeping the previous one: {e}"
                    );
                }
            }
            Err(e) => tracing::error!(reason, "watchlist reload task failed: {e}"),
        }
    }
}

async fn fingerprint_off_thread(path: &Path) -> Vec<(PathBuf, Option<SystemTime>, u64)> {
    let owned = path.to_path_buf();
    tokio::task::spawn_blocking(move || fingerprint(&owned))
        .await
        .unwrap_or_default()
}

/// SIGHUP as a stream that never yields where signals do not exist (or the handler cannot be installed).
struct Hangup(#[cfg(unix)] Option<tokio::signal::unix::Signal>);

fn hangup_signal() -> Hangup {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::hangup()) {
            Ok(s) => Hangup(Some(s)),
            Err(e) => {
                tracing::warn!(
                    "cannot listen for SIGHUP, watchlist reloads only on file changes: {e}"
                );
                Hangup(None)
            }
        }
    }
    #[cfg(not(unix))]
    Hangup()
}

impl Hangup {
    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.0 {
            if signal.recv().await.is_some() {
                return;
            }
            self.0 = None;
        }
        std::future::pending::<()>().await
    }
}

#[cfg(test)]
#[path = "reload_tests.rs"]
mod tests;
