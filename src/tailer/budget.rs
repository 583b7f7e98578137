//! The global budget for entries downloaded but not yet processed, across all logs: what bounds the memory a
//! catch-up of many logs at once can take. Permits are taken before a range is requested and given back once it
//! is hashed, decoded and matched (what remains until the commit is small: leaf hashes and the few matches).
//! Waiters are served in arrival order (tokio's semaphore is fair), so a log catching up with a deep backlog, which
//! only ever has its window of ranges waiting, cannot starve the logs that are live.

use std::sync::Arc;

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

impl Default for InflightBudget {
    fn default() -> Self {
        InflightBudget::from_bytes(64 << 20)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
