//! The catch-up pipeline of one log: parallel ordered downloads, CPU work off the runtime, verified commits.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::StreamExt;
use futures::future::OptionFuture;
use futures::stream::FuturesUnordered;

use super::{TailError, TailOutcome, Tailer, blocking};
use crate::ct::cert::{self, CertInfo};
use crate::ct::chain;
use crate::ct::leaf::{EntryType, LogEntry};
use crate::ct::merkle::{self, CollapsedTree, Hash};
use crate::ctlog::{Admission, CtLog, LogError, RawEntry, TreeHead};
use crate::feed::{FeedItem, LogFeed};
use crate::store::{Batch, MalformedEntry, StoredEntry};
use crate::stream::{LogStream, StreamBatch, StreamMessage};
use crate::watchlist::{MatchInput, Watchlist};

/// A downloaded and processed range, ready to be verified and committed.
#[derive(Default)]
struct Processed {
    leaf_hashes: Vec<Hash>,
    entries: Vec<StoredEntry>,
    malformed: Vec<MalformedEntry>,
    /// Live-feed messages of every decoded entry (only built while someone listens), published after commit.
    feed: Vec<Arc<FeedItem>>,
    /// NATS stream messages (only with a stream), queued for the publisher after commit.
    stream: Vec<StreamMessage>,
}

impl Processed {
    fn append(&mut self, mut other: Processed) {
        self.leaf_hashes.append(&mut other.leaf_hashes);
        self.entries.append(&mut other.entries);
        self.malformed.append(&mut other.malformed);
        self.feed.append(&mut other.feed);
        self.stream.append(&mut other.stream);
    }
}

/// What a catch-up does with verified entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    /// Commit them to the store (reporting matches), then stream them.
    Commit,
    /// Entries below `until` were committed by an earlier process but never acknowledged by the NATS stream:
    /// verify them again and queue them for the stream only (no store writes, no live feed).
    Republish { until: u64 },
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

/// Download, verify and commit entries `[tree.size(), head.tree_size)` (with [`Mode::Republish`]: verify and
/// stream `[tree.size(), until)`). A live log is followed past `head` while it grows (see `following`).
///
/// Ranges are launched while the log's adaptive window ([`crate::stats::Concurrency`]) and the global in-flight
/// budget allow; results are put back in order. Push-back from the log (429s, timeouts, bursts of 5xx) shrinks the
/// window; a clean answer while more ranges were waiting grows it. One batch at a time is verified and committed
/// while the downloads go on.
pub(super) async fn catch_up<L: CtLog>(
    t: &Tailer<L>,
    mut tree: CollapsedTree,
    mut head: TreeHead,
    mode: Mode,
) -> Result<TailOutcome, TailError> {
    let store_all = t.config.store_all && mode == Mode::Commit;
    let mut end_at = match mode {
        Mode::Commit => head.tree_size,
        Mode::Republish { until } => until.min(head.tree_size),
    };
    t.stats
        .concurrency
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .set_max(t.config.parallel_requests.max(1));
    // A live log that grows while it is being fetched: its head is polled on the usual cadence meanwhile and the
    // catch-up extends to each newer head without draining its window (the head's round trip, seconds on a slow
    // log, is hidden behind the downloads). Bounded in time so that the cycle's other duties (rewinds, read-only
    // checks) still come round.
    let following = mode == Mode::Commit && !t.config.once && t.final_head.is_none();
    let follow_until = tokio::time::Instant::now() + FOLLOW_AT_MOST;
    let mut poll_at = tokio::time::Instant::now() + t.config.poll_interval;
    let mut head_poll = Box::pin(poll_head(t.log.clone(), poll_at));
    // One batch is verified and committed at a time, WHILE the next ranges download: its consistency proof is a
    // round trip to the log (seconds on a slow log) that must not stall the window.
    let mut committing: Option<Commit<'_>> = None;
    let mut pushback = t.stats.fetch.pushback();
    // The signed heads the downloads will pass (the followed ones), in order of size: a batch that ends exactly at
    // one is verified by its root, without a consistency proof (a round trip to the log).
    let mut heads = vec![head];
    let mut next_start = tree.size();
    let mut next_launch = tokio::time::Instant::now();
    // Ranges finish in any order and free their slot in the window at once (a slow answer does not hold the
    // others'); they are put back in order before they join the batch. `appended` is where the batch ends.
    let mut inflight = FuturesUnordered::new();
    let mut arrived: BTreeMap<u64, (u64, Processed)> = BTreeMap::new();
    let mut appended = tree.size();
    let mut pending = Processed::default();
    let mut shutdown = t.shutdown.clone();
    let mut outcome = TailOutcome::CaughtUp;
    let mut failure = None;
    loop {
        let (limit, pace) = {
            let c = t
                .stats
                .concurrency
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            (c.limit(), c.pace())
        };
        // The range size is read each time: an RFC 6962 log may have taught us its (shorter) page size.
        let size = t.log.range_size().max(1);
        // Ranges that finished early wait for the ones before them: at most two windows ahead.
        let horizon = 2 * limit as u64 * size;
        while inflight.len() < limit
            && next_start < end_at
            && next_start - appended < horizon
            && tokio::time::Instant::now() >= next_launch
        {
            let Some((_, end)) = ranges(next_start, end_at, size).next() else {
                break;
            };
            // The watchlist too: a long catch-up picks up an edited watchlist at its next range.
            let watchlist = t.watchlist.borrow().clone();
            let start = next_start;
            inflight.push(
                fetch_and_process(t, start, end, head, watchlist, store_all, mode)
                    .map(move |r| (start, end, r)),
            );
            next_start = end;
            next_launch = tokio::time::Instant::now() + pace;
        }
        let waiting = next_start < end_at;
        let at_head = inflight.is_empty() && !waiting;
        if committing.is_none()
            && let Some(against) = commit_point(
                tree.size(),
                pending.leaf_hashes.len() as u64,
                &heads,
                t.config.batch_entries,
                at_head,
            )
        {
            let batch = std::mem::take(&mut pending);
            committing = Some(Box::pin(commit(t, tree.clone(), batch, against, mode)));
        }
        if at_head && committing.is_none() {
            break;
        }
        // Room in the window, but the next launch is paced: wake up for it too.
        let paced = waiting && inflight.len() < limit;
        let follow = following && tokio::time::Instant::now() < follow_until;
        let woke = tokio::select! {
            biased;
            _ = shutdown.wait_for(|s| *s) => { outcome = TailOutcome::Shutdown; break; }
            done = OptionFuture::from(committing.as_mut()), if committing.is_some() => {
                Woke::Committed(done.expect("a commit is in flight"))
            }
            next = inflight.next(), if !inflight.is_empty() => Woke::Range(next),
            polled = &mut head_poll, if follow => Woke::Head(polled),
            _ = tokio::time::sleep_until(next_launch), if paced => continue,
        };
        let next = match woke {
            Woke::Range(next) => next,
            Woke::Committed(done) => {
                committing = None;
                // A batch that does not verify ends the catch-up at once: nothing after it can be committed.
                tree = done?;
                heads.retain(|h| h.tree_size > tree.size());
                continue;
            }
            Woke::Head(polled) => {
                // The cadence counts from when the last poll was sent, not answered (a slow log's round trip).
                poll_at = (poll_at + t.config.poll_interval).max(tokio::time::Instant::now());
                head_poll.set(poll_head(t.log.clone(), poll_at));
                match polled {
                    Ok(newer) => {
                        if let Err(e) = follow_head(t, &mut head, newer).await {
                            failure = Some(e);
                            break;
                        }
                        if head.tree_size > end_at {
                            end_at = head.tree_size;
                            heads.push(head);
                        }
                    }
                    // The next cycle's own poll reports a log that stopped answering.
                    Err(e) => {
                        tracing::debug!(log = %t.info.url, "head poll during a catch-up: {e}")
                    }
                }
                continue;
            }
        };
        match next {
            None => break,
            Some((_, _, Err(e))) => {
                t.stats
                    .concurrency
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .on_congestion(std::time::Instant::now());
                failure = Some(e);
                break;
            }
            Some((start, end, Ok((p, took)))) => {
                {
                    // What the log pushed back since the last range finished (429s, 5xx, timeouts: see
                    // `Concurrency::on_pushback`).
                    let now = t.stats.fetch.pushback();
                    let mut c = t
                        .stats
                        .concurrency
                        .lock()
                        .unwrap_or_else(|e| e.into_inner());
                    c.on_latency(took);
                    if !c.on_pushback(std::time::Instant::now(), &now.since(&pushback)) {
                        c.on_success(waiting);
                    }
                    pushback = now;
                }
                t.stats.add_downloaded(p.leaf_hashes.len() as u64);
                // A long catch-up is contact too: health checks must not call a busy log silent.
                t.stats.record_success();
                arrived.insert(start, (end, p));
                while let Some((end, p)) = arrived.remove(&appended) {
                    appended = end;
                    pending.append(p);
                }
            }
        }
    }
    drop(inflight);
    // Finish the batches in hand: what was downloaded contiguously is verified and committed, even on shutdown or
    // when a later range failed. The proof requests are bounded so that shutdown stays prompt.
    let finish = async {
        if let Some(c) = committing.take() {
            tree = c.await?;
        }
        if !pending.leaf_hashes.is_empty() {
            commit(t, tree.clone(), pending, head, mode).await?;
        }
        Ok::<(), TailError>(())
    };
    match tokio::time::timeout(Duration::from_secs(20), finish).await {
        Ok(r) => r?,
        Err(_) => {
            tracing::warn!(log = %t.info.url, "gave up committing the last batch (proof timed out)")
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(outcome),
    }
}

/// A batch being verified and committed.
type Commit<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<CollapsedTree, TailError>> + Send + 'a>,
>;

/// The head to verify and commit the pending batch against now, if it is time: when the batch ends exactly at a
/// signed head (verified by its root alone, no proof request); when it is full and no head boundary is near (up to
/// twice the batch size: a followed log's heads come every poll, and waiting for one saves a round trip); and when
/// the downloads are done (`at_end`: against the last head, with a proof if the batch ends before it).
fn commit_point(
    tree_size: u64,
    pending: u64,
    heads: &[TreeHead],
    batch_entries: u64,
    at_end: bool,
) -> Option<TreeHead> {
    if pending == 0 {
        return None;
    }
    let upto = tree_size + pending;
    if let Some(h) = heads.iter().find(|h| h.tree_size == upto) {
        return Some(*h);
    }
    let last = *heads.last()?;
    let near = heads
        .iter()
        .find(|h| h.tree_size > upto)
        .is_some_and(|h| h.tree_size - tree_size <= 2 * batch_entries);
    (at_end || (pending >= batch_entries && !near)).then_some(last)
}

/// What a catch-up woke up for.
enum Woke<R> {
    /// The oldest range in flight finished (`None`: nothing was in flight).
    Range(Option<R>),
    /// The batch being committed is (or failed to be).
    Committed(Result<CollapsedTree, TailError>),
    /// The head poll answered.
    Head(Result<TreeHead, LogError>),
}

/// How long one catch-up keeps extending to newer heads before it lets its cycle end.
const FOLLOW_AT_MOST: Duration = Duration::from_secs(120);

/// The log's signed head, asked for at `at`.
async fn poll_head<L: CtLog>(log: Arc<L>, at: tokio::time::Instant) -> Result<TreeHead, LogError> {
    tokio::time::sleep_until(at).await;
    log.latest_head().await
}

/// Adopt a head polled during a catch-up when it is newer than the one followed: recorded and observed like a
/// cycle's head. An older head (another frontend of the log, lagging) is ignored; the same size with another root
/// is a split view.
async fn follow_head<L: CtLog>(
    t: &Tailer<L>,
    head: &mut TreeHead,
    newer: TreeHead,
) -> Result<(), TailError> {
    if newer.tree_size == head.tree_size && newer.root_hash != head.root_hash {
        return Err(LogError::Misbehaving {
            log: t.info.url.clone(),
            message: format!(
                "two signed heads of size {} with different roots ({} and {})",
                newer.tree_size,
                hex::encode(head.root_hash),
                hex::encode(newer.root_hash)
            ),
        }
        .into());
    }
    if newer.tree_size <= head.tree_size {
        return Ok(());
    }
    if newer.timestamp_ms < head.timestamp_ms {
        return Err(LogError::Misbehaving {
            log: t.info.url.clone(),
            message: format!(
                "signed head of size {} has timestamp {}, older than the head of size {} ({})",
                newer.tree_size, newer.timestamp_ms, head.tree_size, head.timestamp_ms
            ),
        }
        .into());
    }
    t.stats.observe_head(newer.tree_size, newer.timestamp_ms);
    let store = t.store.clone();
    let id = t.info.log_id;
    blocking(move || store.record_head(&id, &newer)).await?;
    *head = newer;
    Ok(())
}

/// Fetch `[start, end)` within the global in-flight budget, then hash, decode and match it off the runtime.
/// Also says how long the download took.
fn fetch_and_process<L: CtLog>(
    t: &Tailer<L>,
    start: u64,
    end: u64,
    head: TreeHead,
    watchlist: Arc<Watchlist>,
    store_all: bool,
    mode: Mode,
) -> impl std::future::Future<Output = Result<(Processed, std::time::Duration), TailError>> + use<L>
{
    let log = t.log.clone();
    let url = t.info.url.clone();
    let budget = t.config.inflight.clone();
    // Republished entries were on the live feed when they were committed.
    let feed = t.feed.clone().filter(|_| mode == Mode::Commit);
    let outputs = Outputs {
        feed,
        stream: t.stream.clone(),
    };
    async move {
        // Held until the range is processed (the end of this block); claimed when the log starts answering.
        let admission = Admission::new(&budget, end - start);
        let started = tokio::time::Instant::now();
        let fetch = || {
            fetch_once(
                &*log,
                &url,
                (start, end),
                &head,
                &admission,
                &watchlist,
                store_all,
                &outputs,
            )
        };
        let mut p = fetch().await?;
        if !p.malformed.is_empty() {
            // A malformed entry may be a fault between us and the log (a proxy, a cache): ask once more before
            // accepting it as malformed.
            tracing::info!(log = %url, start, end, malformed = p.malformed.len(), "malformed entries; fetching the range again");
            p = fetch().await?;
            for m in &p.malformed {
                tracing::warn!(log = %url, index = m.index, reason = %m.reason, "malformed log entry (stored; tailing continues)");
            }
        }
        let took = started.elapsed();
        Ok((p, took))
    }
}

/// Download `[start, end)` once and hash, decode and match it off the async threads.
#[allow(clippy::too_many_arguments)]
async fn fetch_once<L: CtLog>(
    log: &L,
    url: &str,
    (start, end): (u64, u64),
    head: &TreeHead,
    admission: &Admission,
    watchlist: &Arc<Watchlist>,
    store_all: bool,
    outputs: &Outputs,
) -> Result<Processed, TailError> {
    let raw = log.fetch_range(start, end, head, admission).await?;
    let (url, watchlist, outputs) = (url.to_string(), watchlist.clone(), outputs.clone());
    tokio::task::spawn_blocking(move || process(&url, start, raw, &watchlist, store_all, &outputs))
        .await
        .map_err(|e| TailError::Internal(format!("processing task failed: {e}")))
}

/// Verify a processed batch (the entries after `tree`) against the signed head and commit it with the log's new
/// position. Returns the tree that now includes the batch.
async fn commit<L: CtLog>(
    t: &Tailer<L>,
    tree: CollapsedTree,
    batch: Processed,
    head: TreeHead,
    mode: Mode,
) -> Result<CollapsedTree, TailError> {
    let start = tree.size();
    let mut next = tree;
    for h in &batch.leaf_hashes {
        next.push(*h);
    }
    verify_against_head(t, &next, &head).await?;
    if let Mode::Republish { .. } = mode {
        stream(t, &next, batch.stream).await;
        return Ok(next);
    }
    let feed_items = batch.feed;
    let stream_messages = batch.stream;
    let entry_count = batch.leaf_hashes.len() as u64;
    let malformed = batch.malformed.len() as u64;
    let b = Batch {
        log: t.info.clone(),
        start,
        tree: next.clone(),
        head,
        entries: batch.entries,
        malformed: batch.malformed,
        entry_count,
        now: crate::store::unix_now(),
    };
    let store = t.store.clone();
    let outcome = blocking(move || store.commit_batch(&b)).await?;
    if let Some(f) = &t.feed {
        f.feed.publish(feed_items); // verified and committed: now it may be streamed
    }
    stream(t, &next, stream_messages).await;
    t.stats.add_malformed(malformed);
    t.stats.set_verified(next.size());
    t.stats.add_processed(entry_count);
    if outcome.new_events > 0 {
        t.outbox.wake();
    }
    tracing::debug!(log = %t.info.url, size = next.size(), new_certs = outcome.new_certificates, "committed");
    Ok(next)
}

/// Queue a verified batch for the NATS stream, waiting while the publisher's queue is full (backpressure). On
/// shutdown the batch is left out: the published position stays before it and the next start re-reads it.
async fn stream<L: CtLog>(t: &Tailer<L>, end: &CollapsedTree, messages: Vec<StreamMessage>) {
    let Some(s) = &t.stream else {
        return;
    };
    let batch = StreamBatch {
        log_id: t.info.log_id,
        end: end.clone(),
        messages,
        stats: t.stats.clone(),
    };
    if !s.send(batch, &mut t.shutdown.clone()).await {
        tracing::debug!(log = %t.info.url, size = end.size(), "stopping: batch left for the next start to publish");
    }
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
    outputs: &Outputs,
) -> Processed {
    // Live-feed messages are only built while someone listens.
    let feed = outputs.feed.as_ref().filter(|f| f.feed.is_listened());
    let stream = outputs.stream.as_ref();
    let mut out = Processed {
        leaf_hashes: Vec::with_capacity(raw.len()),
        ..Default::default()
    };
    for (i, mut r) in raw.into_iter().enumerate() {
        let index = start + i as u64;
        out.leaf_hashes.push(r.leaf.hash());
        let mut entry = match std::mem::replace(&mut r.entry, Err(String::new())) {
            Ok(e) => e,
            Err(reason) => {
                out.malformed
                    .push(malformed(index, format!("leaf: {reason}"), &r));
                continue;
            }
        };
        // The names alone decide whether the entry matters (a walk over the leaf's DER, cheap for every entry of a
        // firehose); the full description is built only for entries that match, are stored or are streamed.
        let names = match cert::leaf_names(&entry) {
            Ok(names) => names,
            Err(e) => {
                out.malformed
                    .push(malformed(index, format!("certificate: {e}"), &r));
                continue;
            }
        };
        let mut matches = watchlist.match_cert(&MatchInput::from_names(&names));
        let keep = !matches.is_empty() || store_all;
        let streamed = stream.is_some_and(|s| s.wants(!matches.is_empty()));
        if !keep && feed.is_none() && !streamed {
            continue;
        }
        let mut info: CertInfo = match cert::leaf_info(&entry) {
            Ok(info) => info,
            Err(e) => {
                out.malformed
                    .push(malformed(index, format!("certificate: {e}"), &r));
                continue;
            }
        };
        // Only then is what the log served next to the leaf read (RFC 6962 `extra_data`, the larger half of an
        // item). The chain is checked (signature verification: the expensive part, up to ~1 ms for a P-384 CA)
        // only for entries that match, so that the issuer policies are decided with what it proved. Entries kept
        // only by `--store-all` stay `Unchecked`: no verdict depends on them, and verifying every entry of the
        // firehose would cap ingest near 1,000 entries/s per core (a precert is then stored without the served
        // pre_certificate, whose bytes nothing proved).
        r.extra_data.complete(&mut entry);
        if !matches.is_empty() {
            info.apply_chain(chain::check(&entry));
            if let Some(reason) = info.chain.error() {
                tracing::debug!(%log, index, %reason, "chain error (the entry is reported from its leaf)");
            }
            if !matches.is_empty() {
                matches = watchlist.match_cert(&MatchInput::from_cert(&info));
            }
        }
        render(&mut out, feed, stream, (index, &entry, &info, &matches));
        if !keep {
            continue;
        }
        let der = match entry.entry_type {
            // Copied out of the downloaded buffer, which is then freed with the range.
            EntryType::X509 => Some(entry.signed_entry.to_vec()),
            EntryType::Precert => entry
                .pre_certificate
                .filter(|_| info.chain.is_proven())
                .map(|b| b.to_vec()),
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

/// Where verified entries go besides the store: the live feed and the NATS stream.
#[derive(Clone, Default)]
struct Outputs {
    feed: Option<LogFeed>,
    stream: Option<LogStream>,
}

/// The certstream message of one entry, rendered once for the live feed (while listened) and the stream (when it
/// wants the entry).
fn render(
    out: &mut Processed,
    feed: Option<&LogFeed>,
    stream: Option<&LogStream>,
    (index, entry, info, matches): (u64, &LogEntry, &CertInfo, &[crate::watchlist::Match]),
) {
    let stream = stream.filter(|s| s.wants(!matches.is_empty()));
    let source = match (feed, stream) {
        (Some(f), _) => (&f.source, &f.log_id),
        (None, Some(s)) => (&s.source, &s.log_id),
        (None, None) => return,
    };
    let Some(item) = crate::feed::render_item(source.0, source.1, index, entry, info, matches)
    else {
        return;
    };
    if stream.is_some() {
        out.stream.push(StreamMessage {
            index,
            precert: entry.entry_type == EntryType::Precert,
            body: bytes::Bytes::copy_from_slice(item.full.as_str().as_bytes()),
        });
    }
    if feed.is_some() {
        out.feed.push(item);
    }
}

/// The record of an entry that could not be read: its leaf and what the log served next to it, as bytes.
fn malformed(index: u64, reason: String, r: &RawEntry) -> MalformedEntry {
    MalformedEntry {
        index,
        reason,
        leaf_input: r.leaf.to_vec(),
        extra_data: r.extra_data_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::{commit_point, ranges};
    use crate::ctlog::TreeHead;

    fn head(size: u64) -> TreeHead {
        TreeHead {
            tree_size: size,
            timestamp_ms: size,
            root_hash: [size as u8; 32],
        }
    }

    #[test]
    fn batches_end_at_signed_heads_where_they_can() {
        let heads = [head(1000), head(1500), head(9000)];
        assert_eq!(
            commit_point(0, 0, &heads, 4096, true),
            None,
            "nothing to commit"
        );
        assert_eq!(
            commit_point(0, 1000, &heads, 4096, false),
            Some(head(1000)),
            "at a head: no proof needed"
        );
        assert_eq!(
            commit_point(1000, 256, &heads, 4096, false),
            None,
            "not yet"
        );
        assert_eq!(
            commit_point(1500, 4096, &heads, 4096, false),
            None,
            "full, but a head is within two batches: wait for it"
        );
        assert_eq!(
            commit_point(1500, 7500, &heads, 4096, false),
            Some(head(9000))
        );
        let far = [head(100_000)];
        assert_eq!(
            commit_point(0, 4096, &far, 4096, false),
            Some(head(100_000)),
            "full and far from a head: commit with a consistency proof"
        );
        assert_eq!(
            commit_point(0, 10, &far, 4096, true),
            Some(head(100_000)),
            "downloads done (a republish ends before the head)"
        );
    }

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
