//! Response bodies: in reused buffers ([`Body`]), or in the chunks they arrived in ([`Chunks`], for `get-entries`
//! answers, whose values are read where they lie).
//!
//! A data tile or a proof is read into one contiguous buffer and freed as soon as its entries are decoded and
//! matched. Blocks that large come fresh from the kernel (see `crate::alloc`), so every
//! body used to cost a page fault and a zeroed page per 4 KiB written, then an `munmap`: in `perf` of a catch-up
//! (`scripts/bench-cpu.sh`) about a quarter of the CPU went to the kernel's memory management. A [`Body`] is read
//! into a buffer taken from a small process-wide pool and goes back to it when dropped, its pages still mapped.
//!
//! The pool keeps at most [`RETAINED_BYTES`] of buffers (and no single buffer over [`MAX_POOLED`]): the
//! buffers in use are bounded by the in-flight budget, and the pool only adds what was recently in use and is
//! idle now, so resident memory still follows the load.

use std::sync::Mutex;

use bytes::Bytes;

/// The most buffer capacity the pool keeps while no one uses it. 8 MB since `get-entries` answers stopped coming
/// through it (`Chunks`): following 100 logs at 10,000 entries/s (`scripts/bench-firehose.sh`), peak RSS 118.9 MB
/// instead of 119–124.5 MB with 12 MB, at the same CPU per entry (`scripts/bench-cpu.sh`).
pub const RETAINED_BYTES: usize = 8 * 1024 * 1024;

/// Buffers larger than this are not kept (a rare oversized answer should not stay resident).
pub const MAX_POOLED: usize = 4 * 1024 * 1024;

/// Smaller buffers come from the small-block allocator at no page-fault cost: not worth keeping.
const MIN_POOLED: usize = 64 * 1024;

static POOL: Mutex<Pool> = Mutex::new(Pool {
    free: Vec::new(),
    bytes: 0,
});

struct Pool {
    /// Idle buffers, empty (length 0), any capacity in `MIN_POOLED..=MAX_POOLED`.
    free: Vec<Vec<u8>>,
    /// Sum of their capacities.
    bytes: usize,
}

fn pool() -> std::sync::MutexGuard<'static, Pool> {
    POOL.lock().unwrap_or_else(|e| e.into_inner())
}

/// An empty buffer with room for at least `capacity` bytes: the smallest idle one that fits, else (size unknown,
/// `capacity` 0) the largest idle one, grown by the caller as it writes, else a new one.
///
/// A known size that no idle buffer fits gets a new buffer rather than a grown one: growing an empty buffer copies
/// its whole old capacity (the allocator does not know it is empty) into fresh pages. New pooled buffers are
/// rounded up to [`ROUND`], so that the next answer of about the same size fits them.
fn take(capacity: usize) -> Vec<u8> {
    let mut p = pool();
    let fits = p
        .free
        .iter()
        .enumerate()
        .filter(|(_, b)| b.capacity() >= capacity)
        .min_by_key(|(_, b)| b.capacity())
        .map(|(i, _)| i);
    let pick = fits.or_else(|| {
        (capacity == 0)
            .then(|| {
                p.free
                    .iter()
                    .enumerate()
                    .max_by_key(|(_, b)| b.capacity())
                    .map(|(i, _)| i)
            })
            .flatten()
    });
    match pick {
        Some(i) => {
            let b = p.free.swap_remove(i);
            p.bytes -= b.capacity();
            b
        }
        None => {
            drop(p);
            let rounded = if (MIN_POOLED..=MAX_POOLED).contains(&capacity) {
                capacity.next_multiple_of(ROUND)
            } else {
                capacity
            };
            Vec::with_capacity(rounded)
        }
    }
}

/// New pooled buffers are a multiple of this many bytes.
const ROUND: usize = 256 * 1024;

/// Give a buffer back: kept if it is of a size worth keeping and the pool has room, else freed.
fn give(mut b: Vec<u8>) {
    let cap = b.capacity();
    if !(MIN_POOLED..=MAX_POOLED).contains(&cap) {
        return;
    }
    b.clear();
    let mut p = pool();
    // A full pool makes room for a larger buffer by letting smaller ones go: what answers need now.
    let mut evicted = Vec::new();
    while p.bytes + cap > RETAINED_BYTES {
        let Some((i, _)) = p
            .free
            .iter()
            .enumerate()
            .filter(|(_, idle)| idle.capacity() < cap)
            .min_by_key(|(_, idle)| idle.capacity())
        else {
            break;
        };
        let idle = p.free.swap_remove(i);
        p.bytes -= idle.capacity();
        evicted.push(idle);
    }
    if p.bytes + cap <= RETAINED_BYTES {
        p.bytes += cap;
        p.free.push(b);
    }
    drop(p);
    drop(evicted); // freed outside the lock
}

/// The capacity the pool holds now (for tests and `/metrics`-style diagnostics).
pub fn pooled_bytes() -> usize {
    pool().bytes
}

/// A response body: bytes in a buffer that returns to the pool when dropped.
#[derive(Default)]
pub struct Body(Vec<u8>);

impl Body {
    /// An empty body with room for `capacity` bytes, from the pool when it has a buffer.
    pub fn with_capacity(capacity: usize) -> Body {
        Body(take(capacity))
    }

    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    /// The buffer, to write into.
    pub fn as_mut_vec(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }

    /// The bytes as a plain vector (the buffer leaves the pool for good).
    pub fn into_vec(mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Body {
        Body(v)
    }
}

impl AsRef<[u8]> for Body {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl std::ops::Deref for Body {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        give(std::mem::take(&mut self.0));
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Body({} bytes)", self.0.len())
    }
}

/// What a response body is read into, chunk by chunk as the HTTP client hands them over: a [`Body`] (one pooled
/// buffer, the chunks copied into it) or [`Chunks`] (the chunks themselves).
pub trait Collect: Sized {
    /// Empty, with room for `capacity` bytes where that means anything (0: unknown).
    fn with_capacity(capacity: usize) -> Self;
    fn push(&mut self, chunk: Bytes);
    /// The last chunk was pushed.
    fn finish(&mut self) {}
    /// Bytes collected so far.
    fn collected(&self) -> usize;
}

impl Collect for Body {
    fn with_capacity(capacity: usize) -> Body {
        Body::with_capacity(capacity)
    }

    fn push(&mut self, chunk: Bytes) {
        self.extend_from_slice(&chunk);
    }

    fn collected(&self) -> usize {
        self.0.len()
    }
}

/// A response body as the HTTP client delivered it: its chunks (views of the client's read buffers), not copied
/// together. For answers whose parts are read where they lie (`get-entries`, where the entries keep their
/// `extra_data` as a view of the chunk it came in): copying a catch-up's bodies into one buffer each was ~6 % of
/// its CPU (`perf` of `scripts/bench-cpu.sh`).
///
/// Chunks under [`SMALL_CHUNK`] bytes are copied together instead: a server sending a body in tiny pieces (HTTP
/// chunked encoding allows one byte each) must not make every byte a part of its own, 32 bytes of bookkeeping
/// that also keeps the client's read buffer alive.
#[derive(Clone, Default)]
pub struct Chunks {
    parts: Vec<Bytes>,
    /// Small chunks copied together, not yet a part.
    small: Vec<u8>,
    len: usize,
}

/// Chunks smaller than this are copied together (see [`Chunks`]); a fast link delivers 16–400 KB per read.
pub const SMALL_CHUNK: usize = 8 * 1024;

impl Chunks {
    /// The body's parts in order (each non-empty).
    pub fn parts(&self) -> &[Bytes] {
        debug_assert!(self.small.is_empty(), "Collect::finish was called");
        &self.parts
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// All bytes in one piece: the chunk itself when there is one, else a copy into one pooled buffer.
    pub fn into_contiguous(mut self) -> Bytes {
        self.finish();
        if self.parts.len() == 1 {
            return self.parts.pop().unwrap_or_default();
        }
        let mut body = Body::with_capacity(self.len);
        for part in &self.parts {
            body.extend_from_slice(part);
        }
        Bytes::from_owner(body)
    }

    /// The small chunks copied together so far become a part.
    fn flush_small(&mut self) {
        if !self.small.is_empty() {
            self.parts
                .push(Bytes::from(std::mem::take(&mut self.small)));
        }
    }
}

impl Collect for Chunks {
    fn with_capacity(_: usize) -> Chunks {
        Chunks::default()
    }

    fn push(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        self.len += chunk.len();
        if chunk.len() < SMALL_CHUNK {
            self.small.extend_from_slice(&chunk);
            if self.small.len() >= 8 * SMALL_CHUNK {
                self.flush_small();
            }
        } else {
            self.flush_small();
            self.parts.push(chunk);
        }
    }

    fn finish(&mut self) {
        self.flush_small();
    }

    fn collected(&self) -> usize {
        self.len
    }
}

impl From<Vec<u8>> for Chunks {
    fn from(v: Vec<u8>) -> Chunks {
        std::iter::once(Bytes::from(v)).collect()
    }
}

/// The parts exactly as given (empty ones dropped), however small: for tests that cut a body at chosen places.
impl FromIterator<Bytes> for Chunks {
    fn from_iter<I: IntoIterator<Item = Bytes>>(parts: I) -> Chunks {
        let mut chunks = Chunks::default();
        for part in parts.into_iter().filter(|p| !p.is_empty()) {
            chunks.len += part.len();
            chunks.parts.push(part);
        }
        chunks
    }
}

impl std::fmt::Debug for Chunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Chunks({} bytes in {})", self.len, self.parts.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pool is process-wide and tests run in parallel: this one test exercises it alone, with sizes no
    /// other test uses, and checks properties that hold whatever else is in the pool.
    #[test]
    fn buffers_are_reused_and_the_pool_stays_bounded() {
        let size = 300 * 1024 + 17;
        let mut a = Body::with_capacity(size);
        a.extend_from_slice(&vec![7u8; size]);
        let ptr = a.as_ptr();
        drop(a);
        // The same buffer comes back, empty, for a request that fits it.
        let b = Body::with_capacity(size - 1000);
        assert!(b.is_empty());
        assert_eq!(b.as_ptr(), ptr, "the idle buffer was reused");
        drop(b);

        // Oversized and tiny buffers are not kept.
        let before = pooled_bytes();
        drop(Body::from(Vec::<u8>::with_capacity(MAX_POOLED + 1)));
        drop(Body::from(Vec::<u8>::with_capacity(1000)));
        assert!(pooled_bytes() <= before.max(RETAINED_BYTES));

        // However many are dropped, the pool keeps at most RETAINED_BYTES.
        let many: Vec<Body> = (0..64)
            .map(|_| Body::from(Vec::<u8>::with_capacity(MAX_POOLED)))
            .collect();
        drop(many);
        assert!(pooled_bytes() <= RETAINED_BYTES, "{}", pooled_bytes());
        assert!(pooled_bytes() >= RETAINED_BYTES - MAX_POOLED);
    }

    /// A known size that no idle buffer fits gets a new buffer, rounded up so that the next answer of about the
    /// same size fits it; a full pool lets small buffers go for a larger one.
    #[test]
    fn new_buffers_are_rounded_and_larger_ones_displace_smaller_ones() {
        let size = 3 * ROUND + 12_345;
        let a = Body::with_capacity(size);
        assert_eq!(a.0.capacity(), 4 * ROUND, "rounded up");
        drop(a);
        let b = Body::with_capacity(size + 1000);
        assert_eq!(
            b.0.capacity(),
            4 * ROUND,
            "the next answer of about that size fits it"
        );
        drop(b);

        // Fill the pool with small buffers, then give back a larger one: it is kept.
        let small: Vec<Body> = (0..RETAINED_BYTES / MIN_POOLED + 1)
            .map(|_| Body::from(Vec::<u8>::with_capacity(MIN_POOLED)))
            .collect();
        drop(small);
        let large = Body::from(Vec::<u8>::with_capacity(MAX_POOLED));
        let ptr = large.as_ptr();
        drop(large);
        assert!(pooled_bytes() <= RETAINED_BYTES);
        let again = Body::with_capacity(MAX_POOLED);
        assert_eq!(again.as_ptr(), ptr, "the large buffer displaced small ones");
    }

    #[test]
    fn chunks_are_kept_as_they_came_and_joined_on_demand() {
        let one = Chunks::from(b"abc".to_vec());
        let ptr = one.parts()[0].as_ptr();
        assert_eq!(
            one.clone().into_contiguous().as_ptr(),
            ptr,
            "one chunk: no copy"
        );
        let parts = [&b"ab"[..], b"", b"cde", b"f"];
        let many: Chunks = parts.iter().map(|p| Bytes::copy_from_slice(p)).collect();
        assert_eq!(
            (many.len(), many.parts().len()),
            (6, 3),
            "empty chunks are dropped"
        );
        assert_eq!(&many.into_contiguous()[..], b"abcdef");
        assert!(Chunks::default().into_contiguous().is_empty());
    }

    #[test]
    fn tiny_chunks_are_copied_together_and_large_ones_kept() {
        let mut body = Chunks::with_capacity(0);
        let large = Bytes::from(vec![b'x'; SMALL_CHUNK]);
        for i in 0..100_000u32 {
            body.push(Bytes::copy_from_slice(&[i as u8]));
        }
        body.push(large.clone());
        body.push(Bytes::from_static(b"tail"));
        body.finish();
        assert_eq!(body.len(), 100_000 + SMALL_CHUNK + 4);
        // 100,000 one-byte chunks: a few parts of 64 KB, not 100,000 parts.
        assert!(
            body.parts().len() <= 100_000 / (8 * SMALL_CHUNK) + 3,
            "{body:?}"
        );
        assert!(
            body.parts().iter().any(|p| p.as_ptr() == large.as_ptr()),
            "a large chunk is kept, not copied"
        );
        let joined = body.into_contiguous();
        assert!(
            joined[..100_000]
                .iter()
                .enumerate()
                .all(|(i, &b)| b == i as u8)
        );
        assert!(joined.ends_with(b"xtail"));
    }

    #[test]
    fn into_vec_keeps_the_bytes() {
        let mut a = Body::with_capacity(10);
        a.extend_from_slice(b"hello");
        assert_eq!(a.into_vec(), b"hello");
    }
}
