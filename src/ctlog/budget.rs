//! The global budget for entries downloaded but not yet processed, across all logs: what bounds the memory a
//! catch-up of many logs at once can take.
//!
//! A range claims its share ([`Admission`]) when the log starts ANSWERING, not when the request is sent: a request
//! waiting on a slow log holds no memory (the busiest logs answer in seconds, and keeping up with them needs
//! thousands of entries requested at once), while the bytes that did arrive, their decoded entries and the
//! processing after it are bounded. The claim is given back once the range is hashed, decoded and matched (what
//! remains until the commit is small: leaf hashes and the few matches). Waiters are served in arrival order
//! (tokio's semaphore is fair), so a log catching up with a deep backlog, which only ever has its window of ranges
//! answered, cannot starve the logs that are live. A request is only sent once the budget has room for its range
//! ([`Admission::wait_for_room`]), so that while processing is behind, answers do not pile up in HTTP buffers.

use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Memory one entry in flight takes, as an estimate: the JSON or tile bytes, then the decoded leaf, certificate
/// and chain (real entries: 1.5 KB leaf, ~3 KB chain, base64 on the wire: ~25 KB while a page is decoded, ~11 KB
/// once decoded).
pub const ENTRY_BYTES_ESTIMATE: u64 = 16 * 1024;

/// Shared by every tailer (cloning shares it).
#[derive(Clone, Debug)]
pub struct InflightBudget {
    sem: Arc<Semaphore>,
    entries: u64,
}

impl InflightBudget {
    /// A budget of about `bytes` (at least one full page of 256 entries).
    pub fn from_bytes(bytes: u64) -> InflightBudget {
        let entries = (bytes / ENTRY_BYTES_ESTIMATE).clamp(256, u32::MAX as u64 / 2);
        InflightBudget {
            sem: Arc::new(Semaphore::new(entries as usize)),
            entries,
        }
    }

    /// Entries the whole budget allows.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Entries not taken now.
    pub fn available(&self) -> u64 {
        self.sem.available_permits() as u64
    }

    /// Wait for room for `entries` entries (a request larger than the whole budget takes all of it).
    pub async fn acquire(&self, entries: u64) -> OwnedSemaphorePermit {
        let n = entries.clamp(1, self.entries) as u32;
        self.sem
            .clone()
            .acquire_many_owned(n)
            .await
            .expect("the in-flight budget is never closed")
    }
}

/// One range's claim on an [`InflightBudget`]: taken by [`Admission::admit`] when the first answer for the range
/// arrives (see [`crate::ctlog::http::Fetcher::get_admitted`]), at most once however many requests the range
/// takes, and held until the admission is dropped.
#[derive(Debug)]
pub struct Admission {
    budget: InflightBudget,
    entries: u64,
    permit: Mutex<Option<OwnedSemaphorePermit>>,
}

impl Admission {
    /// A claim for `entries` entries on `budget`.
    pub fn new(budget: &InflightBudget, entries: u64) -> Admission {
        Admission {
            budget: budget.clone(),
            entries,
            permit: Mutex::new(None),
        }
    }

    /// Wait for room in the budget, unless this range already has it.
    pub async fn admit(&self) {
        if self.is_admitted() {
            return;
        }
        let permit = self.budget.acquire(self.entries).await;
        let mut slot = self.permit.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(permit);
        }
    }

    /// Wait until the budget has room for this range, without claiming it: called before each request is sent.
    /// While processing is behind (the budget full), new requests wait here instead of going out: an answer that
    /// then waits in [`Admission::admit`] is not free, since its HTTP connection has already read up to a read
    /// buffer's worth of the body (~400 KB once a connection carried a large answer), and at a catch-up of 100
    /// logs those buffers were most of the peak memory (scripts/bench-firehose.sh).
    pub async fn wait_for_room(&self) {
        if self.is_admitted() {
            return;
        }
        // Taking the permits and giving them back at once keeps the semaphore's arrival order.
        drop(self.budget.acquire(self.entries).await);
    }

    /// Whether the range holds its share of the budget now.
    pub fn is_admitted(&self) -> bool {
        self.permit
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }
}

impl Default for InflightBudget {
    fn default() -> Self {
        InflightBudget::from_bytes(32 << 20)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_admission_claims_once_when_admitted_and_gives_back_when_dropped() {
        let b = InflightBudget::from_bytes(512 * ENTRY_BYTES_ESTIMATE);
        let a = Admission::new(&b, 300);
        assert_eq!(
            b.available(),
            512,
            "nothing is taken before the log answers"
        );
        a.admit().await;
        a.admit().await; // a second page of the same range: no second claim
        assert!(a.is_admitted());
        assert_eq!(b.available(), 212);
        let other = Admission::new(&b, 300);
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), other.admit());
        assert!(waiting.await.is_err(), "no room for a second range");
        drop(a);
        assert_eq!(b.available(), 512);
    }

    #[tokio::test]
    async fn bounds_entries_in_flight_and_serves_in_order() {
        let b = InflightBudget::from_bytes(512 * ENTRY_BYTES_ESTIMATE);
        assert_eq!(b.entries(), 512);
        let first = b.acquire(256).await;
        let _second = b.acquire(256).await;
        assert_eq!(b.available(), 0);
        let b2 = b.clone();
        let waiter = tokio::spawn(async move { b2.acquire(100).await });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "no room until a range is processed");
        drop(first);
        let _p = waiter.await.unwrap();
        assert_eq!(b.available(), 156);
        let whole = b.acquire(10_000);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), whole)
                .await
                .is_err(),
            "a huge range waits for the whole budget, it does not overdraw it"
        );
    }
}
