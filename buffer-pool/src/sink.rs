//! Sink pools: [`SinkPool`], expiry timers and enumeration.

use alloc::sync::Arc;
use core::fmt;
use core::marker::PhantomData;
use core::ptr;
use core::slice;

use dmf_wdf::recorder::Journal;
use dmf_wdf::{transition, Lock, Platform, Result, Status, Timer, TimerHandler};

use crate::block::HeaderPtr;
use crate::error::{Overrun, PutError};
use crate::sync::{AtomicUsize, Ordering};
use crate::{BufferPool, BufferPoolMode, EnumerationDisposition, PoolBuffer};

/// 100 ns ticks per millisecond.
const TICKS_PER_MS: u64 = 10_000;

/// What runs when a buffer's expiry timer fires in a sink
/// (`EVT_DMF_BufferPool_TimerCallback`).
///
/// Runs at passive level on the platform's timer thread (with the simulator's
/// manual clock: on the thread that advances the clock), after the buffer has
/// left the sink, outside the sink's lock. The callback owns the buffer: drop
/// it (it goes home), or put it anywhere, including this sink again.
///
/// DMF's per-put callback context is whatever the implementor holds; any
/// `Fn(&SinkPool<P>, PoolBuffer<P>)` closure is an `ExpiryCallback`.
pub trait ExpiryCallback<P: Platform>: Send + Sync + 'static {
    /// `buffer`, put into `sink` with a timer, expired.
    fn expired(&self, sink: &SinkPool<P>, buffer: PoolBuffer<P>);
}

impl<P, F> ExpiryCallback<P> for F
where
    P: Platform,
    F: Fn(&SinkPool<P>, PoolBuffer<P>) + Send + Sync + 'static,
{
    fn expired(&self, sink: &SinkPool<P>, buffer: PoolBuffer<P>) {
        self(sink, buffer)
    }
}

/// The intrusive list of a sink (links live in the buffers' headers).
pub(crate) struct SinkList<P: Platform> {
    head: Option<HeaderPtr<P>>,
    tail: Option<HeaderPtr<P>>,
    len: usize,
}

// SAFETY: the list holds addresses of blocks it owns; ownership may move
// between threads with the lock that guards the list, whose holders are
// mutually exclusive and ordered (the seam's `Lock` safety contract).
unsafe impl<P: Platform> Send for SinkList<P> {}

impl<P: Platform> SinkList<P> {
    /// Links `h` at the tail or the head.
    ///
    /// # Safety
    ///
    /// The caller holds the lock guarding this list and owns `h`, which is in
    /// no list.
    unsafe fn insert(&mut self, h: HeaderPtr<P>, sink: *const SinkShared<P>, at_head: bool) {
        // SAFETY: we own `h`, and the lock guards the links of listed blocks.
        let mut link = unsafe { h.link() };
        link.sink = sink;
        if at_head {
            link.prev = None;
            link.next = self.head;
            match self.head {
                // SAFETY: listed block, guarded by the lock we hold.
                Some(old) => unsafe { old.link() }.prev = Some(h),
                None => self.tail = Some(h),
            }
            self.head = Some(h);
        } else {
            link.next = None;
            link.prev = self.tail;
            match self.tail {
                // SAFETY: listed block, guarded by the lock we hold.
                Some(old) => unsafe { old.link() }.next = Some(h),
                None => self.head = Some(h),
            }
            self.tail = Some(h);
        }
        self.len += 1;
    }

    /// Unlinks `h`.
    ///
    /// # Safety
    ///
    /// The caller holds the lock guarding this list, and `h` is in it.
    unsafe fn unlink(&mut self, h: HeaderPtr<P>) {
        // SAFETY: listed block, guarded by the lock we hold.
        let mut link = unsafe { h.link() };
        let (prev, next) = (link.prev.take(), link.next.take());
        link.sink = ptr::null();
        match prev {
            // SAFETY: as above.
            Some(p) => unsafe { p.link() }.next = next,
            None => self.head = next,
        }
        match next {
            // SAFETY: as above.
            Some(n) => unsafe { n.link() }.prev = prev,
            None => self.tail = prev,
        }
        self.len -= 1;
    }
}

/// The state of a sink shared by its handles and by expiry timer handlers.
pub(crate) struct SinkShared<P: Platform> {
    /// Where the sink's transitions are recorded.
    journal: Journal<P>,
    platform: P,
    list: P::Lock<SinkList<P>>,
    overruns: AtomicUsize,
}

impl<P: Platform> SinkShared<P> {
    fn now(&self) -> u64 {
        self.platform.now_100ns()
    }
}

/// Remaining whole milliseconds until `deadline` (rounded up).
fn remaining_ms(deadline: u64, now: u64) -> u64 {
    deadline.saturating_sub(now).div_ceil(TICKS_PER_MS)
}

impl<P: Platform> Drop for SinkShared<P> {
    /// Closing a sink returns every buffer it holds to its home source (DMF
    /// frees them instead, contradicting its own docs). A buffer whose
    /// timer is firing right now is waited for: its handler sees the sink
    /// gone and leaves it to us.
    fn drop(&mut self) {
        let mut returned = 0usize;
        loop {
            let taken = {
                let mut list = self.list.lock();
                match list.head {
                    None => None,
                    Some(h) => {
                        // SAFETY: `h` is listed; we hold the lock.
                        unsafe { list.unlink(h) };
                        // SAFETY: now owned by us (we hold the lock).
                        let mut link = unsafe { h.link() };
                        let armed = core::mem::replace(&mut link.armed, false);
                        Some((h, armed, link.on_expiry.take()))
                    }
                }
            };
            let Some((h, armed, on_expiry)) = taken else {
                break;
            };
            if armed {
                if let Some(timer) = h.timer() {
                    if !timer.stop(false) {
                        // Firing: wait until the handler is done with the
                        // block (it cannot reach this dying sink); `stop`
                        // with `wait` returns only then (the seam's `Timer`
                        // safety contract).
                        timer.stop(true);
                    }
                }
            }
            drop(on_expiry);
            // SAFETY: unlinked and disarmed: we own the block.
            drop(unsafe { PoolBuffer::from_header(h) });
            returned += 1;
        }
        transition!(self.journal, DEBUG, "BufferPool: sink closed", returned);
    }
}

/// The timer handler of one buffer.
pub(crate) struct BufferTimer<P: Platform> {
    pub(crate) hdr: HeaderPtr<P>,
}

impl<P: Platform> TimerHandler for BufferTimer<P> {
    fn fired(&self) {
        let h = self.hdr;
        // The timer only fires for an arming made by the block's owner after
        // writing `expiry_sink`, and the block stays in that sink until this
        // handler removes it (nobody else can: stopping the timer fails), so
        // the block is alive and `expiry_sink` is not being written. (The
        // seam's `Timer` safety contract: a handler runs only for an arming,
        // and `stop` returns `true` only when it will not run for it.)
        // SAFETY: see above.
        let weak = unsafe { h.expiry_sink() };
        let Some(shared) = weak.and_then(|w| w.upgrade()) else {
            // The sink is closing; its drop owns the block and waits for us.
            return;
        };
        let on_expiry = {
            let mut list = shared.list.lock();
            // SAFETY: if the block is listed in this sink, the lock we hold
            // guards its link; `sink` and `armed` are only written under it.
            let mut link = unsafe { h.link() };
            if ptr::eq(link.sink, Arc::as_ptr(&shared)) && link.armed {
                link.armed = false;
                let cb = link.on_expiry.take();
                link.release();
                // SAFETY: listed in this sink; we hold its lock.
                unsafe { list.unlink(h) };
                cb
            } else {
                None
            }
        };
        if let Some(cb) = on_expiry {
            let sink = SinkPool { shared };
            // Whoever frees the block while the callback runs (on this thread
            // or another) sees the mark and hands it to the reaper instead of
            // deleting this timer from its own handler. The block's memory
            // stays valid until this handler returns: every free drops the
            // timer first, which waits for us.
            h.header().firing.fetch_add(1, Ordering::AcqRel);
            struct Unmark<P: Platform>(HeaderPtr<P>);
            impl<P: Platform> Drop for Unmark<P> {
                fn drop(&mut self) {
                    self.0.header().firing.fetch_sub(1, Ordering::AcqRel);
                }
            }
            let _unmark = Unmark(h);
            // SAFETY: unlinked and disarmed under the lock: we own the block.
            let buffer = unsafe { PoolBuffer::from_header(h) };
            cb.expired(&sink, buffer);
        }
    }
}

/// A sink pool (`DMF_BufferPool` in `BufferPool_Mode_Sink`): allocates
/// nothing; holds buffers of any source pools, optionally each with an expiry
/// timer, as a list with FIFO and head insertion.
///
/// A cheap handle: clones share the sink. Dropping the last handle closes the
/// sink and sends every buffer still in it home. If buffers with armed timers
/// may be in it, drop the last handle at passive level (it may wait for a
/// timer handler that is running).
///
/// Puts and gets never allocate (the list is linked through the buffers'
/// metadata).
///
/// ```
/// use std::sync::Arc;
/// use dmf_buffer_pool::{BufferPool, BufferPoolConfig, EnumerationDisposition, SinkPool};
/// use dmf_sim::{Sim, SimConfig};
///
/// let sim = Sim::new(SimConfig::manual());
/// let source = BufferPool::new(&sim, BufferPoolConfig::new(2, 8).with_timers(true)).unwrap();
/// let sink = SinkPool::new(&sim);
/// let returned = Arc::new(std::sync::atomic::AtomicUsize::new(0));
/// let r = returned.clone();
/// let on_expiry = Arc::new(move |_sink: &SinkPool<Sim>, buffer| {
///     r.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
///     drop(buffer); // back to its source
/// });
/// sink.put_with_timer(source.get().unwrap(), 10, on_expiry.clone()).unwrap();
/// sink.put_with_timer(source.get().unwrap(), 50, on_expiry).unwrap();
/// sim.advance(20);                        // the first one expires
/// assert_eq!((sink.count(), source.count()), (1, 1));
/// // Take the other one out early.
/// let b = sink.enumerate(|e| {
///     assert_eq!(e.remaining_ms(), Some(30));
///     EnumerationDisposition::RemoveAndStopEnumeration
/// });
/// assert!(b.is_some() && sink.count() == 0);
/// # drop(b); sim.advance(100);
/// # assert_eq!(returned.load(std::sync::atomic::Ordering::SeqCst), 1);
/// ```
pub struct SinkPool<P: Platform> {
    shared: Arc<SinkShared<P>>,
}

impl<P: Platform> Clone for SinkPool<P> {
    fn clone(&self) -> Self {
        SinkPool {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<P: Platform> SinkPool<P> {
    /// Creates an empty sink (`DMF_BufferPool_Create` with
    /// `BufferPool_Mode_Sink`).
    pub fn new(platform: &P) -> Self {
        Self::new_in(
            platform,
            Journal::new(platform, format_args!("BufferPool sink")),
        )
    }

    /// As [`new`](Self::new), recording into `journal` (for example the
    /// journal of the module that owns the sink).
    pub fn new_in(platform: &P, journal: Journal<P>) -> Self {
        SinkPool {
            shared: Arc::new(SinkShared {
                journal,
                platform: platform.clone(),
                list: P::Lock::new(SinkList {
                    head: None,
                    tail: None,
                    len: 0,
                }),
                overruns: AtomicUsize::new(0),
            }),
        }
    }

    /// Where this sink records its transitions (its in-flight recorder, or
    /// its owner's).
    pub fn journal(&self) -> &Journal<P> {
        &self.shared.journal
    }

    fn me(&self) -> *const SinkShared<P> {
        Arc::as_ptr(&self.shared)
    }

    fn record(
        &self,
        checked: core::result::Result<(), Overrun>,
    ) -> core::result::Result<(), Overrun> {
        if let Err(overrun) = checked {
            let overruns = self.shared.overruns.fetch_add(1, Ordering::Relaxed) + 1;
            transition!(
                self.shared.journal,
                ERROR,
                "BufferPool: overrun in a sink, guards repaired",
                data = overrun.data,
                context = overrun.context,
                signature = overrun.signature,
                overruns
            );
        }
        checked
    }

    fn put_impl(&self, buffer: PoolBuffer<P>, at_head: bool) -> core::result::Result<(), Overrun> {
        let h = buffer.into_header();
        let checked = self.record(h.check_and_repair(h.layout(), true));
        let mut list = self.shared.list.lock();
        // SAFETY: we hold the lock and own `h` (it came from a guard).
        unsafe { list.insert(h, self.me(), at_head) };
        checked
    }

    /// Appends `buffer` at the tail (`DMF_BufferPool_Put` on a sink); the
    /// sink does not zero it.
    ///
    /// # Errors
    ///
    /// An [`Overrun`] when the guard bytes were overwritten; the buffer is in
    /// the sink anyway (guards repaired).
    pub fn put(&self, buffer: PoolBuffer<P>) -> core::result::Result<(), Overrun> {
        self.put_impl(buffer, false)
    }

    /// Inserts `buffer` at the head (`DMF_BufferPool_PutAtHead`): the next
    /// [`get`](Self::get) returns it. Errors as [`put`](Self::put).
    pub fn put_at_head(&self, buffer: PoolBuffer<P>) -> core::result::Result<(), Overrun> {
        self.put_impl(buffer, true)
    }

    /// Appends `buffer` and arms its one-shot timer for `timeout_ms`
    /// (`DMF_BufferPool_PutInSinkWithTimer`; 0 fires as soon as possible).
    /// When it fires while the buffer is still here, the buffer leaves the
    /// sink and `on_expiry` receives it. Deadlines use the platform's
    /// monotonic clock (`now_100ns`).
    ///
    /// # Errors
    ///
    /// [`PutError::NoTimer`] (buffer handed back) when its source was created
    /// without `create_with_timer`; [`PutError::Overrun`] (buffer put and
    /// armed anyway) when its guard bytes were overwritten.
    pub fn put_with_timer(
        &self,
        buffer: PoolBuffer<P>,
        timeout_ms: u64,
        on_expiry: Arc<dyn ExpiryCallback<P>>,
    ) -> core::result::Result<(), PutError<P>> {
        if !buffer.has_timer() {
            return Err(PutError::NoTimer(buffer));
        }
        let h = buffer.into_header();
        let checked = self.record(h.check_and_repair(h.layout(), true));
        // We own the block and its timer is not armed: no handler reads this.
        // SAFETY: see above.
        unsafe { h.set_expiry_sink(Some(Arc::downgrade(&self.shared))) };
        let deadline = self
            .shared
            .now()
            .saturating_add(timeout_ms.saturating_mul(TICKS_PER_MS));
        {
            let mut list = self.shared.list.lock();
            // SAFETY: we own `h`; from the insertion on, the lock guards it.
            let mut link = unsafe { h.link() };
            link.armed = true;
            link.timeout_ms = timeout_ms;
            link.deadline = deadline;
            link.on_expiry = Some(on_expiry);
            link.release();
            // SAFETY: we hold the lock and own `h`.
            unsafe { list.insert(h, self.me(), false) };
            if let Some(timer) = h.timer() {
                timer.start(timeout_ms);
            }
        }
        checked.map_err(PutError::Overrun)
    }

    /// Takes the first buffer that is not expiring right now
    /// (`DMF_BufferPool_Get` on a sink): an armed timer is stopped first; a
    /// buffer whose timer is already firing is skipped (it belongs to its
    /// timer handler).
    ///
    /// # Errors
    ///
    /// `STATUS_UNSUCCESSFUL` when no buffer can be taken.
    pub fn get(&self) -> Result<PoolBuffer<P>> {
        let (h, on_expiry) = {
            let mut list = self.shared.list.lock();
            let mut cur = list.head;
            loop {
                let Some(h) = cur else {
                    return Err(Status::UNSUCCESSFUL);
                };
                // SAFETY: `h` is listed; we hold the lock.
                let mut link = unsafe { h.link() };
                cur = link.next;
                if link.armed {
                    let stopped = h.timer().is_some_and(|t| t.stop(false));
                    if !stopped {
                        continue;
                    }
                    link.armed = false;
                }
                let cb = link.on_expiry.take();
                link.release();
                // SAFETY: listed; we hold the lock.
                unsafe { list.unlink(h) };
                break (h, cb);
            }
        };
        drop(on_expiry);
        // SAFETY: unlinked and disarmed under the lock: we own the block.
        Ok(unsafe { PoolBuffer::from_header(h) })
    }

    /// Walks the buffers from the head, calling `visit` for each one
    /// (`DMF_BufferPool_Enumerate`), and applies the returned disposition.
    /// Returns the buffer removed by
    /// [`RemoveAndStopEnumeration`](EnumerationDisposition::RemoveAndStopEnumeration).
    ///
    /// The whole walk holds the sink's lock (dispatch context): `visit` must
    /// be quick and must not call methods of this sink. A buffer whose timer
    /// is firing is skipped without calling `visit`. An armed timer is paused
    /// during the visit; [`SinkEntry::remaining_ms`] tells its remaining time.
    /// Reset dispositions restart the timer with its full duration *and* move
    /// its deadline (DMF kept the stale deadline; see "Reset-timer dispositions move the deadline" in `docs/dmf-differences.md`).
    pub fn enumerate<F>(&self, mut visit: F) -> Option<PoolBuffer<P>>
    where
        F: FnMut(&mut SinkEntry<'_, P>) -> EnumerationDisposition,
    {
        use EnumerationDisposition as D;
        let mut list = self.shared.list.lock();
        let mut cur = list.head;
        while let Some(h) = cur {
            let (armed, deadline, timeout_ms) = {
                // SAFETY: listed; we hold the lock.
                let link = unsafe { h.link() };
                cur = link.next;
                (link.armed, link.deadline, link.timeout_ms)
            };
            let mut remaining = None;
            if armed {
                if !h.timer().is_some_and(|t| t.stop(false)) {
                    continue; // firing: its handler owns it
                }
                remaining = Some(remaining_ms(deadline, self.shared.now()));
            }
            let mut entry = SinkEntry {
                hdr: h,
                remaining_ms: remaining,
                _lock: PhantomData,
            };
            let disposition = visit(&mut entry);
            // SAFETY: listed; we hold the lock (the entry borrow ended).
            let mut link = unsafe { h.link() };
            match disposition {
                D::ContinueEnumeration | D::StopEnumeration => {
                    if let (Some(ms), Some(t)) = (remaining, h.timer()) {
                        t.start(ms);
                    }
                }
                D::RemoveAndStopEnumeration => {
                    link.armed = false;
                    let cb = link.on_expiry.take();
                    link.release();
                    // SAFETY: listed; we hold the lock.
                    unsafe { list.unlink(h) };
                    drop(list);
                    drop(cb);
                    // SAFETY: unlinked and disarmed under the lock: ours.
                    return Some(unsafe { PoolBuffer::from_header(h) });
                }
                D::StopTimerAndStopEnumeration | D::StopTimerAndContinueEnumeration => {
                    if armed {
                        link.armed = false;
                        link.on_expiry = None;
                    }
                }
                D::ResetTimerAndStopEnumeration | D::ResetTimerAndContinueEnumeration => {
                    if armed {
                        link.deadline = self
                            .shared
                            .now()
                            .saturating_add(timeout_ms.saturating_mul(TICKS_PER_MS));
                        if let Some(t) = h.timer() {
                            t.start(timeout_ms);
                        }
                    }
                }
            }
            if disposition.stops() {
                break;
            }
        }
        None
    }

    /// Number of buffers in the sink, including ones whose timer is firing
    /// (`DMF_BufferPool_Count`; a snapshot).
    pub fn count(&self) -> usize {
        self.shared.list.lock().len
    }

    /// Overruns detected by puts into this sink so far.
    pub fn overruns_detected(&self) -> usize {
        self.shared.overruns.load(Ordering::Relaxed)
    }

    /// [`BufferPoolMode::Sink`].
    pub fn mode(&self) -> BufferPoolMode {
        BufferPoolMode::Sink
    }

    /// Whether `self` and `other` are handles of the same sink.
    pub fn same_sink(&self, other: &SinkPool<P>) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl<P: Platform> fmt::Debug for SinkPool<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SinkPool")
            .field("count", &self.count())
            .finish()
    }
}

/// A buffer visited by [`SinkPool::enumerate`] (the `ClientBuffer` /
/// `ClientBufferContext` of `EVT_DMF_BufferPool_Enumeration`): access to its
/// bytes while the sink's lock is held.
pub struct SinkEntry<'a, P: Platform> {
    hdr: HeaderPtr<P>,
    remaining_ms: Option<u64>,
    _lock: PhantomData<&'a mut ()>,
}

impl<P: Platform> SinkEntry<'_, P> {
    /// The data bytes.
    pub fn data(&self) -> &[u8] {
        // SAFETY: the listed block is owned by the sink whose lock the
        // enumeration holds for `'a`; the data area is initialised.
        unsafe { slice::from_raw_parts(self.hdr.data_ptr().as_ptr(), self.buffer_size()) }
    }

    /// The data bytes, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `data`; `&mut self` makes the access exclusive.
        unsafe { slice::from_raw_parts_mut(self.hdr.data_ptr().as_ptr(), self.buffer_size()) }
    }

    /// The context bytes.
    pub fn context(&self) -> &[u8] {
        // SAFETY: as in `data`, for the context area.
        unsafe {
            slice::from_raw_parts(
                self.hdr.context_ptr(self.hdr.layout()).as_ptr(),
                self.context_size(),
            )
        }
    }

    /// The context bytes, writable.
    pub fn context_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `data_mut`, for the context area.
        unsafe {
            slice::from_raw_parts_mut(
                self.hdr.context_ptr(self.hdr.layout()).as_ptr(),
                self.context_size(),
            )
        }
    }

    /// Usable bytes of the data area.
    pub fn buffer_size(&self) -> usize {
        self.hdr.layout().data_size
    }

    /// Bytes of the context area.
    pub fn context_size(&self) -> usize {
        self.hdr.layout().context_size
    }

    /// Start of the data area (identifies the buffer).
    pub fn data_ptr(&self) -> core::ptr::NonNull<u8> {
        self.hdr.data_ptr()
    }

    /// Remaining time of the buffer's expiry timer in milliseconds (rounded
    /// up; 0 if overdue), `None` if it has none armed.
    pub fn remaining_ms(&self) -> Option<u64> {
        self.remaining_ms
    }

    /// Whether `pool` is this buffer's home.
    pub fn is_from(&self, pool: &BufferPool<P>) -> bool {
        self.hdr.is_home(pool.shared_ptr())
    }

    /// Checks the guard bytes (see [`PoolBuffer::check_guards`]).
    pub fn check_guards(&self) -> core::result::Result<(), Overrun> {
        self.hdr.check(self.hdr.layout(), true)
    }
}
