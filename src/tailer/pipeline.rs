//! The catch-up pipeline of one log: parallel ordered downloads, CPU work off the runtime, verified commits.

use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, stream};

use super::{TailError, TailOutcome, Tailer, blocking};
use crate::ct::cert::{self, CertInfo};
use crate::ct::chain;
use crate::ct::leaf::EntryType;
use crate::ct::merkle::{self, CollapsedTree, Hash};
use crate::ctlog::{CtLog, LogError, RawEntry, TreeHead};
use crate::store::{Batch, MalformedEntry, StoredEntry};
use crate::watchlist::{MatchInput, Watchlist};

/// A downloaded and processed range, ready to be verified and committed.
#[derive(Default)]
struct Processed {
    leaf_hashes: Vec<Hash>,
    entries: Vec<StoredEntry>,
    malformed: Vec<MalformedEntry>,
}

impl Processed {
    fn append(&mut self, mut other: Processed) {
        self.leaf_hashes.append(&mut other.leaf_hashes);
        self.entries.append(&mut other.entries);
        self.malformed.append(&mut other.malformed);
    }
}

/// Split `[from, to)` into ranges aligned to multiples of `size`, so that tiled logs get whole tiles.
pub(crate) fn ranges(from: u64, to: u64, size: u64) -> impl Iterator<Item = (u64, u64)> {
    let size = size.max(1);
    let mut next = from;
    std::iter::from_fn(move || {
        if next >= to {
            return None;
        }
        let end = ((next / size + 1) * size).min(to);
        let r = (next, end);
        next = end;
        Some(r)
    })
}

/// Download, verify and commit entries `[tree.size(), head.tree_size)`.
pub(super) async fn catch_up<L: CtLog>(
    t: &mut Tailer<L>,
    mut tree: CollapsedTree,
    head: TreeHead,
) -> Result<TailOutcome, TailError> {
    let watchlist = t.watchlist.borrow().clone();
    let store_all = t.config.store_all;
    let log = t.log.clone();
    let log_url = t.info.url.clone();
    let downloads = stream::iter(ranges(tree.size(), head.tree_size, log.range_size()))
        .map(|(start, end)| {
            let log = log.clone();
            let watchlist = watchlist.clone();
            let url = log_url.clone();
            async move {
                let p = fetch_and_process(&*log, &url, start, end, &head, &watchlist, store_all).await?;
                if p.malformed.is_empty() {
                    return Ok(p);
                }
                // A malformed entry may be a fault between us and the log (a proxy, a cache): ask once more before
                // accepting it as malformed.
                tracing::info!(log = %url, start, end, malformed = p.malformed.len(), "malformed entries; fetching the range again");
                let p = fetch_and_process(&*log, &url, start, end, &head, &watchlist, store_all).await?;
                for m in &p.malformed {
                    tracing::warn!(log = %url, index = m.index, reason = %m.reason, "malformed log entry (stored; tailing continues)");
                }
                Ok(p)
            }
        })
        .buffered(t.config.parallel_requests.max(1));
    tokio::pin!(downloads);

    let mut pending = Processed::default();
    let mut shutdown = t.shutdown.clone();
    let mut outcome = TailOutcome::CaughtUp;
    let mut failure = None;
    loop {
        let next = tokio::select! {
            biased;
            _ = shutdown.wait_for(|s| *s) => { outcome = TailOutcome::Shutdown; break; }
            next = downloads.next() => next,
        };
        match next {
            None => break,
            Some(Err(e)) => {
                failure = Some(e);
                break;
            }
            Some(Ok(p)) => {
                t.stats.add_downloaded(p.leaf_hashes.len() as u64);
                // A long catch-up is contact too: health checks must not call a busy log silent.
                t.stats.record_success();
                pending.append(p);
                if pending.leaf_hashes.len() as u64 >= t.config.batch_entries {
                    commit(t, &mut tree, std::mem::take(&mut pending), &head).await?;
                }
            }
        }
    }
    // Finish the batch in hand: what was downloaded contiguously is verified and committed, even on shutdown or
    // when a later range failed. The proof request is bounded so that shutdown stays prompt.
    if !pending.leaf_hashes.is_empty() {
        let flush = commit(t, &mut tree, pending, &head);
        match tokio::time::timeout(Duration::from_secs(20), flush).await {
            Ok(r) => r?,
            Err(_) => {
                tracing::warn!(log = %t.info.url, "gave up committing the partial batch (proof timed out)")
            }
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(outcome),
    }
}

/// Download `[start, end)` and process it off the async threads.
async fn fetch_and_process<L: CtLog>(
    log: &L,
    url: &str,
    start: u64,
    end: u64,
    head: &TreeHead,
    watchlist: &Arc<Watchlist>,
    store_all: bool,
) -> Result<Processed, TailError> {
    let raw = log.fetch_range(start, end, head).await?;
    let (url, watchlist) = (url.to_string(), watchlist.clone());
    tokio::task::spawn_blocking(move || process(&url, start, raw, &watchlist, store_all))
        .await
        .map_err(|e| TailError::Internal(format!("processing task failed: {e}")))
}

/// Verify a processed batch against the signed head and commit it with the log's new position.
async fn commit<L: CtLog>(
    t: &mut Tailer<L>,
    tree: &mut CollapsedTree,
    batch: Processed,
    head: &TreeHead,
) -> Result<(), TailError> {
    let start = tree.size();
    let mut next = tree.clone();
    for h in &batch.leaf_hashes {
        next.push(*h);
    }
    verify_against_head(t, &next, head).await?;
    let entry_count = batch.leaf_hashes.len() as u64;
    let malformed = batch.malformed.len() as u64;
    let b = Batch {
        log: t.info.clone(),
        start,
        tree: next.clone(),
        head: *head,
        entries: batch.entries,
        malformed: batch.malformed,
        entry_count,
        now: crate::store::unix_now(),
    };
    let store = t.store.clone();
    let outcome = blocking(move || store.commit_batch(&b)).await?;
    *tree = next;
    t.stats.add_malformed(malformed);
    t.stats.set_verified(tree.size());
    t.stats.add_processed(entry_count);
    if outcome.new_events > 0 {
        t.outbox.wake();
    }
    tracing::debug!(log = %t.info.url, size = tree.size(), new_certs = outcome.new_certificates, "committed");
    Ok(())
}

/// The entries under `next` belong to the signed tree: same root at the same size, or a valid consistency proof.
async fn verify_against_head<L: CtLog>(
    t: &Tailer<L>,
    next: &CollapsedTree,
    head: &TreeHead,
) -> Result<(), TailError> {
    let mismatch = |message: String| {
        TailError::Log(LogError::RootMismatch {
            log: t.info.url.clone(),
            message,
        })
    };
    if next.size() == head.tree_size {
        if next.root() != head.root_hash {
            return Err(mismatch(format!(
                "entries up to {} hash to {} but the signed head says {}",
                next.size(),
                hex::encode(next.root()),
                hex::encode(head.root_hash)
            )));
        }
        return Ok(());
    }
    let proof = t.log.consistency_proof(next.size(), head.tree_size).await?;
    merkle::verify_consistency(
        next.size(),
        head.tree_size,
        &next.root(),
        &head.root_hash,
        &proof,
    )
    .map_err(|e| {
        mismatch(format!(
            "entries up to {} (root {}) are not consistent with the signed head of size {}: {e}",
            next.size(),
            hex::encode(next.root()),
            head.tree_size
        ))
    })
}

/// Leaf hashes, certificate decoding and watchlist matching for one downloaded range (CPU work).
fn process(
    log: &str,
    start: u64,
    raw: Vec<RawEntry>,
    watchlist: &Arc<Watchlist>,
    store_all: bool,
) -> Processed {
    let mut out = Processed {
        leaf_hashes: Vec::with_capacity(raw.len()),
        ..Default::default()
    };
    for (i, r) in raw.into_iter().enumerate() {
        let index = start + i as u64;
        out.leaf_hashes.push(merkle::leaf_hash(&r.leaf_input));
        let entry = match r.entry {
            Ok(e) => e,
            Err(reason) => {
                out.malformed.push(malformed(
                    index,
                    format!("leaf: {reason}"),
                    r.leaf_input,
                    r.extra_data,
                ));
                continue;
            }
        };
        let mut info: CertInfo = match cert::leaf_info(&entry) {
            Ok(info) => info,
            Err(e) => {
                out.malformed.push(malformed(
                    index,
                    format!("certificate: {e}"),
                    r.leaf_input,
                    r.extra_data,
                ));
                continue;
            }
        };
        // The leaf decides whether the entry matters; only then is what the log served next to it checked
        // (signature verification is the expensive part), and the issuer policies decided again with what it proved.
        let mut matches = watchlist.match_cert(&MatchInput::from_cert(&info));
        if matches.is_empty() && !store_all {
            continue;
        }
        info.apply_chain(chain::check(&entry));
        if let Some(reason) = info.chain.error() {
            tracing::debug!(%log, index, %reason, "chain error (the entry is reported from its leaf)");
        }
        if !matches.is_empty() {
            matches = watchlist.match_cert(&MatchInput::from_cert(&info));
        }
        let der = match entry.entry_type {
            EntryType::X509 => Some(entry.signed_entry),
            EntryType::Precert => entry.pre_certificate.filter(|_| info.chain.is_proven()),
        };
        out.entries.push(StoredEntry {
            index,
            timestamp_ms: entry.timestamp_ms,
            entry_type: entry.entry_type,
            info,
            der,
            matches,
        });
    }
    out
}

fn malformed(
    index: u64,
    reason: String,
    leaf_input: Vec<u8>,
    extra_data: Vec<u8>,
) -> MalformedEntry {
    MalformedEntry {
        index,
        reason,
        leaf_input,
        extra_data,
    }
}

#[cfg(test)]
mod tests {
    use super::ranges;

    #[test]
    fn ranges_are_aligned_and_cover_everything() {
        let r: Vec<_> = ranges(10, 1000, 256).collect();
        assert_eq!(r, vec![(10, 256), (256, 512), (512, 768), (768, 1000)]);
        assert_eq!(ranges(5, 5, 256).count(), 0);
        assert_eq!(
            ranges(0, 3, 1).collect::<Vec<_>>(),
            vec![(0, 1), (1, 2), (2, 3)]
        );
    }
}
