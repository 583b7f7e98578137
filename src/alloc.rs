//! The process allocator: mimalloc for small blocks, the C library's `malloc` (each block its own `mmap`) for large
//! ones.
//!
//! Why two: the decode path allocates and frees many small buffers per entry from several threads, where mimalloc
//! is fast (glibc's malloc cost 30–70 % more CPU per entry in `scripts/bench-cpu.sh`). But large transient buffers
//! (HTTP read buffers of 8–400 KB per connection, response bodies, data tiles, entry vectors) of ever-changing sizes,
//! allocated on one thread and freed on another, fragmented mimalloc's arena: following 100 growing logs
//! (`scripts/bench-firehose.sh`), the arena kept ~370 MB resident for a heap that peaked near 90 MB. Blocks of
//! [`LARGE`] bytes or more go to `malloc`, told at start-up ([`configure_libc_malloc`]) to serve them with their own
//! `mmap`, so each is returned to the system when freed and resident memory follows what is live.
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

unsafe fn large_alloc(layout: Layout) -> *mut u8 {
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
            // SAFETY: blocks of this size were allocated by malloc/calloc/posix_memalign/realloc above.
            unsafe { libc::free(ptr.cast()) }
        } else {
            // SAFETY: blocks of this size came from mimalloc.
            unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match (is_large(layout.size()), is_large(new_size)) {
            // SAFETY (both arms): the block belongs to the allocator its old size names, and so will the result.
            (false, false) => unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) },
            (true, true) if layout.align() <= MALLOC_ALIGN => unsafe {
                libc::realloc(ptr.cast(), new_size).cast()
            },
            // Crossing LARGE (or an over-aligned large block): allocate where the new size belongs, copy, free.
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

/// Make mimalloc give memory back promptly instead of keeping it for reuse: arena memory committed as it is used
/// (not the whole arena up front), freed pages purged after [`PURGE_DELAY_MS`] and no full pages retained per size
/// class. Call once, first thing in `main`, before the first allocation reserves mimalloc's arena.
pub fn configure_mimalloc() {
    // SAFETY: mi_option_set only stores an option value; the numbers are mimalloc v3's (see `mi_option`).
    unsafe {
        libmimalloc_sys::mi_option_set(mi_option::ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(mi_option::PURGE_DELAY, PURGE_DELAY_MS as _);
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
