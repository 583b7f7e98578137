//! One verified batch on PostgreSQL, in one transaction (see `store/batch.rs` for the contract).
//!
//! The SQLite backend writes row by row (cheap in-process calls); here every round trip counts, so the bulk of a
//! `--store-all` batch goes in set-based statements over arrays (`INSERT … SELECT FROM unnest($1, $2, …) ON
//! CONFLICT DO NOTHING`), one per table: certificates, fingerprints, sightings, names. Only the rare matched
//! entries take the row-by-row path (matches, probe targets, outbox events), in entry order, so event ids keep
//! the order SQLite gives them.

use std::collections::{HashMap, HashSet};

use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::types::ToSql;

use super::PgStore;
use super::outbox::insert_event;
use crate::event;
use crate::store::{
    Batch, BatchOutcome, SinkRoute, StoreError, StoredEntry, probe::matched_probe_names,
    reverse_name,
};

impl PgStore {
    /// `fence`: this instance's ID when several share the database; the batch is refused unless the instance
    /// holds the log's lease now (checked in this transaction, the lease row share-locked until it ends: a
    /// takeover waits for this commit, and a former owner cannot advance the position).
    pub fn commit_batch(
        &self,
        batch: &Batch,
        routes: &[SinkRoute],
        fence: Option<&str>,
    ) -> Result<BatchOutcome, StoreError> {
        self.in_transaction(async |tx| {
            if let Some(instance) = fence {
                let held = tx
                    .query_opt(
                        crate::lease::pg::LEASE_HELD_SQL,
                        &[&&batch.log.log_id[..], &instance],
                    )
                    .await?
                    .is_some();
                if !held {
                    return Err(StoreError::LeaseLost {
                        log: batch.log.url.clone(),
                        instance: instance.to_string(),
                    });
                }
            }
            // The row lock serialises two writers of one log (a second instance, a stale task): the loser sees
            // the position the winner committed and fails with PositionMismatch.
            let stored: Option<i64> = tx
                .query_opt(
                    "SELECT verified_size FROM logs WHERE log_id = $1 FOR UPDATE",
                    &[&&batch.log.log_id[..]],
                )
                .await?
                .map(|r| r.get(0));
            if stored != Some(batch.start as i64) {
                return Err(StoreError::PositionMismatch {
                    log: batch.log.url.clone(),
                    batch_start: batch.start,
                    stored,
                });
            }
            let mut outcome = BatchOutcome::default();
            if !batch.entries.is_empty() {
                store_entries(tx, batch, routes, &mut outcome).await?;
            }
            store_malformed(tx, batch).await?;
            let root = batch.tree.root();
            let verified_ts = (batch.head.tree_size == batch.tree.size())
                .then_some(batch.head.timestamp_ms as i64);
            let stmt = tx
                .prepare_cached(
                    "UPDATE logs SET collapsed_tree = $2, verified_size = $3, verified_root = $4,
                         verified_sth_timestamp = COALESCE($5, verified_sth_timestamp),
                         entries_processed = entries_processed + $6, last_success_at = $7
                     WHERE log_id = $1",
                )
                .await?;
            tx.execute(
                &stmt,
                &[
                    &&batch.log.log_id[..],
                    &batch.tree.to_bytes(),
                    &(batch.tree.size() as i64),
                    &&root[..],
                    &verified_ts,
                    &(batch.entry_count as i64),
                    &batch.now,
                ],
            )
            .await?;
            Ok(outcome)
        })
    }
}

/// An entry's certificate fingerprint: empty when a precert's served pre_certificate was not proven (as SQLite).
fn cert_sha(entry: &StoredEntry) -> &[u8] {
    entry.info.cert_sha256.as_ref().map_or(&[], |h| &h[..])
}

fn json(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

async fn store_entries(
    tx: &Transaction<'_>,
    batch: &Batch,
    routes: &[SinkRoute],
    outcome: &mut BatchOutcome,
) -> Result<(), StoreError> {
    // The first entry of each certificate in the batch is the one that may insert it (as SQLite's row-by-row
    // order decides).
    let mut first: HashMap<&[u8], usize> = HashMap::new();
    for (i, e) in batch.entries.iter().enumerate() {
        first.entry(&e.info.tbs_sha256[..]).or_insert(i);
    }
    let mut firsts: Vec<usize> = first.values().copied().collect();
    firsts.sort_unstable();
    let ids = insert_certificates(tx, batch, &firsts).await?;
    let new_certs: Vec<usize> = firsts
        .iter()
        .copied()
        .filter(|i| {
            ids.inserted
                .contains(&batch.entries[*i].info.tbs_sha256[..])
        })
        .collect();
    let id_of = |e: &StoredEntry| ids.by_tbs[&e.info.tbs_sha256[..]];
    // Independent statements, polled together: tokio-postgres pipelines them on the connection (one round trip
    // instead of four; the server still runs them one after the other, in this transaction).
    let ((), sightings, names) = futures::try_join!(
        insert_fingerprints(tx, batch, &id_of),
        insert_sightings(tx, batch, &id_of),
        insert_names(tx, batch, &new_certs, &id_of),
    )?;
    outcome.new_sightings += sightings;
    outcome.new_certificates += new_certs.len();
    outcome.new_names = names;
    for &i in &new_certs {
        let entry = &batch.entries[i];
        if entry.matches.is_empty() {
            continue;
        }
        store_matched(tx, batch, entry, id_of(entry), routes, outcome).await?;
    }
    Ok(())
}

/// Certificate ids by tbs_sha256 for every entry, and which certificates this batch inserted.
struct CertIds<'a> {
    by_tbs: HashMap<&'a [u8], i64>,
    inserted: HashSet<Vec<u8>>,
}

async fn insert_certificates<'a>(
    tx: &Transaction<'_>,
    batch: &'a Batch,
    firsts: &[usize],
) -> Result<CertIds<'a>, StoreError> {
    let es: Vec<&StoredEntry> = firsts.iter().map(|i| &batch.entries[*i]).collect();
    let tbs: Vec<&[u8]> = es.iter().map(|e| &e.info.tbs_sha256[..]).collect();
    let sha: Vec<&[u8]> = es.iter().map(|e| cert_sha(e)).collect();
    let types: Vec<&str> = es.iter().map(|e| e.entry_type.as_str()).collect();
    let subject: Vec<&str> = es.iter().map(|e| e.info.subject.as_str()).collect();
    let issuer: Vec<&str> = es.iter().map(|e| e.info.issuer.as_str()).collect();
    let serial: Vec<&str> = es.iter().map(|e| e.info.serial.as_str()).collect();
    let nb: Vec<i64> = es.iter().map(|e| e.info.not_before).collect();
    let na: Vec<i64> = es.iter().map(|e| e.info.not_after).collect();
    let dns: Vec<String> = es.iter().map(|e| json(&e.info.dns_names)).collect();
    let ips: Vec<String> = es.iter().map(|e| json(&e.info.ip_addresses)).collect();
    let pk: Vec<&[u8]> = es.iter().map(|e| &e.info.pubkey_sha256[..]).collect();
    let der: Vec<Option<&[u8]>> = es.iter().map(|e| e.der.as_deref()).collect();
    let stmt = tx
        .prepare_cached(
            "INSERT INTO certificates (tbs_sha256, cert_sha256, entry_type, subject, issuer, serial, not_before,
                 not_after, dns_names, ip_addresses, pubkey_sha256, der, first_seen)
             SELECT u.*, $13::bigint FROM unnest($1::bytea[], $2::bytea[], $3::text[], $4::text[], $5::text[],
                 $6::text[], $7::bigint[], $8::bigint[], $9::text[], $10::text[], $11::bytea[], $12::bytea[]) u
             ON CONFLICT (tbs_sha256) DO NOTHING
             RETURNING id, tbs_sha256",
        )
        .await?;
    let rows = tx
        .query(
            &stmt,
            &[
                &tbs, &sha, &types, &subject, &issuer, &serial, &nb, &na, &dns, &ips, &pk, &der,
                &batch.now,
            ],
        )
        .await?;
    let mut inserted = HashSet::with_capacity(rows.len());
    let mut found: HashMap<Vec<u8>, i64> = HashMap::with_capacity(tbs.len());
    for r in &rows {
        let t: Vec<u8> = r.get(1);
        found.insert(t.clone(), r.get(0));
        inserted.insert(t);
    }
    if rows.len() < tbs.len() {
        let known: Vec<&[u8]> = tbs
            .iter()
            .copied()
            .filter(|t| !inserted.contains(*t))
            .collect();
        let stmt = tx
            .prepare_cached(
                "SELECT id, tbs_sha256 FROM certificates WHERE tbs_sha256 = ANY($1::bytea[])",
            )
            .await?;
        for r in tx.query(&stmt, &[&known]).await? {
            found.insert(r.get(1), r.get(0));
        }
    }
    let mut by_tbs = HashMap::with_capacity(tbs.len());
    for t in tbs {
        let id = *found.get(t).ok_or_else(|| {
            StoreError::Inconsistent(format!(
                "certificate {} vanished inside its batch transaction",
                hex::encode(t)
            ))
        })?;
        by_tbs.insert(t, id);
    }
    Ok(CertIds { by_tbs, inserted })
}

async fn insert_fingerprints(
    tx: &Transaction<'_>,
    batch: &Batch,
    id_of: &impl Fn(&StoredEntry) -> i64,
) -> Result<(), StoreError> {
    let with_fp: Vec<&StoredEntry> = batch
        .entries
        .iter()
        .filter(|e| !cert_sha(e).is_empty())
        .collect();
    if with_fp.is_empty() {
        return Ok(());
    }
    let sha: Vec<&[u8]> = with_fp.iter().map(|e| cert_sha(e)).collect();
    let ids: Vec<i64> = with_fp.iter().map(|e| id_of(e)).collect();
    let types: Vec<&str> = with_fp.iter().map(|e| e.entry_type.as_str()).collect();
    let stmt = tx
        .prepare_cached(
            "INSERT INTO fingerprints (cert_sha256, cert_id, entry_type)
             SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::text[]) ON CONFLICT DO NOTHING",
        )
        .await?;
    tx.execute(&stmt, &[&sha, &ids, &types]).await?;
    Ok(())
}

async fn insert_sightings(
    tx: &Transaction<'_>,
    batch: &Batch,
    id_of: &impl Fn(&StoredEntry) -> i64,
) -> Result<usize, StoreError> {
    let es = &batch.entries;
    let index: Vec<i64> = es.iter().map(|e| e.index as i64).collect();
    let ids: Vec<i64> = es.iter().map(id_of).collect();
    let types: Vec<&str> = es.iter().map(|e| e.entry_type.as_str()).collect();
    let ts: Vec<i64> = es.iter().map(|e| e.timestamp_ms as i64).collect();
    let sha: Vec<&[u8]> = es.iter().map(cert_sha).collect();
    let stmt = tx
        .prepare_cached(
            "INSERT INTO sightings (log_id, entry_index, cert_id, entry_type, timestamp_ms, cert_sha256)
             SELECT $1::bytea, u.* FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::bigint[], $6::bytea[]) u
             ON CONFLICT DO NOTHING",
        )
        .await?;
    let n = tx
        .execute(
            &stmt,
            &[&&batch.log.log_id[..], &index, &ids, &types, &ts, &sha],
        )
        .await?;
    Ok(n as usize)
}

/// The reversed-name index and the first-seen names of the new certificates; returns the names seen for the
/// first time, in entry and name order.
async fn insert_names(
    tx: &Transaction<'_>,
    batch: &Batch,
    new_certs: &[usize],
    id_of: &impl Fn(&StoredEntry) -> i64,
) -> Result<Vec<String>, StoreError> {
    let mut rnames = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    let mut ids = Vec::new();
    for &i in new_certs {
        let e = &batch.entries[i];
        for name in &e.info.dns_names {
            rnames.push(reverse_name(name));
            names.push(name);
            ids.push(id_of(e));
        }
    }
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let (index_stmt, names_stmt) = futures::try_join!(
        tx.prepare_cached(
            "INSERT INTO cert_names (rname, cert_id) SELECT * FROM unnest($1::text[], $2::bigint[])
             ON CONFLICT DO NOTHING",
        ),
        tx.prepare_cached(
            "INSERT INTO names (name, first_seen, cert_id) SELECT u.name, $2::bigint, u.cert_id
             FROM unnest($1::text[], $3::bigint[]) WITH ORDINALITY u(name, cert_id, n) ORDER BY u.n
             ON CONFLICT DO NOTHING RETURNING name",
        ),
    )?;
    let index_args: [&(dyn ToSql + Sync); 2] = [&rnames, &ids];
    let names_args: [&(dyn ToSql + Sync); 3] = [&names, &batch.now, &ids];
    let (_, fresh) = futures::try_join!(
        tx.execute(&index_stmt, &index_args),
        tx.query(&names_stmt, &names_args),
    )?;
    let mut fresh: HashSet<String> = fresh.iter().map(|r| r.get(0)).collect();
    Ok(names
        .into_iter()
        .filter(|n| fresh.remove(*n))
        .map(String::from)
        .collect())
}

/// A new certificate's watchlist matches, probe targets and outbox events.
async fn store_matched(
    tx: &Transaction<'_>,
    batch: &Batch,
    entry: &StoredEntry,
    cert_id: i64,
    routes: &[SinkRoute],
    outcome: &mut BatchOutcome,
) -> Result<(), StoreError> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO matches (cert_id, kind, item, source, name, tags, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .await?;
    for m in &entry.matches {
        tx.execute(
            &stmt,
            &[
                &cert_id,
                &m.kind.as_str(),
                &m.item,
                &m.source,
                &m.name,
                &json(&m.tags),
                &batch.now,
            ],
        )
        .await?;
    }
    for (domain, tags) in matched_probe_names(&entry.matches) {
        let source = crate::store::TargetSource::Ct;
        if super::probe::upsert_target(
            tx,
            &domain,
            crate::probe::target::DEFAULT_PORT,
            &tags,
            source,
            batch.now,
        )
        .await?
        {
            outcome.new_probe_targets += 1;
        }
    }
    for ev in event::certificate_events(&batch.log, entry) {
        insert_event(tx, &ev, routes, batch.now).await?;
        outcome.new_events += 1;
    }
    Ok(())
}

async fn store_malformed(tx: &Transaction<'_>, batch: &Batch) -> Result<(), StoreError> {
    if batch.malformed.is_empty() {
        return Ok(());
    }
    let m = &batch.malformed;
    let index: Vec<i64> = m.iter().map(|m| m.index as i64).collect();
    let reason: Vec<&str> = m.iter().map(|m| m.reason.as_str()).collect();
    let leaf: Vec<&[u8]> = m.iter().map(|m| &m.leaf_input[..]).collect();
    let extra: Vec<&[u8]> = m.iter().map(|m| &m.extra_data[..]).collect();
    tx.execute(
        "INSERT INTO malformed (log_id, entry_index, reason, leaf_input, extra_data, seen_at)
         SELECT $1::bytea, u.*, $6::bigint FROM unnest($2::bigint[], $3::text[], $4::bytea[], $5::bytea[]) u
         ON CONFLICT DO NOTHING",
        &[&&batch.log.log_id[..], &index, &reason, &leaf, &extra, &batch.now],
    )
    .await?;
    Ok(())
}
