//! Non-paged pool memory: [`Platform::allocate`](dmf_wdf::Platform::allocate)
//! and the few kernel objects the backend keeps at a fixed address.
//!
//! `ExAllocatePool2` returns memory aligned to [`POOL_ALIGNMENT`] (16 bytes on
//! 64-bit Windows; whole pages for allocations of a page or more). A layout
//! that asks for more is served by over-allocating `size + align` bytes and
//! handing out the first suitably aligned address at least one pointer past
//! the start; the pool pointer is stored in the word just below it
//! ([`over_aligned_offset`]). The arithmetic is platform-independent and
//! tested on every host; the pool calls are Windows-only.

use core::alloc::Layout;

/// Alignment of every `ExAllocatePool2` block on 64-bit Windows
/// (`MEMORY_ALLOCATION_ALIGNMENT`).
pub const POOL_ALIGNMENT: usize = 16;

/// Pool tag of every allocation of this crate: shows as `DmfK` in `!poolused`
/// and PoolMon.
pub const POOL_TAG: u32 = u32::from_le_bytes(*b"DmfK");

/// How many bytes to request from the pool for `layout`, or `None` on
/// overflow. Zero-sized layouts get one byte (the pool has no empty blocks).
///
/// ```
/// use core::alloc::Layout;
/// use dmf_kmdf::memory::pool_block_size;
/// assert_eq!(pool_block_size(Layout::from_size_align(100, 8).unwrap()), Some(100));
/// assert_eq!(pool_block_size(Layout::from_size_align(100, 64).unwrap()), Some(164));
/// assert_eq!(pool_block_size(Layout::from_size_align(0, 1).unwrap()), Some(1));
/// ```
pub fn pool_block_size(layout: Layout) -> Option<usize> {
    let size = layout.size().max(1);
    if layout.align() <= POOL_ALIGNMENT {
        Some(size)
    } else {
        size.checked_add(layout.align())
    }
}

/// Where the caller's block starts inside an over-aligned pool block:
/// the offset from `raw_addr` (a [`POOL_ALIGNMENT`]-aligned pool address) to
/// the first multiple of `align` strictly above it.
///
/// For `align > POOL_ALIGNMENT` (a power of two) the result is in
/// `POOL_ALIGNMENT..=align`, so there is room for the pool pointer below the
/// returned address, and `offset + size <= size + align` fits the block of
/// [`pool_block_size`].
///
/// ```
/// use dmf_kmdf::memory::over_aligned_offset;
/// assert_eq!(over_aligned_offset(0x1000, 64), 64);
/// assert_eq!(over_aligned_offset(0x1010, 64), 48);
/// assert_eq!(over_aligned_offset(0x1030, 64), 16);
/// ```
pub const fn over_aligned_offset(raw_addr: usize, align: usize) -> usize {
    ((raw_addr | (align - 1)) + 1) - raw_addr
}

#[cfg(all(windows, target_env = "msvc"))]
pub use pool::{pool_allocate, pool_free, PoolBox};

#[cfg(all(windows, target_env = "msvc"))]
mod pool {
    use core::alloc::Layout;
    use core::ffi::c_void;
    use core::ptr::NonNull;

    use wdk_sys::ntddk::{ExAllocatePool2, ExFreePool};
    use wdk_sys::{POOL_FLAG_NON_PAGED, SIZE_T};

    use super::{over_aligned_offset, pool_block_size, POOL_ALIGNMENT, POOL_TAG};

    /// One raw non-paged block of `size` bytes, [`POOL_ALIGNMENT`]-aligned.
    fn raw_allocate(size: usize) -> Option<NonNull<u8>> {
        // SAFETY: ExAllocatePool2 has no preconditions beyond IRQL <=
        // DISPATCH_LEVEL for non-paged pool, which every caller of the seam
        // respects; it returns null on failure.
        let p = unsafe { ExAllocatePool2(POOL_FLAG_NON_PAGED, size as SIZE_T, POOL_TAG) };
        NonNull::new(p.cast::<u8>())
    }

    /// Allocates non-paged memory for `layout` (any alignment).
    ///
    /// Returns `None` when the pool is exhausted.
    pub fn pool_allocate(layout: Layout) -> Option<NonNull<u8>> {
        let total = pool_block_size(layout)?;
        let raw = raw_allocate(total)?;
        if layout.align() <= POOL_ALIGNMENT {
            return Some(raw);
        }
        let offset = over_aligned_offset(raw.as_ptr() as usize, layout.align());
        // SAFETY: offset <= align and the block holds size + align bytes, so
        // the result stays inside the block (and is non-null).
        let user = unsafe { raw.add(offset) };
        // SAFETY: offset >= POOL_ALIGNMENT >= size_of::<*mut u8>(), so the
        // word below `user` is still inside the block.
        let slot = unsafe { user.cast::<*mut u8>().sub(1) };
        // SAFETY: `slot` is inside the block, pointer-aligned (`user` is
        // aligned to more than a pointer) and not part of the caller's bytes.
        unsafe { slot.write(raw.as_ptr()) };
        Some(user)
    }

    /// Frees memory from [`pool_allocate`].
    ///
    /// # Safety
    ///
    /// `ptr` must come from `pool_allocate(layout)` with this `layout` and not
    /// have been freed.
    pub unsafe fn pool_free(ptr: NonNull<u8>, layout: Layout) {
        let raw = if layout.align() <= POOL_ALIGNMENT {
            ptr.as_ptr()
        } else {
            // SAFETY: pool_allocate put `ptr` at least a word past the start
            // of its block (caller contract: same layout).
            let slot = unsafe { ptr.cast::<*mut u8>().sub(1) };
            // SAFETY: pool_allocate stored the pool pointer in that aligned word.
            unsafe { slot.read() }
        };
        // SAFETY: `raw` is the start of a live ExAllocatePool2 block.
        unsafe { ExFreePool(raw.cast::<c_void>()) };
    }

    /// A value in its own non-paged pool block, at an address that never
    /// changes: for kernel objects that must not move once initialised
    /// (a `KEVENT` links its waiters to itself).
    ///
    /// # Invariants
    ///
    /// `ptr` points to an initialised `T` in a block from [`pool_allocate`]
    /// with `Layout::new::<T>()`, owned by this box.
    pub struct PoolBox<T> {
        ptr: NonNull<T>,
    }

    impl<T> PoolBox<T> {
        /// Moves `value` into a new pool block; `None` if the pool is exhausted.
        pub fn new(value: T) -> Option<Self> {
            let ptr = pool_allocate(Layout::new::<T>())?.cast::<T>();
            // SAFETY: freshly allocated, sized and aligned for T.
            unsafe { ptr.write(value) };
            // INVARIANT: initialised just above, owned by the new box.
            Some(PoolBox { ptr })
        }

        /// The stable address of the value.
        pub fn as_ptr(&self) -> *mut T {
            self.ptr.as_ptr()
        }
    }

    impl<T> Drop for PoolBox<T> {
        fn drop(&mut self) {
            // SAFETY: by the invariant the value is initialised and owned.
            unsafe { self.ptr.as_ptr().drop_in_place() };
            // SAFETY: the block came from pool_allocate(Layout::new::<T>()).
            unsafe { pool_free(self.ptr.cast::<u8>(), Layout::new::<T>()) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_alignments_use_the_pool_block_as_is() {
        for align in [1, 2, 4, 8, 16] {
            let l = Layout::from_size_align(24, align).unwrap();
            assert_eq!(pool_block_size(l), Some(24));
        }
        assert_eq!(pool_block_size(Layout::new::<()>()), Some(1));
    }

    #[test]
    fn over_aligned_blocks_fit_and_leave_room_for_the_pool_pointer() {
        for align in [32usize, 64, 128, 256, 4096, 65_536] {
            for size in [0usize, 1, 15, 16, 100, 4096, 10_000] {
                let layout = Layout::from_size_align(size, align).unwrap();
                let total = pool_block_size(layout).unwrap();
                // Any 16-aligned pool address.
                for raw in (0x10_0000usize..0x10_0000 + 2 * align).step_by(POOL_ALIGNMENT) {
                    let off = over_aligned_offset(raw, align);
                    assert_eq!((raw + off) % align, 0, "raw {raw:#x} align {align}");
                    assert!(off >= POOL_ALIGNMENT, "no room for the pool pointer");
                    assert!(off >= core::mem::size_of::<usize>());
                    assert!(off <= align);
                    assert!(off + size.max(1) <= total, "block overrun");
                }
            }
        }
    }

    #[test]
    fn the_largest_layouts_do_not_overflow() {
        // A valid Layout has size <= isize::MAX, so size + align always fits.
        let l = Layout::from_size_align(isize::MAX as usize - 31, 32).unwrap();
        assert_eq!(pool_block_size(l), Some(isize::MAX as usize + 1));
    }

    #[test]
    fn pool_tag_reads_dmfk() {
        assert_eq!(POOL_TAG.to_le_bytes(), *b"DmfK");
    }
}
