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

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;

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

/// A source of raw memory blocks aligned to [`POOL_ALIGNMENT`]: the kernel's
/// non-paged pool in a driver ([`NonPagedPool`], Windows only), any such
/// allocator in a test.
///
/// # Safety
///
/// An implementer guarantees that [`allocate`](RawPool::allocate) returns
/// `None` or a block of at least `size` bytes whose address is a multiple of
/// [`POOL_ALIGNMENT`], valid for reads and writes until it is passed to
/// [`free`](RawPool::free), and that `free` accepts every such block once.
pub unsafe trait RawPool {
    /// A new block of at least `size` (> 0) bytes, or `None` when exhausted.
    fn allocate(&self, size: usize) -> Option<NonNull<u8>>;

    /// Returns a block.
    ///
    /// # Safety
    ///
    /// `block` must come from [`allocate`](RawPool::allocate) of the same
    /// pool and not have been freed.
    unsafe fn free(&self, block: NonNull<u8>);
}

/// Allocates memory for `layout` (any alignment) from `pool`.
///
/// Alignments up to [`POOL_ALIGNMENT`] use the pool block as is; larger ones
/// over-allocate and keep the block's address in the word just below the
/// returned pointer. Returns `None` when the pool is exhausted or the size
/// overflows.
pub fn aligned_allocate<P: RawPool + ?Sized>(pool: &P, layout: Layout) -> Option<NonNull<u8>> {
    let total = pool_block_size(layout)?;
    let raw = pool.allocate(total)?;
    debug_assert_eq!(
        raw.as_ptr() as usize % POOL_ALIGNMENT,
        0,
        "RawPool contract"
    );
    if layout.align() <= POOL_ALIGNMENT {
        return Some(raw);
    }
    let offset = over_aligned_offset(raw.as_ptr() as usize, layout.align());
    // SAFETY: offset <= align and the block holds size + align bytes, so the
    // result stays inside the block (and is non-null).
    let user = unsafe { raw.add(offset) };
    // SAFETY: offset >= POOL_ALIGNMENT >= size_of::<*mut u8>(), so the word
    // below `user` is still inside the block.
    let slot = unsafe { user.cast::<*mut u8>().sub(1) };
    // SAFETY: `slot` is inside the block, pointer-aligned (`user` is aligned
    // to more than a pointer) and not part of the caller's bytes.
    unsafe { slot.write(raw.as_ptr()) };
    Some(user)
}

/// Frees memory from [`aligned_allocate`].
///
/// # Safety
///
/// `ptr` must come from `aligned_allocate(pool, layout)` with this `pool` and
/// `layout`, and not have been freed.
pub unsafe fn aligned_free<P: RawPool + ?Sized>(pool: &P, ptr: NonNull<u8>, layout: Layout) {
    let raw = if layout.align() <= POOL_ALIGNMENT {
        ptr
    } else {
        // SAFETY: aligned_allocate put `ptr` at least a word past the start
        // of its block (caller contract: same layout).
        let slot = unsafe { ptr.cast::<*mut u8>().sub(1) };
        // SAFETY: aligned_allocate stored the block's address in that word.
        let raw = unsafe { slot.read() };
        // SAFETY: the stored address is the non-null start of the block.
        unsafe { NonNull::new_unchecked(raw) }
    };
    // SAFETY: `raw` is the start of a live block of `pool`.
    unsafe { pool.free(raw) };
}

/// A [`GlobalAlloc`] over a [`RawPool`] that honours every alignment.
///
/// In a driver, `PoolAllocator(NonPagedPool)` ([`KmdfAllocator`], Windows
/// only) is the global allocator: unlike `wdk-alloc`'s, which hands out the
/// pool block whatever the layout asks for, it gives over-aligned types such
/// as the buffer pool's cache-padded (128-byte) slots their alignment.
///
/// ```text
/// #[global_allocator]
/// static GLOBAL: dmf_kmdf::memory::KmdfAllocator = dmf_kmdf::memory::KMDF_ALLOCATOR;
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct PoolAllocator<P>(pub P);

// SAFETY: blocks come from aligned_allocate, which returns memory of at least
// `layout.size()` bytes aligned to `layout.align()` (or null), and dealloc
// gives them back with the same layout, as GlobalAlloc requires.
unsafe impl<P: RawPool + Sync> GlobalAlloc for PoolAllocator<P> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        aligned_allocate(&self.0, layout).map_or(core::ptr::null_mut(), NonNull::as_ptr)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(ptr) = NonNull::new(ptr) {
            // SAFETY: GlobalAlloc's contract: `ptr` came from `alloc` with
            // this layout and is freed once.
            unsafe { aligned_free(&self.0, ptr, layout) };
        }
    }
}

#[cfg(kmdf)]
pub use pool::{pool_allocate, pool_free, KmdfAllocator, NonPagedPool, PoolBox, KMDF_ALLOCATOR};

#[cfg(kmdf)]
mod pool {
    use core::alloc::Layout;
    use core::ffi::c_void;
    use core::ptr::NonNull;

    use wdk_sys::ntddk::{ExAllocatePool2, ExFreePool};
    use wdk_sys::{POOL_FLAG_NON_PAGED, SIZE_T};

    use super::{aligned_allocate, aligned_free, PoolAllocator, RawPool, POOL_TAG};

    /// The kernel's non-paged pool: `ExAllocatePool2(POOL_FLAG_NON_PAGED,
    /// size, 'DmfK')` / `ExFreePool`, callable at `IRQL <= DISPATCH_LEVEL`.
    #[derive(Debug, Default, Clone, Copy)]
    pub struct NonPagedPool;

    // SAFETY: ExAllocatePool2 returns null or a block of the requested size
    // aligned to MEMORY_ALLOCATION_ALIGNMENT (16 on 64-bit Windows), valid
    // until ExFreePool.
    unsafe impl RawPool for NonPagedPool {
        fn allocate(&self, size: usize) -> Option<NonNull<u8>> {
            // SAFETY: no preconditions beyond IRQL <= DISPATCH_LEVEL for
            // non-paged pool, which every caller respects; null on failure.
            let p = unsafe { ExAllocatePool2(POOL_FLAG_NON_PAGED, size as SIZE_T, POOL_TAG) };
            NonNull::new(p.cast::<u8>())
        }

        unsafe fn free(&self, block: NonNull<u8>) {
            // SAFETY: `block` is a live ExAllocatePool2 block (caller contract).
            unsafe { ExFreePool(block.as_ptr().cast::<c_void>()) };
        }
    }

    /// The driver's global allocator: non-paged pool, every alignment honoured.
    pub type KmdfAllocator = PoolAllocator<NonPagedPool>;

    /// The value of a [`KmdfAllocator`] static.
    pub const KMDF_ALLOCATOR: KmdfAllocator = PoolAllocator(NonPagedPool);

    /// Allocates non-paged memory for `layout` (any alignment).
    ///
    /// Returns `None` when the pool is exhausted.
    pub fn pool_allocate(layout: Layout) -> Option<NonNull<u8>> {
        aligned_allocate(&NonPagedPool, layout)
    }

    /// Frees memory from [`pool_allocate`].
    ///
    /// # Safety
    ///
    /// `ptr` must come from `pool_allocate(layout)` with this `layout` and not
    /// have been freed.
    pub unsafe fn pool_free(ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: caller contract.
        unsafe { aligned_free(&NonPagedPool, ptr, layout) };
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

    /// A pool like the kernel's: blocks aligned to 16 bytes and, on purpose,
    /// never to 32, with a count of live blocks.
    struct SixteenAlignedPool {
        live: std::sync::atomic::AtomicUsize,
    }

    // SAFETY: every block is 16-aligned, `size` bytes long past the offset,
    // and freed with the layout it was allocated with.
    unsafe impl RawPool for SixteenAlignedPool {
        fn allocate(&self, size: usize) -> Option<NonNull<u8>> {
            let layout = Layout::from_size_align(size + 16, 32).ok()?;
            // SAFETY: non-zero size.
            let base = unsafe { std::alloc::alloc(layout) };
            let block = NonNull::new(base)?;
            // Store the size in front so that free can rebuild the layout.
            // SAFETY: base is 32-aligned with 16 spare bytes in front of the block.
            unsafe { base.cast::<usize>().write(size) };
            self.live.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // SAFETY: 16 bytes into a block of size + 16.
            Some(unsafe { block.add(16) })
        }

        unsafe fn free(&self, block: NonNull<u8>) {
            // SAFETY: allocate handed out base + 16.
            let base = unsafe { block.as_ptr().sub(16) };
            // SAFETY: allocate stored the size there.
            let size = unsafe { base.cast::<usize>().read() };
            let layout = Layout::from_size_align(size + 16, 32).unwrap();
            // SAFETY: allocated above with this layout.
            unsafe { std::alloc::dealloc(base, layout) };
            self.live.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    #[test]
    fn the_pool_allocator_honours_every_alignment() {
        let allocator = PoolAllocator(SixteenAlignedPool {
            live: std::sync::atomic::AtomicUsize::new(0),
        });
        // The pool alone does not give 32-byte alignment (what the kernel
        // pool does, and what an allocator that hands the block out as is
        // gives a 128-aligned type).
        let raw = allocator.0.allocate(64).unwrap();
        assert_ne!(raw.as_ptr() as usize % 32, 0);
        // SAFETY: from allocate above.
        unsafe { allocator.0.free(raw) };

        let mut blocks = std::vec::Vec::new();
        for align in [1usize, 8, 16, 32, 64, 128, 4096] {
            for size in [1usize, 24, 128, 1000] {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: non-zero size.
                let p = unsafe { allocator.alloc(layout) };
                assert!(!p.is_null());
                assert_eq!(p as usize % align, 0, "size {size} align {align}");
                // The whole block is writable.
                // SAFETY: p is valid for `size` bytes.
                unsafe { p.write_bytes(0xA5, size) };
                blocks.push((p, layout));
            }
        }
        for (p, layout) in blocks {
            // SAFETY: allocated above with this layout, freed once.
            unsafe { allocator.dealloc(p, layout) };
        }
        assert_eq!(
            allocator.0.live.load(std::sync::atomic::Ordering::Relaxed),
            0
        );
    }

    #[test]
    fn a_cache_padded_value_gets_its_alignment() {
        #[repr(align(128))]
        struct Padded(#[allow(dead_code)] u64);
        let allocator = PoolAllocator(SixteenAlignedPool {
            live: std::sync::atomic::AtomicUsize::new(0),
        });
        let layout = Layout::new::<Padded>();
        for _ in 0..64 {
            // SAFETY: non-zero size.
            let p = unsafe { allocator.alloc(layout) };
            assert_eq!(p as usize % 128, 0);
            // SAFETY: allocated above.
            unsafe { allocator.dealloc(p, layout) };
        }
    }

    #[test]
    fn pool_tag_reads_dmfk() {
        assert_eq!(POOL_TAG.to_le_bytes(), *b"DmfK");
    }
}
