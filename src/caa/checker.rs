//! The CAA checker of the daemon: checks each newly stored matching certificate once and queues `caa_mismatch`
//! when a name's CAA records do not allow its CA.
//!
//! ```text
//!  commit_batch stores a matching certificate
//!        │
//!  loop: caa_candidates (young, unchecked or due again) ──check_names (DNS, cached)──> verdict
//!        └─ record_caa_check: verdict + caa_mismatch event, ONE transaction ──> wake the sink workers
//! ```
//!
//! Allowed and mismatch verdicts are final (announced once, across restarts); an unknown verdict (DNS
//! failure) is retried every `retry` while the certificate is younger than `max_age`. The CA is identified by
//! the certificate's issuer DN (not yet a proven issuer: the chain in the log entry is a hint, see README).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;
use tokio::sync::watch;

use super::table::CaTable;
use super::{CaaLookup, Decision, Verdict, check_names};
use crate::event::{Event, PAYLOAD_VERSION, rfc3339};
use crate::notify::Wake;
use crate::store::{CaaCandidate, CaaRecordRow, Store, unix_now};

/// Event kind of CAA violations.
pub const EVENT_KIND: &str = "caa_mismatch";

/// How the checker works.
#[derive(Clone)]
pub struct CaaConfig {
    pub lookup: Arc<dyn CaaLookup>,
    pub table: Arc<CaTable>,
    /// Only certificates first stored this recently are checked (CAA may have changed since issuance).
    /// Default 24 h.
    pub max_age: Duration,
    /// Re-check after an unknown verdict. Default 15 min.
    pub retry: Duration,
    /// Look for new certificates this often. Default 10 s.
    pub poll: Duration,
    /// Certificates per round. Default 200.
    pub batch: usize,
}

impl std::fmt::Debug for CaaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaaConfig")
            .field("max_age", &self.max_age)
            .field("retry", &self.retry)
            .finish()
    }
}

impl CaaConfig {
    pub fn new(lookup: Arc<dyn CaaLookup>, table: CaTable) -> CaaConfig {
        CaaConfig {
            lookup,
            table: Arc::new(table),
            max_age: Duration::from_secs(24 * 3600),
            retry: Duration::from_secs(15 * 60),
            poll: Duration::from_secs(10),
            batch: 200,
        }
    }
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CaaRound {
    pub checked: usize,
    pub mismatches: usize,
    pub unknown: usize,
}

/// Checks the certificates due at `now`.
pub async fn check_round(store: &Arc<Store>, cfg: &CaaConfig, now: i64) -> Result<CaaRound> {
    let since = now - cfg.max_age.as_secs() as i64;
    let candidates = {
        let (store, batch) = (store.clone(), cfg.batch.max(1));
        tokio::task::spawn_blocking(move || store.caa_candidates(since, now, batch))
            .await
            .context("CAA store task panicked")??
    };
    let mut round = CaaRound::default();
    for c in candidates {
        let Checked {
            verdict,
            detail,
            event,
            retry,
        } = check_one(cfg, &c, now).await;
        round.checked += 1;
        round.mismatches += usize::from(verdict == Verdict::Mismatch);
        round.unknown += usize::from(verdict == Verdict::Unknown);
        let retry = retry.then(|| now + cfg.retry.as_secs() as i64);
        let store = store.clone();
        tokio::task::spawn_blocking(move || {
            store.record_caa_check(&CaaRecordRow {
                cert_id: c.cert_id,
                verdict: verdict.as_str(),
                detail: &detail,
                checked_at: now,
                attempts: c.attempts + 1,
                next_check_at: retry,
                event: event.as_ref(),
            })
        })
        .await
        .context("CAA store task panicked")??;
    }
    Ok(round)
}

/// The outcome of one certificate's check.
struct Checked {
    verdict: Verdict,
    detail: serde_json::Value,
    event: Option<Event>,
    /// Ask again later (a DNS failure); false: final.
    retry: bool,
}

async fn check_one(cfg: &CaaConfig, c: &CaaCandidate, now: i64) -> Checked {
    let names: Vec<String> = c
        .matched_names
        .iter()
        .filter(|n| n.parse::<std::net::IpAddr>().is_err())
        .cloned()
        .collect();
    let Some(ca_domains) = cfg.table.domains_for(&c.issuer) else {
        let detail = json!({
            "issuer": c.issuer,
            "issuer_source": "issuer_dn",
            "error": "the issuing CA is not in the CAA identifier table",
        });
        // Final: asking again will not teach us who the CA is.
        return Checked {
            verdict: Verdict::Unknown,
            detail,
            event: None,
            retry: false,
        };
    };
    let (verdict, per_name) = check_names(cfg.lookup.as_ref(), &names, ca_domains).await;
    let detail = json!({
        "issuer": c.issuer,
        "issuer_source": "issuer_dn",
        "issuer_caa_domains": ca_domains,
        "names": per_name,
    });
    let event =
        (verdict == Verdict::Mismatch).then(|| mismatch_event(c, ca_domains, &per_name, now));
    Checked {
        verdict,
        detail,
        event,
        retry: verdict == Verdict::Unknown,
    }
}

fn mismatch_event(
    c: &CaaCandidate,
    ca_domains: &[String],
    per_name: &[super::NameVerdict],
    now: i64,
) -> Event {
    let forbidden: Vec<&super::NameVerdict> = per_name
        .iter()
        .filter(|v| matches!(v.decision, Some(Decision::Forbidden { .. })))
        .collect();
    let first = forbidden.first().map_or("-", |v| v.name.as_str());
    let reason = forbidden
        .first()
        .and_then(|v| match &v.decision {
            Some(Decision::Forbidden { reason, .. }) => Some(reason.clone()),
            _ => None,
        })
        .unwrap_or_default();
    let title = format!("{first}: CA not allowed by CAA");
    let message = format!(
        "A certificate for {} was issued by {} (CAA identifiers {}), but the CAA records of {} do not allow it: \
         {reason}. Check whether your organisation requested it; if not, ask the CA to revoke it.",
        forbidden
            .iter()
            .map(|v| v.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        c.issuer,
        ca_domains.join(", "),
        forbidden
            .first()
            .and_then(|v| v.relevant_domain.as_deref())
            .unwrap_or("-"),
    );
    let group = c.tags.first().cloned().unwrap_or_else(|| first.to_string());
    Event {
        kind: EVENT_KIND.to_string(),
        group_key: format!("{EVENT_KIND}|{group}"),
        tags: c.tags.clone(),
        payload: json!({
            "version": PAYLOAD_VERSION,
            "kind": EVENT_KIND,
            "title": title,
            "message": message,
            "tbs_sha256": c.tbs_sha256,
            "issuer": c.issuer,
            "issuer_source": "issuer_dn",
            "issuer_caa_domains": ca_domains,
            "dns_names": c.dns_names,
            "names": forbidden,
            "not_before": rfc3339(c.not_before),
            "not_after": rfc3339(c.not_after),
            "timestamp": rfc3339(now),
            "tags": c.tags,
        }),
    }
}

/// The daemon's CAA task: runs until `shutdown` turns true.
pub async fn run_checker(
    store: Arc<Store>,
    cfg: CaaConfig,
    wake: Wake,
    mut shutdown: watch::Receiver<bool>,
) {
    tracing::info!(max_age_secs = cfg.max_age.as_secs(), "CAA checker started");
    loop {
        let round = tokio::select! {
            r = check_round(&store, &cfg, unix_now()) => r,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        let pause = match round {
            Ok(r) => {
                if r.mismatches > 0 {
                    wake.wake();
                }
                if r.checked > 0 {
                    tracing::info!(
                        checked = r.checked,
                        mismatches = r.mismatches,
                        unknown = r.unknown,
                        "CAA round"
                    );
                }
                if r.checked >= cfg.batch.max(1) {
                    Duration::ZERO
                } else {
                    cfg.poll
                }
            }
            Err(e) => {
                tracing::error!("CAA round failed: {e:#}");
                cfg.poll
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

/// The CAA flags of `ctwatch run`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CaaRunArgs {
    /// Check the CAA records of the names of each newly matched certificate and report `caa_mismatch` when
    /// they do not allow its CA (DNS lookups of your watched names; off by default).
    #[arg(long)]
    pub caa: bool,
    /// DNS server for the CAA lookups, IP:PORT (repeatable) [default: the system's resolvers].
    #[arg(long = "caa-resolver", value_name = "ADDR", requires = "caa")]
    pub caa_resolvers: Vec<std::net::SocketAddr>,
    /// Extra `match,domain ...` rows mapping CAs to their CAA identifiers, consulted before the built-in table.
    #[arg(long, value_name = "FILE", requires = "caa")]
    pub caa_ca_table: Option<std::path::PathBuf>,
    /// Only certificates first seen at most this many hours ago are checked (CAA may change after issuance).
    #[arg(long, default_value_t = 24.0)]
    pub caa_max_age_hours: f64,
}

impl CaaRunArgs {
    /// The checker's configuration, or `None` without `--caa`.
    pub fn config(&self) -> Result<Option<CaaConfig>> {
        if !self.caa {
            return Ok(None);
        }
        if !(0.1..=8760.0).contains(&self.caa_max_age_hours) {
            anyhow::bail!(
                "--caa-max-age-hours {} is out of range [0.1, 8760]",
                self.caa_max_age_hours
            );
        }
        let mut table = CaTable::builtin();
        if let Some(path) = &self.caa_ca_table {
            table = table.with_file(path)?;
        }
        let lookup = super::dns::DnsCaa::new(&self.caa_resolvers, Duration::from_secs(5))?;
        let mut cfg = CaaConfig::new(Arc::new(lookup), table);
        cfg.max_age = Duration::from_secs_f64(self.caa_max_age_hours * 3600.0);
        Ok(Some(cfg))
    }
}
