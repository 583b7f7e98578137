//! The process allocator: mimalloc for small blocks, the C library's `malloc` (each block its own `mmap`) for large
//! ones.
//!
//! Why two: the decode path allocates and frees many small buffers per entry from several threads, where mimalloc
//! is fast (glibc's malloc cost 30–70 % more CPU per entry in `scripts/bench-cpu.sh`). But large transient buffers
//! (HTTP read buffers of 8–400 KB per connection, response bodies, data tiles, entry vectors) of ever-changing sizes,
//! allocated on one thread and freed on another, fragmented mimalloc's arena: following 100 growing logs
//! (`scripts/bench-firehose.sh`), the arena kept ~370 MB resident for a heap that peaked near 90 MB. Blocks of
//! [`LARGE`] bytes or more go to `malloc`, told at start-up ([`configure_libc_malloc`]) to serve them with their own
//! `mmap`, so each is returned to the system when freed and resident memory follows what is live. Blocks up to
//! [`RECYCLED_MAX`] come in power-of-two size classes, and freed ones (up to [`KEPT_BYTES`]) stay mapped for the
//! next allocation of their class (`recycled`): the HTTP client's read buffers are allocated about once per `recv`.
//!
//! Sound because Rust passes `dealloc` and `realloc` the layout the block was allocated with: the size decides the
//! allocator at every step, and a `realloc` that crosses [`LARGE`] moves the block from one to the other.

use std::alloc::{GlobalAlloc, Layout};

/// Blocks at least this large go to the C library's malloc (and its `mmap`), smaller ones to mimalloc.
pub const LARGE: usize = 64 * 1024;

/// Alignment `malloc` guarantees on the 64-bit targets we build for.
const MALLOC_ALIGN: usize = 16;

/// See the module documentation.
pub struct SplitAlloc;

fn is_large(size: usize) -> bool {
    size >= LARGE
}

/// Large blocks up to this size are allocated in power-of-two size classes and a few freed ones of each class are
/// kept mapped for the next allocation of that class (see [`recycled`]).
pub const RECYCLED_MAX: usize = 1024 * 1024;

/// Size classes `LARGE << c` for `c < CLASSES`, up to [`RECYCLED_MAX`].
const CLASSES: usize = (RECYCLED_MAX / LARGE).trailing_zeros() as usize + 1;

/// Freed blocks kept per size class, at most (and at most [`KEPT_BYTES`] in all).
const SLOTS: usize = 16;

/// The most bytes of freed blocks kept mapped for reuse, over all classes.
pub const KEPT_BYTES: usize = 8 * 1024 * 1024;

/// Freed large blocks of each size class, kept mapped for reuse.
///
/// Why: the HTTP client's read buffer asks for a new block of a few hundred KB whenever the chunk it handed out
/// last is still in use, i.e. about once per `recv`, and `get-entries` answers are read where they lie, in those
/// chunks, until their entries are processed (`crate::ctlog::body::Chunks`). As fresh `mmap`s, each block cost a
/// page fault and a zeroed page per 4 KiB written, then an `munmap` with TLB shootdowns: in `perf` of an RFC 6962
/// catch-up (`scripts/bench-cpu.sh`), ~20 % of the CPU, and twice that once the answers were no longer copied out
/// of the chunks (98,000 page faults for 131,072 entries; with up to [`KEPT_BYTES`] of kept blocks, 19,000, and a
/// quarter less CPU per entry than with 4 blocks per class and copied answers). Serving such blocks from the C
/// library's heap instead (a higher `mmap` threshold) kept the heap's high-water mark resident (peak RSS 144 MB
/// instead of 113 MB in `scripts/bench-firehose.sh` at 10,000 entries/s); kept blocks are bounded by
/// [`KEPT_BYTES`] instead (119 MB peak there). Lock-free (the allocator must not allocate or
/// block): a slot is a pointer swapped in and out, the byte count an atomic counter.
mod recycled {
    use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

    use super::{CLASSES, KEPT_BYTES, LARGE, RECYCLED_MAX, SLOTS};

    /// Bytes at the start of a kept block that stay resident; the rest of a larger block is given back. The HTTP
    /// client's read buffers (up to ~400 KB) stay whole: a `recv` on a fast link fills all of one.
    const RESIDENT: usize = 512 * 1024;

    #[allow(clippy::declare_interior_mutable_const)]
    const EMPTY: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
    #[allow(clippy::declare_interior_mutable_const)]
    const CLASS: [AtomicPtr<u8>; SLOTS] = [EMPTY; SLOTS];
    static FREE: [[AtomicPtr<u8>; SLOTS]; CLASSES] = [CLASS; CLASSES];

    /// Bytes of the blocks in [`FREE`] (claimed before a block goes in, released after one comes out).
    static KEPT: AtomicUsize = AtomicUsize::new(0);

    /// The class of a block of `size` bytes (`LARGE..=RECYCLED_MAX`), if it is in one.
    pub fn class_of(size: usize) -> Option<usize> {
        (LARGE..=RECYCLED_MAX)
            .contains(&size)
            .then(|| (size.next_power_of_two() / LARGE).trailing_zeros() as usize)
    }

    /// Bytes of a block of class `c`.
    pub fn class_size(c: usize) -> usize {
        LARGE << c
    }

    /// Bytes of the blocks kept now.
    #[cfg(test)]
    pub fn kept_bytes() -> usize {
        KEPT.load(Ordering::Relaxed)
    }

    /// A kept block of class `c`, if there is one.
    pub fn take(c: usize) -> *mut u8 {
        for slot in &FREE[c] {
            if !slot.load(Ordering::Relaxed).is_null() {
                let p = slot.swap(std::ptr::null_mut(), Ordering::Acquire);
                if !p.is_null() {
                    KEPT.fetch_sub(class_size(c), Ordering::Relaxed);
                    return p;
                }
            }
        }
        std::ptr::null_mut()
    }

    /// Keep a freed block of class `c`; false when every slot is taken or the kept bytes would pass
    /// [`KEPT_BYTES`] (the caller frees it).
    ///
    /// Only its first [`RESIDENT`] bytes stay resident: the rest is given back (`MADV_DONTNEED`; it reads as zeros
    /// and is faulted in again if written).
    pub fn keep(c: usize, p: *mut u8) -> bool {
        let size = class_size(c);
        if !FREE[c]
            .iter()
            .any(|slot| slot.load(Ordering::Relaxed).is_null())
        {
            return false;
        }
        if KEPT
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |kept| {
                (kept + size <= KEPT_BYTES).then_some(kept + size)
            })
            .is_err()
        {
            return false;
        }
        let page = 4096;
        let from = (p as usize + RESIDENT).next_multiple_of(page);
        let to = (p as usize + size) / page * page;
        if to > from {
            // SAFETY: [from, to) lies within the block, which is ours (freed by its user, not yet kept or freed),
            // and is whole pages of an anonymous private mapping or heap: DONTNEED only drops their contents.
            unsafe {
                libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_DONTNEED);
            }
        }
        let kept = FREE[c].iter().any(|slot| {
            slot.compare_exchange(
                std::ptr::null_mut(),
                p,
                Ordering::Release,
                Ordering::Relaxed,
            )
            .is_ok()
        });
        if !kept {
            KEPT.fetch_sub(size, Ordering::Relaxed);
        }
        kept
    }
}

/// The size class of a large block of `size` bytes aligned to `align`, if it is recycled (plain alignment only).
fn recycled_class(size: usize, align: usize) -> Option<usize> {
    if align <= MALLOC_ALIGN {
        recycled::class_of(size)
    } else {
        None
    }
}

unsafe fn large_alloc(layout: Layout) -> *mut u8 {
    if let Some(c) = recycled_class(layout.size(), layout.align()) {
        let p = recycled::take(c);
        if !p.is_null() {
            return p;
        }
        // SAFETY: plain malloc of a non-zero size; the whole class, so that any block of the class fits.
        return unsafe { libc::malloc(recycled::class_size(c)).cast() };
    }
    if layout.align() <= MALLOC_ALIGN {
        // SAFETY: plain malloc of a non-zero size (LARGE > 0).
        unsafe { libc::malloc(layout.size()).cast() }
    } else {
        let mut p: *mut libc::c_void = std::ptr::null_mut();
        // SAFETY: the alignment is a power of two and a multiple of the pointer size (Layout guarantees the first,
        // and it is larger than MALLOC_ALIGN here).
        match unsafe { libc::posix_memalign(&mut p, layout.align(), layout.size()) } {
            0 => p.cast(),
            _ => std::ptr::null_mut(),
        }
    }
}

/// Free a block of [`LARGE`] bytes or more allocated by [`large_alloc`] with `layout`.
unsafe fn large_free(ptr: *mut u8, layout: Layout) {
    if let Some(c) = recycled_class(layout.size(), layout.align())
        && recycled::keep(c, ptr)
    {
        return;
    }
    // SAFETY: the block came from malloc/posix_memalign/realloc.
    unsafe { libc::free(ptr.cast()) }
}

unsafe impl GlobalAlloc for SplitAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_large(layout.size()) {
            // SAFETY: forwarded contract.
            unsafe { large_alloc(layout) }
        } else {
            // SAFETY: forwarded contract.
            unsafe { mimalloc::MiMalloc.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_large(layout.size()) {
            if let Some(c) = recycled_class(layout.size(), layout.align()) {
                let p = recycled::take(c);
                if !p.is_null() {
                    // SAFETY: a kept block of this class has at least layout.size() writable bytes.
                    unsafe { std::ptr::write_bytes(p, 0, layout.size()) };
                    return p;
                }
                // SAFETY: calloc of one non-zero-sized element, the whole class.
                return unsafe { libc::calloc(1, recycled::class_size(c)).cast() };
            }
            if layout.align() <= MALLOC_ALIGN {
                // SAFETY: calloc of one non-zero-sized element.
                unsafe { libc::calloc(1, layout.size()).cast() }
            } else {
                // SAFETY: forwarded contract; the block is zeroed below before it is returned.
                let p = unsafe { large_alloc(layout) };
                if !p.is_null() {
                    // SAFETY: p points to layout.size() writable bytes.
                    unsafe { std::ptr::write_bytes(p, 0, layout.size()) };
                }
                p
            }
        } else {
            // SAFETY: forwarded contract.
            unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_large(layout.size()) {
            // SAFETY: blocks of this size were allocated by large_alloc (or calloc/realloc) above.
            unsafe { large_free(ptr, layout) }
        } else {
            // SAFETY: blocks of this size came from mimalloc.
            unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old_class = recycled_class(layout.size(), layout.align());
        let new_class = recycled_class(new_size, layout.align());
        match (is_large(layout.size()), is_large(new_size)) {
            // SAFETY: the block belongs to mimalloc, and so will the result.
            (false, false) => unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) },
            // Within its size class: the block already has room.
            (true, true) if new_class.is_some() && old_class == new_class => ptr,
            // Both past the recycled classes: the C library's realloc (an `mremap`). A block of a recycled class
            // is a malloc'd block of its class size, so it may grow this way too.
            (true, true) if layout.align() <= MALLOC_ALIGN && new_class.is_none() => unsafe {
                // SAFETY: the block came from malloc/calloc/realloc.
                libc::realloc(ptr.cast(), new_size).cast()
            },
            // Anything else (crossing LARGE, into or between recycled classes, over-aligned): allocate where the new
            // size belongs, copy, free.
            _ => {
                // SAFETY: new_size is non-zero and, rounded to the alignment, does not overflow (GlobalAlloc's
                // contract for realloc).
                let new_layout =
                    unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
                // SAFETY: forwarded contract.
                let new = unsafe { self.alloc(new_layout) };
                if !new.is_null() {
                    // SAFETY: both blocks are valid for the smaller of the two sizes and do not overlap.
                    unsafe {
                        std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                }
                new
            }
        }
    }
}

/// mimalloc (v3) option numbers: `mi_option_e` in its `mimalloc.h` (libmimalloc-sys names only some of them; the
/// test `mimalloc_option_numbers_are_the_ones_we_mean` checks them against the documented defaults).
mod mi_option {
    pub const ARENA_EAGER_COMMIT: i32 = 4;
    pub const PURGE_DELAY: i32 = 15;
    pub const PAGE_FULL_RETAIN: i32 = 36;
}

/// Milliseconds mimalloc waits before giving freed pages back (its default: 1000). Following 100 logs for 60 s
/// (the simulator of `scripts/bench-firehose.sh`): default options 155 MB peak RSS and 137 MB at the end; these
/// options with 100 ms 139 / 101 MB; with 0, 122 / 79 MB. The price of 0: every purge is a `madvise` (TLB
/// shootdowns across threads), ~3.5 % of the CPU of a catch-up in `perf`.
pub const PURGE_DELAY_MS: i64 = 0;

/// The environment variable `MIMALLOC_PURGE_DELAY`, when set, overrides [`PURGE_DELAY_MS`] (to trade memory for
/// CPU on a machine with room).
///
/// Make mimalloc give memory back promptly instead of keeping it for reuse: arena memory committed as it is used
/// (not the whole arena up front), freed pages purged after [`PURGE_DELAY_MS`] and no full pages retained per size
/// class. Call once, first thing in `main`, before the first allocation reserves mimalloc's arena.
pub fn configure_mimalloc() {
    // SAFETY: mi_option_set only stores an option value; the numbers are mimalloc v3's (see `mi_option`).
    unsafe {
        libmimalloc_sys::mi_option_set(mi_option::ARENA_EAGER_COMMIT, 0);
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            libmimalloc_sys::mi_option_set(mi_option::PURGE_DELAY, PURGE_DELAY_MS as _);
        }
        libmimalloc_sys::mi_option_set(mi_option::PAGE_FULL_RETAIN, 0);
    }
}

/// Tell the C library's malloc to serve every block of [`LARGE`] bytes or more with its own `mmap` (a fixed
/// threshold: glibc otherwise raises it after the first such block is freed, and large blocks then fragment its
/// heap), and to keep at most two arenas (SQLite, which allocates through malloc, runs on several threads; one arena
/// per thread kept tens of MB of freed memory each). Call once, first thing in `main`.
pub fn configure_libc_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes malloc's tunables; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, LARGE as libc::c_int);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Allocate `size` bytes, fill them with a pattern, grow or shrink to each next size, and check the contents
    /// survive every move, including across LARGE in both directions and for over-aligned blocks.
    fn walk(align: usize, sizes: &[usize]) {
        let a = SplitAlloc;
        let mut layout = Layout::from_size_align(sizes[0], align).unwrap();
        unsafe {
            let mut p = a.alloc(layout);
            assert!(!p.is_null());
            assert_eq!(p as usize % align, 0);
            for i in 0..layout.size() {
                *p.add(i) = (i % 251) as u8;
            }
            for &next in &sizes[1..] {
                p = a.realloc(p, layout, next);
                assert!(!p.is_null());
                assert_eq!(p as usize % align, 0, "alignment {align} lost at {next}");
                let kept = layout.size().min(next);
                for i in 0..kept {
                    assert_eq!(
                        *p.add(i),
                        (i % 251) as u8,
                        "byte {i} after {} -> {next}",
                        layout.size()
                    );
                }
                layout = Layout::from_size_align(next, align).unwrap();
                for i in kept..next {
                    *p.add(i) = (i % 251) as u8;
                }
            }
            a.dealloc(p, layout);
        }
    }

    #[test]
    fn realloc_keeps_contents_within_and_across_the_split() {
        let small = 1000;
        let large = LARGE * 3;
        walk(
            8,
            &[
                small,
                LARGE - 1,
                LARGE,
                large,
                LARGE + 1,
                small,
                16,
                large * 4,
                24,
            ],
        );
        walk(64, &[small, large, small]);
        walk(4096, &[large, small, large * 2]);
    }

    #[test]
    fn realloc_keeps_contents_across_recycled_size_classes() {
        walk(
            1,
            &[
                LARGE + 5,
                LARGE * 2,        // same class as LARGE + 5
                LARGE * 2 + 1,    // next class
                RECYCLED_MAX,     // last class
                RECYCLED_MAX + 1, // past the classes (C library realloc)
                RECYCLED_MAX * 3,
                LARGE * 3, // back into a class
                LARGE - 1, // back to mimalloc
            ],
        );
    }

    #[test]
    fn size_classes_are_powers_of_two_from_large_to_recycled_max() {
        assert_eq!(recycled::class_of(LARGE - 1), None);
        assert_eq!(recycled::class_of(LARGE), Some(0));
        assert_eq!(recycled::class_of(LARGE + 1), Some(1));
        assert_eq!(recycled::class_of(2 * LARGE), Some(1));
        assert_eq!(recycled::class_of(RECYCLED_MAX), Some(CLASSES - 1));
        assert_eq!(recycled::class_of(RECYCLED_MAX + 1), None);
        for size in [LARGE, LARGE + 1, 300 * 1024, RECYCLED_MAX] {
            let c = recycled::class_of(size).unwrap();
            assert!(recycled::class_size(c) >= size && recycled::class_size(c) < 2 * size);
        }
    }

    #[test]
    fn a_block_grows_in_place_within_its_class_and_freed_blocks_are_reused() {
        let a = SplitAlloc;
        // A size no other test uses, so that the slots of its class are this test's alone… as far as the
        // process-wide allocator goes: other threads may take a kept block, so reuse is checked as "some block
        // of the class came back", not which.
        let layout = Layout::from_size_align(700 * 1024, 8).unwrap();
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null());
            let q = a.realloc(p, layout, 1000 * 1024);
            assert_eq!(p, q, "700 KB -> 1000 KB stays in the 1 MiB class: no move");
            let layout = Layout::from_size_align(1000 * 1024, 8).unwrap();
            std::ptr::write_bytes(q, 0xab, layout.size());
            a.dealloc(q, layout);
            // Zeroed allocations of a recycled block are zero.
            let z = a.alloc_zeroed(layout);
            assert!((0..layout.size()).step_by(4093).all(|i| *z.add(i) == 0));
            a.dealloc(z, layout);
        }
    }

    #[test]
    fn kept_blocks_stay_within_their_byte_budget() {
        let a = SplitAlloc;
        // More 1 MiB blocks than the budget holds, freed at once: some are kept, up to the budget, and the rest
        // go back to the system.
        let layout = Layout::from_size_align(RECYCLED_MAX - 4096, 8).unwrap();
        let blocks: Vec<*mut u8> = (0..KEPT_BYTES / RECYCLED_MAX + SLOTS)
            .map(|_| unsafe { a.alloc(layout) })
            .collect();
        assert!(blocks.iter().all(|p| !p.is_null()));
        for p in blocks {
            unsafe { a.dealloc(p, layout) };
            assert!(recycled::kept_bytes() <= KEPT_BYTES);
        }
        assert!(recycled::kept_bytes() >= RECYCLED_MAX, "some were kept");
        // And come back before new ones are mapped.
        let again = unsafe { a.alloc(layout) };
        assert!(!again.is_null());
        unsafe { a.dealloc(again, layout) };
    }

    #[test]
    fn mimalloc_option_numbers_are_the_ones_we_mean() {
        // Their defaults in mimalloc v3 (src/options.c): a renumbered enum would read other options' values.
        let get = |o| unsafe { libmimalloc_sys::mi_option_get(o) };
        assert_eq!(get(mi_option::ARENA_EAGER_COMMIT), 2);
        assert_eq!(get(mi_option::PURGE_DELAY), 1000);
        assert_eq!(get(mi_option::PAGE_FULL_RETAIN), 2);
        configure_mimalloc();
        assert_eq!(
            get(mi_option::PURGE_DELAY),
            PURGE_DELAY_MS as std::os::raw::c_long
        );
        assert_eq!(get(mi_option::ARENA_EAGER_COMMIT), 0);
    }

    #[test]
    fn zeroed_blocks_are_zero_on_both_sides() {
        let a = SplitAlloc;
        for (size, align) in [(100, 8), (LARGE, 8), (LARGE * 2, 128)] {
            let layout = Layout::from_size_align(size, align).unwrap();
            unsafe {
                let p = a.alloc_zeroed(layout);
                assert!(!p.is_null());
                assert!((0..size).all(|i| *p.add(i) == 0), "size {size}");
                a.dealloc(p, layout);
            }
        }
    }
}
