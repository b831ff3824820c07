//! Source pools: [`BufferPool`].

use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::fmt;
use core::ptr::NonNull;

use dmf_wdf::recorder::Journal;
use dmf_wdf::{transition, Lock, Platform, Result, Status, WorkItem, WorkItemHandler};

use crate::block::{
    allocate_block, destroy_block, free_block, in_own_handler, release_block, BlockLayout,
    HeaderPtr,
};
use crate::error::{Overrun, PutError};
use crate::queue::{BoundedQueue, PushError};
use crate::sync::{AtomicBool, AtomicUsize, Ordering};
use crate::{BufferPoolConfig, BufferPoolMode, PoolBuffer};

/// Buffers put at the head (LIFO end) of a source pool's list.
pub(crate) struct HeadStack<P: Platform> {
    items: Vec<HeaderPtr<P>>,
    closed: bool,
}

/// Blocks with timers waiting to be freed at passive level, linked through
/// their [`Link::next`](crate::block::Link) (the lock holder owns them).
struct Graveyard<P: Platform> {
    head: Option<HeaderPtr<P>>,
}

/// Frees the blocks with timers that were released where their timer could
/// not be deleted (see [`release_block`]): a work item, so at passive level
/// and never inside a buffer's timer handler.
struct Reaper<P: Platform> {
    work: P::WorkItem,
    graveyard: P::Lock<Graveyard<P>>,
}

/// How often a refused reaper enqueue is retried at once before giving up
/// until the next release (KMDF's `WdfWorkItemEnqueue` cannot fail; the
/// simulator's can, by injection).
const REAPER_ENQUEUE_ATTEMPTS: usize = 8;

/// The reaper's work item handler.
struct ReaperWork<P: Platform> {
    home: Weak<SourceShared<P>>,
}

impl<P: Platform> WorkItemHandler for ReaperWork<P> {
    fn run(&self) {
        // Blocks in the graveyard hold strong counts of their home, so it is
        // alive while there is work. Dropping `home` below may drop the pool
        // state and with it this work item, from its own handler: allowed by
        // the seam's `WorkItem` contract (the deletion does not wait).
        if let Some(home) = self.home.upgrade() {
            home.reap();
        }
    }
}

/// The state of a source pool shared by its handle and its buffers.
pub(crate) struct SourceShared<P: Platform> {
    /// Frees timer blocks at passive level (pools with timers only).
    reaper: Option<Reaper<P>>,
    pub(crate) platform: P,
    pub(crate) config: BufferPoolConfig,
    pub(crate) layout: BlockLayout,
    /// The list's FIFO part (tail = where `put` appends).
    queue: BoundedQueue<HeaderPtr<P>>,
    /// The list's head part: `put_at_head` pushes here, `get` pops here
    /// first. The list is `reverse(head) ++ queue`.
    head: P::Lock<HeadStack<P>>,
    head_len: AtomicUsize,
    /// Look-aside buffers allocated beyond `buffer_count` and not yet freed.
    extra: AtomicUsize,
    /// Blocks alive (listed, lent out, or in sinks).
    pub(crate) live: AtomicUsize,
    overruns: AtomicUsize,
    /// Reaper enqueues the platform refused (see `kick_reaper`).
    reaper_refusals: AtomicUsize,
    /// Set by a `get` that found the pool empty (without look-aside),
    /// cleared by the next `put`: each exhaustion is recorded once.
    exhausted: AtomicBool,
    /// Where the pool's transitions are recorded.
    pub(crate) journal: Journal<P>,
}

impl<P: Platform> SourceShared<P> {
    #[inline]
    fn pop_head(&self) -> Option<HeaderPtr<P>> {
        let mut head = self.head.lock();
        let item = head.items.pop();
        self.head_len.store(head.items.len(), Ordering::Relaxed);
        item
    }

    #[inline]
    fn pop(&self) -> Option<HeaderPtr<P>> {
        if self.head_len.load(Ordering::Relaxed) != 0 {
            if let Some(h) = self.pop_head() {
                return Some(h);
            }
        }
        if let Some(h) = self.queue.pop() {
            return Some(h);
        }
        if self.head_len.load(Ordering::Acquire) != 0 {
            return self.pop_head();
        }
        None
    }

    /// Takes one look-aside credit, if any: the caller frees its buffer.
    #[inline]
    fn take_extra(&self) -> bool {
        let mut e = self.extra.load(Ordering::Relaxed);
        while e != 0 {
            match self
                .extra
                .compare_exchange_weak(e, e - 1, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(v) => e = v,
            }
        }
        false
    }

    /// Returns a block to this, its home pool (DMF `BufferPool_Put` on a
    /// source): checks and repairs the guards, zeroes data and context, frees
    /// it if look-aside grew the pool (or the pool is closed), else lists it.
    #[inline]
    pub(crate) fn put_back(
        &self,
        hdr: HeaderPtr<P>,
        at_head: bool,
    ) -> core::result::Result<(), Overrun> {
        let checked = hdr.check_and_repair(&self.layout, false);
        if let Err(overrun) = checked {
            let overruns = self.overruns.fetch_add(1, Ordering::Relaxed) + 1;
            transition!(
                self.journal,
                ERROR,
                "BufferPool: overrun, guards repaired",
                data = overrun.data,
                context = overrun.context,
                overruns
            );
        }
        if self.exhausted.load(Ordering::Relaxed) && self.exhausted.swap(false, Ordering::Relaxed) {
            transition!(
                self.journal,
                DEBUG,
                "BufferPool: a buffer is back after exhaustion"
            );
        }
        hdr.zero(&self.layout);
        // A guard's timer is never armed. (`expiry_sink` may keep a stale
        // weak handle: it is only read after the next arming rewrote it.)
        // SAFETY: the caller owns the block (it came from a guard).
        debug_assert!(!unsafe { hdr.link() }.armed);
        if self.config.enable_look_aside && self.take_extra() {
            // SAFETY: we own the block, which is in no list; any context.
            unsafe { release_block(hdr) };
            return checked;
        }
        if at_head {
            let mut head = self.head.lock();
            if head.closed {
                drop(head);
                // SAFETY: we own the block; the pool is closed; any context.
                unsafe { release_block(hdr) };
                return checked;
            }
            if head.items.len() < head.items.capacity() {
                head.items.push(hdr);
                self.head_len.store(head.items.len(), Ordering::Relaxed);
                return checked;
            }
            // No room at the head without allocating: append instead.
        }
        match self.queue.push(hdr) {
            Ok(()) => {}
            Err(PushError::Closed(h)) => {
                // SAFETY: we own the block; the pool is closed; any context.
                unsafe { release_block(h) };
            }
            Err(PushError::Full(h)) => {
                // The list already holds `buffer_count` buffers: this one is
                // a look-aside extra whose credit another put consumed.
                self.take_extra();
                // SAFETY: we own the block, which is in no list; any context.
                unsafe { release_block(h) };
            }
        }
        checked
    }

    /// Hands a block with a timer to the reaper (see [`release_block`]).
    ///
    /// # Safety
    ///
    /// The caller owns the block, which is in no list, has a timer, and is
    /// never used by the caller again.
    pub(crate) unsafe fn defer_free(&self, hdr: HeaderPtr<P>) {
        let Some(reaper) = &self.reaper else {
            // Blocks have timers only in pools with a reaper.
            unreachable!("dmf-buffer-pool: a block with a timer in a pool without reaper");
        };
        // It no longer counts as allocated: the pool's figures do not depend
        // on when the reaper runs.
        self.live.fetch_sub(1, Ordering::Relaxed);
        {
            let mut g = reaper.graveyard.lock();
            // SAFETY: we own the block (caller contract); from here the
            // graveyard's lock holder does.
            unsafe { hdr.link() }.next = g.head;
            g.head = Some(hdr);
        }
        self.kick_reaper(reaper);
    }

    fn kick_reaper(&self, reaper: &Reaper<P>) {
        for _ in 0..REAPER_ENQUEUE_ATTEMPTS {
            if reaper.work.enqueue().is_ok() {
                return;
            }
        }
        let refusals = self.reaper_refusals.fetch_add(1, Ordering::Relaxed) + 1;
        transition!(
            self.journal,
            ERROR,
            "BufferPool: the platform refused to queue the reaper; released buffers with timers wait for the next release",
            refusals
        );
    }

    /// Frees every block in the graveyard (the reaper's work item: passive
    /// level, not a buffer's timer handler).
    fn reap(&self) {
        let Some(reaper) = &self.reaper else {
            return;
        };
        let mut next = reaper.graveyard.lock().head.take();
        while let Some(h) = next {
            // SAFETY: taken from the graveyard, so owned by us.
            next = unsafe { h.link() }.next.take();
            // SAFETY: owned, in no list, no longer counted in `live`; a work
            // item runs at passive level on a worker of its own, never nested
            // in a timer's handler (the seam's `WorkItem` safety contract).
            unsafe { destroy_block(h) };
        }
    }

    /// Frees a block taken from the pool's list at close: now, unless the
    /// caller may be inside that block's timer handler (the handler's
    /// expiry callback returned the buffer home and then dropped the pool).
    ///
    /// # Safety
    ///
    /// The caller owns the block, which is in no list; passive level.
    unsafe fn free_listed(&self, h: HeaderPtr<P>) {
        if in_own_handler(h) {
            // SAFETY: forwarded contract.
            unsafe { release_block(h) };
        } else {
            // SAFETY: forwarded contract; not in the block's own handler.
            unsafe { free_block(h) };
        }
    }

    /// Closes the pool: no buffer is listed again; listed ones are freed.
    /// Passive level if the pool has timers (their deletion waits).
    fn close(&self) {
        self.queue.close();
        while let Some(h) = self.queue.pop() {
            // SAFETY: popped from the free list, so owned by us.
            unsafe { self.free_listed(h) };
        }
        let items = {
            let mut head = self.head.lock();
            head.closed = true;
            self.head_len.store(0, Ordering::Relaxed);
            core::mem::take(&mut head.items)
        };
        for h in items {
            // SAFETY: taken from the head list, so owned by us.
            unsafe { self.free_listed(h) };
        }
        if let Some(reaper) = &self.reaper {
            if reaper.graveyard.lock().head.is_some() {
                // A release whose reaper was refused: try again.
                self.kick_reaper(reaper);
            }
        }
    }
}

/// A source pool (`DMF_BufferPool` in `BufferPool_Mode_Source`): allocates
/// `buffer_count` fixed-size buffers with a client context area and hands
/// them out as [`PoolBuffer`] guards.
///
/// * [`get`](Self::get) takes the buffer at the head of the list (growing
///   the pool by one buffer when it is empty and look-aside is on).
/// * Dropping a guard, [`PoolBuffer::put_home`] or [`put`](Self::put) zeroes
///   data and context and appends the buffer (FIFO); [`put_at_head`](Self::put_at_head)
///   or [`PoolBuffer::put_home_at_head`] inserts it at the head (LIFO).
/// * Dropping the pool closes it: listed buffers are freed; buffers held by
///   clients or sinks stay valid and are freed when they come home.
/// * With timers ([`create_with_timer`](BufferPoolConfig::create_with_timer)),
///   a buffer that must be freed when it comes home (the pool closed, or
///   look-aside shrinking it) may come home anywhere: in a completion
///   routine, with a spin lock held, in its own expiry callback. Its timer
///   may only be deleted at passive level and outside its own handler, so
///   such buffers are freed by the pool's reaper, a work item created with
///   the pool, shortly after (they no longer count as allocated meanwhile;
///   the platform's memory and timer are returned when the reaper has run). Drop a
///   pool with timers at passive level (closing it deletes the timers of the
///   listed buffers).
///
/// `get` and the puts never allocate and never take a lock (unless
/// `put_at_head` was used): the list is a lock-free bounded queue sized at
/// open.
///
/// ```
/// use dmf_buffer_pool::{BufferPool, BufferPoolConfig};
/// use dmf_sim::Sim;
///
/// let sim = Sim::default();
/// let pool = BufferPool::new(&sim, BufferPoolConfig::new(2, 32).with_context_size(8)).unwrap();
/// let mut a = pool.get().unwrap();
/// a.data_mut()[0] = 7;
/// a.context_mut()[0] = 1;
/// assert_eq!(pool.count(), 1);
/// drop(a);                                   // back home, zeroed
/// assert_eq!(pool.count(), 2);
/// let b = pool.get().unwrap();               // FIFO: the other buffer
/// let c = pool.get().unwrap();               // the one we wrote to...
/// assert_eq!((c.data()[0], c.context()[0]), (0, 0)); // ...zeroed on put
/// assert!(pool.get().is_err());              // empty, no look-aside
/// # drop((b, c));
/// ```
pub struct BufferPool<P: Platform> {
    shared: Arc<SourceShared<P>>,
}

/// Sizes and addresses of one buffer (`DMF_BufferPool_ParametersGet`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferParameters {
    /// Usable bytes of the data area.
    pub buffer_size: usize,
    /// Bytes of the client context area.
    pub context_size: usize,
    /// Start of the data area (stable for the buffer's life).
    pub data: NonNull<u8>,
    /// Start of the context area, `None` when `context_size == 0`.
    pub context: Option<NonNull<u8>>,
}

impl<P: Platform> BufferPool<P> {
    /// Creates and opens a source pool (`DMF_BufferPool_Create` with
    /// `BufferPool_Mode_Source`): validates `config`
    /// ([`BufferPoolConfig::validate`]), allocates the list and
    /// `buffer_count` buffers (each with a timer if `create_with_timer`).
    ///
    /// # Errors
    ///
    /// `STATUS_INVALID_PARAMETER` for an invalid config or sizes that
    /// overflow; `STATUS_INSUFFICIENT_RESOURCES` when an allocation fails;
    /// the platform's status when creating a timer or (with timers) the
    /// pool's reaper work item fails. Nothing is leaked.
    pub fn new(platform: &P, config: BufferPoolConfig) -> Result<Self> {
        Self::new_in(
            platform,
            config,
            Journal::new(platform, format_args!("BufferPool")),
        )
    }

    /// As [`new`](Self::new), recording into `journal` (for example the
    /// journal of the module that owns the pool) instead of a recorder of
    /// its own.
    pub fn new_in(platform: &P, config: BufferPoolConfig, journal: Journal<P>) -> Result<Self> {
        config.validate()?;
        let layout = BlockLayout::new::<P>(
            config.buffer_size as usize,
            config.buffer_context_size as usize,
        )
        .ok_or(Status::INVALID_PARAMETER)?;
        let cap = (config.buffer_count as usize).max(1);
        let mut reaper_failure = None;
        let shared = Arc::new_cyclic(|weak: &Weak<SourceShared<P>>| {
            let reaper = if config.create_with_timer {
                let handler = Arc::new(ReaperWork { home: weak.clone() });
                match platform.create_work_item(handler) {
                    Ok(work) => Some(Reaper {
                        work,
                        graveyard: P::Lock::new(Graveyard { head: None }),
                    }),
                    Err(status) => {
                        reaper_failure = Some(status);
                        None
                    }
                }
            } else {
                None
            };
            SourceShared {
                reaper,
                platform: platform.clone(),
                config,
                layout,
                queue: BoundedQueue::new(cap),
                head: P::Lock::new(HeadStack {
                    items: Vec::with_capacity(cap),
                    closed: false,
                }),
                head_len: AtomicUsize::new(0),
                extra: AtomicUsize::new(0),
                live: AtomicUsize::new(0),
                overruns: AtomicUsize::new(0),
                reaper_refusals: AtomicUsize::new(0),
                exhausted: AtomicBool::new(false),
                journal,
            }
        });
        if let Some(status) = reaper_failure {
            return Err(status);
        }
        let pool = BufferPool { shared };
        for _ in 0..config.buffer_count {
            // On failure `pool` drops and frees what was allocated.
            let hdr = allocate_block(&pool.shared)?;
            if pool.shared.queue.push(hdr).is_err() {
                // SAFETY: fresh block, owned by us, in no list.
                unsafe { free_block(hdr) };
                return Err(Status::INSUFFICIENT_RESOURCES);
            }
        }
        transition!(
            pool.shared.journal,
            DEBUG,
            "BufferPool: source pool opened",
            buffer_count = config.buffer_count,
            buffer_size = config.buffer_size,
            context_size = config.buffer_context_size,
            look_aside = config.enable_look_aside,
            timers = config.create_with_timer
        );
        Ok(pool)
    }

    /// Takes the buffer at the head of the list (`DMF_BufferPool_Get`,
    /// `…GetWithMemory`, `…GetWithMemoryDescriptor`: the guard gives the data
    /// and context pointers and, through [`PoolBuffer::raw_buffer`], the
    /// memory to hand to a device).
    ///
    /// When the list is empty and look-aside is on, allocates one more buffer
    /// (the pool shrinks back on a later put). A source pool never lists a
    /// buffer whose timer is armed, so an empty-looking list always falls
    /// back to allocation (see "A source pool with look-aside never refuses a get" in `docs/dmf-differences.md`).
    ///
    /// # Errors
    ///
    /// `STATUS_UNSUCCESSFUL` when empty without look-aside (DMF's code for
    /// `Get` and `GetWithMemory`; its `GetWithMemoryDescriptor` said
    /// `STATUS_INSUFFICIENT_RESOURCES` instead);
    /// `STATUS_INSUFFICIENT_RESOURCES` (or the timer creation status) when
    /// look-aside allocation fails.
    #[inline]
    pub fn get(&self) -> Result<PoolBuffer<P>> {
        if let Some(h) = self.shared.pop() {
            // SAFETY: popped from the list, so owned by us; the guard takes it.
            return Ok(unsafe { PoolBuffer::from_parts(h, self.shared_nonnull()) });
        }
        if self.shared.config.enable_look_aside {
            self.grow()
        } else {
            self.exhausted();
            Err(Status::UNSUCCESSFUL)
        }
    }

    /// Records the first `get` that found the pool empty since the last
    /// `put`.
    #[cold]
    fn exhausted(&self) {
        if !self.shared.exhausted.swap(true, Ordering::Relaxed) {
            transition!(
                self.shared.journal,
                DEBUG,
                "BufferPool: exhausted",
                buffer_count = self.shared.config.buffer_count
            );
        }
    }

    #[cold]
    fn grow(&self) -> Result<PoolBuffer<P>> {
        // Count the extra buffer only once it exists, so that a failed
        // allocation cannot leave a credit that would later free a buffer
        // the pool needs.
        let h = match allocate_block(&self.shared) {
            Ok(h) => h,
            Err(status) => {
                transition!(
                    self.shared.journal,
                    WARN,
                    "BufferPool: look-aside cannot grow",
                    ?status
                );
                return Err(status);
            }
        };
        let extra = self.shared.extra.fetch_add(1, Ordering::AcqRel) + 1;
        transition!(
            self.shared.journal,
            DEBUG,
            "BufferPool: look-aside grew",
            extra
        );
        // SAFETY: fresh block, owned by us; the guard takes it.
        Ok(unsafe { PoolBuffer::from_header(h) })
    }

    /// Where this pool records its transitions (its in-flight recorder, or
    /// its owner's).
    pub fn journal(&self) -> &Journal<P> {
        &self.shared.journal
    }

    /// Returns `buffer` to the tail of this pool (`DMF_BufferPool_Put` on a
    /// source). Same as dropping it, but reports errors.
    ///
    /// # Errors
    ///
    /// [`PutError::ForeignBuffer`] (buffer handed back) when this pool is not
    /// the buffer's home; [`PutError::Overrun`] (buffer returned anyway) when
    /// its guard bytes were overwritten.
    pub fn put(&self, buffer: PoolBuffer<P>) -> core::result::Result<(), PutError<P>> {
        self.put_impl(buffer, false)
    }

    /// Returns `buffer` to the head of this pool (`DMF_BufferPool_PutAtHead`):
    /// the next [`get`](Self::get) returns it. Errors as [`put`](Self::put).
    pub fn put_at_head(&self, buffer: PoolBuffer<P>) -> core::result::Result<(), PutError<P>> {
        self.put_impl(buffer, true)
    }

    fn put_impl(
        &self,
        buffer: PoolBuffer<P>,
        at_head: bool,
    ) -> core::result::Result<(), PutError<P>> {
        if !buffer.is_from(self) {
            return Err(PutError::ForeignBuffer(buffer));
        }
        let h = buffer.into_header();
        self.shared.put_back(h, at_head).map_err(PutError::Overrun)
    }

    /// Number of buffers listed (`DMF_BufferPool_Count`; a snapshot).
    pub fn count(&self) -> usize {
        self.shared.queue.len() + self.shared.head_len.load(Ordering::Relaxed)
    }

    /// Buffers alive that are not listed: lent to clients or sitting in sinks
    /// (DMF's "buffers in use" diagnostic).
    pub fn buffers_in_use(&self) -> usize {
        self.shared
            .live
            .load(Ordering::Relaxed)
            .saturating_sub(self.count())
    }

    /// Buffers alive (listed, lent or in sinks): `buffer_count` plus the
    /// look-aside buffers currently allocated beyond it.
    pub fn buffers_allocated(&self) -> usize {
        self.shared.live.load(Ordering::Relaxed)
    }

    /// Overruns detected by puts into this pool so far (including drops).
    pub fn overruns_detected(&self) -> usize {
        self.shared.overruns.load(Ordering::Relaxed)
    }

    /// The configuration the pool was created with.
    pub fn config(&self) -> &BufferPoolConfig {
        &self.shared.config
    }

    /// [`BufferPoolMode::Source`].
    pub fn mode(&self) -> BufferPoolMode {
        BufferPoolMode::Source
    }

    /// `DMF_BufferPool_ParametersGet`: sizes and addresses of `buffer`,
    /// which must come from this pool.
    ///
    /// # Errors
    ///
    /// `STATUS_INVALID_PARAMETER` when this pool is not the buffer's home
    /// (DMF only asserts).
    pub fn parameters(&self, buffer: &PoolBuffer<P>) -> Result<BufferParameters> {
        if !buffer.is_from(self) {
            return Err(Status::INVALID_PARAMETER);
        }
        Ok(BufferParameters {
            buffer_size: buffer.buffer_size(),
            context_size: buffer.context_size(),
            data: buffer.data_ptr(),
            context: (buffer.context_size() != 0).then(|| buffer.context_ptr()),
        })
    }

    pub(crate) fn shared_ptr(&self) -> *const SourceShared<P> {
        Arc::as_ptr(&self.shared)
    }

    #[inline]
    fn shared_nonnull(&self) -> NonNull<SourceShared<P>> {
        NonNull::from(&*self.shared)
    }
}

impl<P: Platform> Drop for BufferPool<P> {
    fn drop(&mut self) {
        self.shared.close();
        transition!(
            self.shared.journal,
            DEBUG,
            "BufferPool: source pool closed",
            still_out = self.shared.live.load(Ordering::Relaxed)
        );
    }
}

impl<P: Platform> fmt::Debug for BufferPool<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferPool")
            .field("config", &self.shared.config)
            .field("count", &self.count())
            .field("allocated", &self.buffers_allocated())
            .finish()
    }
}
