//! TEMPORARY stand-in for `dmf-buffer-pool` (not yet available): a minimal
//! source pool with typed guards. Replaced by the real crate's pool.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::alloc::Layout;
use core::ptr::NonNull;

use dmf_wdf::{Lock, Platform, RawBuffer, Result, Status};

/// Memory kind of a pool's buffers (stand-in).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PoolType {
    /// Non-paged.
    #[default]
    NonPaged,
    /// Paged.
    Paged,
}

struct Ptr(NonNull<u8>);
// SAFETY: the pointer designates pool memory owned by exactly one holder (the
// free list or one guard) at a time.
unsafe impl Send for Ptr {}

struct PoolInner<P: Platform> {
    platform: P,
    layout: Layout,
    size: usize,
    context_size: usize,
    look_aside: bool,
    preallocated: usize,
    free: P::Lock<Vec<Ptr>>,
}

impl<P: Platform> Drop for PoolInner<P> {
    fn drop(&mut self) {
        let free = core::mem::take(&mut *self.free.lock());
        for p in free {
            // SAFETY: every pointer in the free list came from `allocate` with
            // `self.layout` and is owned by the list.
            unsafe { self.platform.deallocate(p.0, self.layout) };
        }
    }
}

/// A buffer taken from a pool; returns home when dropped.
pub struct PoolBuffer<P: Platform> {
    pool: Arc<PoolInner<P>>,
    ptr: NonNull<u8>,
}

// SAFETY: the guard owns its memory exclusively.
unsafe impl<P: Platform> Send for PoolBuffer<P> {}
// SAFETY: shared access only reads.
unsafe impl<P: Platform> Sync for PoolBuffer<P> {}

impl<P: Platform> PoolBuffer<P> {
    /// The data bytes.
    pub fn data(&self) -> &[u8] {
        // SAFETY: the guard owns `size` initialised bytes at `ptr`.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.pool.size) }
    }
    /// The data bytes, mutable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, exclusively.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.pool.size) }
    }
    /// The context bytes, mutable.
    pub fn context_mut(&mut self) -> &mut [u8] {
        // SAFETY: the context follows the data in the same allocation.
        unsafe {
            core::slice::from_raw_parts_mut(
                self.ptr.as_ptr().add(self.pool.size),
                self.pool.context_size,
            )
        }
    }
    /// Data and context, both mutable.
    pub fn split_mut(&mut self) -> (&mut [u8], &mut [u8]) {
        // SAFETY: disjoint ranges of the owned allocation.
        unsafe {
            (
                core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.pool.size),
                core::slice::from_raw_parts_mut(
                    self.ptr.as_ptr().add(self.pool.size),
                    self.pool.context_size,
                ),
            )
        }
    }
    /// The data as a raw buffer of `len` bytes (clamped).
    pub fn raw_prefix(&mut self, len: usize) -> RawBuffer {
        RawBuffer::from_raw_parts(self.ptr, len.min(self.pool.size))
    }
}

impl<P: Platform> Drop for PoolBuffer<P> {
    fn drop(&mut self) {
        let mut free = self.pool.free.lock();
        if free.len() < self.pool.preallocated || !self.pool.look_aside {
            free.push(Ptr(self.ptr));
        } else {
            drop(free);
            // SAFETY: allocated with this layout; owned by us.
            unsafe { self.pool.platform.deallocate(self.ptr, self.pool.layout) };
        }
    }
}

/// A source pool.
pub(crate) struct StreamPool<P: Platform> {
    inner: Arc<PoolInner<P>>,
}

impl<P: Platform> StreamPool<P> {
    pub(crate) fn new(
        platform: &P,
        count: u32,
        size: u32,
        context_size: u32,
        look_aside: bool,
        _pool_type: PoolType,
    ) -> Result<Self> {
        let size = size as usize;
        let context_size = context_size as usize;
        let layout = Layout::from_size_align((size + context_size).max(1), 16)
            .map_err(|_| Status::INVALID_PARAMETER)?;
        let mut free = Vec::with_capacity(count as usize);
        let inner_free = P::Lock::new(Vec::new());
        let inner = Arc::new(PoolInner {
            platform: platform.clone(),
            layout,
            size,
            context_size,
            look_aside,
            preallocated: count as usize,
            free: inner_free,
        });
        for _ in 0..count {
            let p = platform
                .allocate(layout)
                .ok_or(Status::INSUFFICIENT_RESOURCES)?;
            // SAFETY: fresh allocation of `layout.size()` bytes.
            unsafe { core::ptr::write_bytes(p.as_ptr(), 0, layout.size()) };
            free.push(Ptr(p));
        }
        *inner.free.lock() = free;
        Ok(StreamPool { inner })
    }

    pub(crate) fn get(&self) -> Option<PoolBuffer<P>> {
        let p = self.inner.free.lock().pop();
        let ptr = match p {
            Some(p) => p.0,
            None if self.inner.look_aside => {
                let p = self.inner.platform.allocate(self.inner.layout)?;
                // SAFETY: fresh allocation.
                unsafe { core::ptr::write_bytes(p.as_ptr(), 0, self.inner.layout.size()) };
                p
            }
            None => return None,
        };
        Some(PoolBuffer {
            pool: Arc::clone(&self.inner),
            ptr,
        })
    }

    pub(crate) fn free_count(&self) -> usize {
        self.inner.free.lock().len()
    }
}

/// An input buffer.
pub type InputBuffer<P> = PoolBuffer<P>;
