//! One batch of verified log entries, committed in one transaction together with the log's new position.

use rusqlite::{OptionalExtension, Transaction, params};

use super::outbox::insert_event;
use super::{Store, StoreError, reverse_name};
use crate::ct::cert::CertInfo;
use crate::ct::leaf::EntryType;
use crate::ct::merkle::CollapsedTree;
use crate::ctlog::TreeHead;
use crate::event::{self, LogRef};
use crate::watchlist::Match;

/// Entries `[start, tree.size())` of one log, verified against `head`.
pub struct Batch {
    pub log: LogRef,
    pub start: u64,
    /// The log's collapsed tree after this batch.
    pub tree: CollapsedTree,
    /// The signed head these entries were verified against (its size may be larger than `tree.size()`, when a
    /// consistency proof tied the batch's root to it).
    pub head: TreeHead,
    /// Decoded certificates worth storing (matched ones, or all of them with `store_all`).
    pub entries: Vec<StoredEntry>,
    pub malformed: Vec<MalformedEntry>,
    /// Number of entries in the batch (stored or not), for the processed counter.
    pub entry_count: u64,
    pub now: i64,
}

/// A decoded certificate and what it matched.
pub struct StoredEntry {
    pub index: u64,
    pub timestamp_ms: u64,
    pub entry_type: EntryType,
    pub info: CertInfo,
    /// The certificate DER: an x509 entry's certificate, or a precert's pre_certificate once proven (`None`
    /// otherwise: unverified bytes are not stored as the certificate).
    pub der: Option<Vec<u8>>,
    pub matches: Vec<Match>,
}

/// A leaf that failed to decode.
pub struct MalformedEntry {
    pub index: u64,
    pub reason: String,
    pub leaf_input: Vec<u8>,
    pub extra_data: Vec<u8>,
}

/// What a commit did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    pub new_certificates: usize,
    pub new_sightings: usize,
    pub new_events: usize,
    pub new_names: Vec<String>,
    /// Hosts newly queued for the expiry probe (matched names of new certificates).
    pub new_probe_targets: usize,
}

impl Store {
    /// Store a batch and advance the log's position, atomically. The position only moves forward from where it
    /// was: a batch whose `start` is not the stored position is refused (two writers for one log is a bug).
    pub fn commit_batch(&self, batch: &Batch) -> Result<BatchOutcome, StoreError> {
        let routes = self.sink_routes();
        if let Some(pg) = self.pg() {
            return pg.commit_batch(batch, &routes, self.instance());
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let stored: Option<i64> = tx
            .query_row(
                "SELECT verified_size FROM logs WHERE log_id = ?1",
                [&batch.log.log_id[..]],
                |r| r.get(0),
            )
            .optional()?;
        if stored != Some(batch.start as i64) {
            return Err(StoreError::PositionMismatch {
                log: batch.log.url.clone(),
                batch_start: batch.start,
                stored,
            });
        }
        let mut outcome = BatchOutcome::default();
        for entry in &batch.entries {
            store_entry(&tx, batch, entry, &routes, &mut outcome)?;
        }
        for m in &batch.malformed {
            tx.execute(
                "INSERT OR IGNORE INTO malformed (log_id, entry_index, reason, leaf_input, extra_data, seen_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![&batch.log.log_id[..], m.index as i64, m.reason, m.leaf_input, m.extra_data, batch.now],
            )?;
        }
        let root = batch.tree.root();
        let verified_ts =
            (batch.head.tree_size == batch.tree.size()).then_some(batch.head.timestamp_ms as i64);
        tx.execute(
            "UPDATE logs SET collapsed_tree = ?2, verified_size = ?3, verified_root = ?4,
                 verified_sth_timestamp = COALESCE(?5, verified_sth_timestamp),
                 entries_processed = entries_processed + ?6, last_success_at = ?7
             WHERE log_id = ?1",
            params![
                &batch.log.log_id[..],
                batch.tree.to_bytes(),
                batch.tree.size() as i64,
                &root[..],
                verified_ts,
                batch.entry_count as i64,
                batch.now
            ],
        )?;
        tx.commit()?;
        Ok(outcome)
    }
}

fn store_entry(
    tx: &Transaction<'_>,
    batch: &Batch,
    entry: &StoredEntry,
    routes: &[super::SinkRoute],
    outcome: &mut BatchOutcome,
) -> Result<(), StoreError> {
    let info = &entry.info;
    let json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    // A precert whose served pre_certificate was not proven has no known fingerprint: stored as an empty blob
    // (the columns predate this case and are NOT NULL), and not indexed in `fingerprints`.
    let cert_sha256: &[u8] = info.cert_sha256.as_ref().map_or(&[], |h| &h[..]);
    let inserted = tx.execute(
        "INSERT INTO certificates (tbs_sha256, cert_sha256, entry_type, subject, issuer, serial, not_before,
             not_after, dns_names, ip_addresses, pubkey_sha256, der, first_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT(tbs_sha256) DO NOTHING",
        params![
            &info.tbs_sha256[..],
            cert_sha256,
            entry.entry_type.as_str(),
            info.subject,
            info.issuer,
            info.serial,
            info.not_before,
            info.not_after,
            json(&info.dns_names),
            json(&info.ip_addresses),
            &info.pubkey_sha256[..],
            entry.der,
            batch.now
        ],
    )? == 1;
    let cert_id: i64 = if inserted {
        tx.last_insert_rowid()
    } else {
        tx.query_row(
            "SELECT id FROM certificates WHERE tbs_sha256 = ?1",
            [&info.tbs_sha256[..]],
            |r| r.get(0),
        )?
    };
    if !cert_sha256.is_empty() {
        tx.execute(
            "INSERT OR IGNORE INTO fingerprints (cert_sha256, cert_id, entry_type) VALUES (?1, ?2, ?3)",
            params![cert_sha256, cert_id, entry.entry_type.as_str()],
        )?;
    }
    outcome.new_sightings += tx.execute(
        "INSERT OR IGNORE INTO sightings (log_id, entry_index, cert_id, entry_type, timestamp_ms, cert_sha256)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            &batch.log.log_id[..],
            entry.index as i64,
            cert_id,
            entry.entry_type.as_str(),
            entry.timestamp_ms as i64,
            cert_sha256
        ],
    )?;
    if !inserted {
        return Ok(());
    }
    outcome.new_certificates += 1;
    for name in &info.dns_names {
        tx.execute(
            "INSERT OR IGNORE INTO cert_names (rname, cert_id) VALUES (?1, ?2)",
            params![reverse_name(name), cert_id],
        )?;
        if tx.execute(
            "INSERT OR IGNORE INTO names (name, first_seen, cert_id) VALUES (?1, ?2, ?3)",
            params![name, batch.now, cert_id],
        )? == 1
        {
            outcome.new_names.push(name.clone());
        }
    }
    for m in &entry.matches {
        tx.execute(
            "INSERT INTO matches (cert_id, kind, item, source, name, tags, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                cert_id,
                m.kind.as_str(),
                m.item,
                m.source,
                m.name,
                json(&m.tags),
                batch.now
            ],
        )?;
    }
    outcome.new_probe_targets += super::probe::queue_matched_names(tx, &entry.matches, batch.now)?;
    for ev in event::certificate_events(&batch.log, entry) {
        insert_event(tx, &ev, routes, batch.now)?;
        outcome.new_events += 1;
    }
    Ok(())
}
