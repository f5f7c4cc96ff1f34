//! The process's allocator: mimalloc, asked the way the system allocator is asked.
//!
//! The `mimalloc` crate's `GlobalAlloc` passes every request to `mi_malloc_aligned`, alignment
//! 8 included. In mimalloc 3 that call is quick only when a small block is at hand on its
//! page; otherwise (a block over 1 KiB, or a page whose free list must be refilled) it checks
//! whether the size class is "naturally aligned", which only powers of two are, and else
//! over-allocates by the alignment and marks the page as holding aligned blocks, whose frees
//! then take the slow path. A 24- or 48-byte JSON node with alignment 8 went that way about
//! thirty times per pod create (callgrind, `skiff bench --only create`).
//!
//! Yet plain `mi_malloc` already returns memory aligned to 16 bytes for every size of 16 or
//! more and to 8 for smaller ones (mimalloc's size classes are multiples of two words), as
//! C's `malloc` does. So, as the standard library's system allocator does, requests whose
//! alignment `mi_malloc` guarantees go to `mi_malloc`, `mi_zalloc` and `mi_realloc`; only
//! larger alignments go to the aligned calls. Every block, however made, is freed by `mi_free`.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// What `mi_malloc` aligns every block to, whatever its size (MI_MAX_ALIGN_SIZE).
const MIN_ALIGN: usize = 16;

/// mimalloc behind the standard library's alignment rule; see the module docs.
pub struct Allocator;

/// Whether `mi_malloc` of `size` bytes is aligned enough for `align`: it aligns to 16 bytes
/// blocks of 16 bytes or more and to 8 smaller ones, so any alignment up to 16 and up to the
/// size is met (the standard library's rule for `malloc`). The rest, a 12-byte block aligned
/// to 16 say, takes the aligned call.
#[inline]
fn plain(align: usize, size: usize) -> bool {
    align <= MIN_ALIGN && align <= size
}

// SAFETY: every pointer handed out comes from mimalloc with at least the layout's alignment
// (see `plain`), and every pointer taken back was handed out by it; mimalloc is thread-safe.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = if plain(layout.align(), layout.size()) {
            mi::mi_malloc(layout.size())
        } else {
            mi::mi_malloc_aligned(layout.size(), layout.align())
        };
        p.cast()
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = if plain(layout.align(), layout.size()) {
            mi::mi_zalloc(layout.size())
        } else {
            mi::mi_zalloc_aligned(layout.size(), layout.align())
        };
        p.cast()
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        mi::mi_free(ptr.cast::<c_void>());
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = if plain(layout.align(), new_size) {
            mi::mi_realloc(ptr.cast::<c_void>(), new_size)
        } else {
            mi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align())
        };
        p.cast()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks of every small size and alignment the program asks for come back aligned,
    /// keep their contents through growth and shrinking, and are zeroed when asked.
    #[test]
    fn blocks_are_aligned_and_keep_their_bytes() {
        let a = Allocator;
        for align in [1usize, 2, 4, 8, 16, 32, 64, 4096] {
            for size in [
                1usize, 3, 8, 15, 16, 24, 40, 48, 100, 1000, 1025, 5000, 70_000,
            ] {
                let layout = Layout::from_size_align(size, align).unwrap();
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "size {size} align {align}");
                    std::ptr::write_bytes(p, 0xab, size);
                    let grown = a.realloc(p, layout, size * 3);
                    assert_eq!(
                        grown as usize % align,
                        0,
                        "grown: size {size} align {align}"
                    );
                    assert!((0..size).all(|i| *grown.add(i) == 0xab));
                    let grown_layout = Layout::from_size_align(size * 3, align).unwrap();
                    let shrunk = a.realloc(grown, grown_layout, size.div_ceil(2));
                    assert_eq!(
                        shrunk as usize % align,
                        0,
                        "shrunk: size {size} align {align}"
                    );
                    assert!((0..size.div_ceil(2)).all(|i| *shrunk.add(i) == 0xab));
                    a.dealloc(
                        shrunk,
                        Layout::from_size_align(size.div_ceil(2), align).unwrap(),
                    );
                    let z = a.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0, "zeroed: size {size} align {align}");
                    assert!((0..size).all(|i| *z.add(i) == 0));
                    a.dealloc(z, layout);
                }
            }
        }
    }
}
