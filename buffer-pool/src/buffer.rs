//! The buffer guard: [`PoolBuffer`].

use core::fmt;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ptr::NonNull;
use core::slice;

use dmf_wdf::{Platform, RawBuffer};

use crate::block::HeaderPtr;
use crate::error::Overrun;
use crate::source::SourceShared;
use crate::{BufferPool, SinkPool};

/// A buffer lent by a pool: exclusive access to its data and context areas.
///
/// The guard knows the buffer's home (the source pool that created it):
///
/// * dropping it returns the buffer home (`DMF_BufferPool_Put` on the home
///   source: data and context zeroed, appended at the tail), so a forgotten
///   put is impossible in safe code; an overrun detected then is counted on
///   the home pool and logged;
/// * [`put_home`](Self::put_home) / [`put_home_at_head`](Self::put_home_at_head)
///   do the same and report an [`Overrun`];
/// * [`SinkPool::put`], [`SinkPool::put_at_head`] and
///   [`SinkPool::put_with_timer`] (or [`into_sink`](Self::into_sink)) consume it;
/// * a source pool only takes back its own buffers ([`BufferPool::put`]
///   hands a foreign one back).
///
/// The data address is stable for the buffer's whole life, and the guard is
/// `Send + 'static`: store it in a request's state to carry it across a
/// completion, or turn it into a pointer with [`into_raw`](Self::into_raw)
/// and back with [`from_raw`](Self::from_raw).
///
/// ```
/// use dmf_buffer_pool::{BufferPool, BufferPoolConfig, SinkPool};
/// use dmf_sim::Sim;
///
/// let sim = Sim::default();
/// let source = BufferPool::new(&sim, BufferPoolConfig::new(1, 16).with_context_size(4)).unwrap();
/// let sink = SinkPool::new(&sim);
/// let mut buffer = source.get().unwrap();
/// let (data, context) = buffer.split_mut();
/// data.fill(0xAB);
/// context.copy_from_slice(b"ctx!");
/// buffer.into_sink(&sink).unwrap();          // moved: the guard is gone
/// assert_eq!((source.count(), sink.count()), (0, 1));
/// let buffer = sink.get().unwrap();          // a sink does not zero
/// assert_eq!(buffer.context(), b"ctx!");
/// drop(buffer);                              // home again
/// assert_eq!(source.count(), 1);
/// ```
pub struct PoolBuffer<P: Platform> {
    hdr: HeaderPtr<P>,
    /// The home pool (= `hdr.home()`, kept here so that get and put never
    /// touch the metadata's cache line).
    home: NonNull<SourceShared<P>>,
    _owns: PhantomData<SourceShared<P>>,
}

// SAFETY: the guard is the block's only owner (see `block` invariants); the
// block's memory can be accessed from any thread, and returning it home uses
// only thread-safe state of the home pool.
unsafe impl<P: Platform> Send for PoolBuffer<P> {}
// SAFETY: `&PoolBuffer` only gives shared (read) access to the bytes.
unsafe impl<P: Platform> Sync for PoolBuffer<P> {}

impl<P: Platform> PoolBuffer<P> {
    /// Wraps a block.
    ///
    /// # Safety
    ///
    /// The caller owns the block (it is in no list) and hands ownership over.
    #[inline]
    pub(crate) unsafe fn from_header(hdr: HeaderPtr<P>) -> Self {
        PoolBuffer {
            hdr,
            home: hdr.header().home,
            _owns: PhantomData,
        }
    }

    /// Wraps a block whose home is `home`.
    ///
    /// # Safety
    ///
    /// As [`from_header`](Self::from_header), and `home` is the block's home.
    #[inline]
    pub(crate) unsafe fn from_parts(hdr: HeaderPtr<P>, home: NonNull<SourceShared<P>>) -> Self {
        debug_assert!(hdr.header().home == home);
        PoolBuffer {
            hdr,
            home,
            _owns: PhantomData,
        }
    }

    #[inline]
    fn home(&self) -> &SourceShared<P> {
        // SAFETY: the home outlives its blocks (block invariants).
        unsafe { self.home.as_ref() }
    }

    /// Gives up the guard without returning the buffer; the caller now owns
    /// the block.
    #[inline]
    pub(crate) fn into_header(self) -> HeaderPtr<P> {
        let me = ManuallyDrop::new(self);
        me.hdr
    }

    /// Usable bytes of the data area (`BufferSize`).
    #[inline]
    pub fn buffer_size(&self) -> usize {
        self.home().layout.data_size
    }

    /// Bytes of the context area (`BufferContextSize`).
    #[inline]
    pub fn context_size(&self) -> usize {
        self.home().layout.context_size
    }

    /// Start of the data area; stable for the buffer's life.
    #[inline]
    pub fn data_ptr(&self) -> NonNull<u8> {
        self.hdr.data_ptr()
    }

    /// Start of the context area.
    #[inline]
    pub fn context_ptr(&self) -> NonNull<u8> {
        self.hdr.context_ptr(&self.home().layout)
    }

    /// The data bytes.
    #[inline]
    pub fn data(&self) -> &[u8] {
        // SAFETY: the guard owns the block; the data area is `buffer_size`
        // initialised bytes (zeroed at creation, only written through guards
        // or by devices given a `RawBuffer`, which stop accessing it when
        // their request completes: the seam's `IoTarget` safety contract).
        unsafe { slice::from_raw_parts(self.data_ptr().as_ptr(), self.buffer_size()) }
    }

    /// The data bytes, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `data`, and `&mut self` makes the access exclusive.
        unsafe { slice::from_raw_parts_mut(self.data_ptr().as_ptr(), self.buffer_size()) }
    }

    /// The client context bytes (`DMF_BufferPool_ContextGet`).
    #[inline]
    pub fn context(&self) -> &[u8] {
        // SAFETY: as in `data`, for the context area.
        unsafe { slice::from_raw_parts(self.context_ptr().as_ptr(), self.context_size()) }
    }

    /// The client context bytes, writable.
    #[inline]
    pub fn context_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `data_mut`, for the context area.
        unsafe { slice::from_raw_parts_mut(self.context_ptr().as_ptr(), self.context_size()) }
    }

    /// Data and context, both writable.
    #[inline]
    pub fn split_mut(&mut self) -> (&mut [u8], &mut [u8]) {
        // SAFETY: data and context are disjoint areas of the owned block.
        unsafe {
            (
                slice::from_raw_parts_mut(self.data_ptr().as_ptr(), self.buffer_size()),
                slice::from_raw_parts_mut(self.context_ptr().as_ptr(), self.context_size()),
            )
        }
    }

    /// The whole data area as memory to hand to a device (DMF's
    /// `WDFMEMORY` / memory descriptor of `GetWithMemory*`).
    ///
    /// Handing it to [`IoTarget::format_request`](dmf_wdf::IoTarget::format_request)
    /// is `unsafe`: keep this guard alive (for example in the request's state)
    /// and do not touch the data until the request has completed.
    #[inline]
    pub fn raw_buffer(&mut self) -> RawBuffer {
        RawBuffer::from_raw_parts(self.data_ptr(), self.buffer_size())
    }

    /// The first `len` bytes of the data area (clamped to the size) as memory
    /// for a device; see [`raw_buffer`](Self::raw_buffer).
    #[inline]
    pub fn raw_prefix(&mut self, len: usize) -> RawBuffer {
        RawBuffer::from_raw_parts(self.data_ptr(), len.min(self.buffer_size()))
    }

    /// Whether the buffer has a timer (its source has `create_with_timer`),
    /// so it can go into [`SinkPool::put_with_timer`].
    #[inline]
    pub fn has_timer(&self) -> bool {
        self.hdr.timer().is_some()
    }

    /// Whether `pool` is this buffer's home.
    #[inline]
    pub fn is_from(&self, pool: &BufferPool<P>) -> bool {
        core::ptr::eq(self.home.as_ptr(), pool.shared_ptr())
    }

    /// Checks the guard bytes after data and context and the metadata
    /// signature, changing nothing.
    pub fn check_guards(&self) -> Result<(), Overrun> {
        self.hdr.check(&self.home().layout, true)
    }

    /// Returns the buffer home, at the tail (same as dropping it), reporting
    /// an overrun.
    pub fn put_home(self) -> Result<(), Overrun> {
        let home = self.home;
        let h = self.into_header();
        // SAFETY: the home outlives its blocks (block invariants).
        unsafe { home.as_ref() }.put_back(h, false)
    }

    /// Returns the buffer home at the head: the home's next `get` returns it
    /// (`DMF_BufferPool_PutAtHead` on the home source).
    pub fn put_home_at_head(self) -> Result<(), Overrun> {
        let home = self.home;
        let h = self.into_header();
        // SAFETY: the home outlives its blocks (block invariants).
        unsafe { home.as_ref() }.put_back(h, true)
    }

    /// Moves the buffer into `sink` at the tail; same as [`SinkPool::put`].
    pub fn into_sink(self, sink: &SinkPool<P>) -> Result<(), Overrun> {
        sink.put(self)
    }

    /// Turns the guard into its data pointer without returning the buffer.
    /// Rebuild the guard with [`from_raw`](Self::from_raw), or the buffer
    /// leaks (until then it counts as in use).
    pub fn into_raw(self) -> NonNull<u8> {
        self.into_header().data_ptr()
    }

    /// Rebuilds a guard from [`into_raw`](Self::into_raw).
    ///
    /// # Safety
    ///
    /// `data` must come from `into_raw` and be passed to `from_raw` once.
    pub unsafe fn from_raw(data: NonNull<u8>) -> Self {
        // SAFETY: per the contract, `data` is the data pointer of a live block
        // whose ownership `into_raw` gave up.
        unsafe { PoolBuffer::from_header(HeaderPtr::from_data(data)) }
    }
}

impl<P: Platform> Drop for PoolBuffer<P> {
    #[inline]
    fn drop(&mut self) {
        // An overrun is counted on the home pool and logged by `put_back`.
        let _ = self.home().put_back(self.hdr, false);
    }
}

impl<P: Platform> fmt::Debug for PoolBuffer<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuffer")
            .field("data", &self.data_ptr())
            .field("buffer_size", &self.buffer_size())
            .field("context_size", &self.context_size())
            .field("has_timer", &self.has_timer())
            .finish()
    }
}
