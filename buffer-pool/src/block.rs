//! One buffer's memory block: metadata, data, context and guard bytes in a
//! single platform allocation (DMF's layout).
//!
//! ```text
//! [ Header<P> (rounded to 64) | data | data guard (4) | pad to 16 | context | context guard (4) | pad ]
//! ```
//!
//! Unlike DMF the guards sit *immediately* after the data and the context
//! (not after the rounded-up size), so an overrun of a single byte is caught,
//! and the data starts on its own cache line: for small buffers, data,
//! context and guards share one line, the only one a get/put touches.
//!
//! # Invariants
//!
//! * A block is allocated by its home [`SourceShared`] with that pool's
//!   layout and owns one strong count of the home (`Arc::into_raw`), released
//!   by [`free_block`] after the memory is returned to the platform. So the
//!   home pool's shared state outlives every block it created.
//! * At any time a block has exactly one owner: its home's free list, one
//!   [`PoolBuffer`](crate::PoolBuffer) guard, one sink's list, or a timer
//!   handler between unlinking it and handing out a guard.
//! * [`Header::link`] is accessed only by the block's owner; while the block
//!   is in a sink, the owner is whoever holds that sink's lock (the seam's
//!   [`Lock`](dmf_wdf::Lock) safety contract: one holder at a time, each
//!   seeing the previous holder's writes).
//! * A block's timer handler reads the block only while the timer exists:
//!   every free drops the timer first, which (the seam's
//!   [`Timer`](dmf_wdf::Timer) safety contract) returns only once no call of
//!   the handler is running and none will start.

use alloc::sync::{Arc, Weak};
use core::alloc::Layout;
use core::marker::PhantomData;
use core::mem::{align_of, size_of};
use core::ops::{Deref, DerefMut};
use core::ptr::{self, NonNull};

use dmf_wdf::Platform;

use crate::error::Overrun;
use crate::sink::SinkShared;
use crate::source::SourceShared;
use crate::sync::{AtomicUsize, Cell, MutPtr, Ordering};
use crate::ExpiryCallback;

/// Metadata signature (DMF's `0x87654321`).
pub(crate) const SIGNATURE: u32 = 0x8765_4321;
/// Guard after the data (DMF's data sentinel `0x33334444`).
pub(crate) const DATA_GUARD: [u8; 4] = 0x3333_4444u32.to_le_bytes();
/// Guard after the context (DMF's context sentinel `0x11112222`).
pub(crate) const CONTEXT_GUARD: [u8; 4] = 0x1111_2222u32.to_le_bytes();
/// Alignment of every component (`MEMORY_ALLOCATION_ALIGNMENT` on 64-bit).
pub(crate) const ALIGN: usize = 16;
/// The data starts on a cache line of its own, so that a small buffer's data,
/// context and guards share one line (the only one a get/put touches).
const CACHE_LINE: usize = 64;

const fn round_up(n: usize, a: usize) -> usize {
    (n + a - 1) & !(a - 1)
}

/// Sink membership and expiry state of a block.
pub(crate) struct Link<P: Platform> {
    pub(crate) prev: Option<HeaderPtr<P>>,
    pub(crate) next: Option<HeaderPtr<P>>,
    /// The sink whose list holds the block (null: none).
    pub(crate) sink: *const SinkShared<P>,
    /// The timer is armed for this sink (DMF: timer callback set).
    pub(crate) armed: bool,
    /// Duration of the arming, for resets.
    pub(crate) timeout_ms: u64,
    /// Absolute deadline in 100 ns units.
    pub(crate) deadline: u64,
    pub(crate) on_expiry: Option<Arc<dyn ExpiryCallback<P>>>,
}

impl<P: Platform> Link<P> {
    const fn new() -> Self {
        Link {
            prev: None,
            next: None,
            sink: ptr::null(),
            armed: false,
            timeout_ms: 0,
            deadline: 0,
            on_expiry: None,
        }
    }
}

/// The metadata in front of a buffer's data. The fields every get/put reads
/// come last, next to the data, so a put touches few cache lines.
#[repr(C)]
pub(crate) struct Header<P: Platform> {
    /// The buffer's timer (source `create_with_timer`); set at creation.
    pub(crate) timer: Option<P::Timer>,
    pub(crate) link: Cell<Link<P>>,
    /// The sink the timer was last armed for. Written only by the block's
    /// owner before arming; read only by the timer handler after it fired.
    pub(crate) expiry_sink: Cell<Option<Weak<SinkShared<P>>>>,
    /// The creating source pool (one strong count, see module invariants).
    pub(crate) home: NonNull<SourceShared<P>>,
    /// Non-zero while the block's timer handler runs the expiry callback:
    /// a block freed then may be freed on that handler's thread, where its
    /// timer must not be deleted (see [`release_block`]).
    pub(crate) firing: AtomicUsize,
    pub(crate) signature: u32,
}

/// A pointer to a block's header.
pub(crate) struct HeaderPtr<P: Platform>(pub(crate) NonNull<Header<P>>);

impl<P: Platform> Clone for HeaderPtr<P> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<P: Platform> Copy for HeaderPtr<P> {}
impl<P: Platform> PartialEq for HeaderPtr<P> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

// SAFETY: a `HeaderPtr` is an address; ownership of the block it designates
// moves with it between threads (module invariants), and the header's shared
// fields (`home`, `timer`, sizes) are `Sync`.
unsafe impl<P: Platform> Send for HeaderPtr<P> {}
// SAFETY: as above.
unsafe impl<P: Platform> Sync for HeaderPtr<P> {}

/// The sizes and offsets of a pool's blocks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BlockLayout {
    pub(crate) layout: Layout,
    pub(crate) data_size: usize,
    pub(crate) context_offset: usize,
    pub(crate) context_size: usize,
}

/// Offset of the data from the block start (= from the header).
pub(crate) const fn data_offset<P: Platform>() -> usize {
    round_up(size_of::<Header<P>>(), CACHE_LINE)
}

impl BlockLayout {
    /// The layout for `data_size` + `context_size`; `None` on overflow.
    pub(crate) fn new<P: Platform>(data_size: usize, context_size: usize) -> Option<Self> {
        let data_guard = data_offset::<P>().checked_add(data_size)?;
        let context_offset = round_up(data_guard.checked_add(4 + ALIGN)?, ALIGN) - ALIGN;
        let context_guard = context_offset.checked_add(context_size)?;
        let total = round_up(context_guard.checked_add(4 + ALIGN)?, ALIGN) - ALIGN;
        // DMF's sizes are ULONGs: a block must be describable in 32 bits.
        if u32::try_from(total).is_err() {
            return None;
        }
        let align = if align_of::<Header<P>>() > CACHE_LINE {
            align_of::<Header<P>>()
        } else {
            CACHE_LINE
        };
        Some(BlockLayout {
            layout: Layout::from_size_align(total, align).ok()?,
            data_size,
            context_offset,
            context_size,
        })
    }
}

impl<P: Platform> HeaderPtr<P> {
    #[inline]
    pub(crate) fn header(&self) -> &Header<P> {
        // SAFETY: a `HeaderPtr` in use designates a live, initialised block
        // (module invariants); the fields read through `&Header` are either
        // immutable after creation or behind a `Cell`.
        unsafe { self.0.as_ref() }
    }

    #[inline]
    pub(crate) fn data_ptr(&self) -> NonNull<u8> {
        // SAFETY: the data starts `data_offset` bytes into the block.
        unsafe { self.0.cast::<u8>().add(data_offset::<P>()) }
    }

    #[inline]
    pub(crate) fn context_ptr(&self, l: &BlockLayout) -> NonNull<u8> {
        // SAFETY: the context starts `context_offset` bytes into the block
        // (`l` is the layout of the block's home).
        unsafe { self.0.cast::<u8>().add(l.context_offset) }
    }

    /// The block's home pool.
    #[inline]
    pub(crate) fn home(&self) -> &SourceShared<P> {
        // SAFETY: the block holds a count of its home (module invariants).
        unsafe { self.header().home.as_ref() }
    }

    /// The layout of the block (its home's).
    #[inline]
    pub(crate) fn layout(&self) -> &BlockLayout {
        &self.home().layout
    }

    /// Recovers the header from a data pointer.
    ///
    /// # Safety
    ///
    /// `data` must come from [`HeaderPtr::data_ptr`] of a live block.
    #[inline]
    pub(crate) unsafe fn from_data(data: NonNull<u8>) -> Self {
        // SAFETY: per the contract the header is `data_offset` bytes before.
        HeaderPtr(unsafe { data.sub(data_offset::<P>()) }.cast())
    }

    /// Exclusive access to the sink link.
    ///
    /// # Safety
    ///
    /// The caller owns the block (module invariants): it holds the lock of the
    /// sink that lists it, or it owns it outright; no other reference to the
    /// link is alive while the result is.
    #[inline]
    pub(crate) unsafe fn link(&self) -> LinkRef<'_, P> {
        LinkRef {
            ptr: self.header().link.get_mut(),
            _header: PhantomData,
        }
    }

    /// The sink the timer was last armed for (a clone).
    ///
    /// # Safety
    ///
    /// Called by the block's timer handler after its timer fired, or by the
    /// block's owner; nobody writes the field meanwhile.
    pub(crate) unsafe fn expiry_sink(&self) -> Option<Weak<SinkShared<P>>> {
        // SAFETY: per the contract, no write is concurrent with this read.
        self.header().expiry_sink.with(|p| unsafe { (*p).clone() })
    }

    /// Sets the sink the timer is armed for.
    ///
    /// # Safety
    ///
    /// The caller owns the block and its timer is not armed or firing.
    pub(crate) unsafe fn set_expiry_sink(&self, sink: Option<Weak<SinkShared<P>>>) {
        // SAFETY: per the contract, nobody else accesses the field.
        let old = self
            .header()
            .expiry_sink
            .with_mut(|p| unsafe { core::mem::replace(&mut *p, sink) });
        drop(old);
    }

    fn guard_ptrs(&self, l: &BlockLayout) -> (*mut u8, *mut u8) {
        // SAFETY: both guards lie inside the block (see `BlockLayout::new`).
        unsafe {
            (
                self.data_ptr().as_ptr().add(l.data_size),
                self.context_ptr(l).as_ptr().add(l.context_size),
            )
        }
    }

    /// Checks the guard bytes (and, with `signature`, the metadata
    /// signature) without changing anything.
    #[inline]
    pub(crate) fn check(&self, l: &BlockLayout, signature: bool) -> Result<(), Overrun> {
        let (dg, cg) = self.guard_ptrs(l);
        // SAFETY: the guards are 4 initialised bytes inside the block, owned
        // by the caller (the block's owner), read unaligned.
        let (d, c) = unsafe {
            (
                ptr::read_unaligned(dg as *const [u8; 4]),
                ptr::read_unaligned(cg as *const [u8; 4]),
            )
        };
        let o = Overrun {
            data: d != DATA_GUARD,
            context: c != CONTEXT_GUARD,
            signature: signature && self.header().signature != SIGNATURE,
        };
        if o.any() {
            Err(o)
        } else {
            Ok(())
        }
    }

    /// Checks and, if needed, rewrites the guard bytes (and the signature);
    /// the caller records a detected overrun. The source put path leaves the signature,
    /// which sits on another cache line, to debug builds.
    #[inline]
    pub(crate) fn check_and_repair(&self, l: &BlockLayout, signature: bool) -> Result<(), Overrun> {
        let result = self.check(l, signature || cfg!(debug_assertions));
        if let Err(o) = result {
            self.report_and_repair(l, o);
        }
        result
    }

    #[cold]
    fn report_and_repair(&self, l: &BlockLayout, o: Overrun) {
        // The pool records the overrun (it knows its journal).
        let _ = o;
        self.write_guards(l);
    }

    fn write_guards(&self, l: &BlockLayout) {
        let (dg, cg) = self.guard_ptrs(l);
        // SAFETY: the guards and the signature lie inside the block, owned by
        // the caller; unaligned writes of plain bytes.
        unsafe {
            ptr::write_unaligned(dg as *mut [u8; 4], DATA_GUARD);
            ptr::write_unaligned(cg as *mut [u8; 4], CONTEXT_GUARD);
            ptr::addr_of_mut!((*self.0.as_ptr()).signature).write(SIGNATURE);
        }
    }

    /// Zeroes data and context (source put).
    #[inline]
    pub(crate) fn zero(&self, l: &BlockLayout) {
        // SAFETY: data and context are in the block, owned by the caller.
        unsafe {
            ptr::write_bytes(self.data_ptr().as_ptr(), 0, l.data_size);
            ptr::write_bytes(self.context_ptr(l).as_ptr(), 0, l.context_size);
        }
    }

    /// Whether the block's home is `pool`.
    #[inline]
    pub(crate) fn is_home(&self, pool: *const SourceShared<P>) -> bool {
        ptr::eq(self.header().home.as_ptr(), pool)
    }

    /// The timer, if the block has one.
    #[inline]
    pub(crate) fn timer(&self) -> Option<&P::Timer> {
        self.header().timer.as_ref()
    }
}

/// Exclusive access to a block's [`Link`] (see [`HeaderPtr::link`]).
pub(crate) struct LinkRef<'a, P: Platform> {
    ptr: MutPtr<Link<P>>,
    _header: PhantomData<&'a Header<P>>,
}

impl<P: Platform> LinkRef<'_, P> {
    /// Ends the access now (loom checks it until here), before another
    /// access to the same link.
    #[inline]
    pub(crate) fn release(self) {}
}

impl<P: Platform> Deref for LinkRef<'_, P> {
    type Target = Link<P>;
    fn deref(&self) -> &Link<P> {
        // SAFETY: `HeaderPtr::link`'s contract makes this access exclusive.
        unsafe { self.ptr.deref() }
    }
}

impl<P: Platform> DerefMut for LinkRef<'_, P> {
    fn deref_mut(&mut self) -> &mut Link<P> {
        // SAFETY: as above.
        unsafe { self.ptr.deref() }
    }
}

/// Allocates and initialises a block for `home` (data and context zeroed,
/// guards written, timer created when configured).
pub(crate) fn allocate_block<P: Platform>(
    home: &Arc<SourceShared<P>>,
) -> dmf_wdf::Result<HeaderPtr<P>> {
    let l = home.layout;
    let raw = home
        .platform
        .allocate(l.layout)
        .ok_or(dmf_wdf::Status::INSUFFICIENT_RESOURCES)?;
    let hdr = HeaderPtr::<P>(raw.cast());
    // SAFETY: `raw` is a fresh allocation of `l.layout`, aligned for
    // `Header<P>` and large enough for header, data, context and guards,
    // valid and ours alone until deallocated (the seam's `Platform` safety
    // contract for `allocate`).
    unsafe {
        hdr.0.as_ptr().write(Header {
            signature: SIGNATURE,
            home: NonNull::new_unchecked(Arc::into_raw(Arc::clone(home)) as *mut SourceShared<P>),
            timer: None,
            firing: AtomicUsize::new(0),
            link: Cell::new(Link::new()),
            expiry_sink: Cell::new(None),
        });
    }
    hdr.zero(&l);
    hdr.write_guards(&l);
    home.live.fetch_add(1, crate::sync::Ordering::Relaxed);
    if home.config.create_with_timer {
        let handler = Arc::new(crate::sink::BufferTimer { hdr });
        match home.platform.create_timer(handler) {
            // SAFETY: the block is fresh and owned by us; nobody else sees it.
            Ok(timer) => unsafe { (*hdr.0.as_ptr()).timer = Some(timer) },
            Err(status) => {
                // SAFETY: the block is initialised and owned by us.
                unsafe { free_block(hdr) };
                return Err(status);
            }
        }
    }
    Ok(hdr)
}

/// Frees a block whose owner may be in any context (a completion routine,
/// a spin lock held, the block's own timer handler): a block without a timer
/// is freed now; a block with a timer goes to its home's reaper, which frees
/// it at passive level on a work item thread, because a timer may only be
/// dropped at passive level and never from its own handler (the seam's
/// `Timer` contract).
///
/// # Safety
///
/// As [`free_block`], except for the context.
pub(crate) unsafe fn release_block<P: Platform>(hdr: HeaderPtr<P>) {
    if hdr.timer().is_none() {
        // SAFETY: forwarded contract; no timer, so any context will do.
        unsafe { free_block(hdr) };
        return;
    }
    // SAFETY: the block holds a strong count of its home, so it is alive.
    let home = unsafe { hdr.header().home.as_ref() };
    // SAFETY: forwarded contract.
    unsafe { home.defer_free(hdr) };
}

/// Whether the block's timer handler is running its expiry callback now (a
/// free from there must be deferred, see [`release_block`]).
pub(crate) fn in_own_handler<P: Platform>(hdr: HeaderPtr<P>) -> bool {
    hdr.header().firing.load(Ordering::Acquire) != 0
}

/// Drops the header (stopping and deleting the timer, waiting for a running
/// handler), returns the memory to the platform and releases the block's
/// count of its home.
///
/// # Safety
///
/// The caller owns the block, which is in no list, and never uses `hdr` again.
/// If the block has a timer, the caller is at passive level and not in that
/// timer's handler (use [`release_block`] when that is not known).
pub(crate) unsafe fn free_block<P: Platform>(hdr: HeaderPtr<P>) {
    // SAFETY: the block holds a strong count of its home, so it is alive.
    let home = unsafe { hdr.header().home.as_ref() };
    home.live.fetch_sub(1, crate::sync::Ordering::Relaxed);
    // SAFETY: forwarded contract.
    unsafe { destroy_block(hdr) };
}

/// [`free_block`] for a block no longer counted in its home's `live`
/// (the reaper's: counted off when it entered the graveyard).
///
/// # Safety
///
/// As [`free_block`].
pub(crate) unsafe fn destroy_block<P: Platform>(hdr: HeaderPtr<P>) {
    let home_ptr = hdr.header().home;
    // SAFETY: the block holds a strong count of its home, so it is alive.
    let home = unsafe { home_ptr.as_ref() };
    // SAFETY: the header is initialised and owned by us; after this it is
    // never read again. Dropping the timer (at passive level, outside its
    // handler: this function's contract) returns only once no call of its
    // handler, which may read the header, runs or will start (the seam's
    // `Timer` safety contract); the memory is returned only after that.
    unsafe { ptr::drop_in_place(hdr.0.as_ptr()) };
    // SAFETY: the block came from `home.platform.allocate(home.layout.layout)`
    // and is freed once.
    unsafe { home.platform.deallocate(hdr.0.cast(), home.layout.layout) };
    // SAFETY: releases the count taken by `allocate_block` (`Arc::into_raw`).
    unsafe { Arc::decrement_strong_count(home_ptr.as_ptr() as *const SourceShared<P>) };
}
