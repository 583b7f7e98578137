//! [`LeaseOwner`]: the task that holds this instance's log leases in PostgreSQL.
//!
//! ```text
//!  every renew_every (and at once when the wanted logs change or a handed-over tailer ended):
//!    heartbeat ──> live instances
//!    renew held + releasing ──> held leases that did not renew are LOST (their tailers stop; fencing keeps
//!                               a late commit out)
//!    release the handed-over leases whose tailer ended (or after release_grace)
//!    plan(wanted, held, live) ──> hand over the excess (tailer stops after its batch, then release)
//!                             ──> take free leases up to the target
//!    publish owned = held
//!  a failed round: reconnect next time; once the leases may be about to expire, publish owned = {} (stop all)
//!  finish(): release everything, mark the heartbeat expired
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use tokio::sync::{Mutex, mpsc, watch};

use super::pg;
use super::{LeaseConfig, LeaseError, LeaseStats, LogId, LogOwnership, Owned, plan};

/// Log ownership through leases in PostgreSQL (see the module doc of [`crate::lease`]).
pub struct LeaseOwner {
    instance: String,
    wanted: watch::Sender<BTreeSet<LogId>>,
    owned: watch::Sender<Owned>,
    stopped: mpsc::UnboundedSender<LogId>,
    stats: Arc<LeaseStats>,
    /// Signals the round task to release everything and end; it answers on the oneshot.
    finish: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
    stop: watch::Sender<bool>,
}

impl LeaseOwner {
    /// Connect to `url`, create the lease tables if missing, write the first heartbeat, and start renewing.
    /// `api_addr` is shown to other instances and in `ctwatch logs`.
    pub async fn start(
        url: &str,
        instance: String,
        config: LeaseConfig,
        api_addr: Option<String>,
    ) -> Result<Arc<LeaseOwner>, LeaseError> {
        let mut client = pg::connect(url).await?;
        pg::migrate(&mut client).await?;
        let live = pg::heartbeat(&client, &instance, api_addr.as_deref(), config.ttl).await?;
        let stats = Arc::new(LeaseStats::default());
        stats.set_instance(&instance);
        stats.live_instances.store(live as u64, Relaxed);
        let (wanted, wanted_rx) = watch::channel(BTreeSet::new());
        let (owned, _) = watch::channel(Arc::new(BTreeSet::new()));
        let (stopped, stopped_rx) = mpsc::unbounded_channel();
        let (stop, stop_rx) = watch::channel(false);
        let rounds = Rounds {
            url: url.to_string(),
            client: Some(client),
            instance: instance.clone(),
            api_addr,
            config,
            held: BTreeMap::new(),
            releasing: BTreeMap::new(),
            last_ok: Instant::now(),
            stats: stats.clone(),
            owned: owned.clone(),
        };
        let task = tokio::spawn(rounds.run(wanted_rx, stopped_rx, stop_rx));
        tracing::info!(instance = %instance, "log leases: this instance joined");
        Ok(Arc::new(LeaseOwner {
            instance,
            wanted,
            owned,
            stopped,
            stats,
            finish: Arc::new(Mutex::new(Some(task))),
            stop,
        }))
    }
}

impl LeaseOwner {
    /// Stop renewing WITHOUT releasing anything, as if the process had been killed (SIGKILL): the leases expire
    /// after the TTL. For tests of takeover in one process.
    pub async fn crash(&self) {
        if let Some(t) = self.finish.lock().await.take() {
            t.abort();
            let _ = t.await;
        }
    }
}

impl LogOwnership for LeaseOwner {
    fn instance_id(&self) -> Option<&str> {
        Some(&self.instance)
    }
    fn set_wanted(&self, logs: BTreeSet<LogId>) {
        self.stats.wanted.store(logs.len() as u64, Relaxed);
        self.wanted.send_replace(logs);
    }
    fn owned(&self) -> watch::Receiver<Owned> {
        self.owned.subscribe()
    }
    fn stopped(&self, log: LogId) {
        let _ = self.stopped.send(log);
    }
    fn exclusive(&self) -> bool {
        false
    }
    fn stats(&self) -> Arc<LeaseStats> {
        self.stats.clone()
    }
    fn finish(&self) -> futures::future::BoxFuture<'static, ()> {
        let _ = self.stop.send(true);
        let task = self.finish.clone();
        Box::pin(async move {
            if let Some(t) = task.lock().await.take() {
                let _ = t.await;
            }
        })
    }
}

/// The state of the round task.
struct Rounds {
    url: String,
    /// None after a failure: reconnect at the next round.
    client: Option<tokio_postgres::Client>,
    instance: String,
    api_addr: Option<String>,
    config: LeaseConfig,
    /// Leases held for tailing, with their epoch.
    held: BTreeMap<LogId, i64>,
    /// Leases being handed over: still renewed until the tailer ended (or this deadline).
    releasing: BTreeMap<LogId, Instant>,
    /// When the last round succeeded (all renewals done).
    last_ok: Instant,
    stats: Arc<LeaseStats>,
    owned: watch::Sender<Owned>,
}

impl Rounds {
    async fn run(
        mut self,
        mut wanted: watch::Receiver<BTreeSet<LogId>>,
        mut stopped: mpsc::UnboundedReceiver<LogId>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut ended: BTreeSet<LogId> = BTreeSet::new();
        loop {
            let want = wanted.borrow_and_update().clone();
            if let Err(e) = self.round(&want, &mut ended).await {
                self.failed(&e);
            }
            self.publish();
            let sleep = tokio::time::sleep(self.config.renew_every);
            tokio::select! {
                _ = sleep => {}
                r = wanted.changed() => if r.is_err() { break },
                Some(log) = stopped.recv() => {
                    ended.insert(log);
                    // A few tailers often end together: take them in one round.
                    while let Ok(more) = stopped.try_recv() {
                        ended.insert(more);
                    }
                }
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        self.leave().await;
    }

    async fn round(
        &mut self,
        wanted: &BTreeSet<LogId>,
        ended: &mut BTreeSet<LogId>,
    ) -> Result<(), LeaseError> {
        if self.client.as_ref().is_none_or(|c| c.is_closed()) {
            self.client = Some(pg::connect(&self.url).await?);
        }
        let db = self.client.as_ref().expect("connected above");
        let (ttl, instance) = (self.config.ttl, self.instance.as_str());
        let live = pg::heartbeat(db, instance, self.api_addr.as_deref(), ttl).await?;
        self.stats.live_instances.store(live as u64, Relaxed);
        let mine: Vec<LogId> = self
            .held
            .keys()
            .chain(self.releasing.keys())
            .copied()
            .collect();
        let renewed: BTreeSet<LogId> = pg::renew(db, instance, &mine, ttl)
            .await?
            .into_iter()
            .collect();
        self.last_ok = Instant::now();
        self.stats
            .last_heartbeat_unix
            .store(crate::store::unix_now().max(0) as u64, Relaxed);
        let lost: Vec<LogId> = self
            .held
            .keys()
            .filter(|l| !renewed.contains(*l))
            .copied()
            .collect();
        for log in lost {
            self.held.remove(&log);
            self.stats.lost.fetch_add(1, Relaxed);
            tracing::warn!(instance, log_id = %hex::encode(log), "lease lost (expired before renewal): stopping its tailer");
        }
        self.releasing.retain(|l, _| renewed.contains(l));
        // Hand over what is done.
        let now = Instant::now();
        let done: Vec<LogId> = self
            .releasing
            .iter()
            .filter(|(l, deadline)| ended.contains(*l) || **deadline <= now)
            .map(|(l, _)| *l)
            .collect();
        for log in done {
            pg::release(db, instance, &log).await?;
            self.releasing.remove(&log);
            self.stats.released.fetch_add(1, Relaxed);
            tracing::info!(instance, log_id = %hex::encode(log), "lease released");
        }
        ended.clear();
        let held: BTreeSet<LogId> = self.held.keys().copied().collect();
        let plan = plan(wanted, &held, live);
        for log in plan.release {
            self.held.remove(&log);
            self.releasing.insert(log, now + self.config.release_grace);
        }
        if plan.acquire > 0 {
            let candidates: Vec<LogId> = wanted
                .iter()
                .filter(|l| !self.held.contains_key(*l) && !self.releasing.contains_key(*l))
                .copied()
                .collect();
            let mut need = plan.acquire;
            for log in pg::free(db, &candidates).await? {
                if need == 0 {
                    break;
                }
                if let Some(epoch) = pg::try_acquire(db, instance, &log, ttl).await? {
                    self.held.insert(log, epoch);
                    self.stats.acquired.fetch_add(1, Relaxed);
                    need -= 1;
                    tracing::info!(instance, log_id = %hex::encode(log), epoch, "lease taken");
                }
            }
        }
        Ok(())
    }

    /// A round failed: keep the leases while they surely have not expired, else stop every tailer.
    fn failed(&mut self, e: &LeaseError) {
        self.stats.round_errors.fetch_add(1, Relaxed);
        self.client = None;
        let margin = self.config.renew_every * 2;
        let safe_for = self.config.ttl.saturating_sub(margin);
        if self.last_ok.elapsed() >= safe_for
            && !(self.held.is_empty() && self.releasing.is_empty())
        {
            tracing::error!(
                instance = %self.instance,
                "log leases could not be renewed for {:?} ({e}): stopping every tailer",
                self.last_ok.elapsed()
            );
            self.stats.lost.fetch_add(self.held.len() as u64, Relaxed);
            self.held.clear();
            self.releasing.clear();
        } else {
            tracing::warn!(instance = %self.instance, "log lease round failed (retrying): {e}");
        }
    }

    fn publish(&self) {
        let now: BTreeSet<LogId> = self.held.keys().copied().collect();
        self.stats.owned.store(now.len() as u64, Relaxed);
        self.owned.send_if_modified(|cur| {
            if **cur == now {
                false
            } else {
                *cur = Arc::new(now);
                true
            }
        });
    }

    /// Graceful end: every lease goes back, the heartbeat ends.
    async fn leave(mut self) {
        self.held.clear();
        self.publish();
        let Some(db) = self.client.take().filter(|c| !c.is_closed()) else {
            match pg::connect(&self.url).await {
                Ok(c) => return leave_with(&c, &self.instance).await,
                Err(e) => return tracing::warn!("releasing the log leases at exit: {e}"),
            }
        };
        leave_with(&db, &self.instance).await;
    }
}

async fn leave_with(db: &tokio_postgres::Client, instance: &str) {
    match pg::leave(db, instance).await {
        Ok(n) => tracing::info!(instance, released = n, "log leases released at exit"),
        Err(e) => tracing::warn!(instance, "releasing the log leases at exit: {e}"),
    }
}
