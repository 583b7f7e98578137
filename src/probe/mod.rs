//! TLS expiry probe: what is really served for a host, on every address, and how bad it is.
//!
//! ```text
//!  Target ──resolve (A+AAAA, dns timeout)──> addresses ──┬─ connect + handshake (SNI) ─> chain
//!                                                        ├─ ...one task per address, bounded
//!                                                        └─ ...by `concurrency` connections
//!  chain ──chain::leaf_details / chain_facts──> ChainFacts ──classify(now, thresholds)──> Verdict
//!  Verdicts ──worst counted address──> HostReport ──report::render──> table | JSON | CSV
//! ```
//!
//! Submodules: [`target`] (what to probe, pure), [`resolve`] (names -> addresses), [`address`] (which
//! addresses an API client may make us connect to, pure),
//! [`tls`] (handshake that keeps any chain), [`chain`] (webpki + x509 facts, pure),
//! [`classify`] (status rules, pure), [`transition`] (when a change is worth an event, pure),
//! [`report`] (output), [`cli`] (`ctwatch check`); in the daemon, [`schedule`] (rate limit and alert policy,
//! pure) and [`scheduler`] (the task that probes stored targets), [`daily`] (`ctwatch report`, with
//! [`daily_changes`] and [`daily_html`]); [`renewal`] (served certificate vs CT: stale deployments, missing
//! renewals, pure) and [`panel`] (Valid / Invalid / Inactive / Unknown, pure).

pub mod address;
pub mod chain;
pub mod classify;
pub mod cli;
pub mod daily;
pub mod daily_changes;
pub mod daily_html;
mod host;
pub mod panel;
pub mod renewal;
pub mod report;
pub mod resolve;
pub mod schedule;
pub mod scheduler;
pub mod target;
pub mod tls;
pub mod transition;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

pub use chain::{TbsIdentityFn, TrustRoots};
pub use classify::{Level, Status, Thresholds};
pub use report::{AddressReport, HostReport};
pub use resolve::{Resolver, StaticResolver, SystemResolver};
pub use target::Target;
pub use transition::{ProbeEvent, ProbeSnapshot, transition};

/// Answers "was this served certificate ever seen in a CT log?" from local storage.
///
/// Contract: no network; an indexed lookup, run on a blocking thread (`spawn_blocking`) and
/// possibly from several probes at once. Matches on the certificate's SHA-256 or, when given,
/// its TBS identity (which a precertificate shares with its final certificate). `None` means
/// "cannot tell" (storage unavailable), not "not seen".
pub trait CtLookup: Send + Sync {
    fn seen(&self, cert_sha256: &[u8; 32], tbs_sha256: Option<&[u8; 32]>) -> Option<bool>;
}

/// Time allowed for each phase of one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Name resolution. Default 5 s.
    pub dns: Duration,
    /// TCP connect, per address. Default 5 s.
    pub connect: Duration,
    /// TLS handshake after connect, per address. Default 10 s.
    pub handshake: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            dns: Duration::from_secs(5),
            connect: Duration::from_secs(5),
            handshake: Duration::from_secs(10),
        }
    }
}

/// Which resolved addresses to probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Families {
    #[default]
    Any,
    V4Only,
    V6Only,
}

/// Everything a probe run needs besides its targets.
#[derive(Clone)]
pub struct ProbeOptions {
    pub thresholds: Thresholds,
    pub timeouts: Timeouts,
    /// Connections (and DNS lookups) in flight at once. Default 50, range 1..=10000; raise the
    /// open-files limit above ~1000.
    pub concurrency: usize,
    pub roots: Arc<TrustRoots>,
    pub resolver: Arc<dyn Resolver>,
    pub families: Families,
    pub ct_lookup: Option<Arc<dyn CtLookup>>,
    /// Computes the TBS identity for the CT lookup; without it only the SHA-256 is looked up.
    pub tbs_identity: Option<TbsIdentityFn>,
    /// Which resolved addresses may be connected to; a refused one gets `blocked_address` and no connection.
    /// `None` (the CLI, the daemon's own probes): every address.
    pub address_policy: Option<Arc<address::AddressPolicy>>,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            thresholds: Thresholds::default(),
            timeouts: Timeouts::default(),
            concurrency: 50,
            roots: Arc::new(TrustRoots::webpki()),
            resolver: Arc::new(SystemResolver),
            families: Families::Any,
            ct_lookup: None,
            tbs_identity: None,
            address_policy: None,
        }
    }
}

impl std::fmt::Debug for ProbeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeOptions")
            .field("thresholds", &self.thresholds)
            .field("timeouts", &self.timeouts)
            .field("concurrency", &self.concurrency)
            .field("roots", &self.roots.len())
            .field("resolver", &self.resolver)
            .field("families", &self.families)
            .field("ct_lookup", &self.ct_lookup.is_some())
            .field("address_policy", &self.address_policy)
            .finish()
    }
}

/// Probes every target and returns one report per target, in input order.
///
/// At most `opts.concurrency` hosts are in progress and at most as many connections open at
/// once. Dropping the future aborts the probes in flight.
pub async fn probe_hosts(targets: Vec<Target>, opts: &ProbeOptions) -> Vec<HostReport> {
    let width = opts.concurrency.max(1);
    let ctx = Arc::new(host::Context::new(opts.clone(), width));
    let host_slots = Arc::new(Semaphore::new(width));
    let mut tasks = JoinSet::new();
    let mut reports: Vec<Option<HostReport>> = vec![None; targets.len()];
    for (index, target) in targets.into_iter().enumerate() {
        let slot = host_slots
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore is never closed");
        let ctx = ctx.clone();
        tasks.spawn(async move {
            let report = host::probe_host(&ctx, target).await;
            drop(slot);
            (index, report)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((index, report)) => reports[index] = Some(report),
            // A panic in a probe is a bug: surface it rather than invent a status.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("probe task cancelled: {e}"),
        }
    }
    reports
        .into_iter()
        .map(|r| r.expect("every spawned probe reported"))
        .collect()
}

/// Probes one target (same rules as [`probe_hosts`]).
pub async fn probe_host(target: Target, opts: &ProbeOptions) -> HostReport {
    probe_hosts(vec![target], opts).await.remove(0)
}
