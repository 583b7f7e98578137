//! Which logs this instance may tail: log ownership for several ctwatch instances sharing one PostgreSQL.
//!
//! ```text
//!  run: the filtered log list ──set_wanted──> LogOwnership ──owned (watch)──> run: start / stop tailers
//!                                                  ^                                 │
//!                                                  └──────── stopped(log) ───────────┘ (last batch committed)
//! ```
//!
//! Two implementations of [`LogOwnership`]:
//! - [`SoleOwner`] (SQLite): this process owns every wanted log at once. The `DB.lock` run lock
//!   ([`crate::runlock`]) already keeps a second writer off the file.
//! - [`LeaseOwner`] (PostgreSQL): a log is tailed only while this instance holds its lease, a row of
//!   `ctwatch_log_leases` (owner instance, expiry renewed every few seconds, an epoch bumped at each takeover).
//!   Every instance heartbeats in `ctwatch_instances`; each targets ceil(wanted logs / live instances) leases, so
//!   the logs spread evenly and a new instance takes its share (the others release their excess, each after its
//!   tailer committed its current batch). An instance killed with SIGKILL stops renewing: its leases expire after
//!   the TTL and the others take them, resuming at the committed position.
//!
//! Ownership can be wrong for a moment (a paused process, a network partition), so the store fences: the batch
//! transaction checks, inside itself, that this instance still holds the log's lease
//! ([`pg::LEASE_HELD_SQL`]), so two instances can never both advance a position.

mod balance;
mod manager;
mod owners;
pub mod pg;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::sync::watch;

pub use balance::{Plan, plan, target};
pub use manager::LeaseOwner;
pub use owners::LogOwners;

/// A log's ID (SHA-256 of its key).
pub type LogId = [u8; 32];

/// The set of logs an instance owns, as published to the supervisor.
pub type Owned = Arc<BTreeSet<LogId>>;

/// Errors of the lease table.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("postgres (lease tables): {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("cannot connect to PostgreSQL at {url} for the log leases: {source}")]
    Connect {
        url: String,
        source: tokio_postgres::Error,
    },
}

/// Who may tail which log. The contract:
/// - [`LogOwnership::set_wanted`] is called with the filtered log list at start and after each refresh;
/// - [`LogOwnership::owned`] publishes the logs this instance may tail now; the supervisor starts a tailer for
///   each owned log and stops (gracefully: the current batch commits) those no longer in it;
/// - the supervisor calls [`LogOwnership::stopped`] once a stopped tailer has ended, so that a lease being handed
///   over is released only after its last batch committed;
/// - [`LogOwnership::finish`] at the end of the run, after every tailer ended: releases what is still held.
///
/// Implementations are cheap to call from the supervisor's loop (no I/O in these methods).
pub trait LogOwnership: Send + Sync {
    /// This instance's ID (`None`: a single-instance database).
    fn instance_id(&self) -> Option<&str>;
    /// The logs the run wants to follow.
    fn set_wanted(&self, logs: BTreeSet<LogId>);
    /// The logs this instance may tail; changes whenever a lease is won or lost.
    fn owned(&self) -> watch::Receiver<Owned>;
    /// The tailer of `log` has ended.
    fn stopped(&self, log: LogId);
    /// True when this process owns every wanted log (single instance): an empty set of running tailers then
    /// means the run is over, not that another instance has the logs.
    fn exclusive(&self) -> bool;
    /// Counters for `/metrics` and `/health`.
    fn stats(&self) -> Arc<LeaseStats>;
    /// Release everything still held (graceful shutdown), so that other instances take over at once.
    fn finish(&self) -> futures::future::BoxFuture<'static, ()>;
}

/// Live lease figures of this instance (shown by `/metrics` and `/health`).
#[derive(Debug, Default)]
pub struct LeaseStats {
    /// This instance's ID (empty for a single-instance database).
    pub instance_id: std::sync::OnceLock<String>,
    /// Logs this instance owns now.
    pub owned: AtomicU64,
    /// Logs the run wants to follow (all instances together).
    pub wanted: AtomicU64,
    /// Live instances seen at the last heartbeat (1 for a single-instance database).
    pub live_instances: AtomicU64,
    /// Leases taken (new or taken over) since start.
    pub acquired: AtomicU64,
    /// Leases handed over to balance the load since start.
    pub released: AtomicU64,
    /// Leases that expired or were taken while held (the instance could not renew in time).
    pub lost: AtomicU64,
    /// Failed heartbeat/renewal rounds since start.
    pub round_errors: AtomicU64,
    /// Unix seconds of the last successful heartbeat (0: never; single instance: 0).
    pub last_heartbeat_unix: AtomicU64,
}

impl LeaseStats {
    fn set_instance(&self, id: &str) {
        let _ = self.instance_id.set(id.to_string());
    }
    pub fn instance(&self) -> &str {
        self.instance_id.get().map(String::as_str).unwrap_or("")
    }
    pub fn owned(&self) -> u64 {
        self.owned.load(Relaxed)
    }
}

/// Single instance: every wanted log is owned at once.
pub struct SoleOwner {
    owned: watch::Sender<Owned>,
    stats: Arc<LeaseStats>,
}

impl Default for SoleOwner {
    fn default() -> Self {
        let stats = Arc::new(LeaseStats::default());
        stats.live_instances.store(1, Relaxed);
        SoleOwner {
            owned: watch::channel(Arc::new(BTreeSet::new())).0,
            stats,
        }
    }
}

impl LogOwnership for SoleOwner {
    fn instance_id(&self) -> Option<&str> {
        None
    }
    fn set_wanted(&self, logs: BTreeSet<LogId>) {
        self.stats.wanted.store(logs.len() as u64, Relaxed);
        self.stats.owned.store(logs.len() as u64, Relaxed);
        self.owned.send_replace(Arc::new(logs));
    }
    fn owned(&self) -> watch::Receiver<Owned> {
        self.owned.subscribe()
    }
    fn stopped(&self, _log: LogId) {}
    fn exclusive(&self) -> bool {
        true
    }
    fn stats(&self) -> Arc<LeaseStats> {
        self.stats.clone()
    }
    fn finish(&self) -> futures::future::BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

/// Lease timing. The defaults take a dead instance's logs over within TTL + one renewal (~18 s).
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// A lease or heartbeat not renewed for this long is expired [default: 15 s].
    pub ttl: Duration,
    /// How often leases and the heartbeat are renewed and the balance checked [default: 3 s; must be < ttl/2].
    pub renew_every: Duration,
    /// A lease handed over is released at the latest this long after its tailer was asked to stop, even if the
    /// tailer has not ended (the store's fencing keeps a late commit out) [default: 60 s].
    pub release_grace: Duration,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        LeaseConfig {
            ttl: Duration::from_secs(15),
            renew_every: Duration::from_secs(3),
            release_grace: Duration::from_secs(60),
        }
    }
}

/// A fresh instance ID: `hostname-pid-random` (random: 8 hex digits, so that a restarted process that got the
/// same pid is a new instance).
pub fn default_instance_id() -> String {
    let host = hostname().unwrap_or_else(|| "host".to_string());
    let salt: u32 = rand::random();
    format!("{host}-{}-{salt:08x}", std::process::id())
}

fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates when the name fits.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).trim().to_string();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_name_the_host_and_pid_and_differ_between_calls() {
        let a = default_instance_id();
        let b = default_instance_id();
        assert_ne!(a, b);
        assert!(a.contains(&format!("-{}-", std::process::id())), "{a}");
    }

    #[test]
    fn a_sole_owner_owns_every_wanted_log_at_once() {
        let sole = SoleOwner::default();
        let rx = sole.owned();
        sole.set_wanted([[1; 32], [2; 32]].into());
        assert_eq!(rx.borrow().len(), 2);
        assert!(sole.exclusive());
        assert_eq!(sole.stats().owned(), 2);
    }
}
