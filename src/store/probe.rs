//! Probe targets and probe history: which hosts the expiry probe visits, when, and what they served.
//!
//! Targets come from matching certificates (queued inside [`Store::commit_batch`], in the batch's transaction,
//! so a kill cannot lose one) or are added by hand. A probe result, the target's new schedule and failure
//! count, and the event it causes are written in ONE transaction by [`Store::record_probe`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use rusqlite::{OptionalExtension, Row, Transaction, params};
use serde::Serialize;

use super::{Store, StoreError, outbox::insert_event};
use crate::event::Event;
use crate::probe::target::{DEFAULT_PORT, Target};
use crate::probe::{CtLookup, HostReport, ProbeSnapshot};
use crate::watchlist::{Match, MatchKind};

/// Where a probe target came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetSource {
    /// A name of a certificate that matched the watchlist.
    Ct,
    /// Added by hand.
    Manual,
}

impl TargetSource {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetSource::Ct => "ct",
            TargetSource::Manual => "manual",
        }
    }

    pub(super) fn parse(s: &str) -> TargetSource {
        if s == "manual" {
            TargetSource::Manual
        } else {
            TargetSource::Ct
        }
    }
}

/// A host the daemon probes on a schedule.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProbeTarget {
    pub domain: String,
    pub port: u16,
    pub tags: Vec<String>,
    pub source: TargetSource,
    /// Unix seconds.
    pub added_at: i64,
    pub next_probe_at: i64,
    pub last_probed_at: Option<i64>,
    /// Network failures in a row, up to and including the last probe.
    pub consecutive_failures: u32,
    /// The last result that counted for alerting.
    pub snapshot: Option<ProbeSnapshot>,
}

/// What [`Store::record_probe`] writes.
pub struct ProbeRecord<'a> {
    pub report: &'a HostReport,
    /// Unix seconds.
    pub probed_at: i64,
    /// Network failures in a row including this probe (0 when this one was not one).
    pub consecutive_failures: u32,
    /// The new alerting snapshot; `None` keeps the stored one (a first network failure is waited out).
    pub snapshot: Option<&'a ProbeSnapshot>,
    pub next_probe_at: i64,
    /// The event this result causes, queued for every sink in the same transaction.
    pub event: Option<&'a Event>,
    /// The complete findings of [`crate::probe::renewal`] for this result (stale deployment, renewal
    /// missing); `None` leaves the stored ones as they are (nothing was served, so nothing can be judged).
    pub findings: Option<&'a [super::FindingRecord]>,
}

pub(super) const TARGET_COLUMNS: &str = "domain, port, tags, source, added_at, next_probe_at, last_probed_at, \
     consecutive_failures, snapshot";
pub(super) fn json_err(what: &'static str) -> impl Fn(serde_json::Error) -> StoreError {
    move |source| StoreError::Json { what, source }
}

/// Column text -> an enum serialised as a JSON string (`"expired"`, `"CRITICAL"`).
pub(super) fn parse_enum<T: serde::de::DeserializeOwned>(
    what: &'static str,
    s: String,
) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(s)).map_err(json_err(what))
}

/// The raw columns of a target row; JSON is decoded by [`RawTarget::decode`] outside rusqlite's closure.
pub(super) struct RawTarget(
    pub(super) ProbeTarget,
    pub(super) String,
    pub(super) Option<String>,
);

impl RawTarget {
    pub(super) fn read(r: &Row<'_>) -> rusqlite::Result<RawTarget> {
        Ok(RawTarget(
            ProbeTarget {
                domain: r.get(0)?,
                port: r.get::<_, i64>(1)? as u16,
                tags: Vec::new(),
                source: TargetSource::parse(&r.get::<_, String>(3)?),
                added_at: r.get(4)?,
                next_probe_at: r.get(5)?,
                last_probed_at: r.get(6)?,
                consecutive_failures: r.get::<_, i64>(7)? as u32,
                snapshot: None,
            },
            r.get(2)?,
            r.get(8)?,
        ))
    }

    pub(super) fn decode(self) -> Result<ProbeTarget, StoreError> {
        let RawTarget(mut t, tags, snapshot) = self;
        t.tags = serde_json::from_str(&tags).map_err(json_err("probe_targets.tags"))?;
        t.snapshot = snapshot
            .map(|s| serde_json::from_str(&s))
            .transpose()
            .map_err(json_err("probe_targets.snapshot"))?;
        Ok(t)
    }
}

/// A certificate name worth probing: a host name (not a wildcard, not an IP address), normalised.
pub fn probe_name(name: &str) -> Option<String> {
    if name.starts_with("*.") || name.parse::<IpAddr>().is_ok() {
        return None;
    }
    let target = Target::new(name, DEFAULT_PORT).ok()?;
    (target.host.parse::<IpAddr>().is_err()).then_some(target.host)
}

/// Queue the matched names of a newly stored certificate as probe targets (port 443), inside the batch's
/// transaction. Look-alike matches are not queued: they are someone else's hosts, not the watched domains.
/// Returns how many targets are new.
pub(super) fn queue_matched_names(
    tx: &Transaction<'_>,
    matches: &[Match],
    now: i64,
) -> Result<usize, StoreError> {
    let mut added = 0;
    for (domain, tags) in matched_probe_names(matches) {
        if upsert_target(tx, &domain, DEFAULT_PORT, &tags, TargetSource::Ct, now)? {
            added += 1;
        }
    }
    Ok(added)
}

/// The hosts to probe for a certificate's matches, each with the union of its matches' tags (both backends).
pub(super) fn matched_probe_names(matches: &[Match]) -> BTreeMap<String, BTreeSet<String>> {
    let mut wanted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in matches.iter().filter(|m| m.kind != MatchKind::Lookalike) {
        // An `ip:` item's address is probed as is (no SNI); other IP SANs are not probed.
        let name = if m.kind == MatchKind::Ip {
            Target::new(&m.name, DEFAULT_PORT).ok().map(|t| t.host)
        } else {
            probe_name(&m.name)
        };
        if let Some(name) = name {
            wanted
                .entry(name)
                .or_default()
                .extend(m.tags.iter().cloned());
        }
    }
    wanted
}

pub(super) fn upsert_target(
    tx: &Transaction<'_>,
    domain: &str,
    port: u16,
    tags: &BTreeSet<String>,
    source: TargetSource,
    now: i64,
) -> Result<bool, StoreError> {
    let existing: Option<String> = tx
        .query_row(
            "SELECT tags FROM probe_targets WHERE domain = ?1 AND port = ?2",
            params![domain, port],
            |r| r.get(0),
        )
        .optional()?;
    let Some(existing) = existing else {
        let tags: Vec<&String> = tags.iter().collect();
        tx.execute(
            "INSERT INTO probe_targets (domain, port, tags, source, added_at, next_probe_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            params![
                domain,
                port,
                serde_json::to_string(&tags).map_err(json_err("probe_targets.tags"))?,
                source.as_str(),
                now
            ],
        )?;
        return Ok(true);
    };
    let mut merged: BTreeSet<String> =
        serde_json::from_str(&existing).map_err(json_err("probe_targets.tags"))?;
    let before = merged.len();
    merged.extend(tags.iter().cloned());
    if merged.len() != before {
        tx.execute(
            "UPDATE probe_targets SET tags = ?3 WHERE domain = ?1 AND port = ?2",
            params![
                domain,
                port,
                serde_json::to_string(&merged).map_err(json_err("probe_targets.tags"))?
            ],
        )?;
    }
    Ok(false)
}

impl Store {
    /// Add a target by hand (or add `tags` to an existing one). Due at once when new; returns true when new.
    pub fn add_probe_target(
        &self,
        target: &Target,
        tags: &[String],
        now: i64,
    ) -> Result<bool, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.add_probe_target(target, tags, now);
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let tags: BTreeSet<String> = tags.iter().cloned().collect();
        let added = upsert_target(
            &tx,
            &target.host,
            target.port,
            &tags,
            TargetSource::Manual,
            now,
        )?;
        tx.commit()?;
        Ok(added)
    }

    /// Targets whose next probe is due at `now`, the longest-waiting first, at most `limit`. On a database shared
    /// by several instances they are claimed for this one (others skip them until probed or the claim expires).
    pub fn due_probe_targets(
        &self,
        now: i64,
        limit: usize,
    ) -> Result<Vec<ProbeTarget>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.due_probe_targets(now, limit, self.instance().unwrap_or(""));
        }
        self.select_targets(
            &format!(
                "SELECT {TARGET_COLUMNS} FROM probe_targets WHERE next_probe_at <= ?1
                 ORDER BY next_probe_at, domain, port LIMIT ?2"
            ),
            params![now, limit as i64],
        )
    }

    /// The earliest `next_probe_at` of any target.
    pub fn next_probe_due(&self) -> Result<Option<i64>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.next_probe_due();
        }
        Ok(self
            .conn()
            .query_row("SELECT MIN(next_probe_at) FROM probe_targets", [], |r| {
                r.get(0)
            })?)
    }

    /// One target.
    pub fn probe_target(&self, domain: &str, port: u16) -> Result<Option<ProbeTarget>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.probe_target(domain, port);
        }
        Ok(self
            .select_targets(
                &format!(
                    "SELECT {TARGET_COLUMNS} FROM probe_targets WHERE domain = ?1 AND port = ?2"
                ),
                params![domain, port],
            )?
            .pop())
    }

    /// Every target, by domain.
    pub fn probe_targets(&self) -> Result<Vec<ProbeTarget>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.probe_targets();
        }
        self.select_targets(
            &format!("SELECT {TARGET_COLUMNS} FROM probe_targets ORDER BY domain, port"),
            [],
        )
    }

    fn select_targets(
        &self,
        sql: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<ProbeTarget>, StoreError> {
        let raw: Vec<RawTarget> = {
            let conn = self.conn();
            let mut stmt = conn.prepare_cached(sql)?;
            stmt.query_map(args, RawTarget::read)?
                .collect::<Result<_, _>>()?
        };
        raw.into_iter().map(RawTarget::decode).collect()
    }

    /// Store a probe result with its consequences, atomically: a history row, the target's failure count,
    /// alerting snapshot and next probe time, and the event (if any) queued for every sink.
    /// Returns the history row's id.
    pub fn record_probe(&self, rec: &ProbeRecord<'_>) -> Result<i64, StoreError> {
        let routes = self.sink_routes();
        if let Some(pg) = self.pg() {
            return pg.record_probe(rec, &routes);
        }
        let r = rec.report;
        let report_json = serde_json::to_string(r).map_err(json_err("probe_results.report"))?;
        let snapshot = rec
            .snapshot
            .map(serde_json::to_string)
            .transpose()
            .map_err(json_err("probe_targets.snapshot"))?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO probe_results (domain, port, probed_at, status, level, days_left, not_after,
                 cert_sha256, issuer, seen_in_ct, report)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                r.domain,
                r.port,
                rec.probed_at,
                r.status.as_str(),
                r.level.as_str(),
                r.days_left,
                r.not_after,
                r.cert_sha256,
                r.issuer,
                r.seen_in_ct,
                report_json
            ],
        )?;
        let id = tx.last_insert_rowid();
        tx.execute(
            "UPDATE probe_targets SET last_probed_at = ?3, consecutive_failures = ?4,
                 next_probe_at = ?5, snapshot = COALESCE(?6, snapshot)
             WHERE domain = ?1 AND port = ?2",
            params![
                r.domain,
                r.port,
                rec.probed_at,
                rec.consecutive_failures,
                rec.next_probe_at,
                snapshot
            ],
        )?;
        if let Some(ev) = rec.event {
            insert_event(&tx, ev, &routes, rec.probed_at)?;
        }
        if let Some(findings) = rec.findings {
            super::expiry::apply_findings(
                &tx,
                &r.domain,
                r.port,
                findings,
                &routes,
                rec.probed_at,
            )?;
        }
        tx.commit()?;
        Ok(id)
    }

    /// Move a target's next probe to `at` without recording a result (a target that cannot be probed).
    pub fn postpone_probe_target(
        &self,
        domain: &str,
        port: u16,
        at: i64,
    ) -> Result<(), StoreError> {
        if let Some(pg) = self.pg() {
            return pg.postpone_probe_target(domain, port, at);
        }
        self.conn().execute(
            "UPDATE probe_targets SET next_probe_at = ?3 WHERE domain = ?1 AND port = ?2",
            params![domain, port, at],
        )?;
        Ok(())
    }
}

/// The probe asks the store whether a served certificate was ever seen in a followed log. "Seen" means seen
/// by this ctwatch (stored matching certificates, or every certificate with `--store-all`), not by the whole
/// CT ecosystem.
impl CtLookup for Store {
    fn seen(&self, cert_sha256: &[u8; 32], tbs_sha256: Option<&[u8; 32]>) -> Option<bool> {
        match self.seen_in_ct(cert_sha256, tbs_sha256) {
            Ok(seen) => Some(seen),
            Err(e) => {
                tracing::warn!("CT lookup of a served certificate failed: {e}");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, kind: MatchKind, tags: &[&str]) -> Match {
        Match {
            item: "example.com".into(),
            source: "watch.txt:1".into(),
            name: name.into(),
            name_unicode: name.into(),
            kind,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            brand: None,
            reason: None,
        }
    }

    fn queue(store: &Store, matches: &[Match], now: i64) -> usize {
        let mut conn = store.conn();
        let tx = conn.transaction().unwrap();
        let added = queue_matched_names(&tx, matches, now).unwrap();
        tx.commit().unwrap();
        added
    }

    fn shown(store: &Store) -> Vec<(String, Vec<String>, i64)> {
        store
            .probe_targets()
            .unwrap()
            .into_iter()
            .map(|t| (t.domain, t.tags, t.next_probe_at))
            .collect()
    }

    #[test]
    fn matched_host_names_are_queued_once_with_every_tag() {
        use MatchKind::*;
        let store = Store::open_in_memory().unwrap();
        let added = queue(
            &store,
            &[
                m("www.example.com", Domain, &["b"]),
                m("www.example.com", UnauthorizedIssuer, &["a"]),
                m("*.example.com", Domain, &["a"]),
                m("192.0.2.1", Domain, &["a"]),
                m("2001:db8::1", Domain, &["a"]),
                m("examp1e.com", Lookalike, &["a"]),
                m("api.example.com", Exact, &[]),
            ],
            100,
        );
        assert_eq!(added, 2);
        let want = vec![
            ("api.example.com".to_string(), vec![], 100),
            (
                "www.example.com".to_string(),
                vec!["a".into(), "b".into()],
                100,
            ),
        ];
        assert_eq!(shown(&store), want);
        // Seen again later, with one more tag: no new target, no new due time, tags merged.
        let added = queue(&store, &[m("www.example.com", Regex, &["c", "a"])], 500);
        assert_eq!(added, 0);
        let got = shown(&store);
        assert_eq!(got[1].1, ["a", "b", "c"]);
        assert_eq!(got[1].2, 100);
    }

    #[test]
    fn only_host_names_are_probed() {
        assert_eq!(
            probe_name("www.example.com"),
            Some("www.example.com".into())
        );
        assert_eq!(
            probe_name("WWW.Example.COM."),
            Some("www.example.com".into())
        );
        assert_eq!(probe_name("*.example.com"), None);
        assert_eq!(probe_name("10.0.0.1"), None);
        assert_eq!(probe_name("::1"), None);
        assert_eq!(probe_name("bad name.example"), None);
    }

    #[test]
    fn manual_targets_keep_their_source() {
        let store = Store::open_in_memory().unwrap();
        let t = Target::new("vpn.example.com", 8443).unwrap();
        assert!(store.add_probe_target(&t, &["ops".into()], 7).unwrap());
        assert!(!store.add_probe_target(&t, &[], 9).unwrap());
        let got = store
            .probe_target("vpn.example.com", 8443)
            .unwrap()
            .unwrap();
        assert_eq!(got.source, TargetSource::Manual);
        assert_eq!((got.added_at, got.next_probe_at), (7, 7));
        assert_eq!(got.tags, ["ops"]);
        assert_eq!(store.due_probe_targets(6, 10).unwrap(), []);
        assert_eq!(store.due_probe_targets(7, 10).unwrap(), [got]);
        assert_eq!(store.next_probe_due().unwrap(), Some(7));
    }
}
